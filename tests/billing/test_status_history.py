"""Status changes made by the billing run are in the change history (R-OBJ-4): one entry per
change, written in the run's own transaction, and none for an ordinary renewal."""

import datetime as dt

import pytest

from recur.billing import engine
from recur.core.models import HistoryEntry
from recur.subscriptions.models import Subscription
from tests.billing.conftest import item
from tests.billing.test_engine_scenarios import create

pytestmark = pytest.mark.django_db

D = dt.date


def status_history(sub_id: int) -> list[list[str]]:
    entries = HistoryEntry.objects.filter(record_type="subscription", record_id=sub_id).order_by("at", "id")
    return [e.changes["status"] for e in entries if e.action == "updated" and "status" in e.changes]


def run_entries(sub_id: int):
    return HistoryEntry.objects.filter(record_type="subscription", record_id=sub_id, action="updated",
                                       actor__isnull=True)


def test_ordinary_renewals_write_no_history(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    before = HistoryEntry.objects.count()
    for day in (D(2027, 4, 1), D(2027, 5, 1), D(2027, 6, 1)):
        on(day)
        assert engine.run().charged == 1
    assert HistoryEntry.objects.count() == before
    assert status_history(s["id"]) == []


def test_scheduled_to_active_on_the_start_date(api, buyer, on):
    on(D(2027, 1, 10))
    contact, pm = buyer()
    s = create(api, contact, pm, line_items=[item(billing_start_date="2027-02-01")])
    on(D(2027, 2, 1))
    engine.run()
    assert status_history(s["id"]) == [["scheduled", "active"]]
    entry = run_entries(s["id"]).get()
    assert entry.at.date() == D(2027, 2, 1) and entry.actor is None


def test_dunning_past_due_then_canceled(api, buyer, on, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3]
    settings.RECUR_DUNNING_FINAL_ACTION = "cancel"
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    from recur.payments.models import BuiltinToken

    BuiltinToken.objects.filter(token=pm.processor_ref).update(behaviour="decline")  # the card stops working
    on(D(2027, 4, 1))
    engine.run()
    assert Subscription.objects.get(pk=s["id"]).status == "past_due"
    on(D(2027, 4, 4))
    engine.run()  # the retry fails too: the last one, and the account's policy cancels
    assert Subscription.objects.get(pk=s["id"]).status == "canceled"
    assert status_history(s["id"]) == [["active", "past_due"], ["past_due", "canceled"]]
    on(D(2027, 5, 1))
    engine.run()  # nothing changes any more: nothing more is written
    assert len(status_history(s["id"])) == 2


def test_past_due_back_to_active_after_a_successful_retry(api, buyer, on, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5]
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    from recur.payments.models import BuiltinToken

    BuiltinToken.objects.filter(token=pm.processor_ref).update(behaviour="insufficient_funds")
    on(D(2027, 4, 1))
    engine.run()
    on(D(2027, 4, 4))
    engine.run()  # still failing: past due stays past due, no entry
    BuiltinToken.objects.filter(token=pm.processor_ref).update(behaviour="succeed")
    on(D(2027, 4, 9))
    assert engine.run().charged == 1
    assert status_history(s["id"]) == [["active", "past_due"], ["past_due", "active"]]


def test_cancel_at_period_end_expiry_and_overdue_manual_invoice(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    ending = create(api, contact, pm)
    fixed = create(api, contact, pm, line_items=[item(billing_terms="fixed", number_of_payments=1)])
    manual_contact, _ = buyer(card=None, email="bert@example.nl")
    manual = create(api, manual_contact, None, collection="manual", payment_terms="net_30")
    on(D(2027, 3, 20))
    r = api.post(f"/subscriptions/{ending['id']}/cancel", {"mode": "end_of_period", "confirm": True})
    assert r.status_code == 200, r.content
    on(D(2027, 4, 1))
    engine.run()
    assert status_history(ending["id"]) == [["active", "canceled"]]
    assert status_history(fixed["id"]) == [["active", "expired"]]
    assert status_history(manual["id"]) == [["active", "past_due"]]
    assert Subscription.objects.get(pk=manual["id"]).status == "past_due"
    on(D(2027, 4, 2))
    engine.run()  # already past due: no second entry
    assert status_history(manual["id"]) == [["active", "past_due"]]


def test_history_is_written_with_the_change_or_not_at_all(api, buyer, on, monkeypatch):
    """The entry and the status change share one transaction: a run that dies after writing the
    history but before committing leaves neither."""
    on(D(2027, 1, 10))
    contact, pm = buyer()
    s = create(api, contact, pm, line_items=[item(billing_start_date="2027-02-01")])
    real = engine._history

    def history_then_crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("killed")

    monkeypatch.setattr(engine, "_history", history_then_crash)
    on(D(2027, 2, 1))
    with pytest.raises(RuntimeError):
        engine.run()
    assert Subscription.objects.get(pk=s["id"]).status == "scheduled"
    assert status_history(s["id"]) == []
    monkeypatch.setattr(engine, "_history", real)
    engine.run()
    assert status_history(s["id"]) == [["scheduled", "active"]]
