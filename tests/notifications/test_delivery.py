"""Delivery through a real SMTP server (aiosmtpd): nothing lost, nothing sent twice (R-BILL-2, R-ALL-3, R-ALL-5)."""

from __future__ import annotations

import datetime as dt
import threading
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from recur.core import clock, worker
from recur.notifications import services
from recur.notifications.models import OutboxMessage
from tests.notifications.conftest import T0, SmtpServer, free_port, receipt

pytestmark = pytest.mark.django_db
MIN = dt.timedelta(minutes=1)


def deliver(url: str, at: dt.datetime, limit: int = 100) -> int:
    with override_settings(EMAIL_URL=url), clock.freeze(at):
        return services.deliver_due(limit)


def test_sends_the_message_with_its_headers_and_marks_it_sent(smtp):
    services.update_account_settings(sender_name="Acme BV", sender_email="billing@acme.test")
    with clock.freeze(T0):
        row = receipt(to_name="Zoë de Vries")
    assert deliver(smtp.url, T0 + dt.timedelta(seconds=5)) == 1

    [envelope] = smtp.envelopes
    assert envelope.mail_from == "billing@acme.test" and envelope.rcpt_tos == ["anna@example.nl"]
    [msg] = smtp.messages()
    assert msg["From"] == "Acme BV <billing@acme.test>"
    assert msg["To"] == "Zoë de Vries <anna@example.nl>"
    assert msg["Subject"] == "Receipt for your payment to Acme BV"
    assert msg["Message-ID"] == row.message_id
    assert msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Hello Zoë de Vries," in text and "Amount paid: €49.00" in text
    assert "Period: March 1, 2027 – April 1, 2027" in text and "Visa •••• 4242" in text
    assert "<title>Receipt for your payment to Acme BV</title>" in html and "€49.00" in html

    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, T0 + dt.timedelta(seconds=5), "")
    assert deliver(smtp.url, T0 + MIN) == 0 and len(smtp.envelopes) == 1


def test_english_and_dutch_versions_differ_and_read_well(smtp):
    receipt("en@example.com", language="en")
    receipt("nl@example.com", language="nl")
    assert deliver(smtp.url, clock.now()) == 2
    by_to = {m["To"].addresses[0].addr_spec: m for m in smtp.messages()}
    en, nl = by_to["en@example.com"], by_to["nl@example.com"]
    assert en["Subject"] == "Receipt for your payment to Recur"
    assert nl["Subject"] == "Betalingsbewijs van je betaling aan Recur"
    nl_text = nl.get_body(("plain",)).get_content()
    assert "Beste Anna de Vries," in nl_text
    assert "We hebben je betaling van €\xa049,00 voor Support plan ontvangen." in nl_text
    assert "Betaaldatum: 1 maart 2027" in nl_text and "Betaalmethode: Visa •••• 4242" in nl_text
    assert 'lang="nl"' in nl.get_body(("html",)).get_content()
    assert "Amount" not in nl_text and "maart" not in en.get_body(("plain",)).get_content()


def test_attachment_is_sent(smtp, tmp_path):
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(b"%PDF-1.7 fake invoice")
    services.queue_email("invoice_issued", "anna@example.nl", context={
        "invoice_number": "2027-000123", "total": services.money(12345, "EUR"), "issue_date": "2027-03-01",
        "due_date": "2027-03-31", "pay_url": "https://pay.example/i/abc",
        "attachments": [{"filename": "invoice-2027-000123.pdf", "path": str(pdf), "mimetype": "application/pdf"}],
    })
    assert deliver(smtp.url, clock.now()) == 1
    [msg] = smtp.messages()
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == "invoice-2027-000123.pdf" and part.get_content_type() == "application/pdf"
    assert part.get_content() == b"%PDF-1.7 fake invoice"
    assert msg["Subject"] == "Invoice 2027-000123 from Recur"
    assert "https://pay.example/i/abc" in msg.get_body(("html",)).get_content()


def test_server_down_keeps_messages_queued_with_backoff_then_delivers_each_once():
    port = free_port()  # nothing listens here yet
    url = f"smtp://127.0.0.1:{port}"
    with clock.freeze(T0):
        rows = [receipt(f"c{i}@example.com") for i in range(3)]

    assert deliver(url, T0) == 0
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.attempts, row.next_attempt_at) == ("queued", 1, T0 + MIN)
        assert "Connection refused" in row.last_error or "ConnectionRefused" in row.last_error
    assert deliver(url, T0 + MIN / 2) == 0  # not due yet: not even tried
    assert OutboxMessage.objects.get(pk=rows[0].pk).attempts == 1
    assert deliver(url, T0 + MIN) == 0
    assert OutboxMessage.objects.get(pk=rows[0].pk).next_attempt_at == T0 + 3 * MIN  # then 2 minutes

    server = SmtpServer(port).start()
    try:
        assert deliver(url, T0 + 3 * MIN) == 3
        assert deliver(url, T0 + 60 * MIN) == 0
        assert sorted(e.rcpt_tos[0] for e in server.envelopes) == ["c0@example.com", "c1@example.com", "c2@example.com"]
        assert len({m["Message-ID"] for m in server.messages()}) == 3
    finally:
        server.stop()
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("sent", 3)}


