"""The billing engine does not know which processor it talks to (R-PAY-3): scenarios of
tests/billing/test_engine_scenarios.py run on the built-in processor and on Stripe
(localstripe), plus crash recovery on Stripe (R-BILL-1, R-BILL-6, R-BILL-8, R-MAN-2, R-MAN-5)."""

from __future__ import annotations

import datetime as dt

import pytest
import stripe

from recur.billing import engine
from recur.billing.models import BillingCycle, Payment, PaymentAttempt
from recur.notifications.models import OutboxMessage
from recur.payments import services as payments
from recur.payments.stripe import StripeProcessor
from recur.subscriptions.models import Subscription
from tests.billing.conftest import create
from tests.stripe.conftest import card, intents

pytestmark = pytest.mark.django_db

D = dt.date


@pytest.fixture(params=["builtin", "stripe"])
def proc(request, settings):
    """Each scenario once per processor; on Stripe, against localstripe."""
    if request.param == "stripe":
        request.getfixturevalue("stripe_settings")
    else:
        settings.RECUR_PROCESSOR = "builtin"
    return request.param


def stripe_side(proc, request, sub_id):
    """The PaymentIntents of one subscription at Stripe (None on the built-in processor)."""
    if proc != "stripe":
        return None
    sc = request.getfixturevalue("sc")
    keys = set(PaymentAttempt.objects.filter(invoice__subscription_id=sub_id).values_list("idempotency_key", flat=True))
    return [p for p in intents(sc) if p["metadata"].get("recur_idempotency_key") in keys]


def test_monthly_renewals(proc, api, buyer, on, request):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    assert pm.processor == proc
    s = create(api, contact, pm)
    assert s["status"] == "active" and s["payments_made"] == 1
    for day in (D(2027, 4, 1), D(2027, 5, 1)):
        on(day)
        assert engine.run().charged == 1
        assert engine.run().charged == 0  # a second run bills nothing more
    sub = Subscription.objects.get(pk=s["id"])
    assert (sub.payments_made, sub.total_paid, sub.next_payment_date) == (3, 3 * 4900, D(2027, 6, 1))
    pays = api.get(f"/subscriptions/{s['id']}/payments").json()["items"]
    assert [p["status"] for p in pays] == ["succeeded"] * 3
    assert [p["period_start"] for p in pays] == ["2027-03-01", "2027-04-01", "2027-05-01"]
    at_stripe = stripe_side(proc, request, s["id"])
    if at_stripe is not None:  # one PaymentIntent per period, each the payment's charge
        assert sorted((p["amount"], p["currency"], p["status"]) for p in at_stripe) == [(4900, "eur", "succeeded")] * 3
        assert {p["id"] for p in at_stripe} == set(Payment.objects.values_list("charge_ref", flat=True))
        assert not Subscription.objects.filter(pk=s["id"]).exclude(status="active").exists()


def test_failed_payment_past_due_then_recovery(proc, api, buyer, on, settings, request):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5, 7]
    on(D(2027, 3, 1))
    contact, pm = buyer("fail_charges")
    s = create(api, contact, pm)
    assert s["status"] == "past_due"
    cycle = BillingCycle.objects.get(subscription_id=s["id"])
    assert cycle.status == "failed" and cycle.next_retry_on == D(2027, 3, 4)
    assert PaymentAttempt.objects.get(invoice__subscription_id=s["id"]).failure_code == "card_declined"
    kinds = list(OutboxMessage.objects.values_list("kind", flat=True))
    assert "payment_failed" in kinds and "admin_payment_failed" in kinds
    on(D(2027, 3, 4))
    engine.run()
    cycle.refresh_from_db()
    assert cycle.attempts == 2 and cycle.next_retry_on == D(2027, 3, 9)
    good = payments.add_payment_method(None, contact, card(exp_month=1, exp_year=2031, cvc="999"))
    Subscription.objects.filter(pk=s["id"]).update(payment_method=good)  # what the update-payment-method page does
    engine.collect_past_due(s["id"])
    sub = Subscription.objects.get(pk=s["id"])
    assert sub.status == "active" and sub.payments_made == 1
    statuses = list(Payment.objects.filter(subscription=sub).order_by("pk").values_list("status", flat=True))
    assert statuses == ["failed", "failed", "succeeded"]
    at_stripe = stripe_side(proc, request, s["id"])
    if at_stripe is not None:
        assert sorted(p["status"] for p in at_stripe) == ["requires_payment_method"] * 2 + ["succeeded"]


