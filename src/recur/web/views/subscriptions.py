"""Subscriptions index with saved views (R-VIEW-1), the subscription page (R-VIEW-2, R-VIEW-4) and its
actions: edit with proration preview (R-MAN-1), pause/resume (R-MAN-3), cancel (R-MAN-2), refund
(R-MAN-5), delete after export (R-MAN-4), update-payment-method link (R-BILL-5)."""

from __future__ import annotations

import csv
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from recur.billing import services as billing
from recur.billing.models import Invoice, Payment, Refund
from recur.core import clock, records
from recur.core.errors import NotFound, ServiceError
from recur.core.money import format_amount, line_amounts
from recur.notifications.models import OutboxMessage
from recur.payments.reasons import failure_reason
from recur.subscriptions import services
from recur.subscriptions import status as rules
from recur.subscriptions.models import CANCEL_MODES, Subscription
from recur.web import forms as wf
from recur.web import services as web_services
from recur.web import subscription_index as ix
from recur.web.history import shown_value
from recur.web.views.refunds import refund_page
from recur.web.templatetags.recur import money


def get_subscription(pk) -> Subscription:
    try:
        return records.get_record("subscription", pk)
    except ServiceError:
        raise Http404 from None


# --- index ------------------------------------------------------------------------------------


def _qs(pairs) -> str:
    return urlencode(pairs, doseq=True)


@login_required
def subscription_index(request):
    q = request.GET
    saved = list(web_services.views_of(request.user))
    view = None
    tab = q.get("tab", "all") if q.get("tab") in ix.TABS else "all"
    if q.get("view"):
        try:
            view = web_services.get_view(request.user, q.get("view"))
        except NotFound:
            messages.error(request, _("That saved view does not exist (any more)."))
            return redirect("subscription_index")
        tab = f"view-{view.pk}"
    state = ix.IndexState.from_saved(view) if view and not q.get("x") else ix.IndexState.from_query(q)
    tab_status = ix.TABS.get(tab) if view is None else None
    qs, errors = ix.filtered_queryset(state, tab_status)
    qs = qs.select_related(*ix.related_for(state.columns))
    pg = ix.page(qs, state, q.get("after"), q.get("before"), limit=ix.PAGE)
    count, count_text = ix.count_label(qs, filtered=state.filtered or bool(tab_status))

    base = [("view", str(view.pk)), ("x", "1")] if view else ([("tab", tab)] if tab != "all" else [])
    columns = []
    for key in state.columns:
        col = ix.COLUMNS[key]
        sort_url = None
        if col.sort:
            new = key if state.sort != key else f"-{key}"
            sort_url = "?" + _qs(base + state.params(sort=new))
        columns.append({"key": key, "label": col.label, "num": col.num, "sort_url": sort_url,
                        "sorted": "ascending" if state.sort == key else "descending" if state.sort == f"-{key}"
                        else ""})
    cells = ix.Cells(state.columns)
    rows = [cells.row(s) for s in pg.rows]
    here = base + state.params()
    modified = bool(view) and ix.IndexState.from_saved(view).to_saved() != state.to_saved()
    all_cols = [(k, ix.COLUMNS[k].label, k in state.columns) for k in state.columns] + [
        (k, c.label, False) for k, c in ix.COLUMNS.items() if k not in state.columns]
    return render(request, "web/subscription_list.html", {
        "state": state, "tab": tab, "view": view, "saved": saved, "saved_last": saved[-1].pk if saved else None,
        "columns": columns, "rows": rows,
        "count": count, "count_text": count_text, "errors": errors, "modified": modified,
        "next_url": "?" + _qs(here + [("after", pg.next_cursor)]) if pg.next_cursor else None,
        "prev_url": "?" + _qs(here + [("before", pg.prev_cursor)]) if pg.prev_cursor else None,
        "first_url": "?" + _qs(here) if (q.get("after") or q.get("before")) else None,
        "state_qs": _qs(state.params()), "filter_hidden": base_hidden(view, tab) + [
            (k, v) for k, v in state.params() if k in ("cols", "sort")],
        "columns_hidden": base_hidden(view, tab) + [(k, v) for k, v in state.params(cols=False)],
        "statuses": [(k, lbl, k in state.statuses) for k, lbl in ix.COLUMNS["status"].choices],
        "properties": [(k, c.label) for k, c in ix.COLUMNS.items()],
        "all_cols": all_cols, "choice_lists": {k: c.choices for k, c in ix.COLUMNS.items() if c.kind == "choice"},
        "page_size": len(rows), "chips": _chips(state),
        "open_advanced": any(c.error or not c.complete for c in state.conditions),
    })


