"""Invoices, payments and refunds outside the billing run (R-MAN-1, R-MAN-2, R-MAN-5, R-KIND-2).

Refunds never exceed what was captured (money safety rule 5); the processor
is asked with an idempotency key derived from the refund row, which is
committed first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from recur.billing.models import (
    TAKES_PAYMENTS, BillingCycle, Invoice, InvoiceLine, Payment, PaymentAttempt, Refund,
)
from recur.core import clock, records
from recur.core.errors import Conflict, ValidationFailed, shown_amount
from recur.payments.processor import get_processor


def status_word(record) -> str:
    """A record's status label in the active language, lower case, for inside a message (in English
    the invoice and subscription labels are their stored values, as before)."""
    return str(record.get_status_display()).lower()


def refundable(payment: Payment) -> int:
    if payment.status not in ("succeeded", "partially_refunded"):
        return 0
    return payment.amount - payment.refunded_amount


@transaction.atomic
def refund_payment(actor, payment: Payment, amount: int | None = None, reason: str = "") -> Refund:
    """Refund part or all of a payment (R-MAN-5)."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    available = refundable(payment)
    amount = available if amount is None else amount
    if amount <= 0:
        raise ValidationFailed(_("amount: a refund must be more than zero"), field="amount")
    if amount > available:
        raise ValidationFailed(_("amount: at most %(left)s of this payment can still be refunded")
                               % {"left": shown_amount(available, payment.currency)}, field="amount")
    refund = records.create(Refund, actor, {
        "payment": payment, "amount": amount, "currency": payment.currency, "reason": reason[:200],
        "status": "pending", "idempotency_key": f"rf-{payment.pk}-{uuid.uuid4().hex[:16]}",
    })
    if payment.charge_ref:
        processor = get_processor(payment.payment_method.processor if payment.payment_method else None)
        result = processor.refund(payment.charge_ref, amount, payment.currency, refund.idempotency_key)
        if result.status == "failed":
            raise Conflict(_("amount: the processor refused the refund: %(reason)s")
                           % {"reason": result.failure_message}, field="amount", code="refund_failed")
        refund.refund_ref = result.refund_ref
    refund.status = "succeeded"
    refund.save(update_fields=["status", "refund_ref"])
    refunded = payment.refunded_amount + amount
    records.update(payment, actor, {"refunded_amount": refunded,
                                    "status": "refunded" if refunded >= payment.amount else "partially_refunded"})
    if payment.subscription_id:
        from recur.subscriptions.models import Subscription

        Subscription.objects.filter(pk=payment.subscription_id).update(total_paid=F("total_paid") - amount)
    return refund


def refund_period(actor, sub, period_start: dt.date, amount: int, reason: str = "") -> int:
    """Refund ``amount`` across the succeeded payments of one period, newest first."""
    left = amount
    for p in Payment.objects.filter(subscription=sub, period_start=period_start,
                                    status__in=("succeeded", "partially_refunded")).order_by("-pk"):
        part = min(left, refundable(p))
        if part > 0:
            refund_payment(actor, p, part, reason)
            left -= part
        if left == 0:
            break
    return amount - left


