"""Stripe's signed webhook: asynchronous outcomes, recorded once (R-PAY-2, R-SIGN-5, R-BILL-8)."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request

import pytest
from django.db import connection  # noqa: F401 - read by a skipif condition
from django.test import Client

from recur.billing.models import BillingCycle, Payment, PaymentAttempt
from recur.notifications.models import OutboxMessage
from recur.payments import services as payments
from recur.payments.models import ProcessedWebhookEvent
from recur.subscriptions.models import Subscription
from tests.stripe.conftest import IBAN_FAILS, WEBHOOK_SECRET, event, intents, item, post_webhook, sepa_method, sign

D = dt.date


def create(api, contact, pm):
    r = api.post("/subscriptions", {"contact_id": contact.pk, "collection": "auto_charge", "payment_method_id": pm.pk,
                                    "line_items": [item()]})
    assert r.status_code == 201, r.content
    return r.json()


def wait_for(check, seconds=10.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def debit(stripe_settings, admin, api, on, sc):
    """A subscription paid by a SEPA debit that stays processing (then fails at localstripe)."""
    from recur.crm import services as crm

    on(D(2027, 3, 1))
    contact = crm.create_contact(admin, {"name": "Bo Debit", "email": "bo@example.nl", "language": "en"})
    pm = payments.add_payment_method(admin, contact, {"type": "stripe",
                                                      "stripe_payment_method": sepa_method(sc, IBAN_FAILS)})
    assert pm.type == "bank_account"
    s = create(api, contact, pm)
    attempt = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    assert attempt.status == "pending" and attempt.charge_ref.startswith("pi_")
    return s, attempt


@pytest.fixture
def paid(stripe_settings, buyer, api, on):
    """A subscription whose first card payment succeeded."""
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    attempt = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    assert attempt.status == "succeeded"
    return s, attempt


def events_about(sc, type_: str, pi_id: str) -> list[dict]:
    """localstripe's own events of one type for one PaymentIntent, as plain dicts."""
    out = []
    for e in sc.v1.events.list({"type": type_, "limit": 100}).auto_paging_iter():
        e = e.to_dict()
        if ((e.get("data") or {}).get("object") or {}).get("id") == pi_id:
            out.append(e)
    return out


def snapshot(sc, attempt, **changes) -> dict:
    pi = sc.v1.payment_intents.retrieve(attempt.charge_ref).to_dict()
    pi.update(changes)
    return pi


def send(payload: bytes, secret=WEBHOOK_SECRET):
    return post_webhook(Client(), payload, sign(payload, secret))


# --- a pending bank debit settles through the webhook ------------------------------------------------


@pytest.mark.django_db
def test_bank_debit_subscription_is_created_while_pending(debit):
    """R-SIGN-5: the subscription exists as soon as the debit is submitted."""
    s, attempt = debit
    assert Payment.objects.get(attempt=attempt).status == "pending"
    assert Subscription.objects.filter(pk=s["id"]).exists()


@pytest.mark.django_db
def test_a_lost_webhook_is_made_up_for_by_the_next_run(debit, sc, on):
    """Without any webhook the next billing run looks the pending debit's key up at Stripe."""
    from recur.billing import engine
    from recur.payments.models import ProcessorCustomer
    from recur.payments.stripe import _customer_for

    s, attempt = debit
    assert _customer_for(attempt.idempotency_key) == ProcessorCustomer.objects.get(processor="stripe").customer_ref
    assert wait_for(lambda: sc.v1.payment_intents.retrieve(attempt.charge_ref).status == "requires_payment_method")
    on(D(2027, 3, 2))
    engine.run()
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("failed", "card_declined")
    assert Subscription.objects.get(pk=s["id"]).status == "past_due"


