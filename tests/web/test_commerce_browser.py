"""In Chromium: the seller makes a payment link in the seller pages (R-NEW-2), a buyer opens its public
address and pays with the test card, and the subscription appears on the seller's subscriptions index
(R-NEW-1). Screenshots go to test-artifacts/."""

from urllib.parse import urlparse

import pytest

from recur.checkout.models import PaymentLink
from recur.core.auth import create_user
from recur.crm import services as crm
from recur.subscriptions.models import Subscription
from tests.e2e.conftest import ARTIFACTS, browser, page, shot  # noqa: F401  (the shared browser fixtures)
from tests.e2e.test_hosted_pages import fill_card

pytestmark = pytest.mark.django_db(transaction=True)


def test_seller_creates_a_payment_link_and_a_buyer_pays_it(page, shot):  # noqa: F811
    admin = create_user("seller@example.com", "correct-horse-9", super_admin=True, name="Sam Seller")
    crm.create_product(admin, {"name": "Team plan", "unit_price": 4900, "currency": "EUR",
                               "billing_frequency": "monthly"})
    base = page.base
    page.goto(base + "/login/")
    page.fill("#id_username", "seller@example.com")
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")

    # the wizard's "When a customer pays" leads to the payment-link form
    page.goto(base + "/subscriptions/new/")
    page.get_by_text("When a customer pays").click()
    page.get_by_role("heading", name="Create payment link").wait_for()
    page.fill("input[name=name]", "Team plan with setup")
    page.select_option("select[name=item-0-product]", label="Team plan (EUR)")
    assert page.locator("fieldset[data-item] [data-recurring]").first.is_visible()  # a monthly product
    page.click("button[name=add_item]")
    page.fill("input[name=item-1-name]", "Setup")
    page.fill("input[name=item-1-unit_price]", "25,00")
    page.select_option("select[name=item-1-billing_frequency]", "one_time")
    assert not page.locator("fieldset[data-item]").nth(1).locator("[data-recurring]").first.is_visible()
    shot("payment-link-form")
    page.click("button.primary[name=create]")
    page.get_by_text("is created").wait_for()
    assert "€74.00" in page.get_by_test_id("due-now").inner_text()
    url = page.get_by_test_id("link-url").input_value()
    link = PaymentLink.objects.get()
    assert url.endswith(f"/billing/pay/{link.token}/")
    shot("payment-link-detail")
    page.get_by_role("link", name="Payment links").first.click()
    page.get_by_role("link", name="Team plan with setup").wait_for()
    shot("payment-link-list")

    # the buyer pays at the public address (served here by the test server)
    buyer = page.context.browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US").new_page()
    buyer.goto(base + urlparse(url).path + "?lang=en")
    buyer.get_by_label("Full name").fill("Anna de Vries")
    buyer.get_by_label("E-mail").fill("anna@example.nl")
    fill_card(buyer, "4242 4242 4242 4242")
    buyer.get_by_role("button", name="Pay €74.00").click()
    buyer.get_by_text("Thank you").first.wait_for()
    buyer.screenshot(path=str(ARTIFACTS / "test_seller_creates_a_payment_link_and_a_buyer_pays_it-buyer-paid.png"),
                     full_page=True)
    buyer.context.close()

    sub = Subscription.objects.get()
    assert sub.status == "active" and sub.payments_made == 1 and sub.contact.email == "anna@example.nl"
    page.goto(base + "/subscriptions/")
    page.get_by_role("link", name=sub.name).wait_for()
    shot("subscriptions-index")
    page.goto(base + f"/payment-links/{link.pk}/")
    page.get_by_role("link", name=sub.name).wait_for()
