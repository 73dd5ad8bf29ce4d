"""The subscriptions index (R-VIEW-1): columns, quick and advanced filters, sort and keyset paging.

Read-only query helpers for the seller pages. The state of the page lives in
its URL (``IndexState.from_query``) so that every view of the table can be
bookmarked, and a saved view stores the same state.

Paging is by keyset on ``(sort column, id)``: a page costs one index range
scan however deep it is. Rows whose sort column is empty (NULL) come last in
both directions, ordered by id; each page is read in at most two ordered
segments (the values, then the NULLs) so that every query can walk an
index on ``(column, id)``. The count shown in the title is exact up to
``COUNT_CAP`` rows; beyond that it is "10,000+" or, for the whole table on
PostgreSQL, the planner's estimate.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from recur.core.money import parse_amount
from recur.crm.models import BILLING_FREQUENCIES, BILLING_TERMS
from recur.subscriptions.models import COLLECTIONS, PAYMENT_TERMS, STATUSES, Subscription
from recur.web.templatetags.recur import money

PAGE = 50
COUNT_CAP = 10_000
STATUS_BADGES = {"active": "green", "past_due": "red", "scheduled": "blue", "paused": "amber",
                 "canceled": "grey", "expired": "grey"}
TABS = {"all": None, "unpaid": "past_due", "scheduled": "scheduled"}


@dataclass(frozen=True)
class Column:
    key: str
    label: object
    kind: str  # text, choice, money, int, date, datetime, contact, company, owner
    sort: str | None = None  # field to sort on ("contact__name" through a foreign key), None: not sortable
    nullable: bool = False
    choices: tuple = ()

    @property
    def num(self) -> bool:
        return self.kind in ("money", "int")


COLUMNS: dict[str, Column] = {c.key: c for c in [
    Column("name", gettext_lazy("Name"), "text", "name"),
    Column("status", gettext_lazy("Status"), "choice", "status", choices=tuple(STATUSES)),
    Column("contact", pgettext_lazy("subscription column", "Contact"), "contact", "contact__name"),
    Column("company", gettext_lazy("Company"), "company", "company__name", nullable=True),
    Column("amount", gettext_lazy("Amount per period"), "money", "amount"),
    # Column headings in the "subscription column" context have shorter Dutch words than the forms'
    # ("Frequentie", not "Factureringsfrequentie"), so the index fits its columns.
    Column("billing_frequency", pgettext_lazy("subscription column", "Billing frequency"), "choice",
           "billing_frequency", choices=tuple(BILLING_FREQUENCIES)),
    Column("next_payment_date", pgettext_lazy("subscription column", "Next payment date"), "date",
           "next_payment_date", nullable=True),
    Column("start_date", gettext_lazy("Start date"), "date", "start_date"),
    Column("owner", gettext_lazy("Owner"), "owner", "owner__name", nullable=True),
    Column("end_date", gettext_lazy("End date"), "date", "end_date", nullable=True),
    Column("last_payment_date", gettext_lazy("Last payment date"), "date", "last_payment_date", nullable=True),
    Column("payments_made", gettext_lazy("Payments made"), "int", "payments_made"),
    Column("number_of_payments", gettext_lazy("Number of payments"), "int", "number_of_payments", nullable=True),
    Column("total_paid", gettext_lazy("Total paid"), "money", "total_paid"),
    Column("collection", gettext_lazy("Collection method"), "choice", "collection", choices=tuple(COLLECTIONS)),
    Column("billing_terms", gettext_lazy("Billing terms"), "choice", "billing_terms", choices=tuple(BILLING_TERMS)),
    Column("payment_terms", gettext_lazy("Payment terms"), "choice", "payment_terms", choices=tuple(PAYMENT_TERMS)),
    Column("currency", gettext_lazy("Currency"), "text", "currency"),
    Column("created_at", gettext_lazy("Create date"), "datetime", "created_at"),
    Column("updated_at", gettext_lazy("Last updated"), "datetime", "updated_at"),
    Column("id", gettext_lazy("Record ID"), "int", "id"),
]}
DEFAULT_COLUMNS = ["name", "status", "contact", "company", "amount", "billing_frequency", "next_payment_date",
                   "start_date", "owner"]
DEFAULT_SORT = "-id"

OPERATORS = {
    "text": [("contains", gettext_lazy("contains")), ("eq", gettext_lazy("is")), ("ne", gettext_lazy("is not")), ("empty", gettext_lazy("is empty")),
             ("known", gettext_lazy("is known"))],
    "choice": [("eq", gettext_lazy("is")), ("ne", gettext_lazy("is not"))],
    "number": [("eq", "="), ("ne", "≠"), ("gt", ">"), ("gte", "≥"), ("lt", "<"), ("lte", "≤")],
    "date": [("eq", gettext_lazy("is on")), ("lt", gettext_lazy("is before")), ("gt", gettext_lazy("is after")), ("lte", gettext_lazy("is on or before")),
             ("gte", gettext_lazy("is on or after")), ("empty", gettext_lazy("is empty")), ("known", gettext_lazy("is known"))],
    "related": [("contains", gettext_lazy("name contains")), ("empty", gettext_lazy("is empty")),
                ("known", gettext_lazy("is known"))],
}
NO_VALUE = {"empty", "known"}


def filter_kind(col: Column) -> str:
    return {"text": "text", "choice": "choice", "money": "number", "int": "number", "date": "date",
            "datetime": "date", "contact": "related", "company": "related", "owner": "related"}[col.kind]


class FilterError(ValueError):
    """A bad filter value; ``where`` names the input (``npd_from``, ``cond-2``…)."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where
        self.message = message


