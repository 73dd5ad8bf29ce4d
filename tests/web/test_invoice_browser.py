"""In Chromium: the seller opens an invoice from the list, records a bank transfer for part of it, then the
rest; the invoice is paid (R-KIND-2). Screenshots go to test-artifacts/."""

import pytest

from recur.billing import services as billing
from recur.billing.models import Invoice
from recur.core.auth import create_user
from recur.crm import services as crm
from tests.e2e.conftest import ARTIFACTS, browser, page, shot  # noqa: F401  (the shared browser fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_seller_records_a_part_payment_then_the_rest(page, shot):  # noqa: F811
    admin = create_user("seller@example.com", "correct-horse-9", super_admin=True, name="Sam Seller")
    anna = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl", "city": "Utrecht",
                                      "address_line1": "Oudegracht 1", "postal_code": "3511 AA"})
    inv = billing.create_invoice(admin, contact=anna, payment_terms="net_30", items=[
        {"name": "Workshop", "unit_price": 50000, "currency": "EUR", "quantity": 2, "tax_rate": 21}])
    base = page.base
    page.goto(base + "/login/")
    page.fill("#id_username", "seller@example.com")
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")

    page.goto(base + "/invoices/")
    page.get_by_role("link", name=inv.number, exact=True).click()
    page.get_by_role("heading", name="Record a payment").wait_for()
    page.get_by_label("Amount received").fill("1000")
    page.get_by_label("Method").select_option("bank_transfer")
    page.get_by_label("Reference (optional)").fill("Statement 42")
    page.get_by_role("button", name="Record payment").click()
    page.get_by_text("is recorded on invoice").wait_for()
    assert page.get_by_test_id("amount-due").inner_text() == "€210.00"
    shot("invoice-part-paid")
    page.get_by_role("button", name="Record payment").click()  # the rest is pre-filled
    page.get_by_text("is recorded on invoice").wait_for()
    assert page.get_by_test_id("status").inner_text() == "Paid"
    inv.refresh_from_db()
    assert inv.status == "paid" and inv.amount_paid == 121000
    assert Invoice.objects.count() == 1
    shot("invoice-paid")


def test_seller_writes_an_invoice_off_then_books_the_late_transfer(page, shot):  # noqa: F811
    """The buyer does not pay, the seller writes the invoice off; weeks later the money arrives after all
    and the seller books it on the written-off invoice, which is then paid."""
    admin = create_user("seller@example.com", "correct-horse-9", super_admin=True, name="Sam Seller")
    anna = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    inv = billing.create_invoice(admin, contact=anna, payment_terms="net_30", items=[
        {"name": "Workshop", "unit_price": 50000, "currency": "EUR", "quantity": 1}])
    base = page.base
    page.goto(base + "/login/")
    page.fill("#id_username", "seller@example.com")
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")

    page.goto(base + f"/invoices/{inv.pk}/")
    page.get_by_role("link", name="Write off").click()
    page.get_by_role("button", name="Write off").click()
    page.get_by_text("written off as uncollectible").wait_for()
    assert page.get_by_test_id("status").inner_text() == "Uncollectible"
    page.get_by_text("after the invoice was written off").wait_for()
    assert page.get_by_label("Amount received").input_value() == "500.00"
    assert page.get_by_test_id("written-off").inner_text() == "€500.00"
    shot("written-off")
    page.get_by_label("Reference (optional)").fill("Late transfer")
    page.get_by_role("button", name="Record payment").click()
    page.get_by_text("is recorded on invoice").wait_for()
    assert page.get_by_test_id("status").inner_text() == "Paid"
    assert page.get_by_role("heading", name="Record a payment").count() == 0
    assert page.get_by_test_id("written-off").count() == 0
    assert "Updated by Sam Seller" in page.locator(".timeline li").first.inner_text()  # who booked it
    inv.refresh_from_db()
    assert (inv.status, inv.amount_paid) == ("paid", 50000)
    shot("paid-after-all")
