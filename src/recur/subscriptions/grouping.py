"""Which line items make one subscription (R-SIGN-4; pure, no Django).

Line items with the same billing frequency, billing terms, billing start (a
fixed date or a delay) and number of payments form ONE subscription; any
difference makes separate subscriptions. Items without a billing frequency are
one-time and belong to no subscription.

An item is a mapping or an object with the attributes ``billing_frequency``,
``billing_terms`` (``auto_renew`` | ``fixed``), ``billing_start_date`` (a date
or ``YYYY-MM-DD``), ``billing_start_delay_days``, ``billing_start_delay_months``
and ``number_of_payments``; missing ones count as not set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from recur.subscriptions.schedule import FREQUENCIES

__all__ = ["BILLING_TERMS", "group_line_items", "grouping_key", "is_recurring", "split_recurring"]

BILLING_TERMS = ("auto_renew", "fixed")

T = TypeVar("T")

GroupingKey = tuple[str, str, date | None, int, int, int | None]


def _get(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def is_recurring(item: Any) -> bool:
    """True when the item has a billing frequency (it is not one-time)."""
    return _get(item, "billing_frequency") not in (None, "")


def _start(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"billing_start_date: {value!r} is not a date (YYYY-MM-DD).") from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"billing_start_date: {value!r} is not a date.")
    return value


def _delay(item: Any, name: str) -> int:
    value = _get(item, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: must be a whole number of at least 0, not {value!r}.")
    return value


def grouping_key(item: Any) -> GroupingKey:
    """The R-SIGN-4 key ``(frequency, terms, start_date, delay_days, delay_months, payments)``.

    Terms default to ``fixed`` when a number of payments is given, else
    ``auto_renew``; an auto-renewing item's number of payments is ``None``.
    Raises ``ValueError`` naming the field for one-time or invalid items.
    """
    frequency = _get(item, "billing_frequency")
    if frequency in (None, ""):
        raise ValueError("billing_frequency: a one-time line item has no subscription grouping key.")
    if frequency not in FREQUENCIES:
        raise ValueError(
            f"billing_frequency: unknown value {frequency!r}; expected one of {', '.join(FREQUENCIES)}."
        )
    payments = _get(item, "number_of_payments")
    terms = _get(item, "billing_terms") or ("fixed" if payments is not None else "auto_renew")
    if terms not in BILLING_TERMS:
        raise ValueError(f"billing_terms: unknown value {terms!r}; expected auto_renew or fixed.")
    if terms == "auto_renew":
        payments = None
    elif isinstance(payments, bool) or not isinstance(payments, int) or payments < 1:
        raise ValueError(f"number_of_payments: a fixed term needs at least 1 payment, not {payments!r}.")
    start = _start(_get(item, "billing_start_date"))
    delay_days = _delay(item, "billing_start_delay_days")
    delay_months = _delay(item, "billing_start_delay_months")
    if start is not None and (delay_days or delay_months):
        raise ValueError("billing_start_date: give either a start date or a start delay, not both.")
    return (frequency, terms, start, delay_days, delay_months, payments)


def group_line_items(items: Iterable[T]) -> list[list[T]]:
    """Group the recurring items by :func:`grouping_key`, in order of first appearance.

    One-time items are left out; use :func:`split_recurring` to get them too.
    """
    return split_recurring(items)[0]


def split_recurring(items: Iterable[T]) -> tuple[list[list[T]], list[T]]:
    """``(groups, one_time)``: one group per future subscription, and the one-time items."""
    groups: dict[GroupingKey, list[T]] = {}
    one_time: list[T] = []
    for item in items:
        if is_recurring(item):
            groups.setdefault(grouping_key(item), []).append(item)
        else:
            one_time.append(item)
    return list(groups.values()), one_time
