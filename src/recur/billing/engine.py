"""The billing run (R-BILL-1, R-BILL-6, R-BILL-8; DESIGN "Money safety rules").

Billing is a pure function of (subscription, what was billed already, today):
``schedule.due_periods`` says which periods are due; the run creates exactly
those cycles. Each batch goes through three steps:

1. **issue** (one transaction): claim due subscriptions (``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL; SQLite serialises writers), create the billing
   cycles — unique per (subscription, period) — their invoices with gapless
   numbers, and, for automatic collection, a payment attempt carrying the
   idempotency key. Commit.
2. **charge**: ask the processor to charge the committed attempts. The
   processor never moves money twice for one key.
3. **record** (one transaction): lock the attempts still ``started`` and record
   each outcome once: payments, invoice and cycle status, subscription
   properties and status, e-mails in the outbox.

A crash between 1 and 3 leaves attempts ``started``; the next run charges them
again with the same key, which settles them without a second charge.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import datetime as dt
import gc
import hashlib
import json
import logging
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min

from recur.billing.models import TAKES_PAYMENTS, BillingCycle, Invoice, InvoiceSequence, PaymentAttempt
from recur.core import account as account_store
from recur.core import clock
from recur.core.db import (
    as_date, db_adapter, db_value, execute_many, fetch, fetch_in, insert_many, insert_returning_ids, update_many,
)
from recur.core.money import line_amounts
from recur.notifications import services as outbox
from recur.payments.processor import ChargeRequest, ChargeResult, get_processor
from recur.subscriptions import schedule
from recur.subscriptions import status as rules
from recur.subscriptions.models import BILLABLE, PAYMENT_TERM_DAYS, Subscription

log = logging.getLogger("recur.billing")

BATCH = 1000


def retry_days() -> list[int]:
    """Days after a failure on which a charge is retried (R-BILL-6; default 3, 5, 7)."""
    return list(account_store.current().dunning_retry_days)


def dunning_policy() -> str:
    """What happens after the last retry fails: "stay_past_due" or "cancel"."""
    return account_store.current().dunning_final_action


def install_id() -> str:
    """Per installation, so two Recur installations sharing a Stripe account never share a key."""
    return _hash8(settings.SECRET_KEY)


@functools.lru_cache(maxsize=8)
def _hash8(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def idempotency_key(subscription_id: int, period_index: int, attempt_no: int, issued_on: dt.date) -> str:
    """Derived from (subscription, period, attempt), unique as they are; stored with the attempt, so
    the same try is always asked for with the same key.

    The day the attempt is made and the zero-padded subscription id come first, so the keys a run
    makes sort after every earlier key and in the run's own order: the unique indexes on them (the
    attempts', the built-in processor's ledger) grow at their end instead of taking each new key on
    a page of its own (at 300,000 rows, about 3× slower to insert into)."""
    return f"{_key_prefix(install_id(), issued_on)}{subscription_id:010d}-{period_index}-{attempt_no}"


@functools.lru_cache(maxsize=8)
def _key_prefix(install: str, issued_on: dt.date) -> str:
    return f"rc-{install}-{issued_on:%Y%m%d}-"


@dataclasses.dataclass
class Summary:
    charged: int = 0
    failed: int = 0
    pending: int = 0
    invoices_issued: int = 0
    emails_queued: int = 0
    expired: int = 0
    canceled: int = 0

    def add(self, other: "Summary") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def work(self) -> int:
        return sum(dataclasses.asdict(self).values())


@contextlib.contextmanager
def _gc_paused():
    """Python's cycle collector paused while the run builds and writes one batch (issue, record).
    A batch makes some hundred thousand short-lived tuples and dicts, none in a reference cycle
    (reference counting frees them); left on, the collector walks them over and over. It runs once
    when switched back on.

    The switch is process-wide (``recur serve`` runs the worker beside the web threads), so it wraps
    only these CPU-bound steps (``_issue_batch``, ``record_results``), never a processor's charge (an
    HTTP call to Stripe may take seconds)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- step 1: issue -------------------------------------------------------------------


def _claim(qs, limit: int | None, fields: tuple[str, ...] | None = None, *, skip_locked: bool = True):
    """Lock the rows (PostgreSQL: FOR UPDATE [SKIP LOCKED]; SQLite serialises writers instead)."""
    if connection.features.has_select_for_update:
        if skip_locked and connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        else:
            qs = qs.select_for_update(of=("self",))
    if fields:
        qs = qs.values_list(*fields)
    return list(qs[:limit] if limit else qs)


def _lock_clause(*, skip_locked: bool = False, of: str = "") -> str:
    """The plain-SQL form of ``_claim``'s locking: PostgreSQL locks rows, SQLite has one writer."""
    features = connection.features
    if not features.has_select_for_update:
        return ""
    clause = " FOR UPDATE" + (f" OF {of}" if of else "")
    return clause + (" SKIP LOCKED" if skip_locked and features.has_select_for_update_skip_locked else "")


def _allocate_numbers(counts: dict[int, int]) -> dict[int, list[str]]:
    """Gapless invoice numbers per year, in the caller's transaction: one upsert per year moves the
    year's counter on by n and returns it; its row stays locked until commit (SQLite: one writer)."""
    out = {}
    table = InvoiceSequence._meta.db_table
    for year, n in sorted(counts.items()):
        (last,), = fetch(f"INSERT INTO {table} (year, last) VALUES (%s, %s) ON CONFLICT (year)"
                         f" DO UPDATE SET last = {table}.last + excluded.last RETURNING last", [year, n])
        out[year] = [f"{year}-{i:06d}" for i in range(last - n + 1, last + 1)]
    return out


_SUB_FIELDS = ("id", "contact_id", "start_date", "anchor_index", "billing_frequency", "billing_terms",
               "number_of_payments", "billed_through", "status", "currency", "payment_terms", "collection",
               "accept_online_payments", "payment_method_id", "owner_id", "name", "billing_address")


