"""R-NEW-3 manual-collection options through the API: collect billing / shipping address, save the
payment method for future charges."""

import pytest

from recur.crm import services as crm
from recur.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db

ITEM = {"name": "Support", "unit_price": {"amount": "49.00", "currency": "EUR"}, "quantity": 1,
        "billing_frequency": "monthly"}


def test_options_are_stored_and_returned(api, admin):
    contact = crm.create_contact(admin, {"name": "Anna", "email": "anna@example.nl"})
    r = api.post("/subscriptions", {"contact_id": contact.pk, "collection": "manual", "line_items": [ITEM],
                                    "collect_billing_address": True, "save_payment_method": True})
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["collect_billing_address"], body["collect_shipping_address"], body["save_payment_method"]) \
        == (True, False, True)
    sub = Subscription.objects.get(pk=body["id"])
    assert (sub.collect_billing_address, sub.collect_shipping_address, sub.save_payment_method) == (True, False, True)
    assert api.get(f"/subscriptions/{sub.pk}").json()["save_payment_method"] is True


def test_options_default_off(api, admin):
    contact = crm.create_contact(admin, {"name": "Bram", "email": "bram@example.nl"})
    body = api.post("/subscriptions", {"contact_id": contact.pk, "collection": "manual",
                                       "line_items": [ITEM]}).json()
    assert not (body["collect_billing_address"] or body["collect_shipping_address"] or body["save_payment_method"])


def test_options_can_be_changed_after_creation(api, admin):
    contact = crm.create_contact(admin, {"name": "Cor", "email": "cor@example.nl"})
    body = api.post("/subscriptions", {"contact_id": contact.pk, "collection": "manual",
                                       "line_items": [dict(ITEM, billing_start_date="2099-01-01")]}).json()
    r = api.patch(f"/subscriptions/{body['id']}", {"collect_shipping_address": True, "save_payment_method": True,
                                                   "accepted_payment_methods": ["bank_account"]})
    assert r.status_code == 200, r.content
    sub = Subscription.objects.get(pk=body["id"])
    assert (sub.collect_billing_address, sub.collect_shipping_address, sub.save_payment_method) == (False, True, True)
    assert sub.accepted_payment_methods == ["bank_account"]
    # a bad method list names the field and changes nothing
    r = api.patch(f"/subscriptions/{sub.pk}", {"accepted_payment_methods": ["cash"], "save_payment_method": False})
    assert r.status_code == 422 and r.json()["error"]["field"] == "accepted_payment_methods"
    sub.refresh_from_db()
    assert sub.save_payment_method and sub.accepted_payment_methods == ["bank_account"]
