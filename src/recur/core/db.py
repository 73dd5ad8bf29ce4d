"""Plain-SQL helpers for hot paths (the billing run), portable between SQLite
and PostgreSQL. Values must already be database-ready: use ``db_value``.

Multi-row ``INSERT … VALUES (…), (…) RETURNING id`` returns the ids in the
order of the rows on both databases (Django's bulk_create relies on the same).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

from django.db import connection

_MAX_PARAMS = 30000  # below SQLite's 32766 host-parameter limit


def db_value(value: Any) -> Any:
    """Adapt a date or aware datetime as Django would for this database."""
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dt.date):
        return connection.ops.adapt_datefield_value(value)
    return value


def db_adapter():
    """``db_value`` bound to the current connection's operations: for loops over many rows."""
    ops = connection.ops
    adapt_datetime, adapt_date = ops.adapt_datetimefield_value, ops.adapt_datefield_value

    def adapt(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return adapt_datetime(value)
        if isinstance(value, dt.date):
            return adapt_date(value)
        return value

    return adapt


def _chunks(rows: Sequence, width: int) -> Iterable[Sequence]:
    size = max(1, _MAX_PARAMS // max(width, 1))
    for lo in range(0, len(rows), size):
        yield rows[lo:lo + size]


def insert_returning_ids(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert rows; return their new ids in row order."""
    ids: list[int] = []
    if not rows:
        return ids
    cols = ", ".join(columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    if connection.vendor == "postgresql":
        # psycopg pipelines executemany; one short statement is parsed once, where a
        # statement with thousands of placeholders would be re-parsed on every call.
        with connection.cursor() as cur:
            raw = cur.cursor
            raw.executemany(f"INSERT INTO {table} ({cols}) VALUES {one} RETURNING id", rows, returning=True)
            while True:
                ids.append(raw.fetchone()[0])
                if not raw.nextset():
                    break
        return ids
    with connection.cursor() as cur:
        for chunk in _chunks(rows, len(columns)):
            sql = f"INSERT INTO {table} ({cols}) VALUES " + ", ".join([one] * len(chunk)) + " RETURNING id"
            cur.execute(sql, [v for row in chunk for v in row])
            ids += [r[0] for r in cur.fetchall()]
    return ids


def insert_many(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                ignore_conflicts_on: str | None = None) -> None:
    if not rows:
        return
    cols = ", ".join(columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    tail = f" ON CONFLICT ({ignore_conflicts_on}) DO NOTHING" if ignore_conflicts_on else ""
    if connection.vendor == "postgresql":
        execute_many(f"INSERT INTO {table} ({cols}) VALUES {one}{tail}", rows)
        return
    with connection.cursor() as cur:
        for chunk in _chunks(rows, len(columns)):
            cur.execute(f"INSERT INTO {table} ({cols}) VALUES " + ", ".join([one] * len(chunk)) + tail,
                        [v for row in chunk for v in row])


def execute_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        with connection.cursor() as cur:
            cur.executemany(sql, rows)
