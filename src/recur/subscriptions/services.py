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
from django.utils.translation import gettext as _

from recur.billing import proration
from recur.core import account, clock, records
from recur.core.errors import Conflict, ValidationFailed, shown_date
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
        raise ValidationFailed(_("%(field)s: a subscription line item needs a billing frequency (one of %(choices)s)")
                               % {"field": f"{f}.billing_frequency", "choices": ", ".join(schedule.FREQUENCIES)},
                               field=f"{f}.billing_frequency")
    try:
        key = grouping.grouping_key(item)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise ValidationFailed(grouping_message(exc, item, f), field=f"{f}.{field}") from None
    item["billing_terms"], item["number_of_payments"], item["_key"] = key[1], key[5], key
    return item


def split_error(exc: ValueError, items: list[dict]) -> ValidationFailed:
    """The error of ``grouping.split_recurring(items)`` naming the first recurring item whose R-SIGN-4
    key cannot be computed, as ``line_items.<field>``."""
    def fails(item: dict) -> bool:
        try:
            grouping.grouping_key(item)
        except ValueError:
            return True
        return False

    field = str(exc).split(":", 1)[0]
    bad = next((it for it in items if grouping.is_recurring(it) and fails(it)), {})
    return ValidationFailed(grouping_message(exc, bad, "line_items"), field=f"line_items.{field}")


def grouping_message(exc: ValueError, item: dict, prefix: str) -> str:
    """The message of a ``grouping.grouping_key`` error (pure code, English) in the active language,
    behind ``<prefix>.<field>: `` as before."""
    field = str(exc).split(":", 1)[0]
    value = item.get(field)
    args = {"field": f"{prefix}.{field}", "value": repr(value)}
    if field == "billing_start_date" and "not both" in str(exc):
        return _("%(field)s: give either a start date or a start delay, not both.") % args
    if field == "billing_start_date":
        if isinstance(value, str):
            return _("%(field)s: %(value)s is not a date (YYYY-MM-DD).") % args
        return _("%(field)s: %(value)s is not a date.") % args
    if field in ("billing_start_delay_days", "billing_start_delay_months"):
        return _("%(field)s: must be a whole number of at least 0, not %(value)s.") % args
    if field == "number_of_payments":
        return _("%(field)s: a fixed term needs at least 1 payment, not %(value)s.") % args
    if field == "billing_terms":
        return _("%(field)s: unknown value %(value)s; expected auto_renew or fixed.") % args
    if field == "billing_frequency" and value:
        return _("%(field)s: unknown value %(value)s; expected one of %(choices)s.") % {
            **args, "choices": ", ".join(schedule.FREQUENCIES)}
    if field == "billing_frequency":
        return _("%(field)s: a one-time line item has no subscription grouping key.") % args
    return f"{prefix}.{exc}"


def clean_line_items(raw_items: list[dict]) -> list[dict]:
    """Validate the items of ONE subscription: they must share the R-SIGN-4 key and a currency."""
    if not raw_items:
        raise ValidationFailed(_("line_items: a subscription needs at least one line item"), field="line_items")
    items = [_clean_item(r, i) for i, r in enumerate(raw_items)]
    for i, item in enumerate(items[1:], start=1):
        if item["_key"] != items[0]["_key"]:
            raise ValidationFailed(
                _("%(field)s: billing frequency, terms, start date and number of payments must equal those of "
                  "%(first)s; items that differ belong to separate subscriptions")
                % {"field": f"line_items[{i}]", "first": "line_items[0]"}, field=f"line_items[{i}]")
        if item["currency"] != items[0]["currency"]:
            raise ValidationFailed(_("%(field)s: all line items must be in %(currency)s")
                                   % {"field": f"line_items[{i}].unit_price.currency", "currency": items[0]["currency"]},
                                   field=f"line_items[{i}].unit_price.currency")
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
        if not allow_backdate:  # a conversion of a deal or quote whose start date has passed
            raise ValidationFailed(_("%(field)s: the billing start date %(date)s is in the past")
                                   % {"field": "line_items[0].billing_start_date", "date": shown_date(fixed)},
                                   field="line_items[0].billing_start_date")
        if (today - fixed).days > max_backdate_days():
            raise ValidationFailed(
                _("%(field)s: %(date)s is in the past; at most %(days)s days of back-dating are allowed")
                % {"field": "line_items[0].billing_start_date", "date": shown_date(fixed), "days": max_backdate_days()},
                field="line_items[0].billing_start_date")
        return fixed
    return schedule.start_date(today, fixed, delay_days, delay_months)


# --- create ------------------------------------------------------------------------------------


