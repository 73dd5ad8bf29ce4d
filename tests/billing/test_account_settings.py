"""The account's settings (Settings page, recur.core.account) drive the billing run: the dunning schedule
and last step (R-BILL-6) and the time zone billing dates are computed in (R-BILL-7)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recur.billing import engine
from recur.billing.models import BillingCycle, PaymentAttempt
from recur.core import account, clock
from recur.subscriptions.models import Subscription
from tests.billing.conftest import item

pytestmark = pytest.mark.django_db
D = dt.date


def create(api, contact, pm, **kw):
    body = {"contact_id": contact.pk, "collection": "auto_charge", "payment_method_id": pm.pk, "line_items": [item()]}
    body.update(kw)
    r = api.post("/subscriptions", body)
    assert r.status_code == 201, r.content
    return Subscription.objects.get(pk=r.json()["id"])


def test_saved_retry_schedule_and_cancel_policy_drive_dunning(api, admin, buyer, on, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5, 7]  # the environment's defaults …
    settings.RECUR_DUNNING_FINAL_ACTION = "stay_past_due"
    account.update(admin, {"dunning_retry_days": "2, 4", "dunning_final_action": "cancel"})  # … the account decides
    on(D(2027, 3, 1))
    contact, pm = buyer(card="declined")
    sub = create(api, contact, pm)
    assert sub.status == "past_due"
    cycle = BillingCycle.objects.get(subscription=sub)
    assert cycle.next_retry_on == D(2027, 3, 3)  # 2 days after the failure, not 3
    on(D(2027, 3, 3))
    engine.run()
    cycle.refresh_from_db()
    assert cycle.attempts == 2 and cycle.next_retry_on == D(2027, 3, 7)  # then 4 days after that one
    sub.refresh_from_db()
    assert sub.status == "past_due"
    on(D(2027, 3, 7))
    engine.run()
    sub.refresh_from_db()
    assert sub.status == "canceled" and sub.cancel_mode == "immediately"
    assert PaymentAttempt.objects.filter(invoice__subscription=sub).count() == 3


def test_no_retries_and_stay_past_due(api, admin, buyer, on, settings):
    settings.RECUR_DUNNING_FINAL_ACTION = "cancel"
    account.update(admin, {"dunning_retry_days": "", "dunning_final_action": "stay_past_due"})
    on(D(2027, 3, 1))
    contact, pm = buyer(card="declined")
    sub = create(api, contact, pm)
    cycle = BillingCycle.objects.get(subscription=sub)
    assert sub.status == "past_due" and cycle.next_retry_on is None
    on(D(2027, 3, 20))
    engine.run()
    sub.refresh_from_db()
    assert sub.status == "past_due" and PaymentAttempt.objects.filter(invoice__subscription=sub).count() == 1


def test_the_billing_run_reads_the_settings_once(api, admin, buyer, on):
    account.update(admin, {"dunning_retry_days": "1, 2"})
    on(D(2027, 3, 1))
    subs = []
    for n in range(4):
        contact, pm = buyer(card="declined", email=f"b{n}@example.nl")
        subs.append(create(api, contact, pm, line_items=[item(billing_start_date="2027-03-05")]))
    on(D(2027, 3, 5))
    account.forget()  # a new worker round
    with CaptureQueriesContext(connection) as queries:
        summary = engine.run()
    assert summary.failed == 4
    reads = [q for q in queries if "core_accountsettings" in q["sql"]]
    assert len(reads) == 1, [q["sql"] for q in reads]
    assert set(BillingCycle.objects.filter(subscription__in=subs).values_list("next_retry_on", flat=True)) == {
        D(2027, 3, 6)}


def test_the_account_time_zone_decides_when_a_payment_date_has_come(api, admin, buyer, on):
    account.update(admin, {"time_zone": "America/New_York"})
    on(D(2027, 3, 1))
    contact, pm = buyer()
    sub = create(api, contact, pm, line_items=[item(billing_start_date="2027-03-02")])
    assert sub.status == "scheduled"
    moment = dt.datetime(2027, 3, 1, 23, 30, tzinfo=dt.timezone.utc)  # 18:30 in New York, 00:30 in Amsterdam
    with clock.freeze(moment):
        assert clock.today() == D(2027, 3, 1)
        assert engine.run().charged == 0
        account.update(admin, {"time_zone": "Europe/Amsterdam"})
        assert clock.today() == D(2027, 3, 2)
        assert clock.start_of_day(D(2027, 3, 2)) == dt.datetime(2027, 3, 1, 23, 0, tzinfo=dt.timezone.utc)
        assert engine.run().charged == 1
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payments_made == 1 and sub.next_payment_date == D(2027, 4, 2)
