"""A success that arrives after the attempt was recorded as failed (built-in processor's async event):
the money is there, so it is recorded, once (R-PAY-1, R-BILL-6)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from recur.billing import engine
from recur.billing.models import BillingCycle, Invoice, Payment, PaymentAttempt
from recur.crm import services as crm
from recur.notifications.models import OutboxMessage
from recur.payments import services as payments
from recur.payments.models import BuiltinCharge
from recur.payments.processor import ChargeResult
from recur.subscriptions.models import Subscription
from tests.payments.conftest import bank, card

D = dt.date


def subscribe(api, contact, pm) -> dict:
    r = api.post("/subscriptions", {"contact_id": contact.pk, "collection": "auto_charge", "payment_method_id": pm.pk,
                                    "line_items": [{"name": "Support plan", "unit_price": {"amount": "49.00",
                                                                                           "currency": "EUR"},
                                                    "quantity": 1, "billing_frequency": "monthly"}]})
    assert r.status_code == 201, r.content
    return r.json()


def state(sub_id: int) -> tuple:
    sub = Subscription.objects.get(pk=sub_id)
    invoice = Invoice.objects.get(subscription_id=sub_id)
    cycle = BillingCycle.objects.get(subscription_id=sub_id)
    return (sub.status, sub.payments_made, sub.total_paid, invoice.status, invoice.amount_paid, cycle.status,
            cycle.next_retry_on, cycle.attempts,
            list(Payment.objects.filter(subscription_id=sub_id).order_by("pk").values_list("status", flat=True)),
            PaymentAttempt.objects.filter(invoice=invoice).count(),
            OutboxMessage.objects.filter(kind="payment_receipt").count())


@pytest.mark.django_db
def test_a_bank_debit_recorded_as_failed_that_settles_after_all(admin, api, on):
    on(D(2027, 3, 1))  # a Monday: the debit settles on Thursday the 4th
    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    pm = payments.add_payment_method(admin, contact, bank())
    s = subscribe(api, contact, pm)
    attempt = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    assert attempt.status == "pending"
    # Recur was told the debit failed (a stray outcome), while the gateway still had it pending
    engine.record_results([ChargeResult(attempt.idempotency_key, "failed", attempt.charge_ref, "debit_failed",
                                        "The bank account could not be debited.")])
    assert state(s["id"]) == ("past_due", 0, 0, "open", 0, "failed", D(2027, 3, 4), 1, ["failed"], 1, 0)

    on(D(2027, 3, 4))
    summary = engine.run()  # polls the gateway's event (succeeded) before the retry that was due today
    assert summary.charged == 1
    assert state(s["id"]) == ("active", 1, 4900, "paid", 4900, "paid", None, 1, ["succeeded"], 1, 1)
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code, attempt.failure_message) == ("succeeded", "", "")
    assert BuiltinCharge.objects.get().status == "succeeded"

    # the same outcome again (a redelivery, a second poller): nothing changes a second time
    engine.record_results([ChargeResult(attempt.idempotency_key, "succeeded", attempt.charge_ref)])
    on(D(2027, 3, 9))
    engine.run()
    assert state(s["id"]) == ("active", 1, 4900, "paid", 4900, "paid", None, 1, ["succeeded"], 1, 1)


@pytest.mark.django_db
def test_a_late_success_of_an_invoice_paid_since_is_recorded_and_flagged(admin, api, on, caplog):
    on(D(2027, 3, 1))
    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    failing = payments.add_payment_method(admin, contact, card("4000000000000341"))
    s = subscribe(api, contact, failing)
    first = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    assert first.status == "failed"
    # the buyer gives a good card: the past-due amount is charged and the invoice paid
    good = payments.add_payment_method(admin, contact, card())
    Subscription.objects.filter(pk=s["id"]).update(payment_method=good)
    engine.collect_past_due(s["id"])
    before = state(s["id"])
    assert before == ("active", 1, 4900, "paid", 4900, "paid", None, 2, ["failed", "succeeded"], 2, 1)

    # then the first try turns out to have succeeded as well: recorded (it is money), flagged, nothing paid twice
    with caplog.at_level(logging.WARNING, logger="recur.billing"):
        engine.record_results([ChargeResult(first.idempotency_key, "succeeded", first.charge_ref)])
    first.refresh_from_db()
    assert first.status == "succeeded"
    after = state(s["id"])
    assert after[:8] == before[:8] and after[8] == ["succeeded", "succeeded"] and after[9:] == before[9:]
    assert "refund them by hand" in caplog.text
