"""The Settings page: super admins edit the account's settings section by section; other users read them;
bad input gets an error beside its field in English and Dutch, and nothing changes (issue #7)."""

import datetime as dt
import html as htmllib
import re

import pytest
from django.test import Client

from recur.core import account, clock
from recur.core.auth import create_user
from recur.core.models import AccountSettings

pytestmark = pytest.mark.django_db


def page_of(r) -> str:
    assert r.status_code == 200, (r.status_code, r.get("Location"))
    return htmllib.unescape(r.content.decode())


def error_of(page: str, field: str) -> str:
    """The error shown beside a field (its <p class="error">), or ""."""
    m = re.search(rf'<p class="error" id="id_{field}_error">([^<]+)</p>', page)
    return m.group(1) if m else ""


@pytest.fixture
def dutch(admin):
    admin.language = "nl"
    admin.save()
    return admin


def test_super_admin_edits_every_section(seller, admin):
    page = page_of(seller.get("/settings/"))
    assert "Not changed yet: the installation's defaults apply." in page
    assert 'value="Europe/Amsterdam"' in page and 'value="3, 5, 7"' in page
    assert "Now: retries 3, 8, 15 days after the first failed payment." in page
    assert "Then the subscription stays unpaid (past due)." in page

    r = seller.post("/settings/", {"section": "timezone", "time_zone": " America/New_York "})
    assert r.status_code == 302 and r["Location"] == "/settings/#timezone"
    r = seller.post("/settings/", {"section": "dunning", "dunning_retry_days": "2, 4,6",
                                   "dunning_final_action": "cancel"})
    assert r.status_code == 302 and r["Location"] == "/settings/#dunning"
    r = seller.post("/settings/", {"section": "payments", "default_payment_methods": ["bank_account"]})
    assert r.status_code == 302  # the checkbox "associate billing contacts" left unticked: off
    r = seller.post("/settings/", {"section": "reminders", "reminder_enabled": "on", "reminder_days": "5"})
    assert r.status_code == 302

    now = account.current()
    assert now.time_zone == "America/New_York" and clock.account_zone().key == "America/New_York"
    assert now.dunning_retry_days == (2, 4, 6) and now.dunning_final_action == "cancel"
    assert now.default_payment_methods == ("bank_account",) and now.associate_billing_contacts is False
    assert now.reminder_enabled and now.reminder_days == 5

    page = page_of(seller.get("/settings/"))
    assert "Reminder settings saved." in page
    assert re.search(r"Last changed on [^<]+ by Ada Admin\.", page)
    assert 'value="2, 4, 6"' in page and "Now: retries 2, 6, 12 days after the first failed payment." in page
    assert "Then the subscription is canceled." in page
    history = page[page.index('data-testid="settings-history"'):]
    for line in ("Time zone: Europe/Amsterdam → America/New_York", "Retry schedule: 3, 5, 7 → 2, 4, 6",
                 "After the last retry: Leave it unpaid (past due) → Cancel the subscription",
                 "Accepted payment methods: Card, Bank debit → Bank debit",
                 "Associate billing contacts: on → off", "Send payment reminders: off → on"):
        assert line in history, line
    assert history.count("by Ada Admin") == 4


@pytest.mark.parametrize("data, field, message", [
    ({"section": "timezone", "time_zone": "Mars/Olympus_Mons"}, "time_zone",
     "“Mars/Olympus_Mons” is not a known time zone; use a name such as Europe/Amsterdam or America/New_York."),
    ({"section": "timezone", "time_zone": ""}, "time_zone", "Choose the account's time zone, such as Europe/Amsterdam."),
    ({"section": "dunning", "dunning_retry_days": "3, five", "dunning_final_action": "cancel"}, "dunning_retry_days",
     "“five” is not a whole number of days."),
    ({"section": "dunning", "dunning_retry_days": "3, 0", "dunning_final_action": "cancel"}, "dunning_retry_days",
     "Each retry must come 1 to 60 days after the failure before it; 0 is not allowed."),
    ({"section": "dunning", "dunning_retry_days": "1,2,3,4,5,6,7,8,9,10,11", "dunning_final_action": "cancel"},
     "dunning_retry_days", "At most 10 retries."),
    ({"section": "dunning", "dunning_retry_days": "3", "dunning_final_action": "refund"}, "dunning_final_action",
     "Select a valid choice. refund is not one of the available choices."),
    ({"section": "payments"}, "default_payment_methods",
     "Choose at least one payment method: card, bank debit or both."),
    ({"section": "reminders", "reminder_days": "0"}, "reminder_days",
     "Ensure this value is greater than or equal to 1."),
])
def test_bad_input_is_shown_beside_its_field_and_changes_nothing(seller, data, field, message):
    before = account.current()
    page = page_of(seller.post("/settings/", data))
    assert error_of(page, field) == message
    assert f'aria-describedby="id_{field}_error"' in page or f'id="id_{field}_error"' in page
    assert not AccountSettings.objects.exists() and account.current() == before


