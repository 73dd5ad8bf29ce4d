"""Payments booked by hand (bank transfer, cash) and what they do to the subscription's figures:
``total_paid`` is what was received minus what was refunded, whichever way it came in; a scheduled
payment counts once its invoice is paid; the last payment date never moves back; and nothing is
booked by hand while a charge of the invoice is under way (it could pay it twice)."""

from __future__ import annotations

import datetime as dt

import pytest

from recur.billing import engine
from recur.billing import services as billing
from recur.billing.models import Invoice, Payment, PaymentAttempt
from recur.payments.processor import ChargeResult
from recur.subscriptions.models import Subscription
from recur.payments import services as payments
from tests.billing.conftest import CARDS, create
from tests.payments.conftest import bank

pytestmark = pytest.mark.django_db
D = dt.date


def figures(sub_id: int) -> tuple:
    s = Subscription.objects.get(pk=sub_id)
    return s.status, s.payments_made, s.total_paid, s.last_payment_date


def manual(api, buyer, on, day=D(2027, 3, 1)):
    on(day)
    contact, _ = buyer(card=None)
    s = create(api, contact, None, collection="manual", payment_terms="net_30")
    return s["id"], Invoice.objects.get(subscription_id=s["id"])


def test_each_booked_part_counts_as_received(api, buyer, on, admin):
    sid, inv = manual(api, buyer, on)
    billing.record_manual_payment(admin, inv, 1000, paid_on=D(2027, 3, 1))
    assert figures(sid) == ("active", 0, 1000, D(2027, 3, 1))  # received, but the payment is not complete
    on(D(2027, 3, 5))
    billing.record_manual_payment(admin, inv, 3900, paid_on=D(2027, 3, 4))
    assert figures(sid) == ("active", 1, 4900, D(2027, 3, 4))
    # a refund takes back exactly what it returns
    billing.refund_payment(admin, Payment.objects.get(amount=1000), 500)
    assert figures(sid)[2] == 4400


def test_a_part_on_a_written_off_invoice_counts_and_its_refund_does_not_go_below_zero(api, buyer, on, admin):
    sid, inv = manual(api, buyer, on)
    billing.mark_uncollectible(admin, inv)
    billing.record_manual_payment(admin, inv, 2000)
    assert figures(sid) == ("active", 0, 2000, D(2027, 3, 1))
    billing.refund_payment(admin, Payment.objects.get(invoice=inv), 500)
    assert figures(sid)[2] == 1500


def test_the_last_payment_date_does_not_move_back(api, buyer, on, admin):
    sid, first = manual(api, buyer, on)
    on(D(2027, 4, 1))
    engine.run()
    second = Invoice.objects.filter(subscription_id=sid).exclude(pk=first.pk).get()
    billing.record_manual_payment(admin, second, second.total, paid_on=D(2027, 4, 1))
    billing.record_manual_payment(admin, first, first.total, paid_on=D(2027, 3, 20))  # booked late
    assert figures(sid) == ("active", 2, 9800, D(2027, 4, 1))


def test_a_transfer_then_a_charge_for_the_rest_add_up(api, buyer, on, admin, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5, 7]
    on(D(2027, 3, 1))
    contact, failing = buyer(card="fail_charges")
    s = create(api, contact, failing)
    inv = Invoice.objects.get(subscription_id=s["id"])
    billing.record_manual_payment(admin, inv, 1000)
    assert figures(s["id"])[:3] == ("past_due", 0, 1000)
    good = payments.add_payment_method(admin, contact, {
        "type": "card", "card": {"number": CARDS["ok"], "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
    Subscription.objects.filter(pk=s["id"]).update(payment_method=good)
    engine.collect_past_due(s["id"])  # charges what is left: 39.00
    inv.refresh_from_db()
    assert (inv.status, inv.amount_paid) == ("paid", 4900)
    assert figures(s["id"])[:3] == ("active", 1, 4900)


def test_no_booking_by_hand_while_a_bank_debit_is_under_way(api, buyer, on, admin):
    on(D(2027, 3, 1))
    contact, _ = buyer(card=None)
    pm = payments.add_payment_method(admin, contact, bank())
    s = create(api, contact, pm)
    inv = Invoice.objects.get(subscription_id=s["id"])
    r = api.post(f"/invoices/{inv.pk}/payments", {"amount": {"amount": "49.00", "currency": "EUR"}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "payment_in_flight", r.content
    assert r.json()["error"]["message"] == (f"status: a payment of invoice {inv.number} is in progress; try again "
                                            "when it has settled")
    assert Invoice.objects.get(pk=inv.pk).amount_paid == 0 and figures(s["id"])[2] == 0


def test_a_manual_invoice_paid_by_a_bank_debit_under_way_does_not_make_it_past_due(api, buyer, on, admin):
    """The buyer pays a manual invoice by bank debit on its due date: while the debit settles the next
    billing runs do not make the subscription past due; once it has failed, they do."""
    sid, inv = manual(api, buyer, on)  # net 30: due 31 March
    on(D(2027, 3, 31))
    attempt = PaymentAttempt.objects.create(invoice=inv, attempt_no=1, idempotency_key="buyer-debit-1",
                                            amount=inv.total, currency="EUR", status="pending",
                                            buyer_initiated=True, created_at=inv.created_at)
    on(D(2027, 4, 1))
    engine.run()
    assert figures(sid)[0] == "active"
    engine.record_results([ChargeResult(attempt.idempotency_key, "failed", "", "debit_failed", "Refused")])
    on(D(2027, 4, 2))
    engine.run()
    assert figures(sid)[0] == "past_due"


@pytest.mark.parametrize("other, status", [("pending", "active"), ("failed", "past_due")])
def test_paying_one_overdue_invoice_while_the_other_is_being_paid(api, buyer, on, other, status):
    """Two overdue manual invoices; the buyer pays one by card and the other by bank debit, recorded
    together: the card pays the first; a debit still under way leaves the second not overdue (the
    subscription is active again), a refused one leaves it overdue (still past due)."""
    sid, first = manual(api, buyer, on)
    on(D(2027, 4, 1))
    engine.run()
    second = Invoice.objects.filter(subscription_id=sid).exclude(pk=first.pk).get()
    on(D(2027, 5, 2))
    engine.run()
    assert figures(sid)[0] == "past_due"
    tries = [PaymentAttempt.objects.create(invoice=inv, attempt_no=1, idempotency_key=f"buyer-{inv.pk}",
                                           amount=inv.total, currency="EUR", buyer_initiated=True,
                                           created_at=inv.created_at) for inv in (first, second)]
    engine.record_results([ChargeResult(tries[0].idempotency_key, "succeeded", "ch_1"),
                           ChargeResult(tries[1].idempotency_key, other, "ch_2",
                                        *(("debit_failed", "Refused") if other == "failed" else ()))])
    assert Invoice.objects.get(pk=first.pk).status == "paid"
    assert figures(sid)[0] == status

