"""The only source of "now" in business code.

Tests move time with ``freeze``; in test mode (RECUR_TEST_MODE=1) ``recur bill
--until DATE`` moves the instance's simulated clock, which is kept in the
database so every process of the instance sees the same time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from zoneinfo import ZoneInfo

from django.conf import settings

_local = threading.local()


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def now() -> dt.datetime:
    frozen = getattr(_local, "frozen", None)
    if frozen is not None:
        return frozen
    if settings.RECUR_TEST_MODE:
        from recur.core.models import SimulatedClock

        simulated = SimulatedClock.current()
        if simulated is not None and simulated > _real_now():
            return simulated
    return _real_now()


def account_zone() -> ZoneInfo:
    """The account's time zone (Settings page; RECUR_TIME_ZONE is the default of a fresh installation)."""
    from recur.core import account

    return account.current().zone


def today() -> dt.date:
    """Today's date in the account's time zone."""
    return now().astimezone(account_zone()).date()


def start_of_day(day: dt.date) -> dt.datetime:
    """The first instant of ``day`` in the account's time zone."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=account_zone())


@contextlib.contextmanager
def freeze(moment: dt.datetime | dt.date):
    """Pin ``now()`` for this thread (tests)."""
    if isinstance(moment, dt.date) and not isinstance(moment, dt.datetime):
        moment = start_of_day(moment) + dt.timedelta(hours=9)
    previous = getattr(_local, "frozen", None)
    _local.frozen = moment
    try:
        yield
    finally:
        _local.frozen = previous
