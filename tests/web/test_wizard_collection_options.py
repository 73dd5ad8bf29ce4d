"""The create-subscription wizard's R-NEW-3 manual-collection options: shown, confirmed, stored."""

from __future__ import annotations

import datetime as dt

import pytest

from recur.subscriptions.models import Subscription
from tests.web.test_subscription_pages import _wizard, html

pytestmark = pytest.mark.django_db


def test_wizard_shows_confirms_and_stores_the_options(seller, contact, card, on):
    on(dt.date(2027, 3, 10))
    page = html(seller.get("/subscriptions/new/"))
    for name in ("collect_billing_address", "collect_shipping_address", "save_payment_method"):
        assert f'name="{name}"' in page
    assert "Save payment method for future charges" in page
    data = _wizard(contact, card, collection="manual", payment_method="", collect_billing_address="on",
                   save_payment_method="on")
    page = html(seller.post("/subscriptions/new/", data))
    assert "Check the subscription before it is created" in page
    assert "Collect billing address, Save payment method for future charges" in page
    assert "Collect shipping address" not in page
    seller.post("/subscriptions/new/", {**data, "create": "1"})
    sub = Subscription.objects.get()
    assert sub.collection == "manual"
    assert (sub.collect_billing_address, sub.collect_shipping_address, sub.save_payment_method) == (True, False, True)


def test_options_are_not_stored_for_automatic_collection(seller, contact, card, on):
    on(dt.date(2027, 3, 10))
    seller.post("/subscriptions/new/", _wizard(contact, card, confirm=None, create="1",
                                               collect_billing_address="on", save_payment_method="on"))
    sub = Subscription.objects.get()
    assert sub.collection == "auto_charge" and not (sub.collect_billing_address or sub.save_payment_method)
