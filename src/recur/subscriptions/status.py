"""Subscription statuses and the moves between them (R-VIEW-4, R-MAN; pure, no Django).

=================  ========================================================
event              allowed from → to
=================  ========================================================
start              scheduled → active (billing start date reached)
payment_succeeded  active, past_due, scheduled → active
payment_failed     active, past_due, scheduled → past_due (R-BILL-6)
pause              active, past_due → paused (R-MAN-3)
resume             paused → active (R-MAN-3)
cancel             active, past_due, scheduled, paused → canceled (R-MAN-2)
expire             active → expired (whole term billed and paid)
dunning_exhausted_cancel  past_due → canceled (R-BILL-6 account setting)
=================  ========================================================

Canceled and expired are terminal. A payment that settles after a
subscription stopped (e.g. a pending bank debit, R-MAN-2) is recorded by the
caller without a status change.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "EVENTS",
    "STATUSES",
    "STATUS_LABELS",
    "Event",
    "InvalidTransition",
    "Status",
    "allowed_events",
    "is_deletable",
    "is_editable",
    "is_terminal",
    "label",
    "transition",
]


class Status(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    EXPIRED = "expired"
    SCHEDULED = "scheduled"
    PAUSED = "paused"


class Event(StrEnum):
    START = "start"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    EXPIRE = "expire"
    DUNNING_EXHAUSTED_CANCEL = "dunning_exhausted_cancel"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
EVENTS: tuple[str, ...] = tuple(e.value for e in Event)

#: English UI labels; the API value ``past_due`` is shown as "Unpaid" (R-VIEW-4).
STATUS_LABELS: dict[str, str] = {
    Status.ACTIVE: "Active",
    Status.PAST_DUE: "Unpaid",
    Status.CANCELED: "Canceled",
    Status.EXPIRED: "Expired",
    Status.SCHEDULED: "Scheduled",
    Status.PAUSED: "Paused",
}

_S = Status
_TRANSITIONS: dict[Event, tuple[frozenset[Status], Status]] = {
    Event.START: (frozenset({_S.SCHEDULED}), _S.ACTIVE),
    Event.PAYMENT_SUCCEEDED: (frozenset({_S.ACTIVE, _S.PAST_DUE, _S.SCHEDULED}), _S.ACTIVE),
    Event.PAYMENT_FAILED: (frozenset({_S.ACTIVE, _S.PAST_DUE, _S.SCHEDULED}), _S.PAST_DUE),
    Event.PAUSE: (frozenset({_S.ACTIVE, _S.PAST_DUE}), _S.PAUSED),
    Event.RESUME: (frozenset({_S.PAUSED}), _S.ACTIVE),
    Event.CANCEL: (frozenset({_S.ACTIVE, _S.PAST_DUE, _S.SCHEDULED, _S.PAUSED}), _S.CANCELED),
    Event.EXPIRE: (frozenset({_S.ACTIVE}), _S.EXPIRED),
    Event.DUNNING_EXHAUSTED_CANCEL: (frozenset({_S.PAST_DUE}), _S.CANCELED),
}
_TERMINAL = frozenset({Status.CANCELED, Status.EXPIRED})
_ACTIONS = {
    Event.START: "start billing",
    Event.PAYMENT_SUCCEEDED: "record a successful payment",
    Event.PAYMENT_FAILED: "record a failed payment",
    Event.PAUSE: "pause the subscription",
    Event.RESUME: "resume the subscription",
    Event.CANCEL: "cancel the subscription",
    Event.EXPIRE: "expire the subscription",
    Event.DUNNING_EXHAUSTED_CANCEL: "cancel the subscription after the last payment retry",
}


class InvalidTransition(ValueError):
    """An event that is not allowed in the subscription's current status."""

    def __init__(self, status: str, event: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.event = event


def _status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        expected = ", ".join(STATUSES)
        raise ValueError(f"Unknown subscription status {value!r}; expected one of {expected}.") from None


def _event(value: str) -> Event:
    try:
        return Event(value)
    except ValueError:
        expected = ", ".join(EVENTS)
        raise ValueError(f"Unknown subscription event {value!r}; expected one of {expected}.") from None


def label(status: str) -> str:
    """English UI label of a status (``past_due`` → "Unpaid")."""
    return STATUS_LABELS[_status(status)]


def transition(status: str, event: str) -> Status:
    """The status after ``event``; :class:`InvalidTransition` if the move is not allowed."""
    current, ev = _status(status), _event(event)
    sources, target = _TRANSITIONS[ev]
    if current not in sources:
        allowed = " or ".join(sorted(STATUS_LABELS[s] for s in sources))
        final = ", which is final" if current in _TERMINAL else ""
        raise InvalidTransition(
            current.value,
            ev.value,
            f"Cannot {_ACTIONS[ev]}: it is {STATUS_LABELS[current]}{final}."
            f" This is possible only when it is {allowed}.",
        )
    return target


def allowed_events(status: str) -> list[Event]:
    """Events allowed in ``status``, in declaration order (for action menus)."""
    current = _status(status)
    return [ev for ev, (sources, _) in _TRANSITIONS.items() if current in sources]


def is_editable(status: str) -> bool:
    """Only Active or Scheduled subscriptions can be edited (R-MAN-1)."""
    return _status(status) in (Status.ACTIVE, Status.SCHEDULED)


def is_deletable(status: str) -> bool:
    """Only Canceled or Expired subscriptions can be deleted (R-MAN-4)."""
    return _status(status) in _TERMINAL


def is_terminal(status: str) -> bool:
    """Canceled and Expired subscriptions are never billed again (R-VIEW-4)."""
    return _status(status) in _TERMINAL
