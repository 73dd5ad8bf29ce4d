"""/contacts, /companies, /deals, /products (SPEC §12)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from ninja import Field, Router, Schema, Status

from recur.api.base import MoneySchema, iso, money_in, money_out, paginate, scoped
from recur.api.billing import invoice_out
from recur.api.quotes import ConvertIn, conversion_out, line_item_out
from recur.api.records import add_record_routes
from recur.core import records
from recur.core.errors import ValidationFailed
from recur.crm import services
from recur.crm.models import Company, Contact, Deal, Product

READ, WRITE = scoped("crm:read"), scoped("crm:write")
ADDRESS = ("address_line1", "address_line2", "postal_code", "city", "region", "country")


def _base(obj) -> dict:
    return {"id": obj.pk, "owner_id": obj.owner_id, "created_at": iso(obj.created_at), "updated_at": iso(obj.updated_at)}


def _patch(payload: Schema) -> dict:
    data = payload.dict(exclude_unset=True)
    if "owner_id" in data:
        owner_id = data.pop("owner_id")
        if owner_id is not None:
            from recur.core.errors import ValidationFailed
            from recur.core.models import User

            if not User.objects.filter(pk=owner_id, is_active=True).exists():
                raise ValidationFailed(f"owner_id: no user with id {owner_id}", field="owner_id")
        data["owner_id"] = owner_id
    return data


# --- contacts ------------------------------------------------------------------------

contacts = Router(tags=["contacts"])


class AddressFields(Schema):
    address_line1: str = ""
    address_line2: str = ""
    postal_code: str = ""
    city: str = ""
    region: str = ""
    country: str = ""


class ContactIn(AddressFields):
    name: str = Field(..., min_length=1)
    email: str | None = None
    other_emails: list[str] = []
    phone: str = ""
    language: str = "en"
    owner_id: int | None = None


class AddressPatch(Schema):
    address_line1: str | None = None
    address_line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None


class ContactPatch(AddressPatch):
    name: str | None = Field(None, min_length=1)
    email: str | None = None
    other_emails: list[str] | None = None
    phone: str | None = None
    language: str | None = None
    owner_id: int | None = None


def contact_out(c: Contact) -> dict:
    return {
        **_base(c), "name": c.name, "email": c.email, "other_emails": c.other_emails, "phone": c.phone,
        "language": c.language, **{f: getattr(c, f) for f in ADDRESS},
    }


@contacts.get("", auth=READ, summary="List contacts")
def list_contacts(request, limit: int | None = None, after: str | None = None, email: str | None = None,
                  q: str | None = None):
    qs = Contact.objects.all()
    if email:
        qs = qs.filter(email_rows__email=email.strip().lower())
    if q:
        qs = qs.filter(name__icontains=q)
    return paginate(qs, limit, after, contact_out)


@contacts.post("", auth=WRITE, response={201: dict}, summary="Create a contact")
def create_contact(request, payload: ContactIn):
    return Status(201, contact_out(services.create_contact(request.user, _patch(payload))))


@contacts.get("/{record_id}", auth=READ, summary="Get a contact")
def get_contact(request, record_id: int):
    return contact_out(records.get_record("contact", record_id))


@contacts.patch("/{record_id}", auth=WRITE, summary="Update a contact")
def update_contact(request, record_id: int, payload: ContactPatch):
    contact = records.get_record("contact", record_id)
    return contact_out(services.update_contact(request.user, contact, _patch(payload)))


add_record_routes(contacts, "contact", "crm")

# --- companies -----------------------------------------------------------------------

companies = Router(tags=["companies"])


class CompanyIn(AddressFields):
    name: str = Field(..., min_length=1)
    domains: list[str] = []
    phone: str = ""
    owner_id: int | None = None


class CompanyPatch(AddressPatch):
    name: str | None = Field(None, min_length=1)
    domains: list[str] | None = None
    phone: str | None = None
    owner_id: int | None = None


def company_out(c: Company) -> dict:
    return {**_base(c), "name": c.name, "domains": c.domains, "phone": c.phone, **{f: getattr(c, f) for f in ADDRESS}}


@companies.get("", auth=READ, summary="List companies")
def list_companies(request, limit: int | None = None, after: str | None = None, q: str | None = None):
    qs = Company.objects.all()
    if q:
        qs = qs.filter(name__icontains=q)
    return paginate(qs, limit, after, company_out)


@companies.post("", auth=WRITE, response={201: dict}, summary="Create a company")
def create_company(request, payload: CompanyIn):
    return Status(201, company_out(services.create_company(request.user, _patch(payload))))


@companies.get("/{record_id}", auth=READ, summary="Get a company")
def get_company(request, record_id: int):
    return company_out(records.get_record("company", record_id))


@companies.patch("/{record_id}", auth=WRITE, summary="Update a company")
def update_company(request, record_id: int, payload: CompanyPatch):
    company = records.get_record("company", record_id)
    return company_out(services.update_company(request.user, company, _patch(payload)))


add_record_routes(companies, "company", "crm")

# --- deals ---------------------------------------------------------------------------

deals = Router(tags=["deals"])


class DealIn(Schema):
    name: str = Field(..., min_length=1)
    line_items: list[dict] | None = None
    amount: MoneySchema | None = None
    stage: str = "appointment_scheduled"
    close_date: dt.date | None = None
    owner_id: int | None = None


class DealPatch(Schema):
    name: str | None = Field(None, min_length=1)
    line_items: list[dict] | None = None
    amount: MoneySchema | None = None
    stage: str | None = None
    close_date: dt.date | None = None
    owner_id: int | None = None


def _deal_data(payload: Schema) -> dict:
    data = _patch(payload)
    data.pop("line_items", None)
    if "amount" in data:
        parsed = money_in(data.pop("amount"), "amount")
        if parsed:
            data["amount"], data["currency"] = parsed
    return data


def deal_out(d: Deal) -> dict:
    return {**_base(d), "name": d.name, "amount": money_out(d.amount, d.currency), "stage": d.stage,
            "close_date": iso(d.close_date), "line_items": [line_item_out(li, d.currency) for li in d.line_items.all()]}


def _deal_items(request, deal: Deal, payload) -> None:
    """Line items (same shape as a subscription's) replace the deal's, when given."""
    if payload.line_items is not None:
        from pydantic import ValidationError as PydanticError

        from recur.api.subscriptions import LineItemIn, line_items_in
        from recur.crm import quotes

        try:
            items = [LineItemIn(**it) for it in payload.line_items]
        except (PydanticError, TypeError) as exc:
            raise ValidationFailed(f"line_items: {exc}", field="line_items") from None
        quotes.set_deal_line_items(request.user, deal, line_items_in(items))


@deals.get("", auth=READ, summary="List deals")
def list_deals(request, limit: int | None = None, after: str | None = None, stage: str | None = None):
    qs = Deal.objects.all()
    if stage:
        qs = qs.filter(stage=stage)
    return paginate(qs, limit, after, deal_out)


@deals.post("", auth=WRITE, response={201: dict}, summary="Create a deal (with line items, optionally)")
def create_deal(request, payload: DealIn):
    with transaction.atomic():
        deal = services.create_deal(request.user, _deal_data(payload))
        _deal_items(request, deal, payload)
    return Status(201, deal_out(deal))


@deals.get("/{record_id}", auth=READ, summary="Get a deal")
def get_deal(request, record_id: int):
    return deal_out(records.get_record("deal", record_id))


@deals.patch("/{record_id}", auth=WRITE, summary="Update a deal")
def update_deal(request, record_id: int, payload: DealPatch):
    deal = records.get_record("deal", record_id)
    with transaction.atomic():
        deal = services.update_deal(request.user, deal, _deal_data(payload))
        _deal_items(request, deal, payload)
    return deal_out(deal)


@deals.post("/{record_id}/convert-to-subscription", auth=scoped("subscriptions:write"),
            summary="The deal's recurring line items become subscriptions (R-NEW-5, R-SIGN-4)")
def deal_to_subscription(request, record_id: int, payload: ConvertIn):
    from recur.subscriptions import conversions

    deal = records.get_record("deal", record_id)
    return conversion_out(conversions.bill_due_now(conversions.deal_to_subscriptions(request.user, deal, payload.dict())))


@deals.post("/{record_id}/convert-to-invoice", auth=scoped("subscriptions:write"), response={201: dict},
            summary="A deal without recurring line items becomes an invoice (R-NEW-5)")
def deal_to_invoice(request, record_id: int, payload: ConvertIn):
    from recur.subscriptions import conversions

    deal = records.get_record("deal", record_id)
    return Status(201, invoice_out(conversions.deal_to_invoice(request.user, deal, payload.dict())))


add_record_routes(deals, "deal", "crm")

# --- products ------------------------------------------------------------------------

products = Router(tags=["products"])


class ProductIn(Schema):
    name: str = Field(..., min_length=1)
    sku: str | None = None
    description: str = ""
    unit_price: MoneySchema
    billing_frequency: str | None = None
    tax_rate: Decimal = Decimal(0)
    owner_id: int | None = None


class ProductPatch(Schema):
    name: str | None = Field(None, min_length=1)
    sku: str | None = None
    description: str | None = None
    unit_price: MoneySchema | None = None
    billing_frequency: str | None = None
    tax_rate: Decimal | None = None
    archived: bool | None = None
    owner_id: int | None = None


def _product_data(payload: Schema) -> dict:
    data = _patch(payload)
    if "unit_price" in data:
        parsed = money_in(data.pop("unit_price"), "unit_price")
        if parsed:
            data["unit_price"], data["currency"] = parsed
    return data


def product_out(p: Product) -> dict:
    return {**_base(p), "name": p.name, "sku": p.sku, "description": p.description,
            "unit_price": money_out(p.unit_price, p.currency), "billing_frequency": p.billing_frequency,
            "tax_rate": str(p.tax_rate), "archived": p.archived}


@products.get("", auth=READ, summary="List products")
def list_products(request, limit: int | None = None, after: str | None = None, archived: bool | None = None):
    qs = Product.objects.all()
    if archived is not None:
        qs = qs.filter(archived=archived)
    return paginate(qs, limit, after, product_out)


@products.post("", auth=WRITE, response={201: dict}, summary="Create a product")
def create_product(request, payload: ProductIn):
    return Status(201, product_out(services.create_product(request.user, _product_data(payload))))


@products.get("/{record_id}", auth=READ, summary="Get a product")
def get_product(request, record_id: int):
    return product_out(records.get_record("product", record_id))


@products.patch("/{record_id}", auth=WRITE, summary="Update a product")
def update_product(request, record_id: int, payload: ProductPatch):
    product = records.get_record("product", record_id)
    return product_out(services.update_product(request.user, product, _product_data(payload)))


add_record_routes(products, "product", "crm")
