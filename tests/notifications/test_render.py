"""Every e-mail kind renders in English and Dutch, with amounts and dates in the recipient's locale (R-ALL-3)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.utils import translation

from recur.notifications import services
from recur.notifications.models import KINDS, AccountSettings, OutboxMessage

pytestmark = pytest.mark.django_db  # dates are shown in the account's time zone, a setting in the database
EUR = services.money
CARD = {"type": "card", "brand": "mastercard", "last4": "5454"}
SAMPLES = {
    "payment_receipt": {"subscription_name": "Support plan", "amount": EUR(4900, "EUR"), "paid_on": "2027-03-01",
                        "period_start": "2027-03-01", "period_end": "2027-04-01", "payment_method": CARD,
                        "reference": "PAY-42"},
    "seller_receipt": {"subscription_name": "Support plan", "customer_name": "Anna de Vries",
                       "customer_email": "anna@example.nl", "amount": EUR(4900, "EUR"), "paid_on": "2027-03-01",
                       "payment_method": {"type": "bank_account", "last4": "6789"}, "url": "https://app/s/1"},
    "invoice_issued": {"invoice_number": "2027-000123", "total": EUR(123456, "EUR"), "issue_date": "2027-03-01",
                       "due_date": None, "pay_url": "https://pay/i/1", "subscription_name": "Support plan"},
    "payment_reminder": {"subscription_name": "Support plan", "amount": EUR(4900, "EUR"), "payment_date": "2027-03-15",
                         "payment_method": CARD, "update_url": "https://pay/u/1"},
    "payment_failed": {"subscription_name": "Support plan", "amount": EUR(4900, "EUR"), "failed_on": "2027-03-01",
                       "update_url": "https://pay/u/1", "reason": "Insufficient funds", "next_retry_on": "2027-03-04"},
    "admin_payment_succeeded": {"subscription_name": "Support plan", "customer_name": "Anna de Vries",
                                "amount": EUR(4900, "EUR"), "paid_on": "2027-03-01T23:30:00+00:00", "url": "https://a"},
    "admin_payment_failed": {"subscription_name": "Support plan", "customer_name": "Anna de Vries",
                             "amount": EUR(4900, "EUR"), "failed_on": "2027-03-01", "reason": "Card declined"},
    "admin_payment_to_refund": {"customer_name": "Anna de Vries", "amount": EUR(4900, "EUR"),
                                "invoice_number": "2027-000001", "invoice_status": "void", "paid_on": "2027-03-04",
                                "subscription_name": "Support plan", "payment_method": CARD,
                                "url": "https://app/invoices/1/"},
    "subscription_canceled": {"subscription_name": "Support plan", "mode": "refund_unused",
                              "canceled_on": "2027-03-10", "refund": EUR(3161, "EUR")},
    "export_ready": {"download_url": "https://app/exports/1/download?sig=abc", "expires_on": "2027-03-31",
                     "file_name": "subscriptions.xlsx", "row_count": 1250},
}


def render(kind, language, context=None, **kw):
    m = OutboxMessage(kind=kind, to_email="anna@example.nl", to_name="Anna de Vries", language=language,
                      context=context or SAMPLES[kind], **kw)
    return services.render(m, account=AccountSettings(sender_name="Acme BV"))


def test_samples_cover_every_kind_and_its_context_keys():
    assert set(SAMPLES) == set(KINDS) == set(services.CONTEXT_KEYS)
    for kind, (required, optional) in services.CONTEXT_KEYS.items():
        assert required <= SAMPLES[kind].keys() <= required | optional | {"attachments"}, kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_in_english_and_dutch(kind):
    en, nl = render(kind, "en"), render(kind, "nl")
    for subject, text, html in (en, nl):
        assert subject and "\n" not in subject and "{" not in subject
        assert "{{" not in text + html and "%(" not in text + html
        assert text.startswith(("Hello Anna de Vries,", "Beste Anna de Vries,"))
        assert "Acme BV" in text and "<title>" in html and html.count("<html") == 1
    assert en[0] != nl[0] and en[1] != nl[1]
    if kind != "export_ready":  # amounts: "€49.00" in English, "€ 49,00" in Dutch
        assert re.search(r"€[0-9]", en[1]) and re.search(r"€\xa0[0-9]", nl[1])
    assert "2027" in en[1] and "2027" in nl[1]


def test_dates_and_amounts_follow_the_language():
    text_en, text_nl = render("payment_failed", "en")[1], render("payment_failed", "nl")[1]
    assert "On March 1, 2027 we tried to collect €49.00 for Support plan" in text_en
    assert "Op 1 maart 2027 hebben we geprobeerd €\xa049,00 voor Support plan te innen" in text_nl
    assert "Next attempt: March 4, 2027" in text_en and "Volgende poging: 4 maart 2027" in text_nl
    # a datetime is shown as the date in the account's time zone (Amsterdam: already 2 March)
    assert "Date paid: March 2, 2027" in render("admin_payment_succeeded", "en")[1]
    assert "Mastercard •••• 5454" in render("payment_receipt", "en")[1]
    assert "Bankrekening •••• 6789" in render("seller_receipt", "nl")[1]
    assert "1.234,56" in render("invoice_issued", "nl")[1] and "Bij ontvangst" in render("invoice_issued", "nl")[1]
    assert "¥1,200" in render("payment_reminder", "en", {**SAMPLES["payment_reminder"], "amount": EUR(1200, "JPY")})[1]


def test_cancellation_modes():
    base = SAMPLES["subscription_canceled"]
    text = render("subscription_canceled", "en", {**base, "mode": "end_of_period", "refund": None,
                                                  "ends_on": "2027-04-01"})[1]
    assert "has been canceled and ends on April 1, 2027" in text and "refund" not in text.lower()
    text = render("subscription_canceled", "nl")[1]
    assert "is op 10 maart 2027 opgezegd" in text and "We betalen €\xa031,61 terug" in text
    assert "Terugbetaling: €\xa031,61" in text


def test_cancellation_of_invoiced_subscription_says_what_stays_due():
    context = {**SAMPLES["subscription_canceled"], "mode": "immediately", "refund": None, "open_due": EUR(4900, "EUR")}
    subject, text, html = render("subscription_canceled", "en", context)
    assert "Invoices issued before the cancellation stay due: €49.00 is still open." in text
    assert "€49.00 is still open" in html
    text = render("subscription_canceled", "nl", context)[1]
    assert "Facturen van voor de opzegging blijven staan: er staat nog €\xa049,00 open." in text
    assert "still open" not in render("subscription_canceled", "en", SAMPLES["subscription_canceled"])[1]


def test_a_failed_payment_gives_its_reason_in_the_buyers_language():
    """The processor words its refusal in English; a known failure code is told in the e-mail's language,
    an unknown one keeps the processor's words."""
    context = {**SAMPLES["payment_failed"], "reason": "Your card was declined.", "reason_code": "card_declined"}
    assert "Reden: Je kaart is geweigerd." in render("payment_failed", "nl", context)[1]
    assert "Reason: Your card was declined." in render("payment_failed", "en", context)[1]
    _, text, html = render("payment_failed", "nl", {**context, "reason": "Do not honor", "reason_code": "do_not_honor"})
    assert "Reden: Do not honor" in text and "Do not honor" in html
    assert "Reden: Insufficient funds" in render("payment_failed", "nl")[1]  # no code: as it was given


