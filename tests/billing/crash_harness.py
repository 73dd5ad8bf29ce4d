"""Helpers for the exactly-once tests (R-BILL-8): a throw-away database that
separate ``recur`` processes share, a data set built through the services, and
an audit of the money invariants.

The pytest process never touches that database through Django: it creates it
(a SQLite file, or a fresh PostgreSQL database next to the suite's), and every
step that needs the ORM — migrate, the data set, the billing runs, the audit —
runs in a subprocess with that ``DATABASE_URL``. The same module is that
subprocess's entry point::

    python -m tests.billing.crash_harness setup '{"n": 300, ...}'
    python -m tests.billing.crash_harness audit '{"until": "2028-06-30"}'

(also ``set_clock``, ``bank_debits`` and ``run_killed_after_poll``). Each prints
one JSON document on the last line of its standard output.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECUR = ROOT / ".venv" / "bin" / "recur"
PYTHON = sys.executable
SECRET = "exactly-once-tests-fixed-secret-key-0123456789"  # idempotency keys derive from it: keep it fixed

OK_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"


# --- the pytest side ------------------------------------------------------------------------


def suite_database_url() -> str:
    return os.environ.get("DATABASE_URL", "")


def on_postgresql() -> bool:
    return suite_database_url().startswith(("postgres://", "postgresql://"))


class Target:
    """One database that subprocesses share, with the environment they need."""

    def __init__(self, url: str, data_dir: Path, *, pg_admin_url: str | None = None, pg_name: str | None = None,
                 sqlite_path: Path | None = None):
        self.url, self.data_dir = url, data_dir
        self.pg_admin_url, self.pg_name, self.sqlite_path = pg_admin_url, pg_name, sqlite_path

    @property
    def vendor(self) -> str:
        return "postgresql" if self.pg_name else "sqlite"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": self.url, "RECUR_DATA_DIR": str(self.data_dir), "RECUR_SECRET_KEY": SECRET,
            "DJANGO_SETTINGS_MODULE": "recur.settings", "RECUR_TEST_MODE": "1",
            "RECUR_RECOVERY_GRACE_SECONDS": "0", "RECUR_DUNNING_FINAL_ACTION": "stay_past_due",
            "RECUR_DUNNING_RETRY_DAYS": "3,5,7", "RECUR_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
            "RECUR_PROCESSOR": "builtin",
        })
        env.pop("EMAIL_URL", None)
        env.update(extra)
        return env

    # raw SQL from the pytest process (cheap snapshots between kills)
    def query(self, sql: str) -> list[tuple]:
        if self.pg_name:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                return conn.execute(sql).fetchall()
        conn = sqlite3.connect(self.sqlite_path, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def snapshot(self) -> tuple:
        """What a billing process changes; equal before and after = it did nothing."""
        return self.query(
            "SELECT (SELECT COUNT(*) FROM billing_billingcycle), (SELECT COUNT(*) FROM billing_paymentattempt),"
            " (SELECT COUNT(*) FROM billing_paymentattempt WHERE status = 'started'),"
            " (SELECT COUNT(*) FROM billing_paymentattempt WHERE status <> 'started'),"
            " (SELECT COUNT(*) FROM payments_builtincharge), (SELECT COUNT(*) FROM billing_payment),"
            " (SELECT COUNT(*) FROM notifications_outboxmessage), (SELECT COUNT(*) FROM billing_invoice),"
            " (SELECT COUNT(*) FROM billing_billingcycle WHERE status = 'open'),"
            " (SELECT MAX(now) FROM core_simulatedclock)"
        )[0]

    def started_attempts(self) -> int:
        return self.query("SELECT COUNT(*) FROM billing_paymentattempt WHERE status = 'started'")[0][0]

    # subprocesses
    def script(self, command: str, args: dict | None = None, timeout: float = 300, expect_code: int = 0):
        proc = subprocess.run(
            [PYTHON, "-m", "tests.billing.crash_harness", command, json.dumps(args or {})],
            cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )
        if expect_code != 0 and proc.returncode == expect_code:
            return None
        if proc.returncode != 0 or expect_code != 0:
            raise AssertionError(f"harness {command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def bill(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(RECUR), "bill", *args], cwd=ROOT, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def bill_to_completion(self, *args: str, timeout: float = 300) -> str:
        proc = self.bill(*args)
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"recur bill {' '.join(args)} failed ({proc.returncode}):\n{out}\n{err}")
        return out

    def migrate(self) -> None:
        proc = subprocess.run([str(RECUR), "manage", "migrate", "-v0"], cwd=ROOT, env=self.env(),
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise AssertionError(f"migrate failed:\n{proc.stdout}\n{proc.stderr}")

    def drop(self) -> None:
        if self.pg_name:
            import psycopg

            with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Databases:
    """Makes one migrated database holding the data set, then hands out copies of it."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="recur-exactly-once-"))
        self.count = 0
        self.targets: list[Target] = []
        self.template: Target | None = None

    def _new(self, suffix: str, template: Target | None = None) -> Target:
        data_dir = self.base / suffix
        data_dir.mkdir(parents=True, exist_ok=True)
        if on_postgresql():
            parts = urllib.parse.urlsplit(suite_database_url())
            admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
            name = f"recur_crash_{os.getpid()}_{suffix}"
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as conn:
                if template is None:
                    _drop_orphans(conn)
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                if template is None:
                    conn.execute(f'CREATE DATABASE "{name}"')
                else:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.pg_name}"')
            target = Target(urllib.parse.urlunsplit(parts._replace(path=f"/{name}")), data_dir,
                            pg_admin_url=admin_url, pg_name=name)
        else:
            path = data_dir / "recur.sqlite3"
            if template is not None:  # the backup API copies a consistent image, WAL included
                src, dst = sqlite3.connect(template.sqlite_path), sqlite3.connect(path)
                with dst:
                    src.backup(dst)
                src.close()
                dst.close()
            target = Target(f"sqlite:///{path}", data_dir, sqlite_path=path)
        self.targets.append(target)
        return target

    def prepare(self, **setup_args) -> dict:
        self.template = self._new("tpl")
        self.template.migrate()
        return self.template.script("setup", setup_args)

    def copy(self) -> Target:
        assert self.template is not None
        self.count += 1
        return self._new(f"c{self.count}", self.template)

    def close(self) -> None:
        for t in reversed(self.targets):
            try:
                t.drop()
            except Exception:  # pragma: no cover - best effort clean-up
                pass
        shutil.rmtree(self.base, ignore_errors=True)


