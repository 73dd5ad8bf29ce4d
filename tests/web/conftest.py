import datetime as dt

import pytest
from django.test import Client

from recur.billing import engine
from recur.core import clock
from recur.crm import services as crm
from recur.payments import services as payments
from recur.subscriptions import services as subs
from tests.billing.conftest import CARDS  # noqa: F401


@pytest.fixture
def seller(admin):
    c = Client()
    c.force_login(admin)
    return c


@pytest.fixture
def contact(admin):
    return crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"})


@pytest.fixture
def card(admin, contact):
    return payments.add_payment_method(admin, contact, {
        "type": "card", "card": {"number": CARDS["ok"], "exp_month": 12, "exp_year": 2035, "cvc": "123"}})


@pytest.fixture
def make_sub(admin, contact, card):
    """A subscription through the service; billed at once when due today (as the API does)."""

    def make(price=4900, start=None, name="Support plan", who=None, pm=None, collection="auto_charge", **kw):
        item = {"name": name, "unit_price": price, "currency": "EUR", "quantity": 1, "billing_frequency": "monthly"}
        if start:
            item["billing_start_date"] = start
        item.update(kw)
        data = {"contact_id": (who or contact).pk, "collection": collection, "line_items": [item]}
        if collection == "auto_charge":
            data["payment_method_id"] = (pm or card).pk
        sub = subs.create_subscription(admin, data)
        if sub.next_payment_date and sub.next_payment_date <= clock.today():
            engine.run(only=[sub.pk])
        sub.refresh_from_db()
        return sub

    return make


D = dt.date
