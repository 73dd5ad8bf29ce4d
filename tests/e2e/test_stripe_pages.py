"""The hosted pages with RECUR_PROCESSOR=stripe, in Chromium, against localstripe (R-PAY-2, R-BILL-5, R-BILL-6,
R-KIND-2, R-NEW-1).

The pages load localstripe's mock of Stripe.js (``STRIPE_JS_URL``), which mounts a "card Element"
of plain inputs and implements ``confirmCardSetup`` against localstripe's SetupIntents, exactly
where Stripe.js would talk to Stripe. The card number therefore goes from the browser to
"Stripe" only; Recur receives a PaymentMethod id and the SetupIntent that made it.
"""

from __future__ import annotations

import pytest
from django.db import connection
from playwright.sync_api import expect

from recur.billing.models import BillingCycle, Invoice, Payment
from recur.checkout import links
from recur.payments.models import PaymentMethod
from recur.subscriptions.models import Subscription
from tests.checkout.conftest import first_invoice, make_contact, make_subscription
from tests.e2e.test_checkout import fill_buyer, make_link
from tests.stripe.conftest import localstripe, stripe_settings  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

OK, DECLINED, FAILS_CHARGES = "4242424242424242", "4000000000000002", "4000000000000341"


@pytest.fixture
def on_stripe(stripe_settings, localstripe):  # noqa: F811
    stripe_settings.STRIPE_PUBLISHABLE_KEY = "pk_test_recur_localstripe"
    stripe_settings.STRIPE_JS_URL = f"{localstripe}/js.stripe.com/v3/"
    return stripe_settings


def fill_element(page, number: str, name: str | None = "Anna de Vries") -> None:
    """Type a card into the mounted card Element (localstripe's: number, month, 2-digit year, CVC, postcode)."""
    element = page.get_by_test_id("card-element")
    expect(element.locator('input[placeholder="number"]')).to_be_visible()
    element.locator('input[placeholder="number"]').fill(number)
    element.locator('input[placeholder="exp_month"]').fill("12")
    element.locator('input[placeholder="exp_year"]').fill("35")
    element.locator('input[placeholder="cvc"]').fill("123")
    element.locator('input[placeholder="postal_code"]').fill("3511")
    if name is not None:
        page.get_by_label("Name on card").fill(name)


