"""Creating, editing and deleting contacts, companies, deals and products in the seller's pages (R-OBJ-1):
a service error is shown beside its field and nothing is saved (R-ALL-4); English and Dutch (R-ALL-3)."""

import datetime as dt

import pytest

from recur.core import records
from recur.core.models import HistoryEntry
from recur.crm import services as crm
from recur.crm.models import Company, Contact, ContactEmail, Deal, Product

pytestmark = pytest.mark.django_db
D = dt.date


def html(r) -> str:
    assert r.status_code == 200, (r.status_code, r.get("Location"))
    return r.content.decode()


def contact_post(**kw):
    data = {"name": "Bram Jansen", "email": "bram@example.nl", "other_emails": "b.jansen@example.nl\nbram@work.nl",
            "phone": "+31 6 1234 5678", "language": "nl", "company": "", "address_line1": "Keizersgracht 1",
            "postal_code": "1015 CJ", "city": "Amsterdam", "country": "nl"}
    data.update(kw)
    return data


# --- contacts ----------------------------------------------------------------------------------------


def test_list_pages_have_a_create_button(seller):
    for url, label, target in (("/contacts/", "Create contact", "/contacts/new/"),
                               ("/companies/", "Create company", "/companies/new/"),
                               ("/deals/", "Create deal", "/deals/new/"),
                               ("/products/", "Create product", "/products/new/")):
        page = html(seller.get(url))
        assert f'href="{target}">{label}</a>' in page
        assert label in html(seller.get(target))


def test_create_and_edit_a_contact_with_a_company(seller, admin):
    acme = crm.create_company(admin, {"name": "Acme BV"})
    r = seller.post("/contacts/new/", contact_post(company=str(acme.pk)))
    c = Contact.objects.get()
    assert r["Location"] == f"/contacts/{c.pk}/"
    assert (c.email, c.other_emails, c.language, c.city, c.country) == (
        "bram@example.nl", ["b.jansen@example.nl", "bram@work.nl"], "nl", "Amsterdam", "NL")
    assert list(records.associated(c, "company")) == [acme]
    page = html(seller.get(r["Location"]))
    assert "“Bram Jansen” is created." in page and f'href="/contacts/{c.pk}/edit/"' in page
    assert f'href="/contacts/{c.pk}/delete/"' in page and "Acme BV" in page
    # the edit form is filled in
    page = html(seller.get(f"/contacts/{c.pk}/edit/"))
    assert 'value="bram@example.nl"' in page and "b.jansen@example.nl\nbram@work.nl" in page
    assert f'<option value="{acme.pk}" selected>' in page
    r = seller.post(f"/contacts/{c.pk}/edit/", contact_post(name="Bram J.", other_emails="", city="Utrecht", company=""))
    assert r.status_code == 302
    c.refresh_from_db()
    assert (c.name, c.other_emails, c.city) == ("Bram J.", [], "Utrecht")
    assert not records.associated(c, "company").exists()
    assert HistoryEntry.objects.filter(record_type="contact", record_id=c.pk, action="updated").exists()


def test_duplicate_email_is_shown_beside_the_field_and_nothing_is_saved(seller, contact, admin):
    acme = crm.create_company(admin, {"name": "Acme BV"})
    page = html(seller.post("/contacts/new/", contact_post(email="ANNA@example.nl", company=str(acme.pk))))
    assert '<p class="error" id="id_email_error">anna@example.nl already belongs to another contact.</p>' in page
    assert Contact.objects.count() == 1 and not records.associated(acme, "contact").exists()
    page = html(seller.post("/contacts/new/", contact_post(other_emails="anna@example.nl")))
    assert 'id="id_other_emails_error">anna@example.nl already belongs to another contact.' in page
    page = html(seller.post("/contacts/new/", contact_post(name="", email="nope", other_emails="x@", country="N1")))
    assert 'id="id_name_error">Enter the contact&#x27;s name.' in page
    assert 'id="id_email_error">Enter a valid email address.' in page
    assert 'id="id_other_emails_error">“x@” is not a valid e-mail address.' in page
    assert 'id="id_country_error"' in page
    assert Contact.objects.count() == 1 and ContactEmail.objects.count() == 1
    # editing another contact onto Anna's address changes nothing
    bram = crm.create_contact(admin, {"name": "Bram", "email": "bram@example.nl"})
    page = html(seller.post(f"/contacts/{bram.pk}/edit/", contact_post(name="Bram 2", email="anna@example.nl")))
    assert 'id="id_email_error">anna@example.nl already belongs to another contact.' in page
    bram.refresh_from_db()
    assert (bram.name, bram.email, bram.other_emails) == ("Bram", "bram@example.nl", [])


