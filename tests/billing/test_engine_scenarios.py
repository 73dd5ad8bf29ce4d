"""Scenario tests: drive the API and the billing run while moving the clock
(R-KIND-1, R-KIND-2, R-BILL-1, R-BILL-6, R-BILL-7, R-BILL-8, R-SIGN-6, R-SIGN-7, R-MAN-1..5)."""

import datetime as dt

import pytest

from recur.billing import engine
from recur.billing.models import BillingCycle, Invoice, Payment, PaymentAttempt
from recur.notifications.models import OutboxMessage
from recur.subscriptions.models import Subscription
from tests.billing.conftest import create, item

pytestmark = pytest.mark.django_db

D = dt.date


def test_fixed_term_monthly_from_31_jan(api, buyer, on):
    """31 Jan → 28/29 Feb → 31 Mar …; 6 payments → end date six periods on; then Expired."""
    on(D(2027, 1, 31))
    contact, pm = buyer()
    s = create(api, contact, pm, line_items=[item(billing_terms="fixed", number_of_payments=6,
                                                   billing_start_date="2027-01-31")])
    assert s["status"] == "active" and s["end_date"] == "2027-07-31"
    assert s["payments_made"] == 1 and s["next_payment_date"] == "2027-02-28"
    sched = api.get(f"/subscriptions/{s['id']}/schedule", count=3).json()["items"]
    assert [p["payment_date"] for p in sched] == ["2027-02-28", "2027-03-31", "2027-04-30"]
    for day in (D(2027, 2, 28), D(2027, 3, 31), D(2027, 4, 30), D(2027, 5, 31), D(2027, 6, 30)):
        on(day)
        engine.run()
    sub = Subscription.objects.get(pk=s["id"])
    assert sub.payments_made == 6 and sub.total_paid == 6 * 4900 and sub.next_payment_date is None
    assert sub.status == "active"
    on(D(2027, 7, 31))
    engine.run()
    sub.refresh_from_db()
    assert sub.status == "expired"
    pays = api.get(f"/subscriptions/{s['id']}/payments").json()["items"]
    assert [p["period_start"] for p in pays] == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30",
                                                 "2027-05-31", "2027-06-30"]
    assert all(p["status"] == "succeeded" and p["amount"] == {"amount": "49.00", "currency": "EUR"} for p in pays)
    invs = api.get(f"/subscriptions/{s['id']}/invoices").json()["items"]
    assert [i["status"] for i in invs] == ["paid"] * 6
    assert len({i["number"] for i in invs}) == 6


def test_running_twice_bills_nothing_more_and_catch_up_after_downtime(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 6, 15))  # three months without a run
    first = engine.run()
    second = engine.run()
    assert first.charged == 3 and second.charged == 0
    cycles = list(BillingCycle.objects.filter(subscription_id=s["id"]).values_list("period_index", "period_start"))
    assert cycles == [(0, D(2027, 3, 1)), (1, D(2027, 4, 1)), (2, D(2027, 5, 1)), (3, D(2027, 6, 1))]
    nums = list(Invoice.objects.order_by("pk").values_list("number", flat=True))
    assert nums == sorted(nums) and len(set(nums)) == 4


def test_scheduled_start_then_active(api, buyer, on):
    on(D(2027, 1, 10))
    contact, pm = buyer()
    s = create(api, contact, pm, line_items=[item(billing_start_date="2027-02-01")])
    assert s["status"] == "scheduled" and s["payments_made"] == 0
    assert not Payment.objects.exists()
    on(D(2027, 2, 1))
    engine.run()
    sub = Subscription.objects.get(pk=s["id"])
    assert sub.status == "active" and sub.payments_made == 1


def test_delayed_start_in_months(api, buyer, on):
    on(D(2027, 1, 31))
    contact, pm = buyer()
    s = create(api, contact, pm, line_items=[item(billing_start_delay_months=1)])
    assert s["status"] == "scheduled" and s["start_date"] == "2027-02-28"


