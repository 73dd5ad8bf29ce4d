"""/contacts/{id}/payment-methods (SPEC §12, R-PAY-1): add, list, remove.

Mounted by ``recur.api.urls`` with ``api.add_router("/contacts", payment_methods)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Router, Schema, Status

from recur.api.base import iso, paginate, scoped
from recur.core import records
from recur.payments import services
from recur.payments.models import PaymentMethod

READ, WRITE = scoped("billing:read"), scoped("billing:write")

payment_methods = Router()


class CardIn(Schema):
    number: str
    exp_month: int
    exp_year: int
    cvc: str


class BankAccountIn(Schema):
    routing_number: str
    account_number: str
    holder_name: str


class PaymentMethodIn(Schema):
    """Built-in processor: ``card`` or ``bank_account`` details; Stripe: a PaymentMethod id."""

    type: Literal["card", "bank_account", "stripe"]
    card: CardIn | None = None
    bank_account: BankAccountIn | None = None
    stripe_payment_method: str | None = None


def method_out(m: PaymentMethod) -> dict:
    return {
        "id": m.pk, "contact_id": m.contact_id, "type": m.type, "processor": m.processor, "brand": m.brand,
        "last4": m.last4, "exp_month": m.exp_month, "exp_year": m.exp_year,
        "created_at": iso(m.created_at.astimezone(dt.timezone.utc)),
    }


@payment_methods.post("/{contact_id}/payment-methods", auth=WRITE, response={201: dict},
                      summary="Add a payment method to a contact")
def add_payment_method(request, contact_id: int, payload: PaymentMethodIn):
    contact = records.get_record("contact", contact_id)
    method = services.add_payment_method(request.user, contact, payload.dict(exclude_none=True))
    return Status(201, method_out(method))


@payment_methods.get("/{contact_id}/payment-methods", auth=READ, summary="List a contact's payment methods")
def list_payment_methods(request, contact_id: int, limit: int | None = None, after: str | None = None):
    contact = records.get_record("contact", contact_id)
    return paginate(services.list_payment_methods(contact), limit, after, method_out)


@payment_methods.delete("/{contact_id}/payment-methods/{method_id}", auth=WRITE, response={204: None},
                        summary="Remove a payment method (past payments keep it)")
def remove_payment_method(request, contact_id: int, method_id: int):
    contact = records.get_record("contact", contact_id)
    services.remove_payment_method(request.user, services.get_payment_method(contact, method_id))
    return Status(204, None)
