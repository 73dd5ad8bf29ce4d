"""Seller pages: the outbox, each message as the recipient sees it, e-mail settings (R-ALL-5, R-BILL-3, R-BILL-4)."""

from __future__ import annotations

import html

import pytest
from django.test import Client, override_settings

from recur.core.auth import create_user
from recur.notifications import services
from recur.notifications.models import AccountSettings, OutboxMessage
from tests.notifications.conftest import receipt

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.notifications.urls")]


@pytest.fixture
def seller(admin):
    c = Client()
    c.force_login(admin)
    return c


def test_pages_need_a_login(admin):
    for url in ("/notifications/outbox/", "/notifications/outbox/1/", "/notifications/settings/"):
        assert Client().get(url)["Location"].startswith("/login/")


def test_outbox_lists_messages_with_filters_and_pages(seller):
    first = receipt("first@example.com")
    for i in range(55):
        receipt(f"c{i}@example.com")
    OutboxMessage.objects.filter(pk=first.pk).update(status="failed")
    with override_settings(EMAIL_URL=""):
        page = seller.get("/notifications/outbox/").content.decode()
    assert "E-mail outbox" in page and "No SMTP server is configured" in page
    assert "c54@example.com" in page and "first@example.com" not in page and "Next page" in page
    nxt = page.split('before=')[1].split('"')[0]
    assert "first@example.com" in seller.get(f"/notifications/outbox/?before={nxt}").content.decode()
    failed = seller.get("/notifications/outbox/?status=failed").content.decode()
    assert "first@example.com" in failed and "c1@example.com" not in failed and "badge red" in failed
    with override_settings(EMAIL_URL="smtp://user:secret@mail.example:2525"):
        page = seller.get("/notifications/outbox/?kind=payment_receipt").content.decode()
    assert "mail.example:2525" in page and "secret" not in page


def test_preview_shows_the_html_in_a_sandboxed_frame_and_the_text(seller):
    m = receipt(language="nl")
    page = seller.get(f"/notifications/outbox/{m.pk}/").content.decode()
    assert 'sandbox=""' in page and "srcdoc=" in page
    srcdoc = html.unescape(page.split('srcdoc="')[1].split('"')[0])
    assert srcdoc.startswith("<!doctype html>") and "Bedankt voor je betaling" in srcdoc
    assert "Betaald bedrag: €\xa049,00" in page  # the text version
    assert "Betalingsbewijs van je betaling aan Recur" in page and html.escape(m.message_id) in page
    assert seller.get("/notifications/outbox/999999/").status_code == 404


def test_kept_messages_say_so_and_can_be_sent(seller):
    m = receipt()
    with override_settings(EMAIL_URL=""):
        services.deliver_due()
        page = seller.get("/notifications/outbox/").content.decode()
        assert 'class="badge blue">Kept in outbox<' in page and 'class="badge green">Sent<' not in page
        assert "Kept in outbox" in seller.get("/notifications/outbox/?status=kept").content.decode()
        page = seller.get(f"/notifications/outbox/{m.pk}/").content.decode()
    assert "Kept in outbox" in page and "Send again now" in page
    seller.post(f"/notifications/outbox/{m.pk}/retry/")
    m.refresh_from_db()
    assert (m.status, m.attempts) == ("queued", 0)


def test_a_failed_message_can_be_sent_again(seller):
    m = receipt()
    OutboxMessage.objects.filter(pk=m.pk).update(status="failed", attempts=20, last_error="SMTPException: boom")
    page = seller.get(f"/notifications/outbox/{m.pk}/").content.decode()
    assert "SMTPException: boom" in page and "Send again now" in page
    assert seller.get(f"/notifications/outbox/{m.pk}/retry/").status_code == 405
    r = seller.post(f"/notifications/outbox/{m.pk}/retry/")
    assert r.status_code == 302
    m.refresh_from_db()
    assert (m.status, m.attempts) == ("queued", 0)


def test_each_user_switches_admin_e_mails_and_super_admins_edit_the_account(seller, admin):
    page = seller.get("/notifications/settings/").content.decode()
    assert "Subscription payment failed" in page and "Account e-mails" in page
    seller.post("/notifications/settings/", {"form": "user", "seller_receipt": "on", "admin_payment_failed": "on"})
    assert services.user_kinds(admin) == {
        "seller_receipt": True, "admin_payment_succeeded": False, "admin_payment_failed": True,
        "admin_payment_to_refund": False}

    r = seller.post("/notifications/settings/", {"form": "account", "reminder_enabled": "on", "reminder_days": "0",
                                                 "sender_name": "Acme BV"})
    assert r.status_code == 200 and not AccountSettings.objects.exists()
    r = seller.post("/notifications/settings/", {
        "form": "account", "reminder_enabled": "on", "reminder_days": "7", "sender_name": "Acme BV",
        "sender_email": "billing@acme.test", "buyer_emails_enabled": ["payment_receipt", "payment_failed"]})
    assert r.status_code == 302
    account = AccountSettings.objects.get()
    assert (account.reminder_enabled, account.reminder_days, account.sender_name) == (True, 7, "Acme BV")
    assert account.buyer_emails_enabled == ["payment_receipt", "payment_failed"]

    user = create_user("user@example.com", "correct-horse-9")
    c = Client()
    c.force_login(user)
    assert "Account e-mails" not in c.get("/notifications/settings/").content.decode()
    assert c.post("/notifications/settings/", {"form": "account", "reminder_days": "3"}).status_code == 403


def test_pages_in_dutch(seller, admin):
    admin.language = "nl"
    admin.save()
    receipt()
    page = seller.get("/notifications/outbox/").content.decode()
    assert "E-mail-outbox" in page and "In de wachtrij" in page and "Betalingsbewijs" in page
    assert "Mijn meldingen" in seller.get("/notifications/settings/").content.decode()
