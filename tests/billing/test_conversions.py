"""Quotes and deals become subscriptions or invoices (R-NEW-5, R-NEW-6, R-SIGN-2, R-SIGN-4, R-SIGN-6)."""

import datetime as dt

import pytest

from recur.billing.models import Invoice
from recur.core import records
from recur.notifications.models import OutboxMessage
from recur.subscriptions.models import Subscription
from tests.billing.conftest import item

pytestmark = pytest.mark.django_db
D = dt.date


def one_time(**kw):
    return {"name": "Onboarding", "unit_price": {"amount": "150.00", "currency": "EUR"}, "quantity": 1, **kw}


@pytest.fixture
def crm_setup(api, buyer, on):
    on(D(2027, 1, 20))
    contact, _ = buyer(card=None)
    company = api.post("/companies", {"name": "Bakkerij Jansen", "domains": ["jansen.nl"]}).json()
    api.post(f"/contacts/{contact.pk}/associations", {"to_type": "company", "to_id": company["id"]})
    deal = api.post("/deals", {"name": "Jansen deal", "amount": {"amount": "1000.00", "currency": "EUR"}}).json()
    api.post(f"/deals/{deal['id']}/associations", {"to_type": "contact", "to_id": contact.pk})
    return contact, company, deal


def test_quote_with_monthly_and_annual_items_gives_two_subscriptions(api, crm_setup):
    contact, company, deal = crm_setup
    q = api.post("/quotes", {"contact_id": contact.pk, "deal_id": deal["id"], "expires_on": "2027-12-31",
                             "line_items": [item(name="Seat", quantity=3, unit_price={"amount": "25.00", "currency": "EUR"},
                                                 billing_start_date="2027-02-01"),
                                            item(name="Yearly support", billing_frequency="annually",
                                                 billing_start_date="2027-02-01"),
                                            item(name="Extra seat", billing_start_date="2027-02-01"),
                                            one_time()]})
    assert q.status_code == 201, q.content
    q = q.json()
    assert q["status"] == "draft" and q["url"] is None
    r = api.post(f"/quotes/{q['id']}/convert-to-subscription", {"collection": "manual"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "quote_not_published"
    q = api.post(f"/quotes/{q['id']}/publish").json()
    assert q["status"] == "published" and q["url"].startswith("http")
    r = api.post(f"/quotes/{q['id']}/convert-to-subscription", {"collection": "manual", "payment_terms": "net_15"})
    assert r.status_code == 200, r.content
    subs = r.json()["subscriptions"]
    assert len(subs) == 2  # monthly (Seat + Extra seat) and annual
    monthly, annual = subs
    assert [li["name"] for li in monthly["line_items"]] == ["Seat", "Extra seat"]
    assert monthly["amount"]["amount"] == "124.00" and monthly["billing_frequency"] == "monthly"
    assert annual["billing_frequency"] == "annually" and annual["status"] == "scheduled"
    for s in subs:  # R-SIGN-2: contact, company, deal and quote
        assert s["contact_id"] == contact.pk and s["company_id"] == company["id"]
        assert s["deal_ids"] == [deal["id"]] and s["quote_id"] == q["id"]
        assert s["collection"] == "manual" and s["payment_terms"] == "net_15"
    inv = r.json()["invoice"]  # the one-time item goes on an invoice
    assert inv["total"]["amount"] == "150.00" and inv["status"] == "open"
    linked = {t for t, _, _ in records.associated_ids("invoice", inv["id"])}
    assert linked == {"contact", "deal", "quote", "company"}


def test_quote_without_recurring_items_converts_to_invoice(api, crm_setup):
    contact, company, deal = crm_setup
    q = api.post("/quotes", {"contact_id": contact.pk, "line_items": [one_time(), one_time(name="Training")]}).json()
    api.post(f"/quotes/{q['id']}/publish")
    r = api.post(f"/quotes/{q['id']}/convert-to-subscription", {})
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_recurring_items"
    r = api.post(f"/quotes/{q['id']}/convert-to-invoice", {"payment_terms": "net_30"})
    assert r.status_code == 201, r.content
    inv = r.json()
    assert inv["total"]["amount"] == "300.00" and inv["due_date"] == "2027-02-19"
    assert OutboxMessage.objects.filter(kind="invoice_issued", record_id=inv["id"]).count() == 1
    assert not Subscription.objects.exists()


def test_deal_converts_with_its_associations(api, crm_setup):
    contact, company, deal = crm_setup
    r = api.patch(f"/deals/{deal['id']}", {"line_items": [item(billing_terms="fixed", number_of_payments=6)]})
    assert r.status_code == 200 and len(r.json()["line_items"]) == 1
    r = api.post(f"/deals/{deal['id']}/convert-to-invoice", {})
    assert r.status_code == 409 and r.json()["error"]["code"] == "has_recurring_items"
    r = api.post(f"/deals/{deal['id']}/convert-to-subscription", {"collection": "manual", "payment_terms": "net_30"})
    assert r.status_code == 200, r.content
    (s,) = r.json()["subscriptions"]
    assert s["status"] == "active" and s["start_date"] == "2027-01-20" and s["end_date"] == "2027-07-20"
    assert s["deal_ids"] == [deal["id"]] and s["company_id"] == company["id"]
    assert Invoice.objects.filter(subscription_id=s["id"]).count() == 1  # the first period was invoiced at once


def test_bad_quote_input(api, crm_setup, on):
    contact, _, _ = crm_setup
    r = api.post("/quotes", {"contact_id": contact.pk, "line_items": [item(), one_time(unit_price={"amount": "1.00", "currency": "USD"})]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "line_items[1].unit_price.currency"
    r = api.post("/quotes", {"contact_id": contact.pk, "expires_on": "2026-01-01", "line_items": [item()]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "expires_on"
    q = api.post("/quotes", {"contact_id": contact.pk, "expires_on": "2027-02-01", "line_items": [item()]}).json()
    api.post(f"/quotes/{q['id']}/publish")
    on(D(2027, 2, 2))
    r = api.post(f"/quotes/{q['id']}/convert-to-subscription", {})
    assert r.status_code == 409 and r.json()["error"]["code"] == "quote_expired"
    assert api.get(f"/quotes/{q['id']}").json()["status"] == "expired"
    assert not Subscription.objects.exists()


def test_a_quote_converts_once(api, crm_setup):
    """A converted quote is accepted and cannot be converted again (no second set of subscriptions)."""
    contact, _, _ = crm_setup
    q = api.post("/quotes", {"contact_id": contact.pk, "line_items": [item()]}).json()
    api.post(f"/quotes/{q['id']}/publish")
    assert api.post(f"/quotes/{q['id']}/convert-to-subscription", {}).status_code == 200
    assert api.get(f"/quotes/{q['id']}").json()["status"] == "accepted"
    r = api.post(f"/quotes/{q['id']}/convert-to-subscription", {})
    assert r.status_code == 409 and r.json()["error"]["code"] == "quote_converted"
    assert Subscription.objects.count() == 1


def test_a_deal_converts_once(api, crm_setup):
    contact, company, deal = crm_setup
    api.patch(f"/deals/{deal['id']}", {"line_items": [item()]})
    assert api.post(f"/deals/{deal['id']}/convert-to-subscription", {}).status_code == 200
    r = api.post(f"/deals/{deal['id']}/convert-to-subscription", {})
    assert r.status_code == 409 and r.json()["error"]["code"] == "deal_converted"
    assert Subscription.objects.count() == 1
    r = api.delete(f"/contacts/{contact.pk}")  # the subscription protects its contact
    assert r.status_code == 409 and r.json()["error"]["code"] == "protected"
