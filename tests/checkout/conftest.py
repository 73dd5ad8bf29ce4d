"""Builders for the buyer's-pages tests: contacts, subscriptions and invoices made through the services."""

from __future__ import annotations


import pytest

from recur.billing import engine
from recur.billing.models import Invoice
from recur.crm import services as crm
from recur.payments import services as payments
from recur.subscriptions import services as subs

CARDS = {
    "ok": "4242424242424242",
    "declined": "4000000000000002",
    "insufficient": "4000000000009995",
}


def card(number="4242424242424242", exp_month=12, exp_year=2035, cvc="123"):
    return {"type": "card", "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc}}


def bank(account="000123456789", routing="110000000", holder="Anna de Vries"):
    return {"type": "bank_account",
            "bank_account": {"routing_number": routing, "account_number": account, "holder_name": holder}}


def card_form(number="4242 4242 4242 4242", month="12", year="2035", cvc="123", name="Anna de Vries"):
    return {"method": "card", "card_number": number, "card_exp_month": month, "card_exp_year": year,
            "card_cvc": cvc, "card_name": name}


def bank_form(account="000123456789", routing="110000000", holder="Anna de Vries"):
    return {"method": "bank_account", "bank_holder": holder, "bank_routing": routing, "bank_account": account}


def make_contact(admin, name="Anna de Vries", email="anna@example.nl", language="nl"):
    return crm.create_contact(admin, {"name": name, "email": email, "language": language,
                                      "address_line1": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht",
                                      "country": "NL"})


def make_subscription(admin, contact, *, card_number=None, collection="auto_charge", price=4900,
                      payment_terms="due_on_receipt", accepted=None, name="Support plan", tax_rate="0",
                      quantity=1, discount_percent="0"):
    """A monthly subscription starting today, billed at once (as the API does)."""
    pm = None
    if card_number:
        pm = payments.add_payment_method(admin, contact, card(card_number))
    data = {"contact_id": contact.pk, "collection": collection, "payment_method_id": pm.pk if pm else None,
            "payment_terms": payment_terms, "name": name,
            "line_items": [{"name": name, "unit_price": price, "currency": "EUR", "quantity": quantity,
                            "billing_frequency": "monthly", "tax_rate": tax_rate,
                            "discount_percent": discount_percent}]}
    if accepted is not None:
        data["accepted_payment_methods"] = accepted
    sub = subs.create_subscription(admin, data)
    engine.run(only=[sub.pk])
    sub.refresh_from_db()
    return sub


def first_invoice(sub) -> Invoice:
    return Invoice.objects.filter(subscription=sub).order_by("pk").first()


