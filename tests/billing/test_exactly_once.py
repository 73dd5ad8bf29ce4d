"""Each due period is charged exactly once, whatever happens (R-BILL-8; DESIGN "Money safety rules").

The real ``recur bill`` runs as a subprocess against a throw-away database (a
SQLite file, or a fresh PostgreSQL database when the suite runs on PostgreSQL)
that holds 300 monthly auto-charge subscriptions made through the services, one
in ten with the decline card (so dunning retries are in the mix). The tests

1. SIGKILL it at random moments, 50 times, then let it finish;
2. run several at once (PostgreSQL: 4, SQLite: 2), stepping the clock together
   and then all catching up eleven months into a new year;
3. stop billing for three months, then run it once: every missed period is
   billed once, in order;
4. kill it between a bank debit's settlement and its recording (the run after it settles it by key lookup);

and audit every money invariant afterwards (``crash_harness._audit``): one
billing cycle per due (subscription, period); invoice numbers unique and gapless
per year, increasing with the period; at most one succeeded charge per period in
the built-in processor's ledger, and exactly as many succeeded payments; no
attempt left ``started``; each attempt's outcome equal to its charge's; every
succeeded payment backed by a succeeded charge of the same amount;
``payments_made`` / ``total_paid`` equal to the payments; one receipt per payment.
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import subprocess
import time
from collections import Counter

import pytest

from tests.billing.crash_harness import Databases, on_postgresql, set_clock

D = dt.date
START = D(2028, 1, 1)  # the simulated clock's first day (later than the real date: test mode uses it)
N_SUBSCRIPTIONS = 300
SPREAD_DAYS = 28  # the subscriptions start on 1 … 28 January 2028: something is due most days
SEED = 8_2028
KILLS = 50


@pytest.fixture(scope="module")
def databases():
    dbs = Databases()
    try:
        dbs.prepare(n=N_SUBSCRIPTIONS, start=START.isoformat(), spread_days=SPREAD_DAYS)
        yield dbs
    finally:
        dbs.close()


def _assert_clean(audit: dict) -> None:
    assert not audit["problems"], f"money invariants broken: {audit['problems']}\ncounts: {audit['counts']}"


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# --- 1. SIGKILL at random moments -----------------------------------------------------------------


def test_sigkill_at_random_moments_never_bills_or_charges_twice(databases):
    target = databases.copy()
    rng = random.Random(SEED)

    # How long an empty run takes on this machine (Python and Django start-up, mostly): the kill
    # delays are drawn from just before it to a little after, so most kills hit a working run.
    target.bill_to_completion("--until", START.isoformat())  # bills 1 January
    began = time.monotonic()
    target.bill_to_completion("--until", START.isoformat())  # nothing left to do
    startup = time.monotonic() - began

    # Each run bills up to ``goal``; whenever one finishes before its kill, the goal moves on
    # half a month, so there is always work in flight to kill.
    goal, landed, rounds = START + dt.timedelta(days=15), Counter(), 0
    while landed["killed"] < KILLS:
        rounds += 1
        assert rounds <= 4 * KILLS, f"the kills keep missing the runs: {landed}"
        before = target.snapshot()
        proc = target.bill("--until", goal.isoformat())
        delay = rng.uniform(0.8 * startup, startup + 0.4)
        try:
            code, out, err = _finish(proc, timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            code, out, err = _finish(proc)
        if code == -signal.SIGKILL:
            landed["killed"] += 1
            after = target.snapshot()
            if after == before:
                landed["before its first commit"] += 1
                startup *= 1.05  # start-up is slower than measured (a busy machine): aim a little later
            else:
                landed["mid-run, after committing work"] += 1
                if after[2]:
                    landed["between issue and record (attempts left started)"] += 1
        else:  # it finished first (possibly in the instant before the signal)
            assert code == 0, f"recur bill failed on its own:\n{out}\n{err}"
            landed["finished before the kill"] += 1
            goal += dt.timedelta(days=15)

    before = target.snapshot()
    target.bill_to_completion("--until", goal.isoformat())
    after_first = target.snapshot()
    target.bill_to_completion("--until", goal.isoformat())  # a second run changes nothing
    assert target.snapshot() == after_first

    audit = target.script("audit", {"until": goal.isoformat(), "complete": True})
    print(f"\n[{target.vendor}] empty run {startup:.2f}s; {rounds} runs billing up to {goal}: {dict(landed)}; "
          f"left to the last run: {after_first[0] - before[0]} cycles, {before[2]} started attempts; "
          f"{audit['counts']}")
    _assert_clean(audit)
    assert audit["counts"]["cycles"] == audit["counts"]["due_periods"] >= N_SUBSCRIPTIONS
    # A test that never killed a working run proves nothing: many kills must land mid-run.
    assert landed["mid-run, after committing work"] >= KILLS // 3, landed


# --- 2. several workers at once ---------------------------------------------------------------------


def _run_together(target, workers: int, *args: str) -> list[tuple[int, str, str]]:
    procs = [target.bill(*args) for _ in range(workers)]
    return [_finish(p) for p in procs]


def _assert_all_succeeded(results, vendor: str) -> None:
    for code, out, err in results:
        assert "database is locked" not in err, f"[{vendor}] a worker hit 'database is locked':\n{err}"
        assert code == 0 and "Traceback" not in err, f"[{vendor}] a worker crashed ({code}):\n{out}\n{err}"


def _concurrent_workers(databases, workers: int) -> None:
    """Workers stepping the simulated clock together to 15 February, then — after eleven months
    without billing — all catching up at once, on 5 January 2029 (the first invoices of a new year:
    its number sequence row is created by whichever worker gets there first)."""
    target = databases.copy()
    mid, final = D(2028, 2, 15), D(2029, 1, 5)
    began = time.monotonic()
    _assert_all_succeeded(_run_together(target, workers, "--until", mid.isoformat()), target.vendor)
    set_clock(target, final)
    results = _run_together(target, workers)
    _assert_all_succeeded(results, target.vendor)
    elapsed = time.monotonic() - began
    audit = target.script("audit", {"until": final.isoformat(), "complete": True})
    print(f"\n[{target.vendor}] {workers} workers: {elapsed:.1f}s; catch-up summaries: "
          f"{[out.strip().split(': ', 1)[-1] for _, out, _ in results]}; {audit['counts']}")
    _assert_clean(audit)
    assert audit["counts"]["cycles"] == audit["counts"]["due_periods"] > N_SUBSCRIPTIONS * 12


@pytest.mark.skipif(not on_postgresql(), reason="several billing workers at once need PostgreSQL (row locks with "
                                                "SKIP LOCKED); SQLite serialises writers — see the SQLite variant")
def test_four_workers_at_once_on_postgresql(databases):
    _concurrent_workers(databases, workers=4)


@pytest.mark.skipif(on_postgresql(), reason="the SQLite variant; PostgreSQL runs four workers")
def test_two_workers_at_once_on_sqlite_neither_duplicate_nor_lock_up(databases):
    _concurrent_workers(databases, workers=2)


# --- 3. catch-up after downtime ---------------------------------------------------------------------


def test_catch_up_after_three_months_bills_every_missed_period_once_in_order(databases):
    target = databases.copy()
    january, resume = D(2028, 1, 31), D(2028, 4, 30)
    target.bill_to_completion("--until", january.isoformat())
    billed_before = {(s, k) for s, k, _, _ in target.script("audit", {"until": january.isoformat()})["cycles"]}
    assert len(billed_before) == N_SUBSCRIPTIONS

    set_clock(target, resume)  # no run for February, March, April
    target.bill_to_completion()  # one plain `recur bill`: no day-by-day stepping
    snapshot = target.snapshot()
    target.bill_to_completion()  # running again bills nothing
    assert target.snapshot() == snapshot

    audit = target.script("audit", {"until": resume.isoformat(), "complete": True})
    _assert_clean(audit)
    caught_up = sorted((s, start, k, number) for s, k, start, number in audit["cycles"]
                       if (s, k) not in billed_before)
    per_sub = {}
    for s, start, k, number in caught_up:
        per_sub.setdefault(s, []).append((start, k, number))
    assert len(per_sub) == N_SUBSCRIPTIONS
    for s, rows in per_sub.items():
        # February, March and April, once each; indexes and invoice numbers rise with the period
        assert [start[:7] for start, _, _ in rows] == ["2028-02", "2028-03", "2028-04"], (s, rows)
        assert [k for _, k, _ in rows] == [1, 2, 3], (s, rows)
        numbers = [number for _, _, number in rows]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3, (s, rows)


# --- 4. a kill between an asynchronous outcome and its recording ------------------------------------

@pytest.mark.parametrize("killed", [False, True])
def test_bank_debit_settles_exactly_once_even_if_the_run_dies_after_polling(databases, killed):
    target = databases.copy()
    debits = target.script("bank_debits", {"n": 3, "start": START.isoformat()})["subscriptions"]
    target.bill_to_completion("--until", D(2028, 1, 4).isoformat())  # charged 1 Jan (Sat): pending until Wed 5 Jan
    assert target.query("SELECT COUNT(*) FROM billing_paymentattempt WHERE status = 'pending'")[0][0] == 3
    set_clock(target, D(2028, 1, 5))
    if killed:
        assert target.script("run_killed_after_poll", expect_code=-signal.SIGKILL) is None
    for _ in range(2):
        target.bill_to_completion("--until", D(2028, 1, 10).isoformat())

    _assert_clean(target.script("audit", {"until": "2028-01-10", "complete": True}))
    ids = ", ".join(str(i) for i in debits)
    assert target.query(  # attempt, payment, invoice, cycle
        "SELECT a.status, p.status, i.status, c.status FROM billing_paymentattempt a"
        " JOIN billing_payment p ON p.attempt_id = a.id JOIN billing_invoice i ON i.id = a.invoice_id"
        f" JOIN billing_billingcycle c ON c.id = a.cycle_id WHERE i.subscription_id IN ({ids})"
    ) == [("succeeded", "succeeded", "paid", "paid")] * 3
