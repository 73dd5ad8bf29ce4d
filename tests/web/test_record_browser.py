"""In Chromium: the seller creates a contact (a duplicate e-mail is shown beside its field), then gives a
deal line items and converts it to a subscription from the deal page (R-OBJ-1, R-NEW-5). Screenshots go to
test-artifacts/."""

import pytest
from playwright.sync_api import expect

from recur.core import records
from recur.core.auth import create_user
from recur.crm import services as crm
from recur.crm.models import Contact
from recur.subscriptions.models import Subscription
from tests.e2e.conftest import ARTIFACTS, browser, page, shot  # noqa: F401  (the shared browser fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_seller_creates_a_contact_and_converts_a_deal(page, shot):  # noqa: F811
    admin = create_user("seller@example.com", "correct-horse-9", super_admin=True, name="Sam Seller")
    anna = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    crm.create_company(admin, {"name": "Acme BV"})
    crm.create_product(admin, {"name": "Team plan", "unit_price": 4900, "currency": "EUR",
                               "billing_frequency": "monthly"})
    base = page.base
    page.goto(base + "/login/")
    page.fill("#id_username", "seller@example.com")
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")

    page.goto(base + "/contacts/")
    page.get_by_role("link", name="Create contact").click()
    page.get_by_label("Name").fill("Bram Jansen")
    page.get_by_label("Primary e-mail").fill("anna@example.nl")
    page.get_by_label("Company").select_option(label="Acme BV")
    page.get_by_label("City").fill("Utrecht")
    page.get_by_role("button", name="Create contact").click()
    err = page.locator("#id_email_error")
    err.wait_for()
    assert "already belongs to another contact" in err.inner_text()
    assert Contact.objects.count() == 1
    shot("contact-form-error")
    page.get_by_label("Primary e-mail").fill("bram@example.nl")
    page.get_by_role("button", name="Create contact").click()
    page.get_by_text("“Bram Jansen” is created.").wait_for()

    deal = crm.create_deal(admin, {"name": "Acme rollout", "amount": 120000})
    records.associate(admin, deal, anna)
    page.goto(base + f"/deals/{deal.pk}/")
    page.get_by_role("link", name="Add line items").click()
    page.select_option("select[name=item-0-product]", label="Team plan (EUR)")
    page.fill("input[name=item-0-quantity]", "3")
    page.click("button[name=add_item]")
    page.fill("input[name=item-1-name]", "Onboarding")
    page.fill("input[name=item-1-unit_price]", "250")
    page.select_option("select[name=item-1-billing_frequency]", "one_time")
    page.get_by_role("button", name="Save line items").last.click()
    page.get_by_text("line items are saved").wait_for()
    page.get_by_text("Send invoices and collect manually").click()
    shot("deal-convert-box")
    page.get_by_role("button", name="Convert to subscription").click()
    page.get_by_text("1 subscription(s) created from the deal.").wait_for()
    sub = Subscription.objects.get()
    assert sub.amount == 14700 and sub.contact_id == anna.pk
    shot("deal-converted")


def test_choosing_a_contact_in_the_wizard_fills_in_its_company(page):  # noqa: F811
    admin = create_user("seller@example.com", "correct-horse-9", super_admin=True, name="Sam Seller")
    anna = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    bert = crm.create_contact(admin, {"name": "Bert Jansen", "email": "bert@example.nl"})
    cleo = crm.create_contact(admin, {"name": "Cleo Smit", "email": "cleo@example.nl"})  # no company
    acme = crm.create_company(admin, {"name": "Acme BV"})
    globex = crm.create_company(admin, {"name": "Globex NV"})
    records.associate(admin, anna, acme)
    records.associate(admin, bert, globex)
    page.goto(page.base + "/login/")
    page.fill("#id_username", "seller@example.com")
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")
    page.goto(page.base + "/subscriptions/new/")
    company = page.locator("#id_company")

    def choose(contact):
        with page.expect_response(lambda r: r.url.endswith(f"/contacts/{contact.pk}/payment-methods.json")):
            page.locator("#id_contact").select_option(str(contact.pk))
        page.wait_for_load_state("networkidle")

    choose(anna)
    expect(company).to_have_value(str(acme.pk))
    choose(bert)  # filled in for Anna: follows the contact
    expect(company).to_have_value(str(globex.pk))
    choose(cleo)  # no company of her own: cleared
    expect(company).to_have_value("")
    company.select_option(str(acme.pk))  # chosen by the seller: kept whoever the contact is
    choose(bert)
    expect(company).to_have_value(str(acme.pk))
