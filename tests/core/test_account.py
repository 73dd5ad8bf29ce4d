"""The account's settings: checking, saving with history, and the cached accessor (recur.core.account)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from recur.core import account, clock, records
from recur.core.errors import ValidationFailed
from recur.core.models import AccountSettings

pytestmark = pytest.mark.django_db


def test_without_a_row_the_environment_gives_the_defaults(settings):
    settings.RECUR_TIME_ZONE = "Europe/Lisbon"
    settings.RECUR_DUNNING_RETRY_DAYS = [2, 4]
    settings.RECUR_DUNNING_FINAL_ACTION = "cancel"
    now = account.current()
    assert (now.time_zone, now.dunning_retry_days, now.dunning_final_action) == ("Europe/Lisbon", (2, 4), "cancel")
    assert now.default_payment_methods == ("card", "bank_account") and now.associate_billing_contacts
    assert clock.account_zone().key == "Europe/Lisbon"
    assert not AccountSettings.objects.exists()


def test_once_saved_the_row_decides_and_the_environment_no_longer_matters(admin, settings):
    account.update(admin, {"time_zone": "Asia/Tokyo"})
    settings.RECUR_TIME_ZONE = "Europe/Lisbon"
    settings.RECUR_DUNNING_RETRY_DAYS = [9]
    assert account.current().time_zone == "Asia/Tokyo"
    assert account.current().dunning_retry_days == (3, 5, 7)  # the default when the row was first written


@pytest.mark.parametrize("text, days", [("3, 5, 7", [3, 5, 7]), ("1,1,1", [1, 1, 1]), (" 10 ", [10]), ("", []),
                                        ("2; 4", [2, 4]), ([5, 3], [5, 3])])
def test_retry_schedules_that_are_accepted(text, days):
    assert account.parse_retry_days(text) == days


@pytest.mark.parametrize("text, words", [
    ("3, x", "“x” is not a whole number of days"), ("3,,5", "separate the numbers of days with commas"),
    ("0", "1 to 60 days"), ("-2", "“-2” is not a whole number"), ("61", "61 is not allowed"),
    ("2.5", "“2.5” is not a whole number"), (",".join(["1"] * 11), "at most 10 retries"), (None, "give the numbers"),
])
def test_bad_retry_schedules_name_the_field(text, words):
    with pytest.raises(ValidationFailed) as err:
        account.parse_retry_days(text)
    assert err.value.field == "dunning_retry_days" and words in err.value.message


@pytest.mark.parametrize("fields, field", [
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"), ({"time_zone": ""}, "time_zone"),
    ({"dunning_final_action": "refund"}, "dunning_final_action"),
    ({"default_payment_methods": []}, "default_payment_methods"),
    ({"default_payment_methods": ["card", "cash"]}, "default_payment_methods"),
    ({"associate_billing_contacts": "yes"}, "associate_billing_contacts"),
    ({"reminder_days": 0}, "reminder_days"), ({"sender_email": "nope"}, "sender_email"),
    ({"processor": "stripe"}, "processor"),
])
def test_bad_values_change_nothing(admin, fields, field):
    with pytest.raises(ValidationFailed) as err:
        account.update(admin, {"time_zone": "Asia/Tokyo", **fields})  # one good value, one bad: nothing saved
    assert err.value.field == field
    assert not AccountSettings.objects.exists() and account.current().time_zone != "Asia/Tokyo"


def test_a_change_is_recorded_with_who_what_and_when(admin, on):
    import datetime as dt

    on(dt.date(2027, 3, 1))
    row = account.update(admin, {"dunning_retry_days": "2, 4", "dunning_final_action": "cancel",
                                 "default_payment_methods": ["bank_account", "card"]})
    assert row.updated_by == admin and row.updated_at == clock.now()
    assert row.default_payment_methods == ["card", "bank_account"]  # kept in a fixed order
    entry, = records.history("account_settings", 1)
    assert entry.actor == admin and entry.action == "updated" and entry.at == clock.now()
    assert entry.changes == {"dunning_retry_days": [[3, 5, 7], [2, 4]], "dunning_final_action": ["stay_past_due", "cancel"]}
    account.update(admin, {"dunning_retry_days": [2, 4]})  # no change: no entry
    assert records.history("account_settings", 1).count() == 1


def test_the_accessor_is_cached_and_refreshed(admin):
    account.current()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            clock.today()
            account.current()
    assert len(queries) == 0
    account.update(admin, {"time_zone": "Asia/Tokyo"})
    assert account.current().time_zone == "Asia/Tokyo"  # saved in this process: seen at once
    AccountSettings.objects.filter(pk=1).update(time_zone="Europe/Oslo")  # as another process would
    assert account.current().time_zone == "Asia/Tokyo"
    Client().get("/login/")  # a request starts: it reads the settings afresh
    assert account.current().time_zone == "Europe/Oslo"
    AccountSettings.objects.filter(pk=1).update(time_zone="Europe/Rome")
    from recur.core import worker

    worker.run_once()  # so does a worker round
    assert account.current().time_zone == "Europe/Rome"


def test_snapshots_cannot_be_changed_by_a_reader():
    snapshot = account.current()
    with pytest.raises(AttributeError):
        snapshot.time_zone = "UTC"
    assert isinstance(snapshot.dunning_retry_days, tuple)
