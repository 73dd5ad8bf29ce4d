"""How the hosted pages collect a payment method, per processor (R-PAY-2, R-PAY-3, R-BILL-5):
the built-in processor takes the raw fields; Stripe a PaymentMethod set up with Stripe.js."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from recur.checkout import links
from recur.core.errors import ValidationFailed
from recur.payments import services as payments
from recur.payments.builtin import BuiltinProcessor
from tests.checkout.conftest import make_contact, make_subscription


@pytest.fixture
def pages(stripe_settings, localstripe):
    stripe_settings.STRIPE_PUBLISHABLE_KEY = "pk_test_recur"
    stripe_settings.STRIPE_JS_URL = f"{localstripe}/js.stripe.com/v3/"
    return stripe_settings


def set_up(sc, client_secret: str, number: str = "4242424242424242") -> dict:
    """What Stripe.js's confirmCardSetup does in the browser, done with the SDK."""
    seti = client_secret.split("_secret_")[0]
    return sc.v1.setup_intents.confirm(seti, {"payment_method_data": {
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}}}).to_dict()


def test_builtin_pages_take_the_raw_fields(db, contact):
    entry = BuiltinProcessor().method_entry(contact, ["card", "bank_account"])
    assert entry.mode == "fields" and entry.methods == ("card", "bank_account") and not entry.client_secret
    with pytest.raises(ValidationFailed) as err:
        payments.add_payment_method(None, contact, {"type": "card", "token": "pm_123"})
    assert err.value.field == "token"


def test_stripe_entry_is_a_setup_intent_for_the_customer(pages, contact, sc, localstripe):
    entry = payments.method_entry(contact, ["card", "bank_account"])
    assert entry.mode == "stripe" and entry.methods == ("card",) and entry.unavailable == ("bank_account",)
    assert entry.publishable_key == "pk_test_recur" and entry.script_url == f"{localstripe}/js.stripe.com/v3/"
    intent = sc.v1.setup_intents.retrieve(entry.client_secret.split("_secret_")[0]).to_dict()
    assert intent["usage"] == "off_session" and intent["status"] == "requires_payment_method"
    assert intent["customer"] == contact.processor_customers.get(processor="stripe").customer_ref
    # prepare=False (checking a posted form) makes nothing at Stripe
    assert payments.method_entry(contact, ["card"], prepare=False).client_secret == ""
    # a buyer not known yet (a payment link): a SetupIntent without a customer
    anonymous = payments.method_entry(None, ["card"])
    assert sc.v1.setup_intents.retrieve(anonymous.client_secret.split("_secret_")[0]).customer is None
    # bank debit only, not in euros: nothing the page can collect with Stripe, and no SetupIntent
    bank_only = payments.method_entry(contact, ["bank_account"], currency="USD")
    assert bank_only.methods == () and bank_only.unavailable == ("bank_account",) and not bank_only.client_secret


def test_euro_pages_offer_sepa_direct_debit(pages, contact, sc):
    entry = payments.method_entry(contact, ["card", "bank_account"], currency="EUR")
    assert entry.methods == ("card", "bank_account") and entry.unavailable == () and entry.bank_scheme == "sepa"
    assert entry.email == "anna@example.nl"
    intent = sc.v1.setup_intents.retrieve(entry.client_secret.split("_secret_")[0]).to_dict()
    assert intent["payment_method_types"] == ["card", "sepa_debit"]
    # what Stripe.js's confirmSepaDebitSetup does in the browser
    done = sc.v1.setup_intents.confirm(intent["id"], {"payment_method_data": {
        "type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"},
        "billing_details": {"name": "Anna de Vries", "email": "anna@example.nl"}}}).to_dict()
    with pytest.raises(ValidationFailed) as err:  # a SEPA method is not a card
        payments.add_payment_method(None, contact, {"type": "card", "token": done["payment_method"],
                                                    "setup_intent": done["id"]})
    assert err.value.field == "token"
    pm = payments.add_payment_method(None, contact, {"type": "bank_account", "token": done["payment_method"],
                                                     "setup_intent": done["id"]})
    assert (pm.type, pm.last4, pm.exp_month) == ("bank_account", "3000", None)
    bank_only = payments.method_entry(contact, ["bank_account"], currency="EUR")
    assert sc.v1.setup_intents.retrieve(bank_only.client_secret.split("_secret_")[0]).payment_method_types == [
        "sepa_debit"]


def test_a_missing_publishable_key_is_a_configuration_error(stripe_settings, contact):
    stripe_settings.STRIPE_PUBLISHABLE_KEY = ""
    with pytest.raises(ImproperlyConfigured):
        payments.method_entry(contact, ["card"])


def test_the_set_up_method_is_saved_with_brand_last4_and_expiry_only(pages, contact, sc):
    entry = payments.method_entry(contact, ["card"])
    intent = set_up(sc, entry.client_secret)
    pm = payments.add_payment_method(None, contact, {"type": "card", "token": intent["payment_method"],
                                                     "setup_intent": intent["id"]})
    assert (pm.processor, pm.type, pm.brand, pm.last4, pm.exp_month, pm.exp_year) == (
        "stripe", "card", "visa", "4242", 12, 2035)
    customer = contact.processor_customers.get(processor="stripe").customer_ref
    assert sc.v1.payment_methods.retrieve(pm.processor_ref).customer == customer


