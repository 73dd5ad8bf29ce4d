"""The account's settings: one accessor for every reader, one service to change them.

``current()`` is what the engine, the clock, checkout and the pages read. It is a frozen snapshot, cached
in the process: the cache is dropped when a request starts, when a worker round starts, when the
settings are saved in this process, and at the latest after ``MAX_AGE`` seconds (a long ``recur bill``
run, a shell). So a billing run reads the settings once, not once per subscription, and a change made on
the Settings page is seen by the next request and the next worker round.

``update()`` checks every value (a clear error naming the field; nothing saved when one is wrong), saves
the row, and records who changed what and when in the change history (record type "account_settings").
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError
from django.core.signals import request_started, setting_changed
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from recur.core.errors import ValidationFailed
from recur.core.models import AccountSettings

RECORD_TYPE = "account_settings"
MAX_AGE = 30.0  # seconds
MAX_RETRIES = 10
MAX_RETRY_GAP = 60  # days
METHODS = ("card", "bank_account")
FINAL_ACTIONS = (AccountSettings.STAY_PAST_DUE, AccountSettings.CANCEL)
EMAIL_FIELDS = ("reminder_enabled", "reminder_days", "sender_name", "sender_email", "buyer_emails_enabled")
BILLING_FIELDS = ("time_zone", "dunning_retry_days", "dunning_final_action", "default_payment_methods",
                  "associate_billing_contacts")
FIELDS = BILLING_FIELDS + EMAIL_FIELDS


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The account's settings as read at one moment (immutable: safe to share between threads)."""

    time_zone: str
    dunning_retry_days: tuple[int, ...]
    dunning_final_action: str
    default_payment_methods: tuple[str, ...]
    associate_billing_contacts: bool
    reminder_enabled: bool
    reminder_days: int
    sender_name: str
    sender_email: str
    buyer_emails_enabled: tuple[str, ...]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @classmethod
    def of(cls, row: AccountSettings) -> Snapshot:
        return cls(**{f: tuple(v) if isinstance(v := getattr(row, f), list) else v for f in FIELDS})


_lock = threading.Lock()
_cached: tuple[float, Snapshot] | None = None


def current() -> Snapshot:
    """The account's settings; at most one query per request, worker round or ``MAX_AGE`` seconds."""
    global _cached
    cached = _cached
    if cached is not None and time.monotonic() - cached[0] < MAX_AGE:
        return cached[1]
    snapshot = Snapshot.of(AccountSettings.objects.filter(pk=1).first() or AccountSettings(pk=1))
    with _lock:
        _cached = (time.monotonic(), snapshot)
    return snapshot


def default_payment_methods() -> list[str]:
    """What new payment links and manually collected subscriptions accept unless told otherwise (R-NEW-3)."""
    return list(current().default_payment_methods)


def forget(**_kwargs) -> None:
    """Drop the cached snapshot: the next ``current()`` reads the database."""
    global _cached
    with _lock:
        _cached = None


request_started.connect(forget, dispatch_uid="recur.core.account.forget")


def _setting_changed(setting: str, **_kwargs) -> None:
    if setting in ("RECUR_TIME_ZONE", "RECUR_DUNNING_RETRY_DAYS", "RECUR_DUNNING_FINAL_ACTION"):
        forget()  # tests change the defaults with pytest-django's ``settings``


setting_changed.connect(_setting_changed, dispatch_uid="recur.core.account.setting_changed")


# --- checking values ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name this installation knows (the ``tzdata`` database)."""
    return tuple(sorted(available_timezones()))


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", field=field)