def _get(model, pk, field):
    if pk is None:
        return None
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        raise ValidationFailed(_("%(field)s: no %(type)s with id %(id)s")
                               % {"field": field, "type": model._meta.verbose_name, "id": pk}, field=field)
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
        raise ValidationFailed(_("contact_id: a subscription needs a billing contact"), field="contact_id")
    company = _get(Company, data.get("company_id"), "company_id")
    quote = _get(Quote, data.get("quote_id"), "quote_id")
    deals = [_get(Deal, d, "deal_ids") for d in data.get("deal_ids") or []]
    items = clean_line_items(data.get("line_items") or [])
    collection = data.get("collection") or "auto_charge"
    if collection not in ("auto_charge", "manual"):
        raise ValidationFailed(_("collection: must be auto_charge or manual"), field="collection")
    payment_method = None
    if collection == "auto_charge":
        from recur.payments.models import PaymentMethod

        pm_id = data.get("payment_method_id")
        if pm_id is None:
            raise ValidationFailed(_("payment_method_id: automatic collection needs a saved payment method of the "
                                     "billing contact"), field="payment_method_id")
        payment_method = PaymentMethod.objects.filter(pk=pm_id, contact=contact, removed_at__isnull=True).first()
        if payment_method is None:
            raise ValidationFailed(_("payment_method_id: no saved payment method %(id)s for this contact")
                                   % {"id": pm_id}, field="payment_method_id")
    terms = data.get("payment_terms") or "due_on_receipt"
    if terms not in PAYMENT_TERM_DAYS:
        raise ValidationFailed(_("payment_terms: must be one of %(choices)s") % {"choices": ", ".join(PAYMENT_TERM_DAYS)},
                               field="payment_terms")
    methods = data.get("accepted_payment_methods") or account.default_payment_methods()
    if any(m not in ("card", "bank_account") for m in methods):
        raise ValidationFailed(_("accepted_payment_methods: each must be card or bank_account"),
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
    if data.get("associate_billing_contact", True):  # conversions follow the account setting (R-SIGN-2)
        records.associate(actor, sub, contact, "billing_contact")
    for other in [company, quote, *deals]:
        if other is not None:
            records.associate(actor, sub, other)
    return sub


# --- schedule preview ------------------------------------------------------------------------------


def upcoming(sub: Subscription, count: int) -> list[dict]:
    """The next ``count`` periods, from the same schedule code as the billing run."""
    if not 1 <= count <= 120:
        raise ValidationFailed(_("count: must be between 1 and 120"), field="count")
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
        raise Conflict(transition_message(exc), field="status", code="invalid_status") from None


def transition_message(exc: rules.InvalidTransition) -> str:
    """An ``InvalidTransition`` (pure code, English) of pause, resume or cancel in the active language;
    in English word for word the rules' own message."""
    status = dict(Subscription._meta.get_field("status").choices).get(exc.status, exc.status)
    final = rules.is_terminal(exc.status)
    args = {"status": status}
    if exc.event == "pause":
        if final:
            return _("Cannot pause the subscription: it is %(status)s, which is final. This is possible only when "
                     "it is Active or Unpaid.") % args
        return _("Cannot pause the subscription: it is %(status)s. This is possible only when it is Active or "
                 "Unpaid.") % args
    if exc.event == "resume":
        if final:
            return _("Cannot resume the subscription: it is %(status)s, which is final. This is possible only when "
                     "it is Paused.") % args
        return _("Cannot resume the subscription: it is %(status)s. This is possible only when it is Paused.") % args
    if exc.event == "cancel":
        return _("Cannot cancel the subscription: it is %(status)s, which is final. This is possible only when it "
                 "is Active or Paused or Scheduled or Unpaid.") % args
    return str(exc)


def _status_word(obj) -> str:
    """A record's status label in the active language, lower case, for inside a sentence."""
    return str(obj.get_status_display()).lower()


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
        raise Conflict(_("status: only active or scheduled subscriptions can be edited, this one is %(status)s")
                       % {"status": _status_word(sub)}, field="status", code="not_editable")
    today = clock.today()
    if sub.next_payment_date and (sub.next_payment_date - today).days <= EDIT_FREEZE_DAYS:
        raise Conflict(_("next_payment_date: the next payment is on %(date)s; a subscription cannot be edited "
                         "within %(days)s days of its next payment date")
                       % {"date": shown_date(sub.next_payment_date), "days": EDIT_FREEZE_DAYS},
                       field="next_payment_date", code="edit_window_closed")
    changes: dict[str, Any] = {}
    preview = None
    if "line_items" in data:
        raw = [dict(it, billing_frequency=it.get("billing_frequency") or sub.billing_frequency,
                    billing_terms=it.get("billing_terms") or sub.billing_terms,
                    number_of_payments=it.get("number_of_payments", sub.number_of_payments)) for it in data["line_items"]]
        items = clean_line_items(raw)
        if items[0]["currency"] != sub.currency:
            raise ValidationFailed(_("%(field)s: must stay %(currency)s")
                                   % {"field": "line_items[0].unit_price.currency", "currency": sub.currency},
                                   field="line_items[0].unit_price.currency")
        if items[0]["billing_frequency"] != sub.billing_frequency:
            raise ValidationFailed(_("%(field)s: the billing frequency cannot change; cancel and create a new "
                                     "subscription instead") % {"field": "line_items[0].billing_frequency"},
                                   field="line_items[0].billing_frequency")
        new_amount = period_amount(items)
        preview = change_preview(sub, new_amount)
        SubscriptionItem.objects.filter(subscription=sub).delete()
        SubscriptionItem.objects.bulk_create(_item_rows(sub, items))
        changes["amount"] = new_amount
    if "next_payment_date" in data:
        new = data["next_payment_date"]
        if new is None or new <= today + dt.timedelta(days=EDIT_FREEZE_DAYS):
            raise ValidationFailed(_("next_payment_date: must be more than %(days)s days from today")
                                   % {"days": EDIT_FREEZE_DAYS}, field="next_payment_date")
        # Re-anchor the schedule: the next period (billed_through + 1) now starts on the new date.
        changes.update(start_date=new, anchor_index=sub.billed_through + 1, next_payment_date=new)
    if "payment_method_id" in data:
        from recur.payments.models import PaymentMethod

        pm = PaymentMethod.objects.filter(pk=data["payment_method_id"], contact_id=sub.contact_id,
                                          removed_at__isnull=True).first()
        if pm is None:
            raise ValidationFailed(_("payment_method_id: no saved payment method %(id)s for the billing contact")
                                   % {"id": data["payment_method_id"]}, field="payment_method_id")
        changes["payment_method"] = pm
    if "contact_id" in data:
        contact = _get(Contact, data["contact_id"], "contact_id")
        if contact is None:
            raise ValidationFailed(_("contact_id: a subscription needs a billing contact"), field="contact_id")
        changes["contact"] = contact
    for name in ("billing_address", "name", "owner_id", "payment_terms"):
        if name in data:
            changes[name] = data[name]
    for name in ("accept_online_payments", *COLLECTION_OPTIONS):  # how the hosted invoice page takes payment
        if name in data:
            changes[name] = bool(data[name])
    if "accepted_payment_methods" in data:
        methods = data["accepted_payment_methods"]
        if not isinstance(methods, list) or not methods or any(m not in ("card", "bank_account") for m in methods):
            raise ValidationFailed("accepted_payment_methods: one or both of card and bank_account",
                                   field="accepted_payment_methods")
        changes["accepted_payment_methods"] = list(dict.fromkeys(methods))
    if "payment_terms" in changes and changes["payment_terms"] not in PAYMENT_TERM_DAYS:
        raise ValidationFailed(_("payment_terms: must be one of %(choices)s") % {"choices": ", ".join(PAYMENT_TERM_DAYS)},
                               field="payment_terms")
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
           "amount_paid": 0, "period_start": None, "period_end": None, "cancels_on": clock.today(),
           "open_due": open_invoices_due(sub)}
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


