"""Billing calendar (R-BILL-7, R-BILL-8, R-SIGN-6, R-SIGN-7)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recur.subscriptions import schedule
from recur.subscriptions.schedule import (
    FREQUENCIES,
    due_periods,
    end_date,
    local_today,
    period,
    period_index_for,
    period_start,
    start_date,
)

ALL = list(FREQUENCIES)
MONTH_STEPS = {
    "monthly": 1,
    "quarterly": 3,
    "per_six_months": 6,
    "annually": 12,
    "per_two_years": 24,
    "per_three_years": 36,
    "per_four_years": 48,
    "per_five_years": 60,
}
anchors = st.dates(min_value=date(1990, 1, 1), max_value=date(2200, 12, 31))
frequencies = st.sampled_from(ALL)
indexes = st.integers(min_value=0, max_value=600)


def test_ten_frequencies() -> None:
    """R-BILL-7: weekly, every two weeks, monthly … every 5 years."""
    assert ALL == [
        "weekly",
        "biweekly",
        "monthly",
        "quarterly",
        "per_six_months",
        "annually",
        "per_two_years",
        "per_three_years",
        "per_four_years",
        "per_five_years",
    ]
    assert period_start(date(2027, 3, 1), "weekly", 1) == date(2027, 3, 8)
    assert period_start(date(2027, 3, 1), "biweekly", 1) == date(2027, 3, 15)
    for name, months in MONTH_STEPS.items():
        expected = date(2027 + months // 12, 1 + months % 12, 15)
        assert period_start(date(2027, 1, 15), name, 1) == expected, name


def test_31_january_monthly() -> None:
    """R-BILL-7: started 31 January → 28/29 February → 31 March → 30 April (never chained)."""
    leap = [period_start(date(2024, 1, 31), "monthly", k) for k in range(6)]
    assert leap == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
        date(2024, 6, 30),
    ]
    assert period_start(date(2027, 1, 31), "monthly", 1) == date(2027, 2, 28)
    assert period_start(date(2027, 1, 31), "monthly", 2) == date(2027, 3, 31)


def test_29_february_annually() -> None:
    """R-BILL-7: 29 Feb 2024 yearly → 28 Feb 2025, 2026, 2027 → 29 Feb 2028."""
    starts = [period_start(date(2024, 2, 29), "annually", k) for k in range(5)]
    assert starts == [date(2024, 2, 29), date(2025, 2, 28), date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29)]
    assert period_start(date(2024, 2, 29), "per_four_years", 1) == date(2028, 2, 29)
    assert period_start(date(2024, 2, 29), "per_five_years", 1) == date(2029, 2, 28)


def test_period_is_half_open() -> None:
    """R-BILL-7: period k runs from its start (inclusive) to the next start (exclusive)."""
    assert period(date(2027, 1, 31), "monthly", 1) == (date(2027, 2, 28), date(2027, 3, 31))
    assert period(date(2027, 3, 1), "monthly", 0) == (date(2027, 3, 1), date(2027, 4, 1))


def test_end_date_fixed_number_of_payments() -> None:
    """R-SIGN-6: paid on 1 March, 6 monthly payments → end date 1 September."""
    assert end_date(date(2027, 3, 1), "monthly", 6) == date(2027, 9, 1)
    assert end_date(date(2027, 3, 1), "annually", 1) == date(2028, 3, 1)
    assert end_date(date(2027, 1, 31), "monthly", 1) == date(2027, 2, 28)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: period_start(date(2027, 1, 1), "daily", 0), "Unknown billing frequency 'daily'"),
        (lambda: period_start(date(2027, 1, 1), "monthly", -1), "Period index"),
        (lambda: period_start(date(2027, 1, 1), "monthly", True), "Period index"),
        (lambda: period_start(datetime(2027, 1, 1), "monthly", 0), "must be a date"),
        (lambda: period_start(date(9999, 1, 1), "annually", 1), "out of range"),
        (lambda: end_date(date(2027, 1, 1), "monthly", 0), "Number of payments"),
        (lambda: period_index_for(date(2027, 1, 1), "monthly", date(2026, 12, 31)), "before the start"),
        (lambda: due_periods(date(2027, 1, 1), "monthly", -2, date(2027, 5, 1), None), "Last billed"),
        (lambda: due_periods(date(2027, 1, 1), "monthly", -1, date(2027, 5, 1), 0), "Number of payments"),
        (lambda: due_periods(date(2027, 1, 1), "yearly", -1, date(2027, 5, 1), None), "Unknown billing frequency"),
    ],
)
def test_bad_input_is_a_value_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


@given(anchor=anchors, frequency=frequencies, k=indexes)
def test_periods_are_contiguous_and_increasing(anchor: date, frequency: str, k: int) -> None:
    """R-BILL-7: end of period k is the start of period k+1; starts strictly increase."""
    start, end = period(anchor, frequency, k)
    next_start, _ = period(anchor, frequency, k + 1)
    assert start < end == next_start
    assert period_start(anchor, frequency, 0) == anchor


@given(anchor=anchors, frequency=st.sampled_from(list(MONTH_STEPS)), k=indexes)
def test_month_based_day_is_anchor_day_clamped(anchor: date, frequency: str, k: int) -> None:
    """R-BILL-7: the day of month is min(anchor day, month length); the month advances exactly."""
    start = period_start(anchor, frequency, k)
    months = anchor.month - 1 + k * MONTH_STEPS[frequency]
    assert (start.year, start.month) == (anchor.year + months // 12, months % 12 + 1)
    assert start.day == min(anchor.day, calendar.monthrange(start.year, start.month)[1])


@given(anchor=anchors, frequency=st.sampled_from(["weekly", "biweekly"]), k=indexes)
def test_week_based_periods_have_fixed_length(anchor: date, frequency: str, k: int) -> None:
    """R-BILL-7: weekly is 7 days, every two weeks is 14 days."""
    start, end = period(anchor, frequency, k)
    days = 7 if frequency == "weekly" else 14
    assert start == anchor + timedelta(days=days * k)
    assert (end - start).days == days


@given(anchor=anchors, frequency=frequencies, offset=st.integers(min_value=0, max_value=365 * 60))
def test_period_index_for_is_consistent_with_period(anchor: date, frequency: str, offset: int) -> None:
    """R-BILL-7: the period found for a day contains that day."""
    day = anchor + timedelta(days=offset)
    k = period_index_for(anchor, frequency, day)
    start, end = period(anchor, frequency, k)
    assert start <= day < end


@given(anchor=anchors, frequency=frequencies, k=indexes)
def test_period_index_for_period_bounds(anchor: date, frequency: str, k: int) -> None:
    """R-BILL-7: the first and last day of period k belong to period k."""
    start, end = period(anchor, frequency, k)
    assert period_index_for(anchor, frequency, start) == k
    assert period_index_for(anchor, frequency, end - timedelta(days=1)) == k
    assert period_index_for(anchor, frequency, end) == k + 1


def test_period_index_for_examples() -> None:
    anchor = date(2024, 1, 31)
    assert period_index_for(anchor, "monthly", date(2024, 1, 31)) == 0
    assert period_index_for(anchor, "monthly", date(2024, 2, 28)) == 0
    assert period_index_for(anchor, "monthly", date(2024, 2, 29)) == 1
    assert period_index_for(anchor, "monthly", date(2024, 3, 30)) == 1
    assert period_index_for(anchor, "monthly", date(2024, 3, 31)) == 2
    assert period_index_for(anchor, "monthly", date(2124, 1, 31)) == 1200


def test_due_periods_examples() -> None:
    """R-BILL-8: billing is a pure function of (schedule, billed so far, date)."""
    anchor = date(2027, 3, 1)
    assert due_periods(anchor, "monthly", -1, date(2027, 2, 28), None) == []
    assert due_periods(anchor, "monthly", -1, date(2027, 3, 1), None) == [0]
    assert due_periods(anchor, "monthly", 0, date(2027, 3, 31), None) == []
    assert due_periods(anchor, "monthly", 0, date(2027, 4, 1), None) == [1]
    # after downtime the engine catches up, oldest first
    assert due_periods(anchor, "monthly", 0, date(2027, 7, 15), None) == [1, 2, 3, 4]
    # R-SIGN-6: a fixed term of 6 payments never bills a 7th
    assert due_periods(anchor, "monthly", 3, date(2030, 1, 1), 6) == [4, 5]
    assert due_periods(anchor, "monthly", 5, date(2030, 1, 1), 6) == []


@given(
    anchor=anchors,
    frequency=frequencies,
    billed=st.integers(min_value=-1, max_value=50),
    offset=st.integers(min_value=-400, max_value=365 * 12),
    payments=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
)
def test_due_periods_properties(
    anchor: date, frequency: str, billed: int, offset: int, payments: int | None
) -> None:
    """R-BILL-8: due periods are exactly the unbilled ones started by `until`; billing them leaves none."""
    until = anchor + timedelta(days=offset)
    due = due_periods(anchor, frequency, billed, until, payments)
    assert due == sorted(set(due))
    for k in due:
        assert k > billed
        assert period_start(anchor, frequency, k) <= until
        assert payments is None or k < payments
    if due:
        assert due[0] == billed + 1  # contiguous: nothing is skipped
        assert due_periods(anchor, frequency, due[-1], until, payments) == []  # idempotent
    nxt = billed + 1
    if not due and (payments is None or nxt < payments):
        assert period_start(anchor, frequency, nxt) > until


@given(anchor=anchors, frequency=frequencies, payments=st.integers(min_value=1, max_value=60))
def test_fixed_term_bills_exactly_n_periods_before_end_date(anchor: date, frequency: str, payments: int) -> None:
    """R-SIGN-6: N payments, the last one in the period that ends on the end date."""
    end = end_date(anchor, frequency, payments)
    assert due_periods(anchor, frequency, -1, end, payments) == list(range(payments))
    assert period(anchor, frequency, payments - 1)[1] == end


def test_start_date() -> None:
    """R-SIGN-7: billing starts on a fixed future date or after a delay of N days or months."""
    checkout = date(2027, 1, 31)
    assert start_date(checkout) == checkout
    assert start_date(checkout, fixed_date=date(2027, 3, 1)) == date(2027, 3, 1)
    assert start_date(checkout, fixed_date=date(2027, 1, 1)) == checkout  # a past date starts now
    assert start_date(checkout, delay_days=14) == date(2027, 2, 14)
    assert start_date(checkout, delay_months=1) == date(2027, 2, 28)
    assert start_date(checkout, delay_months=1, delay_days=1) == date(2027, 3, 1)
    with pytest.raises(ValueError, match="not both"):
        start_date(checkout, fixed_date=date(2027, 3, 1), delay_days=1)
    with pytest.raises(ValueError, match="delay"):
        start_date(checkout, delay_days=-1)
    with pytest.raises(ValueError, match="9999"):
        start_date(date(9999, 12, 1), delay_months=1)


@given(checkout=anchors, days=st.integers(0, 1000), months=st.integers(0, 120))
def test_start_date_never_before_checkout(checkout: date, days: int, months: int) -> None:
    """R-SIGN-7: a delayed start is on or after checkout."""
    assert start_date(checkout, delay_days=days, delay_months=months) >= checkout


def test_local_today() -> None:
    """R-BILL-7: dates are in the account's time zone."""
    now = datetime(2027, 3, 31, 22, 30, tzinfo=UTC)
    assert local_today(now, "UTC") == date(2027, 3, 31)
    assert local_today(now, "Europe/Amsterdam") == date(2027, 4, 1)  # CEST, UTC+2
    assert local_today(now, "America/New_York") == date(2027, 3, 31)
    plus_two = datetime(2027, 4, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert local_today(plus_two, "America/Los_Angeles") == date(2027, 3, 31)
    with pytest.raises(ValueError, match="aware"):
        local_today(datetime(2027, 3, 31, 12, 0), "UTC")
    with pytest.raises(ValueError, match="time zone"):
        local_today(now, "Mars/Olympus_Mons")


@given(
    anchor=st.dates(min_value=date(1900, 1, 1), max_value=date(2400, 12, 31)),
    frequency=st.sampled_from(sorted(schedule.FREQUENCIES)),
    k=st.integers(min_value=0, max_value=300),
)
def test_fast_period_start_equals_relativedelta(anchor, frequency, k):
    """The arithmetic fast path gives exactly ``anchor + step × k`` (R-BILL-7)."""
    assert schedule.period_start(anchor, frequency, k) == anchor + schedule.FREQUENCIES[frequency] * k