def _claim_due(today: dt.date, limit: int, only: list[int] | None) -> list[dict]:
    """The batch's due subscriptions, oldest payment date first, locked (rows another worker holds are skipped)."""
    # Walk the (next_payment_date, id) index in order and stop after ``limit`` rows. Without
    # statistics SQLite's planner prefers the status index and sorts every due row for each
    # batch — quadratic over a large run — so it is told which index to use.
    hint = " INDEXED BY sub_npd_id_idx" if connection.vendor == "sqlite" else ""
    sql = (f"SELECT {', '.join(_SUB_FIELDS)} FROM subscriptions_subscription{hint}"
           f" WHERE next_payment_date <= %s AND status IN ({', '.join(['%s'] * len(BILLABLE))})")
    params = [db_value(today), *BILLABLE]
    if only is not None:
        if not only:
            return []
        sql += f" AND id IN ({', '.join(['%s'] * len(only))})"
        params += list(only)
    rows = fetch(sql + " ORDER BY next_payment_date, id LIMIT %s" + _lock_clause(skip_locked=True), [*params, limit])
    subs = [dict(zip(_SUB_FIELDS, r)) for r in rows]
    for s in subs:
        s["start_date"] = as_date(s["start_date"])
        s["accept_online_payments"] = bool(s["accept_online_payments"])
        s["status0"] = s["status"]
    return subs


def _plan(memo: dict, sub: dict, today: dt.date, v) -> tuple[list[tuple[int, object, object]], dt.date | None]:
    """(due periods as (index, start, end) ready for the database, next payment date) of one subscription.

    Pure schedule arithmetic, memoised per batch: subscriptions that started on the
    same day with the same frequency share it."""
    fixed = sub["number_of_payments"] if sub["billing_terms"] == "fixed" else None
    key = (sub["start_date"], sub["billing_frequency"], sub["anchor_index"], sub["billed_through"], fixed)
    found = memo.get(key)
    if found is None:
        args = key[:3]
        due = schedule.shifted_due(*args, sub["billed_through"], today, fixed)
        periods = [(k, *map(v, schedule.shifted_period(*args, k))) for k in due]
        found = memo[key] = (periods, schedule.shifted_next(*args, due[-1] if due else sub["billed_through"], fixed))
    return found


@_gc_paused()
def _issue_batch(today: dt.date, limit: int, only: list[int] | None, summary: Summary) -> list[int] | None:
    """Step 1 for one batch, in plain SQL (it is the hot path); returns the ids of the attempts it
    created, or None when there was nothing to claim (rows locked by another worker are skipped)."""
    now = clock.now()
    v = db_adapter()
    with transaction.atomic():
        subs = _claim_due(today, limit, only)
        if not subs:
            return None
        totals = _item_totals([s["id"] for s in subs])

        plans = []  # (sub, period index, start, end), dates ready for the database
        memo: dict = {}
        for sub in subs:
            periods, sub["next_payment_date"] = _plan(memo, sub, today, v)
            plans += [(sub, *p) for p in periods]
            if periods:
                sub["billed_through"] = periods[-1][0]
            if sub["status"] == "scheduled":
                sub["status"] = _transition(sub["status"], "start")

        now_db, today_db = v(now), v(today)
        due_dates = {terms: v(today + dt.timedelta(days=days)) for terms, days in PAYMENT_TERM_DAYS.items()}
        free = [s["collection"] == "auto_charge" and totals[s["id"]][0][2] == 0 for s, *_ in plans]
        cycle_ids = insert_returning_ids(
            "billing_billingcycle",
            ("subscription_id", "period_index", "period_start", "period_end", "amount", "currency", "status",
             "attempts", "created_at"),
            [(s["id"], k, a, b, totals[s["id"]][0][2], s["currency"], "paid" if f else "open", 0, now_db)
             for (s, k, a, b), f in zip(plans, free)])
        numbers = _allocate_numbers({today.year: len(plans)})[today.year] if plans else []
        invoice_ids = insert_returning_ids(
            "billing_invoice",
            ("number", "subscription_id", "cycle_id", "contact_id", "status", "issue_date", "due_date",
             "payment_terms", "collection", "accept_online_payments", "currency", "subtotal", "tax", "total",
             "amount_paid", "billing_address", "paid_at", "overdue_notified", "owner_id", "created_at", "updated_at"),
            [(numbers[i], s["id"], cycle_ids[i], s["contact_id"], "paid" if free[i] else "open", today_db,
              due_dates[s["payment_terms"]], s["payment_terms"], s["collection"], s["accept_online_payments"],
              s["currency"], *totals[s["id"]][0], 0, _json_text(s["billing_address"]), now_db if free[i] else None,
              False, s["owner_id"], now_db, now_db)
             for i, (s, k, a, b) in enumerate(plans)])
        insert_many(
            "billing_invoiceline",
            ("invoice_id", "position", "name", "quantity", "unit_price", "discount", "tax_rate", "tax", "total",
             "period_start", "period_end"),
            [(inv, *line, a, b) for inv, (s, k, a, b) in zip(invoice_ids, plans) for line in totals[s["id"]][1]])

        attempt_rows, emails = [], []
        contacts = _contacts({s["contact_id"] for s, *_ in plans if s["collection"] == "manual"})
        for i, (s, k, a, b) in enumerate(plans):
            total = totals[s["id"]][0][2]
            if s["collection"] == "auto_charge" and not free[i]:
                attempt_rows.append((invoice_ids[i], cycle_ids[i], 1, idempotency_key(s["id"], k, 1, today),
                                     s["payment_method_id"], total, s["currency"], "started", False, "", "", "",
                                     now_db))
            elif s["collection"] == "manual" and contacts.get(s["contact_id"], {}).get("email"):
                emails.append(_invoice_email(s, contacts[s["contact_id"]], invoice_ids[i], numbers[i], total, today))
        attempt_ids = insert_returning_ids(
            "billing_paymentattempt",
            ("invoice_id", "cycle_id", "attempt_no", "idempotency_key", "payment_method_id", "amount", "currency",
             "status", "buyer_initiated", "charge_ref", "failure_code", "failure_message", "created_at"),
            attempt_rows)
        summary.emails_queued += outbox.queue_many(emails)
        summary.invoices_issued += len(plans)
        # One UPDATE per subscription; the status (an indexed column) only where it changed.
        update_many("subscriptions_subscription", ("billed_through", "next_payment_date", "updated_at"),
                    [(s["billed_through"], v(s["next_payment_date"]), now_db, s["id"]) for s in subs])
        _write_status_changes([s for s in subs if s["status"] != s["status0"]], now_db)
        return attempt_ids


