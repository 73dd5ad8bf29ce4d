"""Plain-SQL helpers for hot paths (the billing run), portable between SQLite
and PostgreSQL. Values must already be database-ready: use ``db_value``.

SQL is written with ``%s`` placeholders and runs on the driver's own cursor
(for SQLite ``%s`` becomes ``?`` with one ``str.replace``), which skips the
per-call work of Django's cursor wrapper — a regular expression over the whole
statement on SQLite, noticeable for statements with thousands of placeholders.
The statements run in the caller's transaction, as ORM queries do. While Django
logs queries (DEBUG, or a test's CaptureQueriesContext) they go through Django's
cursor instead, so they are logged and counted like any other query.

Multi-row ``INSERT … VALUES (…), (…) RETURNING id`` returns the ids in the
order of the rows on both databases (Django's bulk_create relies on the same).
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from django.db import connection

_MAX_PARAMS = 30000  # below SQLite's 32766 host-parameter limit
IN_CHUNK = 1000  # values per IN (…) list in ``fetch_in``


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


def as_date(value: Any) -> dt.date | None:
    """A date column's value as read by ``fetch`` (SQLite gives text, PostgreSQL a date)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


@contextmanager
def raw_cursor() -> Iterator[tuple[Any, str]]:
    """(cursor, placeholder) on Django's connection, in the same transaction as the ORM:
    the driver's own cursor, or Django's while it logs queries."""
    if connection.queries_logged:
        with connection.cursor() as cur:
            yield cur, "%s"
        return
    connection.ensure_connection()
    cur = connection.connection.cursor()
    try:
        yield cur, "?" if connection.vendor == "sqlite" else "%s"
    finally:
        cur.close()


def fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with raw_cursor() as (cur, p):
        cur.execute(sql.replace("%s", p) if p != "%s" else sql, params)
        return cur.fetchall()


def fetch_in(sql: str, values: Sequence[Any], params: Sequence[Any] = (), *, tail: str = "") -> list[tuple]:
    """``sql`` contains ``{in}`` where the placeholder list for ``values`` goes, after the
    positional ``params``; ``tail`` (ORDER BY, FOR UPDATE …) follows. Long lists run in chunks."""
    rows: list[tuple] = []
    values = list(values)
    for lo in range(0, len(values), IN_CHUNK):
        chunk = values[lo:lo + IN_CHUNK]
        rows += fetch(sql.format(**{"in": ", ".join(["%s"] * len(chunk))}) + tail, [*params, *chunk])
    return rows


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    with raw_cursor() as (cur, p):
        cur.execute(sql.replace("%s", p) if p != "%s" else sql, params)
        return cur.rowcount


def _chunks(rows: Sequence, width: int) -> Iterable[Sequence]:
    size = max(1, _MAX_PARAMS // max(width, 1))
    for lo in range(0, len(rows), size):
        yield rows[lo:lo + size]


def insert_returning(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], returning: str = "id", *,
                     ignore_conflicts_on: str | None = None) -> list[tuple]:
    """Insert rows; return the ``returning`` columns of the rows inserted, in row order.

    With ``ignore_conflicts_on`` a row that conflicts is skipped and returns nothing."""
    out: list[tuple] = []
    if not rows:
        return out
    cols = ", ".join(columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    tail = (f" ON CONFLICT ({ignore_conflicts_on}) DO NOTHING" if ignore_conflicts_on else "") + f" RETURNING {returning}"
    with raw_cursor() as (cur, p):
        if connection.vendor == "postgresql" and not connection.queries_logged:
            # psycopg pipelines executemany; one short statement is parsed once, where a
            # statement with thousands of placeholders would be re-parsed on every call.
            # (Django's logging cursor takes no ``returning``: multi-row VALUES below.)
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES {one}{tail}", rows, returning=True)
            while True:
                out += cur.fetchall()
                if not cur.nextset():
                    break
            return out
        for chunk in _chunks(rows, len(columns)):
            sql = f"INSERT INTO {table} ({cols}) VALUES " + ", ".join([one] * len(chunk)) + tail
            cur.execute(sql.replace("%s", p) if p != "%s" else sql, [v for row in chunk for v in row])
            out += cur.fetchall()
    return out


def insert_returning_ids(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert rows; return their new ids in row order."""
    return [r[0] for r in insert_returning(table, columns, rows)]


def insert_many(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                ignore_conflicts_on: str | None = None) -> None:
    if not rows:
        return
    cols = ", ".join(columns)
    tail = f" ON CONFLICT ({ignore_conflicts_on}) DO NOTHING" if ignore_conflicts_on else ""
    execute_many(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(columns))}){tail}", rows)


def execute_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        with raw_cursor() as (cur, p):
            cur.executemany(sql.replace("%s", p) if p != "%s" else sql, rows)
