"""The hosted checkout on Stripe (localstripe on loopback; R-PAY-2, R-PAY-3, R-NEW-1, R-SIGN-5).

The same flow as on the built-in processor: the method is attached to the contact's Stripe
customer (or, for a new buyer, to a customer of its own, bound to the contact on success), the
PaymentIntent carries the checkout key, and a decline detaches the method and creates nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from recur.billing.models import Payment
from recur.checkout import payment_links as pl
from recur.checkout.models import CheckoutAttempt
from recur.crm.models import Contact
from recur.notifications.models import OutboxMessage
from recur.payments.models import PaymentMethod, ProcessorCustomer
from recur.subscriptions.models import Subscription
from tests.stripe.conftest import (  # noqa: F401 (fixtures)
    CARDS, IBAN_FAILS, card, event, intents, localstripe, post_webhook, sc, sepa_method, sign, stripe_settings,
)

pytestmark = pytest.mark.django_db

BUYER = {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"}


@pytest.fixture(autouse=True)
def _day(on):
    on(dt.date(2027, 3, 1))


def make_link(admin):
    return pl.create_payment_link(admin, {"name": "Plans", "line_items": [
        {"name": "Support plan", "unit_price": 4900, "currency": "EUR", "billing_frequency": "monthly"},
        {"name": "Licence", "unit_price": 50000, "currency": "EUR", "billing_frequency": "annually"}]})


def test_card_checkout_on_stripe(admin, stripe_settings, sc):
    result = pl.checkout(make_link(admin), BUYER, card())
    assert result.status == "completed" and len(result.subscriptions) == 2
    key = CheckoutAttempt.objects.get().idempotency_key
    [pi] = intents(sc, key)
    assert pi["amount"] == 54900 and pi["status"] == "succeeded"
    contact = Contact.objects.get()
    customer = ProcessorCustomer.objects.get(contact=contact, processor="stripe")
    assert pi["customer"] == customer.customer_ref  # the buyer's own customer, now the contact's
    method = PaymentMethod.objects.get(contact=contact)
    assert sc.v1.payment_methods.retrieve(method.processor_ref).customer == customer.customer_ref
    assert {p.charge_ref for p in Payment.objects.all()} == {pi["id"]}
    assert sorted(Payment.objects.values_list("amount", flat=True)) == [4900, 50000]


def test_declined_charge_on_stripe_creates_nothing_and_detaches_the_card(admin, stripe_settings, sc):
    result = pl.checkout(make_link(admin), BUYER, card(CARDS["fail_charges"]))
    assert result.status == "declined" and result.failure_code == "card_declined"
    attempt = CheckoutAttempt.objects.get()
    assert attempt.status == "failed" and attempt.new_customer
    assert sc.v1.payment_methods.retrieve(attempt.method_ref).customer is None  # detached
    assert not Contact.objects.exists() and not PaymentMethod.objects.exists() and not Payment.objects.exists()
    assert not ProcessorCustomer.objects.exists() and not Subscription.objects.exists()


def test_sepa_debit_pending_then_failed_by_webhook_puts_both_past_due(admin, stripe_settings, sc):
    details = {"type": "stripe", "stripe_payment_method": sepa_method(sc, IBAN_FAILS)}
    result = pl.checkout(make_link(admin), BUYER, details)
    assert result.status == "pending"
    assert {s.status for s in Subscription.objects.all()} == {"active"}
    attempt = CheckoutAttempt.objects.get()
    pi = sc.v1.payment_intents.retrieve(attempt.charge_ref).to_dict()
    pi.update(status="requires_payment_method",
              last_payment_error={"code": "debit_failed", "message": "The debit failed."})
    payload = event("payment_intent.payment_failed", pi)
    assert post_webhook(Client(), payload, sign(payload)).status_code == 200
    assert {s.status for s in Subscription.objects.all()} == {"past_due"}
    assert set(Payment.objects.values_list("status", flat=True)) == {"failed"}
    assert OutboxMessage.objects.filter(kind="payment_failed").count() == 1