@dataclass
class Condition:
    prop: str
    op: str
    value: str = ""
    error: str = ""

    @property
    def column(self) -> Column:
        return COLUMNS[self.prop]

    @property
    def kind(self) -> str:
        return filter_kind(self.column)

    @property
    def operators(self):
        return OPERATORS[self.kind]

    @property
    def needs_value(self) -> bool:
        return self.op not in NO_VALUE

    @property
    def complete(self) -> bool:
        return not self.needs_value or self.value.strip() != ""


@dataclass
class IndexState:
    """Everything that decides which rows the table shows, as in the URL."""

    statuses: list[str] = field(default_factory=list)
    npd_from: str = ""
    npd_to: str = ""
    conditions: list[Condition] = field(default_factory=list)
    columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))
    sort: str = DEFAULT_SORT

    # --- (de)serialisation -----------------------------------------------------------------

    @classmethod
    def from_query(cls, q) -> "IndexState":
        valid_status = {s for s, _ in STATUSES}
        state = cls(
            statuses=[s for s in q.getlist("status") if s in valid_status],
            npd_from=q.get("npd_from", "").strip(), npd_to=q.get("npd_to", "").strip(),
        )
        for p, o, v in zip(q.getlist("fp"), q.getlist("fo"), q.getlist("fv")):
            if p in COLUMNS:
                ops = dict(OPERATORS[filter_kind(COLUMNS[p])])
                state.conditions.append(Condition(p, o if o in ops else next(iter(ops)), v))
        add = q.get("add_condition", "")
        if add in COLUMNS:
            state.conditions.append(Condition(add, OPERATORS[filter_kind(COLUMNS[add])][0][0], ""))
        remove = q.get("remove_condition", "")
        if remove.isdigit() and int(remove) < len(state.conditions):
            del state.conditions[int(remove)]
        if "cols" in q:
            cols = [c for c in q.get("cols", "").split(",") if c in COLUMNS]
        elif "col" in q:
            cols = [c for c in q.getlist("col") if c in COLUMNS]
        else:
            cols = list(DEFAULT_COLUMNS)
        state.columns = ["name"] + [c for c in dict.fromkeys(cols) if c != "name"]
        state.sort = clean_sort(q.get("sort", ""))
        return state

    @classmethod
    def from_saved(cls, view) -> "IndexState":
        f = view.filters or {}
        state = cls(statuses=list(f.get("status") or []), npd_from=f.get("npd_from") or "",
                    npd_to=f.get("npd_to") or "",
                    conditions=[Condition(*c) for c in f.get("conditions") or [] if len(c) == 3 and c[0] in COLUMNS],
                    columns=["name"] + [c for c in view.columns or DEFAULT_COLUMNS if c in COLUMNS and c != "name"],
                    sort=clean_sort(view.sort))
        return state

    def to_saved(self) -> dict:
        return {"filters": {"status": self.statuses, "npd_from": self.npd_from, "npd_to": self.npd_to,
                            "conditions": [[c.prop, c.op, c.value] for c in self.conditions if c.complete]},
                "columns": self.columns, "sort": self.sort}

    def params(self, *, sort: str | None = None, cols: bool = True) -> list[tuple[str, str]]:
        out = [("status", s) for s in self.statuses]
        if self.npd_from:
            out.append(("npd_from", self.npd_from))
        if self.npd_to:
            out.append(("npd_to", self.npd_to))
        for c in self.conditions:
            out += [("fp", c.prop), ("fo", c.op), ("fv", c.value)]
        if cols and self.columns != DEFAULT_COLUMNS:
            out.append(("cols", ",".join(self.columns)))
        s = self.sort if sort is None else sort
        if s != DEFAULT_SORT:
            out.append(("sort", s))
        return out

    @property
    def filtered(self) -> bool:
        return bool(self.statuses or self.npd_from or self.npd_to or any(c.complete for c in self.conditions))

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def clean_sort(value: str) -> str:
    key = (value or "").lstrip("-")
    if key in COLUMNS and COLUMNS[key].sort:
        return value
    return DEFAULT_SORT


