"""Migration subscriptions 0006 recomputes total_paid as received minus refunded, from the payments
(earlier releases left parts booked by hand and late duplicate charges out of it)."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.db import connection

from recur.billing import services as billing
from recur.billing.models import Invoice, Payment
from recur.subscriptions.models import Subscription
from tests.billing.conftest import create

pytestmark = pytest.mark.django_db
D = dt.date
migration = importlib.import_module("recur.subscriptions.migrations.0006_total_paid_received_minus_refunded")


def test_the_backfill_counts_what_was_received_minus_what_was_refunded(api, buyer, on, admin):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    paid = create(api, contact, pm)  # charged 49.00 by card
    other, _ = buyer(card=None, email="b@example.nl")
    manual = create(api, other, None, collection="manual", payment_terms="net_30")
    inv = Invoice.objects.get(subscription_id=manual["id"])
    billing.record_manual_payment(admin, inv, 2000)
    billing.refund_payment(admin, Payment.objects.get(invoice=inv), 500)
    nothing, _ = buyer(card=None, email="c@example.nl")
    unpaid = create(api, nothing, None, collection="manual", payment_terms="net_30")
    # as an earlier release might have left them
    Subscription.objects.update(total_paid=12345)
    with connection.cursor() as cur:
        cur.execute(migration.RECOMPUTE)
    totals = dict(Subscription.objects.values_list("pk", "total_paid"))
    assert (totals[paid["id"]], totals[manual["id"]], totals[unpaid["id"]]) == (4900, 1500, 0)