def base_hidden(view, tab) -> list[tuple[str, str]]:
    if view:
        return [("view", str(view.pk)), ("x", "1")]
    return [("tab", tab)] if tab != "all" else []


def _chips(state) -> list[str]:
    out = []
    for c in state.conditions:
        if not c.complete or c.error:
            continue
        op = dict(c.operators)[c.op]
        value = ""
        if c.needs_value:
            value = dict(c.column.choices).get(c.value, c.value) if c.kind == "choice" else c.value
        out.append(f"{c.column.label} {op} {value}".strip())
    return out


def _posted_state(request) -> ix.IndexState:
    return ix.IndexState.from_query(QueryDict(request.POST.get("state", "")))


@login_required
@require_POST
def view_add(request):
    form = wf.ViewNameForm(request.POST)
    state = _posted_state(request)
    if form.is_valid():
        try:
            view = web_services.create_view(request.user, form.cleaned_data["name"], state.to_saved())
        except ServiceError as exc:
            messages.error(request, wf.service_message(exc))
        else:
            messages.success(request, _("View “%(name)s” saved.") % {"name": view.name})
            return redirect(reverse("subscription_index") + f"?view={view.pk}")
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect(reverse("subscription_index") + "?" + request.POST.get("state", ""))


@login_required
@require_POST
def view_save(request, pk):
    try:
        view = web_services.get_view(request.user, pk)
        web_services.update_view(request.user, view, state=_posted_state(request).to_saved())
    except NotFound:
        raise Http404 from None
    messages.success(request, _("View “%(name)s” updated.") % {"name": view.name})
    return redirect(reverse("subscription_index") + f"?view={view.pk}")


@login_required
@require_POST
def view_rename(request, pk):
    try:
        view = web_services.get_view(request.user, pk)
    except NotFound:
        raise Http404 from None
    old = view.name
    try:
        view = web_services.update_view(request.user, view, name=request.POST.get("name", ""))
    except ServiceError as exc:
        messages.error(request, wf.service_message(exc))
    else:
        messages.success(request, _("View “%(old)s” is now called “%(name)s”.") % {"old": old, "name": view.name})
    return redirect(reverse("subscription_index") + f"?view={view.pk}")


@login_required
@require_POST
def view_move(request, pk):
    try:
        view = web_services.move_view(request.user, web_services.get_view(request.user, pk),
                                      request.POST.get("direction", ""))
    except NotFound:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, wf.service_message(exc))
        return redirect(reverse("subscription_index") + f"?view={pk}")
    return redirect(reverse("subscription_index") + f"?view={view.pk}")


@login_required
@require_POST
def view_delete(request, pk):
    try:
        view = web_services.get_view(request.user, pk)
        web_services.delete_view(request.user, view)
    except NotFound:
        raise Http404 from None
    messages.success(request, _("View “%(name)s” deleted.") % {"name": view.name})
    return redirect("subscription_index")


# --- the subscription page ------------------------------------------------------------------------


def edit_block_reason(sub: Subscription) -> str:
    """Why the subscription cannot be edited now ("" when it can) — R-MAN-1."""
    if not rules.is_editable(sub.status):
        return _("Only active or scheduled subscriptions can be edited; this one is %(status)s.") % {
            "status": sub.get_status_display().lower()}
    if sub.next_payment_date and (sub.next_payment_date - clock.today()).days <= services.EDIT_FREEZE_DAYS:
        return _("The next payment is on %(date)s: a subscription cannot be edited within %(days)s days of its "
                 "next payment date.") % {"date": formats.date_format(sub.next_payment_date, "DATE_FORMAT"),
                                          "days": services.EDIT_FREEZE_DAYS}
    return ""


