"""Payment links (R-NEW-2), quotes and their conversion (R-NEW-6), and a contact's saved payment
methods (R-PAY-1). Thin: forms check input, services decide and write."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from recur.checkout import payment_links as links
from recur.checkout.links import quote_url
from recur.checkout.forms import PaymentDetailsForm
from recur.checkout.models import PaymentLink
from recur.core import clock, records
from recur.core.errors import ServiceError
from recur.crm import quotes as quote_services
from recur.crm.models import Contact, Quote
from recur.web import commerce_forms as cf
from recur.web import forms as wf

PAGE = 50
MAX_ITEMS = 50
QUOTE_BADGES = {"draft": "grey", "published": "blue", "accepted": "amber", "paid": "green", "expired": "grey"}
SECRET_FIELDS = ("card_number", "card_cvc", "card_exp_month", "card_exp_year", "bank_account", "bank_routing")


def _count(data) -> int:
    raw = str(data.get("items", "1"))
    n = max(1, min(int(raw) if raw.isdigit() else 1, MAX_ITEMS))
    return n + 1 if "add_item" in data and n < MAX_ITEMS else n


def _items_summary(items) -> str:
    return ", ".join(f"{it.quantity} × {it.name}" if it.quantity > 1 else it.name for it in items)


def _plan(source):
    try:
        return links.plan_for(source)
    except (ValueError, ServiceError):
        return None


def _product_data(products) -> dict:
    return {p.pk: {"name": p.name, "price": wf.money_text(p.unit_price, p.currency), "currency": p.currency,
                   "frequency": p.billing_frequency or ""} for p in products}


def _read_items(request, form, products):
    """(items forms, rows, count, ok): the line item rows of a create form, checked."""
    data = request.POST
    count = _count(data)
    items = cf.scheduled_item_forms(data, count, products)
    ok = form.is_valid() & all([f.is_valid() for f in items])
    rows = cf.scheduled_items(items, form.cleaned_data.get("currency") or "EUR") if ok else []
    if ok and not rows and not any(f.errors for f in items):
        form.add_error(None, _("Add at least one line item."))
    ok = ok and not form.errors and not any(f.errors for f in items)
    return items, rows, count, ok


def _reshow(data, form_class, products, count, **kw):
    """The form as typed, without judging it yet (after "Add line item")."""
    form = form_class(initial=wf.initial_from(data, form_class(data, **kw)), **kw)
    items = [cf.ScheduledItemForm(prefix=f.prefix, products=products, initial=wf.initial_from(data, f))
             for f in cf.scheduled_item_forms(data, count, products)]
    return form, items


# --- payment links (R-NEW-2) -------------------------------------------------------------------------


@login_required
def payment_link_list(request):
    qs = PaymentLink.objects.order_by("-pk").prefetch_related("items")
    before = request.GET.get("before")
    if before and before.isdigit():
        qs = qs.filter(pk__lt=int(before))
    rows = list(qs[: PAGE + 1])
    nxt = rows[PAGE - 1].pk if len(rows) > PAGE else None
    rows = rows[:PAGE]
    for link in rows:
        link.url = links.link_url(link)
        link.summary = _items_summary(link.items.all())
        plan = _plan(link)
        link.due_now = plan.due_now if plan else None
    return render(request, "web/payment_link_list.html", {
        "rows": rows, "next": nxt, "total": PaymentLink.objects.count()})


def _create_with_items(request, form_class, template, create, field_map, initial=None):
    """The create page of a record with line items (a payment link, a quote): add rows, show each error beside
    its row or field, and create through ``create(form, items)``, which calls the service and returns
    (success message, URL to go to)."""
    products = wf.product_choices()
    ctx = {"products": products, "product_data": _product_data(products)}

    def page(form, items, count):
        return render(request, template, {**ctx, "form": form, "items": items, "count": count})

    if request.method != "POST":
        return page(form_class(initial=initial or {}), cf.scheduled_item_forms(None, 1, products), 1)
    data = request.POST
    if "add_item" in data:
        count = _count(data)
        return page(*_reshow(data, form_class, products, count), count)
    form = form_class(data)
    items, rows, count, ok = _read_items(request, form, products)
    if ok:
        try:
            message, url = create(form, [it for _, it in rows])
        except ServiceError as exc:
            cf.map_item_error(form, items, rows, exc, field_map)
        else:
            messages.success(request, message)
            return redirect(url)
    return page(form, items, count)


@login_required
def payment_link_new(request):
    def create(form, items):
        link = links.create_payment_link(request.user, form.service_data(items))
        return _("Payment link “%(name)s” is created.") % {"name": link.name}, reverse("payment_link_detail",
                                                                                     args=[link.pk])

    return _create_with_items(request, cf.PaymentLinkForm, "web/payment_link_new.html", create, cf.LINK_FIELD_MAP)


@login_required
def payment_link_detail(request, pk):
    link = get_object_or_404(PaymentLink, pk=pk)
    plan = _plan(link)
    return render(request, "web/payment_link_detail.html", {
        "link": link, "url": links.link_url(link), "items": list(link.items.all()), "plan": plan,
        "methods": [dict(cf.METHOD_CHOICES)[m] for m in link.accepted_payment_methods if m in dict(cf.METHOD_CHOICES)],
        "sessions": _link_subscriptions(link), "unfinished": _unfinished_checkouts(link)})


def _unfinished_checkouts(link) -> list:
    """Recent checkouts of the link that bought nothing (declined, or a charge still being settled):
    the buyer, the amount, and the last attempt's reason. No contact exists for them (R-SIGN: nothing is
    created before a payment succeeds), so this is where the seller sees them."""
    from recur.checkout.models import CheckoutSession

    rows = list(CheckoutSession.objects.filter(payment_link=link).exclude(status="completed")
                .filter(attempts__isnull=False).distinct().order_by("-updated_at", "-pk")[:20])
    for s in rows:
        last = s.attempts.order_by("-attempt_no").first()
        s.tries = last.attempt_no if last else 0
        s.reason = (last.failure_message if last else "") or s.failure_message
        s.method = f"{last.method_brand or last.method_type} ····{last.method_last4}" if last and last.method_last4 \
            else ""
    return rows


def _link_subscriptions(link):
    from recur.subscriptions.models import Subscription
    from recur.web.subscription_index import STATUS_BADGES

    ids = [i for _, i, _ in records.associated_ids(link.record_type, link.pk, "subscription")]
    subs = list(Subscription.objects.filter(pk__in=ids).select_related("contact").order_by("-pk")[:50])
    for s in subs:
        s.badge = STATUS_BADGES.get(s.status, "grey")
    return subs


@login_required
@require_POST
def payment_link_archive(request, pk):
    link = get_object_or_404(PaymentLink, pk=pk)
    try:
        links.archive_payment_link(request.user, link)
    except ServiceError as exc:
        messages.error(request, wf.service_message(exc))
    else:
        messages.success(request, _("The payment link is archived: it no longer takes payments."))
    return redirect("payment_link_detail", pk=link.pk)


# --- quotes (R-NEW-6) --------------------------------------------------------------------------------


def _quote_status(quote: Quote, today) -> str:
    if quote.status == "published" and quote_services.quote_expired(quote, today):
        return "expired"
    return quote.status


def _decorate(quote: Quote, today) -> Quote:
    quote.shown_status = _quote_status(quote, today)
    quote.status_label = dict(Quote.STATUSES).get(quote.shown_status, quote.shown_status)
    quote.badge = QUOTE_BADGES.get(quote.shown_status, "grey")
    plan = _plan(quote)
    quote.total = (sum(g.amount for g in plan.groups) + plan.one_time_total) if plan else None
    return quote


@login_required
def quote_list(request):
    qs = Quote.objects.select_related("contact").prefetch_related("line_items").order_by("-pk")
    before = request.GET.get("before")
    if before and before.isdigit():
        qs = qs.filter(pk__lt=int(before))
    rows = list(qs[: PAGE + 1])
    nxt = rows[PAGE - 1].pk if len(rows) > PAGE else None
    today = clock.today()
    rows = [_decorate(q, today) for q in rows[:PAGE]]
    return render(request, "web/quote_list.html", {"rows": rows, "next": nxt, "total": Quote.objects.count()})


@login_required
def quote_new(request):
    def create(form, items):
        quote = quote_services.create_quote(request.user, form.service_data(items))
        return _("Quote “%(title)s” is created as a draft.") % {"title": quote.title}, reverse("quote_detail",
                                                                                              args=[quote.pk])

    g = request.GET
    initial = {k: g.get(k) for k in ("contact", "deal") if (g.get(k) or "").isdigit()}
    return _create_with_items(request, cf.QuoteForm, "web/quote_new.html", create, cf.QUOTE_FIELD_MAP, initial)


def _quote(pk) -> Quote:
    quote = Quote.objects.select_related("contact", "deal").filter(pk=pk).first()
    if quote is None:
        raise Http404
    return quote


@login_required
def quote_detail(request, pk, convert_form=None):
    from recur.billing.models import Invoice
    from recur.subscriptions.models import Subscription

    quote = _decorate(_quote(pk), clock.today())
    subs = list(Subscription.objects.filter(quote_id=quote.pk).order_by("pk"))
    invoice_ids = [i for _, i, _ in records.associated_ids("quote", quote.pk, "invoice")]
    invoices = list(Invoice.objects.filter(pk__in=invoice_ids).order_by("pk"))
    items = list(quote.line_items.all())
    recurring = any(li.billing_frequency for li in items)
    can_convert = quote.shown_status in ("published", "accepted") and not subs and not invoices
    return render(request, "web/quote_detail.html", {
        "quote": quote, "items": items, "url": quote_url(quote), "recurring": recurring, "can_convert": can_convert,
        "form": convert_form or cf.ConvertForm(contact=quote.contact), "subscriptions": subs, "invoices": invoices,
    })


@login_required
@require_POST
def quote_publish(request, pk):
    quote = _quote(pk)
    try:
        quote_services.publish_quote(request.user, quote)
    except ServiceError as exc:
        messages.error(request, wf.service_message(exc))
    else:
        messages.success(request, _("The quote is published: send the buyer its link."))
    return redirect("quote_detail", pk=quote.pk)


@login_required
@require_POST
def quote_convert(request, pk):
    from recur.subscriptions import conversions

    quote = _quote(pk)
    to_invoice = request.POST.get("to") == "invoice"
    form = cf.ConvertForm(request.POST, contact=quote.contact)
    if to_invoice:
        form.fields["collection"].required = False
    if not form.is_valid() or (to_invoice and form.errors):
        return quote_detail(request, pk, convert_form=form)
    try:
        if to_invoice:
            invoice = conversions.quote_to_invoice(request.user, quote, {
                "payment_terms": form.cleaned_data["payment_terms"], "accept_online_payments": True})
            messages.success(request, _("Invoice %(number)s is created from the quote.") % {"number": invoice.number})
            return redirect("quote_detail", pk=quote.pk)
        result = conversions.quote_to_subscriptions(request.user, quote, form.options())
    except ServiceError as exc:
        wf.add_service_error(form, exc, cf.CONVERT_FIELD_MAP)
        return quote_detail(request, pk, convert_form=form)
    conversions.bill_due_now(result)  # the first periods due today are billed now, as the API does
    n = len(result["subscriptions"])
    messages.success(request, _("%(n)s subscription(s) created from the quote.") % {"n": n})
    return redirect("quote_detail", pk=quote.pk)


# --- a contact's payment methods (R-PAY-1) -------------------------------------------------------------


def payment_methods_context(contact, form=None) -> dict:
    from recur.payments import services as payments

    return {"methods": [(m, wf.method_label(m)) for m in payments.list_payment_methods(contact)],
            "pm_form": form or PaymentDetailsForm(accepted=["card", "bank_account"])}


@login_required
@sensitive_post_parameters(*SECRET_FIELDS)
@require_POST
def payment_method_add(request, pk):
    from recur.payments import services as payments
    from recur.web.views.base import _record_page

    contact = get_object_or_404(Contact, pk=pk)
    form = PaymentDetailsForm(request.POST, accepted=["card", "bank_account"])
    if form.is_valid():
        try:
            method = payments.add_payment_method(request.user, contact, form.details())
        except ServiceError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("%(method)s is saved for %(contact)s.") % {
                "method": wf.method_label(method), "contact": contact.name})
            return redirect("contact_detail", pk=contact.pk)
    return _record_page(request, "contact", contact.pk, "web/contact_detail.html",
                        {**payment_methods_context(contact, form), "pm_open": True})


@login_required
@require_POST
def payment_method_remove(request, pk, method_pk):
    from recur.payments import services as payments

    contact = get_object_or_404(Contact, pk=pk)
    try:
        method = payments.get_payment_method(contact, method_pk)
        payments.remove_payment_method(request.user, method)
    except ServiceError as exc:
        messages.error(request, wf.service_message(exc))
    else:
        messages.success(request, _("%(method)s is removed.") % {"method": wf.method_label(method)})
    return redirect("contact_detail", pk=contact.pk)
