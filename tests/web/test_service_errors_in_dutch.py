"""Service errors in the user's language (R-ALL-3, R-ALL-4; issue #7 "English and Dutch complete").

The services raise their messages with gettext in the language active at raise time: a seller whose
language is Dutch reads them in Dutch beside the field; the API always answers in English (its clients
match on messages in their logs; ``code`` and ``field`` are the contract).
"""

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from django.utils import translation

from recur.core.errors import ServiceError
from recur.crm import quotes as quote_services
from recur.crm import services as crm
from recur.crm.models import Contact
from recur.subscriptions import services as subs
from recur.subscriptions import status as rules
from recur.subscriptions.models import Subscription
from recur.web.forms import service_message

pytestmark = pytest.mark.django_db
D = dt.date
SRC = Path(__file__).resolve().parents[2] / "src" / "recur"

# The modules whose ServiceError messages are translated (issue #7).
TRANSLATED = ["subscriptions/services.py", "subscriptions/conversions.py", "crm/quotes.py", "crm/services.py",
              "web/services.py", "core/records.py", "core/auth.py", "core/errors.py", "notifications/services.py",
              "billing/services.py", "checkout/services.py", "checkout/payment_links.py", "payments/services.py"]


def html(r) -> str:
    assert r.status_code == 200, (r.status_code, r.get("Location"))
    return r.content.decode()


@pytest.fixture
def dutch(admin):
    admin.language = "nl"
    admin.save()
    return admin


def _edit_data(sub, **over):
    data = {"items": "1", "name": sub.name, "contact": sub.contact_id, "payment_method": sub.payment_method_id or "",
            "next_payment_date": sub.next_payment_date.isoformat(), "item-0-name": "Support plan",
            "item-0-unit_price": "49.00", "item-0-quantity": "1"}
    data.update(over)
    return data


# --- the catalog ----------------------------------------------------------------------------------------


def _service_msgids() -> list[str]:
    out = []
    for rel in TRANSLATED:
        for _line, msg, _comments, _ctx in extract_from_file(
                "python", str(SRC / rel), keywords={"_": None, "gettext": None, "gettext_lazy": None}):
            msg = msg[0] if isinstance(msg, tuple) else msg
            if msg not in out:
                out.append(msg)
    return out


def test_every_service_message_has_a_dutch_translation_that_keeps_the_field_prefix():
    with open(SRC / "locale/nl/LC_MESSAGES/django.po", "rb") as f:
        catalog = read_po(f)
    msgids = _service_msgids()
    assert len(msgids) > 120  # the extraction found the services' messages
    for msgid in msgids:
        entry = catalog.get(msgid)
        assert entry is not None and entry.string.strip(), f"no Dutch for {msgid!r}"
        assert not entry.fuzzy, msgid
        # the same named placeholders, and the same English "field: " prefix (service_message strips it)
        assert sorted(re.findall(r"%\((\w+)\)s", msgid)) == sorted(re.findall(r"%\((\w+)\)s", entry.string)), msgid
        prefix = re.match(r"^(%\(field\)s|[a-z_]+(\[\d+\])?(\.[a-z_]+)*): ", msgid)
        if prefix:
            assert entry.string.startswith(prefix.group(0)), (msgid, entry.string)
        assert entry.string != msgid or msgid in ("%(field)s: auto_renew or fixed",), msgid


def test_english_stays_word_for_word_the_rules_message_of_a_refused_status_change():
    """API clients read these in their logs: the English text did not change."""
    from recur.subscriptions.services import transition_message

    with translation.override("en"):
        for status in rules.STATUSES:
            for event in ("pause", "resume", "cancel"):
                try:
                    rules.transition(status, event)
                except rules.InvalidTransition as exc:
                    assert transition_message(exc) == str(exc)