@functools.lru_cache(maxsize=64)
def _transition(status: str, event: str) -> str:
    """``rules.transition`` as a value, memoised (it is pure; a refused move raises every time)."""
    return rules.transition(status, event).value


@functools.lru_cache(maxsize=16)
def _is_terminal(status: str) -> bool:
    return rules.is_terminal(status)


def _json_text(value) -> str:
    """A JSON column's value as read by ``fetch`` (text on both databases), ready to write back."""
    return value if isinstance(value, str) else json.dumps(value if value is not None else {})


def _write_status_changes(subs: list[dict], now_db) -> None:
    """Write the status changes of the billing run and their change history (R-OBJ-4), in the
    caller's transaction: one history row per subscription whose status actually changed."""
    if not subs:
        return
    update_many("subscriptions_subscription", ("status", "updated_at"), [(s["status"], now_db, s["id"]) for s in subs])
    _history([(s["id"], s["status0"], s["status"]) for s in subs], now_db)


def _history(changes: list[tuple[int, str, str]], now_db) -> None:
    """Bulk change history for (subscription id, old status, new status), the billing run as actor (none)."""
    insert_many("core_historyentry", ("record_type", "record_id", "actor_id", "action", "changes", "at"),
                [("subscription", sid, None, "updated", json.dumps({"status": [old, new]}), now_db)
                 for sid, old, new in changes if old != new])


def _item_totals(sub_ids: list[int]) -> dict[int, tuple[tuple[int, int, int], list[tuple]]]:
    """Per subscription: ((net, tax, total), invoice line rows) from its current line items."""
    out: dict[int, tuple] = {sid: ((0, 0, 0), []) for sid in sub_ids}
    computed: dict[tuple, tuple] = {}  # many subscriptions share the same prices
    # Decimals as text: exact on both databases (SQLite would hand back a float).
    rows = fetch_in("SELECT subscription_id, position, name, quantity, unit_price, CAST(discount_percent AS TEXT),"
                    " CAST(tax_rate AS TEXT) FROM subscriptions_subscriptionitem WHERE subscription_id IN ({in})",
                    sub_ids, tail=" ORDER BY subscription_id, position, id")
    for sid, pos, name, qty, price, disc, rate in rows:
        found = computed.get((price, qty, disc, rate))
        if found is None:
            d, r = Decimal(disc), Decimal(rate)
            found = computed[(price, qty, disc, rate)] = (line_amounts(price, qty, d, None, r), r)
        amounts, rate_dec = found
        (net, tax, total), lines = out[sid]
        lines.append((pos, name, qty, price, amounts.discount, rate_dec, amounts.tax, amounts.total))
        out[sid] = ((net + amounts.net, tax + amounts.tax, total + amounts.total), lines)
    return out


def _contacts(ids) -> dict[int, dict]:
    return {i: {"name": n, "email": e, "language": lang}
            for i, n, e, lang in fetch_in("SELECT id, name, email, language FROM crm_contact WHERE id IN ({in})",
                                          sorted(ids))}


def _money(minor: int, currency: str) -> dict:
    return {"amount_minor": minor, "currency": currency}


def _invoice_email(sub: dict, contact: dict, invoice_id: int, number: str, total: int, today: dt.date) -> dict:
    from recur.checkout.links import invoice_url

    return {
        "kind": "invoice_issued", "to_email": contact["email"], "to_name": contact["name"],
        "language": contact["language"], "record": ("invoice", invoice_id),
        "dedupe_key": outbox.record_key("invoice_issued", invoice_id),
        "context": {
            "subscription_name": sub["name"], "invoice_number": number, "total": _money(total, sub["currency"]),
            "issue_date": today, "due_date": today + dt.timedelta(days=PAYMENT_TERM_DAYS[sub["payment_terms"]]),
            "pay_url": invoice_url(invoice_id) if sub["accept_online_payments"] else "",
        },
    }


# --- step 2 and 3: charge and record ----------------------------------------------------


def _charge(attempt_ids: list[int], summary: Summary) -> None:
    if not attempt_ids:
        return
    rows = fetch_in(
        "SELECT a.id, a.idempotency_key, a.amount, a.currency, a.invoice_id, pm.processor_ref, pm.removed_at,"
        " pm.contact_id, pm.processor FROM billing_paymentattempt a"
        " LEFT JOIN payments_paymentmethod pm ON pm.id = a.payment_method_id"
        " WHERE a.status = 'started' AND a.id IN ({in})", attempt_ids, tail=" ORDER BY a.id")
    customers = {(c, p): ref for c, p, ref in fetch_in(
        "SELECT contact_id, processor, customer_ref FROM payments_processorcustomer WHERE contact_id IN ({in})",
        sorted({r[7] for r in rows if r[7]}))}
    requests, results = defaultdict(list), []
    for _, key, amount, currency, invoice_id, ref, removed_at, contact_id, processor in rows:
        if not ref or removed_at is not None:
            results.append(ChargeResult(key, "failed", failure_code="no_payment_method",
                                        failure_message="No usable payment method is saved for this subscription"))
            continue
        requests[processor].append(ChargeRequest(
            idempotency_key=key, payment_method_ref=ref, customer_ref=customers.get((contact_id, processor), ""),
            amount=amount, currency=currency, description=f"Invoice {invoice_id}", metadata={"invoice": invoice_id},
        ))
    for processor, batch in requests.items():  # each method is charged where it was saved
        results += get_processor(processor).charge_many(batch)
    record_results(results, summary, ids={r[1]: r[0] for r in rows})


def charge_attempts(attempt_ids: list[int]) -> Summary:
    summary = Summary()
    _charge(attempt_ids, summary)
    return summary


