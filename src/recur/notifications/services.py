"""E-mail notifications through the outbox (R-SIGN-1, R-BILL-2..6, R-MAN-2, R-EXP-7, R-ALL-3, R-ALL-5).

Queueing — ``queue_email``, ``queue_many`` and ``notify_admins`` only write
outbox rows, in the caller's transaction (DESIGN rule 4): the e-mail exists if
and only if the change that caused it was committed. Nothing is rendered or
sent there. A ``dedupe_key`` (unique) makes queueing idempotent, e.g.
``record_key("receipt", 123)``. Buyer kinds the account switched off
(``AccountSettings.buyer_emails_enabled``) are not queued.

Context — plain JSON values only (date, datetime and Decimal are converted to
strings on queueing; anything else that JSON cannot hold is refused):

- money: ``{"amount_minor": 1250, "currency": "EUR"}`` (build it with :func:`money`);
- dates ``"YYYY-MM-DD"``; datetimes ISO 8601 with offset (shown as a date in
  the account's time zone);
- ``payment_method``: ``{"type": "card" | "bank_account", "brand": "visa", "last4": "4242"}``;
- ``attachments`` (any kind): ``[{"filename", "path", "mimetype"}]``, ``path``
  absolute or relative to the default file storage; read at delivery.

The keys each kind needs are in :data:`CONTEXT_KEYS` (required, optional).
Amounts and dates are formatted with Babel in the recipient's language; texts
come from ``templates/notifications/<kind>{_subject.txt,.txt,.html}`` rendered
under ``translation.override(message.language)`` (R-ALL-3).

Delivery — ``deliver_due`` is a worker job. It claims due rows (``SELECT …
FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes writers) and marks
them ``sending`` with a 10-minute claim, sends each through Django's SMTP
backend with the stored Message-ID, then marks it ``sent``. SMTP errors put
the row back in the queue with exponential backoff (1, 2, 4 … minutes, at
most an hour); after ``MAX_ATTEMPTS`` it is ``failed``. A row left ``sending``
by a crashed worker is taken again once its claim expires. That re-sends a
message only if the crash came after the SMTP server accepted it and before
the row was marked sent (SMTP has no idempotency); such a duplicate carries
the same Message-ID, by which receivers can drop it.

Without ``EMAIL_URL`` the outbox is the delivery ("outbox only", R-ALL-5):
due rows are marked sent without SMTP and can be read on the outbox page.
``EMAIL_URL``: ``smtp://user:pass@host:port`` (plain, port 25),
``smtp+tls://`` or ``smtp://…?starttls=1`` (STARTTLS, port 587),
``smtp+ssl://`` or ``smtps://`` (implicit TLS, port 465); user and password
percent-encoded; ``?timeout=`` seconds (default 10).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import re
import smtplib
from dataclasses import dataclass
from email.utils import formataddr, format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from recur.core import account as account_store
from recur.core import clock
from recur.core.db import db_value, insert_many
from recur.core.errors import ValidationFailed
from recur.core.models import User
from recur.notifications.models import (
    ADMIN_KINDS,
    BUYER_KINDS,
    EMAIL_LANGUAGES,
    KINDS,
    AccountSettings,
    NotificationSetting,
    OutboxMessage,
)

log = logging.getLogger("recur.notifications")

MAX_ATTEMPTS = 20
CLAIM = dt.timedelta(minutes=10)
MAX_BACKOFF = dt.timedelta(hours=1)

#: kind → (required context keys, optional context keys)
CONTEXT_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "payment_receipt": ({"subscription_name", "amount", "paid_on"},
                        {"period_start", "period_end", "payment_method", "reference"}),
    "seller_receipt": ({"subscription_name", "customer_name", "amount", "paid_on"},
                       {"customer_email", "period_start", "period_end", "payment_method", "url"}),
    "invoice_issued": ({"invoice_number", "total", "issue_date"},
                       {"due_date", "pay_url", "subscription_name", "attachments"}),
    "payment_reminder": ({"subscription_name", "amount", "payment_date"}, {"payment_method", "update_url"}),
    "payment_failed": ({"subscription_name", "amount", "failed_on", "update_url"},
                       {"reason", "reason_code", "next_retry_on", "payment_method"}),
    "admin_payment_succeeded": ({"subscription_name", "customer_name", "amount", "paid_on"},
                                {"payment_method", "url"}),
    "admin_payment_failed": ({"subscription_name", "customer_name", "amount", "failed_on"},
                             {"reason", "reason_code", "next_retry_on", "url", "payment_method"}),
    "admin_payment_to_refund": ({"customer_name", "amount", "invoice_number", "invoice_status", "paid_on"},
                                {"subscription_name", "payment_method", "url", "surplus", "unpaid"}),
    "subscription_canceled": ({"subscription_name", "mode", "canceled_on"}, {"ends_on", "refund", "open_due"}),
    "export_ready": ({"download_url", "expires_on"}, {"file_name", "row_count"}),
}


def record_key(name: str, record_id: int) -> str:
    """The dedupe key of the ``name`` e-mail about one record: ``"receipt:000000000123"``.

    The id is zero-padded so that keys sort as the ids do: the unique index on the keys grows
    at its end as new records are made, instead of taking each new key on a page of its own
    ("receipt:100000" sorts before "receipt:99999"), which is what slows a large billing run."""
    return f"{name}:{record_id:012d}"


def seller_url(view: str, *args) -> str:
    """A link to one of the seller's pages (``view``'s URL name), for the admins' e-mails."""
    from django.urls import reverse

    from recur.checkout.links import base_url

    return base_url() + reverse(view, args=args)


