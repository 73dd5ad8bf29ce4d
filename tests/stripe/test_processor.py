"""StripeProcessor against localstripe: customers, payment methods, charges, look-ups,
refunds (R-PAY-2, R-PAY-3; DESIGN "Money safety rules" 2 and 5)."""

from __future__ import annotations

import pytest
import stripe

from recur.core.errors import ValidationFailed
from recur.payments.models import PaymentMethod, ProcessorCustomer
from recur.payments.processor import ChargeRequest, Processor, get_processor
from recur.payments.stripe import StripeProcessor, is_localstripe
from tests.stripe.conftest import CARDS, IBAN_FAILS, card, intents, sepa_method

pytestmark = pytest.mark.django_db


def request(key, pm_ref, customer_ref="", amount=1250, currency="EUR", **kw):
    return ChargeRequest(idempotency_key=key, payment_method_ref=pm_ref, customer_ref=customer_ref, amount=amount,
                         currency=currency, **kw)


@pytest.fixture
def customer(processor, contact):
    return processor.ensure_customer(contact)


@pytest.fixture
def saved(processor, customer):
    def make(number=CARDS["ok"]):
        return processor.save_payment_method(customer, card(number))

    return make


def test_selected_by_recur_processor_and_implements_the_interface(stripe_settings):
    p = get_processor()
    assert isinstance(p, StripeProcessor) and p.name == "stripe"
    for name in ("ensure_customer", "save_payment_method", "charge_many", "lookup", "refund", "poll_events"):
        assert callable(getattr(p, name))
    _: Processor = p
    assert p.poll_events() == []  # Stripe reports through the webhook


def test_localstripe_detection():
    assert not is_localstripe("https://api.stripe.com")
    assert not is_localstripe("https://files.stripe.com/")
    assert is_localstripe("http://127.0.0.1:8420") and is_localstripe("http://localhost:8420")
    assert is_localstripe("https://stripe.com.example.net")


def test_ensure_customer_once_per_contact(processor, contact, sc):
    ref = processor.ensure_customer(contact)
    assert ref.startswith("cus_") and processor.ensure_customer(contact) == ref
    assert ProcessorCustomer.objects.get(contact=contact, processor="stripe").customer_ref == ref
    at_stripe = sc.v1.customers.retrieve(ref).to_dict()
    assert at_stripe["email"] == "anna@example.nl" and at_stripe["metadata"] == {"recur_contact_id": str(contact.pk)}
    assert len(sc.v1.customers.list({"limit": 100}).data) == 1


