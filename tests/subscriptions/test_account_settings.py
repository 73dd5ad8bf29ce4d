"""Account settings that shape new subscriptions: "associate billing contacts" (R-SIGN-2) and the default
accepted payment methods (R-NEW-3)."""

import datetime as dt

import pytest

from recur.core import account, records
from recur.crm import services as crm
from recur.subscriptions import conversions
from recur.subscriptions import services as subs
from tests.billing.conftest import buyer, item  # noqa: F401  (buyer: a fixture)

pytestmark = pytest.mark.django_db
D = dt.date


@pytest.fixture
def quote(api, buyer, on):
    """A published quote with one recurring item, for a contact of a company."""
    on(D(2027, 1, 20))
    contact, _ = buyer(card=None)
    company = api.post("/companies", {"name": "Bakkerij Jansen", "domains": ["jansen.nl"]}).json()
    api.post(f"/contacts/{contact.pk}/associations", {"to_type": "company", "to_id": company["id"]})
    q = api.post("/quotes", {"contact_id": contact.pk, "expires_on": "2027-12-31",
                             "line_items": [item(billing_start_date="2027-02-01")]}).json()
    assert api.post(f"/quotes/{q['id']}/publish").status_code == 200
    from recur.crm.models import Quote

    return Quote.objects.get(pk=q["id"])


def linked(sub, record_type):
    return [(i, label) for _, i, label in records.associated_ids("subscription", sub.pk, record_type)]


def test_converted_subscription_is_associated_with_its_billing_contact_by_default(admin, quote):
    assert account.current().associate_billing_contacts is True
    sub, = conversions.quote_to_subscriptions(admin, quote, {"collection": "manual"})["subscriptions"]
    assert linked(sub, "contact") == [(quote.contact_id, "billing_contact")]


def test_associate_billing_contacts_off(admin, quote):
    account.update(admin, {"associate_billing_contacts": False})
    sub, = conversions.quote_to_subscriptions(admin, quote, {"collection": "manual"})["subscriptions"]
    assert linked(sub, "contact") == []  # not associated …
    assert sub.contact_id == quote.contact_id  # … but still billed to the contact
    assert [i for i, _ in linked(sub, "quote")] == [quote.pk] and len(linked(sub, "company")) == 1
    history = records.history("contact", quote.contact_id).filter(action="associated")
    assert not history.filter(changes__has_key="subscription").exists()


def test_a_subscription_created_directly_names_its_contact_whatever_the_setting(admin):
    account.update(admin, {"associate_billing_contacts": False})
    contact = crm.create_contact(admin, {"name": "Piet", "email": "piet@example.nl"})
    sub = subs.create_subscription(admin, {"contact_id": contact.pk, "collection": "manual", "line_items": [{
        "name": "Plan", "unit_price": 1000, "currency": "EUR", "quantity": 1, "billing_frequency": "monthly"}]})
    assert linked(sub, "contact") == [(contact.pk, "billing_contact")]


def test_default_payment_methods_fill_new_subscriptions_and_payment_links(admin, api):
    from recur.checkout import payment_links

    account.update(admin, {"default_payment_methods": ["bank_account"]})
    contact = crm.create_contact(admin, {"name": "Piet", "email": "piet@example.nl"})
    line = {"name": "Plan", "unit_price": 1000, "currency": "EUR", "quantity": 1, "billing_frequency": "monthly"}
    sub = subs.create_subscription(admin, {"contact_id": contact.pk, "collection": "manual", "line_items": [line]})
    assert sub.accepted_payment_methods == ["bank_account"]
    link = payment_links.create_payment_link(admin, {"line_items": [line]})
    assert link.accepted_payment_methods == ["bank_account"]
    chosen = payment_links.create_payment_link(admin, {"line_items": [line], "accepted_payment_methods": ["card"]})
    assert chosen.accepted_payment_methods == ["card"]  # a link's own choice wins
