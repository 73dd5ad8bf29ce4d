"""Payment links (R-NEW-2), quotes and their conversion (R-NEW-6) and a contact's saved payment methods
(R-PAY-1) in the seller's pages: bad input gets an error beside the field and saves nothing (R-ALL-4);
English and Dutch (R-ALL-3)."""

import datetime as dt
import re

import pytest

from recur.billing.models import Invoice
from recur.checkout.models import PaymentLink
from recur.crm import quotes as quote_services
from recur.crm import services as crm
from recur.crm.models import Quote
from recur.payments.models import PaymentMethod
from recur.subscriptions.models import Subscription
from tests.billing.conftest import CARDS

pytestmark = pytest.mark.django_db
D = dt.date


def html(r) -> str:
    assert r.status_code == 200, (r.status_code, r.get("Location"))
    return r.content.decode()


def link_post(**kw):
    data = {"items": "1", "name": "Gold", "currency": "EUR", "accepted_payment_methods": ["card", "bank_account"],
            "item-0-name": "Gold plan", "item-0-unit_price": "49.00", "item-0-quantity": "1",
            "item-0-billing_frequency": "monthly", "item-0-billing_terms": "auto_renew", "create": "1"}
    data.update(kw)
    return data


# --- payment links ---------------------------------------------------------------------------------------


def test_nav_and_wizard_lead_to_the_payment_link_form(seller):
    page = html(seller.get("/subscriptions/new/"))
    assert 'href="/payment-links/new/"' in page and "When a customer pays" in page
    page = html(seller.get("/payment-links/"))
    assert ">Payment links<" in page and ">Quotes<" in page and "No payment links yet." in page
    assert "Create payment link" in html(seller.get("/payment-links/new/"))


def test_create_payment_link_with_recurring_and_one_time_items(seller, on, admin):
    on(D(2027, 3, 10))
    product = crm.create_product(admin, {"name": "Team plan", "unit_price": 4900, "currency": "EUR",
                                         "billing_frequency": "monthly"})
    r = seller.post("/payment-links/new/", link_post(**{
        "items": "3", "item-0-product": str(product.pk), "item-0-name": "", "item-0-unit_price": "",
        "item-0-billing_frequency": "", "item-0-quantity": "2",
        "item-1-name": "Setup", "item-1-unit_price": "100", "item-1-quantity": "1", "item-1-billing_frequency": "one_time",
        "item-2-name": "Coaching", "item-2-unit_price": "10,50", "item-2-quantity": "1",
        "item-2-billing_frequency": "annually", "item-2-billing_terms": "fixed", "item-2-number_of_payments": "3",
        "item-2-delay_days": "30", "collect_billing_address": "on", "accepted_payment_methods": ["card"]}))
    link = PaymentLink.objects.get()
    assert r["Location"] == f"/payment-links/{link.pk}/"
    items = list(link.items.order_by("position"))
    assert [(i.name, i.quantity, i.unit_price, i.billing_frequency or None) for i in items] == [
        ("Team plan", 2, 4900, "monthly"), ("Setup", 1, 10000, None), ("Coaching", 1, 1050, "annually")]
    assert items[2].billing_terms == "fixed" and items[2].number_of_payments == 3
    assert items[2].billing_start_delay_days == 30
    assert link.accepted_payment_methods == ["card"] and link.collect_billing_address
    page = html(seller.get(r["Location"]))
    assert f"/billing/pay/{link.token}/" in page and "Archive" in page
    assert "€198.00" in page  # due today: 2 × 49 + 100; the coaching starts in 30 days
    assert "3 payment(s)" in page and "after 30 day(s)" in page
    page = html(seller.get("/payment-links/"))
    assert "2 × Team plan, Setup, Coaching" in page and f"/billing/pay/{link.token}/" in page
    assert "Copy" in page and '<span class="badge green">Active</span>' in page
    # archive
    r = seller.post(f"/payment-links/{link.pk}/archive/")
    link.refresh_from_db()
    assert not link.active
    assert '<span class="badge grey">Archived</span>' in html(seller.get("/payment-links/"))