def test_cancel_with_refund_of_unused_days(proc, api, buyer, on, request):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 3, 10))
    r = api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "refund_unused", "confirm": True})
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "canceled"
    assert r.json()["refund"]["amount"] == {"amount": "34.77", "currency": "EUR"}  # 4900 × 22 ÷ 31
    pay = api.get(f"/subscriptions/{s['id']}/payments").json()["items"][0]
    assert pay["status"] == "partially_refunded" and pay["refunded"]["amount"] == "34.77"
    # never more than paid: 14.23 is left, 14.24 is refused (by Recur, and by the processor)
    r = api.post(f"/payments/{pay['id']}/refund", {"amount": {"amount": "14.24", "currency": "EUR"}})
    assert r.status_code == 422
    assert api.post(f"/payments/{pay['id']}/refund", {}).json()["amount"]["amount"] == "14.23"
    assert api.get(f"/payments/{pay['id']}").json()["status"] == "refunded"
    if proc == "stripe":
        sc = request.getfixturevalue("sc")
        [pi] = stripe_side(proc, request, s["id"])
        assert sorted(x.amount for x in sc.v1.refunds.list({"payment_intent": pi["id"]}).data) == [1423, 3477]
    on(D(2027, 5, 1))
    assert engine.run().charged == 0


# --- crash recovery on Stripe (R-BILL-8; DESIGN money safety rule 2) ---------------------------------


@pytest.mark.parametrize("crash", ["before_recording", "answer_lost"])
def test_crash_between_charging_and_recording_settles_without_a_second_charge(
        crash, stripe_settings, api, buyer, on, sc, monkeypatch):
    """Stripe charged, Recur never recorded it: recovery asks again with the same key, finds the
    PaymentIntent (localstripe would happily make a second one) and records it once."""
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 4, 1))

    class Crash(Exception):
        pass

    if crash == "before_recording":  # the worker dies after the processor answered
        real_record = engine.record_results

        def record_results(results, summary=None, **kwargs):
            if results:
                raise Crash
            real_record(results, summary, **kwargs)

        monkeypatch.setattr(engine, "record_results", record_results)
    else:  # the answer is lost on the way back (a timeout after Stripe charged)
        real = StripeProcessor.charge_many

        def charge_many(self, requests):
            real(self, requests)
            raise stripe.APIConnectionError("read timed out")

        monkeypatch.setattr(StripeProcessor, "charge_many", charge_many)
    with pytest.raises((Crash, stripe.APIConnectionError)):
        engine.run()
    monkeypatch.undo()

    attempt = PaymentAttempt.objects.get(invoice__subscription_id=s["id"], cycle__period_index=1)
    assert attempt.status == "started"
    assert [p["status"] for p in intents(sc, attempt.idempotency_key)] == ["succeeded"]  # Stripe did charge

    summary = engine.Summary()
    engine.recover_started(summary, older_than_seconds=0)
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and summary.charged == 1
    [pi] = intents(sc, attempt.idempotency_key)  # still one PaymentIntent for the key
    assert attempt.charge_ref == pi["id"]
    sub = Subscription.objects.get(pk=s["id"])
    assert sub.payments_made == 2 and sub.total_paid == 2 * 4900
    assert engine.run().charged == 0 and len(intents(sc)) == 2


def test_network_down_then_recovery(stripe_settings, api, buyer, on, sc, localstripe):
    """Stripe unreachable: the attempt stays started; once it answers, recovery charges it once."""
    import socket

    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 4, 1))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(stripe.APIConnectionError):
            engine.run()
    stripe_settings.STRIPE_API_BASE = localstripe
    attempt = PaymentAttempt.objects.get(invoice__subscription_id=s["id"], cycle__period_index=1)
    assert attempt.status == "started" and intents(sc, attempt.idempotency_key) == []
    engine.recover_started(engine.Summary(), older_than_seconds=0)
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and len(intents(sc, attempt.idempotency_key)) == 1
