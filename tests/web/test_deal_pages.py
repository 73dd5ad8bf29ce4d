"""A deal's line items and its conversion to subscriptions or an invoice from the deal page (R-NEW-5):
errors shown clearly, nothing half-saved (R-ALL-4); English and Dutch (R-ALL-3)."""

import datetime as dt

import pytest

from recur.billing.models import Invoice
from recur.core import records
from recur.crm import quotes as quote_services
from recur.crm import services as crm
from recur.crm.models import Deal, LineItem
from recur.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db
D = dt.date


def html(r) -> str:
    assert r.status_code == 200, (r.status_code, r.get("Location"))
    return r.content.decode()


def items_post(**kw):
    data = {"items": "2", "currency": "EUR", "save": "1",
            "item-0-name": "Team plan", "item-0-unit_price": "49.00", "item-0-quantity": "2",
            "item-0-billing_frequency": "monthly", "item-0-billing_terms": "auto_renew",
            "item-1-name": "Onboarding", "item-1-unit_price": "250", "item-1-quantity": "1",
            "item-1-billing_frequency": "one_time", "item-1-billing_terms": "auto_renew"}
    data.update(kw)
    return data


@pytest.fixture
def deal(admin, contact):
    d = crm.create_deal(admin, {"name": "Acme rollout", "amount": 100000, "currency": "EUR"})
    records.associate(admin, d, contact)
    return d


def one_time(deal, admin):
    quote_services.set_deal_line_items(admin, deal, [
        {"name": "Workshop", "unit_price": 50000, "currency": "EUR", "quantity": 1}])


def test_add_edit_and_remove_line_items(seller, deal):
    page = html(seller.get(f"/deals/{deal.pk}/"))
    assert "No line items yet." in page and f'href="/deals/{deal.pk}/line-items/"' in page
    page = html(seller.get(f"/deals/{deal.pk}/line-items/"))
    assert "Line items of the deal" in page and 'name="item-0-product"' in page
    r = seller.post(f"/deals/{deal.pk}/line-items/", items_post())
    assert r["Location"] == f"/deals/{deal.pk}/"
    items = list(deal.line_items.all())
    assert [(i.name, i.quantity, i.unit_price, i.billing_frequency or None) for i in items] == [
        ("Team plan", 2, 4900, "monthly"), ("Onboarding", 1, 25000, None)]
    page = html(seller.get(r["Location"]))
    assert "The deal&#x27;s line items are saved." in page and "Team plan" in page and "€250.00" in page
    assert "Convert to subscription" in page and "Edit line items" in page
    # the edit page is filled with the saved items
    page = html(seller.get(f"/deals/{deal.pk}/line-items/"))
    assert 'value="Team plan"' in page and 'value="49.00"' in page and 'name="item-1-name"' in page
    # "Add line item" re-shows the form with one more row and saves nothing
    page = html(seller.post(f"/deals/{deal.pk}/line-items/", items_post(add_item="1", save="")))
    assert 'name="item-2-name"' in page and deal.line_items.count() == 2
    # remove every row: the deal has no line items
    r = seller.post(f"/deals/{deal.pk}/line-items/", items_post(**{"item-0-remove": "on", "item-1-remove": "on"}))
    assert r.status_code == 302 and not deal.line_items.exists()


def test_bad_line_items_show_the_error_and_keep_the_old_items(seller, deal, admin):
    one_time(deal, admin)
    page = html(seller.post(f"/deals/{deal.pk}/line-items/", items_post(**{"item-0-unit_price": "abc"})))
    assert 'id="id_item-0-unit_price_error">Enter an amount such as 49.00.' in page
    page = html(seller.post(f"/deals/{deal.pk}/line-items/", items_post(**{"item-1-unit_price": "1.234"})))
    assert 'id="id_item-1-unit_price_error">Use at most 2 decimals for EUR.' in page
    archived = crm.create_product(admin, {"name": "Old", "unit_price": 100, "currency": "EUR", "archived": True})
    page = html(seller.post(f"/deals/{deal.pk}/line-items/", items_post(**{
        "item-0-product": str(archived.pk), "item-0-name": "", "item-0-unit_price": ""})))
    assert 'id="id_item-0-product_error"' in page
    assert [li.name for li in deal.line_items.all()] == ["Workshop"]


def test_convert_to_subscription_with_manual_collection(seller, deal, admin, on):
    on(D(2027, 3, 10))
    acme = crm.create_company(admin, {"name": "Acme BV"})
    records.associate(admin, deal, acme)
    seller.post(f"/deals/{deal.pk}/line-items/", items_post())
    r = seller.post(f"/deals/{deal.pk}/convert/", {"to": "subscription", "collection": "manual",
                                                   "payment_terms": "net_30"})
    assert r["Location"] == f"/deals/{deal.pk}/"
    sub = Subscription.objects.get()
    assert sub.collection == "manual" and sub.payment_terms == "net_30" and sub.amount == 9800
    assert sub.company_id == acme.pk
    assert [d.pk for d in records.associated(sub, "deal")] == [deal.pk]
    invoices = Invoice.objects.order_by("pk")
    assert invoices.count() == 2  # the first period (billed now) and the one-time onboarding
    page = html(seller.get(r["Location"]))
    assert "1 subscription(s) created from the deal." in page and "One-time items are on invoice" in page
    assert "Created from this deal" in page and f'href="/subscriptions/{sub.pk}/"' in page
    one_off = Invoice.objects.get(subscription__isnull=True)  # the first period's invoice is on the subscription
    assert one_off.number in page and one_off.total == 25000
    assert 'action="/deals/%d/convert/"' % deal.pk not in page  # converted once; the box gives way


