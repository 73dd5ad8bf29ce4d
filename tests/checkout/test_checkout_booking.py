"""How a checkout charge is booked and settled (R-SIGN-1, R-SIGN-4, R-SIGN-5, R-BILL-6; DESIGN rule 2).

One processor charge pays a purchase; each subscription's first period is paid by its share
(one invoice per subscription; the one-time items on the first of them); a pending bank debit that fails later
puts every subscription of the checkout past due; a crash between charge and recording is
settled by looking the key up, never by charging again.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from recur.billing import engine
from recur.billing import services as billing
from recur.billing.models import BillingCycle, Invoice, Payment, PaymentAttempt
from recur.checkout import payment_links as pl
from recur.checkout.models import CheckoutAttempt, CheckoutSession
from recur.core import clock
from recur.core.errors import ValidationFailed
from recur.crm.models import Contact
from recur.notifications.models import OutboxMessage
from recur.payments.builtin import BuiltinProcessor
from recur.payments.models import BuiltinCharge, PaymentMethod
from recur.subscriptions.models import Subscription
from tests.checkout.conftest import bank, card

pytestmark = pytest.mark.django_db

DAY = dt.date(2027, 3, 1)  # a Monday: a bank debit settles on Thursday 4 March
BUYER = {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"}
ITEMS = [
    {"name": "Support plan", "unit_price": 4900, "currency": "EUR", "billing_frequency": "monthly"},
    {"name": "Licence", "unit_price": 50000, "currency": "EUR", "billing_frequency": "annually", "tax_rate": "21"},
    {"name": "Onboarding", "unit_price": 15000, "currency": "EUR"},
]
TOTAL = 4900 + 60500 + 15000  # the licence carries 21 % tax


@pytest.fixture(autouse=True)
def _day(on):
    on(DAY)


def make_link(admin, **kw):
    return pl.create_payment_link(admin, {"name": "Plans", "line_items": ITEMS, **kw})


def by_frequency():
    return {s.billing_frequency: s for s in Subscription.objects.all()}


def test_each_subscription_is_paid_by_its_own_share(admin):
    result = pl.checkout(make_link(admin), BUYER, card())
    assert result.status == "completed" and result.charge.amount == TOTAL
    subs = by_frequency()
    monthly, annual = subs["monthly"], subs["annually"]
    # The first period of each subscription: its own cycle and invoice, paid by its share.
    # The one-time fee is billed once, on the first subscription's first invoice (no period).
    for sub, share, lines in ((monthly, 4900 + 15000, [("Support plan", DAY, dt.date(2027, 4, 1)),
                                                       ("Onboarding", None, None)]),
                              (annual, 60500, [("Licence", DAY, dt.date(2028, 3, 1))])):
        inv = Invoice.objects.get(subscription=sub)
        assert (inv.total, inv.amount_paid, inv.status) == (share, share, "paid")
        assert inv.cycle.period_index == 0 and inv.cycle.status == "paid" and inv.cycle.amount == sub.amount
        assert [(li.name, li.period_start, li.period_end) for li in inv.lines.all()] == lines
        assert (sub.payments_made, sub.total_paid, sub.last_payment_date, sub.status) == (1, share, DAY, "active")
        assert Payment.objects.get(subscription=sub).amount == share
    assert not Invoice.objects.filter(subscription=None).exists()
    annual_inv = Invoice.objects.get(subscription=annual)
    assert (annual_inv.subtotal, annual_inv.tax) == (50000, 10500)
    # One charge; the payments add up to it and carry its id (refunds go to that charge).
    charge = BuiltinCharge.objects.get()
    pays = list(Payment.objects.order_by("pk"))
    assert sum(p.amount for p in pays) == charge.amount == TOTAL
    assert {p.charge_ref for p in pays} == {charge.charge_ref} and {p.status for p in pays} == {"succeeded"}
    assert sorted(result.session.payment_ids) == [p.pk for p in pays]
    assert len(result.session.invoice_ids) == 2
    # Nothing of period 0 is billed again; each renews on its own schedule (the fee never again).
    engine.run(DAY)
    assert Invoice.objects.count() == 2 and Payment.objects.count() == 2
    engine.run(dt.date(2027, 4, 1))
    monthly.refresh_from_db()
    assert (monthly.payments_made, monthly.total_paid) == (2, 4900 + 15000 + 4900)
    assert Invoice.objects.filter(subscription=monthly).order_by("-pk").first().total == 4900
    assert Payment.objects.filter(subscription=annual).count() == 1


def test_a_part_is_refunded_within_its_share(admin):
    pl.checkout(make_link(admin), BUYER, card())
    payment = Payment.objects.get(subscription__billing_frequency="annually")
    with pytest.raises(ValidationFailed):
        billing.refund_payment(admin, payment, 60501)
    refund = billing.refund_payment(admin, payment, 60500)
    assert refund.amount == 60500 and BuiltinCharge.objects.get().refunded == 60500


def test_pending_bank_debit_that_settles_keeps_every_subscription_active(admin, on):
    result = pl.checkout(make_link(admin), BUYER, bank())
    assert result.status == "pending"
    subs = by_frequency()
    assert {s.status for s in subs.values()} == {"active"}  # R-SIGN-5: made while pending
    assert sorted(Payment.objects.values_list("amount", "status")) == [(19900, "pending"), (60500, "pending")]
    assert not OutboxMessage.objects.filter(kind__in=("payment_receipt", "seller_receipt")).exists()
    on(dt.date(2027, 3, 5))
    engine.run()
    for sub in Subscription.objects.all():
        share = 19900 if sub.billing_frequency == "monthly" else 60500
        assert (sub.status, sub.payments_made, sub.total_paid) == ("active", 1, share)
        assert Invoice.objects.get(subscription=sub).status == "paid"
    assert set(Payment.objects.values_list("status", flat=True)) == {"succeeded"}
    receipt = OutboxMessage.objects.get(kind="payment_receipt")
    assert receipt.context["amount"] == {"amount_minor": TOTAL, "currency": "EUR"}
    assert OutboxMessage.objects.filter(kind="seller_receipt").count() == 1
    assert CheckoutAttempt.objects.get().status == "succeeded"
    engine.run()  # nothing twice
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1


def test_pending_bank_debit_that_fails_puts_every_subscription_past_due(admin, on):
    pl.checkout(make_link(admin), BUYER, bank(account="000111111116"))
    assert {s.status for s in Subscription.objects.all()} == {"active"}
    on(dt.date(2027, 3, 5))
    engine.run()
    for sub in Subscription.objects.all():
        assert (sub.status, sub.payments_made, sub.total_paid) == ("past_due", 0, 0)  # Unpaid: dunning
        cycle = BillingCycle.objects.get(subscription=sub, period_index=0)
        assert (cycle.status, cycle.attempts, cycle.next_retry_on) == ("failed", 1, dt.date(2027, 3, 8))
        assert Invoice.objects.get(subscription=sub).status == "open"
    assert set(Payment.objects.values_list("status", flat=True)) == {"failed"}
    assert CheckoutAttempt.objects.get().status == "failed"
    # One "payment failed" e-mail for the one debit, with the amount that failed.
    failed = OutboxMessage.objects.get(kind="payment_failed")
    assert failed.to_email == "anna@example.nl" and failed.context["amount"]["amount_minor"] == TOTAL
    assert "/billing/update/" in failed.context["update_url"]
    assert OutboxMessage.objects.filter(kind="admin_payment_failed").count() == 1
    assert not OutboxMessage.objects.filter(kind__in=("payment_receipt", "seller_receipt")).exists()
    # Dunning retries each subscription's own invoice (R-BILL-6).
    on(dt.date(2027, 3, 8))
    engine.run()
    retries = PaymentAttempt.objects.filter(attempt_no=2)
    assert sorted(retries.values_list("amount", flat=True)) == [19900, 60500]
    assert {a.invoice.subscription.billing_frequency for a in retries} == {"monthly", "annually"}


def test_the_checkout_key_outcome_is_recorded_once(admin):
    pl.checkout(make_link(admin), BUYER, bank(account="000111111116"))
    key = CheckoutAttempt.objects.get().idempotency_key
    from recur.payments.processor import ChargeResult

    failed = ChargeResult(key, "failed", "", "debit_failed", "The bank account could not be debited.")
    engine.record_results([failed])  # e.g. a webhook
    engine.record_results([failed])  # redelivered
    engine.record_results([ChargeResult(key, "succeeded")])  # late and contradictory: ignored
    assert {s.status for s in Subscription.objects.all()} == {"past_due"}
    assert OutboxMessage.objects.filter(kind="payment_failed").count() == 1
    assert set(Payment.objects.values_list("status", flat=True)) == {"failed"}


# --- a crash between the charge and its recording ----------------------------------------------------


def crash_after_charging(monkeypatch):
    real = BuiltinProcessor.charge_many

    def charge_then_die(self, requests):
        real(self, requests)
        raise ConnectionError("the web process died after the processor answered")

    monkeypatch.setattr(BuiltinProcessor, "charge_many", charge_then_die)


def test_crash_after_the_charge_is_settled_by_key_without_a_second_charge(admin, monkeypatch, on):
    crash_after_charging(monkeypatch)
    link = make_link(admin)
    result = pl.checkout(link, BUYER, card())
    assert result.status == "processing"
    assert BuiltinCharge.objects.get().status == "succeeded"
    assert not Contact.objects.exists() and not Subscription.objects.exists() and not Payment.objects.exists()
    monkeypatch.undo()
    assert pl.settle_sessions() == 0  # younger than a minute: the request may still be recording it
    on(clock.start_of_day(DAY) + dt.timedelta(hours=9, minutes=2))
    engine.run()  # every billing run settles sessions
    session = CheckoutSession.objects.get()
    assert session.status == "completed" and len(session.subscription_ids) == 2
    assert BuiltinCharge.objects.count() == 1 and sum(Payment.objects.values_list("amount", flat=True)) == TOTAL
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1
    assert pl.settle_sessions(older_than_seconds=0) == 0
    assert Payment.objects.count() == 2


def test_crash_before_the_charge_is_never_charged_later(admin, monkeypatch, on):
    def die(self, requests):
        raise ConnectionError("the processor was not reached")

    monkeypatch.setattr(BuiltinProcessor, "charge_many", die)
    link = make_link(admin)
    nonce = pl.new_nonce()
    assert pl.checkout(link, BUYER, card(), nonce=nonce).status == "processing"
    monkeypatch.undo()
    start = clock.start_of_day(DAY) + dt.timedelta(hours=9)
    on(start + dt.timedelta(minutes=5))
    engine.run()
    assert CheckoutSession.objects.get().status == "charging" and not BuiltinCharge.objects.exists()
    # The same form again while it is open: no second charge.
    assert pl.checkout(link, BUYER, card(), nonce=nonce, wait=0).status == "processing"
    on(start + pl.ABANDON_AFTER + dt.timedelta(minutes=1))
    engine.run()
    session = CheckoutSession.objects.get()
    assert session.status == "declined" and session.failure_code == "abandoned"
    assert not BuiltinCharge.objects.exists() and not Subscription.objects.exists()
    assert not Contact.objects.exists() and not PaymentMethod.objects.exists()
    retry = pl.checkout(link, BUYER, card(), nonce=nonce)
    assert retry.status == "completed" and BuiltinCharge.objects.count() == 1


# --- the shipping address (R-NEW-3) ------------------------------------------------------------------


SHIP = {"address_line1": "Dorpsstraat 7", "postal_code": "1234 AB", "city": "Ede", "country": "NL"}
BILL = {"address_line1": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}


def test_shipping_address_is_kept_on_the_subscriptions(admin, api):
    link = make_link(admin, collect_billing_address=True, collect_shipping_address=True)
    result = pl.checkout(link, {**BUYER, "billing_address": BILL, "shipping_address": SHIP}, card())
    assert len(result.subscriptions) == 2
    for sub in result.subscriptions:
        assert sub.shipping_address == SHIP and sub.billing_address == BILL
    sub = result.subscriptions[0]
    body = api.get(f"/subscriptions/{sub.pk}").json()
    assert body["shipping_address"] == SHIP and body["billing_address"] == BILL
    c = Client()
    c.force_login(admin)
    html = c.get(f"/subscriptions/{sub.pk}/").content.decode()
    assert "Shipping address" in html and "Dorpsstraat 7" in html and "1234 AB Ede" in html


def test_no_shipping_address_when_not_asked(admin, api):
    result = pl.checkout(make_link(admin), BUYER, card())
    sub = result.subscriptions[0]
    assert sub.shipping_address == {}
    assert api.get(f"/subscriptions/{sub.pk}").json()["shipping_address"] is None


def test_one_update_link_recovers_every_subscription_of_the_checkout(admin, on):
    from recur.checkout import services

    pl.checkout(make_link(admin), BUYER, bank(account="000111111116"))
    on(dt.date(2027, 3, 5))
    engine.run()
    subs = list(Subscription.objects.order_by("pk"))
    assert {s.status for s in subs} == {"past_due"}
    outcome = services.update_payment_method(subs[0].pk, card())
    assert outcome.succeeded == TOTAL  # both first periods and the fee, at once (R-BILL-6)
    for sub in Subscription.objects.all():
        assert sub.status == "active" and sub.payment_method_id == outcome.payment_method.pk
        assert sub.payments_made == 1
    assert set(Invoice.objects.values_list("status", flat=True)) == {"paid"}


def test_one_time_purchase_by_a_failing_debit_offers_the_invoice_page(admin, on):
    link = pl.create_payment_link(admin, {"name": "Training", "line_items": [ITEMS[2]]})
    pl.checkout(link, BUYER, bank(account="000111111116"))
    on(dt.date(2027, 3, 5))
    engine.run()
    invoice = Invoice.objects.get()
    assert (invoice.subscription_id, invoice.status, invoice.accept_online_payments) == (None, "open", True)
    failed = OutboxMessage.objects.get(kind="payment_failed")
    assert "/billing/invoice/" in failed.context["update_url"]
