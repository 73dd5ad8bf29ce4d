"""/payment-links (SPEC §12, R-NEW-2): create (returns the hosted checkout ``url``), get, list, archive."""

from __future__ import annotations

from typing import Literal

from ninja import Field, Router, Schema, Status

from recur.api.base import iso, money_out, paginate, scoped
from recur.api.subscriptions import LineItemIn, line_items_in
from recur.checkout import payment_links as services
from recur.checkout.models import PaymentLink
from recur.core import records
from recur.core.errors import NotFound
from recur.core.money import line_amounts

router = Router(tags=["payment links"])
READ, WRITE = scoped("subscriptions:read"), scoped("subscriptions:write")


class PaymentLinkIn(Schema):
    name: str | None = None
    line_items: list[LineItemIn] = Field(..., min_length=1)
    accepted_payment_methods: list[Literal["card", "bank_account"]] | None = None
    collect_billing_address: bool = False
    collect_shipping_address: bool = False
    save_payment_method: bool = True
    allow_create_deals: bool = False
    deal_ids: list[int] = []


def _item_out(it) -> dict:
    total = line_amounts(it.unit_price, it.quantity, it.discount_percent, None, it.tax_rate).total
    return {"id": it.pk, "product_id": it.product_id, "name": it.name, "quantity": it.quantity,
            "unit_price": money_out(it.unit_price, it.currency), "discount_percent": str(it.discount_percent),
            "tax_rate": str(it.tax_rate), "total": money_out(total, it.currency),
            "billing_frequency": it.billing_frequency,
            "billing_terms": it.billing_terms if it.billing_frequency else None,
            "number_of_payments": it.number_of_payments, "billing_start_date": iso(it.billing_start_date),
            "billing_start_delay_days": it.billing_start_delay_days,
            "billing_start_delay_months": it.billing_start_delay_months}


def payment_link_out(link: PaymentLink) -> dict:
    plan = services.plan_for(link)
    return {
        "id": link.pk, "name": link.name, "url": services.link_url(link), "active": link.active,
        "currency": link.currency, "accepted_payment_methods": link.accepted_payment_methods,
        "collect_billing_address": link.collect_billing_address,
        "collect_shipping_address": link.collect_shipping_address,
        "save_payment_method": link.save_payment_method, "allow_create_deals": link.allow_create_deals,
        "line_items": [_item_out(it) for it in link.items.all()],
        "due_today": money_out(plan.due_now, link.currency),
        "subscriptions_per_purchase": len(plan.groups),
        "deal_ids": [d.pk for d in records.associated(link, "deal")],
        "owner_id": link.owner_id, "created_at": iso(link.created_at), "updated_at": iso(link.updated_at),
    }


def _get(record_id: int) -> PaymentLink:
    link = PaymentLink.objects.filter(pk=record_id).first()
    if link is None:
        raise NotFound(f"No payment link with id {record_id}")
    return link


@router.get("", auth=READ, summary="List payment links")
def list_payment_links(request, limit: int | None = None, after: str | None = None):
    return paginate(PaymentLink.objects.prefetch_related("items"), limit, after, payment_link_out)


@router.post("", auth=WRITE, response={201: dict},
             summary="Create a payment link (line items as for quotes); returns the hosted checkout url")
def create_payment_link(request, payload: PaymentLinkIn):
    data = payload.dict(exclude_unset=True)
    data["line_items"] = line_items_in(payload.line_items)
    return Status(201, payment_link_out(services.create_payment_link(request.user, data)))


@router.get("/{record_id}", auth=READ, summary="Get a payment link")
def get_payment_link(request, record_id: int):
    return payment_link_out(_get(record_id))


@router.post("/{record_id}/archive", auth=WRITE, summary="Archive a payment link: it takes no more payments")
def archive_payment_link(request, record_id: int):
    return payment_link_out(services.archive_payment_link(request.user, _get(record_id)))
