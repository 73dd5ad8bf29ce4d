"""The hosted invoice and update-payment-method pages through Django's test client
(R-ALL-1, R-ALL-2, R-ALL-3, R-ALL-4, R-BILL-5, R-KIND-2)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.test import Client

from recur.billing import services as billing
from recur.billing.models import Invoice, Payment
from recur.checkout import links
from recur.payments.models import PaymentMethod
from tests.checkout.conftest import CARDS, bank_form, card_form, first_invoice, make_contact, make_subscription

D = dt.date
pytestmark = pytest.mark.django_db


def path(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def invoice_path(inv) -> str:
    return f"/billing/invoice/{links.invoice_token(inv)}/"


def update_path(sub) -> str:
    return f"/billing/update/{links.update_payment_method_token(sub)}/"


@pytest.fixture
def manual_invoice(admin, on):
    on(D(2027, 3, 1))
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, collection="manual", payment_terms="net_30")
    return first_invoice(sub)


def test_links_point_at_these_pages(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["insufficient"])
    assert links.update_payment_method_url(sub).endswith(update_path(sub))
    assert Client().get(path(links.update_payment_method_url(sub))).status_code == 200
    assert Client().get(path(links.invoice_url(first_invoice(sub)))).status_code == 200


def test_invoice_page_shows_the_invoice_and_a_payment_form(manual_invoice):
    r = Client().get(invoice_path(manual_invoice))
    page = r.content.decode()
    assert r.status_code == 200 and r["Content-Language"] == "en" and "no-store" in r["Cache-Control"]
    for expected in (manual_invoice.number, "Support plan", "€49.00", "Open", "Due March 31, 2027",
                     "Download PDF", "Pay €49.00", 'autocomplete="cc-number"', 'autocomplete="cc-csc"',
                     'autocomplete="cc-exp-month"', 'autocomplete="cc-name"', "Routing number"):
        assert expected in page, expected
    pdf = Client().get(invoice_path(manual_invoice) + "pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_invoice_page_lines_show_discount_and_tax(admin, on):
    """The buyer sees how a line's amount comes about: 2 × €1,234.50 − €246.90 + €555.53 = €2,777.63
    (under the line's name, so the table keeps four columns on a phone)."""
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin, language="en"), collection="manual", price=123450,
                            quantity=2, discount_percent="10", tax_rate="25")
    page = Client().get(invoice_path(first_invoice(sub))).content.decode()
    for expected in ("Discount −€246.90", "Tax 25% €555.53", "€2,777.63", "€2,222.10"):
        assert expected in page, expected


def test_invoice_page_without_discount_or_tax_shows_neither(manual_invoice):
    page = Client().get(invoice_path(manual_invoice)).content.decode()
    assert 'data-testid="line-discount"' not in page and 'data-testid="line-tax"' not in page


def test_pay_on_the_page_then_it_shows_paid(manual_invoice, caplog):
    c = Client()
    with caplog.at_level(logging.DEBUG):
        r = c.post(invoice_path(manual_invoice), card_form(), follow=True)
    page = r.content.decode()
    assert "Thank you — your payment of €49.00 succeeded." in page
    assert 'data-status="paid"' in page and "Pay €49.00" not in page
    manual_invoice.refresh_from_db()
    assert manual_invoice.status == "paid"
    assert "4242424242424242" not in caplog.text and "4242 4242 4242 4242" not in caplog.text
    # the same form posted again (a double click, the back button) pays nothing more
    r = c.post(invoice_path(manual_invoice), card_form())
    assert "This invoice has already been paid." in r.content.decode()
    assert Payment.objects.filter(invoice=manual_invoice).count() == 1


def test_declined_card_shows_the_reason_and_keeps_the_invoice_open(manual_invoice):
    r = Client().post(invoice_path(manual_invoice), card_form("4000 0000 0000 0002"))
    page = r.content.decode()
    assert r.status_code == 200
    assert "Your payment of €49.00 was declined: Your card was declined." in page
    assert "4000 0000 0000 0002" not in page and "4000000000000002" not in page  # never echoed
    manual_invoice.refresh_from_db()
    assert manual_invoice.status == "open" and "Pay €49.00" in page


def test_bank_debit_shows_pending(manual_invoice):
    r = Client().post(invoice_path(manual_invoice), bank_form(), follow=True)
    page = r.content.decode()
    assert "your bank payment of €49.00 is being processed" in page
    assert "Payment in progress" in page and "Pay €49.00" not in page
    assert Payment.objects.get(invoice=manual_invoice).status == "pending"