def test_bad_payment_link_input_shows_errors_and_saves_nothing(seller):
    page = html(seller.post("/payment-links/new/", link_post(**{"item-0-unit_price": "abc"})))
    assert "Enter an amount such as 49.00." in page
    page = html(seller.post("/payment-links/new/", link_post(**{"item-0-billing_terms": "fixed"})))
    assert "Enter how many payments a fixed term has." in page
    page = html(seller.post("/payment-links/new/", link_post(accepted_payment_methods=[])))
    assert 'id="id_accepted_payment_methods_error"' in page
    page = html(seller.post("/payment-links/new/", link_post(**{"item-0-name": "", "item-0-unit_price": ""})))
    assert "Add at least one line item." in page
    # a service error beside its field: an archived product
    page = html(seller.post("/payment-links/new/", link_post(**{"item-0-product": "999"})))
    assert "Select a valid choice" in page
    page = html(seller.post("/payment-links/new/", link_post(**{"item-0-unit_price": "1.234"})))
    assert "Use at most 2 decimals for EUR." in page
    assert PaymentLink.objects.count() == 0
    # "Add line item" re-shows the form with one more row, without errors
    page = html(seller.post("/payment-links/new/", {**link_post(), "add_item": "1"}))
    assert 'name="item-1-name"' in page and 'class="error"' not in page and PaymentLink.objects.count() == 0


def test_payment_link_service_error_goes_beside_the_item(seller, admin):
    usd = crm.create_product(admin, {"name": "US plan", "unit_price": 900, "currency": "USD",
                                     "billing_frequency": "monthly"})
    page = html(seller.post("/payment-links/new/", link_post(**{
        "items": "2", "item-0-product": str(usd.pk), "item-0-name": "", "item-0-unit_price": "",
        "item-0-billing_frequency": "", "item-1-name": "Extra", "item-1-unit_price": "5", "item-1-quantity": "1",
        "item-1-billing_frequency": "monthly", "item-1-billing_terms": "auto_renew"})))
    assert re.search(r'id="id_item-1-unit_price_error">All line items must be in USD', page)
    assert PaymentLink.objects.count() == 0


# --- quotes ----------------------------------------------------------------------------------------------


def quote_post(who, **kw):
    data = {"items": "1", "contact": str(who.pk), "title": "Offer", "currency": "EUR",
            "item-0-name": "Support", "item-0-unit_price": "30", "item-0-quantity": "1",
            "item-0-billing_frequency": "monthly", "item-0-billing_terms": "auto_renew", "create": "1"}
    data.update(kw)
    return data


def test_create_publish_and_convert_a_quote_to_a_subscription(seller, contact, card, on):
    on(D(2027, 3, 10))
    r = seller.post("/quotes/new/", quote_post(contact, expires_on="2027-04-01", items="2", **{
        "item-1-name": "Onboarding", "item-1-unit_price": "200", "item-1-quantity": "1",
        "item-1-billing_frequency": "one_time"}))
    quote = Quote.objects.get()
    assert r["Location"] == f"/quotes/{quote.pk}/" and quote.status == "draft"
    page = html(seller.get(r["Location"]))
    assert "Publish" in page and "Convert to subscription" not in page
    page = html(seller.get("/quotes/"))
    assert "Offer" in page and '<span class="badge grey">Draft</span>' in page and "€230.00" in page
    seller.post(f"/quotes/{quote.pk}/publish/")
    quote.refresh_from_db()
    page = html(seller.get(f"/quotes/{quote.pk}/"))
    assert quote.status == "published" and f"/billing/quote/{quote.public_token}/" in page
    assert "Convert to subscription" in page and "Convert to invoice" not in page
    # automatic collection without choosing a method: error beside the field, nothing made
    page = html(seller.post(f"/quotes/{quote.pk}/convert/", {"collection": "auto_charge", "to": "subscription",
                                                              "payment_terms": "due_on_receipt"}))
    assert "Choose one of the contact&#x27;s saved payment methods." in page and Subscription.objects.count() == 0
    r = seller.post(f"/quotes/{quote.pk}/convert/", {"collection": "auto_charge", "payment_method": str(card.pk),
                                                      "to": "subscription", "payment_terms": "due_on_receipt"})
    assert r.status_code == 302
    sub = Subscription.objects.get()
    assert sub.quote_id == quote.pk and sub.payments_made == 1  # due today: billed at once
    page = html(seller.get(f"/quotes/{quote.pk}/"))
    assert f'href="/subscriptions/{sub.pk}/"' in page and "Created from this quote" in page
    assert "Convert to subscription" not in page
    assert Invoice.objects.filter(subscription__isnull=True).count() == 1  # the one-time onboarding