def money(minor: int, currency: str) -> dict:
    """The context form of an amount: ``{"amount_minor": 1250, "currency": "EUR"}``."""
    return {"amount_minor": int(minor), "currency": currency}


# --- queueing ----------------------------------------------------------------

def account_settings() -> account_store.Snapshot:
    """The account's settings (recur.core.account: cached per request and worker round)."""
    return account_store.current()


def sender(account: AccountSettings) -> tuple[str, str]:
    """(display name, address) of the From header."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return account.sender_name or name or "Recur", account.sender_email or address


# One encoder for every row (json.dumps(cls=…) would build one per call: the billing run queues a million).
_JSON = DjangoJSONEncoder()


def _message_ids(domain: str) -> Iterator[str]:
    """Message-IDs for one batch: ``make_msgid``'s shape (time, process, 64 random bits) made once,
    then a counter — unique without a random draw and a clock read per message."""
    prefix = make_msgid(domain=domain).partition("@")[0]
    return (f"{prefix}.{i}@{domain}>" for i in itertools.count())


def _row(account: AccountSettings, ids: Iterator[str], now, kind: str, to_email: str, *, to_name: str = "",
         language: str = "en", context: dict, record: tuple[str, int] | None = None,
         dedupe_key: str | None = None) -> tuple | None:
    """The validated values of one outbox row in ``_COLUMNS`` order (``now`` ready for the
    database), or None when the account switched the kind off."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown e-mail kind {kind!r}; known: {', '.join(KINDS)}")
    if not to_email or "@" not in to_email:
        raise ValueError(f"to_email: {to_email!r} is not an e-mail address")
    required = CONTEXT_KEYS[kind][0]
    if not context.keys() >= required:
        raise ValueError(f"context: {kind} needs {', '.join(sorted(required - context.keys()))}")
    if kind in BUYER_KINDS and kind not in account.buyer_emails_enabled:
        return None
    return (
        kind, to_email.strip(), to_name or "", language if language in EMAIL_LANGUAGES else "en",
        _JSON.encode(context),  # JSON text; refuses what JSON cannot hold
        record[0] if record else "", record[1] if record else None, dedupe_key or None, OutboxMessage.QUEUED, 0, now,
        "", now, next(ids),
    )


def _prepare(messages: list[dict], now) -> list[tuple]:
    account = account_settings()
    domain = sender(account)[1].rpartition("@")[2] or "localhost"
    ids = _message_ids(domain)
    rows = [_row(account, ids, now, **m) for m in messages]
    return [r for r in rows if r is not None]