def _item_rows(sub):
    out = []
    for it in sub.items.all():
        a = line_amounts(it.unit_price, it.quantity, it.discount_percent, None, it.tax_rate)
        out.append({"item": it, "total": a.total, "tax": a.tax, "discount": a.discount})
    return out


FIELD_LABELS = {f.name: f.verbose_name for f in Subscription._meta.get_fields() if hasattr(f, "verbose_name")}


def _pretty(sub, name, value):
    return shown_value(Subscription, name, value, sub.currency, {"amount", "total_paid"})


def _timeline(sub, payments, invoices, refunds, emails):
    events = []
    for p in payments:
        if p.status == "failed":  # the seller's words for a known failure code, else the processor's
            p.reason = failure_reason(p.attempt.failure_code if p.attempt_id else "", p.failure_message, p.method,
                                      seller=True)
        events.append({"at": p.created_at, "kind": "payment", "obj": p})
    for i in invoices:
        events.append({"at": i.created_at, "kind": "invoice", "obj": i})
    for r in refunds:
        events.append({"at": r.created_at, "kind": "refund", "obj": r})
    for m in emails:
        events.append({"at": m.created_at, "kind": "email", "obj": m})
    for h in records.history("subscription", sub.pk):
        if h.action in ("associated", "dissociated"):
            linked = []
            for rtype, pair in (h.changes or {}).items():
                rid = pair[1] if h.action == "associated" else pair[0]
                try:
                    linked.append(f"{records.model_for(rtype)._meta.verbose_name} {records.get_record(rtype, rid)}")
                except ServiceError:
                    linked.append(f"{rtype} #{rid}")
            events.append({"at": h.at, "kind": "history", "obj": h, "linked": linked})
            continue
        changes = []
        for name, pair in (h.changes or {}).items():
            if name in ("billed_through", "anchor_index"):
                continue
            changes.append({"label": str(FIELD_LABELS.get(name, name)).capitalize(),
                            "old": _pretty(sub, name, pair[0]), "new": _pretty(sub, name, pair[1])})
        events.append({"at": h.at, "kind": "history", "obj": h, "changes": changes})
    events.sort(key=lambda e: e["at"], reverse=True)
    return events[:200]


def detail_context(sub: Subscription) -> dict:
    payments = list(Payment.objects.filter(subscription=sub).select_related("invoice", "attempt").order_by("-pk")[:100])
    invoices = list(Invoice.objects.filter(subscription=sub).order_by("-pk")[:100])
    refunds = list(Refund.objects.filter(payment__subscription=sub).select_related("payment").order_by("-pk")[:100])
    emails = list(OutboxMessage.objects.filter(
        Q(record_type="subscription", record_id=sub.pk)
        | Q(record_type="payment", record_id__in=[p.pk for p in payments])
        | Q(record_type="invoice", record_id__in=[i.pk for i in invoices])).order_by("-pk")[:100])
    for p in payments:
        p.left = billing.refundable(p)
    from recur.web.views.invoices import invoice_pdf_url

    for i in invoices:
        i.pdf = invoice_pdf_url(i)
    try:
        upcoming = services.upcoming(sub, 6)
    except ServiceError:
        upcoming = []
    items = _item_rows(sub)
    show_discount = any(r["item"].discount_percent for r in items)
    show_tax = any(r["item"].tax_rate for r in items)
    return {
        "show_discount": show_discount, "show_tax": show_tax, "item_cols": 3 + show_discount + show_tax,
        "payment_method": wf.method_label(sub.payment_method) if sub.payment_method_id else None,
        "sub": sub, "obj": sub, "items": items, "upcoming": upcoming, "payments": payments,
        "invoices": invoices, "timeline": _timeline(sub, payments, invoices, refunds, emails),
        "contacts": records.associated(sub, "contact"), "companies": records.associated(sub, "company"),
        "deals": records.associated(sub, "deal"), "quotes": records.associated(sub, "quote"),
        "badge": ix.STATUS_BADGES.get(sub.status, "grey"), "edit_block": edit_block_reason(sub),
        "can_pause": sub.status in ("active", "past_due"), "can_resume": sub.status == "paused",
        "can_cancel": not rules.is_terminal(sub.status), "can_delete": rules.is_deletable(sub.status),
        "address": sub.billing_address or {}, "tz": clock.account_zone().key,
        "invoice_page_options": _invoice_page_options(sub),
    }