def test_quote_without_recurring_items_converts_to_an_invoice_manual(seller, contact, on, admin):
    on(D(2027, 3, 10))
    quote = quote_services.create_quote(admin, {"contact_id": contact.pk, "line_items": [
        {"name": "Workshop", "unit_price": 50000, "currency": "EUR"}]})
    quote_services.publish_quote(admin, quote)
    page = html(seller.get(f"/quotes/{quote.pk}/"))
    assert "Convert to invoice" in page and "Convert to subscription" not in page
    r = seller.post(f"/quotes/{quote.pk}/convert/", {"to": "invoice", "collection": "manual",
                                                      "payment_terms": "net_30"})
    assert r.status_code == 302
    inv = Invoice.objects.get()
    assert inv.total == 50000
    assert inv.number in html(seller.get(f"/quotes/{quote.pk}/"))


def test_quote_manual_collection_and_expired_badge(seller, contact, on, admin):
    on(D(2027, 3, 10))
    quote = quote_services.create_quote(admin, {"contact_id": contact.pk, "expires_on": D(2027, 3, 20),
                                                "line_items": [{"name": "Plan", "unit_price": 1000, "currency": "EUR",
                                                                "billing_frequency": "monthly"}]})
    quote_services.publish_quote(admin, quote)
    r = seller.post(f"/quotes/{quote.pk}/convert/", {"collection": "manual", "payment_terms": "net_15",
                                                      "to": "subscription"})
    assert r.status_code == 302
    sub = Subscription.objects.get()
    assert sub.collection == "manual" and sub.payment_terms == "net_15"
    other = quote_services.create_quote(admin, {"contact_id": contact.pk, "title": "Old", "expires_on": D(2027, 3, 20),
                                                "line_items": [{"name": "Plan", "unit_price": 1000, "currency": "EUR"}]})
    quote_services.publish_quote(admin, other)
    on(D(2027, 3, 25))
    page = html(seller.get("/quotes/"))
    assert '<span class="badge grey">Expired</span>' in page
    page = html(seller.get(f"/quotes/{other.pk}/"))
    assert "Convert to invoice" not in page and "has expired" in page


def test_bad_quote_input_shows_errors_and_saves_nothing(seller, contact, on):
    on(D(2027, 3, 10))
    page = html(seller.post("/quotes/new/", quote_post(contact, contact="")))
    assert "Choose the contact the quote is for." in page
    page = html(seller.post("/quotes/new/", quote_post(contact, expires_on="2027-03-01")))
    assert re.search(r'id="id_expires_on_error">Must not be in the past', page)
    page = html(seller.post("/quotes/new/", quote_post(contact, **{"item-0-name": "", "item-0-unit_price": "5"})))
    assert "Enter a name or choose a product." in page
    assert Quote.objects.count() == 0


# --- payment methods -------------------------------------------------------------------------------------


def card_post(**kw):
    data = {"method": "card", "card_number": CARDS["ok"], "card_exp_month": "12", "card_exp_year": "2035",
            "card_cvc": "123", "card_name": "Anna de Vries"}
    data.update(kw)
    return data


