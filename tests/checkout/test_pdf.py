"""The invoice PDF (R-KIND-2, R-ALL-3): ReportLab output that a PDF reader opens, in the contact's language."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from recur.billing.pdf import render_invoice_pdf
from recur.checkout import services
from recur.notifications.services import update_account_settings
from tests.checkout.conftest import CARDS, card, first_invoice, make_contact, make_subscription

D = dt.date
pytestmark = pytest.mark.django_db


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def text_of(pdf: bytes, name: str = "") -> str:
    assert pdf.startswith(b"%PDF")
    if name:  # kept for a person to look at (git-ignored)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"{name}.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_english_invoice_pdf(admin, on):
    on(D(2027, 3, 1))
    update_account_settings(sender_name="Acme Hosting B.V.")
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, collection="manual", payment_terms="net_30", price=4900, tax_rate="21")
    inv = first_invoice(sub)
    text = text_of(render_invoice_pdf(inv), "invoice-en")
    for expected in ("Acme Hosting B.V.", "Invoice", inv.number, "Bill to", "Anna de Vries", "Oudegracht 1",
                     "3511 AA Utrecht", "March 1, 2027", "March 31, 2027", "Net 30", "Support plan",
                     "€49.00", "€10.29", "€59.29", "Amount due", "Please pay €59.29 by March 31, 2027"):
        assert expected in text, expected


def test_pdf_lines_show_their_discount_and_add_up(admin, on):
    """2 × €1,234.50 less 10 % is €2,222.10, plus 25 % tax €555.53: the line shows its discount, so a
    reader can see how quantity × price − discount + tax makes the line's amount."""
    on(D(2027, 3, 1))
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, collection="manual", price=123450, quantity=2, discount_percent="10",
                            tax_rate="25")
    inv = first_invoice(sub)
    text = text_of(render_invoice_pdf(inv), "invoice-discount")
    for expected in ("Discount", "−€246.90", "€555.53 (25%)", "€2,777.63", "€2,222.10"):
        assert expected in text, expected


def test_pdf_without_discounts_has_no_discount_column(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin, language="en"), collection="manual")
    assert "Discount" not in text_of(render_invoice_pdf(first_invoice(sub)))


def test_dutch_invoice_pdf_of_a_paid_invoice(admin, on):
    on(D(2027, 3, 1))
    contact = make_contact(admin, language="nl")
    sub = make_subscription(admin, contact, collection="manual", payment_terms="net_30", price=4900)
    inv = first_invoice(sub)
    services.pay_invoice(inv, card(CARDS["ok"]))
    inv.refresh_from_db()
    text = text_of(render_invoice_pdf(inv), "invoice-nl-paid")
    for expected in ("Recur", "Factuur", inv.number, "Factuuradres", "1 maart 2027", "31 maart 2027",
                     "€ 49,00", "Te betalen", "Deze factuur is betaald"):
        assert expected in text, expected
    assert "Amount due" not in text


def test_billing_address_of_the_invoice_comes_first(admin, on):
    on(D(2027, 3, 1))
    contact = make_contact(admin, language="en")
    sub = make_subscription(admin, contact, collection="manual")
    inv = first_invoice(sub)
    inv.billing_address = {"address_line1": "Keizersgracht 100", "postal_code": "1015 AA", "city": "Amsterdam"}
    text = text_of(render_invoice_pdf(inv))
    assert "Keizersgracht 100" in text and "Oudegracht 1" not in text


def test_pdf_of_a_void_and_of_a_written_off_invoice(admin, on):
    """A void invoice asks for nothing; one written off still shows what is unpaid, which the buyer may
    pay after all (its page takes the payment), so the PDF beside it must not say nothing is due."""
    from recur.billing import services as billing

    on(D(2027, 3, 1))
    voided = billing.void_invoice(admin, first_invoice(make_subscription(admin, make_contact(admin, language="en"),
                                                                         collection="manual")))
    text = text_of(render_invoice_pdf(voided))
    assert "This invoice has been voided; nothing is due." in text
    written_off = billing.mark_uncollectible(admin, first_invoice(make_subscription(
        admin, make_contact(admin, name="Bob", email="bob@example.nl", language="en"), collection="manual")))
    text = text_of(render_invoice_pdf(written_off), "invoice-written-off")
    assert "voided" not in text
    assert "€49.00 is unpaid. It can still be paid, quoting invoice number" in text, text
