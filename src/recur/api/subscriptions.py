"""/subscriptions (SPEC §12)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from ninja import Field, Query, Router, Schema, Status

from recur.api.base import MoneySchema, iso, money_in, money_out, paginate, scoped
from recur.api.records import add_record_routes
from recur.api.billing import invoice_out, payment_out
from recur.billing.models import Invoice, Payment
from recur.core import clock, records
from recur.core.errors import ValidationFailed
from recur.subscriptions import services
from recur.subscriptions.models import STATUSES, Subscription

READ, WRITE = scoped("subscriptions:read"), scoped("subscriptions:write")
router = Router(tags=["subscriptions"])


class LineItemIn(Schema):
    product_id: int | None = None
    name: str | None = None
    unit_price: MoneySchema | None = None
    quantity: int = 1
    discount_percent: Decimal | None = None
    tax_rate: Decimal | None = None
    billing_frequency: str | None = None
    billing_terms: str | None = None
    number_of_payments: int | None = None
    billing_start_date: dt.date | None = None
    billing_start_delay_days: int | None = None
    billing_start_delay_months: int | None = None


def line_items_in(items: list[LineItemIn]) -> list[dict]:
    out = []
    for i, it in enumerate(items):
        d = it.dict(exclude_unset=True)
        if it.unit_price is not None:
            d["unit_price"], d["currency"] = money_in(it.unit_price, f"line_items[{i}].unit_price")
        out.append(d)
    return out


class SubscriptionIn(Schema):
    contact_id: int
    company_id: int | None = None
    name: str | None = None
    collection: Literal["auto_charge", "manual"] = "auto_charge"
    payment_method_id: int | None = None
    payment_terms: str = "due_on_receipt"
    accept_online_payments: bool = True
    accepted_payment_methods: list[str] | None = None
    collect_billing_address: bool = False
    collect_shipping_address: bool = False
    save_payment_method: bool = False
    billing_address: dict | None = None
    deal_ids: list[int] = []
    quote_id: int | None = None
    owner_id: int | None = None
    line_items: list[LineItemIn] = Field(..., min_length=1)


class SubscriptionPatch(Schema):
    name: str | None = None
    line_items: list[LineItemIn] | None = None
    next_payment_date: dt.date | None = None
    payment_method_id: int | None = None
    contact_id: int | None = None
    billing_address: dict | None = None
    payment_terms: str | None = None
    owner_id: int | None = None
    accept_online_payments: bool | None = None
    accepted_payment_methods: list[str] | None = None
    collect_billing_address: bool | None = None
    collect_shipping_address: bool | None = None
    save_payment_method: bool | None = None
    prorate: bool = False


class CancelIn(Schema):
    mode: Literal["immediately", "end_of_period", "refund_unused"]
    confirm: bool = False


def subscription_out(s: Subscription) -> dict:
    ids = records.associated_ids("subscription", s.pk, "deal")
    return {
        "id": s.pk, "name": s.name, "status": s.status, "collection": s.collection,
        "billing_frequency": s.billing_frequency, "billing_terms": s.billing_terms,
        "number_of_payments": s.number_of_payments, "start_date": iso(s.start_date), "end_date": iso(s.end_date),
        "next_payment_date": iso(s.next_payment_date), "last_payment_date": iso(s.last_payment_date),
        "payments_made": s.payments_made, "amount": money_out(s.amount, s.currency),
        "total_paid": money_out(s.total_paid, s.currency), "payment_terms": s.payment_terms,
        "accept_online_payments": s.accept_online_payments, "accepted_payment_methods": s.accepted_payment_methods,
        "collect_billing_address": s.collect_billing_address, "collect_shipping_address": s.collect_shipping_address,
        "save_payment_method": s.save_payment_method,
        "contact_id": s.contact_id, "company_id": s.company_id, "deal_ids": [i for _, i, _ in ids],
        "quote_id": s.quote_id, "payment_method_id": s.payment_method_id, "billing_address": s.billing_address,
        "shipping_address": s.shipping_address or None,
        "line_items": [
            {"id": it.pk, "product_id": it.product_id, "name": it.name, "quantity": it.quantity,
             "unit_price": money_out(it.unit_price, s.currency), "discount_percent": str(it.discount_percent),
             "tax_rate": str(it.tax_rate)}
            for it in s.items.all()
        ],
        "owner_id": s.owner_id, "created_at": iso(s.created_at), "updated_at": iso(s.updated_at),
        "canceled_at": iso(s.canceled_at), "cancel_mode": s.cancel_mode or None, "cancel_at": iso(s.cancel_at),
    }


class ListFilters(Schema):
    status: str | None = None
    next_payment_date_before: dt.date | None = None
    next_payment_date_after: dt.date | None = None
    contact_id: int | None = None
    company_id: int | None = None
    billing_frequency: str | None = None
    collection: str | None = None
    currency: str | None = None


@router.get("", auth=READ, summary="List subscriptions")
def list_subscriptions(request, filters: Query[ListFilters], limit: int | None = None, after: str | None = None):
    qs = Subscription.objects.prefetch_related("items")
    f = filters.dict(exclude_none=True)
    if "status" in f:
        wanted = f.pop("status").split(",")
        valid = {s for s, _ in STATUSES}
        for w in wanted:
            if w not in valid:
                raise ValidationFailed(f"status: unknown status {w!r}; one of {', '.join(sorted(valid))}",
                                       field="status")
        qs = qs.filter(status__in=wanted)
    if "next_payment_date_before" in f:
        qs = qs.filter(next_payment_date__lt=f.pop("next_payment_date_before"))
    if "next_payment_date_after" in f:
        qs = qs.filter(next_payment_date__gt=f.pop("next_payment_date_after"))
    qs = qs.filter(**f)
    return paginate(qs, limit, after, subscription_out)


@router.post("", auth=WRITE, response={201: dict}, summary="Create a subscription (billing starts on its start date)")
def create_subscription(request, payload: SubscriptionIn):
    from recur.billing import engine

    data = payload.dict(exclude_unset=True)
    data["line_items"] = line_items_in(payload.line_items)
    sub = services.create_subscription(request.user, data)
    if sub.next_payment_date and sub.next_payment_date <= clock.today():
        engine.run(only=[sub.pk])  # the first period is due now: bill it at once
        sub.refresh_from_db()
    return Status(201, subscription_out(sub))


def _sub(record_id: int) -> Subscription:
    return records.get_record("subscription", record_id)


@router.get("/{record_id}", auth=READ, summary="Get a subscription")
def get_subscription(request, record_id: int):
    return subscription_out(_sub(record_id))


@router.patch("/{record_id}", auth=WRITE, summary="Edit a subscription (R-MAN-1)")
def update_subscription(request, record_id: int, payload: SubscriptionPatch):
    data = payload.dict(exclude_unset=True)
    prorate = data.pop("prorate", False)
    if payload.line_items is not None:
        data["line_items"] = line_items_in(payload.line_items)
    sub, preview = services.update_subscription(request.user, _sub(record_id), data, prorate=prorate)
    body = subscription_out(sub)
    if preview is not None:
        body["proration"] = {"credit": money_out(preview.credit, sub.currency),
                             "charge": money_out(preview.charge, sub.currency),
                             "net": money_out(preview.net, sub.currency) if preview.net >= 0 else
                             {"amount": "-" + money_out(-preview.net, sub.currency)["amount"], "currency": sub.currency},
                             "unused_days": preview.unused_days, "period_days": preview.period_days,
                             "applied": prorate}
    return body


@router.post("/{record_id}/pause", auth=WRITE, summary="Pause")
def pause(request, record_id: int):
    return subscription_out(services.pause(request.user, _sub(record_id)))


@router.post("/{record_id}/resume", auth=WRITE, summary="Resume")
def resume(request, record_id: int):
    return subscription_out(services.resume(request.user, _sub(record_id)))


@router.get("/{record_id}/cancel-preview", auth=READ, summary="Figures of a cancellation before confirming it")
def cancel_preview(request, record_id: int, mode: str = "refund_unused"):
    p = services.cancel_preview(_sub(record_id), mode)
    return {**p, "refund": money_out(p["refund"], p["currency"]), "amount_paid": money_out(p["amount_paid"], p["currency"]),
            "period_start": iso(p["period_start"]), "period_end": iso(p["period_end"]), "cancels_on": iso(p["cancels_on"]),
            "open_due": money_out(p["open_due"], p["currency"])}


@router.post("/{record_id}/cancel", auth=WRITE, summary="Cancel (R-MAN-2)")
def cancel(request, record_id: int, payload: CancelIn):
    sub, refunded = services.cancel(request.user, _sub(record_id), payload.mode, payload.confirm)
    body = subscription_out(sub)
    if refunded:
        body["refund"] = {"amount": money_out(refunded, sub.currency)}
    return body


@router.get("/{record_id}/schedule", auth=READ, summary="The next N periods")
def upcoming(request, record_id: int, count: int = 12):
    sub = _sub(record_id)
    return {"items": [
        {"period_start": iso(p["period_start"]), "period_end": iso(p["period_end"]),
         "payment_date": iso(p["payment_date"]), "amount": money_out(p["amount"], p["currency"])}
        for p in services.upcoming(sub, count)
    ]}


@router.get("/{record_id}/payments", auth=READ, summary="Payments of a subscription")
def payments(request, record_id: int, limit: int | None = None, after: str | None = None):
    sub = _sub(record_id)
    return paginate(Payment.objects.filter(subscription=sub), limit, after, payment_out)


@router.get("/{record_id}/invoices", auth=READ, summary="Invoices of a subscription")
def invoices(request, record_id: int, limit: int | None = None, after: str | None = None):
    sub = _sub(record_id)
    return paginate(Invoice.objects.filter(subscription=sub), limit, after, invoice_out)


@router.post("/{record_id}/update-payment-method-link", auth=WRITE, summary="A signed link for the buyer (R-BILL-5)")
def update_payment_method_link(request, record_id: int):
    from recur.checkout.links import update_payment_method_url

    return {"url": update_payment_method_url(_sub(record_id)), "expires_in_days": 7}


# delete (canceled or expired only, R-MAN-4), associations (R-NEW-4) and history (R-OBJ-4)
add_record_routes(router, "subscription", "subscriptions",
                  delete=lambda sub, actor: services.delete_subscription(actor, sub))