def queue_email(kind: str, to_email: str, *, to_name: str = "", language: str = "en", context: dict,
                record: tuple[str, int] | None = None, dedupe_key: str | None = None) -> OutboxMessage | None:
    """Queue one e-mail in the caller's transaction; None if the dedupe_key exists or the kind is off."""
    rows = _prepare([dict(kind=kind, to_email=to_email, to_name=to_name, language=language, context=context,
                          record=record, dedupe_key=dedupe_key)], clock.now())
    if not rows:
        return None
    fields = dict(zip(_COLUMNS, rows[0]))
    message = OutboxMessage(**{**fields, "context": json.loads(fields["context"])})
    try:
        with transaction.atomic():  # a savepoint: a duplicate key leaves the caller's transaction intact
            message.save(force_insert=True)
    except IntegrityError:
        if dedupe_key and OutboxMessage.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    return message


def queue_many(messages: list[dict]) -> int:
    """Queue many e-mails with one plain-SQL INSERT (the billing run's hot path); each dict holds
    queue_email's arguments by name.

    Rows whose dedupe_key exists already (or repeats in the batch) are skipped.
    Returns the number of rows written.
    """
    if not messages:
        return 0
    rows, seen = [], set()
    for row in _prepare(messages, db_value(clock.now())):
        key = row[_DEDUPE]
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        rows.append(row)
    # One statement: a row whose dedupe_key exists already is skipped (and not counted).
    return insert_many("notifications_outboxmessage", _COLUMNS, rows, ignore_conflicts_on="dedupe_key")


_COLUMNS = ("kind", "to_email", "to_name", "language", "context", "record_type", "record_id", "dedupe_key", "status",
            "attempts", "next_attempt_at", "last_error", "created_at", "message_id")
_DEDUPE = _COLUMNS.index("dedupe_key")


def admin_recipients(kind: str) -> list[User]:
    """Active super admins who have not switched ``kind`` off (R-BILL-4)."""
    off = NotificationSetting.objects.filter(kind=kind, enabled=False).values("user_id")
    return list(User.objects.filter(is_superuser=True, is_active=True).exclude(pk__in=off).order_by("pk"))


def notify_admins(kind: str, *, context: dict, record: tuple[str, int] | None = None,
                  dedupe_key: str | None = None) -> int:
    """Queue ``kind`` for every active super admin who has not switched it off (R-SIGN-1, R-BILL-4).

    Each admin's dedupe key is ``f"{dedupe_key}:user:{user.pk}"``. Returns the number queued.
    """
    admins = admin_recipients(kind)
    return queue_many([
        dict(kind=kind, to_email=u.email, to_name=u.name, language=u.language, context=context, record=record,
             dedupe_key=f"{dedupe_key}:user:{u.pk}" if dedupe_key else None)
        for u in admins
    ])


# --- settings ----------------------------------------------------------------

def user_kinds(user: User) -> dict[str, bool]:
    """The admin kinds and whether ``user`` receives them."""
    off = set(NotificationSetting.objects.filter(user=user, enabled=False).values_list("kind", flat=True))
    return {kind: kind not in off for kind in ADMIN_KINDS}


@transaction.atomic
def set_user_kind(user: User, kind: str, enabled: bool) -> None:
    if kind not in ADMIN_KINDS:
        raise ValidationFailed(_("kind: %(value)s cannot be switched per user") % {"value": repr(kind)}, field="kind")
    NotificationSetting.objects.update_or_create(user=user, kind=kind, defaults={"enabled": enabled})


def update_account_settings(actor=None, **fields) -> AccountSettings:
    """Change the account's e-mail settings (reminders, sender, buyer kinds); recur.core.account checks,
    saves and records the change."""
    for name in fields:
        if name not in account_store.EMAIL_FIELDS:
            raise ValidationFailed(_("%(field)s: not an e-mail setting") % {"field": name}, field=name)
    return account_store.update(actor, fields)


