"""State changes of CRM records. Views, API and CLI call these; nothing else
writes CRM models. One call = one transaction; bad input raises
``ValidationFailed`` naming the field and changes nothing."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from recur.core import records
from recur.core.errors import Conflict, ValidationFailed, currency_message
from recur.core.money import validate_currency
from recur.crm.models import Company, Contact, ContactEmail, Deal, Product

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


def _clean_email(value: str, field: str) -> str:
    value = (value or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise ValidationFailed(_("%(field)s: %(value)s is not a valid e-mail address")
                               % {"field": field, "value": repr(value)}, field=field) from None
    return value


def _clean_currency(data: dict, field: str = "currency") -> None:
    if field in data:
        try:
            data[field] = validate_currency(data[field])
        except ValueError:
            raise ValidationFailed(currency_message(field, data[field]), field=field) from None


def _unknown_fields(model, data: dict, extra: set[str] = frozenset()) -> None:
    allowed = {f.name for f in model._meta.get_fields()} | set(extra)
    for key in data:
        if key not in allowed or key in {"id", "created_at", "updated_at"}:
            raise ValidationFailed(_("%(field)s: unknown field") % {"field": key}, field=key)


# --- contacts ----------------------------------------------------------------


def _contact_emails(contact: Contact | None, data: dict) -> None:
    """Normalise the primary and other e-mails and check no other contact has them."""
    if "email" in data:
        data["email"] = _clean_email(data["email"], "email") if data["email"] else None
    if "other_emails" in data:
        others = []
        for i, e in enumerate(data["other_emails"] or []):
            cleaned = _clean_email(e, f"other_emails[{i}]")
            if cleaned not in others:
                others.append(cleaned)
        data["other_emails"] = others
    primary = data.get("email", contact.email if contact else None)
    others = data.get("other_emails", contact.other_emails if contact else [])
    others = [e for e in others if e != primary]
    if "other_emails" in data or "email" in data:
        data["other_emails"] = others
    taken = ContactEmail.objects.filter(email__in=([primary] if primary else []) + others)
    if contact is not None:
        taken = taken.exclude(contact=contact)
    clash = taken.values_list("email", flat=True).first()
    if clash:
        field = "email" if clash == primary else "other_emails"
        raise ValidationFailed(_("%(field)s: %(email)s already belongs to another contact")
                               % {"field": field, "email": clash}, field=field)


def _sync_email_rows(contact: Contact) -> None:
    ContactEmail.objects.filter(contact=contact).delete()
    rows = [ContactEmail(contact=contact, email=contact.email, is_primary=True)] if contact.email else []
    rows += [ContactEmail(contact=contact, email=e) for e in contact.other_emails]
    ContactEmail.objects.bulk_create(rows)


@transaction.atomic
def create_contact(actor, data: dict[str, Any]) -> Contact:
    data = dict(data)
    _unknown_fields(Contact, data)
    _contact_emails(None, data)
    try:
        contact = records.create(Contact, actor, data)
        _sync_email_rows(contact)
    except IntegrityError:  # a concurrent request took the address
        raise Conflict(_("email: this e-mail address already belongs to another contact"), field="email") from None
    return contact


@transaction.atomic
def update_contact(actor, contact: Contact, data: dict[str, Any]) -> Contact:
    data = dict(data)
    _unknown_fields(Contact, data)
    _contact_emails(contact, data)
    contact = records.update(contact, actor, data)
    _sync_email_rows(contact)
    return contact


def find_contact_by_email(email: str) -> Contact | None:
    row = ContactEmail.objects.filter(email=email.strip().lower()).select_related("contact").first()
    return row.contact if row else None


# --- companies ---------------------------------------------------------------


def _clean_domains(data: dict) -> None:
    if "domains" not in data:
        return
    out = []
    for i, d in enumerate(data["domains"] or []):
        d = (d or "").strip().lower().removeprefix("https://").removeprefix("http://").removeprefix("www.").rstrip("/")
        if not _DOMAIN.match(d):
            raise ValidationFailed(_("%(field)s: %(value)s is not a valid domain name")
                                   % {"field": f"domains[{i}]", "value": repr(d)}, field="domains")
        if d not in out:
            out.append(d)
    data["domains"] = out


@transaction.atomic
def create_company(actor, data: dict[str, Any]) -> Company:
    data = dict(data)
    _unknown_fields(Company, data)
    _clean_domains(data)
    return records.create(Company, actor, data)


@transaction.atomic
def update_company(actor, company: Company, data: dict[str, Any]) -> Company:
    data = dict(data)
    _unknown_fields(Company, data)
    _clean_domains(data)
    return records.update(company, actor, data)


# --- deals and products ----------------------------------------------------------


@transaction.atomic
def create_deal(actor, data: dict[str, Any]) -> Deal:
    data = dict(data)
    _unknown_fields(Deal, data)
    _clean_currency(data)
    return records.create(Deal, actor, data)


@transaction.atomic
def update_deal(actor, deal: Deal, data: dict[str, Any]) -> Deal:
    data = dict(data)
    _unknown_fields(Deal, data)
    _clean_currency(data)
    return records.update(deal, actor, data)


@transaction.atomic
def create_product(actor, data: dict[str, Any]) -> Product:
    data = dict(data)
    _unknown_fields(Product, data)
    _clean_currency(data)
    if not data.get("sku"):
        data["sku"] = None
    return records.create(Product, actor, data)


@transaction.atomic
def update_product(actor, product: Product, data: dict[str, Any]) -> Product:
    data = dict(data)
    _unknown_fields(Product, data)
    _clean_currency(data)
    if "sku" in data and not data["sku"]:
        data["sku"] = None
    return records.update(product, actor, data)


def delete_record(actor, obj) -> None:
    """Delete a CRM record; one that subscriptions, invoices or payments still point at is refused (409)."""
    records.delete(obj, actor)