def _drop_orphans(conn) -> None:
    """Databases left by an earlier test process that died before its clean-up."""
    for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'recur\\_crash\\_%'").fetchall():
        pid = name.split("_")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def set_clock(target: Target, day: dt.date) -> None:
    target.script("set_clock", {"day": day.isoformat()})


# --- the subprocess side (needs Django with the target's DATABASE_URL) ----------------------------


def _setup(n: int = 300, start: str = "2028-01-01", decline_every: int = 10, spread_days: int = 28) -> dict:
    """``n`` monthly auto-charge subscriptions created through the services, starting on
    ``start`` … ``start + spread_days``; every ``decline_every``-th one has the decline card."""
    from django.db import transaction

    from recur.core.auth import create_user
    from recur.crm import services as crm
    from recur.payments import services as payments
    from recur.subscriptions import services as subscriptions

    first = dt.date.fromisoformat(start)
    _set_clock(first)
    admin = create_user("admin@example.com", "correct-horse-9", super_admin=True, name="Ada Admin")
    declined = []
    with transaction.atomic():
        for i in range(n):
            contact = crm.create_contact(admin, {"name": f"Buyer {i}", "email": f"buyer{i}@example.com"})
            card = DECLINE_CARD if i % decline_every == decline_every - 1 else OK_CARD
            pm = payments.add_payment_method(admin, contact, {
                "type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
            day = first + dt.timedelta(days=i % spread_days)
            sub = subscriptions.create_subscription(admin, {
                "contact_id": contact.pk, "collection": "auto_charge", "payment_method_id": pm.pk,
                "line_items": [{"name": "Plan", "unit_price": 1000 + i, "currency": "EUR", "quantity": 1,
                                "billing_frequency": "monthly", "billing_start_date": day.isoformat()}],
            })
            if card == DECLINE_CARD:
                declined.append(sub.pk)
    return {"subscriptions": n, "declined": declined}


def _bank_debits(n: int = 3, start: str = "2028-01-01") -> dict:
    """``n`` more monthly subscriptions paid by bank debit (they stay ``pending`` for three
    business days, then settle through ``poll_events``)."""
    from django.db import transaction

    from recur.core.models import User
    from recur.crm import services as crm
    from recur.payments import services as payments
    from recur.subscriptions import services as subscriptions

    admin = User.objects.filter(is_superuser=True).first()
    ids = []
    with transaction.atomic():
        for i in range(n):
            contact = crm.create_contact(admin, {"name": f"Debit {i}", "email": f"debit{i}@example.com"})
            pm = payments.add_payment_method(admin, contact, {"type": "bank_account", "bank_account": {
                "routing_number": "110000000", "account_number": f"0001234567{i:02d}", "holder_name": f"Debit {i}"}})
            ids.append(subscriptions.create_subscription(admin, {
                "contact_id": contact.pk, "collection": "auto_charge", "payment_method_id": pm.pk,
                "line_items": [{"name": "Plan", "unit_price": 2500, "currency": "EUR", "quantity": 1,
                                "billing_frequency": "monthly", "billing_start_date": start}],
            }).pk)
    return {"subscriptions": ids}


def _run_killed_after_poll() -> dict:
    """``engine.run()``, SIGKILLed at one precise moment: right after the processor has reported
    the settled bank debits (``poll_events`` committed) and before the run has recorded them."""
    import signal

    from recur.billing import engine
    from recur.payments.processor import get_processor

    def poll_then_die(summary):
        events = get_processor().poll_events()
        if events:
            os.kill(os.getpid(), signal.SIGKILL)
        return engine.record_results([], summary)

    engine.poll_processor_events = poll_then_die
    engine.run()
    return {"events": 0}


def _set_clock(day: dt.date) -> None:
    from recur.core import clock
    from recur.core.models import SimulatedClock

    SimulatedClock.objects.update_or_create(pk=1, defaults={"now": clock.start_of_day(day) + dt.timedelta(hours=9)})


def _parse_key(key: str) -> tuple[int, int, int]:
    """``rc-<install>-<issued on>-<subscription>-<period>-<attempt>`` → (subscription, period, attempt)."""
    _, _, _, sub, period, attempt = key.split("-")
    return int(sub), int(period), int(attempt)


def _audit(until: str, complete: bool = True) -> dict:
    """Every money invariant of R-BILL-8 and DESIGN "Money safety rules", as lists of offending rows.

    ``until``: the last billed day; every period starting on or before it must have exactly one
    cycle. ``complete``: the last run finished (no attempt may be left ``started``).
    """
    from collections import Counter, defaultdict

    from recur.billing.models import BillingCycle, Invoice, InvoiceSequence, Payment, PaymentAttempt
    from recur.notifications.models import OutboxMessage
    from recur.payments.models import BuiltinCharge
    from recur.subscriptions.models import Subscription

    last_day = dt.date.fromisoformat(until)
    problems: dict[str, list] = defaultdict(list)
    subs = {s.pk: s for s in Subscription.objects.all()}

    # 1. exactly one cycle per due (subscription, period), with the schedule's dates
    cycles = list(BillingCycle.objects.values("id", "subscription_id", "period_index", "period_start", "period_end",
                                              "status", "amount"))
    per_period = Counter((c["subscription_id"], c["period_index"]) for c in cycles)
    problems["duplicate_cycles"] = [k for k, v in per_period.items() if v > 1]
    expected = set()
    for s in subs.values():
        k = s.anchor_index
        while s.period_start(k) <= last_day:
            expected.add((s.pk, k))
            k += 1
    problems["missing_cycles"] = sorted(expected - set(per_period))
    problems["unexpected_cycles"] = sorted(set(per_period) - expected)
    for c in cycles:
        s = subs[c["subscription_id"]]
        if (c["period_start"], c["period_end"]) != s.period(c["period_index"]):
            problems["cycle_dates_off_schedule"].append(c["id"])
        if c["amount"] != s.amount:
            problems["cycle_amount_wrong"].append(c["id"])
    cycle_key = {c["id"]: (c["subscription_id"], c["period_index"]) for c in cycles}

    # 2. one invoice per cycle; numbers unique and gapless per year (1..N), increasing with the period
    invoices = list(Invoice.objects.values("id", "number", "cycle_id", "subscription_id", "total", "amount_paid",
                                           "status"))
    per_cycle = Counter(i["cycle_id"] for i in invoices if i["cycle_id"])
    problems["cycles_without_one_invoice"] = [c["id"] for c in cycles if per_cycle[c["id"]] != 1]
    numbers = Counter(i["number"] for i in invoices)
    problems["duplicate_invoice_numbers"] = [n for n, v in numbers.items() if v > 1]
    by_year = defaultdict(list)
    for number in numbers:
        year, seq = number.split("-")
        by_year[int(year)].append(int(seq))
    sequences = dict(InvoiceSequence.objects.values_list("year", "last"))
    for year, seqs in sorted(by_year.items()):
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
            problems["invoice_number_gaps"].append({"year": year, "count": len(seqs), "max": max(seqs),
                                                    "missing": missing[:10]})
        if sequences.get(year) != len(seqs):
            problems["invoice_sequence_mismatch"].append({"year": year, "last": sequences.get(year),
                                                          "issued": len(seqs)})
    inv_by_cycle = {i["cycle_id"]: i for i in invoices if i["cycle_id"]}
    order = defaultdict(list)
    for c in cycles:
        inv = inv_by_cycle.get(c["id"])
        if inv:
            year, seq = inv["number"].split("-")
            order[c["subscription_id"]].append((c["period_start"], c["period_index"], (int(year), int(seq))))
    for sub_id, rows in order.items():
        rows.sort()
        idx = [r[1] for r in rows]
        nums = [r[2] for r in rows]
        if idx != sorted(idx) or len(set(idx)) != len(idx) or nums != sorted(nums):
            problems["out_of_order"].append(sub_id)

    # 3. the processor's ledger: at most one succeeded charge per (subscription, period)
    charges = list(BuiltinCharge.objects.values("idempotency_key", "status", "charge_ref", "amount"))
    ok_per_period = Counter()
    for ch in charges:
        if ch["status"] == "succeeded":
            ok_per_period[_parse_key(ch["idempotency_key"])[:2]] += 1
    problems["periods_charged_twice"] = [k for k, v in ok_per_period.items() if v > 1]
    attempts = list(PaymentAttempt.objects.values("id", "idempotency_key", "status", "cycle_id", "amount",
                                                  "charge_ref", "invoice_id"))
    attempt_keys = {a["idempotency_key"] for a in attempts}
    problems["charges_without_attempt"] = [ch["idempotency_key"] for ch in charges
                                           if ch["idempotency_key"] not in attempt_keys]
    charge_by_key = {ch["idempotency_key"]: ch for ch in charges}
    charge_by_ref = {ch["charge_ref"]: ch for ch in charges}
    if complete:
        problems["attempts_left_started"] = [a["id"] for a in attempts if a["status"] == "started"]
    for a in attempts:
        ch = charge_by_key.get(a["idempotency_key"])
        if a["status"] in ("succeeded", "pending") and ch is None:
            problems["attempt_outcome_without_charge"].append(a["id"])
        if ch is not None and a["status"] != "started" and ch["status"] != a["status"]:
            problems["attempt_disagrees_with_charge"].append(a["id"])
        if a["cycle_id"] and cycle_key.get(a["cycle_id"]) != _parse_key(a["idempotency_key"])[:2]:
            problems["attempt_key_not_its_cycle"].append(a["id"])

    # 4. payments: one per attempt; succeeded ones match a succeeded charge; per period = the ledger
    payments = list(Payment.objects.values("id", "attempt_id", "status", "charge_ref", "amount", "subscription_id",
                                           "invoice_id"))
    attempt_by_id = {a["id"]: a for a in attempts}
    per_attempt = Counter(p["attempt_id"] for p in payments if p["attempt_id"])
    problems["attempts_with_several_payments"] = [k for k, v in per_attempt.items() if v > 1]
    ok_payments_per_period = Counter()
    paid_per_sub = defaultdict(lambda: [0, 0])
    paid_per_invoice = Counter()
    for p in payments:
        if p["status"] != "succeeded":
            continue
        ch = charge_by_ref.get(p["charge_ref"])
        if ch is None or ch["status"] != "succeeded" or ch["amount"] != p["amount"]:
            problems["succeeded_payment_without_charge"].append(p["id"])
        a = attempt_by_id.get(p["attempt_id"])
        if a is not None and a["cycle_id"]:
            ok_payments_per_period[cycle_key[a["cycle_id"]]] += 1
            paid_per_sub[p["subscription_id"]][0] += 1
        paid_per_sub[p["subscription_id"]][1] += p["amount"]
        paid_per_invoice[p["invoice_id"]] += p["amount"]
    for key in set(ok_per_period) | set(ok_payments_per_period):
        if ok_per_period[key] != ok_payments_per_period[key]:
            problems["ledger_disagrees_with_payments"].append(
                {"period": key, "charges": ok_per_period[key], "payments": ok_payments_per_period[key]})
    for i in invoices:
        if i["amount_paid"] != paid_per_invoice[i["id"]] or i["amount_paid"] > i["total"]:
            problems["invoice_amount_paid_wrong"].append(
                {"invoice": i["id"], "amount_paid": i["amount_paid"], "payments": paid_per_invoice[i["id"]]})
        if (i["status"] == "paid") != (i["amount_paid"] >= i["total"]):
            problems["invoice_status_wrong"].append(i["id"])
    for s in subs.values():
        made, total = paid_per_sub[s.pk]
        if s.payments_made != made:
            problems["payments_made_wrong"].append({"subscription": s.pk, "payments_made": s.payments_made,
                                                    "succeeded_cycle_payments": made})
        if s.total_paid != total:
            problems["total_paid_wrong"].append({"subscription": s.pk, "total_paid": s.total_paid, "payments": total})

    # 5. the outbox: one receipt per succeeded payment, none twice for a period; one seller receipt
    receipts = Counter(OutboxMessage.objects.filter(kind="payment_receipt").values_list("record_id", flat=True))
    payment_by_id = {p["id"]: p for p in payments}
    problems["duplicate_receipts"] = [k for k, v in receipts.items() if v > 1]
    receipts_per_period = Counter()
    for pid, n in receipts.items():
        p = payment_by_id.get(pid)
        a = attempt_by_id.get(p["attempt_id"]) if p else None
        if p is None or p["status"] != "succeeded":
            problems["receipt_for_no_succeeded_payment"].append(pid)
        elif a and a["cycle_id"]:
            receipts_per_period[cycle_key[a["cycle_id"]]] += n
    problems["period_receipted_twice"] = [k for k, v in receipts_per_period.items() if v > 1]
    problems["succeeded_payment_without_receipt"] = [p["id"] for p in payments
                                                     if p["status"] == "succeeded" and receipts[p["id"]] != 1]
    admin_ok = Counter(OutboxMessage.objects.filter(kind="admin_payment_succeeded").values_list("record_id", flat=True))
    problems["duplicate_admin_notices"] = [k for k, v in admin_ok.items() if v > 1]
    seller = Counter(Payment.objects.filter(pk__in=list(
        OutboxMessage.objects.filter(kind="seller_receipt").values_list("record_id", flat=True)
    )).values_list("subscription_id", flat=True))
    problems["seller_receipt_more_than_once"] = [k for k, v in seller.items() if v > 1]

    status = Counter(c["status"] for c in cycles)
    return {
        "problems": {k: v[:15] for k, v in problems.items() if v},
        "counts": {
            "subscriptions": len(subs), "due_periods": len(expected), "cycles": len(cycles),
            "cycle_status": dict(status), "invoices": len(invoices), "attempts": len(attempts),
            "charges": len(charges), "succeeded_charges": sum(ok_per_period.values()), "payments": len(payments),
            "receipts": sum(receipts.values()),
        },
        "cycles": [[c["subscription_id"], c["period_index"], c["period_start"].isoformat(),
                    inv_by_cycle[c["id"]]["number"] if c["id"] in inv_by_cycle else None] for c in cycles],
    }


def _main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recur.settings")
    import django

    django.setup()
    command, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    if command == "setup":
        out = _setup(**args)
    elif command == "audit":
        out = _audit(**args)
    elif command == "bank_debits":
        out = _bank_debits(**args)
    elif command == "run_killed_after_poll":
        out = _run_killed_after_poll()
    elif command == "set_clock":
        _set_clock(dt.date.fromisoformat(args["day"]))
        out = {"ok": True}
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
