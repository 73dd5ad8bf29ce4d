"""Subscription statuses and transitions (R-VIEW-4, R-BILL-6, R-MAN-1..4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recur.subscriptions.status import (
    EVENTS,
    STATUS_LABELS,
    STATUSES,
    InvalidTransition,
    Status,
    allowed_events,
    is_deletable,
    is_editable,
    is_terminal,
    label,
    transition,
)

ALLOWED = {
    ("scheduled", "start"): "active",
    ("active", "payment_succeeded"): "active",
    ("past_due", "payment_succeeded"): "active",
    ("scheduled", "payment_succeeded"): "active",
    ("active", "payment_failed"): "past_due",
    ("past_due", "payment_failed"): "past_due",
    ("scheduled", "payment_failed"): "past_due",
    ("active", "pause"): "paused",
    ("past_due", "pause"): "paused",
    ("paused", "resume"): "active",
    ("active", "cancel"): "canceled",
    ("past_due", "cancel"): "canceled",
    ("scheduled", "cancel"): "canceled",
    ("paused", "cancel"): "canceled",
    ("active", "expire"): "expired",
    ("past_due", "dunning_exhausted_cancel"): "canceled",
}


def test_statuses_and_labels() -> None:
    """R-VIEW-4: six statuses; past_due is shown as "Unpaid"."""
    assert STATUSES == ("active", "past_due", "canceled", "expired", "scheduled", "paused")
    assert label("past_due") == "Unpaid"
    assert [label(s) for s in STATUSES] == ["Active", "Unpaid", "Canceled", "Expired", "Scheduled", "Paused"]
    assert set(STATUS_LABELS) == set(STATUSES)


@pytest.mark.parametrize(("status", "event"), sorted(ALLOWED))
def test_allowed_transitions(status: str, event: str) -> None:
    """R-VIEW-4 / R-BILL-6 / R-MAN-2 / R-MAN-3: the legal moves."""
    result = transition(status, event)
    assert result == ALLOWED[status, event]
    assert isinstance(result, Status) and isinstance(result, str)


@pytest.mark.parametrize(
    ("status", "event"),
    [(s, e) for s in STATUSES for e in EVENTS if (s, e) not in ALLOWED],
)
def test_every_other_move_is_refused(status: str, event: str) -> None:
    """R-VIEW-4: e.g. a Canceled subscription is never billed again; illegal moves raise."""
    with pytest.raises(InvalidTransition) as info:
        transition(status, event)
    assert isinstance(info.value, ValueError)
    assert (info.value.status, info.value.event) == (status, event)
    assert label(status) in str(info.value)


def test_error_message_is_clear() -> None:
    """R-ALL-4: the message says what was refused and when it would be possible."""
    with pytest.raises(InvalidTransition, match=r"Cannot pause the subscription: it is Canceled, which is final\. "
                       r"This is possible only when it is Active or Unpaid\."):
        transition("canceled", "pause")
    with pytest.raises(InvalidTransition, match="only when it is Paused"):
        transition("active", "resume")


@given(st.sampled_from(["canceled", "expired"]), st.sampled_from(EVENTS))
def test_terminal_statuses_are_final(status: str, event: str) -> None:
    """R-VIEW-4: Canceled and Expired accept no event at all."""
    assert is_terminal(status)
    with pytest.raises(InvalidTransition):
        transition(status, event)


@given(st.sampled_from(STATUSES), st.lists(st.sampled_from(EVENTS), max_size=20))
def test_any_event_sequence_stays_in_known_statuses(start: str, events: list[str]) -> None:
    """R-VIEW-4: applying legal events keeps a valid status; allowed_events predicts legality."""
    status = start
    for event in events:
        legal = event in allowed_events(status)
        try:
            status = transition(status, event)
        except InvalidTransition:
            assert not legal
        else:
            assert legal
        assert status in STATUSES


def test_editable_deletable_terminal() -> None:
    """R-MAN-1: only Active/Scheduled are editable; R-MAN-4: only Canceled/Expired are deletable."""
    assert [s for s in STATUSES if is_editable(s)] == ["active", "scheduled"]
    assert [s for s in STATUSES if is_deletable(s)] == ["canceled", "expired"]
    assert [s for s in STATUSES if is_terminal(s)] == ["canceled", "expired"]


@pytest.mark.parametrize("func", [transition, lambda s: is_editable(s), label, allowed_events])
def test_unknown_status_or_event(func) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="Unknown subscription status 'unpaid'"):
        func("unpaid", "pause") if func is transition else func("unpaid")
    with pytest.raises(ValueError, match="Unknown subscription event 'renew'"):
        transition("active", "renew")
