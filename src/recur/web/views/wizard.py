"""Create subscription "Immediately" (R-NEW-3), pre-filled from a contact, company or deal (R-NEW-4,
R-NEW-5): one form, then a confirmation step with the summary, then the service creates it and the
billing run bills the first period at once when it is due today (as the API does)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from recur.core import clock
from recur.core.errors import ServiceError
from recur.crm.models import Company, Contact, Deal
from recur.subscriptions import schedule, services
from recur.web import forms as wf

MAX_ITEMS = 50


def payment_link_url() -> str | None:
    """The page that makes a payment link ("When a customer pays", R-NEW-2), once one exists."""
    for name in ("payment_link_new", "checkout:payment_link_new", "payment_link_create"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


def _count(data) -> int:
    raw = str(data.get("items", "1"))
    n = int(raw) if raw.isdigit() else 1
    n = max(1, min(n, MAX_ITEMS))
    if "add_item" in data and n < MAX_ITEMS:
        n += 1
    return n


def first_payment(key, today):
    """(first payment date, error) for the R-SIGN-4 key of the line items, as the service computes it."""
    freq, terms, fixed, delay_days, delay_months, n = key
    if fixed is not None and fixed < today:
        if (today - fixed).days > services.max_backdate_days():
            return None, _("The start date is more than %(days)s days in the past.") % {
                "days": services.max_backdate_days()}
        return fixed, None
    return schedule.start_date(today, fixed, delay_days, delay_months), None


def _summary(form, rows, cleaned) -> dict:
    d = form.cleaned_data
    today = clock.today()
    key = cleaned[0]["_key"]
    start, _err = first_payment(key, today)
    freq, n = key[0], key[5]
    first = [schedule.period(start, freq, k) for k in range(min(3, n) if n else 3)]
    amount = services.period_amount(cleaned)
    from recur.payments.models import PaymentMethod

    pm = PaymentMethod.objects.filter(pk=d.get("payment_method")).first() if d.get("payment_method") else None
    lines = []
    for it in cleaned:
        a = services.period_amount([it])
        lines.append({"name": it["name"], "quantity": it.get("quantity", 1), "unit_price": it["unit_price"],
                      "discount": it["discount_percent"], "tax": it["tax_rate"], "total": a})
    return {
        "contact": Contact.objects.get(pk=d["contact"]),
        "company": Company.objects.filter(pk=d.get("company")).first() if d.get("company") else None,
        "deal": Deal.objects.filter(pk=d.get("deal")).first() if d.get("deal") else None,
        "currency": cleaned[0]["currency"], "amount": amount, "lines": lines, "start": start,
        "due_today": start <= today, "payments": [{"date": s, "end": e, "amount": amount} for s, e in first],
        "end_date": schedule.end_date(start, freq, n) if n else None, "n": n,
        "frequency": dict(form.fields["billing_frequency"].choices)[freq],
        "terms": dict(form.fields["billing_terms"].choices)[key[1]],
        "collection": dict(form.fields["collection"].choices)[d["collection"]],
        "payment_method": wf.method_label(pm) if pm else None,
        "payment_terms": dict(form.fields["payment_terms"].choices)[d["payment_terms"]],
        "accepted": [dict(form.fields["accepted_payment_methods"].choices)[m]
                     for m in d.get("accepted_payment_methods") or []],
        "address": form.address(),
        "options": [str(form.fields[k].label) for k in form.COLLECTION_OPTIONS
                    if d["collection"] == "manual" and d.get(k)],
    }


def _map_error(form, items, rows, exc) -> None:
    target = wf.item_field_map(rows).get(exc.field or "")
    if target and not (exc.field or "").endswith(("billing_frequency", "billing_terms", "number_of_payments",
                                                    "billing_start_date", "billing_start_delay_days",
                                                    "billing_start_delay_months")):
        row, name = target
        items[row].add_error(name, wf.service_message(exc))
    else:
        wf.add_service_error(form, exc, wf.WIZARD_FIELD_MAP)


@login_required
def subscription_new(request):
    products = wf.product_choices()
    ctx = {"products": products, "payment_link_url": payment_link_url(), "show_errors": True}
    if request.method != "POST":
        g = request.GET
        initial = {k: g.get(k) for k in ("contact", "company", "deal") if (g.get(k) or "").isdigit()}
        contact = Contact.objects.filter(pk=initial["contact"]).first() if initial.get("contact") else None
        if contact:
            initial.update({k: getattr(contact, k) for k in wf.ADDRESS_FIELDS})
            company = None if initial.get("company") else _contact_company(contact)
            if company:
                initial["company"] = company.pk
        form = wf.WizardForm(initial=initial)
        return _edit(request, form, wf.item_forms(None, 1, products), 1, {**ctx, "show_errors": False})

    data = request.POST
    count = _count(data)
    form = wf.WizardForm(data)
    items = wf.item_forms(data, count, products)
    if any(k in data for k in ("add_item", "search_contact", "refresh", "back")):
        # Re-show the form as it was typed, without judging it yet.
        form = wf.WizardForm(initial=wf.initial_from(data, form))
        items = [wf.ItemForm(prefix=f.prefix, products=products, initial=wf.initial_from(data, f)) for f in items]
        return _edit(request, form, items, count, {**ctx, "show_errors": False})
    valid = form.is_valid() & all([f.is_valid() for f in items])
    rows = wf.item_dicts(items, form.cleaned_data.get("currency") or "EUR") if valid else []
    if valid and not rows and not any(f.errors for f in items):
        form.add_error(None, _("Add at least one line item."))
    if not valid or form.errors or any(f.errors for f in items):
        return _edit(request, form, items, count, ctx)
    svc = form.service_data([it for _, it in rows])
    try:
        cleaned = services.clean_line_items(svc["line_items"])
    except ServiceError as exc:
        _map_error(form, items, rows, exc)
        return _edit(request, form, items, count, ctx)
    start, err = first_payment(cleaned[0]["_key"], clock.today())
    if err:
        form.add_error("start_date", err)
        return _edit(request, form, items, count, ctx)
    if "create" in data:
        try:
            sub = services.create_subscription(request.user, svc)
        except ServiceError as exc:
            _map_error(form, items, rows, exc)
            return _edit(request, form, items, count, ctx)
        if sub.next_payment_date and sub.next_payment_date <= clock.today():
            from recur.billing import engine

            engine.run(only=[sub.pk])  # the first period is due now: bill it at once
            sub.refresh_from_db()
        if sub.status == "past_due":
            messages.warning(request, _("The subscription is created, but its first payment failed."))
        else:
            messages.success(request, _("Subscription “%(name)s” is created.") % {"name": sub.name})
        return redirect("subscription_detail", pk=sub.pk)
    hidden = [(k, v) for k in data for v in data.getlist(k)
              if k not in ("csrfmiddlewaretoken", "confirm", "create", "back", "add_item", "search_contact")]
    return render(request, "web/subscription_confirm.html", {
        **ctx, "hidden": hidden, "s": _summary(form, rows, cleaned)})


def _edit(request, form, items, count, ctx):
    return render(request, "web/subscription_new.html", {
        **ctx, "form": form, "items": items, "count": count,
        "address_fields": [form[k] for k in wf.ADDRESS_FIELDS],
        "product_data": {p.pk: {"name": p.name, "price": wf.money_text(p.unit_price, p.currency),
                                "currency": p.currency, "frequency": p.billing_frequency or "",
                                "tax": str(p.tax_rate.normalize())} for p in ctx["products"]},
    })


# --- small JSON helpers for the pickers (progressive enhancement) ----------------------------------


@login_required
def contact_search(request):
    q = (request.GET.get("q") or "").strip()
    qs = Contact.objects.order_by("name", "pk")
    if q:
        qs = (Contact.objects.filter(name__icontains=q) | Contact.objects.filter(email__icontains=q)).order_by(
            "name", "pk")
    return JsonResponse({"items": [{"id": c.pk, "label": f"{c.name} <{c.email}>" if c.email else c.name}
                                   for c in qs[:50]]})


@login_required
def contact_payment_methods(request, pk):
    from recur.payments.models import PaymentMethod

    rows = PaymentMethod.objects.filter(contact_id=pk, removed_at__isnull=True).order_by("-pk")
    company = _contact_company(Contact.objects.filter(pk=pk).first())  # the wizard fills it in, as ?contact= does
    return JsonResponse({"items": [{"id": m.pk, "label": wf.method_label(m)} for m in rows],
                         "company": {"id": company.pk, "label": company.name} if company else None})


def _contact_company(contact):
    """The company the contact (or None) is associated with (the first), or None."""
    from recur.core import records

    return records.associated(contact, "company").first() if contact else None

