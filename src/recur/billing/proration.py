"""Proration by unused days of a billing period (R-MAN-2, R-MAN-1; pure, no Django).

Unused days run from the cancellation/change date (inclusive) to the period's
end (exclusive), counted as calendar days in the account's time zone (the
caller passes local dates). Amounts are integer minor units; each prorated
amount is ``amount × unused_days ÷ period_days`` rounded half-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, localcontext

from recur.core.money import round_half_up, validate_currency

__all__ = ["ChangeProration", "ProrationResult", "prorate_change", "unused_days_refund"]


@dataclass(frozen=True, slots=True)
class ProrationResult:
    """A refund of unused days: ``amount`` in minor units of ``currency``."""

    amount: int
    unused_days: int
    period_days: int
    currency: str


@dataclass(frozen=True, slots=True)
class ChangeProration:
    """Preview of a mid-period change of amount (R-MAN-1).

    ``credit`` is the unused part of the old amount, ``charge`` the remaining
    part of the new one, ``net = charge - credit`` (negative means a credit).
    """

    credit: int
    charge: int
    net: int
    unused_days: int
    period_days: int
    currency: str


def _check_amount(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer number of minor units, not {value!r}.")
    return value


def _unused_days(period_start: date, period_end: date, on: date, what: str) -> tuple[int, int]:
    for value, name in ((period_start, "Period start"), (period_end, "Period end"), (on, what)):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError(f"{name} must be a date, not {value!r}.")
    if period_end <= period_start:
        raise ValueError(f"Period end {period_end} must be after period start {period_start}.")
    if on < period_start:
        raise ValueError(f"{what} {on} is before the period start {period_start}.")
    period_days = (period_end - period_start).days
    return max((period_end - on).days, 0), period_days


def _prorate(amount: int, unused_days: int, period_days: int) -> int:
    with localcontext() as ctx:
        ctx.prec = 80  # exact enough that half-up rounding is never disturbed
        return round_half_up(Decimal(amount) * unused_days / period_days)


def unused_days_refund(
    amount_paid: int,
    period_start: date,
    period_end: date,
    cancel_date: date,
    currency: str,
) -> ProrationResult:
    """Refund of the unused days when canceling on ``cancel_date`` (R-MAN-2).

    Canceling on the period's first day refunds everything; on or after its
    end refunds nothing; the refund never exceeds ``amount_paid``.
    """
    code = validate_currency(currency)
    _check_amount(amount_paid, "Amount paid")
    unused, days = _unused_days(period_start, period_end, cancel_date, "Cancellation date")
    return ProrationResult(_prorate(amount_paid, unused, days), unused, days, code)


def prorate_change(
    old_amount: int,
    new_amount: int,
    period_start: date,
    period_end: date,
    change_date: date,
    currency: str,
) -> ChangeProration:
    """Credit for the old amount's unused days and charge for the new amount's (R-MAN-1)."""
    code = validate_currency(currency)
    _check_amount(old_amount, "Old amount")
    _check_amount(new_amount, "New amount")
    unused, days = _unused_days(period_start, period_end, change_date, "Change date")
    credit = _prorate(old_amount, unused, days)
    charge = _prorate(new_amount, unused, days)
    return ChangeProration(credit, charge, charge - credit, unused, days, code)
