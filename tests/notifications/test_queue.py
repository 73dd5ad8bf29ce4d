"""Queueing e-mails in the caller's transaction (DESIGN rule 4; R-SIGN-1, R-BILL-2, R-BILL-4)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from recur.core import clock
from recur.core.auth import create_user
from recur.notifications import services
from recur.notifications.models import OutboxMessage
from tests.notifications.conftest import T0, receipt

pytestmark = pytest.mark.django_db


def test_queue_email_writes_one_queued_row_and_sends_nothing():
    services.update_account_settings(sender_name="Acme BV", sender_email="billing@acme.test")
    with clock.freeze(T0):
        m = receipt(dedupe_key="receipt:payment:1")
    m.refresh_from_db()
    assert (m.kind, m.to_email, m.to_name, m.language, m.status) == (
        "payment_receipt", "anna@example.nl", "Anna de Vries", "en", "queued")
    assert m.created_at == m.next_attempt_at == T0 and m.attempts == 0 and m.sent_at is None
    assert (m.record_type, m.record_id) == ("payment", 1)
    assert m.context["amount"] == {"amount_minor": 4900, "currency": "EUR"}
    assert m.message_id.startswith("<") and m.message_id.endswith("@acme.test>")


def test_dedupe_key_keeps_one_row_and_the_callers_transaction_usable():
    with transaction.atomic():
        assert receipt(dedupe_key="receipt:payment:1") is not None
        assert receipt(dedupe_key="receipt:payment:1") is None
        assert receipt(dedupe_key="receipt:payment:2") is not None  # the transaction still works
        assert receipt() is not None and receipt() is not None  # no key: no dedupe
    assert OutboxMessage.objects.count() == 4
    assert services.queue_many([dict(kind="payment_receipt", to_email="x@example.com", dedupe_key="receipt:payment:1",
                                     context=OutboxMessage.objects.first().context)]) == 0
    assert OutboxMessage.objects.count() == 4


def test_queueing_is_rolled_back_with_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        receipt()
        raise RuntimeError("the payment was not recorded")
    assert not OutboxMessage.objects.exists()


def test_context_is_checked_and_made_plain():
    with pytest.raises(ValueError, match="kind"):
        services.queue_email("no_such_kind", "a@example.com", context={})
    with pytest.raises(ValueError, match="amount, paid_on"):
        services.queue_email("payment_receipt", "a@example.com", context={"subscription_name": "S"})
    with pytest.raises(ValueError, match="to_email"):
        services.queue_email("export_ready", "", context={"download_url": "u", "expires_on": "2027-03-31"})
    with pytest.raises(TypeError):
        services.queue_email("export_ready", "a@example.com", context={"download_url": object(), "expires_on": "x"})
    m = services.queue_email("export_ready", "a@example.com", language="de", context={
        "download_url": "https://x/e/1", "expires_on": dt.date(2027, 3, 31), "row_count": Decimal("3")})
    assert m.context == {"download_url": "https://x/e/1", "expires_on": "2027-03-31", "row_count": "3"}
    assert m.language == "en"  # e-mails exist in English and Dutch only


def test_queue_many_is_one_bulk_insert_skipping_known_and_repeated_keys():
    receipt(dedupe_key="k:0")
    batch = [dict(kind="payment_reminder", to_email=f"c{i}@example.com", language="nl", record=("subscription", i),
                  dedupe_key=f"k:{i % 1000}", context={"subscription_name": "S", "amount": services.money(100, "EUR"),
                                                       "payment_date": "2027-03-15"})
             for i in range(1001)]  # k:0 exists already, k:0 repeats at i=1000
    with CaptureQueriesContext(connection) as queries:
        assert services.queue_many(batch) == 999
    inserts = [q for q in queries if re.match(r"(\d+ times: )?INSERT", q["sql"])]
    selects = [q for q in queries if q["sql"].startswith("SELECT")]
    assert not selects  # account settings cached since receipt() above; known keys skipped by the INSERT itself
    # PostgreSQL: one pipelined executemany; SQLite: multi-row INSERTs of at most 30,000 parameters
    assert 1 <= len(inserts) <= 20
    assert OutboxMessage.objects.filter(kind="payment_reminder").count() == 999
    assert services.queue_many([]) == 0


def test_buyer_kinds_switched_off_by_the_account_are_not_queued():
    services.update_account_settings(buyer_emails_enabled=["invoice_issued"])
    assert receipt() is None
    assert not OutboxMessage.objects.exists()


def test_notify_admins_queues_one_per_active_super_admin_who_wants_it(admin):
    nl_admin = create_user("bea@example.com", "correct-horse-9", super_admin=True, name="Bea", language="nl")
    quiet = create_user("quiet@example.com", "correct-horse-9", super_admin=True)
    gone = create_user("gone@example.com", "correct-horse-9", super_admin=True)
    gone.is_active = False
    gone.save()
    create_user("user@example.com", "correct-horse-9")  # not a super admin
    services.set_user_kind(quiet, "admin_payment_succeeded", False)
    services.set_user_kind(nl_admin, "admin_payment_failed", False)  # another kind: does not matter here
    context = {"subscription_name": "S", "customer_name": "Anna", "amount": services.money(4900, "EUR"),
               "paid_on": "2027-03-01"}

    assert services.notify_admins("admin_payment_succeeded", context=context, record=("payment", 7),
                                  dedupe_key="paid:payment:7") == 2
    rows = OutboxMessage.objects.order_by("to_email")
    assert [(m.to_email, m.language, m.dedupe_key) for m in rows] == [
        ("admin@example.com", "en", f"paid:payment:7:user:{admin.pk}"),
        ("bea@example.com", "nl", f"paid:payment:7:user:{nl_admin.pk}"),
    ]
    assert services.notify_admins("admin_payment_succeeded", context=context, dedupe_key="paid:payment:7") == 0
    assert services.admin_recipients("admin_payment_succeeded") == [admin, nl_admin]
    assert services.user_kinds(quiet) == {
        "seller_receipt": True, "admin_payment_succeeded": False, "admin_payment_failed": True,
        "admin_payment_to_refund": True}
    services.set_user_kind(quiet, "admin_payment_succeeded", True)
    assert services.notify_admins("admin_payment_succeeded", context=context) == 3


def test_account_settings_are_validated():
    from recur.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as err:
        services.update_account_settings(reminder_days=0)
    assert err.value.field == "reminder_days"
    with pytest.raises(ValidationFailed) as err:
        services.update_account_settings(sender_email="not an address")
    assert err.value.field == "sender_email"
    with pytest.raises(ValidationFailed):
        services.update_account_settings(buyer_emails_enabled=["admin_payment_failed"])
    account = services.update_account_settings(reminder_enabled=True, reminder_days=7)
    assert (account.reminder_enabled, account.reminder_days) == (True, 7)
    assert services.account_settings().reminder_days == 7