def test_backoff_doubles_up_to_an_hour_and_gives_up_after_max_attempts():
    assert [services.backoff(n) // MIN for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    url = f"smtp://127.0.0.1:{free_port()}"
    with clock.freeze(T0):
        row = receipt()
    OutboxMessage.objects.filter(pk=row.pk).update(attempts=services.MAX_ATTEMPTS - 1)
    assert deliver(url, T0) == 0
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", services.MAX_ATTEMPTS) and row.last_error
    assert deliver(url, T0 + 24 * 60 * MIN) == 0
    assert OutboxMessage.objects.get(pk=row.pk).attempts == services.MAX_ATTEMPTS  # failed rows are left alone
    with clock.freeze(T0 + 2 * MIN):
        services.requeue(row)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == ("queued", 0, T0 + 2 * MIN)


def test_a_refused_recipient_fails_at_once_and_does_not_stop_the_others(smtp):
    receipt("first@example.com")
    bounce = receipt("bounce@example.com")
    receipt("last@example.com")
    assert deliver(smtp.url, clock.now()) == 2
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["first@example.com", "last@example.com"]
    bounce.refresh_from_db()
    assert bounce.status == "failed" and bounce.attempts == 1 and "550" in bounce.last_error


def test_crash_between_claim_and_send_is_delivered_once_after_the_claim_expires(smtp):
    with clock.freeze(T0):
        row = receipt()
        services._claim(10)  # the worker claimed it, then died before sending
    row.refresh_from_db()
    assert row.status == "sending"
    assert deliver(smtp.url, T0 + 9 * MIN) == 0 and not smtp.envelopes  # another worker may still be on it
    assert deliver(smtp.url, T0 + 10 * MIN) == 1
    assert deliver(smtp.url, T0 + 30 * MIN) == 0
    assert len(smtp.envelopes) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)


def test_crash_after_the_server_accepted_resends_with_the_same_message_id(smtp):
    """The documented limit: SMTP has no idempotency, so receivers dedupe by Message-ID."""
    with clock.freeze(T0):
        row = receipt()
    with mock.patch.object(services, "_mark_sent", side_effect=RuntimeError("worker killed")):
        with pytest.raises(RuntimeError):
            deliver(smtp.url, T0)
    assert deliver(smtp.url, T0 + 10 * MIN) == 1
    assert [m["Message-ID"] for m in smtp.messages()] == [row.message_id, row.message_id]


def test_outbox_only_mode_keeps_messages_without_smtp(smtp):
    with clock.freeze(T0):
        rows = [receipt(f"c{i}@example.com") for i in range(3)]
    assert deliver("", T0, limit=2) == 2
    assert deliver("", T0) == 1
    assert deliver("", T0) == 0
    assert not smtp.envelopes
    assert set(OutboxMessage.objects.values_list("status", "sent_at")) == {("kept", None)}
    assert len(rows) == 3


def test_credentials_from_email_url_are_used(admin):
    server = SmtpServer(free_port(), auth=True).start()
    try:
        receipt()
        assert deliver(f"smtp://mail%40acme.test:s3cr%3At@127.0.0.1:{server.port}", clock.now()) == 1
        assert server.handler.logins == [("mail@acme.test", "s3cr:t")]
    finally:
        server.stop()


@pytest.mark.parametrize("url, expected", [
    ("smtp://u:p@mail.example:2525", ("mail.example", 2525, "u", "p", False, False)),
    ("smtp://mail.example?starttls=1", ("mail.example", 587, "", "", True, False)),
    ("smtp+tls://mail.example", ("mail.example", 587, "", "", True, False)),
    ("smtp+ssl://mail.example", ("mail.example", 465, "", "", False, True)),
    ("smtps://mail.example:2465", ("mail.example", 2465, "", "", False, True)),
])
def test_email_url_parsing(url, expected):
    c = services.smtp_config(url)
    assert (c.host, c.port, c.username, c.password, c.use_tls, c.use_ssl) == expected and c.timeout == 10


def test_email_url_errors_and_outbox_only():
    assert services.smtp_config("") is None
    with override_settings(EMAIL_URL=""):
        assert services.smtp_config() is None
    with pytest.raises(ImproperlyConfigured):
        services.smtp_config("http://mail.example")


def test_without_smtp_messages_are_kept_in_the_outbox_not_marked_sent():
    """R-ALL-5: with no EMAIL_URL the outbox is where e-mails end up; they are "kept", never "sent",
    so nobody believes a customer got one. Configured later, the server does not get the backlog."""
    with clock.freeze(T0):
        row = receipt()
    assert deliver("", T0 + MIN) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("kept", 0, None, "")
    assert row.get_status_display() == "Kept in outbox"
    assert deliver("", T0 + 2 * MIN) == 0


def test_a_kept_message_is_sent_once_asked_again_with_smtp(smtp):
    with clock.freeze(T0):
        row = receipt()
    deliver("", T0 + MIN)
    assert deliver(smtp.url, T0 + 2 * MIN) == 0 and not smtp.envelopes  # no backlog
    with clock.freeze(T0 + 3 * MIN):
        services.requeue(row)
    assert deliver(smtp.url, T0 + 4 * MIN) == 1 and len(smtp.envelopes) == 1
    row.refresh_from_db()
    assert row.status == "sent"


def test_runs_as_a_worker_job():
    receipt()
    with override_settings(EMAIL_URL="", RECUR_WORKER_JOBS=["recur.notifications.services.deliver_due"]):
        assert worker.run_once() == {"recur.notifications.services.deliver_due": 1}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="parallel workers need PostgreSQL row locks")
def test_parallel_workers_send_each_message_once(smtp):
    for i in range(60):
        receipt(f"c{i}@example.com")
    errors = []

    def work():
        try:
            with override_settings(EMAIL_URL=smtp.url):
                while services.deliver_due(limit=5):
                    pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == sorted(f"c{i}@example.com" for i in range(60))
    assert OutboxMessage.objects.filter(status="sent").count() == 60
