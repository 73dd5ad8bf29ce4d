import datetime as dt

import pytest

from recur.core import clock
from recur.crm.services import create_contact
from recur.payments.builtin import BuiltinProcessor
from recur.payments.processor import ChargeRequest

MONDAY = dt.date(2027, 3, 1)


@pytest.fixture
def processor():
    return BuiltinProcessor()


@pytest.fixture
def contact(db):
    return create_contact(None, {"name": "Anna de Vries", "email": "anna@example.nl"})


def card(number="4242424242424242", exp_month=12, exp_year=2030, cvc="123"):
    return {"type": "card", "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc}}


def bank(account="000123456789", routing="110000000", holder="Anna de Vries"):
    return {"type": "bank_account",
            "bank_account": {"routing_number": routing, "account_number": account, "holder_name": holder}}


@pytest.fixture
def save(processor, contact):
    """Tokenize details for the contact; returns the SavedMethod."""

    def make(details):
        with clock.freeze(MONDAY):
            return processor.save_payment_method(processor.ensure_customer(contact), details)

    return make


def request(key, method, amount=1250, currency="EUR"):
    return ChargeRequest(idempotency_key=key, payment_method_ref=method.processor_ref, customer_ref="",
                         amount=amount, currency=currency)