def _invoice_page_options(sub) -> list[str]:
    """What the buyer's invoice page does for a manually collected subscription (R-NEW-3), in words."""
    methods = {"card": _("Card"), "bank_account": _("Bank debit")}
    out = [str(methods[m]) for m in (sub.accepted_payment_methods or []) if m in methods]
    out += [str(FIELD_LABELS[k]).capitalize() for k in wf.EditForm.COLLECTION_OPTIONS if getattr(sub, k)]
    return out


@login_required
def subscription_detail(request, pk):
    sub = get_subscription(pk)
    return render(request, "web/subscription_detail.html", detail_context(sub))


@login_required
@require_POST
def subscription_pause(request, pk):
    sub = get_subscription(pk)
    try:
        services.pause(request.user, sub)
    except ServiceError as exc:
        messages.error(request, wf.service_message(exc))
    else:
        messages.success(request, _("The subscription is paused; it is not billed until you resume it."))
    return redirect("subscription_detail", pk=sub.pk)


@login_required
@require_POST
def subscription_resume(request, pk):
    sub = get_subscription(pk)
    try:
        sub = services.resume(request.user, sub)
    except ServiceError as exc:
        messages.error(request, wf.service_message(exc))
    else:
        messages.success(request, _("The subscription is resumed."))
    return redirect("subscription_detail", pk=sub.pk)


# --- edit (R-MAN-1) -----------------------------------------------------------------------------------


def _edit_initial(sub):
    addr = sub.billing_address or {}
    init = {"name": sub.name, "next_payment_date": sub.next_payment_date, "contact": sub.contact_id,
            "payment_method": sub.payment_method_id, "payment_terms": sub.payment_terms,
            "accept_online_payments": sub.accept_online_payments,
            "accepted_payment_methods": list(sub.accepted_payment_methods or []),
            **{k: getattr(sub, k) for k in wf.EditForm.COLLECTION_OPTIONS}}
    init.update({k: addr.get(k, "") for k in wf.ADDRESS_FIELDS})
    items = [{"product": it.product_id, "name": it.name, "unit_price": wf.money_text(it.unit_price, sub.currency),
              "quantity": it.quantity, "discount_percent": it.discount_percent.normalize() if it.discount_percent else
              None, "tax_rate": it.tax_rate.normalize() if it.tax_rate else None} for it in sub.items.all()]
    return init, items


def _current_items(sub) -> list[tuple]:
    return [(it.name, it.unit_price, it.quantity, it.discount_percent, it.tax_rate) for it in sub.items.all()]


