"""/quotes and the deal/quote conversions (SPEC §12, R-NEW-5, R-NEW-6)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Router, Schema, Status

from recur.api.base import iso, money_out, paginate, scoped
from recur.api.billing import invoice_out
from recur.api.records import add_record_routes
from recur.api.subscriptions import LineItemIn, line_items_in, subscription_out
from recur.checkout.links import quote_url
from recur.core import records
from recur.core.money import line_amounts
from recur.crm import quotes as quote_services
from recur.crm.models import Quote
from recur.subscriptions import conversions

router = Router(tags=["quotes"])
READ, WRITE = scoped("crm:read"), scoped("crm:write")
SUB_WRITE = scoped("subscriptions:write")


class QuoteIn(Schema):
    contact_id: int
    deal_id: int | None = None
    title: str | None = None
    expires_on: dt.date | None = None
    line_items: list[LineItemIn]


class ConvertIn(Schema):
    collection: Literal["manual", "auto_charge"] = "manual"
    payment_terms: str = "due_on_receipt"
    payment_method_id: int | None = None
    accept_online_payments: bool = True


def line_item_out(li, currency: str) -> dict:
    total = line_amounts(li.unit_price, li.quantity, li.discount_percent, None, li.tax_rate).total
    return {"id": li.pk, "product_id": li.product_id, "name": li.name, "quantity": li.quantity,
            "unit_price": money_out(li.unit_price, li.currency), "discount_percent": str(li.discount_percent),
            "tax_rate": str(li.tax_rate), "total": money_out(total, li.currency),
            "billing_frequency": li.billing_frequency, "billing_terms": li.billing_terms if li.billing_frequency else None,
            "number_of_payments": li.number_of_payments, "billing_start_date": iso(li.billing_start_date)}


def quote_out(q: Quote) -> dict:
    return {"id": q.pk, "title": q.title, "status": "expired" if quote_services.quote_expired(q) and q.status in
            ("draft", "published") else q.status, "contact_id": q.contact_id, "deal_id": q.deal_id,
            "expires_on": iso(q.expires_on), "currency": q.currency,
            "url": quote_url(q),
            "line_items": [line_item_out(li, q.currency) for li in q.line_items.all()],
            "owner_id": q.owner_id, "created_at": iso(q.created_at), "updated_at": iso(q.updated_at),
            "published_at": iso(q.published_at)}


def conversion_out(result: dict) -> dict:
    return {"subscriptions": [subscription_out(s) for s in result["subscriptions"]],
            "invoice": invoice_out(result["invoice"]) if result["invoice"] else None}


@router.get("", auth=READ, summary="List quotes")
def list_quotes(request, limit: int | None = None, after: str | None = None):
    return paginate(Quote.objects.prefetch_related("line_items"), limit, after, quote_out)


@router.post("", auth=WRITE, response={201: dict}, summary="Create a quote (a line item without billing_frequency is one-time)")
def create_quote(request, payload: QuoteIn):
    data = payload.dict(exclude_unset=True)
    data["line_items"] = line_items_in(payload.line_items)
    return Status(201, quote_out(quote_services.create_quote(request.user, data)))


@router.get("/{record_id}", auth=READ, summary="Get a quote")
def get_quote(request, record_id: int):
    return quote_out(records.get_record("quote", record_id))


@router.post("/{record_id}/publish", auth=WRITE, summary="Publish a quote (it gets its public url)")
def publish(request, record_id: int):
    return quote_out(quote_services.publish_quote(request.user, records.get_record("quote", record_id)))


@router.post("/{record_id}/convert-to-subscription", auth=SUB_WRITE,
             summary="One subscription per group of recurring line items (R-SIGN-4)")
def quote_to_subscription(request, record_id: int, payload: ConvertIn):
    quote = records.get_record("quote", record_id)
    return conversion_out(conversions.bill_due_now(conversions.quote_to_subscriptions(request.user, quote, payload.dict())))


@router.post("/{record_id}/convert-to-invoice", auth=SUB_WRITE, response={201: dict},
             summary="A quote without recurring line items becomes an invoice")
def quote_to_invoice(request, record_id: int, payload: ConvertIn):
    quote = records.get_record("quote", record_id)
    return Status(201, invoice_out(conversions.quote_to_invoice(request.user, quote, payload.dict())))


add_record_routes(router, "quote", "crm")
