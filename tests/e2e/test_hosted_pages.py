"""The buyer's hosted pages in a real browser (R-BILL-5, R-BILL-6, R-KIND-2, R-ALL-1, R-ALL-3).

The live server runs on the real clock (``clock.freeze`` is per thread), so the
records are made "today" through the services, as a seller would make them.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from recur.billing.models import BillingCycle, Invoice, Payment
from recur.checkout import links
from recur.core import clock
from recur.subscriptions.models import Subscription
from tests.checkout.conftest import CARDS, first_invoice, make_contact, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)


def fill_card(page, number: str, name: str = "Anna de Vries", *, labels=None) -> None:
    labels = labels or {"number": "Card number", "month": "Expiry month", "year": "Expiry year",
                        "cvc": "CVC", "name": "Name on card"}
    page.get_by_label(labels["number"]).fill(number)
    page.get_by_label(labels["month"]).select_option("12")
    page.get_by_label(labels["year"]).select_option(str(clock.today().year + 3))
    page.get_by_label(labels["cvc"]).fill("123")
    page.get_by_label(labels["name"]).fill(name)


def test_past_due_subscription_is_recovered_through_the_update_link(admin, page, shot):
    """(a) a failed card → Unpaid → the buyer opens the e-mailed link, enters 4242 → paid, active."""
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, card_number=CARDS["insufficient"])
    assert sub.status == "past_due"
    page.goto(page.base + f"/billing/update/{links.update_payment_method_token(sub)}/")
    expect(page.get_by_role("heading", name="Support plan")).to_be_visible()
    expect(page.locator('[data-status="past_due"]')).to_have_text("Unpaid")
    expect(page.get_by_test_id("current-method")).to_contain_text("Visa ····9995")
    shot("1-unpaid")

    # keyboard: the card fields come in a sensible tab order
    page.get_by_label("Card number").focus()
    order = []
    for _ in range(5):
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
        page.keyboard.press("Tab")
    assert order == ["id_card_number", "id_card_exp_month", "id_card_exp_year", "id_card_cvc", "id_card_name"]

    fill_card(page, "4242 4242 4242 4242")
    shot("2-filled")
    page.get_by_role("button", name="Save and pay €49.00").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you — your payment of €49.00 succeeded.")
    expect(page.locator('[data-status="active"]')).to_have_text("Active")
    expect(page.get_by_test_id("current-method")).to_contain_text("Visa ····4242")
    shot("3-paid")

    sub.refresh_from_db()
    assert sub.status == "active" and sub.payment_method.last4 == "4242" and sub.payments_made == 1
    cycle = BillingCycle.objects.get(subscription=sub)
    assert cycle.status == "paid" and cycle.invoice.status == "paid"
    assert list(Payment.objects.filter(subscription=sub).order_by("pk").values_list("status", flat=True)) == [
        "failed", "succeeded"]


def test_pay_an_invoice_online_then_a_declined_card_on_another(admin, page, shot):
    """(b) an open manual invoice paid with 4242 (double-clicked: one payment); a declined card on another."""
    anna = make_contact(admin, language="en")
    first = first_invoice(make_subscription(admin, anna, collection="manual", payment_terms="net_30"))
    page.goto(page.base + f"/billing/invoice/{links.invoice_token(first)}/")
    expect(page.get_by_role("heading", name=f"Invoice {first.number}")).to_be_visible()
    expect(page.locator('[data-status="open"]')).to_have_text("Open")
    shot("1-open")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    shot("1b-open-phone")
    page.set_viewport_size({"width": 1280, "height": 860})
    pdf = page.request.get(page.base + page.get_by_role("link", name="Download PDF").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body()[:4] == b"%PDF"

    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay €49.00").dblclick()
    expect(page.get_by_role("status")).to_contain_text("Thank you — your payment of €49.00 succeeded.")
    expect(page.locator('[data-status="paid"]')).to_have_text("Paid")
    expect(page.get_by_role("button", name="Pay €49.00")).to_have_count(0)
    shot("2-paid")
    first.refresh_from_db()
    assert first.status == "paid" and Payment.objects.filter(invoice=first).count() == 1

    # Another buyer, in Dutch, with a card that is declined.
    bob = make_contact(admin, name="Bob Jansen", email="bob@example.nl", language="nl")
    second = first_invoice(make_subscription(admin, bob, collection="manual", payment_terms="net_30",
                                             name="Hosting", price=1250))
    page.goto(page.base + f"/billing/invoice/{links.invoice_token(second)}/")
    expect(page.get_by_role("heading", name=f"Factuur {second.number}")).to_be_visible()
    fill_card(page, "4000 0000 0000 0002", "Bob Jansen", labels={
        "number": "Kaartnummer", "month": "Vervalmaand", "year": "Vervaljaar", "cvc": "CVC",
        "name": "Naam op de kaart"})
    page.get_by_role("button", name="€\xa012,50 betalen").click()
    expect(page.get_by_role("alert")).to_contain_text("Je betaling van €\xa012,50 is geweigerd: Je kaart is geweigerd.")
    expect(page.locator('[data-status="open"]')).to_have_text("Open")
    expect(page.get_by_label("Kaartnummer")).to_have_value("")  # the number is never sent back
    shot("3-declined-nl")
    second.refresh_from_db()
    assert second.status == "open" and second.amount_paid == 0
    assert not Payment.objects.filter(invoice=second, status="succeeded").exists()

    # a wrong card number gets its error beside the field; nothing is saved
    page.get_by_label("Kaartnummer").fill("4242 4242 4242 4241")
    page.get_by_role("button", name="€\xa012,50 betalen").click()
    expect(page.locator("#id_card_number-error")).to_have_text("Dit kaartnummer is niet geldig.")
    expect(page.get_by_label("Kaartnummer")).to_have_attribute("aria-invalid", "true")
    shot("4-field-error-nl")
    assert Payment.objects.filter(invoice=second).count() == 1


def test_bank_debit_on_an_invoice_is_pending(admin, page, shot):
    """(c) paying by bank debit: the payment stays pending; the page says so."""
    inv = first_invoice(make_subscription(admin, make_contact(admin, language="en"), collection="manual",
                                          payment_terms="net_15"))
    page.goto(page.base + f"/billing/invoice/{links.invoice_token(inv)}/")
    page.get_by_text("Bank account", exact=True).click()
    expect(page.get_by_label("Card number")).to_be_hidden()
    page.get_by_label("Account holder").fill("Anna de Vries")
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_label("Account number").fill("000123456789")
    shot("1-bank-form")
    page.get_by_role("button", name="Pay €49.00").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Thank you — your bank payment of €49.00 is being processed. We'll let you know when it has cleared.")
    expect(page.get_by_role("heading", name="Payment in progress")).to_be_visible()
    shot("2-pending")
    inv.refresh_from_db()
    assert inv.status == "open" and Payment.objects.get(invoice=inv).status == "pending"
    assert Subscription.objects.get(pk=inv.subscription_id).status == "active"
    assert Invoice.objects.get(pk=inv.pk).amount_paid == 0


def test_an_expired_link_gets_a_clear_page(admin, page, shot, settings):
    sub = make_subscription(admin, make_contact(admin, language="en"), card_number=CARDS["ok"])
    settings.RECUR_UPDATE_LINK_MAX_AGE = -1000  # every link is too old
    response = page.goto(page.base + f"/billing/update/{links.update_payment_method_token(sub)}/")
    assert response.status == 410
    expect(page.get_by_role("heading", name="This link has expired")).to_be_visible()
    shot("1-expired")


@pytest.mark.parametrize("number, reason", [
    ("4000 0000 0000 9995", "Your card has insufficient funds."),
    ("4000 0000 0000 0341", "Your card was declined."),  # saved, but its charge fails
])
def test_an_invoice_with_a_failing_card_stays_open_and_can_be_paid_after(admin, page, shot, number, reason):
    inv = first_invoice(make_subscription(admin, make_contact(admin, language="en"), collection="manual",
                                          payment_terms="net_30"))
    page.goto(page.base + f"/billing/invoice/{links.invoice_token(inv)}/")
    fill_card(page, number)
    page.get_by_role("button", name="Pay €49.00").click()
    expect(page.get_by_role("alert")).to_contain_text(f"Your payment of €49.00 was declined: {reason}")
    expect(page.locator('[data-status="open"]')).to_have_text("Open")
    shot("declined")
    inv.refresh_from_db()
    assert inv.status == "open" and inv.amount_paid == 0
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay €49.00").click()
    expect(page.locator('[data-status="paid"]')).to_have_text("Paid")
    inv.refresh_from_db()
    assert inv.status == "paid" and Payment.objects.filter(invoice=inv, status="succeeded").count() == 1


@pytest.mark.parametrize("account, settles", [("000123456789", True), ("000111111116", False)])
def test_a_bank_debit_on_an_invoice_settles_or_fails_days_later(admin, page, shot, account, settles):
    """The debit's outcome arrives after 3 business days (the built-in bank, driven by the clock): settled,
    the invoice is paid; failed, it is open again and the buyer's page offers to pay it."""
    import datetime as dt

    from recur.billing import engine

    inv = first_invoice(make_subscription(admin, make_contact(admin, language="en"), collection="manual",
                                          payment_terms="net_30"))
    url = page.base + f"/billing/invoice/{links.invoice_token(inv)}/"
    page.goto(url)
    page.get_by_text("Bank account", exact=True).click()
    page.get_by_label("Account holder").fill("Anna de Vries")
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_label("Account number").fill(account)
    page.get_by_role("button", name="Pay €49.00").click()
    expect(page.get_by_role("heading", name="Payment in progress")).to_be_visible()
    with clock.freeze(clock.today() + dt.timedelta(days=6)):
        engine.run()
    inv.refresh_from_db()
    payment = Payment.objects.get(invoice=inv)
    page.goto(url)
    if settles:
        assert inv.status == "paid" and payment.status == "succeeded"
        expect(page.locator('[data-status="paid"]')).to_have_text("Paid")
    else:
        assert inv.status == "open" and inv.amount_paid == 0 and payment.status == "failed"
        expect(page.locator('[data-status="open"]')).to_have_text("Open")
        expect(page.get_by_role("button", name="Pay €49.00")).to_be_visible()
        expect(page.get_by_test_id("bounced")).to_contain_text("Your bank payment of €49.00 on")
        expect(page.get_by_test_id("bounced")).to_contain_text("could not be collected: The bank account could "
                                                              "not be debited. Please pay again.")
    shot("after")


def test_the_buyer_pays_a_written_off_invoice_after_all(admin, page, shot):
    """The charge failed, the seller wrote the invoice off; the buyer opens the e-mailed link anyway and
    pays: the page shows what is unpaid (not "nothing is due") and takes the card."""
    from recur.billing import services as billing

    sub = make_subscription(admin, make_contact(admin, language="en"), card_number=CARDS["insufficient"])
    inv = billing.mark_uncollectible(admin, first_invoice(sub))
    page.goto(page.base + f"/billing/invoice/{links.invoice_token(inv)}/")
    expect(page.locator('[data-status="uncollectible"]')).to_have_text("Unpaid")
    expect(page.get_by_text("Unpaid since")).to_be_visible()
    shot("written-off-open")
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay €49.00").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you — your payment of €49.00 succeeded.")
    expect(page.locator('[data-status="paid"]')).to_have_text("Paid")
    shot("written-off-paid")
    inv.refresh_from_db()
    sub.refresh_from_db()
    assert inv.status == "paid" and inv.cycle.status == "paid" and sub.payments_made == 1