@_gc_paused()
def record_results(results: list[ChargeResult], summary: Summary | None = None, *,
                   ids: dict[str, int] | None = None) -> None:
    """Step 3: record each outcome exactly once (also used for asynchronous events).

    ``ids`` (idempotency key → attempt id), when the caller knows them, lets the
    recorder find the attempts by primary key instead of by key.

    Batched, in plain SQL: a handful of statements per batch of results. Only
    attempts still ``started`` (or ``pending``, for asynchronous outcomes) are
    recorded, under a row lock, so a concurrent recorder of the same result
    changes nothing.

    One exception: a ``succeeded`` outcome for an attempt recorded as ``failed``
    (a late webhook or event: the money arrived after all) is recorded too: the
    payment becomes succeeded, its invoice paid, its cycle paid with no retry
    left, a past-due subscription active. The attempt is then ``succeeded``, so a
    redelivered copy changes nothing. If the invoice was paid (or voided) by
    then, only the payment is recorded and a warning asks for a refund by hand.
    """
    summary = summary if summary is not None else Summary()
    if not results:
        return
    from recur.checkout.payment_links import take_checkout_results

    # A hosted checkout's charge is keyed on its checkout session; checkout records it in a
    # transaction of its own (its parts come back through ``record_shared_charge``).
    results = take_checkout_results(results, summary)
    by_key = {r.idempotency_key: r for r in results}
    keys = list(by_key)
    for lo in range(0, len(keys), BATCH):
        with transaction.atomic():
            _Recorder({k: by_key[k] for k in keys[lo:lo + BATCH]}, summary, ids=ids).record()


def record_shared_charge(results: list[ChargeResult], summary: Summary | None = None) -> None:
    """Record the parts of ONE processor charge split over several invoices (a checkout that made
    several subscriptions): each part is an attempt of its own invoice and is recorded as above
    (payments, invoice and cycle status, subscription status, dunning) but queues no e-mails; the
    caller sends one receipt for the whole charge."""
    if results:
        with transaction.atomic():
            _Recorder({r.idempotency_key: r for r in results}, summary or Summary(), emails=False).record()


# Admin recipients per e-mail kind, shared by the batches of one billing run (see ``run``).
_RUN_ADMINS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("recur_run_admins", default=None)

_ATTEMPT_FIELDS = (
    "id", "idempotency_key", "status", "amount", "currency", "charge_ref", "invoice_id", "cycle_id",
    "payment_method_id", "invoice__subscription_id", "invoice__contact_id", "invoice__owner_id", "invoice__number",
    "cycle__period_start", "cycle__period_end", "cycle__attempts", "payment_method__type", "payment_method__brand",
    "payment_method__last4", "invoice__contact__name", "invoice__contact__email", "invoice__contact__language",
    "buyer_initiated", "invoice__collection", "invoice__status", "invoice__total", "invoice__amount_paid",
)
_ATTEMPT_SQL = (
    "SELECT a.id, a.idempotency_key, a.status, a.amount, a.currency, a.charge_ref, a.invoice_id, a.cycle_id,"
    " a.payment_method_id, i.subscription_id, i.contact_id, i.owner_id, i.number, c.period_start, c.period_end,"
    " c.attempts, pm.type, pm.brand, pm.last4, ct.name, ct.email, ct.language, a.buyer_initiated, i.collection,"
    " i.status, i.total, i.amount_paid"
    " FROM billing_paymentattempt a JOIN billing_invoice i ON i.id = a.invoice_id"
    " LEFT JOIN billing_billingcycle c ON c.id = a.cycle_id"
    " LEFT JOIN payments_paymentmethod pm ON pm.id = a.payment_method_id"
    " LEFT JOIN crm_contact ct ON ct.id = i.contact_id"
    " WHERE a.status IN ('started', 'pending') AND a.idempotency_key IN ({in})"
)
_SUB_STATE = ("id", "status", "payments_made", "total_paid", "name", "canceled_at", "cancel_mode", "next_payment_date")