@transaction.atomic
def record_manual_payment(actor, invoice: Invoice, amount: int, *, paid_on: dt.date | None = None,
                          method: str = "bank_transfer", reference: str = "") -> Payment:
    """A payment the seller received outside the processor (bank transfer, cash, cheque), also on an
    invoice written off as uncollectible (the buyer paid after all).

    Rows are locked as void and write-off lock them (``_lock_invoice``)."""
    invoice, sub = _lock_invoice(invoice)
    if invoice.status not in TAKES_PAYMENTS:
        raise Conflict(_("status: invoice %(number)s is %(status)s; only open or uncollectible invoices take payments")
                       % {"number": invoice.number, "status": status_word(invoice)},
                       field="status", code="invoice_not_open")
    _refuse_in_flight(invoice)  # its outcome could pay the invoice a second time
    if method not in dict(Payment.METHODS):
        raise ValidationFailed(_("method: must be one of %(choices)s") % {"choices": ", ".join(dict(Payment.METHODS))},
                               field="method")
    if amount <= 0:
        raise ValidationFailed(_("amount: must be more than zero"), field="amount")
    if amount > invoice.amount_unpaid:
        raise ValidationFailed(_("amount: the invoice has %(left)s left to pay")
                               % {"left": shown_amount(invoice.amount_unpaid, invoice.currency)}, field="amount")
    paid_on = paid_on or clock.today()
    if paid_on > clock.today():
        raise ValidationFailed(_("paid_on: cannot be in the future"), field="paid_on")
    cycle = invoice.cycle
    payment = records.create(Payment, actor, {
        "subscription_id": invoice.subscription_id, "invoice": invoice, "contact_id": invoice.contact_id,
        "amount": amount, "currency": invoice.currency, "status": "succeeded", "method": method,
        "reference": reference[:200], "paid_on": paid_on,
        "period_start": cycle.period_start if cycle else None, "period_end": cycle.period_end if cycle else None,
    })
    settle_invoice_payment(invoice, amount, payment, actor, sub=sub)
    return payment


def _lock_invoice(invoice: Invoice):
    """(invoice, its subscription or None), locked in the order the billing run, cancellation and the
    invoice payment page use: subscription, then billing cycle, then invoice (the other order
    deadlocked against a retry batch on PostgreSQL)."""
    from recur.subscriptions.models import Subscription

    sub_id, cycle_id = Invoice.objects.filter(pk=invoice.pk).values_list("subscription_id", "cycle_id").get()
    sub = Subscription.objects.select_for_update().get(pk=sub_id) if sub_id else None
    if cycle_id:
        list(BillingCycle.objects.select_for_update().filter(pk=cycle_id))
    return Invoice.objects.select_for_update().get(pk=invoice.pk), sub


def settle_invoice_payment(invoice: Invoice, amount: int, payment: Payment, actor, *, sub) -> None:
    """Apply a succeeded payment booked outside the billing run to its invoice and subscription, as the
    billing run does for a charge: what was received counts in ``total_paid`` at once (a part too),
    a scheduled payment in ``payments_made`` once its invoice is paid, and a paid invoice may make its
    subscription active again. ``actor``: who booked it (none: the system), in the change history;
    ``sub``: the invoice's subscription (None for a one-off invoice), already locked by the caller
    (``_lock_invoice``)."""
    from recur.subscriptions.models import Subscription

    now = clock.now()
    paid = invoice.amount_paid + amount
    full = paid >= invoice.total
    # A part payment leaves an open invoice open and a written-off one written off.
    records.update(invoice, actor, {"amount_paid": paid, "status": "paid" if full else invoice.status,
                                    "paid_at": now if full else None})
    if full and invoice.cycle_id:
        BillingCycle.objects.filter(pk=invoice.cycle_id).update(status="paid", next_retry_on=None)
    if sub is None:
        return
    fields = {"total_paid": sub.total_paid + amount,
              "last_payment_date": max(sub.last_payment_date or payment.paid_on, payment.paid_on)}
    if full and invoice.cycle_id:  # a proration invoice is not a scheduled payment (as in the billing run)
        fields["payments_made"] = sub.payments_made + 1
    if full and sub.status == "past_due" and not _still_past_due(sub):
        fields["status"] = "active"
    Subscription.objects.filter(pk=sub.pk).update(**fields, updated_at=now)
    if fields.get("status"):
        records.log(sub, None, actor, "updated", {"status": ["past_due", "active"]})


VOIDABLE, WRITABLE_OFF = ("open", "uncollectible"), ("open",)


def can_void(invoice: Invoice) -> bool:
    """An invoice that should not have been issued, and on which nothing was paid (else: refund)."""
    return invoice.status in VOIDABLE and not invoice.amount_paid


def can_write_off(invoice: Invoice) -> bool:
    return invoice.status in WRITABLE_OFF