def test_a_method_posted_with_the_wrong_setup_intent_is_refused(pages, contact, sc):
    entry = payments.method_entry(contact, ["card"])
    other = payments.method_entry(contact, ["card"])
    intent = set_up(sc, entry.client_secret)
    unconfirmed = other.client_secret.split("_secret_")[0]
    cases = [
        ({"token": intent["payment_method"], "setup_intent": unconfirmed}, "setup_intent"),  # not set up
        ({"token": intent["payment_method"]}, "setup_intent"),  # no SetupIntent at all
        ({"token": "tok_visa", "setup_intent": intent["id"]}, "token"),
        ({"token": "pm_doesnotexist", "setup_intent": intent["id"]}, "token"),
    ]
    for details, field in cases:
        with pytest.raises(ValidationFailed) as err:
            payments.add_payment_method(None, contact, {"type": "card", **details})
        assert err.value.field == field, details
    # a SetupIntent of another customer cannot hand its method to this one
    from recur.crm import services as crm

    bo = crm.create_contact(None, {"name": "Bo", "email": "bo@example.nl"})
    with pytest.raises(ValidationFailed) as err:
        payments.add_payment_method(None, bo, {"type": "card", "token": intent["payment_method"],
                                               "setup_intent": intent["id"]})
    assert err.value.field == "setup_intent"
    # a card is not a bank account
    with pytest.raises(ValidationFailed) as err:
        payments.add_payment_method(None, contact, {"type": "bank_account", "token": intent["payment_method"],
                                                    "setup_intent": intent["id"]})
    assert err.value.field == "token"
    assert not contact.payment_methods.exists()


def test_update_page_posts_a_set_up_method_and_collects_the_past_due_amount(pages, admin, sc):
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, card_number="4000000000000341")
    assert sub.status == "past_due"
    url = f"/billing/update/{links.update_payment_method_token(sub)}/"
    client = Client()
    page = client.get(url)
    assert page.status_code == 200 and b'data-stripe-secret="seti_' in page.content
    assert page.context["entry"].script_url.endswith("/js.stripe.com/v3/")
    assert b'name="card_number"' not in page.content  # the card number never goes to Recur
    intent = set_up(sc, page.context["entry"].client_secret)
    dutch = client.get(url + "?lang=nl").content.decode()
    assert "Kaartgegevens" in dutch and "Door je IBAN op te geven en deze betaling te bevestigen" in dutch
    assert 'name="iban"' not in dutch  # the IBAN goes to Stripe only

    missing = client.post(url, {"method": "card", "card_name": "Anna de Vries"})
    assert "Enter your card details." in missing.content.decode()
    declined = client.post(url, {"method": "card", "card_name": "Anna", "stripe_error": "card_declined"})
    assert "Your card was declined." in declined.content.decode()
    sub.refresh_from_db()
    assert sub.status == "past_due"

    done = client.post(url, {"method": "card", "card_name": "Anna de Vries", "payment_method": intent["payment_method"],
                             "setup_intent": intent["id"]}, follow=True)
    assert "your payment of €49.00 succeeded" in done.content.decode()
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payment_method.processor_ref == intent["payment_method"]


def test_a_quote_is_accepted_with_a_card_set_up_for_its_contact(pages, admin, sc):
    import datetime as dt
    import re

    from recur.crm import quotes
    from recur.subscriptions.models import Subscription
    from tests.checkout.test_payment_links_pages import _quote

    q = quotes.publish_quote(admin, _quote(admin, expires_on=dt.date(2099, 12, 31)))
    client = Client()
    page = client.get(f"/billing/quote/{q.public_token}/")
    entry = page.context["entry"]
    intent = sc.v1.setup_intents.retrieve(entry.client_secret.split("_secret_")[0])
    assert intent.customer == q.contact.processor_customers.get(processor="stripe").customer_ref
    done = set_up(sc, entry.client_secret)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.content.decode()).group(1)
    r = client.post(f"/billing/quote/{q.public_token}/", {
        "buyer_name": "Anna de Vries", "buyer_email": "anna@example.nl", "method": "card", "card_name": "Anna",
        "payment_method": done["payment_method"], "setup_intent": done["id"], "nonce": nonce})
    assert r.status_code == 302 and "/done/" in r["Location"]
    q.refresh_from_db()
    sub = Subscription.objects.get(quote_id=q.pk)
    assert q.status == "paid" and sub.payment_method.processor_ref == done["payment_method"]


def test_stripe_down_the_page_says_card_entry_is_unavailable(pages, admin):
    import socket

    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, card_number="4242424242424242")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        pages.STRIPE_API_BASE = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = Client().get(f"/billing/update/{links.update_payment_method_token(sub)}/")
    html = r.content.decode()
    assert r.status_code == 200 and "Card entry is not available right now." in html
    assert 'id="payform"' not in html
