"""The hosted invoice page of a manually collected subscription with the R-NEW-3 options:
collect billing / shipping address, save the payment method for future charges (R-KIND-2)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from recur.billing import engine
from recur.billing.models import Payment
from recur.checkout import links
from recur.checkout import services as checkout
from recur.core.errors import ValidationFailed
from recur.payments.models import PaymentMethod
from recur.subscriptions import services as subs
from tests.checkout.conftest import CARDS, card, card_form, first_invoice, make_contact

pytestmark = pytest.mark.django_db

BILLING = {"billing_address_line1": "Damrak 5", "billing_postal_code": "1012 LG", "billing_city": "Amsterdam",
           "billing_country": "NL"}
SHIPPING = {"shipping_address_line1": "Kade 2", "shipping_postal_code": "3011 AB", "shipping_city": "Rotterdam",
            "shipping_country": "NL"}


def manual(admin, contact, **options):
    sub = subs.create_subscription(admin, {
        "contact_id": contact.pk, "collection": "manual", "payment_terms": "net_30", **options,
        "line_items": [{"name": "Support plan", "unit_price": 4900, "currency": "EUR", "quantity": 1,
                        "billing_frequency": "monthly"}]})
    engine.run(only=[sub.pk])
    sub.refresh_from_db()
    return sub


def page_path(inv) -> str:
    return f"/billing/invoice/{links.invoice_token(inv)}/"


@pytest.fixture
def contact(admin, on):
    on(dt.date(2027, 3, 1))
    return make_contact(admin, language="en")


def test_billing_address_is_required_then_saved_on_the_invoice(admin, contact):
    sub = manual(admin, contact, collect_billing_address=True)
    inv = first_invoice(sub)
    page = Client().get(page_path(inv)).content.decode()
    assert "Billing address" in page and 'name="billing_address_line1"' in page
    assert 'name="shipping_address_line1"' not in page
    r = Client().post(page_path(inv), card_form())
    assert r.status_code == 200 and "This field is required." in r.content.decode()
    assert not Payment.objects.exists() and not PaymentMethod.objects.exists()
    r = Client().post(page_path(inv), {**card_form(), **BILLING}, follow=True)
    assert "succeeded" in r.content.decode()
    inv.refresh_from_db()
    assert inv.status == "paid"
    assert inv.billing_address == {"address_line1": "Damrak 5", "postal_code": "1012 LG", "city": "Amsterdam",
                                   "country": "NL"}


def test_shipping_address_is_kept_under_shipping(admin, contact):
    sub = manual(admin, contact, collect_billing_address=True, collect_shipping_address=True)
    inv = first_invoice(sub)
    r = Client().post(page_path(inv), {**card_form(), **BILLING, "shipping_city": ""})
    assert "Shipping address" in r.content.decode() and not Payment.objects.exists()
    Client().post(page_path(inv), {**card_form(), **BILLING, **SHIPPING})
    inv.refresh_from_db()
    assert inv.status == "paid" and inv.billing_address["city"] == "Amsterdam"
    assert inv.billing_address["shipping"] == {"address_line1": "Kade 2", "postal_code": "3011 AB",
                                               "city": "Rotterdam", "country": "NL"}


def test_service_names_the_missing_address_field(admin, contact):
    inv = first_invoice(manual(admin, contact, collect_shipping_address=True))
    with pytest.raises(ValidationFailed) as exc:
        checkout.pay_invoice(inv, card(), {"shipping": {"address_line1": "Kade 2"}})
    assert exc.value.field == "shipping_address.postal_code"
    assert not PaymentMethod.objects.exists()


def test_no_address_asked_without_the_options(admin, contact):
    inv = first_invoice(manual(admin, contact))
    page = Client().get(page_path(inv)).content.decode()
    assert 'name="billing_address_line1"' not in page and 'name="shipping_address_line1"' not in page


def test_save_payment_method_keeps_it_for_future_charges(admin, contact):
    sub = manual(admin, contact, save_payment_method=True)
    payment = checkout.pay_invoice(first_invoice(sub), card())
    assert payment.status == "succeeded"
    sub.refresh_from_db()
    method = PaymentMethod.objects.get()
    assert sub.payment_method == method and method.removed_at is None


def test_without_save_the_method_is_removed_after_the_payment(admin, contact):
    sub = manual(admin, contact)
    assert checkout.pay_invoice(first_invoice(sub), card()).status == "succeeded"
    sub.refresh_from_db()
    assert sub.payment_method is None
    assert PaymentMethod.objects.get().removed_at is not None


def test_a_declined_card_is_not_kept(admin, contact):
    sub = manual(admin, contact, save_payment_method=True)
    assert checkout.pay_invoice(first_invoice(sub), card(CARDS["declined"])).status == "failed"
    sub.refresh_from_db()
    assert sub.payment_method is None