@dataclasses.dataclass(frozen=True)
class InvoiceActions:
    """What a seller may do with an invoice now. While a payment of it is in flight: nothing (its
    outcome could still pay it), as record_manual_payment, void and write-off refuse."""

    in_flight: bool
    take_payment: bool
    void: bool
    write_off: bool


def invoice_actions(invoice: Invoice) -> InvoiceActions:
    in_flight = invoice.attempt_in_flight() is not None
    return InvoiceActions(
        in_flight=in_flight,
        take_payment=not in_flight and invoice.status in TAKES_PAYMENTS and invoice.amount_unpaid > 0,
        void=not in_flight and can_void(invoice), write_off=not in_flight and can_write_off(invoice))


@transaction.atomic
def void_invoice(actor, invoice: Invoice) -> Invoice:
    """Void an invoice that should not have been issued: nothing is due on it any more. Only an open
    (or uncollectible) invoice on which nothing was paid; a paid one is refunded instead."""
    return _stop_collecting(actor, invoice, "void", VOIDABLE)


@transaction.atomic
def mark_uncollectible(actor, invoice: Invoice) -> Invoice:
    """Write an open invoice off: what is left is no longer asked for (no retries, not overdue); what
    was paid on it stays paid."""
    return _stop_collecting(actor, invoice, "uncollectible", WRITABLE_OFF)


def _stop_collecting(actor, invoice: Invoice, status: str, allowed: tuple[str, ...]) -> Invoice:
    """Move an unpaid invoice to ``status``: its billing cycle stops (no more retries), and a subscription
    that was past due only because of it is active again. Refused while a charge of it is in flight
    (the outcome could still pay it)."""
    from recur.subscriptions.models import Subscription

    invoice, sub = _lock_invoice(invoice)
    cycle_id = invoice.cycle_id
    if invoice.status not in allowed:
        message = (_("status: invoice %(number)s is %(status)s; only an open or uncollectible invoice can be voided")
                   if status == "void" else
                   _("status: invoice %(number)s is %(status)s; only an open invoice can be written off"))
        raise Conflict(message % {"number": invoice.number, "status": status_word(invoice)},
                       field="status", code="invalid_status")
    if status == "void" and invoice.amount_paid:
        raise Conflict(_("amount_paid: %(paid)s has been paid on invoice %(number)s; refund the payment, or write "
                         "the rest off as uncollectible") % {"paid": shown_amount(invoice.amount_paid, invoice.currency),
                                                              "number": invoice.number},
                       field="amount_paid", code="invoice_partly_paid")
    _refuse_in_flight(invoice)
    invoice = records.update(invoice, actor, {"status": status})
    if cycle_id:
        BillingCycle.objects.filter(pk=cycle_id).exclude(status="paid").update(status="void", next_retry_on=None)
    if sub is not None and sub.status == "past_due" and not _still_past_due(sub):
        Subscription.objects.filter(pk=sub.pk).update(status="active", updated_at=clock.now())
        records.log(sub, None, actor, "updated", {"status": ["past_due", "active"]})
    return invoice


def _refuse_in_flight(invoice: Invoice) -> None:
    if invoice.attempt_in_flight() is not None:
        raise Conflict(_("status: a payment of invoice %(number)s is in progress; try again when it has settled")
                       % {"number": invoice.number}, field="status", code="payment_in_flight")


def _still_past_due(sub) -> bool:
    """A failed charge or an overdue manual invoice (one definition: ``Invoice.overdue_filter``)."""
    return (BillingCycle.objects.filter(subscription=sub, status="failed").exists()
            or Invoice.objects.filter(Invoice.overdue_filter(clock.today()), subscription=sub,
                                      collection="manual").exists())