def no_card_numbers_stored() -> None:
    """No full test card number anywhere in Recur's database (R-PAY-1 security)."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            text = repr(cursor.fetchall())
            for number in (OK, DECLINED, FAILS_CHARGES):
                assert number not in text, f"{number} found in {table}"


def test_update_payment_method_with_stripe_clears_a_past_due_subscription(admin, on_stripe, page, shot):
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, card_number=FAILS_CHARGES)
    assert sub.status == "past_due" and sub.payment_method.processor == "stripe"
    page.goto(page.base + f"/billing/update/{links.update_payment_method_token(sub)}/")
    expect(page.locator('[data-status="past_due"]')).to_have_text("Unpaid")
    assert page.locator("#payform").get_attribute("data-stripe-secret").startswith("seti_")
    expect(page.get_by_label("Card number")).to_have_count(0)  # no raw card field of ours on a Stripe page
    expect(page.get_by_test_id("sepa-mandate")).to_be_hidden()  # card chosen: the SEPA pane is hidden
    fill_element(page, DECLINED)
    shot("1-stripe-element")

    # Stripe declines the card while setting it up: the page says so, nothing changed, a retry is possible
    page.get_by_role("button", name="Save and pay €49.00").click()
    expect(page.get_by_test_id("payment-error")).to_have_text("Your card was declined.")
    shot("2-declined")
    sub.refresh_from_db()
    assert sub.status == "past_due" and sub.payment_method.last4 == "0341"

    fill_element(page, OK)
    page.get_by_role("button", name="Save and pay €49.00").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you — your payment of €49.00 succeeded.")
    expect(page.locator('[data-status="active"]')).to_have_text("Active")
    expect(page.get_by_test_id("current-method")).to_contain_text("Visa ····4242")
    shot("3-paid")

    sub.refresh_from_db()
    pm = sub.payment_method
    assert sub.status == "active" and pm.processor == "stripe" and pm.processor_ref.startswith("pm_")
    assert (pm.brand, pm.last4, pm.exp_month, pm.exp_year) == ("visa", "4242", 12, 2035)
    assert BillingCycle.objects.get(subscription=sub).status == "paid"
    assert list(Payment.objects.filter(subscription=sub).order_by("pk").values_list("status", flat=True)) == [
        "failed", "succeeded"]
    no_card_numbers_stored()


def test_a_card_saved_but_declined_on_charge_then_another_card(admin, on_stripe, page, shot):
    """The SetupIntent succeeds but the past-due charge is declined: the page says so; a second card pays."""
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, card_number=FAILS_CHARGES)
    page.goto(page.base + f"/billing/update/{links.update_payment_method_token(sub)}/")
    fill_element(page, FAILS_CHARGES)
    page.get_by_role("button", name="Save and pay €49.00").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Your new payment method was saved, but the payment of €49.00 was declined: Your card was declined.")
    shot("1-charge-declined")
    fill_element(page, OK)
    page.get_by_role("button", name="Save and pay €49.00").click()
    expect(page.locator('[data-status="active"]')).to_have_text("Active")
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payment_method.last4 == "4242"


def test_sepa_direct_debit_on_the_update_page(admin, on_stripe, page, shot):
    """A euro subscription: the buyer may give an IBAN instead (SEPA Direct Debit through Stripe.js)."""
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, card_number=FAILS_CHARGES)
    page.goto(page.base + f"/billing/update/{links.update_payment_method_token(sub)}/")
    page.locator("label.method", has_text="Bank account").click()
    expect(page.get_by_test_id("sepa-mandate")).to_be_visible()
    # first without an IBAN: Stripe refuses it, the page says so and nothing changes
    page.get_by_label("Account holder").fill("Anna de Vries")
    page.get_by_role("button", name="Save and pay €49.00").click()
    expect(page.get_by_test_id("payment-error")).to_contain_text("This bank account could not be saved.")
    expect(page.locator("#method_bank_account")).to_be_checked()
    expect(page.get_by_label("Account holder")).to_have_value("Anna de Vries")

    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    shot("1-sepa")
    page.get_by_role("button", name="Save and pay €49.00").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you — your payment of €49.00 succeeded.")
    expect(page.get_by_test_id("current-method")).to_contain_text("····3000")
    shot("2-paid")
    sub.refresh_from_db()
    pm = sub.payment_method
    assert sub.status == "active" and (pm.processor, pm.type, pm.last4) == ("stripe", "bank_account", "3000")
    with connection.cursor() as cursor:  # the IBAN never reached Recur
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            assert "DE89370400440532013000" not in repr(cursor.fetchall()), table


def test_pay_an_invoice_with_stripe(admin, on_stripe, page, shot):
    anna = make_contact(admin, language="en")
    invoice = first_invoice(make_subscription(admin, anna, collection="manual", payment_terms="net_30"))
    page.goto(page.base + f"/billing/invoice/{links.invoice_token(invoice)}/")
    expect(page.locator('[data-status="open"]')).to_have_text("Open")
    fill_element(page, FAILS_CHARGES)
    shot("1-open")
    page.get_by_role("button", name="Pay €49.00").click()
    expect(page.get_by_role("alert").filter(has_text="declined")).to_contain_text(
        "Your payment of €49.00 was declined: Your card was declined.")
    shot("2-declined")
    invoice.refresh_from_db()
    assert invoice.status == "open"

    fill_element(page, OK)
    page.get_by_role("button", name="Pay €49.00").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you — your payment of €49.00 succeeded.")
    expect(page.locator('[data-status="paid"]')).to_have_text("Paid")
    shot("3-paid")
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == 4900
    paid = Payment.objects.get(invoice=invoice, status="succeeded")
    assert paid.charge_ref.startswith("pi_") and paid.payment_method.processor == "stripe"
    no_card_numbers_stored()


def test_checkout_of_a_payment_link_with_stripe(admin, on_stripe, page, shot):
    link = make_link(admin)
    page.goto(page.base + f"/billing/pay/{link.token}/?lang=en")
    expect(page.get_by_test_id("due-today")).to_have_text("€699.00")
    fill_buyer(page)
    fill_element(page, DECLINED, name=None)
    page.get_by_label("Name on card").fill("Anna de Vries")
    shot("1-page")
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_test_id("payment-error")).to_have_text("Your card was declined.")
    expect(page.get_by_label("E-mail")).to_have_value("anna@example.nl")  # the buyer's details are kept
    shot("2-declined")
    assert Subscription.objects.count() == 0 and Invoice.objects.count() == 0

    fill_element(page, OK)
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_role("heading", name="Thank you — your purchase is complete")).to_be_visible()
    shot("3-confirmation")
    assert Subscription.objects.count() == 2
    # one charge, booked as each subscription's share of it
    paid = list(Payment.objects.values_list("amount", "status", "charge_ref"))
    assert sum(a for a, _, _ in paid) == 69900 and {s for _, s, _ in paid} == {"succeeded"} and len(paid) == 2
    assert len({ref for _, _, ref in paid}) == 1
    pm = PaymentMethod.objects.get()
    assert pm.processor == "stripe" and pm.last4 == "4242" and pm.contact.email == "anna@example.nl"
    no_card_numbers_stored()
