"""A ``payment_intent.succeeded`` webhook for an attempt Recur recorded as failed: the money arrived,
so the invoice is paid and the subscription active again, once however often Stripe delivers it."""

from __future__ import annotations

import datetime as dt

import pytest

from recur.billing import engine
from recur.billing.models import BillingCycle, Invoice, Payment, PaymentAttempt
from recur.notifications.models import OutboxMessage
from recur.subscriptions.models import Subscription
from tests.stripe.test_webhooks import create, send, snapshot
from tests.stripe.conftest import event

D = dt.date


def state(sub_id: int) -> tuple:
    sub = Subscription.objects.get(pk=sub_id)
    invoice = Invoice.objects.get(subscription_id=sub_id)
    cycle = BillingCycle.objects.get(subscription_id=sub_id)
    return (sub.status, sub.payments_made, sub.total_paid, invoice.status, invoice.amount_paid, cycle.status,
            cycle.next_retry_on,
            list(Payment.objects.filter(subscription_id=sub_id).order_by("pk").values_list("status", flat=True)),
            PaymentAttempt.objects.filter(invoice=invoice).count(),
            OutboxMessage.objects.filter(kind="payment_receipt").count())


@pytest.mark.django_db
def test_a_late_succeeded_webhook_pays_the_invoice_once(stripe_settings, buyer, api, on, sc):
    on(D(2027, 3, 1))
    contact, pm = buyer("fail_charges")
    s = create(api, contact, pm)
    attempt = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    assert attempt.status == "failed" and attempt.charge_ref.startswith("pi_")
    assert state(s["id"]) == ("past_due", 0, 0, "open", 0, "failed", D(2027, 3, 4), ["failed"], 1, 0)

    payload = event("payment_intent.succeeded", snapshot(sc, attempt, status="succeeded"), event_id="evt_late_1")
    r = send(payload)
    assert r.status_code == 200 and r.json() == {"received": True}
    paid = ("active", 1, 4900, "paid", 4900, "paid", None, ["succeeded"], 1, 1)
    assert state(s["id"]) == paid
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("succeeded", "")

    # redelivered (same event id), and a copy under another id: nothing changes twice
    assert send(payload).json() == {"received": True, "duplicate": True}
    again = event("payment_intent.succeeded", snapshot(sc, attempt, status="succeeded"), event_id="evt_late_2")
    assert send(again).json() == {"received": True}
    # a late failure after it changes nothing either
    send(event("payment_intent.payment_failed", snapshot(sc, attempt, status="requires_payment_method")))
    assert state(s["id"]) == paid

    # the retry that was due on the 4th is gone
    on(D(2027, 3, 4))
    engine.run()
    assert state(s["id"]) == paid