@pytest.mark.parametrize("form, field, message", [
    (card_form("4242 4242 4242 4241"), "card_number", "This card number is not valid."),
    (card_form(""), "card_number", "This field is required."),
    (card_form(month="01", year="2027"), "card_exp_month", "This card has expired."),
    (card_form(cvc="12"), "card_cvc", "Enter the 3 or 4 digit security code."),
    (card_form(month=""), "card_exp_month", "Enter the expiry date."),
    (card_form(name=""), "card_name", "This field is required."),
    (bank_form(routing="12345"), "bank_routing", "This routing number is not accepted."),
    (bank_form(routing="123456789"), "bank_routing", "This routing number is not accepted."),  # the processor's
    (bank_form(account="12"), "bank_account", "Enter an account number of 4 to 17 digits."),
])
def test_bad_input_shows_the_error_beside_the_field_and_saves_nothing(manual_invoice, form, field, message):
    r = Client().post(invoice_path(manual_invoice), form)
    page = r.content.decode()
    assert r.status_code == 200
    assert f'<p class="error" id="id_{field}-error">{message}</p>' in page or (
        field.startswith("card_exp") and f'id="id_card_exp-error">{message}' in page), page
    assert not PaymentMethod.objects.exists() and not Payment.objects.exists()


def test_pages_speak_the_contacts_language(admin, on):
    on(D(2027, 3, 1))
    contact = make_contact(admin, language="nl")
    sub = make_subscription(admin, contact, collection="manual", payment_terms="net_30")
    inv = first_invoice(sub)
    r = Client().get(invoice_path(inv))
    page = r.content.decode()
    assert r["Content-Language"] == "nl"
    for expected in ("Factuur", "Te betalen uiterlijk 31 maart 2027", "€\xa049,00 betalen", "Kaartnummer",
                     "PDF downloaden", "Vervaldatum", "Open"):
        assert expected in page, expected
    r = Client().post(invoice_path(inv), card_form("4242 4242 4242 4241"))
    assert "Dit kaartnummer is niet geldig." in r.content.decode()
    r = Client().get(invoice_path(inv) + "?lang=en")
    assert "Pay €49.00" in r.content.decode()


def test_update_page_for_a_past_due_subscription(admin, on):
    on(D(2027, 3, 1))
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, card_number=CARDS["insufficient"])
    r = Client().get(update_path(sub))
    page = r.content.decode()
    for expected in ("Support plan", "€49.00", "Unpaid", "Visa ····9995", "A payment of €49.00 could not be collected",
                     "Save and pay €49.00"):
        assert expected in page, expected
    r = Client().post(update_path(sub), card_form(), follow=True)
    page = r.content.decode()
    assert "Thank you — your payment of €49.00 succeeded." in page
    assert "Active" in page and "Visa ····4242" in page
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payment_method.last4 == "4242"


def test_update_page_declined_shows_the_reason(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin, language="en"), card_number=CARDS["insufficient"])
    r = Client().post(update_path(sub), card_form("4000 0000 0000 0002"), follow=True)
    page = r.content.decode()
    assert "the payment of €49.00 was declined: Your card was declined." in page
    sub.refresh_from_db()
    assert sub.status == "past_due"


def test_expired_and_altered_links_get_a_clear_page(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin, language="en"), card_number=CARDS["ok"])
    url = update_path(sub)
    on(D(2027, 3, 9))
    r = Client().get(url)
    assert r.status_code == 410 and "This link has expired" in r.content.decode()
    r = Client().post(url, card_form())
    assert r.status_code == 410 and not PaymentMethod.objects.filter(last4="4242").exclude(
        pk=sub.payment_method_id).exists()
    on(D(2027, 3, 1))
    r = Client().get(url[:-6] + "xyz/")
    assert r.status_code == 400 and "This link is not valid" in r.content.decode()
    r = Client().get("/billing/invoice/not-a-token/")
    assert r.status_code == 400
    r = Client().get("/billing/invoice/not-a-token/pdf/")
    assert r.status_code == 400


def test_only_accepted_methods_are_offered(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin, language="en"), collection="manual", accepted=["card"])
    page = Client().get(invoice_path(first_invoice(sub))).content.decode()
    assert "Card number" in page and "Routing number" not in page
    r = Client().post(invoice_path(first_invoice(sub)), {**card_form(), "method": "bank_account"})
    assert "Choose a payment method." in r.content.decode() and not Payment.objects.exists()


def test_no_online_payment_when_switched_off(manual_invoice):
    Invoice.objects.filter(pk=manual_invoice.pk).update(accept_online_payments=False)
    page = Client().get(invoice_path(manual_invoice)).content.decode()
    assert "This invoice cannot be paid online" in page and "Card number" not in page


def test_a_written_off_invoice_shows_what_is_unpaid_and_takes_a_payment(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin, language="en"), card_number=CARDS["insufficient"])
    inv = billing.mark_uncollectible(admin, first_invoice(sub))
    c = Client()
    page = c.get(invoice_path(inv)).content.decode()
    assert 'data-status="uncollectible"' in page and "Pay €49.00" in page
    assert "Nothing is due on this invoice." not in page
    r = c.post(invoice_path(inv), card_form(), follow=True)
    page = r.content.decode()
    assert "Thank you — your payment of €49.00 succeeded." in page and 'data-status="paid"' in page
    assert Invoice.objects.get(pk=inv.pk).status == "paid"