@login_required
def subscription_edit(request, pk):
    sub = get_subscription(pk)
    block = edit_block_reason(sub)
    if block:
        messages.error(request, block)
        return redirect("subscription_detail", pk=sub.pk)
    products = wf.product_choices()
    init, init_items = _edit_initial(sub)
    data = request.POST if request.method == "POST" else None
    count = len(init_items)
    if data is not None:
        count = max(1, min(int(data.get("items", count) or count), 50)) if str(data.get("items", "")).isdigit() else count
        if "add_item" in data:
            count += 1
    form = wf.EditForm(data, sub=sub, initial=init)
    items = wf.item_forms(data, count, products, init_items)
    preview = None
    new_amount = None
    if data is not None and "add_item" not in data and "search_contact" not in data:
        ok = form.is_valid() & all([f.is_valid() for f in items])
        rows = wf.item_dicts(items, sub.currency) if ok else []
        if ok and not rows:
            form.add_error(None, _("A subscription needs at least one line item."))
            ok = False
        ok = ok and not form.errors and not any(f.errors for f in items)
        change = {}
        if ok:
            d = form.cleaned_data
            raw = [item for _, item in rows]
            new_items = [(it.get("name", ""), it.get("unit_price"), it.get("quantity", 1),
                          it.get("discount_percent") or 0, it.get("tax_rate") or 0) for it in raw]
            if new_items != _current_items(sub):
                change["line_items"] = raw
            if d.get("name") != sub.name:
                change["name"] = d["name"]
            if d.get("next_payment_date") and d["next_payment_date"] != sub.next_payment_date:
                change["next_payment_date"] = d["next_payment_date"]
            if d.get("contact") != sub.contact_id:
                change["contact_id"] = d["contact"]
            if d.get("payment_method") and d["payment_method"] != sub.payment_method_id:
                change["payment_method_id"] = d["payment_method"]
            if sub.collection == "manual" and d.get("payment_terms") and d["payment_terms"] != sub.payment_terms:
                change["payment_terms"] = d["payment_terms"]
            change.update(form.collection_changes(sub))
            if form.address() != {k: v for k, v in (sub.billing_address or {}).items() if v}:
                change["billing_address"] = form.address()
            if "line_items" in change:
                try:
                    cleaned = services.clean_line_items([dict(it, billing_frequency=sub.billing_frequency,
                                                              billing_terms=sub.billing_terms,
                                                              number_of_payments=sub.number_of_payments)
                                                         for it in raw])
                    new_amount = services.period_amount(cleaned)
                    preview = services.change_preview(sub, new_amount)
                except ServiceError as exc:
                    _item_error(form, items, rows, exc)
                    ok = False
        if ok and "save" in data:
            if "line_items" in change and data.get("previewed") != str(new_amount):
                messages.info(request, _("Check the new amount and the proration below, then save."))
            elif not change:
                messages.info(request, _("Nothing was changed."))
                return redirect("subscription_detail", pk=sub.pk)
            else:
                try:
                    sub, applied = services.update_subscription(request.user, sub, change,
                                                                prorate=bool(form.cleaned_data.get("prorate")))
                except ServiceError as exc:
                    if exc.field and exc.field.startswith("line_items"):
                        _item_error(form, items, rows, exc)
                    else:
                        wf.add_service_error(form, exc, wf.EDIT_FIELD_MAP)
                else:
                    messages.success(request, _("The subscription is saved."))
                    return redirect("subscription_detail", pk=sub.pk)
    return render(request, "web/subscription_edit.html", {
        "sub": sub, "form": form, "items": items, "count": count, "preview": preview, "new_amount": new_amount,
        "products": products, "address_fields": [form[k] for k in wf.ADDRESS_FIELDS],
    })


def _item_error(form, items, rows, exc):
    target = wf.item_field_map(rows).get(exc.field or "")
    message = wf.service_message(exc)
    if target:
        row, name = target
        items[row].add_error(name, message)
    else:
        form.add_error(None, message)


# --- cancel (R-MAN-2) ------------------------------------------------------------------------------


def cancel_previews(sub) -> list[dict]:
    out = []
    for mode, label in CANCEL_MODES:
        p = services.cancel_preview(sub, mode)
        out.append({"mode": mode, "label": label, **p})
    return out


@login_required
def subscription_cancel(request, pk):
    sub = get_subscription(pk)
    if rules.is_terminal(sub.status):
        messages.error(request, _("This subscription is %(status)s already.") % {
            "status": sub.get_status_display().lower()})
        return redirect("subscription_detail", pk=sub.pk)
    form = wf.CancelForm(request.POST or None, initial={"mode": "end_of_period"})
    if request.method == "POST" and form.is_valid():
        try:
            sub, refunded = services.cancel(request.user, sub, form.cleaned_data["mode"], True)
        except ServiceError as exc:
            wf.add_service_error(form, exc, {"cancel_at": "mode", "status": "mode"})
        else:
            if refunded:
                messages.success(request, _("The subscription is canceled and %(amount)s is refunded.") % {
                    "amount": money(refunded, sub.currency)})
            elif sub.cancel_at:
                messages.success(request, _("The subscription ends at the end of the current period."))
            else:
                messages.success(request, _("The subscription is canceled."))
            return redirect("subscription_detail", pk=sub.pk)
    return render(request, "web/subscription_cancel.html", {
        "sub": sub, "form": form, "previews": cancel_previews(sub),
        "chosen": form["mode"].value() or "end_of_period"})


# --- refund a payment (R-MAN-5) ----------------------------------------------------------------------