def test_save_a_stripe_payment_method_attaches_it(processor, customer, sc):
    pm = sc.v1.payment_methods.create({"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 7, "exp_year": 2031, "cvc": "123"}})
    s = processor.save_payment_method(customer, {"type": "stripe", "stripe_payment_method": pm.id})
    assert (s.type, s.processor_ref, s.brand, s.last4, s.exp_month, s.exp_year) == ("card", pm.id, "visa", "4242", 7, 2031)
    assert s.fingerprint
    assert sc.v1.payment_methods.retrieve(pm.id).customer == customer


def test_save_a_sepa_debit_as_a_bank_account(processor, customer, sc):
    s = processor.save_payment_method(customer, {"type": "stripe", "stripe_payment_method": sepa_method(sc)})
    assert (s.type, s.last4, s.exp_month) == ("bank_account", "3000", None)


@pytest.mark.parametrize("details, field", [
    ({"type": "stripe", "stripe_payment_method": "pm_doesnotexist"}, "stripe_payment_method"),
    ({"type": "stripe", "stripe_payment_method": "card_123"}, "stripe_payment_method"),
    (card(CARDS["declined"]), "card.number"),  # declined when attached
    (card("4242424242424241"), "card.number"),  # Luhn, checked before Stripe is asked
    (card(exp_month=13), "card.exp_month"),
    ({"type": "bank_account", "bank_account": {"routing_number": "110000000", "account_number": "000123456789",
                                               "holder_name": "Anna"}}, "type"),
    ({"type": "paypal"}, "type"),
])
def test_bad_payment_methods_name_the_field(processor, customer, details, field):
    with pytest.raises(ValidationFailed) as exc:
        processor.save_payment_method(customer, details)
    assert exc.value.field == field, exc.value.message
    assert "4000000000000002" not in exc.value.message


def test_card_details_are_refused_against_real_stripe(stripe_settings, processor, customer):
    """Raw card numbers reach Stripe only through Stripe.js: outside localstripe the API takes a pm_ id."""
    stripe_settings.STRIPE_API_BASE = "https://api.stripe.com"
    real = StripeProcessor()
    assert not real.local
    with pytest.raises(ValidationFailed) as exc:
        real.save_payment_method(customer, card())  # refused before any request is made
    assert exc.value.field == "type"


def test_successful_charge(processor, customer, saved, sc):
    pm = saved()
    [r] = processor.charge_many([request("rc-t-1-0-1", pm.processor_ref, customer, metadata={"invoice": 7})])
    assert r.status == "succeeded" and r.charge_ref.startswith("pi_") and r.failure_code == ""
    [pi] = intents(sc, "rc-t-1-0-1")
    assert pi["id"] == r.charge_ref and (pi["amount"], pi["currency"], pi["customer"]) == (1250, "eur", customer)
    assert pi["payment_method"] == pm.processor_ref and pi["metadata"]["invoice"] == "7"
    assert processor.lookup("rc-t-1-0-1") == r
    assert processor.lookup("rc-t-never") is None


def test_declined_charge_fails_with_the_code(processor, customer, saved, sc):
    pm = saved(CARDS["fail_charges"])
    [r] = processor.charge_many([request("rc-t-2-0-1", pm.processor_ref, customer)])
    assert (r.status, r.failure_code) == ("failed", "card_declined") and r.failure_message
    [pi] = intents(sc, "rc-t-2-0-1")
    assert r.charge_ref == pi["id"] and pi["status"] == "requires_payment_method"
    assert processor.lookup("rc-t-2-0-1").status == "failed"
    # charging the key again neither charges nor changes the answer
    assert processor.charge_many([request("rc-t-2-0-1", pm.processor_ref, customer)])[0].status == "failed"
    assert len(intents(sc, "rc-t-2-0-1")) == 1


def test_the_same_key_twice_makes_one_payment_intent(processor, customer, saved, sc):
    """localstripe does not replay idempotency keys: only our look-up-first rule stops a second charge."""
    pm = saved()
    first = processor.charge_many([request("rc-t-3-0-1", pm.processor_ref, customer)])
    again = processor.charge_many([request("rc-t-3-0-1", pm.processor_ref, customer)])
    both = processor.charge_many([request("rc-t-3-0-1", pm.processor_ref, customer),
                                  request("rc-t-3-1-1", pm.processor_ref, customer),
                                  request("rc-t-3-1-1", pm.processor_ref, customer)])
    assert first == again == both[:1] and both[1] == both[2] and both[1].charge_ref != first[0].charge_ref
    assert len(intents(sc, "rc-t-3-0-1")) == 1 and len(intents(sc, "rc-t-3-1-1")) == 1
    assert len(intents(sc)) == 2


def test_refusals_before_stripe_is_asked(processor, customer, saved, sc):
    pm = saved()
    results = processor.charge_many([
        request("k-amount", pm.processor_ref, customer, amount=0),
        request("k-currency", pm.processor_ref, customer, currency="XYZ"),
        request("k-method", "pm_missing", customer),
    ])
    assert [(r.status, r.failure_code) for r in results] == [
        ("failed", "invalid_request"), ("failed", "invalid_request"), ("failed", "resource_missing")]
    assert intents(sc) == []


def test_a_bank_debit_stays_pending(processor, customer, sc):
    pm = processor.save_payment_method(customer, {"type": "stripe", "stripe_payment_method": sepa_method(sc, IBAN_FAILS)})
    [r] = processor.charge_many([request("rc-t-4-0-1", pm.processor_ref, customer)])
    assert r.status == "pending" and r.charge_ref.startswith("pi_")


def test_network_error_raises_and_nothing_is_guessed(stripe_settings, processor, customer, saved):
    pm = saved()
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        stripe_settings.STRIPE_API_BASE = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(stripe.APIConnectionError):
            StripeProcessor().charge_many([request("rc-t-5-0-1", pm.processor_ref, customer)])


# --- refunds ------------------------------------------------------------------------------------


def test_partial_refunds_never_above_what_was_charged(processor, customer, saved, sc):
    pm = saved()
    [c] = processor.charge_many([request("rc-t-6-0-1", pm.processor_ref, customer, amount=5000)])
    r1 = processor.refund(c.charge_ref, 2000, "EUR", "rf-1")
    assert r1.status == "succeeded" and r1.refund_ref.startswith("re_")
    assert processor.refund(c.charge_ref, 2000, "EUR", "rf-1") == r1  # the same key: the first refund
    too_much = processor.refund(c.charge_ref, 3001, "EUR", "rf-2")
    assert too_much.status == "failed" and "exceeds what is left" in too_much.failure_message
    assert processor.refund(c.charge_ref, 100, "USD", "rf-3").status == "failed"
    assert processor.refund(c.charge_ref, 0, "EUR", "rf-4").status == "failed"
    assert processor.refund(c.charge_ref, 3000, "EUR", "rf-5").status == "succeeded"
    assert processor.refund(c.charge_ref, 1, "EUR", "rf-6").status == "failed"
    refunds = sc.v1.refunds.list({"payment_intent": c.charge_ref}).data
    assert sorted(r.amount for r in refunds) == [2000, 3000]


def test_refund_of_a_failed_or_unknown_charge_fails(processor, customer, saved):
    pm = saved(CARDS["fail_charges"])
    [c] = processor.charge_many([request("rc-t-7-0-1", pm.processor_ref, customer)])
    assert processor.refund(c.charge_ref, 100, "EUR", "rf-7").status == "failed"
    assert processor.refund("pi_unknown", 100, "EUR", "rf-8").failure_message == "No such charge"
    assert processor.refund("", 100, "EUR", "rf-9").status == "failed"


# --- through the API (SPEC §12 /contacts/{id}/payment-methods) -------------------------------------


def test_api_adds_a_stripe_payment_method(api, contact, sc, stripe_settings):
    pm = sc.v1.payment_methods.create({"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    r = api.post(f"/contacts/{contact.pk}/payment-methods", {"type": "stripe", "stripe_payment_method": pm.id})
    assert r.status_code == 201, r.content
    body = r.json()
    assert {k: body[k] for k in ("type", "brand", "last4", "exp_month", "exp_year", "processor")} == {
        "type": "card", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "processor": "stripe"}
    row = PaymentMethod.objects.get(pk=body["id"])
    assert row.processor_ref == pm.id
    cus = ProcessorCustomer.objects.get(contact=contact, processor="stripe").customer_ref
    assert sc.v1.payment_methods.retrieve(pm.id).customer == cus
    listed = api.get(f"/contacts/{contact.pk}/payment-methods").json()["items"]
    assert [m["id"] for m in listed] == [body["id"]]


def test_api_test_card_details_against_localstripe_never_store_the_number(api, contact, stripe_settings):
    r = api.post(f"/contacts/{contact.pk}/payment-methods", card())
    assert r.status_code == 201, r.content
    row = PaymentMethod.objects.get(pk=r.json()["id"])
    assert row.processor_ref.startswith("pm_") and row.last4 == "4242"
    assert "4242424242424242" not in repr(row.__dict__)


def test_api_declined_card_is_422_and_saves_nothing(api, contact, stripe_settings):
    r = api.post(f"/contacts/{contact.pk}/payment-methods", card(CARDS["declined"]))
    assert r.status_code == 422 and r.json()["error"]["field"] == "card.number"
    r = api.post(f"/contacts/{contact.pk}/payment-methods", {"type": "stripe", "stripe_payment_method": "pm_nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "stripe_payment_method"
    assert not PaymentMethod.objects.exists()


def test_api_stripe_method_needs_the_stripe_processor(api, contact, settings):
    settings.RECUR_PROCESSOR = "builtin"
    r = api.post(f"/contacts/{contact.pk}/payment-methods", {"type": "stripe", "stripe_payment_method": "pm_1"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "type"