def test_delete_a_contact(seller, admin):
    c = crm.create_contact(admin, {"name": "Weg Ermee", "email": "weg@example.nl"})
    page = html(seller.get(f"/contacts/{c.pk}/delete/"))
    assert "Delete “Weg Ermee” permanently?" in page and "Delete permanently" in page
    r = seller.post(f"/contacts/{c.pk}/delete/")
    assert r["Location"] == "/contacts/" and not Contact.objects.exists() and not ContactEmail.objects.exists()
    assert "“Weg Ermee” is deleted." in html(seller.get("/contacts/"))
    assert seller.get(f"/contacts/{c.pk}/delete/").status_code == 404


def test_a_contact_with_a_subscription_cannot_be_deleted(seller, contact, make_sub, on):
    on(D(2027, 3, 10))
    make_sub()
    page = html(seller.get(f"/contacts/{contact.pk}/delete/"))
    assert "This contact cannot be deleted: it still has subscriptions, invoices, payments" in page
    assert "Delete permanently" not in page
    r = seller.post(f"/contacts/{contact.pk}/delete/")  # the database refuses; a message, not a 500
    assert r["Location"] == f"/contacts/{contact.pk}/"
    page = html(seller.get(r["Location"]))
    assert "“Anna de Vries” cannot be deleted: it still has subscriptions, invoices, payments" in page
    assert Contact.objects.filter(pk=contact.pk).exists() and ContactEmail.objects.count() == 1


# --- companies -----------------------------------------------------------------------------------------


def test_create_edit_delete_a_company(seller):
    r = seller.post("/companies/new/", {"name": "Acme BV", "domains": "https://www.Acme.nl/\nacme.com",
                                        "phone": "020 123", "city": "Delft", "country": ""})
    co = Company.objects.get()
    assert r["Location"] == f"/companies/{co.pk}/" and co.domains == ["acme.nl", "acme.com"]
    page = html(seller.post(f"/companies/{co.pk}/edit/", {"name": "Acme", "domains": "acme.nl\nnot a domain!"}))
    assert 'id="id_domains_error">“not” is not a valid domain name.' in page or "is not a valid domain name" in page
    co.refresh_from_db()
    assert co.name == "Acme BV" and co.domains == ["acme.nl", "acme.com"]
    page = html(seller.post(f"/companies/{co.pk}/edit/", {"name": "", "domains": ""}))
    assert 'id="id_name_error"' in page
    r = seller.post(f"/companies/{co.pk}/edit/", {"name": "Acme Holding", "domains": "acme.nl"})
    co.refresh_from_db()
    assert r.status_code == 302 and co.name == "Acme Holding" and co.domains == ["acme.nl"]
    assert "Delete “Acme Holding” permanently?" in html(seller.get(f"/companies/{co.pk}/delete/"))
    assert seller.post(f"/companies/{co.pk}/delete/")["Location"] == "/companies/"
    assert not Company.objects.exists()


# --- products ------------------------------------------------------------------------------------------


def product_post(**kw):
    data = {"name": "Team plan", "sku": "TEAM-1", "description": "For teams", "unit_price": "49,50",
            "currency": "EUR", "billing_frequency": "monthly", "tax_rate": "21"}
    data.update(kw)
    return data


def test_create_edit_archive_delete_a_product(seller, admin):
    r = seller.post("/products/new/", product_post())
    p = Product.objects.get()
    assert r["Location"] == f"/products/{p.pk}/"
    assert (p.unit_price, p.currency, p.billing_frequency, p.tax_rate, p.sku) == (4950, "EUR", "monthly", 21, "TEAM-1")
    page = html(seller.get(r["Location"]))
    assert "€49.50" in page and "Monthly" in page and f'href="/products/{p.pk}/edit/"' in page
    assert f'href="/products/{p.pk}/"' in html(seller.get("/products/"))
    page = html(seller.get(f"/products/{p.pk}/edit/"))
    assert 'value="49.50"' in page and 'value="TEAM-1"' in page
    r = seller.post(f"/products/{p.pk}/edit/", product_post(billing_frequency="", archived="on", sku="", unit_price="10"))
    p.refresh_from_db()
    assert r.status_code == 302 and p.billing_frequency is None and p.archived and p.sku is None and p.unit_price == 1000
    assert "Archived" in html(seller.get("/products/"))
    assert seller.post(f"/products/{p.pk}/delete/")["Location"] == "/products/"
    assert not Product.objects.exists()


