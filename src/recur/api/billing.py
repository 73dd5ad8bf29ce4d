"""/invoices, /payments, /refunds (SPEC §12)."""

from __future__ import annotations

import datetime as dt

from ninja import Router, Schema, Status

from recur.api.base import MoneySchema, iso, money_in, money_out, paginate, scoped
from recur.billing import services
from recur.billing.models import Invoice, Payment, Refund
from recur.core import records

READ, WRITE = scoped("billing:read"), scoped("billing:write")
invoices = Router(tags=["invoices"])
payments = Router(tags=["payments"])
refunds = Router(tags=["refunds"])


def invoice_out(i: Invoice) -> dict:
    from recur.checkout.links import invoice_url

    return {
        "id": i.pk, "number": i.number, "status": i.status, "issue_date": iso(i.issue_date),
        "due_date": iso(i.due_date), "total": money_out(i.total, i.currency),
        "subtotal": money_out(i.subtotal, i.currency), "tax": money_out(i.tax, i.currency),
        "amount_paid": money_out(i.amount_paid, i.currency), "amount_due": money_out(i.amount_due, i.currency),
        # what has not been paid, also of a written-off invoice (which still takes a late payment)
        "amount_unpaid": money_out(i.amount_unpaid, i.currency),
        "subscription_id": i.subscription_id, "contact_id": i.contact_id, "payment_terms": i.payment_terms,
        "url": invoice_url(i), "pdf_url": invoice_url(i) + "pdf/",
        "lines": [{"name": ln.name, "quantity": ln.quantity, "unit_price": money_out(ln.unit_price, i.currency),
                   "total": money_out(ln.total, i.currency), "period_start": iso(ln.period_start),
                   "period_end": iso(ln.period_end)} for ln in i.lines.all()],
        "created_at": iso(i.created_at),
    }


def payment_out(p: Payment) -> dict:
    return {
        "id": p.pk, "amount": money_out(p.amount, p.currency), "status": p.status, "method": p.method,
        "refunded": money_out(p.refunded_amount, p.currency), "subscription_id": p.subscription_id,
        "invoice_id": p.invoice_id, "contact_id": p.contact_id, "paid_on": iso(p.paid_on),
        "period_start": iso(p.period_start), "period_end": iso(p.period_end), "reference": p.reference,
        "failure_message": p.failure_message or None, "created_at": iso(p.created_at),
    }


def refund_out(r: Refund) -> dict:
    return {"id": r.pk, "payment_id": r.payment_id, "amount": money_out(r.amount, r.currency), "status": r.status,
            "reason": r.reason, "created_at": iso(r.created_at)}


class ManualPaymentIn(Schema):
    amount: MoneySchema
    paid_on: dt.date | None = None
    method: str = "bank_transfer"
    reference: str = ""


class RefundIn(Schema):
    amount: MoneySchema | None = None
    reason: str = ""


@invoices.get("", auth=READ, summary="List invoices")
def list_invoices(request, limit: int | None = None, after: str | None = None, status: str | None = None,
                  contact_id: int | None = None):
    qs = Invoice.objects.prefetch_related("lines")
    if status:
        qs = qs.filter(status=status)
    if contact_id:
        qs = qs.filter(contact_id=contact_id)
    return paginate(qs, limit, after, invoice_out)


@invoices.get("/{record_id}", auth=READ, summary="Get an invoice")
def get_invoice(request, record_id: int):
    return invoice_out(records.get_record("invoice", record_id))


@invoices.post("/{record_id}/payments", auth=WRITE, response={201: dict}, summary="Record a manual payment")
def record_payment(request, record_id: int, payload: ManualPaymentIn):
    inv = records.get_record("invoice", record_id)
    amount, currency = money_in(payload.amount, "amount")
    if currency != inv.currency:
        from recur.core.errors import ValidationFailed

        raise ValidationFailed(f"amount.currency: the invoice is in {inv.currency}", field="amount.currency")
    p = services.record_manual_payment(request.user, inv, amount, paid_on=payload.paid_on, method=payload.method,
                                       reference=payload.reference)
    return Status(201, payment_out(p))


@invoices.post("/{record_id}/void", auth=WRITE, summary="Void an unpaid invoice")
def void_invoice(request, record_id: int):
    return invoice_out(services.void_invoice(request.user, records.get_record("invoice", record_id)))


@invoices.post("/{record_id}/mark-uncollectible", auth=WRITE, summary="Write an open invoice off as uncollectible")
def mark_uncollectible(request, record_id: int):
    return invoice_out(services.mark_uncollectible(request.user, records.get_record("invoice", record_id)))


@payments.get("", auth=READ, summary="List payments")
def list_payments(request, limit: int | None = None, after: str | None = None, status: str | None = None):
    qs = Payment.objects.all()
    if status:
        qs = qs.filter(status=status)
    return paginate(qs, limit, after, payment_out)


@payments.get("/{record_id}", auth=READ, summary="Get a payment")
def get_payment(request, record_id: int):
    return payment_out(records.get_record("payment", record_id))


@payments.post("/{record_id}/refund", auth=WRITE, response={201: dict}, summary="Refund a payment, fully or partly")
def refund_payment(request, record_id: int, payload: RefundIn):
    p = records.get_record("payment", record_id)
    amount = None
    if payload.amount is not None:
        amount, currency = money_in(payload.amount, "amount")
        if currency != p.currency:
            from recur.core.errors import ValidationFailed

            raise ValidationFailed(f"amount.currency: the payment is in {p.currency}", field="amount.currency")
    return Status(201, refund_out(services.refund_payment(request.user, p, amount, payload.reason)))


@refunds.get("", auth=READ, summary="List refunds")
def list_refunds(request, limit: int | None = None, after: str | None = None):
    return paginate(Refund.objects.all(), limit, after, refund_out)


@refunds.get("/{record_id}", auth=READ, summary="Get a refund")
def get_refund(request, record_id: int):
    return refund_out(records.get_record("refund", record_id))