def test_the_reason_follows_the_payment_method():
    """Insufficient funds on a bank debit is about the bank account, not a card; the seller's copy
    does not speak to the buyer ("your card")."""
    bank = {"type": "bank_account", "brand": "", "last4": "6789"}
    for kind in ("payment_failed", "admin_payment_failed"):
        context = {**SAMPLES[kind], "reason": "Your card has insufficient funds.", "reason_code": "insufficient_funds"}
        card_en, card_nl = render(kind, "en", context)[1], render(kind, "nl", context)[1]
        bank_en, bank_nl = (render(kind, lang, {**context, "payment_method": bank})[1] for lang in ("en", "nl"))
        assert "Reason: There is not enough money on the bank account." in bank_en
        assert "Reden: Er staat niet genoeg geld op de bankrekening." in bank_nl
        if kind == "payment_failed":
            assert "Reason: Your card has insufficient funds." in card_en
            assert "Reden: Het saldo op je kaart is onvoldoende." in card_nl
        else:
            assert "Reason: The card has insufficient funds." in card_en
            assert "Reden: Het saldo op de kaart is onvoldoende." in card_nl
    context = {**SAMPLES["admin_payment_failed"], "reason": "Your card was declined.", "reason_code": "card_declined"}
    assert "Reason: The card was declined." in render("admin_payment_failed", "en", context)[1]
    # a debit reported with a card's code (Stripe's default) is still about the bank account
    for kind in ("payment_failed", "admin_payment_failed"):
        text = render(kind, "en", {**context, "payment_method": bank})[1]
        assert "Reason: The bank account could not be debited." in text
    assert "Reden: De kaart is geweigerd." in render("admin_payment_failed", "nl", context)[1]


def test_html_escapes_names_and_the_text_version_does_not():
    context = {**SAMPLES["admin_payment_failed"], "customer_name": "<script>alert(1)</script> & O'Brien"}
    subject, text, html = render("admin_payment_failed", "en", context)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script> & O'Brien" in text
    assert subject.endswith("from <script>alert(1)</script> & O'Brien")


def test_reading_the_text_version():
    subject, text, _ = render("payment_reminder", "nl")
    assert subject == "Je volgende betaling voor Support plan op 15 maart 2027"
    assert text == (
        "Beste Anna de Vries,\n\n"
        "Je volgende betaling van €\xa049,00 voor Support plan staat gepland op 15 maart 2027.\n\n"
        "Abonnement: Support plan\nBedrag: €\xa049,00\nBetaaldatum: 15 maart 2027\n"
        "Betaalmethode: Mastercard •••• 5454\n\n"
        "Betaalmethode bijwerken: https://pay/u/1\n\n"
        "Als je betaalgegevens nog kloppen, hoef je niets te doen.\n\n"
        "-- \nDeze e-mail is verstuurd door Acme BV. Vragen? Beantwoord deze e-mail gewoon.\n"
    )


def test_every_message_of_the_templates_has_a_dutch_translation():
    """nl_messages.json lists each msgid; the compiled catalogue must hold them (merged into django.po)."""
    app = Path(services.__file__).parent
    catalogue = json.loads((app / "nl_messages.json").read_text())
    used = set()
    for path in (app / "templates" / "notifications").iterdir():
        source = path.read_text()
        used |= set(re.findall(r'\{% translate "([^"]+)"', source)) | set(re.findall(r'_\("([^"]+)"\)', source))
        for block in re.findall(r"\{% blocktranslate[^%]*%\}(.*?)\{% endblocktranslate %\}", source, re.S):
            used.add(re.sub(r"\{\{ (\w+) \}\}", r"%(\1)s", block))
    assert used <= catalogue.keys(), used - catalogue.keys()
    with translation.override("nl"):
        untranslated = {m for m in catalogue if translation.gettext(m) != catalogue[m]}
    assert not untranslated
