"""recur.core.db: the plain-SQL batch writers behave the same on SQLite and PostgreSQL
(on PostgreSQL they send one array per column in one statement)."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recur.core.db import db_value, fetch, insert_many, insert_returning, insert_returning_ids, update_many
from recur.core.models import HistoryEntry

pytestmark = pytest.mark.django_db

COLUMNS = ("record_type", "record_id", "actor_id", "action", "changes", "at")
AT = dt.datetime(2027, 3, 1, 9, tzinfo=dt.timezone.utc)


def rows(n, start=0):
    at = db_value(AT)
    return [("invoice", start + i, None, "created", json.dumps({"n": start + i}), at) for i in range(n)]


@pytest.mark.parametrize("logged", [False, True], ids=["driver cursor", "django cursor"])
def test_insert_returning_gives_ids_in_row_order(logged):
    if logged:
        with CaptureQueriesContext(connection) as queries:
            ids = insert_returning_ids("core_historyentry", COLUMNS, rows(3000))
        assert len(queries.captured_queries) <= 3
    else:
        ids = insert_returning_ids("core_historyentry", COLUMNS, rows(3000))
    assert len(ids) == 3000 and len(set(ids)) == 3000
    by_id = dict(HistoryEntry.objects.values_list("pk", "record_id"))
    assert [by_id[i] for i in ids] == list(range(3000))
    entry = HistoryEntry.objects.get(pk=ids[7])
    assert (entry.changes, entry.at, entry.actor_id) == ({"n": 7}, AT, None)


def test_insert_skips_conflicting_rows_and_returns_only_the_inserted():
    from recur.notifications.services import _COLUMNS, _prepare

    messages = [dict(kind="payment_receipt", to_email=f"b{i}@example.com", dedupe_key=f"k{i % 3}",
                     context={"subscription_name": "S", "amount": {"amount_minor": 1, "currency": "EUR"},
                              "paid_on": "2027-03-01"}) for i in range(3)]
    first = insert_returning("notifications_outboxmessage", _COLUMNS, _prepare(messages[:2], db_value(AT)),
                             ignore_conflicts_on="dedupe_key")
    again = insert_returning("notifications_outboxmessage", _COLUMNS, _prepare(messages, db_value(AT)),
                             ignore_conflicts_on="dedupe_key")
    assert len(first) == 2 and len(again) == 1
    assert fetch("SELECT COUNT(*) FROM notifications_outboxmessage")[0][0] == 3


def test_update_many_sets_each_row_and_applies_expressions():
    ids = insert_returning_ids("core_historyentry", COLUMNS, rows(5))
    later = db_value(AT + dt.timedelta(days=1))
    update_many("core_historyentry", ("record_id", "action", "at"),
                [(100 + i, "updated", later, pk) for i, pk in enumerate(ids[:4])],
                expressions={"record_id": "{column} + {value}"})
    got = list(HistoryEntry.objects.order_by("pk").values_list("record_id", "action", "at"))
    assert got[:4] == [(i + 100 + i, "updated", AT + dt.timedelta(days=1)) for i in range(4)]
    assert got[4] == (4, "created", AT)  # not in the batch: unchanged


def test_update_many_applies_a_repeated_id_once_per_row():
    """Two rows for one id are both applied (an UPDATE … FROM would apply only one of them)."""
    [pk] = insert_returning_ids("core_historyentry", COLUMNS, rows(1))
    update_many("core_historyentry", ("record_id",), [(5, pk), (7, pk)], expressions={"record_id": "{column} + {value}"})
    assert HistoryEntry.objects.get(pk=pk).record_id == 12


def test_insert_many_and_empty_batches():
    insert_many("core_historyentry", COLUMNS, rows(4, start=10))
    insert_many("core_historyentry", COLUMNS, [])
    update_many("core_historyentry", ("action",), [])
    assert insert_returning_ids("core_historyentry", COLUMNS, []) == []
    assert sorted(HistoryEntry.objects.values_list("record_id", flat=True)) == [10, 11, 12, 13]


def test_insert_many_counts_the_rows_it_inserted():
    from recur.notifications.services import _COLUMNS, _prepare

    messages = [dict(kind="payment_receipt", to_email=f"b{i}@example.com", dedupe_key=f"c{i % 3}",
                     context={"subscription_name": "S", "amount": {"amount_minor": 1, "currency": "EUR"},
                              "paid_on": "2027-03-01"}) for i in range(3)]
    assert insert_many("notifications_outboxmessage", _COLUMNS, _prepare(messages[:2], db_value(AT)),
                       ignore_conflicts_on="dedupe_key") == 2
    assert insert_many("notifications_outboxmessage", _COLUMNS, _prepare(messages, db_value(AT)),
                       ignore_conflicts_on="dedupe_key") == 1
    assert insert_many("core_historyentry", COLUMNS, rows(4)) == 4
