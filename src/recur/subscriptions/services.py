"""State changes of subscriptions (R-NEW-3, R-MAN-1..5, R-SIGN-4, R-SIGN-6, R-SIGN-7).

Every function is one transaction; bad input raises ``ValidationFailed``
naming the field and changes nothing. Billing itself is in
``recur.billing.engine``; refunds in ``recur.billing.services``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction

from recur.billing import proration
from recur.core import clock, records
from recur.core.errors import Conflict, ValidationFailed
from recur.core.money import line_amounts
from recur.crm import quotes
from recur.crm.models import Company, Contact, Deal, Quote
from recur.subscriptions import grouping, schedule
from recur.subscriptions import status as rules
from recur.subscriptions.models import PAYMENT_TERM_DAYS, Subscription, SubscriptionItem

EDIT_FREEZE_DAYS = 2  # no edits within two days of the next payment date (R-MAN-1)


def max_backdate_days() -> int:
    return int(getattr(settings, "RECUR_MAX_BACKDATE_DAYS", 31))


# --- line items ------------------------------------------------------------------------


def _clean_item(raw: dict, i: int) -> dict:
    """Validate one subscription line item: a line item (crm.quotes) that must recur."""
    f = f"line_items[{i}]"
    item = quotes.clean_line_item(raw, i)
    if not item.get("billing_frequency"):
        raise ValidationFailed(f"{f}.billing_frequency: a subscription line item needs a billing frequency "
                               f"(one of {', '.join(schedule.FREQUENCIES)})", field=f"{f}.billing_frequency")
    try:
        key = grouping.grouping_key(item)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise ValidationFailed(f"{f}.{exc}", field=f"{f}.{field}") from None
    item["billing_terms"], item["number_of_payments"], item["_key"] = key[1], key[5], key
    return item


def clean_line_items(raw_items: list[dict]) -> list[dict]:
    """Validate the items of ONE subscription: they must share the R-SIGN-4 key and a currency."""
    if not raw_items:
        raise ValidationFailed("line_items: a subscription needs at least one line item", field="line_items")
    items = [_clean_item(r, i) for i, r in enumerate(raw_items)]
    for i, item in enumerate(items[1:], start=1):
        if item["_key"] != items[0]["_key"]:
            raise ValidationFailed(
                f"line_items[{i}]: billing frequency, terms, start date and number of payments must equal those "
                "of line_items[0]; items that differ belong to separate subscriptions", field=f"line_items[{i}]")
        if item["currency"] != items[0]["currency"]:
            raise ValidationFailed(f"line_items[{i}].unit_price.currency: all line items must be in "
                                   f"{items[0]['currency']}", field=f"line_items[{i}].unit_price.currency")
    return items


def period_amount(items) -> int:
    total = 0
    for it in items:
        get = it.get if isinstance(it, dict) else (lambda n, o=it: getattr(o, n))
        total += line_amounts(get("unit_price"), get("quantity"), get("discount_percent"), None, get("tax_rate")).total
    return total


def _item_rows(sub: Subscription, items: list[dict]) -> list[SubscriptionItem]:
    return [
        SubscriptionItem(subscription=sub, position=pos, product_id=it.get("product_id"), name=it["name"].strip(),
                         quantity=it.get("quantity", 1), unit_price=it["unit_price"],
                         discount_percent=it["discount_percent"], tax_rate=it["tax_rate"])
        for pos, it in enumerate(items)
    ]


def _start_from(item: dict, today: dt.date, allow_backdate: bool) -> dt.date:
    freq, terms, fixed, delay_days, delay_months, n = item["_key"]
    if fixed is not None and fixed < today:
        if not allow_backdate or (today - fixed).days > max_backdate_days():
            raise ValidationFailed(
                f"line_items[0].billing_start_date: {fixed} is in the past; at most {max_backdate_days()} days "
                "of back-dating are allowed", field="line_items[0].billing_start_date")
        return fixed
    return schedule.start_date(today, fixed, delay_days, delay_months)


# --- create ------------------------------------------------------------------------------------


def _get(model, pk, field):
    if pk is None:
        return None
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise ValidationFailed(f"{field}: no {model._meta.verbose_name} with id {pk}", field=field)
    return obj


COLLECTION_OPTIONS = ("collect_billing_address", "collect_shipping_address", "save_payment_method")


@transaction.atomic
def create_subscription(actor, data: dict[str, Any], *, allow_backdate: bool = True) -> Subscription:
    """Create a subscription "Immediately" (R-NEW-3). ``data``: contact_id (required), company_id,
    collection, payment_method_id, payment_terms, accept_online_payments, accepted_payment_methods,
    collect_billing_address, collect_shipping_address, save_payment_method (booleans: what the hosted
    invoice page of a manually collected invoice asks for and keeps), billing_address, shipping_address, name, line_items (minor units), deal_ids, quote_id, owner_id."""
    contact = _get(Contact, data.get("contact_id"), "contact_id")
    if contact is None:
        raise ValidationFailed("contact_id: a subscription needs a billing contact", field="contact_id")
    company = _get(Company, data.get("company_id"), "company_id")
    quote = _get(Quote, data.get("quote_id"), "quote_id")
    deals = [_get(Deal, d, "deal_ids") for d in data.get("deal_ids") or []]
    items = clean_line_items(data.get("line_items") or [])
    collection = data.get("collection") or "auto_charge"
    if collection not in ("auto_charge", "manual"):
        raise ValidationFailed("collection: must be auto_charge or manual", field="collection")
    payment_method = None
    if collection == "auto_charge":
        from recur.payments.models import PaymentMethod

        pm_id = data.get("payment_method_id")
        if pm_id is None:
            raise ValidationFailed("payment_method_id: automatic collection needs a saved payment method of the "
                                   "billing contact", field="payment_method_id")
        payment_method = PaymentMethod.objects.filter(pk=pm_id, contact=contact, removed_at__isnull=True).first()
        if payment_method is None:
            raise ValidationFailed(f"payment_method_id: no saved payment method {pm_id} for this contact",
                                   field="payment_method_id")
    terms = data.get("payment_terms") or "due_on_receipt"
    if terms not in PAYMENT_TERM_DAYS:
        raise ValidationFailed(f"payment_terms: must be one of {', '.join(PAYMENT_TERM_DAYS)}", field="payment_terms")
    methods = data.get("accepted_payment_methods") or ["card", "bank_account"]
    if any(m not in ("card", "bank_account") for m in methods):
        raise ValidationFailed("accepted_payment_methods: each must be card or bank_account",
                               field="accepted_payment_methods")

    today = clock.today()
    first = items[0]
    start = _start_from(first, today, allow_backdate)
    n = first["number_of_payments"]
    freq = first["billing_frequency"]
    name = (data.get("name") or "").strip() or (
        first["name"] + (f" + {len(items) - 1}" if len(items) > 1 else "")
    )
    sub = records.create(Subscription, actor, {
        "name": name[:200], "status": "scheduled" if start > today else "active", "collection": collection,
        "billing_frequency": freq, "billing_terms": first["billing_terms"], "number_of_payments": n,
        "start_date": start, "end_date": schedule.end_date(start, freq, n) if n else None,
        "next_payment_date": start, "amount": period_amount(items), "currency": first["currency"],
        "payment_terms": terms, "accept_online_payments": bool(data.get("accept_online_payments", True)),
        "accepted_payment_methods": methods,
        **{k: bool(data.get(k, False)) for k in COLLECTION_OPTIONS},
        "contact": contact, "company": company, "quote": quote,
        "payment_method": payment_method, "billing_address": data.get("billing_address") or {},
        "shipping_address": data.get("shipping_address") or {},
        "owner_id": data.get("owner_id") or getattr(actor, "pk", None),
    })
    SubscriptionItem.objects.bulk_create(_item_rows(sub, items))
    records.associate(actor, sub, contact, "billing_contact")
    for other in [company, quote, *deals]:
        if other is not None:
            records.associate(actor, sub, other)
    return sub


# --- schedule preview ------------------------------------------------------------------------------


def upcoming(sub: Subscription, count: int) -> list[dict]:
    """The next ``count`` periods, from the same schedule code as the billing run."""
    if not 1 <= count <= 120:
        raise ValidationFailed("count: must be between 1 and 120", field="count")
    if rules.is_terminal(sub.status) or sub.next_payment_date is None:
        return []
    n = sub.fixed_payments
    out = []
    k = sub.billed_through + 1
    while len(out) < count and (n is None or k < n):
        start, end = sub.period(k)
        if sub.cancel_at and start >= sub.cancel_at:
            break
        out.append({"period_index": k, "period_start": start, "period_end": end, "payment_date": start,
                    "amount": sub.amount, "currency": sub.currency})
        k += 1
    return out


# --- manage ----------------------------------------------------------------------------------------


def _locked(sub: Subscription) -> Subscription:
    return Subscription.objects.select_for_update().get(pk=sub.pk)


def _transition(sub: Subscription, event: str) -> str:
    try:
        return rules.transition(sub.status, event).value
    except rules.InvalidTransition as exc:
        raise Conflict(str(exc), field="status", code="invalid_status") from None


def current_period(sub: Subscription, on: dt.date | None = None) -> tuple[int, dt.date, dt.date] | None:
    on = on or clock.today()
    if on < sub.start_date:
        return None
    k = sub.index_for(on)
    start, end = sub.period(k)
    return k, start, end


@transaction.atomic
def update_subscription(actor, sub: Subscription, data: dict[str, Any], *, prorate: bool = False):
    """Edit (R-MAN-1): only Active or Scheduled, and not within two days of the next payment date.
    Returns (subscription, proration preview or None)."""
    sub = _locked(sub)
    if not rules.is_editable(sub.status):
        raise Conflict(f"status: only active or scheduled subscriptions can be edited, this one is {sub.status}",
                       field="status", code="not_editable")
    today = clock.today()
    if sub.next_payment_date and (sub.next_payment_date - today).days <= EDIT_FREEZE_DAYS:
        raise Conflict(f"next_payment_date: the next payment is on {sub.next_payment_date}; a subscription cannot "
                       f"be edited within {EDIT_FREEZE_DAYS} days of its next payment date", field="next_payment_date",
                       code="edit_window_closed")
    changes: dict[str, Any] = {}
    preview = None
    if "line_items" in data:
        raw = [dict(it, billing_frequency=it.get("billing_frequency") or sub.billing_frequency,
                    billing_terms=it.get("billing_terms") or sub.billing_terms,
                    number_of_payments=it.get("number_of_payments", sub.number_of_payments)) for it in data["line_items"]]
        items = clean_line_items(raw)
        if items[0]["currency"] != sub.currency:
            raise ValidationFailed(f"line_items[0].unit_price.currency: must stay {sub.currency}",
                                   field="line_items[0].unit_price.currency")
        if items[0]["billing_frequency"] != sub.billing_frequency:
            raise ValidationFailed("line_items[0].billing_frequency: the billing frequency cannot change; cancel and "
                                   "create a new subscription instead", field="line_items[0].billing_frequency")
        new_amount = period_amount(items)
        preview = change_preview(sub, new_amount)
        SubscriptionItem.objects.filter(subscription=sub).delete()
        SubscriptionItem.objects.bulk_create(_item_rows(sub, items))
        changes["amount"] = new_amount
    if "next_payment_date" in data:
        new = data["next_payment_date"]
        if new is None or new <= today + dt.timedelta(days=EDIT_FREEZE_DAYS):
            raise ValidationFailed(f"next_payment_date: must be more than {EDIT_FREEZE_DAYS} days from today",
                                   field="next_payment_date")
        # Re-anchor the schedule: the next period (billed_through + 1) now starts on the new date.
        changes.update(start_date=new, anchor_index=sub.billed_through + 1, next_payment_date=new)
    if "payment_method_id" in data:
        from recur.payments.models import PaymentMethod

        pm = PaymentMethod.objects.filter(pk=data["payment_method_id"], contact_id=sub.contact_id,
                                          removed_at__isnull=True).first()
        if pm is None:
            raise ValidationFailed(f"payment_method_id: no saved payment method {data['payment_method_id']} for the "
                                   "billing contact", field="payment_method_id")
        changes["payment_method"] = pm
    if "contact_id" in data:
        contact = _get(Contact, data["contact_id"], "contact_id")
        if contact is None:
            raise ValidationFailed("contact_id: a subscription needs a billing contact", field="contact_id")
        changes["contact"] = contact
    for name in ("billing_address", "name", "owner_id", "payment_terms", "accept_online_payments"):
        if name in data:
            changes[name] = data[name]
    if "payment_terms" in changes and changes["payment_terms"] not in PAYMENT_TERM_DAYS:
        raise ValidationFailed(f"payment_terms: must be one of {', '.join(PAYMENT_TERM_DAYS)}", field="payment_terms")
    sub = records.update(sub, actor, changes)
    if sub.end_date != sub.compute_end_date():
        sub = records.update(sub, actor, {"end_date": sub.compute_end_date()})
    if "contact" in changes:
        records.associate(actor, sub, changes["contact"], "billing_contact")
    if prorate and preview and preview.net:
        from recur.billing import services as billing

        billing.apply_proration(actor, sub, preview)
    return sub, preview


def change_preview(sub: Subscription, new_amount: int):
    """What a mid-period change of amount means for the current period (shown before saving)."""
    current = current_period(sub)
    if current is None or sub.billed_through < current[0]:
        return None
    _, start, end = current
    return proration.prorate_change(sub.amount, new_amount, start, end, clock.today(), sub.currency)


@transaction.atomic
def pause(actor, sub: Subscription) -> Subscription:
    sub = _locked(sub)
    new = _transition(sub, "pause")
    return records.update(sub, actor, {"status": new, "paused_at": clock.now(), "next_payment_date": None})


@transaction.atomic
def resume(actor, sub: Subscription) -> Subscription:
    """Billing goes on from the first period that starts on or after today; paused periods are not billed."""
    sub = _locked(sub)
    new = _transition(sub, "resume")
    today = clock.today()
    n = sub.fixed_payments
    k = sub.billed_through + 1
    if today > sub.start_date:
        k = max(k, sub.index_for(today - dt.timedelta(days=1)) + 1)
    if n is not None and k >= n:
        changes = {"status": "expired", "next_payment_date": None}
    else:
        changes = {"status": new, "billed_through": k - 1, "next_payment_date": sub.period_start(k)}
    changes["paused_at"] = None
    return records.update(sub, actor, changes)


def cancel_preview(sub: Subscription, mode: str) -> dict:
    """The figures a seller sees before confirming a cancellation (R-MAN-2)."""
    from recur.billing.models import Payment

    out = {"mode": mode, "refund": 0, "currency": sub.currency, "unused_days": 0, "period_days": 0,
           "amount_paid": 0, "period_start": None, "period_end": None, "cancels_on": clock.today()}
    current = current_period(sub)
    if current is None:
        return out
    k, start, end = current
    out.update(period_start=start, period_end=end)
    if mode == "end_of_period":
        out["cancels_on"] = end
    if mode != "refund_unused" or sub.billed_through < k:
        return out
    paid = sum(p.amount - p.refunded_amount for p in Payment.objects.filter(
        subscription=sub, period_start=start, status__in=("succeeded", "partially_refunded")))
    r = proration.unused_days_refund(paid, start, end, clock.today(), sub.currency)
    out.update(refund=r.amount, unused_days=r.unused_days, period_days=r.period_days, amount_paid=paid)
    return out


@transaction.atomic
def cancel(actor, sub: Subscription, mode: str, confirm: bool) -> tuple[Subscription, int]:
    """Cancel (R-MAN-2). Returns (subscription, refunded minor units). A pending bank debit is left as it is."""
    if mode not in ("immediately", "end_of_period", "refund_unused"):
        raise ValidationFailed("mode: must be immediately, end_of_period or refund_unused", field="mode")
    if confirm is not True:
        raise ValidationFailed("confirm: tick \"I understand the customer will not be charged again\" (confirm: true)",
                               field="confirm")
    sub = _locked(sub)
    if rules.is_terminal(sub.status):
        raise Conflict(f"status: the subscription is {sub.status} already", field="status", code="invalid_status")
    if sub.cancel_at and mode == "end_of_period":
        raise Conflict(f"cancel_at: the subscription is already set to cancel on {sub.cancel_at}", field="cancel_at",
                       code="already_canceling")
    now = clock.now()
    preview = cancel_preview(sub, mode)
    refunded = 0
    if mode == "end_of_period" and preview["period_end"] and sub.status != "scheduled":
        sub = records.update(sub, actor, {"cancel_at": preview["period_end"], "cancel_mode": mode})
        nxt = sub.next_payment_date
        if nxt and nxt >= sub.cancel_at:
            Subscription.objects.filter(pk=sub.pk).update(next_payment_date=None)
            sub.next_payment_date = None
    else:
        new = _transition(sub, "cancel")
        sub = records.update(sub, actor, {"status": new, "canceled_at": now, "cancel_mode": mode,
                                          "next_payment_date": None})
        if mode == "refund_unused" and preview["refund"] > 0:
            from recur.billing import services as billing

            refunded = billing.refund_period(actor, sub, preview["period_start"], preview["refund"],
                                             reason="Unused days after cancellation")
    from recur.billing.models import BillingCycle

    if sub.status == "canceled":
        BillingCycle.objects.filter(subscription=sub, next_retry_on__isnull=False).update(next_retry_on=None)
    from recur.notifications import services as outbox

    c = sub.contact
    if c.email:
        outbox.queue_email("subscription_canceled", c.email, to_name=c.name, language=c.language,
                           record=("subscription", sub.pk), dedupe_key=f"canceled:{sub.pk}",
                           context={"subscription_name": sub.name, "mode": mode, "canceled_on": clock.today(),
                                    "ends_on": sub.cancel_at or clock.today(),
                                    "refund": outbox.money(refunded, sub.currency) if refunded else None})
    return sub, refunded


@transaction.atomic
def delete_subscription(actor, sub: Subscription) -> None:
    """Permanent; only canceled or expired subscriptions (R-MAN-4)."""
    sub = _locked(sub)
    if not rules.is_deletable(sub.status):
        raise Conflict(f"status: only canceled or expired subscriptions can be deleted; this one is {sub.status}",
                       field="status", code="not_deletable")
    records.delete(sub, actor)
