"""Billing calendar: periods computed from the anchor date (pure; no Django).

Period ``k`` starts at ``anchor + k × step`` (R-BILL-7). ``relativedelta`` clamps
the day to the month's length, and because every period is computed from the
anchor and never chained from the previous one, a subscription anchored on
31 January bills on 28/29 February, 31 March, 30 April, 31 May, …
Periods are half-open: ``[start, end)`` with ``end`` = start of the next period.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

__all__ = [
    "FREQUENCIES",
    "due_periods",
    "end_date",
    "local_today",
    "period",
    "period_index_for",
    "period_start",
    "start_date",
]

_WEEKS = {"weekly": 1, "biweekly": 2}
_MONTHS = {
    "monthly": 1,
    "quarterly": 3,
    "per_six_months": 6,
    "annually": 12,
    "per_two_years": 24,
    "per_three_years": 36,
    "per_four_years": 48,
    "per_five_years": 60,
}

#: The ten billing frequencies (API values) and the step of one period.
FREQUENCIES: Mapping[str, relativedelta] = MappingProxyType(
    {name: relativedelta(weeks=n) for name, n in _WEEKS.items()}
    | {name: relativedelta(months=n) for name, n in _MONTHS.items()}
)


def _check_frequency(frequency: str) -> str:
    if frequency not in FREQUENCIES:
        raise ValueError(
            f"Unknown billing frequency {frequency!r}; expected one of {', '.join(FREQUENCIES)}."
        )
    return frequency


def _check_date(value: object, what: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{what} must be a date, not {value!r}.")
    return value


def _check_count(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer of at least {minimum}, not {value!r}.")
    return value


def period_start(anchor: date, frequency: str, k: int) -> date:
    """Start of period ``k`` (0-based): ``anchor + k × step``, day clamped to the month."""
    _check_date(anchor, "Anchor")
    _check_frequency(frequency)
    _check_count(k, "Period index", 0)
    # Plain arithmetic, equal to ``anchor + FREQUENCIES[frequency] * k`` (relativedelta) but
    # several times faster: the billing run computes a few of these per renewal.
    try:
        if frequency in _WEEKS:
            return anchor + timedelta(weeks=_WEEKS[frequency] * k)
        months = anchor.month - 1 + _MONTHS[frequency] * k
        year, month = anchor.year + months // 12, months % 12 + 1
        return date(year, month, min(anchor.day, monthrange(year, month)[1]))
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"Period {k} of a {frequency} schedule from {anchor} is out of range.") from exc


def period(anchor: date, frequency: str, k: int) -> tuple[date, date]:
    """Period ``k`` as ``(start, end)``: start inclusive, end exclusive."""
    return period_start(anchor, frequency, k), period_start(anchor, frequency, k + 1)


def end_date(anchor: date, frequency: str, number_of_payments: int) -> date:
    """End of a fixed term of N payments: start + N periods (R-SIGN-6).

    1 March, 6 monthly payments → 1 September.
    """
    _check_count(number_of_payments, "Number of payments", 1)
    return period_start(anchor, frequency, number_of_payments)


def period_index_for(anchor: date, frequency: str, day: date) -> int:
    """Index ``k`` of the period that contains ``day`` (``day >= anchor``)."""
    _check_date(anchor, "Anchor")
    _check_date(day, "Day")
    _check_frequency(frequency)
    if day < anchor:
        raise ValueError(f"{day} is before the start of the schedule ({anchor}).")
    if frequency in _WEEKS:
        return (day - anchor).days // (7 * _WEEKS[frequency])
    months = (day.year - anchor.year) * 12 + (day.month - anchor.month)
    k = max(months // _MONTHS[frequency], 0)  # off by at most one; adjust below
    while k > 0 and period_start(anchor, frequency, k) > day:
        k -= 1
    while period_start(anchor, frequency, k + 1) <= day:
        k += 1
    return k


def due_periods(
    anchor: date,
    frequency: str,
    billed_through: int,
    until: date,
    number_of_payments: int | None = None,
) -> list[int]:
    """Indexes of the periods to bill now: a pure function of its inputs (R-BILL-8).

    ``billed_through`` is the index of the last period already billed, ``-1``
    when none has been. A period ``k`` is due when ``k > billed_through``, its
    start (the payment date) is on or before ``until``, and, for a fixed term,
    ``k < number_of_payments``. Running it again after billing returns nothing;
    after downtime it returns every missed period, oldest first.
    """
    _check_date(anchor, "Anchor")
    _check_date(until, "Until")
    _check_frequency(frequency)
    _check_count(billed_through, "Last billed period index", -1)
    if number_of_payments is not None:
        _check_count(number_of_payments, "Number of payments", 1)
    if until < anchor:
        return []
    last = period_index_for(anchor, frequency, until)
    if number_of_payments is not None:
        last = min(last, number_of_payments - 1)
    return list(range(billed_through + 1, last + 1))


def start_date(
    checkout: date,
    fixed_date: date | None = None,
    delay_days: int = 0,
    delay_months: int = 0,
) -> date:
    """First billing date (the anchor) for a checkout on ``checkout`` (R-SIGN-7).

    Either a fixed date or a delay (months first, then days) may be given, not
    both. A fixed date that has already passed at checkout starts billing at
    checkout: a buyer is never billed for time before they bought.
    """
    _check_date(checkout, "Checkout date")
    _check_count(delay_days, "Start delay in days", 0)
    _check_count(delay_months, "Start delay in months", 0)
    if fixed_date is not None:
        _check_date(fixed_date, "Billing start date")
        if delay_days or delay_months:
            raise ValueError("Give either a billing start date or a start delay, not both.")
        return max(fixed_date, checkout)
    try:
        return checkout + relativedelta(months=delay_months, days=delay_days)
    except (OverflowError, ValueError) as exc:
        raise ValueError("The start delay reaches beyond the year 9999.") from exc


def local_today(now: datetime, tz: str) -> date:
    """The calendar date of the aware instant ``now`` in time zone ``tz``."""
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValueError(f"now must be a time-zone aware datetime, not {now!r}.")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"Unknown time zone {tz!r}.") from exc
    return now.astimezone(zone).date()


# --- a subscription's schedule: period indexes continue across re-anchoring ----------------
#
# When the seller moves the next payment date (R-MAN-1) the schedule gets a new
# anchor, but period indexes keep counting: period ``k`` starts at
# ``period_start(anchor, frequency, k - anchor_index)``. Billing cycles stay
# unique per (subscription, k).


def shifted_period(anchor: date, frequency: str, anchor_index: int, k: int) -> tuple[date, date]:
    return period(anchor, frequency, k - anchor_index)


def shifted_due(anchor: date, frequency: str, anchor_index: int, billed_through: int, until: date,
                number_of_payments: int | None = None) -> list[int]:
    """``due_periods`` in the subscription's own period indexes."""
    n = None if number_of_payments is None else number_of_payments - anchor_index
    if n is not None and n < 1:
        return []
    due = due_periods(anchor, frequency, billed_through - anchor_index, until, n)
    return [k + anchor_index for k in due]


def shifted_next(anchor: date, frequency: str, anchor_index: int, billed_through: int,
                 number_of_payments: int | None = None) -> date | None:
    """Payment date of the first period not billed yet; None when a fixed term is fully billed."""
    k = billed_through + 1
    if number_of_payments is not None and k >= number_of_payments:
        return None
    return period_start(anchor, frequency, k - anchor_index)
