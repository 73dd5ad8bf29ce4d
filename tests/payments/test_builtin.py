"""The built-in processor behaves like a gateway in test mode (R-PAY-1, R-PAY-3)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from recur.core import clock
from recur.core.errors import ValidationFailed
from recur.payments.builtin import add_business_days, card_brand, luhn_ok
from recur.payments.models import BuiltinCharge, BuiltinEvent, BuiltinRefund, BuiltinToken, ProcessorCustomer
from recur.payments.processor import Processor
from tests.payments.conftest import MONDAY, bank, card, request

pytestmark = pytest.mark.django_db


def test_implements_the_processor_interface(processor):
    for name in ("ensure_customer", "save_payment_method", "charge_many", "lookup", "refund", "poll_events"):
        assert callable(getattr(processor, name))
    assert isinstance(processor.name, str) and processor.name == "builtin"
    _: Processor = processor


def test_ensure_customer_is_stable(processor, contact):
    ref = processor.ensure_customer(contact)
    assert ref.startswith("cus_") and processor.ensure_customer(contact) == ref
    assert ProcessorCustomer.objects.filter(contact=contact, processor="builtin").count() == 1


@pytest.mark.parametrize("number, brand", [
    ("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"), ("6011111111111117", "discover"), ("3566002020360505", "jcb"),
    ("36227206271667", "diners"), ("6200000000000005", "unionpay"),
])
def test_brand_detection(save, number, brand):
    assert luhn_ok(number) and card_brand(number) == brand
    cvc = "1234" if brand == "amex" else "123"
    saved = save(card(number, cvc=cvc))
    assert (saved.brand, saved.last4, saved.type) == (brand, number[-4:], "card")


def test_saved_card_keeps_only_safe_fields(save):
    saved = save(card("4242 4242 4242 4242", exp_month="7", exp_year=31))
    assert saved.processor_ref.startswith("pm_") and (saved.exp_month, saved.exp_year) == (7, 2031)
    assert len(saved.fingerprint) == 64 and "4242424242424242" not in saved.fingerprint
    assert save(card()).fingerprint == saved.fingerprint  # same card, same fingerprint
    assert save(card("5555555555554444")).fingerprint != saved.fingerprint
    token = BuiltinToken.objects.get(token=saved.processor_ref)
    assert token.behaviour == "succeed" and token.last4 == "4242"


@pytest.mark.parametrize("details, field", [
    (card("4242424242424241"), "card.number"),  # Luhn
    (card("4242"), "card.number"),
    (card("4242abcd42424242"), "card.number"),
    (card(""), "card.number"),
    (card(exp_month=13), "card.exp_month"),
    (card(exp_month="soon"), "card.exp_month"),
    (card(exp_month=2, exp_year=2027), "card.exp_month"),  # expired last month (today is 2027-03-01)
    (card(exp_month=12, exp_year=2026), "card.exp_year"),
    (card(cvc="12"), "card.cvc"),
    (card(cvc="12345"), "card.cvc"),
    (card(cvc="abc"), "card.cvc"),
    ({"type": "card"}, "card"),
    ({"type": "paypal"}, "type"),
    (bank(routing="021000021"), "bank_account.routing_number"),
    (bank(account="12ab"), "bank_account.account_number"),
    (bank(holder=" "), "bank_account.holder_name"),
])
def test_bad_details_name_the_field_and_save_nothing(save, details, field):
    with pytest.raises(ValidationFailed) as exc:
        save(details)
    assert exc.value.field == field and exc.value.message.startswith(field)
    assert "4242" not in exc.value.message  # never echoes the number
    assert not BuiltinToken.objects.exists()


def test_card_expiring_this_month_is_accepted(save):
    assert save(card(exp_month=3, exp_year=2027)).exp_month == 3


@pytest.mark.parametrize("number, status, code", [
    ("4242424242424242", "succeeded", ""),
    ("5555555555554444", "succeeded", ""),  # any other valid number behaves like 4242
    ("4000000000000002", "failed", "card_declined"),
    ("4000000000009995", "failed", "insufficient_funds"),
    ("4000000000000341", "failed", "card_declined"),  # saved fine, every charge fails
])
def test_test_cards(processor, save, number, status, code):
    method = save(card(number))
    with clock.freeze(MONDAY):
        [result] = processor.charge_many([request("k1", method)])
    assert (result.status, result.failure_code) == (status, code)
    assert result.charge_ref.startswith("ch_") and result.idempotency_key == "k1"
    assert bool(result.failure_message) == (status == "failed")
    assert processor.lookup("k1") == result
    charge = BuiltinCharge.objects.get()
    assert (charge.amount, charge.currency, charge.status) == (1250, "EUR", status)


def test_same_key_never_charges_twice(processor, save):
    method = save(card())
    first = processor.charge_many([request("sub-1-p0-a0", method)])
    again = processor.charge_many([request("sub-1-p0-a0", method, amount=99999), request("sub-1-p0-a0", method)])
    assert again == first * 2
    assert BuiltinCharge.objects.count() == 1 and BuiltinCharge.objects.get().amount == 1250
    assert processor.lookup("never-used") is None


def test_charge_many_batch_keeps_order_and_uses_few_queries(processor, save):
    ok, declined = save(card()), save(card("4000000000000002"))
    requests = [request(f"k{i}", ok if i % 3 else declined, amount=100 + i) for i in range(1000)]
    with CaptureQueriesContext(connection) as queries:
        results = processor.charge_many(requests)
    assert [r.idempotency_key for r in results] == [f"k{i}" for i in range(1000)]
    assert [r.status for r in results[:4]] == ["failed", "succeeded", "succeeded", "failed"]
    selects = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 4  # tokens, and nothing to read back
    assert len(queries.captured_queries) <= 8  # and one insert
    assert BuiltinCharge.objects.count() == 1000
    with CaptureQueriesContext(connection) as queries:
        assert processor.charge_many(requests) == results  # a replayed batch: every charge read back
    assert len(queries.captured_queries) <= 8  # tokens, an insert that inserts nothing, the read-back
    assert BuiltinCharge.objects.count() == 1000


def test_refused_requests_fail_without_moving_money(processor, save):
    method = save(card(exp_month=3, exp_year=2027))
    results = processor.charge_many([
        request("bad-amount", method, amount=0),
        request("bad-currency", method, currency="XYZ"),
        request("unknown", method.__class__(type="card", processor_ref="pm_nope")),
    ])
    assert [(r.status, r.failure_code) for r in results] == [
        ("failed", "invalid_request"), ("failed", "invalid_request"), ("failed", "resource_missing")]
    with clock.freeze(dt.date(2027, 4, 1)):  # the card has expired since it was saved
        [late] = processor.charge_many([request("late", method)])
    assert (late.status, late.failure_code) == ("failed", "expired_card")


# --- bank debits -------------------------------------------------------------------------


def test_add_business_days_skips_weekends():
    friday = clock.start_of_day(dt.date(2027, 3, 5)) + dt.timedelta(hours=9)
    assert add_business_days(friday, 3) == clock.start_of_day(dt.date(2027, 3, 10)) + dt.timedelta(hours=9)
    saturday = friday + dt.timedelta(days=1)
    assert add_business_days(saturday, 3).date() == dt.date(2027, 3, 10)


def test_bank_debit_stays_pending_then_settles_after_three_business_days(processor, save):
    method = save(bank())
    assert (method.type, method.last4, method.exp_year) == ("bank_account", "6789", None)
    friday = dt.date(2027, 3, 5)
    with clock.freeze(friday):
        [result] = processor.charge_many([request("ach-1", method)])
    assert result.status == "pending" and result.charge_ref
    for day in (friday, dt.date(2027, 3, 8), dt.date(2027, 3, 9)):  # Fri, Mon, Tue
        with clock.freeze(day):
            assert processor.poll_events() == []
    assert processor.lookup("ach-1").status == "pending"
    with clock.freeze(dt.date(2027, 3, 10)):  # Wednesday: three business days later
        [event] = processor.poll_events()
        assert processor.poll_events() == []
    assert (event.idempotency_key, event.status, event.charge_ref) == ("ach-1", "succeeded", result.charge_ref)
    assert event.event_id.startswith("evt_")
    assert processor.lookup("ach-1").status == "succeeded"
    assert BuiltinEvent.objects.get().event_id == event.event_id
    with clock.freeze(dt.date(2027, 3, 20)):
        assert processor.poll_events() == []  # reported once only


def test_failing_bank_account_reports_a_failed_event(processor, save):
    bad, good = save(bank("000111111116")), save(bank("000222222227"))
    with clock.freeze(MONDAY):
        results = processor.charge_many([request("ach-bad", bad), request("ach-good", good)])
    assert [r.status for r in results] == ["pending", "pending"]
    with clock.freeze(dt.date(2027, 3, 4)):
        events = {e.idempotency_key: e for e in processor.poll_events()}
    assert (events["ach-bad"].status, events["ach-bad"].failure_code) == ("failed", "debit_failed")
    assert events["ach-good"].status == "succeeded"
    assert processor.lookup("ach-bad").failure_code == "debit_failed"


def test_poll_events_handles_more_than_one_batch(processor, save):
    method = save(bank())
    with clock.freeze(MONDAY):
        processor.charge_many([request(f"ach-{i}", method) for i in range(1203)])
    with clock.freeze(dt.date(2027, 3, 4)):
        events = processor.poll_events()
    assert sorted(e.idempotency_key for e in events) == sorted(f"ach-{i}" for i in range(1203))
    assert not BuiltinCharge.objects.filter(status="pending").exists()


# --- refunds -----------------------------------------------------------------------------


def test_refunds_never_exceed_the_charge_and_keys_replay(processor, save):
    [charge] = processor.charge_many([request("c1", save(card()), amount=1000)])
    first = processor.refund(charge.charge_ref, 600, "EUR", "r1")
    assert first.status == "succeeded" and first.refund_ref.startswith("re_")
    assert processor.refund(charge.charge_ref, 600, "EUR", "r1") == first  # replay, no second refund
    too_much = processor.refund(charge.charge_ref, 401, "EUR", "r2")
    assert too_much.status == "failed" and "4.00" in too_much.failure_message
    assert processor.refund(charge.charge_ref, 400, "EUR", "r2").status == "succeeded"  # failure was not kept
    assert processor.refund(charge.charge_ref, 1, "EUR", "r3").status == "failed"
    assert BuiltinCharge.objects.get().refunded == 1000
    assert list(BuiltinRefund.objects.order_by("pk").values_list("amount", flat=True)) == [600, 400]


@pytest.mark.parametrize("key, amount, currency", [("d", 100, "EUR"), ("c", 100, "USD"), ("c", 0, "EUR"),
                                                    ("c", -5, "EUR"), ("p", 100, "EUR"), ("x", 100, "EUR")])
def test_refunds_of_what_cannot_be_refunded_fail(processor, save, key, amount, currency):
    charges = {
        "d": processor.charge_many([request("d", save(card("4000000000000002")))])[0],
        "c": processor.charge_many([request("c", save(card()))])[0],
        "p": processor.charge_many([request("p", save(bank()))])[0],
    }
    ref = charges[key].charge_ref if key in charges else "ch_missing"
    result = processor.refund(ref, amount, currency, "refund-1")
    assert result.status == "failed" and result.failure_message and not result.refund_ref
    assert not BuiltinRefund.objects.exists()