def test_bad_product_input_shows_the_field_error(seller, admin):
    crm.create_product(admin, {"name": "Old", "sku": "TEAM-1", "unit_price": 100, "currency": "EUR"})
    page = html(seller.post("/products/new/", product_post()))  # the SKU is taken
    assert 'id="id_sku_error"' in page
    page = html(seller.post("/products/new/", product_post(unit_price="abc", tax_rate="150", sku="X")))
    assert 'id="id_unit_price_error">Enter an amount such as 49.00.' in page and 'id="id_tax_rate_error"' in page
    page = html(seller.post("/products/new/", product_post(unit_price="1.5", currency="JPY", sku="Y")))
    assert 'id="id_unit_price_error">Use at most 0 decimals for JPY.' in page
    assert Product.objects.count() == 1


# --- deals ---------------------------------------------------------------------------------------------


def test_create_edit_delete_a_deal(seller, contact, admin):
    acme = crm.create_company(admin, {"name": "Acme BV"})
    r = seller.post("/deals/new/", {"name": "Acme rollout", "amount": "1200", "currency": "EUR",
                                    "stage": "qualified_to_buy", "close_date": "2027-04-01",
                                    "contact": str(contact.pk), "company": str(acme.pk)})
    deal = Deal.objects.get()
    assert r["Location"] == f"/deals/{deal.pk}/"
    assert (deal.amount, deal.stage, deal.close_date) == (120000, "qualified_to_buy", D(2027, 4, 1))
    assert list(records.associated(deal, "contact")) == [contact]
    assert list(records.associated(deal, "company")) == [acme]
    page = html(seller.get(f"/deals/{deal.pk}/edit/"))
    assert 'value="1200.00"' in page and f'<option value="{contact.pk}" selected>' in page
    page = html(seller.post(f"/deals/{deal.pk}/edit/", {"name": "", "amount": "-5", "currency": "EUR", "stage": "x"}))
    assert 'id="id_name_error"' in page and 'id="id_amount_error"' in page and 'id="id_stage_error"' in page
    deal.refresh_from_db()
    assert deal.name == "Acme rollout"
    r = seller.post(f"/deals/{deal.pk}/edit/", {"name": "Acme", "amount": "", "currency": "USD",
                                                 "stage": "closed_won", "contact": "", "company": str(acme.pk)})
    deal.refresh_from_db()
    assert r.status_code == 302 and (deal.name, deal.amount, deal.currency) == ("Acme", 0, "USD")
    assert not records.associated(deal, "contact").exists()
    assert seller.post(f"/deals/{deal.pk}/delete/")["Location"] == "/deals/"
    assert not Deal.objects.exists() and Contact.objects.filter(pk=contact.pk).exists()


# --- Dutch, login ----------------------------------------------------------------------------------------


def test_record_pages_in_dutch(seller, contact, admin):
    admin.language = "nl"
    admin.save()
    page = html(seller.get("/contacts/"))
    assert "Contactpersoon aanmaken" in page
    page = html(seller.get("/contacts/new/"))
    assert "Contactpersoon aanmaken" in page and "Factuuradres" in page
    page = html(seller.post("/contacts/new/", contact_post(email="anna@example.nl")))
    assert 'id="id_email_error">anna@example.nl hoort al bij een andere contactpersoon.' in page
    page = html(seller.get(f"/contacts/{contact.pk}/"))
    assert "Bewerken" in page and "Verwijderen" in page
    assert "Bedrijf aanmaken" in html(seller.get("/companies/new/"))
    assert "Deal aanmaken" in html(seller.get("/deals/new/"))
    page = html(seller.get("/products/new/"))
    assert "Product aanmaken" in page and "Gearchiveerd" in page
    assert "definitief verwijderen?" in html(seller.get(f"/contacts/{contact.pk}/delete/"))


def test_record_pages_need_a_login(client, contact):
    for url in ("/contacts/new/", f"/contacts/{contact.pk}/edit/", f"/contacts/{contact.pk}/delete/",
                "/companies/new/", "/deals/new/", "/products/new/"):
        assert client.get(url)["Location"].startswith("/login/")
    r = client.post(f"/contacts/{contact.pk}/delete/")
    assert r["Location"].startswith("/login/") and Contact.objects.filter(pk=contact.pk).exists()
