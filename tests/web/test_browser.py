"""The seller's subscription pages in a real browser (Chromium through Playwright): log in, create a
subscription with the wizard, find it through a filter, save a view, cancel with a refund, switch to
Dutch (R-NEW-3, R-VIEW-1, R-VIEW-2, R-MAN-2, R-ALL-3). Screenshots go to test-artifacts/."""

import re

import pytest

from recur.core.auth import create_user
from recur.crm import services as crm
from recur.payments import services as payments
from recur.subscriptions.models import Subscription
from tests.billing.conftest import CARDS
from tests.e2e.conftest import browser, page, shot  # noqa: F401  (the shared browser fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_seller_creates_finds_saves_view_cancels_with_refund_in_english_then_dutch(page, shot):  # noqa: F811
    admin = create_user("seller@example.com", "correct-horse-9", super_admin=True, name="Sam Seller")
    anna = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl",
                                      "city": "Utrecht", "address_line1": "Oudegracht 1", "postal_code": "3511 AA",
                                      "country": "NL"})
    crm.create_contact(admin, {"name": "Bram Jansen", "email": "bram@example.nl"})
    payments.add_payment_method(admin, anna, {
        "type": "card", "card": {"number": CARDS["ok"], "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
    crm.create_product(admin, {"name": "Team plan", "unit_price": 4900, "currency": "EUR",
                               "billing_frequency": "monthly"})
    base = page.base

    # log in
    page.goto(base + "/login/")
    page.fill("#id_username", "seller@example.com")
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")
    page.get_by_role("link", name="Subscriptions").first.click()
    page.get_by_role("link", name="Create subscription").first.click()

    # the wizard: contact (searchable), a product from the library and a custom item, automatic charge
    page.fill("input[name=contact_q]", "anna")
    page.wait_for_function("document.querySelectorAll('select[name=contact] option').length == 2")
    page.select_option("select[name=contact]", str(anna.pk))
    page.wait_for_function("document.querySelectorAll('select[name=payment_method] option').length == 2")
    page.select_option("select[name=item-0-product]", label="Team plan (EUR)")
    page.fill("input[name=item-0-quantity]", "2")
    page.click("button[name=add_item]")
    page.fill("input[name=item-1-name]", "Priority support")
    page.fill("input[name=item-1-unit_price]", "20,00")
    assert page.locator("select[name=payment_method]").input_value() != ""
    shot("wizard-form")
    page.click("button.primary[name=confirm]")
    page.get_by_text("Check the subscription before it is created").wait_for()
    assert page.get_by_test_id("amount").inner_text().startswith("$") is False
    assert "118.00" in page.get_by_test_id("amount").inner_text()
    assert page.locator("[data-testid=schedule] tbody tr").count() == 3
    shot("wizard-confirmation")
    page.click("button[name=create]")
    page.get_by_text("is created").wait_for()
    sub = Subscription.objects.get()
    assert sub.status == "active" and sub.payments_made == 1 and sub.amount == 11800
    page.get_by_test_id("status").wait_for()
    shot("subscription-page")

    # find it through a filter, then save the filtered table as a view
    page.get_by_role("link", name="Subscriptions").first.click()
    page.click("summary:has-text('Advanced filters')")
    page.select_option("#add_condition", "amount")
    page.click("button[name=add]")
    page.select_option("select[name=fo]", "gt")
    page.fill("input[name=fv]", "100")
    page.locator("details[open] .menu-foot button.primary").click()
    page.get_by_role("link", name="Team plan + 1").wait_for()
    page.click("summary:has-text('Add view')")
    page.fill("#view-name", "Big plans")
    page.click("text=Save view")
    page.get_by_role("link", name="Big plans").wait_for()
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Big plans"
    assert page.get_by_role("link", name="Team plan + 1").count() == 1
    shot("index")
    # rename the view from its menu
    page.locator("summary.btn", has_text=re.compile(r"^View$")).click()
    page.fill("#rename-view", "Large plans")
    shot("view-menu", full_page=False)
    page.get_by_role("button", name="Rename").click()
    page.get_by_text("is now called “Large plans”").wait_for()
    assert page.locator("nav.tabs a[aria-current=page]").inner_text() == "Large plans"

    # edit: the new amount is shown before it is saved
    page.get_by_role("link", name="Team plan + 1").click()
    page.get_by_role("link", name="Edit", exact=True).first.click()
    page.fill("input[name=item-1-quantity]", "2")
    page.click("button[name=preview]")
    page.get_by_test_id("proration").wait_for()
    assert "138.00" in page.get_by_test_id("proration").inner_text()
    shot("edit-preview")
    page.click("button.primary[name=save]")
    page.get_by_text("The subscription is saved.").wait_for()
    sub.refresh_from_db()
    assert sub.amount == 13800

    # cancel with a refund of the unused days (today is the first day: everything)
    page.click("summary:has-text('Actions')")
    page.get_by_role("link", name="Cancel subscription").click()
    page.check("#mode-refund_unused")
    refund = page.get_by_test_id("refund").inner_text()
    assert "118.00" in refund  # what was paid for the current period
    page.click("button.danger")  # without the confirmation box: refused
    page.get_by_text("Tick this box to confirm the cancellation.").wait_for()
    page.check("#mode-refund_unused")
    page.check("input[name=confirm]")
    shot("cancel-dialog")
    page.click("button.danger")
    page.get_by_text("is refunded").wait_for()
    sub.refresh_from_db()
    assert sub.status == "canceled" and sub.total_paid == 0

    # switch to Dutch
    page.select_option("#language", "nl")
    page.wait_for_url(re.compile(r".*/subscriptions/\d+/"))
    page.get_by_text("Opgezegd").first.wait_for()
    page.get_by_role("link", name="Abonnementen").first.click()
    page.get_by_role("link", name="Abonnement aanmaken").wait_for()
    shot("index-dutch")
    page.goto(base + f"/contacts/{anna.pk}/")
    page.click("[data-testid=subscriptions-card] details:not(.dropdown) summary")
    page.get_by_text("Volgende betaling").wait_for()
    shot("contact-card-dutch")