@pytest.mark.django_db
def test_localstripes_own_failure_event_is_verified_and_recorded(debit, sc):
    """The event exactly as localstripe made it (payload and all), signed with our secret."""
    s, attempt = debit
    found = wait_for(lambda: events_about(sc, "payment_intent.payment_failed", attempt.charge_ref))
    assert found, "localstripe did not fail the debit"
    payload = json.dumps(found[0]).encode()
    r = send(payload)
    assert r.status_code == 200 and r.json() == {"received": True}
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("failed", "card_declined")
    assert Payment.objects.get(attempt=attempt).status == "failed"
    assert Subscription.objects.get(pk=s["id"]).status == "past_due"
    assert BillingCycle.objects.get(subscription_id=s["id"]).status == "failed"
    assert OutboxMessage.objects.filter(kind="payment_failed").count() == 1


@pytest.mark.django_db
def test_processing_then_succeeded(debit, sc):
    s, attempt = debit
    r = send(event("payment_intent.processing", snapshot(sc, attempt, status="processing")))
    assert r.status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "pending"
    r = send(event("payment_intent.succeeded", snapshot(sc, attempt, status="succeeded")))
    assert r.status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert Payment.objects.get(attempt=attempt).status == "succeeded"
    sub = Subscription.objects.get(pk=s["id"])
    assert (sub.status, sub.payments_made, sub.total_paid) == ("active", 1, 4900)
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1


@pytest.mark.django_db
def test_out_of_order_processing_after_succeeded_changes_nothing(paid, sc):
    s, attempt = paid
    before = (list(Payment.objects.values_list("pk", "status")), OutboxMessage.objects.count())
    for type_, status in (("payment_intent.processing", "processing"),
                          ("payment_intent.payment_failed", "requires_payment_method")):
        r = send(event(type_, snapshot(sc, attempt, status=status)))
        assert r.status_code == 200
    # and localstripe's own (late) succeeded event for the same PaymentIntent
    late = wait_for(lambda: events_about(sc, "payment_intent.succeeded", attempt.charge_ref))
    assert late
    assert send(json.dumps(late[0]).encode()).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert (list(Payment.objects.values_list("pk", "status")), OutboxMessage.objects.count()) == before
    sub = Subscription.objects.get(pk=s["id"])
    assert (sub.status, sub.payments_made, sub.total_paid) == ("active", 1, 4900)


@pytest.mark.django_db
def test_a_redelivered_event_changes_nothing_twice(debit, sc):
    s, attempt = debit
    payload = event("payment_intent.payment_failed", snapshot(sc, attempt, status="requires_payment_method",
                                                              last_payment_error={"code": "debit_failed",
                                                                                  "message": "No funds."}),
                    event_id="evt_dup_1")
    first, second = send(payload), send(payload)
    assert first.json() == {"received": True} and second.json() == {"received": True, "duplicate": True}
    assert ProcessedWebhookEvent.objects.filter(event_id="evt_dup_1").count() == 1
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("failed", "debit_failed")
    assert BillingCycle.objects.get(subscription_id=s["id"]).attempts == 1
    assert OutboxMessage.objects.filter(kind="payment_failed").count() == 1


@pytest.mark.django_db
def test_an_event_id_seen_before_is_not_acted_on_again(debit, sc):
    """The event-id guard works on its own: a second body under a seen id is not read."""
    s, attempt = debit
    assert send(event("payment_intent.processing", snapshot(sc, attempt), event_id="evt_same")).status_code == 200
    r = send(event("payment_intent.succeeded", snapshot(sc, attempt, status="succeeded"), event_id="evt_same"))
    assert r.json()["duplicate"] is True
    attempt.refresh_from_db()
    assert attempt.status == "pending"