@transaction.atomic
def apply_proration(actor, sub, preview) -> Invoice | int | None:
    """Bill (net > 0: a one-off invoice, charged if automatic) or credit (net < 0: a refund of the
    current period's payment, never more than was paid) a mid-period change (R-MAN-1)."""
    if preview is None or preview.net == 0:
        return None
    if preview.net < 0:
        from recur.subscriptions.services import current_period

        _index, start, _end = current_period(sub)
        return refund_period(actor, sub, start, -preview.net, reason="Proration credit")
    from recur.billing.engine import _allocate_numbers

    today = clock.today()
    number = _allocate_numbers({today.year: 1})[today.year][0]
    inv = records.create(Invoice, actor, {
        "number": number, "subscription": sub, "contact_id": sub.contact_id, "status": "open", "issue_date": today,
        "due_date": today, "payment_terms": sub.payment_terms, "collection": sub.collection,
        "accept_online_payments": sub.accept_online_payments, "currency": sub.currency, "subtotal": preview.net,
        "tax": 0, "total": preview.net, "billing_address": sub.billing_address,
    })
    InvoiceLine.objects.create(invoice=inv, name=f"Proration: {sub.name}", quantity=1, unit_price=preview.net,
                               total=preview.net, period_start=today)
    if sub.collection == "auto_charge" and sub.payment_method_id:
        attempt = PaymentAttempt.objects.create(
            invoice=inv, attempt_no=1, idempotency_key=f"rc-prorate-{inv.pk}-1", payment_method_id=sub.payment_method_id,
            amount=inv.total, currency=inv.currency, created_at=clock.now())
        from recur.billing import engine

        # Charged once this transaction has committed (money safety rule 2); a crash before that
        # leaves the attempt "started" for the next run's recovery.
        transaction.on_commit(lambda: engine.charge_attempts([attempt.pk]))
    return inv


@transaction.atomic
def create_invoice(actor, *, contact, items: list[dict], payment_terms: str = "due_on_receipt",
                   accept_online_payments: bool = True, related=()) -> Invoice:
    """A one-off invoice (one-time line items of a deal or quote), collected manually (R-NEW-5, R-NEW-6)."""
    from recur.billing.engine import _allocate_numbers
    from recur.checkout.links import invoice_url
    from recur.core.money import line_amounts
    from recur.notifications import services as outbox
    from recur.subscriptions.models import PAYMENT_TERM_DAYS

    if not items:
        raise ValidationFailed(_("line_items: an invoice needs at least one line item"), field="line_items")
    if payment_terms not in PAYMENT_TERM_DAYS:
        raise ValidationFailed(_("payment_terms: must be one of %(choices)s") % {"choices": ", ".join(PAYMENT_TERM_DAYS)},
                               field="payment_terms")
    today = clock.today()
    amounts = [line_amounts(it["unit_price"], it.get("quantity", 1), it.get("discount_percent"), None,
                            it.get("tax_rate")) for it in items]
    currency = items[0]["currency"]
    number = _allocate_numbers({today.year: 1})[today.year][0]
    address = {f: getattr(contact, f) for f in contact.ADDRESS_FIELDS if getattr(contact, f)}
    inv = records.create(Invoice, actor, {
        "number": number, "contact": contact, "status": "open", "issue_date": today,
        "due_date": today + dt.timedelta(days=PAYMENT_TERM_DAYS[payment_terms]), "payment_terms": payment_terms,
        "collection": "manual", "accept_online_payments": accept_online_payments, "currency": currency,
        "subtotal": sum(a.net for a in amounts), "tax": sum(a.tax for a in amounts),
        "total": sum(a.total for a in amounts), "billing_address": address,
    })
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=inv, position=i, name=it["name"], quantity=it.get("quantity", 1),
                    unit_price=it["unit_price"], discount=a.discount, tax_rate=it.get("tax_rate") or 0, tax=a.tax,
                    total=a.total)
        for i, (it, a) in enumerate(zip(items, amounts))
    ])
    for other in (contact, *related):
        records.associate(actor, inv, other)
    if contact.email:
        outbox.queue_email("invoice_issued", contact.email, to_name=contact.name, language=contact.language,
                           record=("invoice", inv.pk), dedupe_key=outbox.record_key("invoice_issued", inv.pk),
                           context={"invoice_number": inv.number, "total": outbox.money(inv.total, currency),
                                    "issue_date": today, "due_date": inv.due_date,
                                    "pay_url": invoice_url(inv) if accept_online_payments else ""})
    return inv
