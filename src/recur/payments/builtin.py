"""The built-in processor (R-PAY-1): a gateway in permanent test mode that needs
no outside account and keeps its own ledger in the ``Builtin*`` tables.

Test details (like a real gateway's test mode):

====================  =====================================================
card number           every charge …
====================  =====================================================
4242424242424242      succeeds (so does any other valid card number)
4000000000000002      is declined (``card_declined``)
4000000000009995      fails for ``insufficient_funds``
4000000000000341      can be saved, but every charge fails (``card_declined``)
====================  =====================================================

Bank debits need routing number 110000000. They stay ``pending`` for three
business days, then account 000111111116 fails (``debit_failed``) and every
other account settles ``succeeded``; ``poll_events`` reports each outcome once.

Only brand, last four digits, expiry and an HMAC fingerprint are stored; the
full number and the CVC are dropped as soon as they are checked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from recur.core import clock
from recur.core.db import fetch_in, insert_many
from recur.core.errors import ValidationFailed
from recur.core.money import MAX_MINOR, format_amount, validate_currency
from recur.payments.models import (
    BuiltinCharge, BuiltinEvent, BuiltinRefund, BuiltinToken, ProcessorCustomer,
)
from recur.payments.processor import (
    AsyncEvent, ChargeRequest, ChargeResult, MethodEntry, RefundResult, SavedMethod,
)

TEST_ROUTING_NUMBER = "110000000"
SETTLE_BUSINESS_DAYS = 3
CARD_BEHAVIOURS = {
    "4000000000000002": "decline",
    "4000000000009995": "insufficient_funds",
    "4000000000000341": "fail_charges",
}
BANK_BEHAVIOURS = {"000111111116": "ach_fail"}
FAILURES = {
    "decline": ("card_declined", "Your card was declined."),
    "fail_charges": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("insufficient_funds", "Your card has insufficient funds."),
    "ach_fail": ("debit_failed", "The bank account could not be debited."),
}
_CHUNK = 500  # ids per IN (…) list: well under SQLite's parameter limit
_RESULT_FIELDS = ("idempotency_key", "status", "charge_ref", "failure_code", "failure_message")
_INSERT_COLUMNS = (
    "idempotency_key", "charge_ref", "token", "customer_ref", "amount", "currency", "status", "failure_code",
    "failure_message", "description", "metadata", "created_at", "settles_at", "refunded",
)
_RESULT_AT = tuple(_INSERT_COLUMNS.index(f) for f in _RESULT_FIELDS)  # where a row holds its result fields
_CREATED_AT = BuiltinCharge._meta.get_field("created_at")


def _ref(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _refs(prefix: str, n: int) -> list[str]:
    """``n`` new references for one batch, in ascending order: the time in microseconds and a
    counter, then 32 random bits. A batch's refs sort after the refs made before it, so the
    unique index on them grows at its end (random refs land each on a page of its own)."""
    stamp = time.time_ns() // 1000
    hexed = secrets.token_hex(4 * n)
    return [f"{prefix}_{stamp:014x}{i:06x}{hexed[8 * i:8 * i + 8]}" for i in range(n)]


# --- card and bank details (pure) ------------------------------------------------------


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str:
    n2, n3, n4 = int(number[:2]), int(number[:3]), int(number[:4])
    if number[0] == "4":
        return "visa"
    if 51 <= n2 <= 55 or 2221 <= n4 <= 2720:
        return "mastercard"
    if n2 in (34, 37):
        return "amex"
    if n4 == 6011 or 644 <= n3 <= 649 or n2 == 65:
        return "discover"
    if 3528 <= n4 <= 3589:
        return "jcb"
    if 300 <= n3 <= 305 or n2 in (36, 38, 39):
        return "diners"
    if n2 == 62:
        return "unionpay"
    return "unknown"


def fingerprint(kind: str, value: str) -> str:
    """Same card (or account) → same fingerprint, without keeping the number."""
    return hmac.new(settings.SECRET_KEY.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def add_business_days(moment: dt.datetime, days: int) -> dt.datetime:
    """``moment`` moved ``days`` working days (Mon–Fri) ahead, same local time of day."""
    zone = clock.account_zone()
    local = moment.astimezone(zone)
    day = local.date()
    while days:
        day += dt.timedelta(days=1)
        days -= day.weekday() < 5
    return dt.datetime.combine(day, local.time(), tzinfo=zone)


def _section(details: dict, name: str) -> dict:
    section = details.get(name)
    if not isinstance(section, dict):
        raise ValidationFailed(f"{name}: the {name.replace('_', ' ')} details are required", field=name)
    return section


def _text(section: dict, prefix: str, key: str) -> str:
    value = section.get(key)
    field = f"{prefix}.{key}"
    if value is None or isinstance(value, (bool, dict, list)) or not str(value).strip():
        raise ValidationFailed(f"{field}: this field is required", field=field)
    return str(value).strip()


def _whole(section: dict, prefix: str, key: str) -> int:
    value = section.get(key)
    field = f"{prefix}.{key}"
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,4}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{field}: must be a whole number", field=field)
    return value


def _card_fields(card: dict) -> dict:
    number = re.sub(r"[ -]", "", _text(card, "card", "number"))
    if not re.fullmatch(r"[0-9]{12,19}", number) or not luhn_ok(number):
        raise ValidationFailed("card.number: this is not a valid card number", field="card.number")
    month = _whole(card, "card", "exp_month")
    if not 1 <= month <= 12:
        raise ValidationFailed("card.exp_month: must be between 1 and 12", field="card.exp_month")
    year = _whole(card, "card", "exp_year")
    year += 2000 if year < 100 else 0
    today = clock.today()
    if year > today.year + 50:
        raise ValidationFailed("card.exp_year: is too far in the future", field="card.exp_year")
    if (year, month) < (today.year, today.month):
        field = "card.exp_year" if year < today.year else "card.exp_month"
        raise ValidationFailed(f"{field}: the card has expired", field=field)
    if not re.fullmatch(r"[0-9]{3,4}", _text(card, "card", "cvc")):
        raise ValidationFailed("card.cvc: must be 3 or 4 digits", field="card.cvc")
    return {
        "type": "card", "brand": card_brand(number), "last4": number[-4:], "exp_month": month, "exp_year": year,
        "fingerprint": fingerprint("card", number), "behaviour": CARD_BEHAVIOURS.get(number, "succeed"),
    }


def _bank_fields(bank: dict) -> dict:
    if _text(bank, "bank_account", "routing_number") != TEST_ROUTING_NUMBER:
        raise ValidationFailed(
            f"bank_account.routing_number: the built-in processor accepts only the test routing number "
            f"{TEST_ROUTING_NUMBER}", field="bank_account.routing_number",
        )
    account = re.sub(r"[ -]", "", _text(bank, "bank_account", "account_number"))
    if not re.fullmatch(r"[0-9]{4,17}", account):
        raise ValidationFailed("bank_account.account_number: must be 4 to 17 digits",
                               field="bank_account.account_number")
    holder = _text(bank, "bank_account", "holder_name")
    if len(holder) > 200:
        raise ValidationFailed("bank_account.holder_name: at most 200 characters", field="bank_account.holder_name")
    return {
        "type": "bank_account", "brand": "", "last4": account[-4:], "exp_month": None, "exp_year": None,
        "holder_name": holder, "fingerprint": fingerprint("bank", f"{TEST_ROUTING_NUMBER}:{account}"),
        "behaviour": BANK_BEHAVIOURS.get(account, "ach_settle"),
    }


def _customer_tag(raw: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"customer:{raw}".encode(), hashlib.sha256).hexdigest()[:8]


# --- the processor -------------------------------------------------------------------


class BuiltinProcessor:
    """Implements ``recur.payments.processor.Processor``. Each call commits its own
    transaction, as a remote gateway would (a savepoint when the caller has one open)."""

    name = "builtin"

    def ensure_customer(self, contact) -> str:
        existing = ProcessorCustomer.objects.filter(contact=contact, processor=self.name)
        ref = existing.values_list("customer_ref", flat=True).first()
        if ref:
            return ref
        try:
            with transaction.atomic():
                ProcessorCustomer.objects.create(
                    contact=contact, processor=self.name, customer_ref=_ref("cus"), created_at=clock.now()
                )
        except IntegrityError:  # a concurrent call made it first
            pass
        return existing.values_list("customer_ref", flat=True).get()

    def method_entry(self, contact, methods: list[str], *, currency: str = "", prepare: bool = True) -> MethodEntry:
        """The hosted pages post the raw card / bank fields here; this processor tokenizes them."""
        return MethodEntry("fields", tuple(methods))

    def create_customer(self, name: str, email: str) -> str:
        """A customer not tied to a contact yet. The gateway recognises the ids it issued by their
        keyed tag, so it needs no table of its own for them."""
        raw = secrets.token_hex(12)
        return f"cus_{raw}{_customer_tag(raw)}"

    def _known_customer(self, customer_ref: str) -> bool:
        raw, tag = customer_ref[4:-8], customer_ref[-8:]
        if customer_ref.startswith("cus_") and len(raw) == 24 and hmac.compare_digest(tag, _customer_tag(raw)):
            return True
        return ProcessorCustomer.objects.filter(processor=self.name, customer_ref=customer_ref).exists()

    def forget_payment_method(self, processor_ref: str) -> None:
        """Detached: the token can no longer be charged (a charge of it fails ``resource_missing``)."""
        BuiltinToken.objects.filter(token=processor_ref).delete()

    def save_payment_method(self, customer_ref: str, details: dict) -> SavedMethod:
        kind = details.get("type")
        if "token" in details:
            raise ValidationFailed("token: the built-in processor takes the card or bank_account details "
                                   "themselves, not a token", field="token")
        if kind == "card":
            fields = _card_fields(_section(details, "card"))
        elif kind == "bank_account":
            fields = _bank_fields(_section(details, "bank_account"))
        else:
            raise ValidationFailed("type: must be card or bank_account", field="type")
        if not self._known_customer(customer_ref):
            raise ValidationFailed(f"No customer {customer_ref!r} at the built-in processor")
        token = BuiltinToken.objects.create(
            token=_ref("pm"), customer_ref=customer_ref, created_at=clock.now(), **fields
        )
        return SavedMethod(
            type=token.type, processor_ref=token.token, brand=token.brand, last4=token.last4,
            exp_month=token.exp_month, exp_year=token.exp_year, fingerprint=token.fingerprint,
        )

    # --- charges ---------------------------------------------------------------------

    def charge_many(self, requests: list[ChargeRequest]) -> list[ChargeResult]:
        """A handful of plain-SQL statements per batch: tokens, one insert, and a read of the keys
        that were charged before.

        The unique idempotency key is the guard: a key charged before (a retry after a
        crash) or by a concurrent caller is skipped by the insert (ON CONFLICT DO
        NOTHING) and its first charge is read back, so a key never moves money twice.
        """
        if not requests:
            return []
        # One lock order for every caller (no deadlocks), and refs ascending in it.
        todo = {r.idempotency_key: r for r in sorted(requests, key=lambda r: r.idempotency_key)}
        tokens = {row[0]: row for row in fetch_in(
            "SELECT token, type, behaviour, exp_month, exp_year FROM payments_builtintoken WHERE token IN ({in})",
            sorted({r.payment_method_ref for r in todo.values()}))}
        now = clock.now()
        today = now.astimezone(clock.account_zone()).date()
        created, settles = (
            _CREATED_AT.get_db_prep_save(v, connection) for v in (now, add_business_days(now, SETTLE_BUSINESS_DAYS))
        )
        refs = _refs("ch", len(todo))
        currencies: dict[str, str | None] = {}
        rows = [
            self._new_charge(r, tokens.get(r.payment_method_ref), today, created, settles, ref, currencies)
            for r, ref in zip(todo.values(), refs)
        ]
        if self._insert(rows) == len(rows):  # every key is new: the results are the rows as written
            found = {row[0]: ChargeResult._make(row[i] for i in _RESULT_AT) for row in rows}
        else:  # a key charged before (a retry after a crash, a concurrent caller): its first charge counts
            found = self._results(list(todo))
        missing = [r.idempotency_key for r in requests if r.idempotency_key not in found]
        if missing:
            raise RuntimeError(f"charges {missing[:3]} were neither created nor found")
        return [found[r.idempotency_key] for r in requests]

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        return self._results([idempotency_key]).get(idempotency_key)

    @staticmethod
    def _results(keys: list[str]) -> dict[str, ChargeResult]:
        return {row[0]: ChargeResult(*row) for row in fetch_in(
            f"SELECT {', '.join(_RESULT_FIELDS)} FROM payments_builtincharge WHERE idempotency_key IN ({{in}})",
            list(dict.fromkeys(keys)))}

    @staticmethod
    def _insert(rows: list[tuple]) -> int:
        """``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``: the number of rows inserted; a row whose
        key exists (a concurrent caller inserted it first) is skipped, and the caller reads it back.
        Plain SQL: the ORM's bulk_create spends most of its time compiling SQL, which the billing run
        cannot afford for a million rows."""
        with transaction.atomic():
            return insert_many(BuiltinCharge._meta.db_table, _INSERT_COLUMNS, rows,
                               ignore_conflicts_on="idempotency_key")

    @staticmethod
    def _refusal(request: ChargeRequest, token: tuple | None, today: dt.date,
                 currencies: dict[str, str | None]) -> tuple[str, str] | None:
        """Why the gateway refuses this charge outright, or None (``currencies``: the batch's verdicts)."""
        amount = request.amount
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_MINOR:
            return "invalid_request", "amount: must be a positive whole number of minor units"
        if request.currency not in currencies:
            try:
                validate_currency(request.currency)
                currencies[request.currency] = None
            except ValueError as exc:
                currencies[request.currency] = f"currency: {exc}"
        if currencies[request.currency]:
            return "invalid_request", currencies[request.currency]
        if token is None:
            return "resource_missing", f"No such payment method: {request.payment_method_ref!r}"
        _, kind, behaviour, exp_month, exp_year = token
        if kind == "card" and (exp_year, exp_month) < (today.year, today.month):
            return "expired_card", "Your card has expired."
        if kind == "card" and behaviour in FAILURES:
            return FAILURES[behaviour]
        return None

    def _new_charge(self, request: ChargeRequest, token: tuple | None, today: dt.date, created, settles, ref: str,
                    currencies: dict[str, str | None]) -> tuple:
        """One row of ``_INSERT_COLUMNS``, ready for the database."""
        refusal = self._refusal(request, token, today, currencies)
        status = "failed" if refusal else "pending" if token[1] == "bank_account" else "succeeded"
        code, message = refusal or ("", "")
        return (
            request.idempotency_key, ref, request.payment_method_ref[:64], request.customer_ref[:64],
            0 if code == "invalid_request" else request.amount, str(request.currency)[:3].upper(), status, code,
            message, request.description, json.dumps(request.metadata or {}), created,
            settles if status == "pending" else None, 0,
        )

    # --- refunds ---------------------------------------------------------------------

    def refund(self, charge_ref: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Never more than charged minus refunded; the same key returns the first refund."""
        try:
            with transaction.atomic():
                charge = BuiltinCharge.objects.select_for_update().filter(charge_ref=charge_ref).first()
                done = BuiltinRefund.objects.filter(idempotency_key=idempotency_key).first()
                if done is not None:
                    return RefundResult(idempotency_key, done.status, done.refund_ref)
                problem = self._refund_problem(charge, amount, currency)
                if problem:
                    return RefundResult(idempotency_key, "failed", failure_message=problem)
                BuiltinCharge.objects.filter(pk=charge.pk).update(refunded=F("refunded") + amount)
                done = BuiltinRefund.objects.create(
                    idempotency_key=idempotency_key, refund_ref=_ref("re"), charge=charge, amount=amount,
                    currency=charge.currency, status="succeeded", created_at=clock.now(),
                )
        except IntegrityError:  # the same key, concurrently, on another charge
            done = BuiltinRefund.objects.get(idempotency_key=idempotency_key)
        return RefundResult(idempotency_key, done.status, done.refund_ref)

    @staticmethod
    def _refund_problem(charge: BuiltinCharge | None, amount: int, currency: str) -> str:
        if charge is None:
            return "No such charge"
        if charge.status != "succeeded":
            return f"Only a succeeded charge can be refunded; this one is {charge.status}"
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return "The refund amount must be a positive whole number of minor units"
        if str(currency).upper() != charge.currency:
            return f"The refund currency {currency} differs from the charge's {charge.currency}"
        left = charge.amount - charge.refunded
        if amount > left:
            return (f"The refund of {format_amount(amount, charge.currency)} {charge.currency} exceeds what is left "
                    f"to refund ({format_amount(left, charge.currency)} {charge.currency})")
        return ""

    # --- asynchronous outcomes ----------------------------------------------------------

    def poll_events(self) -> list[AsyncEvent]:
        """Settle the bank debits that are due; each outcome is reported by exactly one caller."""
        now, events = clock.now(), []
        while True:
            batch, seen = self._settle_due(now)
            events += batch
            if seen < _CHUNK:
                return events

    def _settle_due(self, now: dt.datetime) -> tuple[list[AsyncEvent], int]:
        with transaction.atomic():
            due = list(
                BuiltinCharge.objects.select_for_update(skip_locked=True)
                .filter(status="pending", settles_at__lte=now)
                .order_by("settles_at", "pk")
                .values_list("pk", "idempotency_key", "charge_ref", "token")[:_CHUNK]
            )
            failing = set(
                BuiltinToken.objects.filter(token__in={row[3] for row in due}, behaviour="ach_fail")
                .values_list("token", flat=True)
            )
            events, rows = [], []
            for pk, key, charge_ref, token in due:
                status, code, message = ("failed", *FAILURES["ach_fail"]) if token in failing else ("succeeded", "", "")
                # The conditional update is the guard: only one poller moves a charge off "pending".
                if BuiltinCharge.objects.filter(pk=pk, status="pending").update(
                    status=status, failure_code=code, failure_message=message
                ):
                    event_id = _ref("evt")
                    rows.append(BuiltinEvent(event_id=event_id, charge_id=pk, status=status, created_at=now))
                    events.append(AsyncEvent(event_id, key, status, charge_ref, code, message))
            BuiltinEvent.objects.bulk_create(rows)
        return events, len(due)
