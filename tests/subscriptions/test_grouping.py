"""Line items → subscriptions (R-SIGN-4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recur.subscriptions.grouping import group_line_items, grouping_key, split_recurring
from recur.subscriptions.schedule import FREQUENCIES


@dataclass
class Item:
    name: str
    billing_frequency: str | None = None
    billing_terms: str | None = None
    billing_start_date: date | str | None = None
    number_of_payments: int | None = None
    billing_start_delay_days: int | None = None
    billing_start_delay_months: int | None = None


def test_monthly_and_annual_items_make_two_subscriptions() -> None:
    """R-SIGN-4: a link with a monthly and an annual item gives two subscriptions."""
    monthly = {"name": "Seat", "billing_frequency": "monthly", "billing_terms": "auto_renew"}
    annual = {"name": "Support", "billing_frequency": "annually", "billing_terms": "auto_renew"}
    assert group_line_items([monthly, annual]) == [[monthly], [annual]]


def test_same_key_items_make_one_subscription_in_first_appearance_order() -> None:
    """R-SIGN-4: same frequency, terms, start date and number of payments → ONE subscription."""
    a = Item("A", "monthly", "fixed", date(2027, 3, 1), 6)
    b = Item("B", "annually")
    c = Item("C", "monthly", "fixed", "2027-03-01", 6)  # same date as a string
    d = Item("D", "annually", "auto_renew")
    assert group_line_items([a, b, c, d]) == [[a, c], [b, d]]


@pytest.mark.parametrize(
    "other",
    [
        Item("x", "quarterly", "fixed", date(2027, 3, 1), 6),  # frequency
        Item("x", "monthly", "auto_renew", date(2027, 3, 1)),  # terms
        Item("x", "monthly", "fixed", date(2027, 3, 2), 6),  # start date
        Item("x", "monthly", "fixed", date(2027, 3, 1), 12),  # number of payments
        Item("x", "monthly", "fixed", None, 6, billing_start_delay_days=14),  # delay instead of date
    ],
)
def test_any_difference_makes_separate_subscriptions(other: Item) -> None:
    """R-SIGN-4: any difference in the key makes separate subscriptions."""
    base = Item("base", "monthly", "fixed", date(2027, 3, 1), 6)
    assert grouping_key(base) != grouping_key(other)
    assert group_line_items([base, other]) == [[base], [other]]


def test_one_time_items_are_not_grouped() -> None:
    """R-SIGN-4 / R-NEW-6: one-time items belong to no subscription."""
    seat = {"name": "Seat", "billing_frequency": "monthly", "billing_terms": "auto_renew"}
    onboarding = {"name": "Onboarding"}
    setup = Item("Setup", billing_frequency="")
    assert split_recurring([onboarding, seat, setup]) == ([[seat]], [onboarding, setup])
    assert group_line_items([onboarding, setup]) == []
    assert split_recurring([]) == ([], [])
    with pytest.raises(ValueError, match="billing_frequency"):
        grouping_key(onboarding)


def test_key_normalisation() -> None:
    """R-SIGN-4 / R-SIGN-6: auto-renew has no number of payments; terms default from it."""
    assert grouping_key({"billing_frequency": "monthly"}) == ("monthly", "auto_renew", None, 0, 0, None)
    assert grouping_key({"billing_frequency": "monthly", "number_of_payments": 6}) == (
        "monthly", "fixed", None, 0, 0, 6,
    )
    # number_of_payments is ignored for auto-renew items
    assert grouping_key({"billing_frequency": "monthly", "billing_terms": "auto_renew", "number_of_payments": 6}) == (
        grouping_key({"billing_frequency": "monthly", "billing_terms": "auto_renew"})
    )
    assert grouping_key(Item("x", "weekly", billing_start_delay_months=1))[3:5] == (0, 1)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"billing_frequency": "daily"}, "billing_frequency"),
        ({"billing_frequency": "monthly", "billing_terms": "forever"}, "billing_terms"),
        ({"billing_frequency": "monthly", "billing_terms": "fixed"}, "number_of_payments"),
        ({"billing_frequency": "monthly", "billing_terms": "fixed", "number_of_payments": 0}, "number_of_payments"),
        ({"billing_frequency": "monthly", "billing_start_date": "1 March"}, "billing_start_date"),
        ({"billing_frequency": "monthly", "billing_start_delay_days": -3}, "billing_start_delay_days"),
        (
            {"billing_frequency": "monthly", "billing_start_date": "2027-03-01", "billing_start_delay_days": 3},
            "billing_start_date",
        ),
    ],
)
def test_invalid_items_name_the_field(item: dict[str, object], field: str) -> None:
    """R-SIGN-4 / R-ALL-4: bad input gets an error naming the field."""
    with pytest.raises(ValueError, match=field):
        grouping_key(item)


items = st.builds(
    dict,
    name=st.text(max_size=3),
    billing_frequency=st.one_of(st.none(), st.sampled_from(list(FREQUENCIES)[:4])),
    billing_terms=st.sampled_from(["auto_renew", "fixed"]),
    number_of_payments=st.integers(min_value=1, max_value=3),
    billing_start_date=st.one_of(st.none(), st.dates(date(2027, 1, 1), date(2027, 1, 3))),
)


@given(st.lists(items, max_size=25))
def test_grouping_partitions_the_items(line_items: list[dict[str, object]]) -> None:
    """R-SIGN-4: every item lands in exactly one place; groups share one key, keys differ between groups."""
    groups, one_time = split_recurring(line_items)
    flat = [item for group in groups for item in group] + one_time
    assert sorted(map(id, flat)) == sorted(map(id, line_items))
    assert all(item["billing_frequency"] is None for item in one_time)
    keys = [grouping_key(group[0]) for group in groups]
    assert len(set(keys)) == len(keys)
    for group in groups:
        assert group and {grouping_key(item) for item in group} == {grouping_key(group[0])}
        positions = [next(i for i, x in enumerate(line_items) if x is item) for item in group]
        assert positions == sorted(positions)  # order kept within a group
    firsts = [next(i for i, x in enumerate(line_items) if x is group[0]) for group in groups]
    assert firsts == sorted(firsts)  # groups in order of first appearance
    assert group_line_items(line_items) == groups