def clean_time_zone(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise _fail("time_zone", _("choose the account's time zone, such as Europe/Amsterdam."))
    if name not in time_zones():
        raise _fail("time_zone", _("“%(name)s” is not a known time zone; use a name such as Europe/Amsterdam or "
                                   "America/New_York.") % {"name": name[:64]})
    return name


def parse_retry_days(value: Any) -> list[int]:
    """The retry schedule from "3, 5, 7" (or a list): days after each failed try, each 1 to ``MAX_RETRY_GAP``,
    at most ``MAX_RETRIES`` of them. Empty means no retries: the last step applies at the first failure."""
    field = "dunning_retry_days"
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",")]
        if parts == [""]:
            parts = []
        elif "" in parts:
            raise _fail(field, _("separate the numbers of days with commas, such as 3, 5, 7."))
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise _fail(field, _("give the numbers of days, such as 3, 5, 7."))
    days = []
    for part in parts:
        if isinstance(part, bool) or not (isinstance(part, int) or (isinstance(part, str) and part.isdigit())):
            raise _fail(field, _("“%(value)s” is not a whole number of days.") % {"value": str(part)[:20]})
        day = int(part)
        if not 1 <= day <= MAX_RETRY_GAP:
            raise _fail(field, _("each retry must come 1 to %(max)s days after the failure before it; "
                                 "%(value)s is not allowed.") % {"max": MAX_RETRY_GAP, "value": day})
        days.append(day)
    if len(days) > MAX_RETRIES:
        raise _fail(field, _("at most %(max)s retries.") % {"max": MAX_RETRIES})
    return days


def clean_final_action(value: Any) -> str:
    if value not in FINAL_ACTIONS:
        raise _fail("dunning_final_action", _("choose what happens after the last retry: stay_past_due or cancel."))
    return value


def clean_payment_methods(value: Any) -> list[str]:
    chosen = list(value) if isinstance(value, (list, tuple)) else []
    if not chosen or any(m not in METHODS for m in chosen):
        raise _fail("default_payment_methods", _("choose at least one payment method: card, bank debit or both."))
    return [m for m in METHODS if m in chosen]


def _bool(field: str):
    def clean(value: Any) -> bool:
        if not isinstance(value, bool):
            raise _fail(field, _("must be true or false."))
        return value

    return clean


def clean_reminder_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 365:
        raise _fail("reminder_days", _("must be a whole number of days between 1 and 365."))
    return value


def clean_sender_name(value: Any) -> str:
    name = str(value or "").strip()
    if len(name) > 200:
        raise _fail("sender_name", _("at most 200 characters."))
    return name


def clean_sender_email(value: Any) -> str:
    address = str(value or "").strip()
    if address:
        try:
            validate_email(address)
        except ValidationError:
            raise _fail("sender_email", _("enter a valid e-mail address.")) from None
    return address


def clean_buyer_emails(value: Any) -> list[str]:
    from recur.notifications.models import BUYER_KINDS

    chosen = list(value) if isinstance(value, (list, tuple)) else None
    if chosen is None or any(k not in BUYER_KINDS for k in chosen):
        raise _fail("buyer_emails_enabled", _("unknown e-mail kinds; known: %(kinds)s.")
                    % {"kinds": ", ".join(BUYER_KINDS)})
    return [k for k in BUYER_KINDS if k in chosen]


CLEAN = {
    "time_zone": clean_time_zone, "dunning_retry_days": parse_retry_days, "dunning_final_action": clean_final_action,
    "default_payment_methods": clean_payment_methods, "associate_billing_contacts": _bool("associate_billing_contacts"),
    "reminder_enabled": _bool("reminder_enabled"), "reminder_days": clean_reminder_days,
    "sender_name": clean_sender_name, "sender_email": clean_sender_email, "buyer_emails_enabled": clean_buyer_emails,
}


# --- changing them -------------------------------------------------------------------------------------


def _values(row: AccountSettings) -> dict[str, Any]:
    return {f: getattr(row, f) for f in FIELDS}


@transaction.atomic
def update(actor, fields: dict[str, Any]) -> AccountSettings:
    """Change some of the account's settings; every value is checked before anything is saved."""
    from recur.core import clock, records

    cleaned = {}
    for name, value in fields.items():
        if name not in CLEAN:
            raise _fail(name, _("not an account setting."))
        cleaned[name] = CLEAN[name](value)
    AccountSettings.objects.get_or_create(pk=1)
    row = AccountSettings.objects.select_for_update().get(pk=1)
    before = _values(row)
    for name, value in cleaned.items():
        setattr(row, name, value)
    changes = {k: [before[k], v] for k, v in _values(row).items() if before[k] != v}
    if changes:
        row.updated_at = clock.now()
        row.updated_by = actor if getattr(actor, "pk", None) else None
        row.save()
        records.log(RECORD_TYPE, row.pk, actor, "updated", changes)
    forget()
    transaction.on_commit(forget)
    return row


def history(limit: int = 10):
    """The latest changes of the account's settings, newest first."""
    from recur.core import records

    return records.history(RECORD_TYPE, 1).order_by("-at", "-id")[:limit]
