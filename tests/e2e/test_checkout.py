"""The hosted checkout of a payment link in Chromium (R-NEW-1, R-SIGN-1, R-SIGN-5, R-ALL-1, R-ALL-4).

The live server runs on the real clock, so the link is made "today" through the services."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from recur.billing.models import Payment
from recur.checkout import payment_links as pl
from recur.subscriptions.models import Subscription
from tests.e2e.test_hosted_pages import fill_card

pytestmark = pytest.mark.django_db(transaction=True)


def make_link(admin, **kw):
    return pl.create_payment_link(admin, {"name": "Support plan", "collect_billing_address": True, "line_items": [
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
    shot("2-confirmation")
    assert Subscription.objects.count() == 2
    assert list(Payment.objects.values_list("amount", "status")) == [(69900, "succeeded")]


def test_declined_card_then_a_good_one(admin, page, shot):
    link = make_link(admin)
    page.goto(page.base + f"/billing/pay/{link.token}/?lang=en")
    fill_buyer(page)
    fill_card(page, "4000 0000 0000 0002")
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_test_id("declined")).to_contain_text("Your card was declined.")
    expect(page.get_by_label("E-mail")).to_have_value("anna@example.nl")
    expect(page.get_by_label("Card number")).to_have_value("")
    shot("1-declined")
    assert Subscription.objects.count() == 0
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay €699.00").click()
    expect(page.get_by_role("heading", name="Thank you — your purchase is complete")).to_be_visible()
    shot("2-paid")
    assert Subscription.objects.count() == 2 and Payment.objects.filter(status="succeeded").count() == 1


def test_bank_account_is_pending(admin, page, shot):
    link = make_link(admin, collect_billing_address=False)
    page.goto(page.base + f"/billing/pay/{link.token}/?lang=nl")
    page.get_by_label("Volledige naam").fill("Anna de Vries")
    page.get_by_label("E-mail").fill("anna@example.nl")
    page.locator("label.method", has_text="Bankrekening").click()
    page.get_by_label("Rekeninghouder").fill("Anna de Vries")
    page.get_by_label("Routingnummer").fill("110000000")
    page.get_by_label("Rekeningnummer").fill("000123456789")
    shot("1-bank")
    page.locator("button.pay").click()
    expect(page.locator('[data-status="pending"]')).to_be_visible()
    shot("2-pending")
    assert Subscription.objects.filter(status="active").count() == 2
    assert Payment.objects.get().status == "pending"
