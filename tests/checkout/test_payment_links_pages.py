"""The hosted checkout page and the public quote page (R-NEW-1, R-SIGN-*, R-ALL-1..4)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from recur.billing.models import Payment
from recur.checkout import payment_links as pl
from recur.checkout.models import CheckoutSession
from recur.crm import quotes
from recur.crm import services as crm
from recur.crm.models import Contact
from recur.subscriptions.models import Subscription
from tests.checkout.conftest import bank_form, card_form

pytestmark = pytest.mark.django_db
DAY = dt.date(2027, 3, 1)


@pytest.fixture(autouse=True)
def _day(on):
    on(DAY)


def make_link(admin, **kw):
    return pl.create_payment_link(admin, {"name": "Support plan", "line_items": [
        {"name": "Support plan", "unit_price": 4900, "currency": "EUR", "billing_frequency": "monthly"},
        {"name": "Onboarding", "unit_price": 15000, "currency": "EUR"}], **kw})


def nonce_of(html: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', html).group(1)


def buyer(**kw):
    return {"buyer_name": "Anna de Vries", "buyer_email": "anna@example.nl", **kw}


def test_page_shows_items_due_today_and_what_recurs(admin):
    link = make_link(admin)
    r = Client().get(f"/billing/pay/{link.token}/?lang=en")
    html = r.content.decode()
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    assert "Support plan" in html and "Onboarding" in html and "One-time" in html
    assert "€199.00" in html and "Then €49.00 monthly" in html and "Pay €199.00" in html
    assert 'for="id_buyer_email"' in html and 'for="id_card_number"' in html
    nl = Client().get(f"/billing/pay/{link.token}/?lang=nl").content.decode()
    assert "Vandaag te betalen" in nl


def test_pay_with_card_redirects_to_confirmation(admin):
    link = make_link(admin)
    c = Client()
    page = c.get(f"/billing/pay/{link.token}/").content.decode()
    r = c.post(f"/billing/pay/{link.token}/?lang=en", {**buyer(), **card_form(), "nonce": nonce_of(page)})
    assert r.status_code == 302, r.content.decode()[:3000]
    done = c.get(r["Location"]).content.decode()
    assert "your purchase is complete" in done and "anna@example.nl" in done
    assert Subscription.objects.count() == 1
    assert list(Payment.objects.values_list("amount", flat=True)) == [4900 + 15000]  # the plan and the fee
    # The same form again (a double submit) is the same purchase.
    again = c.post(f"/billing/pay/{link.token}/?lang=en", {**buyer(), **card_form(), "nonce": nonce_of(page)})
    assert again.status_code == 302 and again["Location"] == r["Location"]
    assert Subscription.objects.count() == 1 and Payment.objects.count() == 1


def test_declined_card_shows_reason_and_form_again(admin):
    link = make_link(admin)
    c = Client()
    page = c.get(f"/billing/pay/{link.token}/").content.decode()
    r = c.post(f"/billing/pay/{link.token}/?lang=en",
               {**buyer(), **card_form(number="4000 0000 0000 0002"), "nonce": nonce_of(page)})
    html = r.content.decode()
    assert r.status_code == 200 and "Your card was declined." in html and "You have not been charged" in html
    assert nonce_of(html) == nonce_of(page)  # the retry belongs to the same checkout session
    assert 'value="anna@example.nl"' in html and "4000" not in re.sub(r"<[^>]+>", "", html.split("declined")[0])
    assert Subscription.objects.count() == 0 and Contact.objects.count() == 0 and Payment.objects.count() == 0
    r = c.post(f"/billing/pay/{link.token}/?lang=en", {**buyer(), **card_form(), "nonce": nonce_of(html)})
    assert r.status_code == 302 and Subscription.objects.count() == 1
    session = CheckoutSession.objects.get()
    assert list(session.attempts.order_by("attempt_no").values_list("status", flat=True)) == ["failed", "succeeded"]


def test_bank_account_is_pending(admin):
    link = make_link(admin)
    c = Client()
    page = c.get(f"/billing/pay/{link.token}/").content.decode()
    r = c.post(f"/billing/pay/{link.token}/?lang=en", {**buyer(), **bank_form(), "nonce": nonce_of(page)})
    assert r.status_code == 302
    assert "bank payment is being processed" in c.get(r["Location"]).content.decode()
    assert Subscription.objects.get().status == "active"


def test_field_errors_name_the_field_and_save_nothing(admin):
    link = make_link(admin, collect_billing_address=True)
    c = Client()
    r = c.post(f"/billing/pay/{link.token}/?lang=en",
               {"buyer_name": "", "buyer_email": "nope", **card_form(number="1234"), "nonce": "x"})
    html = r.content.decode()
    assert r.status_code == 200 and html.count('aria-invalid="true"') >= 4
    assert "Enter a valid e-mail address." in html and "This card number is not valid." in html
    assert not CheckoutSession.objects.exists()


def test_unknown_and_archived_links(admin):
    assert Client().get("/billing/pay/nope/").status_code == 404
    link = make_link(admin)
    pl.archive_payment_link(admin, link)
    r = Client().get(f"/billing/pay/{link.token}/?lang=en")
    assert r.status_code == 410 and "no longer active" in r.content.decode()
    r = Client().post(f"/billing/pay/{link.token}/", {**buyer(), **card_form(), "nonce": "n1"})
    assert r.status_code == 410 and not CheckoutSession.objects.exists()


def _quote(admin, **kw):
    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl", "language": "en"})
    return quotes.create_quote(admin, {"contact_id": contact.pk, "title": "Seats for Acme", "line_items": [
        {"name": "Seat", "unit_price": 2500, "currency": "EUR", "quantity": 3, "billing_frequency": "monthly"}],
        **kw})


def test_quote_page_accept_and_pay(admin):
    q = quotes.publish_quote(admin, _quote(admin, expires_on=dt.date(2027, 12, 31)))
    c = Client()
    page = c.get(f"/billing/quote/{q.public_token}/").content.decode()
    assert "Seats for Acme" in page and "Accept and pay" in page and 'value="anna@example.nl"' in page
    r = c.post(f"/billing/quote/{q.public_token}/", {**buyer(), **card_form(), "nonce": nonce_of(page)})
    assert r.status_code == 302 and "/done/" in r["Location"]
    q.refresh_from_db()
    assert q.status == "paid" and Subscription.objects.get().quote_id == q.pk
    closed = c.get(f"/billing/quote/{q.public_token}/")
    assert closed.status_code == 410 and "has been accepted" in closed.content.decode()


def test_expired_and_unpublished_quotes_offer_nothing(admin, on):
    q = quotes.publish_quote(admin, _quote(admin, expires_on=dt.date(2027, 3, 10)))
    on(dt.date(2027, 3, 11))
    r = Client().get(f"/billing/quote/{q.public_token}/")
    assert r.status_code == 410 and "has expired" in r.content.decode() and 'name="card_number"' not in r.content.decode()
    assert Client().get("/billing/quote/unknown/").status_code == 404


def test_processor_unreachable_then_abandoned_page_lets_the_buyer_retry(admin, monkeypatch, on):
    from recur.core import clock
    from recur.payments.builtin import BuiltinProcessor

    def unreachable(self, requests):
        raise ConnectionError("the processor was not reached")

    link = make_link(admin)
    c = Client()
    page = c.get(f"/billing/pay/{link.token}/").content.decode()
    monkeypatch.setattr(BuiltinProcessor, "charge_many", unreachable)
    r = c.post(f"/billing/pay/{link.token}/?lang=en", {**buyer(), **card_form(), "nonce": nonce_of(page)})
    assert r.status_code == 302
    assert "Your payment is being processed" in c.get(r["Location"]).content.decode()
    monkeypatch.undo()
    on(clock.start_of_day(DAY) + dt.timedelta(hours=9) + pl.ABANDON_AFTER + dt.timedelta(minutes=1))
    pl.settle_sessions()
    done = c.get(r["Location"]).content.decode()
    assert "Your payment did not go through" in done and f'href="/billing/pay/{link.token}/"' in done
    assert Subscription.objects.count() == 0 and Payment.objects.count() == 0 and Contact.objects.count() == 0
    r = c.post(f"/billing/pay/{link.token}/?lang=en", {**buyer(), **card_form(), "nonce": nonce_of(page)})
    assert r.status_code == 302 and "your purchase is complete" in c.get(r["Location"]).content.decode()
    assert Subscription.objects.count() == 1