def test_failed_payment_dunning_then_recovery(api, buyer, on, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5, 7]
    on(D(2027, 3, 1))
    contact, pm = buyer(card="insufficient")
    s = create(api, contact, pm)
    assert s["status"] == "past_due"
    cycle = BillingCycle.objects.get(subscription_id=s["id"])
    assert cycle.status == "failed" and cycle.next_retry_on == D(2027, 3, 4)
    kinds = list(OutboxMessage.objects.values_list("kind", flat=True))
    assert "payment_failed" in kinds and "admin_payment_failed" in kinds
    # the buyer reads Dutch: the processor's English refusal is told in Dutch
    from recur.notifications.services import render

    failed = OutboxMessage.objects.get(kind="payment_failed")
    assert failed.context["reason_code"] == "insufficient_funds"
    assert "Reden: Het saldo op je kaart is onvoldoende." in render(failed)[1]
    on(D(2027, 3, 4))
    engine.run()
    cycle.refresh_from_db()
    assert cycle.attempts == 2 and cycle.next_retry_on == D(2027, 3, 9)
    # the buyer saves a working card; every past-due amount is charged at once
    from recur.payments import services as payments

    good = payments.add_payment_method(None, contact, {"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 1, "exp_year": 2031, "cvc": "999"}})
    r = api.patch(f"/subscriptions/{s['id']}", {"payment_method_id": good.pk})
    assert r.status_code == 409  # past-due subscriptions are not editable...
    sub = Subscription.objects.get(pk=s["id"])
    Subscription.objects.filter(pk=sub.pk).update(payment_method=good)  # ...the update-payment-method page does this
    engine.collect_past_due(sub.pk)
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payments_made == 1
    assert PaymentAttempt.objects.filter(invoice__subscription=sub).count() == 3
    statuses = list(Payment.objects.filter(subscription=sub).order_by("pk").values_list("status", flat=True))
    assert statuses == ["failed", "failed", "succeeded"]


def test_dunning_exhausted_cancels_when_policy_says_so(api, buyer, on, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5, 7]
    settings.RECUR_DUNNING_FINAL_ACTION = "cancel"
    on(D(2027, 3, 1))
    contact, pm = buyer(card="declined")
    s = create(api, contact, pm)
    for day in (D(2027, 3, 4), D(2027, 3, 9), D(2027, 3, 16)):
        on(day)
        engine.run()
    sub = Subscription.objects.get(pk=s["id"])
    assert sub.status == "canceled"
    assert PaymentAttempt.objects.filter(invoice__subscription=sub).count() == 4
    on(D(2027, 4, 1))
    assert engine.run().charged == 0 and engine.run().failed == 0


def test_manual_invoices_net_30_overdue_then_paid(api, buyer, on):
    on(D(2027, 3, 1))
    contact, _ = buyer(card=None)
    s = create(api, contact, None, collection="manual", payment_terms="net_30")
    inv = api.get(f"/subscriptions/{s['id']}/invoices").json()["items"][0]
    assert inv["status"] == "open" and inv["due_date"] == "2027-03-31"
    assert inv["amount_due"] == {"amount": "49.00", "currency": "EUR"}
    assert OutboxMessage.objects.filter(kind="invoice_issued").count() == 1
    on(D(2027, 4, 1))
    engine.run()
    assert Subscription.objects.get(pk=s["id"]).status == "past_due"
    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "20.00", "currency": "EUR"},
                                                      "reference": "bank 123"})
    assert r.status_code == 201
    assert api.get(f"/invoices/{inv['id']}").json()["amount_due"]["amount"] == "29.00"
    r = api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "30.00", "currency": "EUR"}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "amount"
    api.post(f"/invoices/{inv['id']}/payments", {"amount": {"amount": "29.00", "currency": "EUR"}})
    inv2 = api.get(f"/invoices/{inv['id']}").json()
    assert inv2["status"] == "paid"
    # the April invoice is open but not yet overdue; the March one is paid
    assert Subscription.objects.get(pk=s["id"]).status == "active"


def test_cancel_with_refund_of_unused_days(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 3, 10))
    r = api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "refund_unused"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "confirm"
    preview = api.get(f"/subscriptions/{s['id']}/cancel-preview", mode="refund_unused").json()
    assert preview["refund"] == {"amount": "34.77", "currency": "EUR"}  # 4900 × 22 ÷ 31
    assert preview["unused_days"] == 22 and preview["period_days"] == 31
    r = api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "refund_unused", "confirm": True})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "canceled" and body["refund"]["amount"] == {"amount": "34.77", "currency": "EUR"}
    pay = api.get(f"/subscriptions/{s['id']}/payments").json()["items"][0]
    assert pay["status"] == "partially_refunded" and pay["refunded"]["amount"] == "34.77"
    assert OutboxMessage.objects.filter(kind="subscription_canceled").count() == 1
    r = api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "immediately", "confirm": True})
    assert r.status_code == 409
    on(D(2027, 5, 1))
    assert engine.run().charged == 0


def test_cancel_on_first_day_refunds_everything(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    r = api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "refund_unused", "confirm": True})
    assert r.json()["refund"]["amount"]["amount"] == "49.00"