@login_required
def payment_refund(request, pk, payment_pk):
    sub = get_subscription(pk)
    payment = get_object_or_404(Payment, pk=payment_pk, subscription=sub)
    return refund_page(request, payment, back=reverse("subscription_detail", args=[sub.pk]), paid_for=sub.name)


# --- delete (R-MAN-4) and the CSV export of one subscription -------------------------------------------


@login_required
def subscription_delete(request, pk):
    sub = get_subscription(pk)
    if request.method == "POST":
        try:
            services.delete_subscription(request.user, sub)
        except ServiceError as exc:
            messages.error(request, wf.service_message(exc))
            return redirect("subscription_detail", pk=sub.pk)
        messages.success(request, _("Subscription “%(name)s” is deleted.") % {"name": sub.name})
        return redirect("subscription_index")
    if not rules.is_deletable(sub.status):
        messages.error(request, _("Only canceled or expired subscriptions can be deleted. Cancel it first."))
        return redirect("subscription_detail", pk=sub.pk)
    return render(request, "web/subscription_delete.html", {"sub": sub})


@login_required
def subscription_export(request, pk):
    """This subscription's properties, line items, invoices and payments as one CSV file."""
    sub = get_subscription(pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="subscription-{sub.pk}.csv"'
    response.write("\ufeff")
    w = csv.writer(response)

    def safe(v):
        v = "" if v is None else str(v)
        return "'" + v if v[:1] in ("=", "+", "-", "@") else v

    w.writerow([_("Section"), _("Field"), _("Value")])
    props = [("Record ID", sub.pk), ("name", sub.name), ("status", sub.status), ("collection", sub.collection),
             ("billing_frequency", sub.billing_frequency), ("billing_terms", sub.billing_terms),
             ("number_of_payments", sub.number_of_payments), ("start_date", sub.start_date),
             ("end_date", sub.end_date), ("next_payment_date", sub.next_payment_date),
             ("last_payment_date", sub.last_payment_date), ("payments_made", sub.payments_made),
             ("amount", format_amount(sub.amount, sub.currency)), ("total_paid", format_amount(sub.total_paid,
                                                                                                 sub.currency)),
             ("currency", sub.currency), ("payment_terms", sub.payment_terms), ("contact_id", sub.contact_id),
             ("contact", sub.contact.name), ("company_id", sub.company_id),
             ("company", sub.company.name if sub.company_id else ""), ("owner", sub.owner or ""),
             ("created_at", sub.created_at.isoformat()), ("updated_at", sub.updated_at.isoformat()),
             ("canceled_at", sub.canceled_at.isoformat() if sub.canceled_at else ""), ("cancel_mode", sub.cancel_mode)]
    for k, v in props:
        w.writerow(["subscription", k, safe(v)])
    for it in sub.items.all():
        w.writerow(["line_item", safe(it.name), f"{it.quantity} × {format_amount(it.unit_price, sub.currency)} "
                    f"(-{it.discount_percent}%, +{it.tax_rate}% tax)"])
    for inv in Invoice.objects.filter(subscription=sub).order_by("pk"):
        w.writerow(["invoice", inv.number, f"{inv.status} {inv.issue_date} {format_amount(inv.total, inv.currency)}"])
    for p in Payment.objects.filter(subscription=sub).order_by("pk"):
        w.writerow(["payment", p.pk, f"{p.status} {p.paid_on} {format_amount(p.amount, p.currency)} refunded "
                    f"{format_amount(p.refunded_amount, p.currency)}"])
    for t, i, label in records.associated_ids("subscription", sub.pk):
        w.writerow(["association", t, f"{i}{' (' + label + ')' if label else ''}"])
    return response


# --- update-payment-method link (R-BILL-5) -------------------------------------------------------------


@login_required
@require_POST
def update_link(request, pk):
    from recur.checkout.links import UPDATE_PM_MAX_AGE, update_payment_method_url
    from django.conf import settings

    sub = get_subscription(pk)
    days = int(getattr(settings, "RECUR_UPDATE_LINK_MAX_AGE", UPDATE_PM_MAX_AGE) // 86400)
    return render(request, "web/subscription_link.html", {
        "sub": sub, "url": update_payment_method_url(sub), "days": days,
        "expires": clock.today() + dt.timedelta(days=days)})