# --- filtering ---------------------------------------------------------------------------------


def _date(value: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(where, _("Enter a date as YYYY-MM-DD.")) from None


def _money_value(value: str, where: str) -> int:
    text = value.strip().replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        return parse_amount(text, "EUR")
    except ValueError:
        raise FilterError(where, _("Enter an amount such as 49.00.")) from None


def _int_value(value: str, where: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise FilterError(where, _("Enter a whole number.")) from None


def _choice_value(col: Column, value: str, where: str) -> str:
    v = value.strip()
    for key, label in col.choices:
        if v == key or v.lower() == str(label).lower():
            return key
    raise FilterError(where, _("Choose one of the listed values."))


def condition_q(cond: Condition, where: str) -> Q | None:
    """One advanced-filter condition as a Q object (None while it has no value yet)."""
    col = cond.column
    if not cond.complete:
        return None
    op = cond.op
    if col.kind in ("contact", "company", "owner"):
        path = {"contact": "contact__name", "company": "company__name", "owner": "owner__name"}[col.kind]
        fk = {"contact": "contact", "company": "company", "owner": "owner"}[col.kind]
        if op == "empty":
            return Q(**{f"{fk}__isnull": True})
        if op == "known":
            return Q(**{f"{fk}__isnull": False})
        q = Q(**{f"{path}__icontains": cond.value.strip()})
        if col.kind == "owner":
            q |= Q(owner__email__icontains=cond.value.strip())
        return q
    name = col.sort
    if op in ("empty", "known"):
        if col.nullable:
            return Q(**{f"{name}__isnull": op == "empty"})
        if col.kind == "text":
            return Q(**{name: ""}) if op == "empty" else ~Q(**{name: ""})
        return Q() if op == "known" else Q(pk__in=[])
    if col.kind == "text":
        v = cond.value.strip()
        return {"contains": Q(**{f"{name}__icontains": v}), "eq": Q(**{f"{name}__iexact": v}),
                "ne": ~Q(**{f"{name}__iexact": v})}[op]
    if col.kind == "choice":
        v = _choice_value(col, cond.value, where)
        return Q(**{name: v}) if op == "eq" else ~Q(**{name: v})
    if col.kind == "money":
        v = _money_value(cond.value, where)
    elif col.kind == "int":
        v = _int_value(cond.value, where)
    else:
        v = _date(cond.value, where)
    if col.kind == "datetime":
        from recur.core import clock

        lo = clock.start_of_day(v)
        hi = clock.start_of_day(v + dt.timedelta(days=1))
        return {"eq": Q(**{f"{name}__gte": lo, f"{name}__lt": hi}), "lt": Q(**{f"{name}__lt": lo}),
                "lte": Q(**{f"{name}__lt": hi}), "gt": Q(**{f"{name}__gte": hi}), "gte": Q(**{f"{name}__gte": lo}),
                "ne": ~Q(**{f"{name}__gte": lo, f"{name}__lt": hi})}[op]
    lookups = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
    if op == "ne":
        return ~Q(**{name: v})
    return Q(**{f"{name}__{lookups[op]}": v})


def filtered_queryset(state: IndexState, tab_status: str | None):
    """The subscriptions the state selects; raises nothing, records errors on the state's conditions.
    Returns (queryset, {input name: message})."""
    qs = Subscription.objects.all()
    errors: dict[str, str] = {}
    if tab_status:
        qs = qs.filter(status=tab_status)
    if state.statuses:
        qs = qs.filter(status__in=state.statuses)
    for name in ("npd_from", "npd_to"):
        value = getattr(state, name)
        if value:
            try:
                day = _date(value, name)
            except FilterError as exc:
                errors[exc.where] = exc.message
                continue
            qs = qs.filter(**{"next_payment_date__gte" if name == "npd_from" else "next_payment_date__lte": day})
    for i, cond in enumerate(state.conditions):
        try:
            q = condition_q(cond, f"cond-{i}")
        except FilterError as exc:
            cond.error = exc.message
            errors[exc.where] = exc.message
            continue
        if q is not None:
            qs = qs.filter(q)
    return qs, errors


# --- keyset paging -------------------------------------------------------------------------------


def encode_cursor(value, pk: int) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    raw = json.dumps([value, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, col: Column):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, pk = json.loads(raw)
        pk = int(pk)
        if value is not None:
            if col.kind == "date":
                value = dt.date.fromisoformat(value)
            elif col.kind == "datetime":
                value = dt.datetime.fromisoformat(value)
            elif col.kind in ("money", "int"):
                value = int(value)
            else:
                value = str(value)
        return value, pk
    except (ValueError, TypeError, json.JSONDecodeError):
        return None


def _sql_column(field_name: str) -> tuple[str, str]:
    """(table, column) of a sort field: the subscription's own, or one step through a foreign key
    ("contact__name"), whose join Django names after the related table (the join the ORDER BY makes)."""
    if "__" not in field_name:
        return Subscription._meta.db_table, Subscription._meta.get_field(field_name).column
    fk, attr = field_name.split("__", 1)
    related = Subscription._meta.get_field(fk).related_model
    return related._meta.db_table, related._meta.get_field(attr).column


def _sort_value(obj, field_name: str):
    for part in field_name.split("__"):
        obj = getattr(obj, part) if obj is not None else None
    return obj


def _row_after(field_name: str, value, pk: int, descending: bool):
    """``(field, id) > (value, pk)`` (or ``<``) as a row-value comparison, which PostgreSQL
    and SQLite answer with one range scan of an index on (field, id)."""
    table, column = _sql_column(field_name)
    qn = connection.ops.quote_name
    op = "<" if descending else ">"
    own = Subscription._meta.db_table
    sql = f"({qn(table)}.{qn(column)}, {qn(own)}.{qn('id')}) {op} (%s, %s)"
    return RawSQL(sql, (value, pk), output_field=BooleanField())


def fetch(qs, col: Column, descending: bool, cursor, limit: int, nulls_first: bool = False) -> list:
    """Up to ``limit`` rows after ``cursor`` in the order (col, id) — both ascending or both
    descending — with the rows whose col is NULL in one block after (or, reading backwards,
    before) the others, ordered by id the same way. Each block is one ordered range query, so
    the first page never touches the NULL block unless the values run out."""
    name = col.sort
    order = ("-" if descending else "") + name, ("-id" if descending else "id")

    def values_part(after, n):
        q = qs.filter(**{f"{name}__isnull": False}) if col.nullable else qs
        if after is not None:
            q = q.filter(_row_after(name, after[0], after[1], descending))
        return list(q.order_by(*order)[:n])

    def nulls_part(after_pk, n):
        q = qs.filter(**{f"{name}__isnull": True})
        if after_pk is not None:
            q = q.filter(pk__lt=after_pk) if descending else q.filter(pk__gt=after_pk)
        return list(q.order_by(order[1])[:n])

    if not col.nullable:
        return values_part(cursor, limit)
    in_nulls = cursor is not None and cursor[0] is None
    if nulls_first:
        rows = [] if (cursor is not None and not in_nulls) else nulls_part(cursor[1] if in_nulls else None, limit)
        if len(rows) < limit:
            rows += values_part(None if (cursor is None or in_nulls) else cursor, limit - len(rows))
        return rows
    rows = [] if in_nulls else values_part(cursor, limit)
    if len(rows) < limit:
        rows += nulls_part(cursor[1] if in_nulls else None, limit - len(rows))
    return rows


@dataclass
class Page:
    rows: list
    next_cursor: str | None
    prev_cursor: str | None


def page(qs, state: IndexState, after: str | None, before: str | None, limit: int = PAGE) -> Page:
    col = COLUMNS[state.sort_key]
    desc = state.descending
    if before and (cur := decode_cursor(before, col)):
        rows = fetch(qs, col, not desc, cur, limit + 1, nulls_first=True)
        more_before = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        return Page(rows, _cursor(rows[-1], col) if rows else None, _cursor(rows[0], col) if more_before else None)
    cur = decode_cursor(after, col) if after else None
    rows = fetch(qs, col, desc, cur, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _cursor(rows[-1], col) if more else None, _cursor(rows[0], col) if (cur and rows) else None)


def _cursor(obj, col: Column) -> str:
    return encode_cursor(_sort_value(obj, col.sort), obj.pk)


# --- counting -------------------------------------------------------------------------------------


def count_label(qs, filtered: bool) -> tuple[int | None, str]:
    """(exact count or None, text for the title). Never counts more than COUNT_CAP rows of a
    filtered set; the whole table is counted only where that is cheap."""
    capped = qs.order_by().values("pk")[: COUNT_CAP + 1].count()
    if capped <= COUNT_CAP:
        return capped, formats.number_format(capped, force_grouping=True)
    if not filtered:
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                            [Subscription._meta.db_table])
                est = cur.fetchone()[0]
            if est and est > COUNT_CAP:
                return None, _("about %(n)s") % {"n": formats.number_format(est, force_grouping=True)}
        else:
            n = Subscription.objects.count()
            return n, formats.number_format(n, force_grouping=True)
    return None, formats.number_format(COUNT_CAP, force_grouping=True) + "+"


# --- cells ----------------------------------------------------------------------------------------


def _fmt_date(value) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT") if value else "—"


class Cells:
    """Table cells of one page, with labels, URLs and formats worked out once per page."""

    def __init__(self, columns: list[str]):
        from django.utils import timezone

        from recur.core import clock

        self.columns = columns
        self.labels = {k: {key: str(label) for key, label in c.choices} for k, c in COLUMNS.items() if c.choices}
        self.sub_url = reverse("subscription_detail", args=[0])[:-2]
        self.contact_url = reverse("contact_detail", args=[0])[:-2]
        self.company_url = reverse("company_detail", args=[0])[:-2]
        self.money_cache: dict = {}
        self.date_cache: dict = {}
        self.zone = clock.account_zone()
        self.localtime = timezone.localtime

    def money(self, minor, currency):
        key = (minor, currency)
        if key not in self.money_cache:
            self.money_cache[key] = money(minor, currency)
        return self.money_cache[key]

    def date(self, value):
        if value not in self.date_cache:
            self.date_cache[value] = _fmt_date(value)
        return self.date_cache[value]

    def row(self, sub: Subscription) -> list[dict]:
        return [self.cell(sub, key) for key in self.columns]

    def cell(self, sub: Subscription, key: str) -> dict:
        col = COLUMNS[key]
        out = {"key": key, "num": col.num, "text": "—", "url": None, "badge": None}
        if key == "name":
            out.update(text=sub.name, url=f"{self.sub_url}{sub.pk}/")
        elif key == "status":
            out.update(text=self.labels["status"].get(sub.status, sub.status),
                       badge=STATUS_BADGES.get(sub.status, "grey"))
        elif key == "contact":
            out.update(text=sub.contact.name, url=f"{self.contact_url}{sub.contact_id}/")
        elif key == "company":
            if sub.company_id:
                out.update(text=sub.company.name, url=f"{self.company_url}{sub.company_id}/")
        elif key == "owner":
            if sub.owner_id:
                out["text"] = str(sub.owner)
        elif col.kind == "money":
            out["text"] = self.money(getattr(sub, key), sub.currency)
        elif col.kind == "date":
            out["text"] = self.date(getattr(sub, key))
        elif col.kind == "datetime":
            out["text"] = formats.date_format(self.localtime(getattr(sub, key), self.zone), "SHORT_DATETIME_FORMAT")
        elif col.kind == "choice":
            value = getattr(sub, key)
            out["text"] = self.labels[key].get(value, value) or "—"
        else:
            value = getattr(sub, key)
            out["text"] = "—" if value in (None, "") else str(value)
        return out


def cell(sub: Subscription, key: str) -> dict:
    return Cells([key]).cell(sub, key)


def related_for(columns: list[str]) -> list[str]:
    return [c for c in ("contact", "company", "owner") if c in columns]
