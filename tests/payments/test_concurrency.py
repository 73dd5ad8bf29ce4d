"""Racing workers never move money twice (R-PAY-1, R-PAY-3, DESIGN "Money safety rules").

Threads have their own database connections, so these tests commit for real
(``transaction=True``); they are most meaningful on PostgreSQL.
"""

import datetime as dt
import threading

import pytest
from django.db import connection

from recur.core import clock
from recur.payments.builtin import BuiltinProcessor
from recur.payments.models import BuiltinCharge, BuiltinEvent, BuiltinRefund
from tests.payments.conftest import MONDAY, bank, card, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor == 'sqlite'",
                       reason="the in-memory SQLite test database is not shared by threads"),
]


def race(n, work):
    """Run ``work(i)`` in ``n`` threads at once; returns their results (re-raises their errors)."""
    results, errors = [None] * n, []

    def run(i):
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_two_workers_racing_on_one_key_make_one_charge(monkeypatch, processor, save):
    method = save(card())
    barrier = threading.Barrier(2, timeout=20)
    insert = BuiltinProcessor._insert

    def insert_together(rows):  # both have seen "no charge yet" before either inserts
        barrier.wait()
        return insert(rows)

    monkeypatch.setattr(BuiltinProcessor, "_insert", staticmethod(insert_together))
    batches = [[request("k-shared", method), request("k-a", method)],
               [request("k-b", method), request("k-shared", method)]]
    first, second = race(2, lambda i: BuiltinProcessor().charge_many(batches[i]))
    assert first[0] == second[1] and first[0].status == "succeeded"
    assert BuiltinCharge.objects.filter(idempotency_key="k-shared").count() == 1
    assert BuiltinCharge.objects.count() == 3


def test_many_workers_same_batch(processor, save):
    method = save(card())
    batch = [request(f"k{i}", method) for i in range(300)]
    results = race(4, lambda i: BuiltinProcessor().charge_many(list(reversed(batch)) if i % 2 else batch))
    assert results[0] == results[2] == list(reversed(results[1]))
    assert BuiltinCharge.objects.count() == 300


def test_concurrent_pollers_report_each_event_once(processor, save):
    method = save(bank())
    with clock.freeze(MONDAY):
        processor.charge_many([request(f"ach-{i}", method) for i in range(1500)])

    def poll(i):
        with clock.freeze(dt.date(2027, 3, 4)):
            return BuiltinProcessor().poll_events()

    events = [e for batch in race(3, poll) for e in batch]
    assert sorted(e.idempotency_key for e in events) == sorted(f"ach-{i}" for i in range(1500))
    assert BuiltinEvent.objects.count() == 1500


def test_concurrent_refunds_never_exceed_the_charge(processor, save):
    [charge] = processor.charge_many([request("c1", save(card()), amount=1000)])
    results = race(4, lambda i: BuiltinProcessor().refund(charge.charge_ref, 600, "EUR", f"r{i % 2}"))
    assert len({r.refund_ref for r in results if r.status == "succeeded"}) == 1
    assert BuiltinRefund.objects.count() == 1 and BuiltinCharge.objects.get().refunded == 600