def test_convert_to_subscription_charging_a_saved_card(seller, deal, card, on):
    on(D(2027, 3, 10))
    seller.post(f"/deals/{deal.pk}/line-items/", items_post(items="1"))
    page = html(seller.post(f"/deals/{deal.pk}/convert/", {"to": "subscription", "collection": "auto_charge",
                                                           "payment_terms": "due_on_receipt"}))
    assert 'id="id_payment_method_error">Choose one of the contact&#x27;s saved payment methods.' in page
    assert not Subscription.objects.exists()
    page = html(seller.get(f"/deals/{deal.pk}/"))
    assert f'<option value="{card.pk}">' in page
    r = seller.post(f"/deals/{deal.pk}/convert/", {"to": "subscription", "collection": "auto_charge",
                                                   "payment_method": str(card.pk), "payment_terms": "due_on_receipt"})
    assert r.status_code == 302
    sub = Subscription.objects.get()
    assert sub.collection == "auto_charge" and sub.payment_method_id == card.pk
    assert sub.payments.filter(status="succeeded").count() == 1  # due today: charged at once


def test_convert_to_invoice(seller, deal, admin, on):
    on(D(2027, 3, 10))
    one_time(deal, admin)
    page = html(seller.get(f"/deals/{deal.pk}/"))
    assert "Convert to invoice" in page and "Convert to subscription" not in page
    r = seller.post(f"/deals/{deal.pk}/convert/", {"to": "invoice", "collection": "manual", "payment_terms": "net_15"})
    assert r["Location"] == f"/deals/{deal.pk}/"
    inv = Invoice.objects.get()
    assert inv.total == 50000 and inv.due_date == D(2027, 3, 25)
    assert not Subscription.objects.exists()
    page = html(seller.get(r["Location"]))
    assert f"Invoice {inv.number} is created from the deal." in page and "Created from this deal" in page


def test_a_deal_without_a_contact_says_so(seller, admin):
    deal = crm.create_deal(admin, {"name": "Orphan"})
    one_time(deal, admin)
    page = html(seller.get(f"/deals/{deal.pk}/"))
    assert 'data-testid="no-contact"' in page
    page = html(seller.post(f"/deals/{deal.pk}/convert/", {"to": "invoice", "collection": "manual",
                                                           "payment_terms": "due_on_receipt"}))
    assert '<div class="danger-note" role="alert"><p style="margin:0">Associate a contact with the deal first' in page
    assert not Invoice.objects.exists()
    # converting a deal with recurring items to an invoice is refused with a clear message
    quote_services.set_deal_line_items(admin, deal, [
        {"name": "Plan", "unit_price": 100, "currency": "EUR", "quantity": 1, "billing_frequency": "monthly"}])
    contact = crm.create_contact(admin, {"name": "C", "email": "c@example.nl"})
    records.associate(admin, deal, contact)
    page = html(seller.post(f"/deals/{deal.pk}/convert/", {"to": "invoice", "payment_terms": "due_on_receipt"}))
    assert "The deal has recurring line items: convert it to a subscription instead." in page
    assert not Invoice.objects.exists() and not Subscription.objects.exists()


def test_deal_pages_in_dutch(seller, deal, admin, on):
    on(D(2027, 3, 10))
    admin.language = "nl"
    admin.save()
    page = html(seller.get(f"/deals/{deal.pk}/"))
    assert "Regelitems toevoegen" in page
    page = html(seller.get(f"/deals/{deal.pk}/line-items/"))
    assert "Regelitems van de deal" in page and "Regelitems opslaan" in page
    seller.post(f"/deals/{deal.pk}/line-items/", items_post())
    page = html(seller.get(f"/deals/{deal.pk}/"))
    assert "Omzetten naar abonnement" in page and "Regelitems bewerken" in page
    seller.post(f"/deals/{deal.pk}/convert/", {"to": "subscription", "collection": "manual",
                                               "payment_terms": "due_on_receipt"})
    page = html(seller.get(f"/deals/{deal.pk}/"))
    assert "1 abonnement(en) aangemaakt uit de deal." in page and "Aangemaakt uit deze deal" in page


def test_deal_pages_need_a_login(client, deal):
    assert client.get(f"/deals/{deal.pk}/line-items/")["Location"].startswith("/login/")
    r = client.post(f"/deals/{deal.pk}/convert/", {"to": "invoice"})
    assert r["Location"].startswith("/login/") and not Invoice.objects.exists()
    assert not LineItem.objects.exists() and Deal.objects.count() == 1