@pytest.mark.parametrize("item", [
    {"billing_frequency": "monthly", "billing_start_date": "2027-13-01"},
    {"billing_frequency": "monthly", "billing_start_date": dt.datetime(2027, 1, 1)},
    {"billing_frequency": "monthly", "billing_start_delay_days": -1},
    {"billing_frequency": "monthly", "billing_start_delay_months": "2"},
    {"billing_frequency": "monthly", "billing_terms": "fixed", "number_of_payments": 0},
    {"billing_frequency": "monthly", "billing_terms": "forever"},
    {"billing_frequency": "fortnightly"},
    {"billing_frequency": None},
    {"billing_frequency": "monthly", "billing_start_date": D(2027, 1, 1), "billing_start_delay_days": 3},
])
def test_english_grouping_errors_stay_word_for_word(item):
    from recur.subscriptions import grouping
    from recur.subscriptions.services import grouping_message

    with pytest.raises(ValueError) as exc:
        grouping.grouping_key(item)
    with translation.override("en"):
        assert grouping_message(exc.value, item, "line_items[0]") == f"line_items[0].{exc.value}"
    with translation.override("nl"):
        dutch = grouping_message(exc.value, item, "line_items[0]")
    assert dutch.startswith(f"line_items[0].{str(exc.value).split(':')[0]}: ") and dutch != f"line_items[0].{exc.value}"


@pytest.mark.parametrize("code", [None, 12, "euro", "E1R", "XYZ", ""])
def test_english_currency_errors_stay_word_for_word(code):
    from recur.core.errors import currency_message
    from recur.core.money import validate_currency

    with pytest.raises(ValueError) as exc:
        validate_currency(code)
    with translation.override("en"):
        assert currency_message("currency", code) == f"currency: {exc.value}"


def test_a_service_error_is_in_the_language_active_when_it_is_raised(admin, contact):
    for lang, text in (("en", "email: anna@example.nl already belongs to another contact"),
                       ("nl", "email: het e-mailadres anna@example.nl hoort al bij een andere contactpersoon")):
        with translation.override(lang), pytest.raises(ServiceError) as exc:
            crm.create_contact(admin, {"name": "Anna 2", "email": "anna@example.nl"})
        assert exc.value.message == text and exc.value.field == "email" and exc.value.code == "validation_error"
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        crm.create_contact(admin, {"name": "Bob", "currency": "EUR"})
    assert exc.value.message == "currency: onbekend veld"
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        crm.create_deal(admin, {"name": "Groot", "currency": "euro"})
    assert service_message(exc.value) == "De valuta moet een ISO 4217-code van drie letters zijn, zoals EUR, niet 'euro'."


def test_django_model_validation_follows_the_active_language_behind_the_english_field(admin):
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        crm.create_contact(admin, {"name": ""})
    assert exc.value.field == "name" and exc.value.message.startswith("name: ")
    assert exc.value.message == "name: Dit veld kan niet leeg zijn"  # Django's own Dutch


# --- the API: always English ----------------------------------------------------------------------------


def test_the_api_answers_in_english_to_a_dutch_user_and_a_dutch_browser(api, dutch, contact):
    r = api.post("/contacts", {"name": "Anna 2", "email": "anna@example.nl"}, headers={"Accept-Language": "nl"})
    assert r.status_code == 422
    assert r.json()["error"] == {"code": "validation_error", "field": "email",
                                 "message": "email: anna@example.nl already belongs to another contact"}
    assert r["Content-Language"] == "en"
    r = api.get("/contacts/999999")
    assert r.status_code == 404 and r.json()["error"]["message"] == "No contact with id 999999"
    # and the seller's pages are still in Dutch afterwards
    from django.test import Client

    web = Client()
    web.force_login(dutch)
    assert "Contactpersonen" in html(web.get("/contacts/"))