def test_cancel_at_end_of_period(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 3, 20))
    r = api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "end_of_period", "confirm": True})
    assert r.json()["status"] == "active" and r.json()["cancel_at"] == "2027-04-01"
    assert r.json()["next_payment_date"] is None
    on(D(2027, 4, 1))
    summary = engine.run()
    assert summary.charged == 0 and summary.canceled == 1
    assert Subscription.objects.get(pk=s["id"]).status == "canceled"


def test_canceling_at_once_after_an_end_of_period_cancellation_tells_the_buyer_again(api, buyer, on):
    """The buyer was told the subscription ends on 1 April; the seller then cancels it at once with a
    refund: a second e-mail says it ended today (not on 1 April) and gives the refund."""
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 3, 10))
    api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "end_of_period", "confirm": True})
    on(D(2027, 3, 20))
    r = api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "refund_unused", "confirm": True})
    assert r.status_code == 200 and r.json()["status"] == "canceled", r.content
    mails = list(OutboxMessage.objects.filter(kind="subscription_canceled").order_by("pk"))
    assert [(m.context["mode"], m.context["ends_on"]) for m in mails] == [
        ("end_of_period", "2027-04-01"), ("refund_unused", "2027-03-20")]
    assert mails[1].context["refund"] == {"amount_minor": 1897, "currency": "EUR"}  # 4900 × 12 ÷ 31 = 1896.77
    assert Subscription.objects.get(pk=s["id"]).ends_on() == D(2027, 3, 20)


def test_pause_and_resume_skip_the_paused_periods(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 3, 15))
    assert api.post(f"/subscriptions/{s['id']}/pause").json()["status"] == "paused"
    on(D(2027, 5, 20))
    assert engine.run().charged == 0
    r = api.post(f"/subscriptions/{s['id']}/resume").json()
    assert r["status"] == "active" and r["next_payment_date"] == "2027-06-01"
    on(D(2027, 6, 1))
    assert engine.run().charged == 1
    assert api.post(f"/subscriptions/{s['id']}/resume").status_code == 409


def test_edit_rules_and_proration_preview(api, buyer, on, django_capture_on_commit_callbacks):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    on(D(2027, 3, 30))  # two days before 1 April
    r = api.patch(f"/subscriptions/{s['id']}", {"name": "Renamed"})
    assert r.status_code == 409 and r.json()["error"]["field"] == "next_payment_date"
    on(D(2027, 3, 17))
    with django_capture_on_commit_callbacks(execute=True):
        r = api.patch(f"/subscriptions/{s['id']}", {"line_items": [item(unit_price={"amount": "80.00", "currency": "EUR"})],
                                                    "prorate": True})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["amount"]["amount"] == "80.00"
    # 15 of 31 days left: credit 49×15/31 = 23.71, charge 80×15/31 = 38.71, net 15.00
    assert body["proration"]["net"] == {"amount": "15.00", "currency": "EUR"}
    prorated = Invoice.objects.filter(subscription_id=s["id"], cycle__isnull=True).get()
    assert prorated.total == 1500 and prorated.status == "paid"
    on(D(2027, 4, 1))
    engine.run()
    assert Payment.objects.filter(subscription_id=s["id"], status="succeeded").order_by("-pk")[0].amount == 8000