class _Recorder:
    def __init__(self, by_key: dict[str, ChargeResult], summary: Summary, emails: bool = True,
                 ids: dict[str, int] | None = None):
        self.by_key, self.summary, self.send, self.ids = by_key, summary, emails, ids or {}
        self.now, self.today = clock.now(), clock.today()
        self.today_iso = self.today.isoformat()
        self.emails: list[dict] = []
        # Who gets each admin e-mail: asked once per billing run (or per batch outside one).
        run_admins = _RUN_ADMINS.get()
        self.admins: dict[str, list] = run_admins if run_admins is not None else {}
        self.iso: dict = {}

    def record(self) -> None:
        # A late ``succeeded`` may settle an attempt recorded as failed (see record_results).
        sql = _ATTEMPT_SQL if not any(r.status == "succeeded" for r in self.by_key.values()) else \
            _ATTEMPT_SQL.replace("a.status IN ('started', 'pending')", "a.status IN ('started', 'pending', 'failed')")
        if all(k in self.ids for k in self.by_key):  # by primary key: cheaper than by the key's index
            sql, wanted = sql.replace("a.idempotency_key IN", "a.id IN"), sorted(self.ids[k] for k in self.by_key)
        else:
            wanted = list(self.by_key)
        rows = fetch_in(sql, wanted, tail=" ORDER BY a.id" + _lock_clause(of="a"))
        attempts = [
            a for a in (dict(zip(_ATTEMPT_FIELDS, r)) for r in rows)
            if not (a["status"] == "pending" and self.by_key[a["idempotency_key"]].status == "pending")
            and not (a["status"] == "failed" and self.by_key[a["idempotency_key"]].status != "succeeded")
        ]
        if not attempts:
            return
        sub_ids = sorted({a["invoice__subscription_id"] for a in attempts if a["invoice__subscription_id"]})
        # Subscriptions locked before invoices, as manual payments, void and write-off lock them.
        self.subs = {r[0]: dict(zip(_SUB_STATE, r)) for r in fetch_in(
            f"SELECT {', '.join(_SUB_STATE)} FROM subscriptions_subscription WHERE id IN ({{in}})", sub_ids,
            tail=" ORDER BY id" + _lock_clause())}
        self.invoices: dict[int, list] = {}  # invoice → [status, total, amount_paid] as this batch leaves it
        self._late_successes([a for a in attempts if a["status"] == "failed"])
        for s in self.subs.values():
            s["status0"], s["paid"] = s["status"], False
        self.failed_cycles = defaultdict(set)
        for sid, cid in fetch_in("SELECT subscription_id, id FROM billing_billingcycle WHERE status = 'failed'"
                                 " AND subscription_id IN ({in})", sub_ids):
            self.failed_cycles[sid].add(cid)
        v = self.v = db_adapter()
        now_db, today_db = v(self.now), v(self.today)
        self.now_db = now_db
        # Subscription → its overdue manual invoices (as ``Invoice.overdue_filter``: a payment of it
        # under way does not make it overdue; the attempts this batch settles are not under way any more).
        self.overdue = defaultdict(set)
        settled = [a["id"] for a in attempts if self.by_key[a["idempotency_key"]].status != "pending"]
        not_mine = f" AND f.id NOT IN ({', '.join(['%s'] * len(settled))})" if settled else ""
        for sid, iid in fetch_in("SELECT subscription_id, id FROM billing_invoice i WHERE status = 'open'"
                                 " AND collection = 'manual' AND due_date < %s AND NOT EXISTS (SELECT 1 FROM"
                                 " billing_paymentattempt f WHERE f.invoice_id = i.id AND f.status IN"
                                 f" ('started', 'pending'){not_mine}) AND subscription_id IN ({{in}})",
                                 sub_ids, [today_db, *settled]):
            self.overdue[sid].add(iid)
        earlier = dict(fetch_in("SELECT attempt_id, id FROM billing_payment WHERE attempt_id IN ({in})",
                                [a["id"] for a in attempts if a["status"] in ("pending", "failed")]))
        self.attempt_rows, self.invoice_rows, self.cycle_rows = [], [], []
        new_payments, changed_payments = [], []
        days: dict = {}  # period dates repeat: each adapted once

        def day(value):
            found = days.get(value)
            if found is None:
                found = days[value] = v(value)
            return found

        for a in attempts:
            r = self.by_key[a["idempotency_key"]]
            message = r.failure_message[:300]
            if a["id"] in earlier:
                a["payment_id"] = earlier[a["id"]]
                changed_payments.append((r.status, r.charge_ref, message, now_db, a["payment_id"]))
            else:
                new_payments.append(a)
                a["payment_row"] = (
                    a["invoice__subscription_id"], a["invoice_id"], a["invoice__contact_id"], a["id"], a["amount"],
                    a["currency"], r.status, 0, a["payment_method__type"] or "card", a["payment_method_id"],
                    r.charge_ref, "", message, today_db,
                    day(a["cycle__period_start"]) if a["cycle_id"] else None,
                    day(a["cycle__period_end"]) if a["cycle_id"] else None,
                    a["invoice__owner_id"], now_db, now_db)
            self.attempt_rows.append((r.status, r.charge_ref or a["charge_ref"], now_db, r.failure_code, message,
                                      a["id"]))
            if r.status == "succeeded":
                self._succeeded(a)
            elif r.status == "failed":
                self._failed(a)
            else:
                self.summary.pending += 1
        ids = insert_returning_ids(
            "billing_payment",
            ("subscription_id", "invoice_id", "contact_id", "attempt_id", "amount", "currency", "status",
             "refunded_amount", "method", "payment_method_id", "charge_ref", "reference", "failure_message", "paid_on",
             "period_start", "period_end", "owner_id", "created_at", "updated_at"),
            [a["payment_row"] for a in new_payments])
        for a, pid in zip(new_payments, ids):
            a["payment_id"] = pid
        execute_many("UPDATE billing_payment SET status = %s, charge_ref = CASE WHEN %s = '' THEN charge_ref ELSE %s END,"
                     " failure_message = %s, updated_at = %s WHERE id = %s",
                     [(st, ref, ref, msg, at, pid) for st, ref, msg, at, pid in changed_payments])
        self._write(now_db)
        for a in attempts if self.send else ():
            self._emails(a, self.by_key[a["idempotency_key"]])
        self.summary.emails_queued += outbox.queue_many(self.emails)

    def _late_successes(self, late: list[dict]) -> None:
        """Attempts recorded ``failed`` whose money arrived after all: lock their cycles and invoices
        (after the attempts and subscriptions; cycles before invoices, as the invoice payment page
        does) and take the invoices' state as it is now, for ``_takes``."""
        if not late:
            return
        list(BillingCycle.objects.select_for_update().filter(pk__in=sorted({a["cycle_id"] for a in late
                                                                             if a["cycle_id"]})).order_by("pk"))
        for pk, status, total, paid in (Invoice.objects.select_for_update()
                                        .filter(pk__in=sorted({a["invoice_id"] for a in late})).order_by("pk")
                                        .values_list("pk", "status", "total", "amount_paid")):
            self.invoices[pk] = [status, total, paid]
        for a in late:
            a["late"] = True

    def _takes(self, a: dict) -> None:
        """How much of a succeeded charge its invoice takes: what is left of it (``applied``; usually all,
        as a charge asks for what is due). An invoice paid or voided since takes nothing (``overpaid``);
        one paid in part otherwise since takes the rest and leaves a ``surplus``: both are for the admins
        to refund. A second success for one invoice in the batch takes what the first left."""
        state = self.invoices.get(a["invoice_id"])
        if state is None:
            state = self.invoices[a["invoice_id"]] = [a["invoice__status"], a["invoice__total"],
                                                      a["invoice__amount_paid"]]
        status, total, paid = state
        how = "succeeded after it was recorded as failed" if a.get("late") else "succeeded"
        if status not in TAKES_PAYMENTS:
            a["overpaid"] = status  # paid or void by now
            log.warning("Payment attempt %s (key %s) %s, but invoice %s is %s by now: nothing was due; refund the "
                        "%s %s by hand", a["id"], a["idempotency_key"], how, a["invoice__number"], status,
                        a["amount"], a["currency"])
            return
        a["applied"] = applied = min(a["amount"], max(total - paid, 0))
        a["settles"] = "paid" if paid + applied >= total else status
        if applied < a["amount"]:
            a["surplus"] = a["amount"] - applied
            log.warning("Payment attempt %s (key %s) %s, but only %s %s of invoice %s was still unpaid: refund the "
                        "other %s by hand", a["id"], a["idempotency_key"], how, applied, a["currency"],
                        a["invoice__number"], a["surplus"])
        elif a.get("late"):
            log.warning("Payment attempt %s (key %s) %s: invoice %s is %s now", a["id"], a["idempotency_key"], how,
                        a["invoice__number"], a["settles"])
        state[:] = [a["settles"], total, paid + applied]

    def _succeeded(self, a: dict) -> None:
        self.summary.charged += 1
        self._takes(a)
        sub = self.subs.get(a["invoice__subscription_id"])
        if sub is not None:  # what was received, whatever it pays (a refund takes it back)
            sub["total_paid"] += a["amount"]
            sub["paid"] = True
        if a.get("overpaid"):
            return  # the invoice was settled otherwise: only the payment itself is recorded
        settles = a["settles"]
        self.invoice_rows.append((a["applied"], settles, self.now_db if settles == "paid" else None,
                                  self.now_db, a["invoice_id"]))
        if settles != "paid":
            return
        if a["cycle_id"]:
            # A late success is the outcome of a try already counted; it also ends the cycle's retries.
            tries = a["cycle__attempts"] if a.get("late") else a["cycle__attempts"] + 1
            self.cycle_rows.append(("paid", tries, None, a["cycle_id"]))
        if sub is None:
            return
        a["first"] = sub["payments_made"] == 0
        sub["payments_made"] += 1 if a["cycle_id"] else 0  # a proration charge is not a scheduled payment
        failed, overdue = self.failed_cycles.get(sub["id"]), self.overdue.get(sub["id"])
        if failed:
            failed.discard(a["cycle_id"])
        if overdue:
            overdue.discard(a["invoice_id"])  # this invoice is paid now
        unpaid = failed or overdue
        if not _is_terminal(sub["status"]) and sub["status"] != "paused" and not unpaid:
            sub["status"] = _transition(sub["status"], "payment_succeeded")

    def _failed(self, a: dict) -> None:
        self.summary.failed += 1
        if a["buyer_initiated"] and (a["invoice__collection"] == "manual" or a["invoice__status"] == "uncollectible"):
            return  # the buyer's own try on an invoice page, or on one written off: no dunning, no change of status
        tries = (a["cycle__attempts"] if a["cycle_id"] else 0) + 1
        days = retry_days()
        a["next_retry"] = self.today + dt.timedelta(days=days[tries - 1]) if tries <= len(days) else None
        if a["cycle_id"]:
            self.cycle_rows.append(("failed", tries, self.v(a["next_retry"]) if a["next_retry"] else None,
                                    a["cycle_id"]))
        sub = self.subs.get(a["invoice__subscription_id"])
        if sub is None:
            return
        if a["cycle_id"]:
            self.failed_cycles[sub["id"]].add(a["cycle_id"])
        if not _is_terminal(sub["status"]) and sub["status"] != "paused":
            sub["status"] = _transition(sub["status"], "payment_failed")
            if a["next_retry"] is None and dunning_policy() == "cancel":
                sub["status"] = _transition(sub["status"], "dunning_exhausted_cancel")
                sub["canceled_at"], sub["cancel_mode"], sub["next_payment_date"] = self.now, "immediately", None
                self.summary.canceled += 1

    def _write(self, now_db) -> None:
        v = self.v
        today_db = v(self.today)
        update_many("billing_paymentattempt",
                    ("status", "charge_ref", "completed_at", "failure_code", "failure_message"), self.attempt_rows)
        # Cycles before invoices: the order the invoice payment page locks them in.
        update_many("billing_billingcycle", ("status", "attempts", "next_retry_on"), self.cycle_rows)
        update_many("billing_invoice", ("amount_paid", "status", "paid_at", "updated_at"), self.invoice_rows,
                    expressions={"amount_paid": "{column} + {value}"})
        # The payment columns for each paid subscription; the indexed status columns only where they changed.
        update_many(
            "subscriptions_subscription", ("payments_made", "total_paid", "last_payment_date", "updated_at"),
            [(s["payments_made"], s["total_paid"], today_db, now_db, s["id"]) for s in self.subs.values() if s["paid"]])
        changed = [s for s in self.subs.values() if s["status"] != s["status0"]]
        update_many(
            "subscriptions_subscription", ("status", "canceled_at", "cancel_mode", "next_payment_date", "updated_at"),
            [(s["status"], v(s["canceled_at"]), s["cancel_mode"], v(s["next_payment_date"]), now_db, s["id"])
             for s in changed])
        _history([(s["id"], s["status0"], s["status"]) for s in changed], now_db)

    def _emails(self, a: dict, r: ChargeResult) -> None:
        if r.status == "pending":
            return
        sub = self.subs.get(a["invoice__subscription_id"])
        contact = {"name": a["invoice__contact__name"], "email": a["invoice__contact__email"],
                   "language": a["invoice__contact__language"]}
        if a.get("overpaid"):
            self._to_refund(a, sub, contact)
            return
        ctx = {
            "subscription_name": sub["name"] if sub else a["invoice__number"], "customer_name": contact["name"],
            "customer_email": contact["email"] or "", "amount": _money(a["amount"], a["currency"]),
            "period_start": self._iso(a["cycle__period_start"]), "period_end": self._iso(a["cycle__period_end"]),
            "payment_method": _method(a),
        }
        pid = a["payment_id"]
        record = ("payment", pid)
        if r.status == "succeeded":
            ctx["paid_on"] = self.today_iso  # as the outbox's JSON would write the date
            _buyer_email(self.emails, "payment_receipt", contact, ctx, outbox.record_key("receipt", pid), pid)
            sid = sub["id"] if sub else None
            self._admin_emails("admin_payment_succeeded", ctx, record, "admin_ok", pid, sid)
            if a.get("first"):
                self._admin_emails("seller_receipt", ctx, record, "seller_receipt", pid, sid)
            if a.get("surplus"):
                self._to_refund(a, sub, contact)
            return
        if a["buyer_initiated"]:
            return  # the buyer saw the decline on the page
        from recur.checkout.links import update_payment_method_url

        ctx.update(failed_on=self.today, reason=r.failure_message, reason_code=r.failure_code,
                   next_retry_on=a.get("next_retry"),
                   update_url=update_payment_method_url(sub["id"]) if sub else "")
        _buyer_email(self.emails, "payment_failed", contact, ctx, outbox.record_key("failed", pid), pid)
        self._admin_emails("admin_payment_failed", ctx, record, "admin_failed", pid, sub["id"] if sub else None)

    def _to_refund(self, a: dict, sub: dict | None, contact: dict) -> None:
        """A late success the invoice did not need, or not all of it: an e-mail asking the admins to refund
        it (besides the warning in the log). Paid or voided since: all of it, and no receipt to the buyer
        (nothing was due); paid in part by hand since: the ``surplus`` (the buyer has a receipt)."""
        ctx = {"customer_name": contact["name"], "amount": _money(a["amount"], a["currency"]),
               "invoice_number": a["invoice__number"], "invoice_status": a.get("overpaid") or a["settles"],
               "paid_on": self.today_iso, "subscription_name": sub["name"] if sub else "", "payment_method": _method(a),
               "url": outbox.seller_url("invoice_detail", a["invoice_id"])}
        if a.get("surplus"):
            ctx.update(surplus=_money(a["surplus"], a["currency"]), unpaid=_money(a["applied"], a["currency"]))
        self._admin_emails("admin_payment_to_refund", ctx, ("payment", a["payment_id"]), "to_refund", a["payment_id"])

    def _iso(self, day) -> str | None:
        """A date (or a date column's value) as the outbox's JSON writes it, memoised: periods repeat."""
        found = self.iso.get(day)
        if found is None and day is not None:
            found = self.iso[day] = as_date(day).isoformat()
        return found

    def _admin_emails(self, kind: str, ctx: dict, record: tuple, dedupe: str, payment_id: int,
                      subscription_id: int | None = None) -> None:
        """``kind`` to every super admin who wants it; their copy links to the subscription's page."""
        admins = self.admins.get(kind)
        if admins is None:
            admins = self.admins[kind] = outbox.admin_recipients(kind)
        if not admins:
            return
        if subscription_id and "url" not in ctx:
            ctx = {**ctx, "url": outbox.seller_url("subscription_detail", subscription_id)}
        # The context is encoded when queued and never changed after: the e-mails can share it.
        self.emails += [
            {"kind": kind, "to_email": u.email, "to_name": u.name, "language": u.language, "context": ctx,
             "record": record, "dedupe_key": f"{outbox.record_key(dedupe, payment_id)}:user:{u.pk}"}
            for u in admins
        ]