def test_the_api_cancel_conflict_is_english_for_a_dutch_user(api, dutch, make_sub, on):
    on(D(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    body = {"mode": "end_of_period", "confirm": True}
    assert api.post(f"/subscriptions/{sub.pk}/cancel", body).status_code == 200
    r = api.post(f"/subscriptions/{sub.pk}/cancel", body, headers={"Accept-Language": "nl"})
    assert r.status_code == 409
    assert r.json()["error"] == {"code": "already_canceling", "field": "cancel_at",
                                 "message": "cancel_at: the subscription is already set to cancel on 2027-04-01"}


# --- the seller's pages in Dutch -------------------------------------------------------------------------


def test_edit_a_new_payment_date_inside_the_two_day_window_in_dutch(seller, dutch, make_sub, on):
    on(D(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    on(D(2027, 3, 10))
    page = html(seller.post(f"/subscriptions/{sub.pk}/edit/", _edit_data(
        sub, **{"next_payment_date": "2027-03-11", "name": "Hernoemd", "save": "1"})))
    assert '<p class="error" id="id_next_payment_date_error">Moet meer dan 2 dagen na vandaag liggen</p>' in page
    sub.refresh_from_db()
    assert sub.name == "Support plan" and sub.next_payment_date == D(2027, 4, 1)


def test_edit_refused_by_the_service_inside_the_window_in_dutch(seller, dutch, make_sub, on, monkeypatch):
    """The page checks the window first; a save that gets past it (the day turned) is refused by the service."""
    from recur.web.views import subscriptions as views

    on(D(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    on(D(2027, 3, 30))  # next payment 1 April: inside the window
    monkeypatch.setattr(views, "edit_block_reason", lambda sub: "")
    page = html(seller.post(f"/subscriptions/{sub.pk}/edit/", _edit_data(sub, **{"name": "Hernoemd", "save": "1"})))
    assert ('id="id_next_payment_date_error">De volgende betaling is op 1 april 2027; een abonnement kan niet '
            'worden bewerkt binnen 2 dagen voor de volgende betaaldatum</p>') in page
    sub.refresh_from_db()
    assert sub.name == "Support plan"


def test_cancel_twice_in_dutch(seller, dutch, make_sub, on):
    on(D(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    on(D(2027, 3, 10))
    r = seller.post(f"/subscriptions/{sub.pk}/cancel/", {"mode": "end_of_period", "confirm": "on"}, follow=True)
    assert "Het abonnement eindigt aan het eind van de huidige periode." in r.content.decode()
    page = html(seller.post(f"/subscriptions/{sub.pk}/cancel/", {"mode": "end_of_period", "confirm": "on"}))
    assert '<p class="error" id="mode_error">Het abonnement wordt al opgezegd per 1 april 2027</p>' in page
    # the form's own errors are Dutch too
    page = html(seller.post(f"/subscriptions/{sub.pk}/cancel/", {"mode": "immediately"}))
    assert '<p class="error" id="confirm_error">Vink dit vakje aan om de opzegging te bevestigen.</p>' in page
    sub.refresh_from_db()
    assert sub.status == "active" and sub.cancel_at == D(2027, 4, 1)


def test_cancel_refused_by_the_service_for_a_canceled_subscription_in_dutch(dutch, make_sub, on):
    on(D(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    subs.cancel(dutch, sub, "immediately", True)
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        subs.cancel(dutch, Subscription.objects.get(pk=sub.pk), "immediately", True)
    assert exc.value.message == "status: het abonnement is al opgezegd" and exc.value.code == "invalid_status"
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        subs.pause(dutch, Subscription.objects.get(pk=sub.pk))
    assert exc.value.message == ("Het abonnement kan niet worden gepauzeerd: de status is Opgezegd, en dat is "
                                 "definitief. Pauzeren kan alleen bij de status Actief of Onbetaald.")


def test_pause_of_a_paused_subscription_shows_dutch(seller, dutch, make_sub, on):
    on(D(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    seller.post(f"/subscriptions/{sub.pk}/pause/")
    r = seller.post(f"/subscriptions/{sub.pk}/pause/", follow=True)
    assert ("Het abonnement kan niet worden gepauzeerd: de status is Gepauzeerd. Pauzeren kan alleen bij de status "
            "Actief of Onbetaald.") in r.content.decode()


def test_contact_with_a_duplicate_email_in_dutch(seller, dutch, contact):
    from tests.web.test_record_pages import contact_post

    page = html(seller.post("/contacts/new/", contact_post(email="ANNA@example.nl")))
    assert ('<p class="error" id="id_email_error">anna@example.nl hoort al bij een andere contactpersoon.</p>'
            in page)
    page = html(seller.post("/contacts/new/", contact_post(other_emails="anna@example.nl")))
    assert 'id="id_other_emails_error">anna@example.nl hoort al bij een andere contactpersoon.</p>' in page
    page = html(seller.post("/contacts/new/", contact_post(other_emails="x@")))  # the form's own check
    assert 'id="id_other_emails_error">“x@” is geen geldig e-mailadres.' in page
    assert Contact.objects.count() == 1


def test_company_with_a_bad_domain_in_dutch(seller, dutch):
    page = html(seller.post("/companies/new/", {"name": "Acme BV", "domains": "acme.nl\nnot_a_domain"}))
    assert 'id="id_domains_error">“not_a_domain” is geen geldige domeinnaam.</p>' in page


def _published_quote(admin, contact, **item):
    quote = quote_services.create_quote(admin, {"contact_id": contact.pk, "line_items": [
        {"name": "Plan", "unit_price": 1000, "currency": "EUR", "billing_frequency": "monthly", **item}]})
    return quote_services.publish_quote(admin, quote)


def test_quote_conversion_refused_in_dutch(seller, dutch, contact, on):
    on(D(2027, 3, 10))
    quote = _published_quote(dutch, contact, billing_start_date=D(2027, 3, 15))
    on(D(2027, 3, 20))  # the quote's start date has passed: converting would back-date the subscription
    page = html(seller.post(f"/quotes/{quote.pk}/convert/", {"collection": "manual", "payment_terms": "net_15",
                                                              "to": "subscription"}))
    # no input of the form is at fault: the message heads the form, without its "field: "
    assert ('<div class="danger-note" role="alert"><p style="margin:0">De begindatum van de facturering, '
            '15 maart 2027, ligt in het verleden</p></div>') in page
    assert not Subscription.objects.exists()


def test_quote_converted_twice_is_refused_in_dutch(dutch, contact, on):
    from recur.subscriptions import conversions

    on(D(2027, 3, 10))
    quote = _published_quote(dutch, contact)
    conversions.quote_to_subscriptions(dutch, quote, {"collection": "manual"})
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        conversions.quote_to_subscriptions(dutch, quote, {"collection": "manual"})
    assert exc.value.message == "status: de offerte is al geaccepteerd en kan niet opnieuw worden omgezet"
    assert exc.value.code == "quote_converted"


# --- billing, checkout, payment links and payment methods ------------------------------------------------


@pytest.fixture
def manual_invoice(admin, contact, on):
    from recur.billing import services as billing

    on(D(2027, 3, 10))
    return billing.create_invoice(admin, contact=contact, payment_terms="net_30", items=[
        {"name": "Workshop", "unit_price": 50000, "currency": "EUR", "quantity": 2, "tax_rate": 21}])


def test_billing_errors_in_english_stay_word_for_word_and_dutch_shows_money(admin, manual_invoice):
    from recur.billing import services as billing

    for lang, text in (("en", "amount: the invoice has 121000 (minor units) left to pay"),
                       ("nl", "amount: op de factuur staat nog maar €\xa01.210,00 open")):
        with translation.override(lang), pytest.raises(ServiceError) as exc:
            billing.record_manual_payment(admin, manual_invoice, 121001)
        assert exc.value.message == text and exc.value.field == "amount" and exc.value.code == "validation_error"
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        billing.record_manual_payment(admin, manual_invoice, 100, method="wire")
    assert exc.value.message == ("method: moet een van deze waarden zijn: card, bank_account, bank_transfer, cash, "
                                 "cheque, other")
    billing.record_manual_payment(admin, manual_invoice, 121000)
    for lang, text in (("en", f"status: invoice {manual_invoice.number} is paid; only open or uncollectible invoices take payments"),
                       ("nl", f"status: factuur {manual_invoice.number} is betaald; alleen openstaande of oninbare "
                              "facturen nemen betalingen aan")):
        with translation.override(lang), pytest.raises(ServiceError) as exc:
            billing.record_manual_payment(admin, manual_invoice, 100)
        assert exc.value.message == text and exc.value.code == "invoice_not_open"


def test_the_api_refuses_a_manual_payment_above_the_amount_due_in_english(api, dutch, manual_invoice):
    r = api.post(f"/invoices/{manual_invoice.pk}/payments", {"amount": {"amount": "1210.01", "currency": "EUR"}},
                 headers={"Accept-Language": "nl"})
    assert r.status_code == 422, r.content
    assert r.json()["error"] == {"code": "validation_error", "field": "amount",
                                 "message": "amount: the invoice has 121000 (minor units) left to pay"}


def test_manual_payment_above_the_amount_due_on_the_invoice_page_in_dutch(seller, dutch, manual_invoice):
    from recur.billing.models import Payment

    page = html(seller.post(f"/invoices/{manual_invoice.pk}/", {"amount": "1300,00", "paid_on": "2027-03-10",
                                                                "method": "bank_transfer"}))
    assert '<p class="error" id="id_amount_error">Op deze factuur staat nog maar €\xa01.210,00 open.</p>' in page
    page = html(seller.post(f"/invoices/{manual_invoice.pk}/", {"amount": "10,00", "paid_on": "2027-03-11",
                                                                "method": "cash"}))
    assert 'id="id_paid_on_error">Mag niet in de toekomst liggen</p>' in page
    manual_invoice.refresh_from_db()
    assert manual_invoice.amount_paid == 0 and not Payment.objects.exists()


def test_refund_above_what_is_left_in_dutch(seller, dutch, make_sub, on, monkeypatch):
    from types import SimpleNamespace

    from recur.billing import services as billing
    from recur.billing.models import Payment, Refund
    from recur.web.views import refunds as views  # the refund page (shared by subscription and invoice)

    on(D(2027, 3, 1))
    sub = make_sub(start="2027-03-01")
    p = Payment.objects.get(subscription=sub)
    url = f"/subscriptions/{sub.pk}/payments/{p.pk}/refund/"
    # the page's own check
    page = html(seller.post(url, {"amount": "60,00"}))
    assert 'id="id_amount_error">Van deze betaling kan nog hoogstens €\xa049,00 worden terugbetaald.</p>' in page
    # a refund made meanwhile (the page saw €49.00 left): the service refuses, in Dutch, beside the amount
    billing.refund_payment(dutch, p, 4000)
    monkeypatch.setattr(views, "billing", SimpleNamespace(refundable=lambda payment: 4900,
                                                          refund_payment=billing.refund_payment))
    page = html(seller.post(url, {"amount": "20,00"}))
    assert 'id="id_amount_error">Van deze betaling kan nog hoogstens €\xa09,00 worden terugbetaald</p>' in page
    assert Refund.objects.count() == 1
    with translation.override("en"), pytest.raises(ServiceError) as exc:
        billing.refund_payment(dutch, p, 901)
    assert exc.value.message == "amount: at most 900 (minor units) of this payment can still be refunded"


def test_payment_method_errors_in_dutch(admin, contact):
    from recur.payments import services as payments

    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        payments.add_payment_method(admin, contact, {"type": "card"})
    assert exc.value.message == "card: de kaartgegevens zijn verplicht" and exc.value.field == "card"
    with translation.override("nl"), pytest.raises(ServiceError) as exc:
        payments.get_payment_method(contact, 999)
    assert exc.value.message == f"Contactpersoon {contact.pk} heeft geen betaalmethode met id 999"
    assert exc.value.code == "not_found"


def test_hosted_checkout_form_of_another_page_in_dutch(admin):
    """The buyer's pages show a checkout error in the buyer's language (?lang=nl), without its field."""
    from django.test import Client

    from recur.checkout import payment_links as pl
    from recur.checkout.models import CheckoutSession
    from tests.checkout.conftest import card_form
    from tests.checkout.test_payment_links_pages import buyer, make_link, nonce_of

    first, other = make_link(admin), make_link(admin)
    c = Client()
    page = c.get(f"/billing/pay/{first.token}/").content.decode()
    assert c.post(f"/billing/pay/{first.token}/", {**buyer(), **card_form(), "nonce": nonce_of(page)}).status_code == 302
    # the same form's nonce posted to another link's page
    r = c.post(f"/billing/pay/{other.token}/?lang=nl", {**buyer(), **card_form(), "nonce": nonce_of(page)})
    page = html(r)
    assert "Dit formulier hoort bij een andere pagina" in page and "nonce:" not in page
    assert CheckoutSession.objects.count() == 1 and pl.CheckoutAttempt.objects.count() == 1


def test_hosted_checkout_address_refused_by_the_service_in_dutch(admin, monkeypatch):
    """The page recognises "required" by the service's own message in the buyer's language, not by an English
    word: the Dutch message of a missing address field shows as the form's "Dit veld is verplicht."."""
    from django.test import Client

    from recur.checkout import pay_views
    from recur.checkout.models import CheckoutSession
    from tests.checkout.conftest import card_form
    from tests.checkout.test_payment_links_pages import buyer, make_link, nonce_of

    link = make_link(admin, collect_billing_address=True)
    real = pay_views.BuyerForm.buyer

    def without_city(self, language):
        out = real(self, language)
        out["billing_address"]["city"] = ""  # the page's own check let it through; the service refuses it
        return out

    monkeypatch.setattr(pay_views.BuyerForm, "buyer", without_city)
    c = Client()
    page = c.get(f"/billing/pay/{link.token}/?lang=nl").content.decode()
    address = {"billing_address_line1": "Oudegracht 1", "billing_postal_code": "3511 AA", "billing_city": "Utrecht",
               "billing_country": "NL"}
    page = html(c.post(f"/billing/pay/{link.token}/?lang=nl",
                       {**buyer(), **address, **card_form(), "nonce": nonce_of(page)}))
    assert '<p class="error" id="id_billing_city-error">Dit veld is verplicht.</p>' in page
    assert not CheckoutSession.objects.filter(status="completed").exists()


def test_card_expired_by_the_processor_is_recognised_in_any_language(on):
    """The card form maps the processor's "expired" by the field and the date typed, not by an English word."""
    from recur.checkout.forms import PaymentDetailsForm
    from recur.core.errors import ValidationFailed

    on(D(2027, 3, 1))
    data = {"method": "card", "card_number": "4242424242424242", "card_exp_month": "02", "card_exp_year": "2027",
            "card_cvc": "123", "card_name": "Anna"}
    with translation.override("nl"):
        form = PaymentDetailsForm(data, accepted=["card"])
        assert not form.is_valid()
        form.add_service_error(ValidationFailed("card.exp_month: de kaart is verlopen", field="card.exp_month"))
        assert form.errors["card_exp_month"] == ["Deze kaart is verlopen.", "Deze kaart is verlopen."]
        form = PaymentDetailsForm({**data, "card_exp_month": "12"}, accepted=["card"])
        assert form.is_valid()
        form.add_service_error(ValidationFailed("card.exp_month: moet tussen 1 en 12 liggen", field="card.exp_month"))
        assert form.errors["card_exp_month"] == ["Vul de vervaldatum in."]
