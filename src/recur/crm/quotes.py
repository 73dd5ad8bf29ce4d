"""Quotes and line items on deals and quotes (R-OBJ-2, R-NEW-5, R-NEW-6)."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from recur.core import clock, records
from recur.core.errors import Conflict, ValidationFailed, currency_message
from recur.core.money import validate_currency
from recur.crm.models import Contact, Deal, LineItem, Product, Quote
from recur.subscriptions import schedule

LINE_FIELDS = ("name", "quantity", "unit_price", "currency", "discount_percent", "tax_rate", "billing_frequency",
               "billing_terms", "number_of_payments", "billing_start_date", "billing_start_delay_days",
               "billing_start_delay_months")


def clean_line_item(raw: dict, i: int) -> dict:
    """One product or custom line item (recurring or one-time), amounts in minor units."""
    f = f"line_items[{i}]"
    item = {k: raw.get(k) for k in ("product_id", *LINE_FIELDS) if raw.get(k) is not None}
    if item.get("product_id") is not None:
        product = Product.objects.filter(pk=item["product_id"]).first()
        if product is None:
            raise ValidationFailed(_("%(field)s: no product with id %(id)s")
                                   % {"field": f"{f}.product_id", "id": item["product_id"]}, field=f"{f}.product_id")
        if product.archived:
            raise ValidationFailed(_("%(field)s: the product %(name)s is archived")
                                   % {"field": f"{f}.product_id", "name": repr(product.name)}, field=f"{f}.product_id")
        item.setdefault("name", product.name)
        if "unit_price" not in item:
            item["unit_price"], item["currency"] = product.unit_price, product.currency
        item.setdefault("billing_frequency", product.billing_frequency)
        item.setdefault("tax_rate", product.tax_rate)
    if not (item.get("name") or "").strip():
        raise ValidationFailed(_("%(field)s: a line item needs a name or a product_id") % {"field": f"{f}.name"},
                               field=f"{f}.name")
    if item.get("unit_price") is None or item["unit_price"] < 0:
        raise ValidationFailed(_("%(field)s: a line item needs a price of at least 0") % {"field": f"{f}.unit_price"},
                               field=f"{f}.unit_price")
    try:
        item["currency"] = validate_currency(item.get("currency") or "")
    except ValueError:
        raise ValidationFailed(currency_message(f"{f}.unit_price.currency", item.get("currency") or ""),
                               field=f"{f}.unit_price.currency") from None
    qty = item.get("quantity", 1)
    if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
        raise ValidationFailed(_("%(field)s: must be a whole number of at least 1") % {"field": f"{f}.quantity"},
                               field=f"{f}.quantity")
    for name in ("discount_percent", "tax_rate"):
        try:
            value = Decimal(str(item.get(name) or 0))
        except InvalidOperation:
            raise ValidationFailed(_("%(field)s: not a number") % {"field": f"{f}.{name}"}, field=f"{f}.{name}") from None
        if not value.is_finite() or not 0 <= value <= 100:
            raise ValidationFailed(_("%(field)s: must be between 0 and 100") % {"field": f"{f}.{name}"},
                                   field=f"{f}.{name}")
        item[name] = value
    freq = item.get("billing_frequency")
    if freq and freq not in schedule.FREQUENCIES:
        raise ValidationFailed(_("%(field)s: unknown value %(value)s; one of %(choices)s")
                               % {"field": f"{f}.billing_frequency", "value": repr(freq),
                                  "choices": ", ".join(schedule.FREQUENCIES)}, field=f"{f}.billing_frequency")
    if freq:
        terms = item.get("billing_terms") or ("fixed" if item.get("number_of_payments") else "auto_renew")
        if terms not in ("auto_renew", "fixed"):
            raise ValidationFailed(_("%(field)s: auto_renew or fixed") % {"field": f"{f}.billing_terms"},
                                   field=f"{f}.billing_terms")
        if terms == "fixed" and not (item.get("number_of_payments") or 0) >= 1:
            raise ValidationFailed(_("%(field)s: a fixed term needs at least 1 payment")
                                   % {"field": f"{f}.number_of_payments"}, field=f"{f}.number_of_payments")
        item["billing_terms"] = terms
    return item


def clean_line_items(raw_items: list[dict]) -> list[dict]:
    items = [clean_line_item(r, i) for i, r in enumerate(raw_items or [])]
    for i, item in enumerate(items[1:], start=1):
        if item["currency"] != items[0]["currency"]:
            raise ValidationFailed(_("%(field)s: all line items must be in %(currency)s")
                                   % {"field": f"line_items[{i}].unit_price.currency", "currency": items[0]["currency"]},
                                   field=f"line_items[{i}].unit_price.currency")
    return items


def _save_items(items: list[dict], **owner) -> None:
    LineItem.objects.bulk_create([
        LineItem(position=pos, product_id=it.get("product_id"), **owner,
                 **{k: it[k] for k in LINE_FIELDS if k in it}) for pos, it in enumerate(items)
    ])


def item_dicts(line_items) -> list[dict]:
    """Saved line items as the dicts the subscription and invoice services take."""
    return [{"product_id": li.product_id, **{k: getattr(li, k) for k in LINE_FIELDS}} for li in line_items]


@transaction.atomic
def set_deal_line_items(actor, deal: Deal, raw_items: list[dict]) -> Deal:
    items = clean_line_items(raw_items)
    LineItem.objects.filter(deal=deal).delete()
    _save_items(items, deal=deal)
    records.log(deal, None, actor, "updated", {"line_items": [None, len(items)]})
    return deal


@transaction.atomic
def create_quote(actor, data: dict[str, Any]) -> Quote:
    contact = Contact.objects.filter(pk=data.get("contact_id")).first()
    if contact is None:
        raise ValidationFailed(_("contact_id: no contact with id %(id)s") % {"id": data.get("contact_id")},
                               field="contact_id")
    deal = None
    if data.get("deal_id") is not None:
        deal = Deal.objects.filter(pk=data["deal_id"]).first()
        if deal is None:
            raise ValidationFailed(_("deal_id: no deal with id %(id)s") % {"id": data["deal_id"]}, field="deal_id")
    items = clean_line_items(data.get("line_items") or [])
    if not items:
        raise ValidationFailed(_("line_items: a quote needs at least one line item"), field="line_items")
    expires = data.get("expires_on")
    if expires is not None and expires < clock.today():
        raise ValidationFailed(_("expires_on: must not be in the past"), field="expires_on")
    quote = records.create(Quote, actor, {
        "title": (data.get("title") or f"Quote for {contact.name}")[:200], "contact": contact, "deal": deal,
        "expires_on": expires, "currency": items[0]["currency"],
    })
    _save_items(items, quote=quote)
    records.associate(actor, quote, contact)
    if deal:
        records.associate(actor, quote, deal)
    return quote


@transaction.atomic
def publish_quote(actor, quote: Quote) -> Quote:
    quote = Quote.objects.select_for_update().get(pk=quote.pk)
    if quote.status != "draft":
        raise Conflict(_("status: the quote is %(status)s; only drafts can be published")
                       % {"status": _status_word(quote)}, field="status", code="invalid_status")
    if quote.expires_on and quote.expires_on < clock.today():
        raise Conflict(_("expires_on: the quote has expired"), field="expires_on", code="quote_expired")
    return records.update(quote, actor, {"status": "published", "published_at": clock.now(),
                                         "public_token": secrets.token_urlsafe(24)})


def check_convertible(quote: Quote) -> None:
    if quote.status in ("accepted", "paid"):
        raise Conflict(_("status: the quote is %(status)s already; it cannot be converted again")
                       % {"status": _status_word(quote)}, field="status", code="quote_converted")
    if quote.status != "published":
        raise Conflict(_("status: the quote is %(status)s; only a published quote can be converted")
                       % {"status": _status_word(quote)}, field="status", code="quote_not_published")
    if quote.expires_on and quote.expires_on < clock.today():
        raise Conflict(_("expires_on: the quote has expired"), field="expires_on", code="quote_expired")


def _status_word(quote: Quote) -> str:
    """The quote's status label in the active language, lower case, for inside a sentence."""
    return str(quote.get_status_display()).lower()


def quote_expired(quote: Quote, today: dt.date | None = None) -> bool:
    return bool(quote.expires_on and quote.expires_on < (today or clock.today()))