@pytest.mark.parametrize("data, field, message", [
    ({"section": "timezone", "time_zone": "Mars/Olympus_Mons"}, "time_zone",
     "“Mars/Olympus_Mons” is geen bekende tijdzone; gebruik een naam zoals Europe/Amsterdam of America/New_York."),
    ({"section": "dunning", "dunning_retry_days": "3,,5", "dunning_final_action": "cancel"}, "dunning_retry_days",
     "Scheid de aantallen dagen met komma’s, zoals 3, 5, 7."),
    ({"section": "dunning", "dunning_retry_days": "3, 99", "dunning_final_action": "cancel"}, "dunning_retry_days",
     "Elke nieuwe poging moet 1 tot 60 dagen na de vorige mislukking komen; 99 mag niet."),
    ({"section": "payments"}, "default_payment_methods", "Kies minstens één betaalmethode: kaart, incasso of beide."),
])
def test_bad_input_in_dutch(seller, dutch, data, field, message):
    page = page_of(seller.post("/settings/", data))
    assert error_of(page, field) == message
    assert "Instellingen" in page and not AccountSettings.objects.exists()


def test_the_page_in_dutch(seller, dutch):
    page = page_of(seller.get("/settings/"))
    for text in ("Tijdzone van het account", "Betalingen", "Mislukte betalingen", "Schema nieuwe pogingen (dagen)",
                 "Als de laatste nieuwe poging mislukt", "Onbetaald laten (achterstallig)", "Factuurcontacten koppelen",
                 "Nu: nieuwe pogingen 3, 8, 15 dagen na de eerste mislukte betaling.",
                 "Nog niet gewijzigd: de standaardwaarden van de installatie gelden.", "Recente wijzigingen",
                 "De verwerker heeft geheime sleutels nodig"):
        assert text in page, text
    r = seller.post("/settings/", {"section": "dunning", "dunning_retry_days": "4", "dunning_final_action": "cancel"})
    assert r.status_code == 302
    page = page_of(seller.get("/settings/"))
    assert "Instellingen voor mislukte betalingen opgeslagen." in page
    assert "Daarna wordt het abonnement opgezegd." in page and re.search(r"Laatst gewijzigd op [^<]+ door Ada Admin\.", page)


def test_a_user_who_is_not_a_super_admin_reads_but_cannot_change(admin):
    account.update(admin, {"dunning_retry_days": "2, 4", "associate_billing_contacts": False})
    user = create_user("bob@example.com", "correct-horse-9", name="Bob")
    c = Client()
    c.force_login(user)
    page = page_of(c.get("/settings/"))
    assert "Only super admins can change these settings." in page
    assert 'name="section"' not in page and 'name="time_zone"' not in page  # no settings form
    assert "Europe/Amsterdam" in page and "2, 4" in page and "Leave it unpaid (past due)" in page
    assert re.search(r"Associate billing contacts</dt><dd>Off", page)
    assert c.post("/settings/", {"section": "dunning", "dunning_retry_days": "1",
                                 "dunning_final_action": "cancel"}).status_code == 403
    assert account.current().dunning_retry_days == (2, 4)
    assert Client().get("/settings/").status_code == 302  # not logged in: to the login page


def test_an_unknown_section_is_refused(seller):
    assert seller.post("/settings/", {"time_zone": "UTC"}).status_code == 400


def test_the_processor_is_shown_and_explained_not_edited(seller, settings):
    page = page_of(seller.get("/settings/"))
    assert re.search(r'data-testid="processor"><strong>Built-in</strong>', page)
    assert "it is chosen where the server is started (RECUR_PROCESSOR" in page
    assert 'name="processor"' not in page
    settings.RECUR_PROCESSOR, settings.STRIPE_API_KEY, settings.STRIPE_WEBHOOK_SECRET = "stripe", "sk_test_x", ""
    page = page_of(seller.get("/settings/"))
    assert "<strong>Stripe</strong>" in page and "API key: set · webhook secret: missing" in page
    assert "sk_test_x" not in page


def test_times_on_pages_follow_the_account_time_zone(seller, admin, on):
    moment = dt.datetime(2027, 3, 1, 23, 30, tzinfo=dt.timezone.utc)
    with clock.freeze(moment):
        account.update(admin, {"reminder_days": 10})
    page = page_of(seller.get("/settings/"))
    assert '<time datetime="2027-03-02T00:30:00+01:00">' in page  # Europe/Amsterdam, the default
    with clock.freeze(moment):
        account.update(admin, {"time_zone": "America/New_York"})
    page = page_of(seller.get("/settings/"))
    assert '<time datetime="2027-03-01T18:30:00-05:00">' in page
    with clock.freeze(moment):
        page = page_of(seller.get("/settings/"))
    assert "Now in America/New_York: March 1, 2027, 6:30 p.m." in page
