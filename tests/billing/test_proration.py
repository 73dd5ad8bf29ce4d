"""Refund of unused days and mid-period change previews (R-MAN-2, R-MAN-1, R-MAN-5)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recur.billing.proration import ChangeProration, ProrationResult, prorate_change, unused_days_refund
from recur.core.money import round_half_up
from recur.subscriptions.schedule import FREQUENCIES, period

MARCH = (date(2027, 3, 1), date(2027, 4, 1))


def test_spec_example_cancel_on_10_march() -> None:
    """R-MAN-2: 49.00 EUR for 1 Mar..1 Apr, canceled 10 Mar → 22/31 × 4900 = 3477.4… → 3477."""
    assert unused_days_refund(4900, *MARCH, date(2027, 3, 10), "EUR") == ProrationResult(3477, 22, 31, "EUR")


def test_cancel_on_first_day_refunds_all() -> None:
    """R-MAN-2: a cancel on a period's first day refunds it all."""
    assert unused_days_refund(4900, *MARCH, date(2027, 3, 1), "EUR") == ProrationResult(4900, 31, 31, "EUR")


def test_cancel_on_last_day_and_after_end() -> None:
    """R-MAN-2: the end is exclusive; the last day still counts as one unused day."""
    assert unused_days_refund(4900, *MARCH, date(2027, 3, 31), "EUR").amount == 158  # 4900/31 = 158.06
    assert unused_days_refund(4900, *MARCH, date(2027, 4, 1), "EUR") == ProrationResult(0, 0, 31, "EUR")
    assert unused_days_refund(4900, *MARCH, date(2027, 6, 1), "EUR").amount == 0


def test_half_up_rounding_and_currency_precision() -> None:
    """R-MAN-2: rounded half-up to the currency's minor unit (JPY has none, BHD three)."""
    # 1 unused day of 10: 15/10 = 1.5 → 2; 25/10 = 2.5 → 3 and 5/10 = 0.5 → 1 (banker's rounding gives 2 and 0)
    ten_days = (date(2027, 3, 1), date(2027, 3, 11))
    assert unused_days_refund(15, *ten_days, date(2027, 3, 10), "JPY").amount == 2
    assert unused_days_refund(25, *ten_days, date(2027, 3, 10), "JPY").amount == 3
    assert unused_days_refund(5, *ten_days, date(2027, 3, 10), "BHD").amount == 1
    # 1000 JPY, Feb 2027 (28 days), 14 unused → 500
    assert unused_days_refund(1000, date(2027, 2, 1), date(2027, 3, 1), date(2027, 2, 15), "jpy") == ProrationResult(
        500, 14, 28, "JPY"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((4900, *MARCH, date(2027, 2, 28), "EUR"), "before the period start"),
        ((4900, date(2027, 3, 1), date(2027, 3, 1), date(2027, 3, 1), "EUR"), "must be after"),
        ((-1, *MARCH, date(2027, 3, 10), "EUR"), "Amount paid"),
        ((49.0, *MARCH, date(2027, 3, 10), "EUR"), "Amount paid"),
        ((4900, *MARCH, date(2027, 3, 10), "EURO"), "(?i)currency"),
    ],
)
def test_bad_input(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        unused_days_refund(*args)  # type: ignore[arg-type]


periods = st.tuples(
    st.dates(date(2000, 1, 1), date(2100, 12, 31)),
    st.sampled_from(list(FREQUENCIES)),
    st.integers(min_value=0, max_value=24),
).map(lambda t: period(*t))
paid = st.integers(min_value=0, max_value=10**12)


@given(amount=paid, bounds=periods, offset=st.integers(min_value=0, max_value=2000))
def test_refund_between_zero_and_paid(amount: int, bounds: tuple[date, date], offset: int) -> None:
    """R-MAN-2 / R-MAN-5: the refund is never negative and never more than what was paid."""
    start, end = bounds
    result = unused_days_refund(amount, start, end, start + timedelta(days=offset), "EUR")
    assert 0 <= result.amount <= amount
    assert result.period_days == (end - start).days
    assert 0 <= result.unused_days <= result.period_days
    assert result.amount == round_half_up(Decimal(amount) * result.unused_days / result.period_days)


@given(amount=paid, bounds=periods)
def test_full_refund_on_first_day(amount: int, bounds: tuple[date, date]) -> None:
    """R-MAN-2: canceling on the first day of the period refunds everything."""
    start, end = bounds
    assert unused_days_refund(amount, start, end, start, "EUR").amount == amount
    assert unused_days_refund(amount, start, end, end, "EUR").amount == 0


@given(amount=paid, bounds=periods, a=st.integers(0, 2000), b=st.integers(0, 2000))
def test_refund_monotone_in_cancel_date(amount: int, bounds: tuple[date, date], a: int, b: int) -> None:
    """R-MAN-2: the later the cancellation, the smaller (or equal) the refund."""
    start, end = bounds
    early, late = sorted((a, b))
    first = unused_days_refund(amount, start, end, start + timedelta(days=early), "EUR")
    second = unused_days_refund(amount, start, end, start + timedelta(days=late), "EUR")
    assert second.amount <= first.amount


def test_prorate_change_examples() -> None:
    """R-MAN-1: upgrade 49 → 99 EUR on 10 March: credit 34.77, charge 70.26, net 35.49."""
    up = prorate_change(4900, 9900, *MARCH, date(2027, 3, 10), "EUR")
    assert up == ChangeProration(credit=3477, charge=7026, net=3549, unused_days=22, period_days=31, currency="EUR")
    down = prorate_change(9900, 4900, *MARCH, date(2027, 3, 10), "EUR")
    assert (down.credit, down.charge, down.net) == (7026, 3477, -3549)
    assert prorate_change(4900, 9900, *MARCH, date(2027, 3, 1), "EUR").net == 5000
    assert prorate_change(4900, 9900, *MARCH, date(2027, 4, 1), "EUR").net == 0
    with pytest.raises(ValueError, match="Change date"):
        prorate_change(4900, 9900, *MARCH, date(2027, 2, 1), "EUR")
    with pytest.raises(ValueError, match="New amount"):
        prorate_change(4900, -1, *MARCH, date(2027, 3, 2), "EUR")


@given(old=paid, new=paid, bounds=periods, offset=st.integers(min_value=0, max_value=2000))
def test_prorate_change_properties(old: int, new: int, bounds: tuple[date, date], offset: int) -> None:
    """R-MAN-1: credit uses the same day count as a refund (R-MAN-2); net = charge - credit."""
    start, end = bounds
    on = start + timedelta(days=offset)
    result = prorate_change(old, new, start, end, on, "EUR")
    assert result.credit == unused_days_refund(old, start, end, on, "EUR").amount
    assert result.charge == unused_days_refund(new, start, end, on, "EUR").amount
    assert result.net == result.charge - result.credit
    assert 0 <= result.credit <= old and 0 <= result.charge <= new
    if old == new:
        assert result.net == 0
    assert (result.net > 0) <= (new > old)  # a downgrade never costs extra