def test_add_and_remove_a_card_and_a_bank_account(seller, contact, on):
    on(D(2027, 3, 10))
    page = html(seller.get(f"/contacts/{contact.pk}/"))
    assert "Payment methods (0)" in page and "Add card / bank account" in page
    r = seller.post(f"/contacts/{contact.pk}/payment-methods/add/", card_post())
    assert r["Location"] == f"/contacts/{contact.pk}/"
    pm = PaymentMethod.objects.get()
    assert pm.last4 == "4242" and pm.contact_id == contact.pk
    page = html(seller.get(f"/contacts/{contact.pk}/"))
    assert "Visa ···· 4242 · 12/2035" in page and "Payment methods (1)" in page
    assert "Visa ···· 4242" in html(seller.get(f"/subscriptions/new/?contact={contact.pk}"))  # the wizard offers it
    r = seller.post(f"/contacts/{contact.pk}/payment-methods/add/", {
        "method": "bank_account", "bank_holder": "Anna", "bank_routing": "110000000", "bank_account": "000123456789"})
    assert r.status_code == 302 and PaymentMethod.objects.filter(type="bank_account").count() == 1
    seller.post(f"/contacts/{contact.pk}/payment-methods/{pm.pk}/remove/")
    pm.refresh_from_db()
    assert pm.removed_at is not None
    page = html(seller.get(f"/contacts/{contact.pk}/"))
    card_html = page.split('data-testid="payment-methods-card"')[1].split("<details")[0]
    assert "4242" not in card_html and "Bank account ···· 6789" in card_html and "Payment methods (1)" in page


def test_bad_card_shows_errors_beside_fields_and_never_echoes_the_number(seller, contact, on):
    on(D(2027, 3, 10))
    page = html(seller.post(f"/contacts/{contact.pk}/payment-methods/add/", card_post(card_number="4242424242424241")))
    assert 'id="id_card_number_error"' in page and "4242424242424241" not in page
    page = html(seller.post(f"/contacts/{contact.pk}/payment-methods/add/", card_post(card_exp_year="2026")))
    assert "has-error" in page and CARDS["ok"] not in page
    page = html(seller.post(f"/contacts/{contact.pk}/payment-methods/add/", card_post(card_cvc="")))
    assert CARDS["ok"] not in page and 'id="id_card_cvc"' in page
    assert PaymentMethod.objects.count() == 0


def test_pages_in_dutch(seller, contact, admin, on):
    on(D(2027, 3, 10))
    admin.language = "nl"
    admin.save()
    page = html(seller.get("/payment-links/"))
    assert "Betaallinks" in page and "Betaallink aanmaken" in page
    page = html(seller.get("/payment-links/new/"))
    assert "Zoals het product (eigen regel: eenmalig)" in page and "Factuuradres vragen" in page
    page = html(seller.get("/quotes/"))
    assert "Offertes" in page and "Offerte aanmaken" in page
    page = html(seller.get(f"/contacts/{contact.pk}/"))
    assert "Betaalmethoden" in page and "Kaart / bankrekening toevoegen" in page
    page = html(seller.post(f"/contacts/{contact.pk}/payment-methods/add/", card_post(card_number="1234")))
    assert 'id="id_card_number_error"' in page


def test_pages_need_a_login(client, contact):
    for url in ("/payment-links/", "/payment-links/new/", "/quotes/", "/quotes/new/"):
        assert client.get(url)["Location"].startswith("/login/")
    r = client.post(f"/contacts/{contact.pk}/payment-methods/add/", card_post())
    assert r["Location"].startswith("/login/") and PaymentMethod.objects.count() == 0


def test_payment_link_page_lists_checkouts_that_bought_nothing(seller, admin, on):
    from recur.checkout import payment_links as pl
    from tests.checkout.conftest import card

    on(D(2027, 3, 10))
    lk = pl.create_payment_link(admin, {"name": "Plans", "line_items": [
        {"name": "Gold plan", "unit_price": 4900, "currency": "EUR", "billing_frequency": "monthly"}]})
    page = html(seller.get(f"/payment-links/{lk.pk}/"))
    assert 'data-testid="unfinished"' not in page
    pl.checkout(lk, {"name": "Bram Jansen", "email": "bram@example.nl", "language": "nl"},
                card(CARDS["insufficient"]), nonce=pl.new_nonce())
    pl.checkout(lk, {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"}, card(CARDS["ok"]),
                nonce=pl.new_nonce())
    page = html(seller.get(f"/payment-links/{lk.pk}/"))
    unfinished = page.split('data-testid="unfinished"')[1].split("</section>")[0]
    assert "Bram Jansen" in unfinished and "bram@example.nl" in unfinished
    assert "Your card has insufficient funds." in unfinished and "€49.00" in unfinished and "····9995" in unfinished
    assert "Anna de Vries" not in unfinished  # she bought: her subscription is listed instead
