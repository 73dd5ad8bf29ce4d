"""Voiding an invoice and writing it off as uncollectible (issue #3: invoice statuses draft/open/paid/
void/uncollectible), through the API: what is due, the dunning of its cycle, the subscription's status."""

from __future__ import annotations

import datetime as dt

import pytest

from recur.billing import engine
from recur.billing.models import BillingCycle, Invoice, PaymentAttempt
from recur.core.models import HistoryEntry
from recur.subscriptions.models import Subscription
from tests.billing.conftest import create

pytestmark = pytest.mark.django_db
D = dt.date


def first_invoice(api, sub_id):
    return api.get(f"/subscriptions/{sub_id}/invoices").json()["items"][-1]


def overdue_manual(api, buyer, on):
    """A manual subscription (net 15) whose first invoice is overdue on 20 March: (its JSON, the invoice's)."""
    on(D(2027, 3, 1))
    contact, _ = buyer(card=None)
    s = create(api, contact, None, collection="manual", payment_terms="net_15")
    inv = first_invoice(api, s["id"])
    on(D(2027, 3, 20))
    engine.run()
    return s, inv


def test_void_an_overdue_manual_invoice_clears_past_due(api, buyer, on):
    s, inv = overdue_manual(api, buyer, on)
    assert Subscription.objects.get(pk=s["id"]).status == "past_due"
    r = api.post(f"/invoices/{inv['id']}/void", {})
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["status"] == "void" and out["amount_due"] == {"amount": "0.00", "currency": "EUR"}
    assert Subscription.objects.get(pk=s["id"]).status == "active"
    assert BillingCycle.objects.get(invoice__pk=inv["id"]).status == "void"
    assert HistoryEntry.objects.filter(record_type="invoice", record_id=inv["id"], action="updated").exists()
    # nothing more can happen to it
    r = api.post(f"/invoices/{inv['id']}/void", {})
    assert r.status_code == 409 and r.json()["error"]["field"] == "status"
    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "49.00", "currency": "EUR"}})
    assert r.status_code == 409


def test_uncollectible_stops_the_retries_and_clears_past_due(api, buyer, on, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5, 7]
    on(D(2027, 3, 1))
    contact, pm = buyer(card="insufficient")
    s = create(api, contact, pm)
    assert s["status"] == "past_due"
    inv = first_invoice(api, s["id"])
    r = api.post(f"/invoices/{inv['id']}/mark-uncollectible", {})
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "uncollectible" and r.json()["amount_due"]["amount"] == "0.00"
    assert Subscription.objects.get(pk=s["id"]).status == "active"
    attempts = PaymentAttempt.objects.filter(invoice_id=inv["id"]).count()
    on(D(2027, 3, 4))
    engine.run()
    assert PaymentAttempt.objects.filter(invoice_id=inv["id"]).count() == attempts  # no retry
    # an uncollectible invoice may still be voided; a void one not written off
    assert api.post(f"/invoices/{inv['id']}/void", {}).json()["status"] == "void"
    r = api.post(f"/invoices/{inv['id']}/mark-uncollectible", {})
    assert r.status_code == 409 and r.json()["error"]["field"] == "status"


def test_paid_or_partly_paid_invoices_are_not_voided(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer(card="ok")
    s = create(api, contact, pm)
    paid = first_invoice(api, s["id"])
    r = api.post(f"/invoices/{paid['id']}/void", {})
    assert r.status_code == 409 and "paid" in r.json()["error"]["message"]
    assert Invoice.objects.get(pk=paid["id"]).status == "paid"

    contact2, _ = buyer(card=None, email="b@example.nl")
    m = create(api, contact2, None, collection="manual", payment_terms="net_30")
    inv = first_invoice(api, m["id"])
    api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "20.00", "currency": "EUR"}})
    r = api.post(f"/invoices/{inv['id']}/void", {})
    assert r.status_code == 409 and r.json()["error"]["field"] == "amount_paid"
    assert Invoice.objects.get(pk=inv["id"]).status == "open"
    # written off, the rest is no longer asked for
    r = api.post(f"/invoices/{inv['id']}/mark-uncollectible", {})
    assert r.json()["status"] == "uncollectible" and r.json()["amount_paid"]["amount"] == "20.00"


def test_not_while_a_payment_is_in_flight(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer(card="ok")
    s = create(api, contact, pm)
    on(D(2027, 4, 1))
    sub = Subscription.objects.get(pk=s["id"])
    engine._issue_batch(D(2027, 4, 1), 10, [sub.pk], engine.Summary())  # issued and about to be charged
    inv = Invoice.objects.filter(subscription=sub, status="open").get()
    r = api.post(f"/invoices/{inv.pk}/void", {})
    assert r.status_code == 409 and r.json()["error"]["code"] == "payment_in_flight"
    assert Invoice.objects.get(pk=inv.pk).status == "open"


def test_a_written_off_invoice_can_still_be_paid_by_bank_transfer(api, buyer, on):
    """The buyer pays after all: a written-off invoice takes the payment; a part keeps it written off
    (the rest is still not asked for), the whole of it makes it paid, its cycle paid and the payment
    counts for the subscription."""
    s, inv = overdue_manual(api, buyer, on)
    assert api.post(f"/invoices/{inv['id']}/mark-uncollectible", {}).json()["status"] == "uncollectible"
    assert Subscription.objects.get(pk=s["id"]).status == "active"

    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "20.00", "currency": "EUR"}})
    assert r.status_code == 201, r.content
    got = Invoice.objects.get(pk=inv["id"])
    assert (got.status, got.amount_paid, got.amount_due) == ("uncollectible", 2000, 0)
    out = api.get(f"/invoices/{inv['id']}").json()
    assert out["amount_due"]["amount"] == "0.00" and out["amount_unpaid"]["amount"] == "29.00"  # what it still takes
    # never more than the part still unpaid
    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "29.01", "currency": "EUR"}})
    assert r.status_code == 422 and r.json()["error"]["message"] == "amount: the invoice has 2900 (minor units) left to pay"
    assert Invoice.objects.get(pk=inv["id"]).amount_paid == 2000

    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "29.00", "currency": "EUR"}})
    assert r.status_code == 201, r.content
    got = Invoice.objects.get(pk=inv["id"])
    assert (got.status, got.amount_paid) == ("paid", 4900) and got.paid_at is not None
    assert BillingCycle.objects.get(invoice__pk=inv["id"]).status == "paid"
    sub = Subscription.objects.get(pk=s["id"])
    assert (sub.status, sub.payments_made, sub.total_paid) == ("active", 1, 4900)
    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "1.00", "currency": "EUR"}})
    assert r.status_code == 409 and r.json()["error"]["field"] == "status"


def test_a_void_invoice_takes_no_payment(api, buyer, on):
    on(D(2027, 3, 1))
    contact, _ = buyer(card=None)
    s = create(api, contact, None, collection="manual", payment_terms="net_15")
    inv = first_invoice(api, s["id"])
    api.post(f"/invoices/{inv['id']}/void", {})
    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "49.00", "currency": "EUR"}})
    assert r.status_code == 409 and "void" in r.json()["error"]["message"]
    assert Invoice.objects.get(pk=inv["id"]).amount_paid == 0
