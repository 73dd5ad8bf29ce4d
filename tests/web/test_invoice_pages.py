"""The seller's invoice page (R-KIND-2): lines, totals, payments and charge attempts; recording a payment
received outside the processor, partly or in full; bad input beside the field and nothing changed; Dutch."""

import datetime as dt

import pytest

from recur.billing import services as billing
from recur.billing.models import Invoice, Payment
from recur.subscriptions.models import Subscription
from tests.billing.conftest import CARDS

pytestmark = pytest.mark.django_db
D = dt.date


def html(r) -> str:
    assert r.status_code == 200, (r.status_code, r.get("Location"))
    return r.content.decode()


@pytest.fixture
def manual_invoice(admin, contact, on):
    on(D(2027, 3, 10))
    return billing.create_invoice(admin, contact=contact, payment_terms="net_30", items=[
        {"name": "Workshop", "unit_price": 50000, "currency": "EUR", "quantity": 2, "tax_rate": 21}])


def test_invoice_page_shows_lines_totals_and_links(seller, manual_invoice):
    inv = manual_invoice
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert inv.number in page and "Workshop" in page
    assert inv.total == 121000
    assert "€1,210.00" in page and "€210.00" in page  # total and tax
    assert "Record a payment" in page and "/billing/invoice/" in page and "Download PDF" in page
    listing = html(seller.get("/invoices/"))
    assert f'href="/invoices/{inv.pk}/"' in listing


def test_record_a_part_payment_then_the_rest(seller, manual_invoice, on):
    inv = manual_invoice
    r = seller.post(f"/invoices/{inv.pk}/", {"amount": "1000.00", "paid_on": "2027-03-10",
                                             "method": "bank_transfer", "reference": "NL91 stmt 42"})
    assert r.status_code == 302
    inv.refresh_from_db()
    assert (inv.status, inv.amount_paid, inv.amount_due) == ("open", 100000, 21000)
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert "NL91 stmt 42" in page and "€210.00" in page
    r = seller.post(f"/invoices/{inv.pk}/", {"amount": "210,00", "paid_on": "2027-03-10", "method": "cash"})
    assert r.status_code == 302
    inv.refresh_from_db()
    assert (inv.status, inv.amount_paid) == ("paid", 121000)
    assert sorted(Payment.objects.filter(invoice=inv).values_list("amount", flat=True)) == [21000, 100000]
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert "Record a payment" not in page
    # a paid invoice takes nothing more, even posted directly
    r = seller.post(f"/invoices/{inv.pk}/", {"amount": "1.00", "paid_on": "2027-03-10", "method": "cash"})
    assert r.status_code == 302 and Payment.objects.filter(invoice=inv).count() == 2


@pytest.mark.parametrize("data, field, message", [
    ({"amount": "", "paid_on": "2027-03-10", "method": "cash"}, "amount", "Enter the amount received."),
    ({"amount": "2000.00", "paid_on": "2027-03-10", "method": "cash"}, "amount", "At most €1,210.00 is still due"),
    ({"amount": "0", "paid_on": "2027-03-10", "method": "cash"}, "amount", "more than zero"),
    ({"amount": "10.001", "paid_on": "2027-03-10", "method": "cash"}, "amount", "at most 2 decimals"),
    ({"amount": "10.00", "paid_on": "2027-03-11", "method": "cash"}, "paid_on", "future"),
    ({"amount": "10.00", "paid_on": "10-03-2027x", "method": "cash"}, "paid_on", "Enter a date"),
    ({"amount": "10.00", "paid_on": "2027-03-10", "method": "card"}, "method", "Select a valid choice"),
])
def test_bad_payment_input_is_shown_beside_the_field_and_changes_nothing(seller, manual_invoice, data, field,
                                                                        message):
    page = html(seller.post(f"/invoices/{manual_invoice.pk}/", data))
    assert message.lower() in page.lower()
    assert f'id="id_{field}"' in page and 'aria-invalid="true"' in page
    manual_invoice.refresh_from_db()
    assert manual_invoice.amount_paid == 0 and not Payment.objects.exists()


def test_paying_the_overdue_manual_invoice_of_a_past_due_subscription_makes_it_active(seller, make_sub, on):
    on(D(2027, 3, 1))
    sub = make_sub(collection="manual", payment_terms="net_15")
    inv = Invoice.objects.get(subscription=sub)
    on(D(2027, 3, 20))
    from recur.billing import engine

    engine.run()
    sub.refresh_from_db()
    assert sub.status == "past_due"
    r = seller.post(f"/invoices/{inv.pk}/", {"amount": "49.00", "paid_on": "2027-03-20", "method": "bank_transfer"})
    assert r.status_code == 302
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payments_made == 1


