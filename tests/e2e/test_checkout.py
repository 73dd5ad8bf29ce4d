"""The hosted checkout of a payment link in Chromium (R-NEW-1, R-SIGN-1..5, R-BILL-6, R-ALL-1, R-ALL-4).

The live server runs on the real clock, so the link is made "today" through the services; the
days a bank debit takes to settle are passed in the test's own thread (``on``) before the
billing run.

The link holds a monthly and an annual item (two subscriptions, R-SIGN-4) and a one-time fee:
€49.00 + €500.00 + €150.00 = €699.00 due today, booked as one payment per subscription's first
invoice (the fee on the first of them).
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from recur.billing import engine
from recur.billing.models import BillingCycle, Invoice, Payment
from recur.checkout import payment_links as pl
from recur.checkout.models import CheckoutSession
from recur.core import clock, records
from recur.crm import services as crm
from recur.crm.models import Contact
from recur.notifications.models import OutboxMessage
from recur.payments.models import BuiltinCharge, PaymentMethod
from recur.subscriptions.models import Subscription
from tests.e2e.test_hosted_pages import fill_card

pytestmark = pytest.mark.django_db(transaction=True)

SHARES = {"monthly": 4900 + 15000, "annually": 50000}  # the one-time fee on the first invoice


def make_link(admin, **kw):
    deal = crm.create_deal(admin, {"name": "Utrecht office"})
    return pl.create_payment_link(admin, {"name": "Support plan", "collect_billing_address": True,
                                          "deal_ids": [deal.pk], "line_items": [
        {"name": "Support plan", "unit_price": 4900, "currency": "EUR", "billing_frequency": "monthly"},
        {"name": "Licence", "unit_price": 50000, "currency": "EUR", "billing_frequency": "annually",
         "billing_terms": "fixed", "number_of_payments": 3},
        {"name": "Onboarding", "unit_price": 15000, "currency": "EUR"}], **kw})


def fill_buyer(page):
    page.get_by_label("Full name").fill("Anna de Vries")
    page.get_by_label("E-mail").fill("anna@example.nl")
    page.get_by_label("Address").fill("Oudegracht 1")
    page.get_by_label("Postal code").fill("3511 AA")
    page.get_by_label("City").fill("Utrecht")
    page.get_by_label("Country").fill("NL")


def nothing_bought():
    return not (Contact.objects.exists() or PaymentMethod.objects.exists() or Subscription.objects.exists()
                or Invoice.objects.exists() or Payment.objects.exists() or OutboxMessage.objects.exists())


def assert_purchase(link, status: str, payment_status: str) -> list[Subscription]:
    """Two subscriptions of the buyer, associated with the contact and the link's deal (R-SIGN-2);
    one payment per invoice, adding up to the one charge."""
    contact = Contact.objects.get(email="anna@example.nl")
    subs = list(Subscription.objects.order_by("pk"))
    assert sorted(s.billing_frequency for s in subs) == ["annually", "monthly"]
    deal = records.associated(link, "deal").get()
    for sub in subs:
        assert sub.status == status and sub.contact_id == contact.pk
        assert [d.pk for d in records.associated(sub, "deal")] == [deal.pk]
        assert records.associated(sub, "contact").get().pk == contact.pk
    pays = {p.subscription.billing_frequency if p.subscription else None: (p.amount, p.status)
            for p in Payment.objects.select_related("subscription")}
    assert pays == {k: (v, payment_status) for k, v in SHARES.items()}
    assert BuiltinCharge.objects.order_by("-pk").first().amount == 69900  # the last charge paid it all
    return subs


def test_buyer_pays_a_payment_link_with_a_card(admin, page, shot):
    link = make_link(admin)
    page.goto(page.base + f"/billing/pay/{link.token}/?lang=en")
    expect(page.get_by_role("heading", name="Support plan").first).to_be_visible()
    expect(page.get_by_test_id("due-today")).to_have_text("€699.00")
    expect(page.locator(".recurs")).to_contain_text("Then €49.00 monthly")
    shot("1-page")
    # keyboard: name → e-mail → address fields in order
    page.get_by_label("Full name").focus()
    order = []
    for _ in range(3):
        order.append(page.evaluate("document.activeElement.id"))
        page.keyboard.press("Tab")
    assert order == ["id_buyer_name", "id_buyer_email", "id_billing_address_line1"]
    fill_buyer(page)
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_role("heading", name="Thank you — your purchase is complete")).to_be_visible()
    expect(page.get_by_test_id("subscriptions")).to_contain_text("Licence")
    expect(page.locator(".co-confirm")).to_contain_text("Your payment of €699.00 succeeded.")
    shot("2-confirmation")
    subs = assert_purchase(link, "active", "succeeded")
    assert all(s.payments_made == 1 for s in subs)
    receipt = OutboxMessage.objects.get(kind="payment_receipt")
    assert receipt.to_email == "anna@example.nl" and receipt.context["amount"]["amount_minor"] == 69900
    assert list(OutboxMessage.objects.filter(kind="seller_receipt").values_list("to_email", flat=True)) == [
        "admin@example.com"]


def test_declined_card_creates_nothing_then_a_good_one(admin, page, shot):
    link = make_link(admin)
    page.goto(page.base + f"/billing/pay/{link.token}/?lang=en")
    fill_buyer(page)
    fill_card(page, "4000 0000 0000 0002")
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_test_id("declined")).to_contain_text("Your card was declined.")
    expect(page.get_by_test_id("declined")).to_contain_text("You have not been charged")
    expect(page.get_by_label("E-mail")).to_have_value("anna@example.nl")
    expect(page.get_by_label("Card number")).to_have_value("")
    shot("1-declined")
    assert nothing_bought()
    session = CheckoutSession.objects.get()
    assert session.status == "declined" and session.attempts.get().failure_code == "card_declined"
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_role("heading", name="Thank you — your purchase is complete")).to_be_visible()
    shot("2-paid")
    assert_purchase(link, "active", "succeeded")
    assert CheckoutSession.objects.get().pk == session.pk  # the retry is the same purchase
    assert list(session.attempts.order_by("attempt_no").values_list("status", flat=True)) == ["failed", "succeeded"]
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1


def test_insufficient_funds_creates_nothing(admin, page, shot):
    link = make_link(admin)
    page.goto(page.base + f"/billing/pay/{link.token}/?lang=en")
    fill_buyer(page)
    fill_card(page, "4000 0000 0000 9995")
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_test_id("declined")).to_contain_text("Your card has insufficient funds.")
    shot("1-insufficient")
    assert nothing_bought()
    assert CheckoutSession.objects.get().failure_code == "insufficient_funds"


def pay_by_bank(page, link, account: str, shot):
    page.goto(page.base + f"/billing/pay/{link.token}/?lang=nl")
    page.get_by_label("Volledige naam").fill("Anna de Vries")
    page.get_by_label("E-mail").fill("anna@example.nl")
    if link.collect_shipping_address:
        page.get_by_label("Adres").fill("Dorpsstraat 7")
        page.get_by_label("Postcode").fill("1234 AB")
        page.get_by_label("Plaats").fill("Ede")
        page.get_by_label("Land").fill("NL")
    page.locator("label.method", has_text="Bankrekening").click()
    page.get_by_label("Rekeninghouder").fill("Anna de Vries")
    page.get_by_label("Routingnummer").fill("110000000")
    page.get_by_label("Rekeningnummer").fill(account)
    shot("1-bank")
    page.locator("button.pay").click()
    expect(page.locator('[data-status="pending"]')).to_be_visible()
    shot("2-pending")


def test_bank_account_is_pending_then_settles(admin, page, shot, on):
    link = make_link(admin, collect_billing_address=False)
    pay_by_bank(page, link, "000123456789", shot)
    assert_purchase(link, "active", "pending")  # R-SIGN-5: made while pending
    assert not OutboxMessage.objects.filter(kind="payment_receipt").exists()
    on(clock.today() + dt.timedelta(days=7))
    engine.run()
    subs = assert_purchase(link, "active", "succeeded")
    assert all(s.payments_made == 1 for s in subs)
    assert OutboxMessage.objects.get(kind="payment_receipt").context["amount"]["amount_minor"] == 69900
    assert OutboxMessage.objects.filter(kind="seller_receipt").count() == 1


def test_failing_bank_account_puts_every_subscription_past_due(admin, page, shot, on):
    link = make_link(admin, collect_billing_address=False, collect_shipping_address=True)
    pay_by_bank(page, link, "000111111116", shot)
    assert_purchase(link, "active", "pending")
    on(clock.today() + dt.timedelta(days=7))
    engine.run()
    subs = assert_purchase(link, "past_due", "failed")
    assert set(BillingCycle.objects.filter(subscription__in=subs).values_list("status", flat=True)) == {"failed"}
    failed = OutboxMessage.objects.get(kind="payment_failed")
    assert failed.to_email == "anna@example.nl" and failed.context["amount"]["amount_minor"] == 69900
    assert {tuple(sorted(s.shipping_address.items())) for s in subs} == {tuple(sorted(
        {"address_line1": "Dorpsstraat 7", "postal_code": "1234 AB", "city": "Ede", "country": "NL"}.items()))}
    # The seller sees the subscription Unpaid, with the shipping address the buyer gave.
    page.goto(page.base + "/login/")
    page.fill("#id_username", "admin@example.com")
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")
    page.goto(page.base + f"/subscriptions/{subs[0].pk}/?lang=en")
    expect(page.get_by_test_id("shipping-address")).to_contain_text("Dorpsstraat 7")
    expect(page.get_by_test_id("shipping-address")).to_contain_text("1234 AB Ede")
    shot("3-seller-subscription")