def open_invoices_due(sub: Subscription) -> int:
    """What the subscription's open invoices still ask for (minor units): a cancellation leaves them
    due; the seller voids one that should not be paid."""
    from recur.billing.models import Invoice

    return sum(i.amount_due for i in Invoice.objects.filter(subscription=sub, status="open").only(
        "status", "total", "amount_paid"))


@transaction.atomic
def cancel(actor, sub: Subscription, mode: str, confirm: bool) -> tuple[Subscription, int]:
    """Cancel (R-MAN-2). Returns (subscription, refunded minor units). A pending bank debit is left as it is."""
    if mode not in ("immediately", "end_of_period", "refund_unused"):
        raise ValidationFailed(_("mode: must be immediately, end_of_period or refund_unused"), field="mode")
    if confirm is not True:
        raise ValidationFailed(_("confirm: tick \"I understand the customer will not be charged again\" "
                                 "(confirm: true)"), field="confirm")
    sub = _locked(sub)
    if rules.is_terminal(sub.status):
        raise Conflict(_("status: the subscription is %(status)s already") % {"status": _status_word(sub)},
                       field="status", code="invalid_status")
    if sub.cancel_at and mode == "end_of_period":
        raise Conflict(_("cancel_at: the subscription is already set to cancel on %(date)s")
                       % {"date": shown_date(sub.cancel_at)}, field="cancel_at", code="already_canceling")
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
                           # one per mode: an end-of-period notice may be followed by a cancellation at once
                           record=("subscription", sub.pk), dedupe_key=f"canceled:{sub.pk}:{mode}",
                           context={"subscription_name": sub.name, "mode": mode, "canceled_on": clock.today(),
                                    "ends_on": sub.ends_on() or clock.today(),
                                    "refund": outbox.money(refunded, sub.currency) if refunded else None,
                                    "open_due": outbox.money(preview["open_due"], sub.currency)
                                    if preview["open_due"] else None})
    return sub, refunded


@transaction.atomic
def delete_subscription(actor, sub: Subscription) -> None:
    """Permanent; only canceled or expired subscriptions (R-MAN-4)."""
    sub = _locked(sub)
    if not rules.is_deletable(sub.status):
        raise Conflict(_("status: only canceled or expired subscriptions can be deleted; this one is %(status)s")
                       % {"status": _status_word(sub)}, field="status", code="not_deletable")
    records.delete(sub, actor)
