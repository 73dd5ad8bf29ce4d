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


def test_edit_page_changes_the_options_of_a_manual_subscription(seller, make_sub, on):
    from tests.web.test_subscription_pages import _edit_data

    on(dt.date(2027, 3, 1))
    sub = make_sub(collection="manual", start="2027-03-01")
    on(dt.date(2027, 3, 10))
    page = html(seller.get(f"/subscriptions/{sub.pk}/edit/"))
    assert 'name="collect_shipping_address"' in page and 'name="accepted_payment_methods"' in page
    base = _edit_data(sub, payment_terms=sub.payment_terms, save="1", accept_online_payments="on",
                      accepted_payment_methods=["card", "bank_account"])
    # online payments without any accepted method is refused beside the field; nothing changes
    page = html(seller.post(f"/subscriptions/{sub.pk}/edit/", {**base, "accepted_payment_methods": [],
                                                                "collect_shipping_address": "on"}))
    assert "Choose at least one payment method the buyer may use." in page
    sub.refresh_from_db()
    assert not sub.collect_shipping_address
    r = seller.post(f"/subscriptions/{sub.pk}/edit/", {**base, "accepted_payment_methods": ["card"],
                                                        "collect_shipping_address": "on", "save_payment_method": "on"})
    assert r.status_code == 302
    sub.refresh_from_db()
    assert (sub.collect_billing_address, sub.collect_shipping_address, sub.save_payment_method) == (False, True, True)
    assert sub.accepted_payment_methods == ["card"] and sub.accept_online_payments
    # the change is in the subscription's history
    page = html(seller.get(f"/subscriptions/{sub.pk}/"))
    assert "Collect shipping address" in page


def test_edit_page_of_an_automatic_subscription_has_no_invoice_page_options(seller, make_sub, on):
    on(dt.date(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    on(dt.date(2027, 3, 10))
    page = html(seller.get(f"/subscriptions/{sub.pk}/edit/"))
    assert 'name="collect_shipping_address"' not in page and 'name="payment_method"' in page


def test_subscription_page_lists_the_invoice_page_options(seller, make_sub, on):
    on(dt.date(2027, 3, 1))
    sub = make_sub(collection="manual", start="2027-03-01")
    Subscription.objects.filter(pk=sub.pk).update(accepted_payment_methods=["card"], collect_billing_address=True)
    page = html(seller.get(f"/subscriptions/{sub.pk}/"))
    assert 'data-testid="invoice-page-options">Card, Collect billing address<' in page
