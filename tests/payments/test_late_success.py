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
from recur.notifications.services import render
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
    # received twice: counted in total_paid until it is refunded; the invoice and the count stay as they were
    assert after[2] == 9800 and after[:2] == before[:2] and after[3:8] == before[3:8]
    assert after[8] == ["succeeded", "succeeded"] and after[9:] == before[9:]
    assert "nothing was due; refund the 4900 EUR by hand" in caplog.text
    # and the seller's admins are told to refund it, with a link to the invoice
    mail = OutboxMessage.objects.get(kind="admin_payment_to_refund")
    assert mail.to_email == admin.email and mail.record_type == "payment"
    assert mail.record_id == Payment.objects.get(attempt=first).pk
    subject, text, _html = render(mail)
    number = Invoice.objects.get(subscription_id=s["id"]).number
    assert subject == "Payment to refund: €49.00 from Anna de Vries"
    assert (f"A payment of €49.00 by Anna de Vries arrived after invoice {number} was paid already, so it was "
            "received twice. Refund one of the payments.") in text
    assert f"/invoices/{Invoice.objects.get(subscription_id=s['id']).pk}/" in text
    # a redelivered outcome neither records nor tells it again
    engine.record_results([ChargeResult(first.idempotency_key, "succeeded", first.charge_ref)])
    assert OutboxMessage.objects.filter(kind="admin_payment_to_refund").count() == 1


@pytest.mark.django_db
def test_a_late_success_of_a_voided_invoice_asks_the_admins_for_a_refund(admin, api, on):
    on(D(2027, 3, 1))
    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"})
    failing = payments.add_payment_method(admin, contact, card("4000000000000341"))
    s = subscribe(api, contact, failing)
    first = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    invoice = Invoice.objects.get(subscription_id=s["id"])
    assert api.post(f"/invoices/{invoice.pk}/void", {}).json()["status"] == "void"
    admin.language = "nl"
    admin.save(update_fields=["language"])

    engine.record_results([ChargeResult(first.idempotency_key, "succeeded", first.charge_ref)])
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("void", 0)  # a void invoice stays void
    assert Payment.objects.get(attempt=first).status == "succeeded"
    assert not OutboxMessage.objects.filter(kind="payment_receipt").exists()
    mail = OutboxMessage.objects.get(kind="admin_payment_to_refund")
    subject, text, html = render(mail)
    assert subject == "Terug te betalen: € 49,00 van Anna de Vries"  # subjects are on one line, plain spaces
    assert (f"Een betaling van €\xa049,00 door Anna de Vries kwam binnen nadat factuur {invoice.number} is "
            "vervallen verklaard. Op die factuur is niets verschuldigd: betaal het bedrag terug.") in text
    assert f"/invoices/{invoice.pk}/" in html


@pytest.mark.django_db
def test_a_late_success_after_a_part_was_paid_by_hand_pays_the_rest_and_asks_to_refund_the_surplus(admin, api, on):
    """Written off, €20 of €49 booked by bank transfer, then the failed card charge turns out to have
    succeeded: the invoice takes the €29 it still lacked (never more than its total), the buyer gets the
    receipt of the charge, and the admins are asked to refund the €20 received too much."""
    from recur.billing import services as billing

    on(D(2027, 3, 1))
    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    failing = payments.add_payment_method(admin, contact, card("4000000000000341"))
    s = subscribe(api, contact, failing)
    first = PaymentAttempt.objects.get(invoice__subscription_id=s["id"])
    invoice = Invoice.objects.get(subscription_id=s["id"])
    billing.mark_uncollectible(admin, invoice)
    billing.record_manual_payment(admin, invoice, 2000)

    engine.record_results([ChargeResult(first.idempotency_key, "succeeded", first.charge_ref)])
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", 4900)
    sub = Subscription.objects.get(pk=s["id"])
    assert (sub.status, sub.payments_made, sub.total_paid) == ("active", 1, 6900)
    assert BillingCycle.objects.get(subscription_id=s["id"]).status == "paid"
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1
    mail = OutboxMessage.objects.get(kind="admin_payment_to_refund")
    _subject, text, _html = render(mail)
    assert (f"A payment of €49.00 by Anna de Vries arrived for invoice {invoice.number}, of which only €29.00 was "
            "still unpaid (the rest had been paid otherwise meanwhile). Refund the €20.00 received too much.") in text
    assert "Amount to refund: €20.00" in text and _subject == "Payment to refund: €20.00 from Anna de Vries"
    # the seller refunds the surplus (here: returns the transfer; this test card's charge is failed at the
    # processor, which would refuse its refund): the figures add up again
    billing.refund_payment(admin, Payment.objects.get(invoice=invoice, method="bank_transfer"), 2000)
    assert Subscription.objects.get(pk=s["id"]).total_paid == 4900