def _method(a: dict) -> dict | None:
    """An attempt's payment method as the e-mails show it."""
    return {"type": a["payment_method__type"], "brand": a["payment_method__brand"],
            "last4": a["payment_method__last4"]} if a["payment_method_id"] else None


def _buyer_email(emails: list, kind: str, contact: dict, context: dict, dedupe: str, payment_id: int) -> None:
    if contact["email"]:  # a contact without an e-mail address gets no e-mail
        emails.append({"kind": kind, "to_email": contact["email"], "to_name": contact["name"],
                       "language": contact["language"], "context": context, "record": ("payment", payment_id),
                       "dedupe_key": dedupe})


# --- dunning, recovery, lifecycle -------------------------------------------------------------


def _retry_batch(today: dt.date, limit: int, only_subscription: int | None = None) -> list[int]:
    """New attempts for failed cycles whose retry is due (R-BILL-6)."""
    now = clock.now()
    with transaction.atomic():
        qs = BillingCycle.objects.filter(status="failed", subscription__status__in=("past_due", "active"))
        if only_subscription is None:
            qs = qs.filter(next_retry_on__lte=today)
        else:
            qs = qs.filter(subscription_id=only_subscription)
        cycles = _claim(qs.order_by("next_retry_on", "id").select_related("subscription", "invoice"), limit)
        attempts = []
        for c in cycles:
            inv, sub = c.invoice, c.subscription
            if inv.amount_due <= 0:
                continue
            n = PaymentAttempt.objects.filter(invoice=inv).count() + 1
            attempts.append(PaymentAttempt(
                invoice=inv, cycle=c, attempt_no=n, idempotency_key=idempotency_key(sub.pk, c.period_index, n, today),
                payment_method_id=sub.payment_method_id, amount=inv.amount_due, currency=inv.currency, created_at=now,
            ))
        BillingCycle.objects.filter(pk__in=[c.pk for c in cycles]).update(next_retry_on=None, status="open")
        PaymentAttempt.objects.bulk_create(attempts)
        return [a.pk for a in attempts]