# --- refused deliveries ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_or_missing_signature_is_400_and_changes_nothing(debit, sc, stripe_settings):
    s, attempt = debit
    good = event("payment_intent.succeeded", snapshot(sc, attempt, status="succeeded"))
    now = int(time.time())
    client = Client()
    cases = [
        post_webhook(client, good),  # no header
        post_webhook(client, good, ""),
        post_webhook(client, good, sign(good, "whsec_someone_else")),
        post_webhook(client, good, sign(good, timestamp=now - 3600)),  # replayed an hour later
        post_webhook(client, good.replace(b"succeeded", b"succeedeD"), sign(good)),  # body changed after signing
        post_webhook(client, good, f"t={now},v1=" + "0" * 64),
        post_webhook(client, b"not json", sign(b"not json")),
    ]
    assert [r.status_code for r in cases] == [400] * len(cases)
    assert client.get("/webhooks/stripe/").status_code == 405
    stripe_settings.STRIPE_WEBHOOK_SECRET = ""
    assert post_webhook(client, good, sign(good)).status_code == 400  # no secret configured: nothing is trusted
    attempt.refresh_from_db()
    assert attempt.status == "pending" and not ProcessedWebhookEvent.objects.exists()


@pytest.mark.django_db
def test_events_about_other_payments_are_acknowledged_and_ignored(debit, sc):
    s, attempt = debit
    stranger = snapshot(sc, attempt, status="succeeded", metadata={})
    assert send(event("payment_intent.succeeded", stranger)).json() == {"received": True, "ignored": True}
    assert send(event("customer.created", {"id": "cus_1", "object": "customer"})).json()["ignored"] is True
    unknown_key = snapshot(sc, attempt, status="succeeded", metadata={"recur_idempotency_key": "rc-other"})
    assert send(event("payment_intent.succeeded", unknown_key)).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "pending"


# --- end to end: localstripe itself delivers the webhook --------------------------------------------


@pytest.fixture
def delivered_to(localstripe, live_server):
    """Register our webhook URL at localstripe; unregister it (point it at nothing) afterwards."""
    def register(url, events=None):
        body = {"url": url, "secret": WEBHOOK_SECRET}
        if events:
            body["events"] = events
        req = urllib.request.Request(f"{localstripe}/_config/webhooks/recur", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    time.sleep(2)  # localstripe sends each event 1 s (debits 1.5 s) after it: let earlier tests' events go by
    register(live_server.url + "/webhooks/stripe/")
    yield live_server.url
    register("http://127.0.0.1:9/", events=["recur.nothing"])


def test_localstripe_delivers_a_signed_failure_to_the_running_server(transactional_db, delivered_to, stripe_settings,
                                                                     admin, api, on, sc):
    """A real HTTP delivery: localstripe signs and POSTs payment_intent.payment_failed to /webhooks/stripe/."""
    from recur.crm import services as crm

    on(D(2027, 3, 1))
    contact = crm.create_contact(admin, {"name": "Cy Live", "email": "cy@example.nl"})
    pm = payments.add_payment_method(admin, contact, {"type": "stripe",
                                                      "stripe_payment_method": sepa_method(sc, IBAN_FAILS)})
    s = create(api, contact, pm)
    attempt = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    assert attempt.status == "pending"
    assert wait_for(lambda: PaymentAttempt.objects.filter(pk=attempt.pk, status="failed").exists()), \
        "the webhook did not arrive"
    assert ProcessedWebhookEvent.objects.filter(type="payment_intent.payment_failed").count() == 1
    assert Subscription.objects.get(pk=s["id"]).status == "past_due"
    assert len(intents(sc)) == 1


# --- concurrent deliveries (PostgreSQL: threads with their own connections) ------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor == 'sqlite'", reason="the in-memory SQLite test database is not shared by threads")
def test_concurrent_copies_of_one_event_change_things_once(debit, sc):
    import threading

    s, attempt = debit
    payload = event("payment_intent.succeeded", snapshot(sc, attempt, status="succeeded"), event_id="evt_race")
    barrier, answers, errors = threading.Barrier(4, timeout=20), [], []

    def deliver():
        try:
            barrier.wait()
            answers.append(send(payload).json())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(a.get("duplicate", False) for a in answers) == [False, True, True, True]
    assert ProcessedWebhookEvent.objects.filter(event_id="evt_race").count() == 1
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert Subscription.objects.get(pk=s["id"]).payments_made == 1
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1