@transaction.atomic
def requeue(message: OutboxMessage) -> None:
    """Send a failed, waiting or kept (outbox-only) message again at the next worker round."""
    OutboxMessage.objects.filter(pk=message.pk, status__in=[OutboxMessage.FAILED, OutboxMessage.QUEUED,
                                                            OutboxMessage.KEPT]).update(
        status=OutboxMessage.QUEUED, attempts=0, next_attempt_at=clock.now())


# --- rendering ---------------------------------------------------------------

def render(message: OutboxMessage, *, account: AccountSettings | None = None) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of ``message`` in its language."""
    base = f"notifications/{message.kind}"
    optional = CONTEXT_KEYS.get(message.kind, (set(), set()))[1]
    ctx = {**dict.fromkeys(optional), **message.context, "to_name": message.to_name, "to_email": message.to_email,
           "sender_name": sender(account or account_settings())[0]}
    with translation.override(message.language):
        ctx["subject"] = " ".join(render_to_string(base + "_subject.txt", ctx).split())
        text = render_to_string(base + ".txt", ctx)
        html = render_to_string(base + ".html", ctx)
    lines = (line if line == "-- " else line.rstrip() for line in text.strip().splitlines())  # keep the sig dash
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"
    return ctx["subject"], text, html


def _read(path: str) -> bytes:
    if os.path.isabs(path):
        return Path(path).read_bytes()
    with default_storage.open(path, "rb") as f:
        return f.read()


def build_email(message: OutboxMessage, account: AccountSettings, connection=None) -> EmailMultiAlternatives:
    subject, text, html = render(message, account=account)
    mail = EmailMultiAlternatives(
        subject, text, formataddr(sender(account)), [formataddr((message.to_name, message.to_email))],
        connection=connection,
        headers={"Message-ID": message.message_id, "Date": format_datetime(clock.now()),
                 "Auto-Submitted": "auto-generated"},
    )
    mail.attach_alternative(html, "text/html")
    for item in message.context.get("attachments") or []:
        mail.attach(item["filename"], _read(item["path"]), item.get("mimetype") or None)
    if message.kind == "invoice_issued" and message.record_type == "invoice" and message.record_id:
        _attach_invoice_pdf(mail, message.record_id)
    return mail


def _attach_invoice_pdf(mail: EmailMultiAlternatives, invoice_id: int) -> None:
    """The invoice e-mail carries the invoice as a PDF, rendered when the e-mail is sent."""
    from recur.billing.models import Invoice
    from recur.billing.pdf import render_invoice_pdf

    invoice = Invoice.objects.filter(pk=invoice_id).select_related("contact").first()
    if invoice is not None:
        mail.attach(f"invoice-{invoice.number}.pdf", render_invoice_pdf(invoice), "application/pdf")


# --- SMTP ----------------------------------------------------------------------

@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str
    password: str
    use_tls: bool  # STARTTLS
    use_ssl: bool  # implicit TLS
    timeout: float


def smtp_config(url: str | None = None) -> SmtpConfig | None:
    """Parse ``EMAIL_URL`` (read at call time); None means "outbox only"."""
    url = settings.EMAIL_URL if url is None else url
    if not url:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtp+tls", "smtp+ssl", "smtps"):
        raise ImproperlyConfigured(f"EMAIL_URL: unknown scheme {parts.scheme!r}; use smtp, smtp+tls or smtp+ssl")
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    on = {"1", "true", "yes", "on"}
    use_ssl = scheme in ("smtp+ssl", "smtps") or query.get("ssl") in on
    use_tls = not use_ssl and (scheme == "smtp+tls" or query.get("starttls") in on or query.get("tls") in on)
    try:
        port = parts.port or (465 if use_ssl else 587 if use_tls else 25)
        timeout = float(query.get("timeout", 10))
    except ValueError as exc:
        raise ImproperlyConfigured(f"EMAIL_URL: {exc}") from None
    return SmtpConfig(host=parts.hostname or "localhost", port=port, username=unquote(parts.username or ""),
                      password=unquote(parts.password or ""), use_tls=use_tls, use_ssl=use_ssl, timeout=timeout)


def smtp_connection(config: SmtpConfig):
    return get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host=config.host, port=config.port,
        username=config.username, password=config.password, use_tls=config.use_tls, use_ssl=config.use_ssl,
        timeout=config.timeout, fail_silently=False,
    )


# --- delivery ------------------------------------------------------------------

def _claim(limit: int) -> list[OutboxMessage]:
    """Take up to ``limit`` due rows (queued, or sending with an expired claim) and mark them sending."""
    now = clock.now()
    due = OutboxMessage.objects.filter(
        status__in=[OutboxMessage.QUEUED, OutboxMessage.SENDING], next_attempt_at__lte=now)
    if not due.exists():  # the usual case: no write transaction (SQLite locks the database for one)
        return []
    with transaction.atomic():
        locked = due.order_by("next_attempt_at", "pk").select_for_update(skip_locked=True)  # no-op on SQLite,
        ids = list(locked.values_list("pk", flat=True)[:limit])  # where BEGIN IMMEDIATE serializes claimers
        OutboxMessage.objects.filter(pk__in=ids).update(
            status=OutboxMessage.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + CLAIM)
    return list(OutboxMessage.objects.filter(pk__in=ids).order_by("pk"))


def _mark_sent(ids: list[int]) -> None:
    OutboxMessage.objects.filter(pk__in=ids, status=OutboxMessage.SENDING).update(
        status=OutboxMessage.SENT, sent_at=clock.now(), last_error="")


def _mark_kept(ids: list[int]) -> None:
    """Delivered to the outbox only: not sent, and no try made (an SMTP server configured later
    does not get this backlog; ``requeue`` sends one on purpose)."""
    OutboxMessage.objects.filter(pk__in=ids, status=OutboxMessage.SENDING).update(
        status=OutboxMessage.KEPT, attempts=0, last_error="")


def backoff(attempts: int) -> dt.timedelta:
    """Wait before the next try after ``attempts`` failed ones: 1, 2, 4 … minutes, at most an hour."""
    return min(dt.timedelta(minutes=2 ** min(attempts - 1, 10)), MAX_BACKOFF)


def _permanent(exc: Exception) -> bool:
    """The server refused the recipient for good (5xx): retrying cannot help."""
    return isinstance(exc, smtplib.SMTPRecipientsRefused) and all(
        code >= 500 for code, _ in exc.recipients.values())


def _retry_later(message: OutboxMessage, exc: Exception) -> None:
    give_up = message.attempts >= MAX_ATTEMPTS or _permanent(exc)
    OutboxMessage.objects.filter(pk=message.pk, status=OutboxMessage.SENDING).update(
        status=OutboxMessage.FAILED if give_up else OutboxMessage.QUEUED,
        next_attempt_at=clock.now() + backoff(message.attempts),
        last_error=f"{type(exc).__name__}: {exc}"[:2000],
    )
    log.warning("e-mail %s to %s not sent (attempt %d%s): %s", message.pk, message.to_email, message.attempts,
                ", giving up" if give_up else "", exc)


def _close(connection) -> None:
    try:
        connection.close()
    except Exception:  # a broken connection is dropped anyway
        connection.connection = None


def deliver_due(limit: int = 100) -> int:
    """Worker job: deliver due outbox messages; returns how many were sent (or kept, without SMTP)."""
    config = smtp_config()
    messages = _claim(limit)
    if not messages:
        return 0
    if config is None:  # outbox only (R-ALL-5): the outbox is the delivery, and nothing is sent
        _mark_kept([m.pk for m in messages])
        return len(messages)
    account = account_settings()
    connection = smtp_connection(config)
    try:
        connection.open()
    except Exception as exc:  # server down: every claimed message waits
        for m in messages:
            _retry_later(m, exc)
        return 0
    sent = 0
    try:
        for m in messages:
            try:
                if build_email(m, account, connection).send() != 1:
                    raise smtplib.SMTPException("the message was not accepted")
            except Exception as exc:
                _close(connection)  # the next message opens a fresh connection
                _retry_later(m, exc)
            else:
                _mark_sent([m.pk])
                sent += 1
    finally:
        _close(connection)
    return sent