def collect_past_due(subscription_id: int) -> Summary:
    """Charge every past-due amount of one subscription at once (after a new payment method, R-BILL-6)."""
    summary = Summary()
    _charge(_retry_batch(clock.today(), BATCH, only_subscription=subscription_id), summary)
    return summary


def recover_started(summary: Summary, older_than_seconds: float | None = None) -> None:
    """Settle attempts a crash left ``started``: charging again with the same key is safe."""
    grace = getattr(settings, "RECUR_RECOVERY_GRACE_SECONDS", 60) if older_than_seconds is None else older_than_seconds
    cutoff = clock.now() - dt.timedelta(seconds=grace)
    while True:
        ids = list(PaymentAttempt.objects.filter(status="started", created_at__lte=cutoff)
                   .order_by("id").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return
        _charge(ids, summary)


def poll_processor_events(summary: Summary) -> None:
    """Asynchronous outcomes (bank debits settling or failing), then every still-pending attempt
    settled by looking its key up: an outcome polled by a run that died before recording it is
    found again here, so it is never lost."""
    global _last_reconcile
    events = get_processor().poll_events()
    record_results([ChargeResult(e.idempotency_key, e.status, e.charge_ref, e.failure_code, e.failure_message)
                    for e in events], summary)
    now = clock.now()
    if _last_reconcile is not None and now - _last_reconcile < RECONCILE_EVERY:
        return
    _last_reconcile = now
    # Parts of a shared charge ("<key>/<n>") are settled through the charge's own key (checkout).
    pending = PaymentAttempt.objects.filter(status="pending", created_at__lte=now - RECONCILE_EVERY).exclude(
        idempotency_key__contains="/").values_list("idempotency_key", "payment_method__processor")
    settled = [r for r in (get_processor(p).lookup(k) for k, p in pending.iterator())
               if r is not None and r.status != "pending"]
    record_results(settled, summary)


# Pending attempts older than this are looked up at their processor, at most this often per
# worker process (webhooks and polled events are the normal path; this is the safety net).
RECONCILE_EVERY = dt.timedelta(hours=1)
_last_reconcile: dt.datetime | None = None


def _lifecycle(today: dt.date, summary: Summary) -> None:
    now = clock.now()
    now_db = db_value(now)
    with transaction.atomic():
        changes = []  # (subscription id, old status, new status) for the change history
        # Cancel-at-period-end subscriptions whose period is over.
        ended = _claim(Subscription.objects.filter(cancel_at__lte=today).exclude(status__in=("canceled", "expired"))
                       .order_by("pk"), None, skip_locked=False)
        for sub in ended:
            old, sub.status = sub.status, rules.transition(sub.status, "cancel").value
            sub.canceled_at, sub.next_payment_date, sub.updated_at = now, None, now
            sub.save(update_fields=["status", "canceled_at", "next_payment_date", "updated_at"])
            _stop_retries(sub)
            changes.append((sub.pk, old, sub.status))
            summary.canceled += 1
        # Fixed terms whose last period has ended (R-VIEW-4 Expired).
        expiring = _claim(Subscription.objects.filter(status="active", billing_terms="fixed",
                                                      next_payment_date__isnull=True, end_date__lte=today)
                          .order_by("pk"), None, ("pk",), skip_locked=False)
        expiring = [i for i, in expiring]
        summary.expired += _set_status(expiring, "expired", now)
        changes += [(i, "active", "expired") for i in expiring]
        # Manual invoices not paid by their due date make the subscription past due.
        overdue = Invoice.objects.filter(Invoice.overdue_filter(today), collection="manual",
                                         subscription__status="active").values("subscription_id")
        overdue = [i for i, in _claim(Subscription.objects.filter(pk__in=overdue, status="active").order_by("pk"),
                                      None, ("pk",), skip_locked=False)]
        _set_status(overdue, "past_due", now)
        changes += [(i, "active", "past_due") for i in overdue]
        _history(changes, now_db)
        summary.emails_queued += _queue_reminders(today)


def _set_status(ids: list[int], status: str, now: dt.datetime) -> int:
    return sum(Subscription.objects.filter(pk__in=ids[lo:lo + BATCH]).update(status=status, updated_at=now)
               for lo in range(0, len(ids), BATCH))


def _queue_reminders(today: dt.date) -> int:
    """R-BILL-3: a reminder N days before the next payment (account setting; once per payment date).

    Every subscription whose payment falls within the next N days gets one, so a
    run that missed a day still sends it, late rather than never."""
    account = outbox.account_settings()
    if not account.reminder_enabled:
        return 0
    from recur.checkout.links import update_payment_method_url

    due = (Subscription.objects.filter(status__in=("active", "scheduled"), cancel_at__isnull=True,
                                       next_payment_date__gt=today,
                                       next_payment_date__lte=today + dt.timedelta(days=account.reminder_days))
           .select_related("contact", "payment_method").order_by("pk"))
    messages = []
    for sub in due.iterator(chunk_size=1000):
        c, pm = sub.contact, sub.payment_method
        if not c.email:
            continue
        messages.append({
            "kind": "payment_reminder", "to_email": c.email, "to_name": c.name, "language": c.language,
            "record": ("subscription", sub.pk), "dedupe_key": f"reminder:{sub.pk}:{sub.next_payment_date}",
            "context": {"subscription_name": sub.name, "amount": _money(sub.amount, sub.currency),
                        "payment_date": sub.next_payment_date,
                        "payment_method": {"type": pm.type, "brand": pm.brand, "last4": pm.last4} if pm else None,
                        "update_url": update_payment_method_url(sub) if sub.collection == "auto_charge" else ""},
        })
    return outbox.queue_many(messages)


def _stop_retries(sub: Subscription) -> None:
    BillingCycle.objects.filter(subscription=sub, next_retry_on__isnull=False).update(next_retry_on=None)


# --- the run ---------------------------------------------------------------------------------


def run(today: dt.date | None = None, *, only: list[int] | None = None, batch: int = BATCH) -> Summary:
    """Bill everything due up to ``today`` (default: the account's today). Safe to run anywhere, any time."""
    today = today or clock.today()
    token = _RUN_ADMINS.set({})
    try:
        return _run(today, only, batch)
    finally:
        _RUN_ADMINS.reset(token)


def _run(today: dt.date, only: list[int] | None, batch: int) -> Summary:
    summary = Summary()
    if only is None:
        from recur.checkout.payment_links import settle_sessions

        recover_started(summary)
        poll_processor_events(summary)
        settle_sessions()  # purchases whose request died after the charge
    while True:
        attempt_ids = _issue_batch(today, batch, only, summary)
        if attempt_ids is None:  # nothing left that this worker can claim
            break
        _charge(attempt_ids, summary)
    if only is None:
        while True:
            ids = _retry_batch(today, batch)
            if not ids:
                break
            _charge(ids, summary)
        _lifecycle(today, summary)
    return summary


def tick() -> int:
    """The worker job."""
    return run().work


def next_event_date(after: dt.date) -> dt.date | None:
    """The first day after ``after`` on which the run has something to do (test-mode clock stepping)."""
    candidates = [
        Subscription.objects.filter(status__in=BILLABLE, next_payment_date__gt=after).aggregate(d=Min("next_payment_date"))["d"],
        BillingCycle.objects.filter(status="failed", next_retry_on__gt=after).aggregate(d=Min("next_retry_on"))["d"],
        Subscription.objects.filter(cancel_at__gt=after).exclude(status__in=("canceled", "expired"))
        .aggregate(d=Min("cancel_at"))["d"],
        Subscription.objects.filter(status="active", billing_terms="fixed", end_date__gt=after)
        .aggregate(d=Min("end_date"))["d"],
    ]
    account = outbox.account_settings()
    if account.reminder_enabled:
        lead = dt.timedelta(days=account.reminder_days)
        first = (Subscription.objects.filter(status__in=("active", "scheduled"), next_payment_date__gt=after + lead)
                 .aggregate(d=Min("next_payment_date"))["d"])
        candidates.append(first - lead if first else None)
    due = Invoice.objects.filter(status="open", collection="manual", due_date__gte=after).aggregate(d=Min("due_date"))["d"]
    if due:
        candidates.append(due + dt.timedelta(days=1))
    if PaymentAttempt.objects.filter(status="pending").exists():
        candidates.append(after + dt.timedelta(days=1))
    dates = [d for d in candidates if d]
    return min(dates) if dates else None


def run_until(until: dt.date) -> Summary:
    """Test mode: move the simulated clock day by day to ``until``, billing each due day in order."""
    from recur.core.models import SimulatedClock

    total = Summary()
    day = clock.today()
    total.add(run(day))
    while True:
        nxt = next_event_date(day)
        if nxt is None or nxt > until:
            break
        day = nxt
        _set_clock(day, SimulatedClock)
        total.add(run(day))
    if clock.today() < until:
        _set_clock(until, SimulatedClock)
        total.add(run(until))
    return total


def _set_clock(day: dt.date, model) -> None:
    moment = clock.start_of_day(day) + dt.timedelta(hours=9)
    model.objects.update_or_create(pk=1, defaults={"now": moment})