def test_delete_only_when_canceled_or_expired(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    r = api.delete(f"/subscriptions/{s['id']}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_deletable"
    api.post(f"/subscriptions/{s['id']}/cancel", {"mode": "immediately", "confirm": True})
    assert api.delete(f"/subscriptions/{s['id']}").status_code == 204
    assert not Subscription.objects.filter(pk=s["id"]).exists()


@pytest.mark.parametrize("patch, field", [
    ({"line_items": [{"name": "No price", "billing_frequency": "monthly"}]}, "line_items[0].unit_price"),
    ({"line_items": [item(billing_frequency="daily")]}, "line_items[0].billing_frequency"),
    ({"line_items": [item(billing_terms="fixed", number_of_payments=0)]}, "line_items[0].number_of_payments"),
    ({"line_items": [item(billing_start_date="2026-01-01")]}, "line_items[0].billing_start_date"),
    ({"line_items": [item(), item(billing_frequency="annually")]}, "line_items[1]"),
    ({"line_items": [item(), item(unit_price={"amount": "1.00", "currency": "USD"})]},
     "line_items[1].unit_price.currency"),
    ({"payment_method_id": None}, "payment_method_id"),
    ({"contact_id": 999999}, "contact_id"),
    ({"collection": "manual", "payment_terms": "net_7"}, "payment_terms"),
])
def test_bad_input_names_the_field_and_creates_nothing(api, buyer, on, patch, field):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    body = {"contact_id": contact.pk, "collection": "auto_charge", "payment_method_id": pm.pk, "line_items": [item()]}
    body.update(patch)
    r = api.post("/subscriptions", body)
    assert r.status_code == 422, r.content
    assert r.json()["error"]["field"] == field
    assert not Subscription.objects.exists() and not Invoice.objects.exists()


def test_refund_never_more_than_paid(api, buyer, on):
    on(D(2027, 3, 1))
    contact, pm = buyer()
    s = create(api, contact, pm)
    pay = api.get(f"/subscriptions/{s['id']}/payments").json()["items"][0]
    r = api.post(f"/payments/{pay['id']}/refund", {"amount": {"amount": "50.00", "currency": "EUR"}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "amount"
    assert api.post(f"/payments/{pay['id']}/refund", {"amount": {"amount": "9.00", "currency": "EUR"}}).status_code == 201
    assert api.post(f"/payments/{pay['id']}/refund", {}).json()["amount"]["amount"] == "40.00"
    r = api.post(f"/payments/{pay['id']}/refund", {"amount": {"amount": "0.01", "currency": "EUR"}})
    assert r.status_code == 422
    assert api.get(f"/payments/{pay['id']}").json()["status"] == "refunded"


def test_reminder_days_before_each_payment_once(api, buyer, on):
    """R-BILL-3: with reminders on, one e-mail N days before each payment date."""
    from recur.notifications import services as outbox

    outbox.update_account_settings(reminder_enabled=True, reminder_days=14)
    on(D(2027, 3, 1))
    contact, pm = buyer()
    create(api, contact, pm)
    for day in (D(2027, 3, 17), D(2027, 3, 18), D(2027, 3, 25)):
        on(day)
        engine.run()
    reminders = OutboxMessage.objects.filter(kind="payment_reminder")
    assert reminders.count() == 1
    assert reminders.get().context["payment_date"] == "2027-04-01"


def test_a_simulated_year_with_recur_bill_until(api, buyer, settings, capsys):
    """`recur bill --until` in test mode steps the simulated clock through a year: 12 payments,
    in order, and exactly the expected e-mails (R-BILL-1, R-BILL-2, R-BILL-4, R-SIGN-1)."""
    from recur.cli import main
    from recur.core import clock
    from recur.core.models import SimulatedClock

    settings.RECUR_TEST_MODE = True
    SimulatedClock.objects.create(pk=1, now=clock.start_of_day(D(2027, 1, 15)) + dt.timedelta(hours=9))
    assert clock.today() == D(2027, 1, 15)
    contact, pm = buyer()
    s = create(api, contact, pm)
    assert main(["bill", "--until", "2027-12-31"]) == 0
    out = capsys.readouterr().out
    assert "11 charged" in out and clock.today() == D(2027, 12, 31)
    pays = Payment.objects.filter(subscription_id=s["id"]).order_by("pk")
    assert [p.period_start for p in pays] == [D(2027, m, 15) for m in range(1, 13)]
    assert [p.paid_on for p in pays] == [D(2027, m, 15) for m in range(1, 13)]
    kinds = list(OutboxMessage.objects.order_by("pk").values_list("kind", "to_email"))
    first = [("payment_receipt", "anna@example.nl"), ("admin_payment_succeeded", "admin@example.com"),
             ("seller_receipt", "admin@example.com")]
    monthly = [("payment_receipt", "anna@example.nl"), ("admin_payment_succeeded", "admin@example.com")]
    assert kinds == first + monthly * 11
    assert OutboxMessage.objects.filter(kind="payment_receipt", language="nl").count() == 12
    # the seller's copies link to the subscription's page; the buyer's do not carry the link
    from recur.notifications.services import render

    link = f"http://127.0.0.1:8000/subscriptions/{s['id']}/"
    for kind in ("admin_payment_succeeded", "seller_receipt"):
        message = OutboxMessage.objects.filter(kind=kind).first()
        assert message.context["url"] == link and f"View subscription: {link}" in render(message)[1]
    assert "url" not in OutboxMessage.objects.filter(kind="payment_receipt").first().context


def test_invoice_email_carries_the_pdf(api, buyer, on):
    """R-KIND-2: the invoice e-mail has the invoice attached as a PDF and a pay link."""
    from recur.notifications import services as outbox

    on(D(2027, 3, 1))
    contact, _ = buyer(card=None)
    s = create(api, contact, None, collection="manual", payment_terms="net_30")
    message = OutboxMessage.objects.get(kind="invoice_issued")
    mail = outbox.build_email(message, outbox.account_settings())
    (name, content, mimetype), = mail.attachments
    number = api.get(f"/subscriptions/{s['id']}/invoices").json()["items"][0]["number"]
    assert name == f"invoice-{number}.pdf" and mimetype == "application/pdf" and content.startswith(b"%PDF")
    assert "/billing/invoice/" in mail.body
