"""A change-history value (R-OBJ-4) as a seller reads it: amounts as money, choices by their label,
dates in the account's time zone and the reader's format; shared by the record pages."""

from __future__ import annotations

import datetime as dt
import functools

from django.db import models
from django.utils import formats

from recur.core import clock
from recur.web.templatetags.recur import money


def shown_value(model: type[models.Model], name: str, value, currency: str, money_fields=frozenset()) -> str:
    """``value`` of field ``name`` of ``model`` as stored in the history (JSON: dates as ISO text)."""
    if value in (None, "", [], {}):
        return "—"
    if name in money_fields and isinstance(value, int):
        return money(value, currency)
    field = _fields(model).get(name)
    if field is not None and getattr(field, "choices", None):
        return str(dict(field.choices).get(value, value))
    if isinstance(field, models.DateField) and isinstance(value, str):
        try:
            if isinstance(field, models.DateTimeField):
                moment = dt.datetime.fromisoformat(value).astimezone(clock.account_zone())
                return formats.date_format(moment, "DATETIME_FORMAT")
            return formats.date_format(dt.date.fromisoformat(value), "DATE_FORMAT")
        except ValueError:
            return value
    if isinstance(value, dict):
        return ", ".join(str(v) for v in value.values() if v)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@functools.lru_cache(maxsize=None)
def _fields(model: type[models.Model]) -> dict:
    return {f.name: f for f in model._meta.get_fields()}