def test_charge_attempts_show_the_decline_reason(seller, admin, contact, make_sub, on):
    from recur.payments import services as payments

    on(D(2027, 3, 1))
    bad = payments.add_payment_method(admin, contact, {
        "type": "card", "card": {"number": CARDS["declined"], "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
    sub = make_sub(pm=bad)
    inv = Invoice.objects.get(subscription=sub)
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert "Charge attempts" in page and "<td>The card was declined.</td>" in page
    assert Subscription.objects.get(pk=sub.pk).status == "past_due"
    # the subscription's activity gives the same reason, in the seller's language
    assert "The card was declined." in html(seller.get(f"/subscriptions/{sub.pk}/"))
    admin.language = "nl"
    admin.save(update_fields=["language"])
    page = html(seller.get(f"/subscriptions/{sub.pk}/"))
    assert "De kaart is geweigerd." in page and "Your card was declined." not in page


def test_invoice_page_in_dutch_and_unknown_invoice(seller, admin, manual_invoice):
    admin.language = "nl"
    admin.save()
    page = html(seller.get(f"/invoices/{manual_invoice.pk}/"))
    assert "Betaling registreren" in page and "Regels" in page
    assert seller.get("/invoices/999999/").status_code == 404


def test_invoice_page_needs_a_login(client, manual_invoice):
    r = client.get(f"/invoices/{manual_invoice.pk}/")
    assert r.status_code == 302 and "/login/" in r["Location"]


def test_void_after_a_confirmation_then_no_more_payments(seller, manual_invoice):
    inv = manual_invoice
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert f'href="/invoices/{inv.pk}/void/"' in page and f'href="/invoices/{inv.pk}/uncollectible/"' in page
    page = html(seller.get(f"/invoices/{inv.pk}/void/"))
    assert f"Void invoice {inv.number}?" in page and "nothing is due on it" in page
    assert Invoice.objects.get(pk=inv.pk).status == "open"  # the page alone changes nothing
    r = seller.post(f"/invoices/{inv.pk}/void/", follow=True)
    page = html(r)
    assert f"Invoice {inv.number} is void" in page and 'data-testid="status">Void<' in page
    assert "Record a payment" not in page and f'/invoices/{inv.pk}/void/"' not in page
    assert Invoice.objects.get(pk=inv.pk).amount_due == 0
    # twice: refused with the reason, nothing changed
    page = html(seller.post(f"/invoices/{inv.pk}/void/"))
    assert "only an open or uncollectible invoice can be voided" in page
    assert seller.get(f"/invoices/{inv.pk}/refund/").status_code == 404


def test_write_off_keeps_what_was_paid(seller, manual_invoice, admin):
    inv = manual_invoice
    billing.record_manual_payment(admin, inv, 10000)
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert f'/invoices/{inv.pk}/void/"' not in page  # partly paid: refund, or write the rest off
    page = html(seller.post(f"/invoices/{inv.pk}/void/"))
    assert "has been paid on invoice" in page and Invoice.objects.get(pk=inv.pk).status == "open"
    page = html(seller.get(f"/invoices/{inv.pk}/uncollectible/"))
    assert "€1,110.00 still due is no longer asked for" in page
    page = html(seller.post(f"/invoices/{inv.pk}/uncollectible/", follow=True))
    assert "written off as uncollectible" in page and 'data-testid="status">Uncollectible<' in page
    inv.refresh_from_db()
    assert (inv.status, inv.amount_paid, inv.amount_due) == ("uncollectible", 10000, 0)
    # the buyer pays after all: the form offers what was written off, a part keeps the rest written off
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert "Record a payment" in page and "after the invoice was written off" in page and 'value="1110.00"' in page
    r = seller.post(f"/invoices/{inv.pk}/", {"amount": "1110.01", "paid_on": "2027-03-10", "method": "bank_transfer"})
    assert "At most €1,110.00 of this invoice is unpaid." in html(r)
    seller.post(f"/invoices/{inv.pk}/", {"amount": "110.00", "paid_on": "2027-03-10", "method": "bank_transfer"})
    inv.refresh_from_db()
    assert (inv.status, inv.amount_paid) == ("uncollectible", 21000)
    seller.post(f"/invoices/{inv.pk}/", {"amount": "1000.00", "paid_on": "2027-03-10", "method": "bank_transfer"})
    inv.refresh_from_db()
    assert (inv.status, inv.amount_paid) == ("paid", 121000)


def test_the_list_marks_overdue_invoices_and_filters_them(seller, manual_invoice, on):
    inv = manual_invoice  # issued 10 March 2027, net 30: due 9 April
    page = html(seller.get("/invoices/"))
    assert '<span class="badge blue">Open</span>' in page and ">Overdue</span>" not in page
    assert f'href="/invoices/{inv.pk}/"' not in html(seller.get("/invoices/?status=overdue"))
    on(D(2027, 4, 20))
    page = html(seller.get("/invoices/"))
    assert '<span class="badge red">Overdue</span>' in page
    assert f'href="/invoices/{inv.pk}/"' in html(seller.get("/invoices/?status=overdue"))
    assert f'href="/invoices/{inv.pk}/"' in html(seller.get("/invoices/?status=open"))


def test_an_invoice_whose_bank_debit_is_under_way_is_not_overdue(seller, admin, contact, make_sub, on):
    """A bank debit takes days to settle; meanwhile its invoice is open past its due date but nobody
    needs to chase it (the billing run does not count it either)."""
    from recur.billing.models import PaymentAttempt
    from recur.payments import services as payments
    from tests.payments.conftest import bank

    on(D(2027, 3, 1))
    pm = payments.add_payment_method(admin, contact, bank())
    sub = make_sub(pm=pm)
    inv = Invoice.objects.get(subscription=sub)
    assert PaymentAttempt.objects.get(invoice=inv).status == "pending"
    on(D(2027, 3, 2))
    assert inv.due_date < D(2027, 3, 2) and Invoice.objects.get(pk=inv.pk).status == "open"
    page = html(seller.get("/invoices/"))
    assert f'href="/invoices/{inv.pk}/"' in page and ">Overdue</span>" not in page
    assert f'href="/invoices/{inv.pk}/"' not in html(seller.get("/invoices/?status=overdue"))
    # its page books nothing meanwhile (the debit could pay it twice), and says why
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert 'data-testid="in-flight"' in page and "Record a payment" not in page
    assert f'/invoices/{inv.pk}/void/"' not in page and f'/invoices/{inv.pk}/uncollectible/"' not in page
    page = html(seller.post(f"/invoices/{inv.pk}/", {"amount": "49.00", "paid_on": "2027-03-02",
                                                    "method": "bank_transfer"}, follow=True))
    assert f"A payment of invoice {inv.number} is under way" in page
    assert Invoice.objects.get(pk=inv.pk).amount_paid == 0
    # the debit fails: now it is overdue
    PaymentAttempt.objects.filter(invoice=inv).update(status="failed")
    assert '<span class="badge red">Overdue</span>' in html(seller.get("/invoices/"))
    assert f'href="/invoices/{inv.pk}/"' in html(seller.get("/invoices/?status=overdue"))


def test_a_payment_of_a_one_off_invoice_is_refunded_from_the_invoice_page(seller, manual_invoice, admin):
    """An invoice without a subscription (a deal's one-off items): its payments are refunded from its
    own page, as a subscription's are from the subscription's."""
    inv = manual_invoice
    billing.record_manual_payment(admin, inv, 121000)
    pay = Payment.objects.get(invoice=inv)
    page = html(seller.get(f"/invoices/{inv.pk}/"))
    assert f'href="/invoices/{inv.pk}/payments/{pay.pk}/refund/"' in page
    page = html(seller.get(f"/invoices/{inv.pk}/payments/{pay.pk}/refund/"))
    assert f"for invoice {inv.number}" in page and "At most €1,210.00 can still be refunded." in page
    assert f'href="/invoices/{inv.pk}/"' in page  # back to the invoice
    page = html(seller.post(f"/invoices/{inv.pk}/payments/{pay.pk}/refund/", {"amount": "1210.01"}))
    assert "At most €1,210.00 of this payment can still be refunded." in page
    assert Payment.objects.get(pk=pay.pk).refunded_amount == 0
    r = seller.post(f"/invoices/{inv.pk}/payments/{pay.pk}/refund/", {"amount": "210.00", "reason": "Goodwill"})
    assert r.status_code == 302 and r["Location"] == f"/invoices/{inv.pk}/"
    pay.refresh_from_db()
    assert (pay.refunded_amount, pay.status) == (21000, "partially_refunded")
    # another invoice's payment is not found under this one
    other = billing.create_invoice(admin, contact=inv.contact, items=[
        {"name": "Extra", "unit_price": 1000, "currency": "EUR", "quantity": 1}])
    assert seller.get(f"/invoices/{other.pk}/payments/{pay.pk}/refund/").status_code == 404
