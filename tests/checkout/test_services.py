"""Paying an invoice online and updating a subscription's payment method, as services
(R-KIND-2, R-BILL-5, R-BILL-6, R-ALL-2, R-ALL-4; DESIGN money safety rules 2 and 5)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import signing
from django.db import close_old_connections, connection

from recur.billing import engine
from recur.billing import services as billing
from recur.billing.models import BillingCycle, Invoice, Payment, PaymentAttempt
from recur.checkout import links, services
from recur.core import clock
from recur.core.errors import Conflict, ValidationFailed
from recur.payments.models import BuiltinCharge, BuiltinToken, PaymentMethod
from recur.subscriptions.models import Subscription
from tests.checkout.conftest import CARDS, bank, card, first_invoice, make_contact, make_subscription

D = dt.date
pytestmark = pytest.mark.django_db


# --- links (R-BILL-5, R-ALL-2) -----------------------------------------------------------------


def test_update_link_expires_after_seven_days_and_refuses_alterations(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["ok"])
    token = links.update_payment_method_token(sub)
    assert services.subscription_for_token(token).pk == sub.pk
    on(D(2027, 3, 7))
    assert services.subscription_for_token(token).pk == sub.pk
    on(D(2027, 3, 9))
    with pytest.raises(services.LinkExpired) as exc:
        services.subscription_for_token(token)
    assert exc.value.status == 410
    on(D(2027, 3, 1))
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), token[:20], "nonsense",
                links.invoice_token(first_invoice(sub))):  # an invoice token is not an update token
        with pytest.raises(services.LinkInvalid) as exc:
            services.subscription_for_token(bad)
        assert exc.value.status == 400


def test_a_token_made_for_another_id_cannot_be_forged(admin, on):
    on(D(2027, 3, 1))
    contact = make_contact(admin)
    sub = make_subscription(admin, contact, card_number=CARDS["ok"])
    payload, _, sig = links.update_payment_method_token(sub).partition(":")
    forged = signing.dumps({"s": sub.pk + 1, "t": int(clock.now().timestamp())}, salt="another-salt")
    with pytest.raises(services.LinkInvalid):
        services.subscription_for_token(forged)
    with pytest.raises(services.LinkInvalid):
        services.invoice_for_token(links.update_payment_method_token(sub))


def test_link_for_a_deleted_record_is_gone(admin, on):
    on(D(2027, 3, 1))
    with pytest.raises(services.LinkExpired):
        services.invoice_for_token(links.invoice_token(987654))
    with pytest.raises(services.LinkExpired):
        services.subscription_for_token(links.update_payment_method_token(987654))


# --- update payment method (R-BILL-5, R-BILL-6) -----------------------------------------------------


def test_update_payment_method_charges_every_past_due_amount_at_once(admin, on, settings):
    settings.RECUR_DUNNING_RETRY_DAYS = [3, 5, 7]
    on(D(2027, 3, 1))
    contact = make_contact(admin)
    sub = make_subscription(admin, contact, card_number=CARDS["insufficient"])
    assert sub.status == "past_due"
    on(D(2027, 4, 1))
    engine.run()  # the April charge (and the March retry) fail too
    sub.refresh_from_db()
    assert sub.status == "past_due"
    assert BillingCycle.objects.filter(subscription=sub, status="failed").count() == 2
    assert services.past_due_amount(sub) == 9800

    outcome = services.update_payment_method(sub.pk, card(CARDS["ok"]))
    sub.refresh_from_db()
    assert sub.payment_method_id == outcome.payment_method.pk and outcome.payment_method.last4 == "4242"
    assert outcome.succeeded == 9800 and not outcome.failed and outcome.pending == 0
    assert sub.status == "active" and sub.payments_made == 2 and sub.total_paid == 9800
    assert not BillingCycle.objects.filter(subscription=sub).exclude(status="paid").exists()
    assert set(Invoice.objects.filter(subscription=sub).values_list("status", flat=True)) == {"paid"}
    # a second submit finds nothing more to charge
    again = services.update_payment_method(sub.pk, card(CARDS["ok"]))
    assert again.attempts == [] and Payment.objects.filter(subscription=sub, status="succeeded").count() == 2


def test_update_with_a_declined_card_keeps_it_unpaid_and_the_buyer_can_retry(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["insufficient"])
    outcome = services.update_payment_method(sub.pk, card(CARDS["declined"]))
    assert outcome.succeeded == 0 and [a.failure_code for a in outcome.failed] == ["card_declined"]
    sub.refresh_from_db()
    assert sub.status == "past_due"
    assert not Payment.objects.filter(subscription=sub, status="succeeded").exists()
    outcome = services.update_payment_method(sub.pk, card(CARDS["ok"]))
    assert outcome.succeeded == 4900
    sub.refresh_from_db()
    assert sub.status == "active"


def test_update_with_a_bank_account_leaves_the_payment_pending(admin, on):
    on(D(2027, 3, 1))  # a Monday
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["insufficient"])
    outcome = services.update_payment_method(sub.pk, bank())
    assert outcome.pending == 4900 and outcome.succeeded == 0
    assert Payment.objects.filter(subscription=sub, status="pending").count() == 1
    on(D(2027, 3, 4))  # three business days later the debit settles
    engine.run()
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payments_made == 1


def test_a_link_for_subscription_a_never_touches_b(admin, on):
    on(D(2027, 3, 1))
    anna = make_contact(admin)
    bob = make_contact(admin, name="Bob Jansen", email="bob@example.nl", language="en")
    a = make_subscription(admin, anna, card_number=CARDS["insufficient"])
    b = make_subscription(admin, bob, card_number=CARDS["insufficient"])
    b_method = b.payment_method_id
    token_a = links.update_payment_method_token(a)
    services.update_payment_method(services.subscription_id_for_token(token_a), card(CARDS["ok"]))
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == "active" and b.status == "past_due" and b.payment_method_id == b_method
    assert not PaymentMethod.objects.filter(contact=bob).exclude(pk=b_method).exists()
    assert not Payment.objects.filter(subscription=b, status="succeeded").exists()


def test_bad_details_name_the_field_and_save_nothing(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["insufficient"], accepted=["card"])
    methods, tokens = PaymentMethod.objects.count(), BuiltinToken.objects.count()
    for details, field in [
        (card("4242424242424241"), "card.number"),
        (card(exp_year=2026), "card.exp_year"),
        (card(cvc="12"), "card.cvc"),
        (bank(), "type"),  # this subscription accepts cards only
    ]:
        with pytest.raises(ValidationFailed) as exc:
            services.update_payment_method(sub.pk, details)
        assert exc.value.field == field
    assert PaymentMethod.objects.count() == methods and BuiltinToken.objects.count() == tokens
    sub.refresh_from_db()
    assert sub.status == "past_due" and PaymentAttempt.objects.filter(invoice__subscription=sub).count() == 1


def test_a_canceled_subscription_cannot_take_a_new_method(admin, on):
    from recur.subscriptions import services as subs

    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["ok"])
    subs.cancel(admin, sub, "immediately", True)
    with pytest.raises(Conflict) as exc:
        services.update_payment_method(sub.pk, card())
    assert exc.value.code == "subscription_ended"


# --- pay an invoice online (R-KIND-2) ------------------------------------------------------------


def manual(admin, on, **kw):
    on(D(2027, 3, 1))
    contact = make_contact(admin)
    sub = make_subscription(admin, contact, collection="manual", payment_terms="net_30", **kw)
    return sub, first_invoice(sub)


def test_pay_a_manual_invoice_online(admin, on):
    sub, inv = manual(admin, on)
    assert inv.status == "open" and inv.amount_due == 4900
    payment = services.pay_invoice(links.invoice_token(inv), card())
    assert payment.status == "succeeded" and payment.amount == 4900 and payment.invoice_id == inv.pk
    inv.refresh_from_db()
    sub.refresh_from_db()
    assert inv.status == "paid" and inv.amount_paid == 4900 and inv.amount_due == 0
    assert sub.status == "active" and sub.payments_made == 1 and sub.total_paid == 4900
    assert inv.cycle.status == "paid"
    attempt = payment.attempt
    assert attempt.attempt_no == 1 and attempt.idempotency_key.endswith(f"-inv-{inv.pk}-1")
    assert BuiltinCharge.objects.filter(idempotency_key=attempt.idempotency_key, status="succeeded").count() == 1
    with pytest.raises(Conflict) as exc:  # nothing is due any more
        services.pay_invoice(inv, card())
    assert exc.value.code == "paid"
    assert Payment.objects.filter(invoice=inv).count() == 1


def test_paying_an_overdue_manual_invoice_makes_the_subscription_active_again(admin, on):
    sub, inv = manual(admin, on)
    on(D(2027, 4, 2))  # past the net-30 due date, and the April invoice is issued
    engine.run()
    sub.refresh_from_db()
    assert sub.status == "past_due"
    services.pay_invoice(inv, card())
    sub.refresh_from_db()
    assert sub.status == "active"


def test_a_declined_card_pays_nothing_and_the_buyer_can_retry(admin, on):
    sub, inv = manual(admin, on)
    payment = services.pay_invoice(inv, card(CARDS["declined"]))
    assert payment.status == "failed" and payment.attempt.failure_code == "card_declined"
    inv.refresh_from_db()
    sub.refresh_from_db()
    assert inv.status == "open" and inv.amount_paid == 0 and inv.amount_due == 4900
    # the buyer's try is not a failed scheduled charge: no dunning, the subscription stays active
    assert sub.status == "active" and inv.cycle.status == "open" and inv.cycle.next_retry_on is None
    assert services.payable(inv)
    payment = services.pay_invoice(inv, card())
    assert payment.status == "succeeded" and payment.attempt.attempt_no == 2
    inv.refresh_from_db()
    assert inv.status == "paid"
    assert Payment.objects.filter(invoice=inv, status="succeeded").count() == 1


def test_bank_debit_leaves_the_payment_pending_and_blocks_a_second_payment(admin, on):
    sub, inv = manual(admin, on)
    payment = services.pay_invoice(inv, bank())
    assert payment.status == "pending" and payment.method == "bank_account"
    inv.refresh_from_db()
    assert inv.status == "open" and not services.payable(inv)
    with pytest.raises(Conflict) as exc:
        services.pay_invoice(inv, card())
    assert exc.value.code == "payment_in_progress"
    on(D(2027, 3, 4))
    engine.run()  # the debit settles
    inv.refresh_from_db()
    assert inv.status == "paid" and Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_invoice_checks_come_before_anything_is_saved(admin, on):
    sub, inv = manual(admin, on, accepted=["card"])
    methods = PaymentMethod.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        services.pay_invoice(inv, bank())
    assert exc.value.field == "type"
    with pytest.raises(ValidationFailed) as exc:
        services.pay_invoice(inv, card("1234"))
    assert exc.value.field == "card.number"
    Invoice.objects.filter(pk=inv.pk).update(accept_online_payments=False)
    with pytest.raises(Conflict) as exc:
        services.pay_invoice(inv, card())
    assert exc.value.code == "online_payments_off"
    assert PaymentMethod.objects.count() == methods and not PaymentAttempt.objects.filter(invoice=inv).exists()


def test_the_attempt_is_committed_before_the_processor_is_called(admin, on, monkeypatch):
    """Money safety rule 2: if the charge step dies, the attempt row is there for recovery."""
    sub, inv = manual(admin, on)

    def boom(ids):
        assert PaymentAttempt.objects.filter(pk__in=ids, status="started").count() == 1
        raise ConnectionError("processor unreachable")

    monkeypatch.setattr(engine, "charge_attempts", boom)
    with pytest.raises(services.PaymentProcessing):
        services.pay_invoice(inv, card())
    assert not services.payable(inv)  # in flight: a second click is refused
    monkeypatch.undo()
    summary = engine.Summary()
    engine.recover_started(summary, older_than_seconds=0)
    inv.refresh_from_db()
    assert summary.charged == 1 and inv.status == "paid"
    assert BuiltinCharge.objects.filter(status="succeeded").count() == 1


def test_a_second_click_while_the_first_is_at_the_processor_is_refused(admin, on, monkeypatch):
    """The double click, deterministically: the second submit arrives while the first one's charge runs."""
    sub, inv = manual(admin, on)
    charge = engine.charge_attempts
    second = []

    def charge_and_click_again(ids):
        with pytest.raises(Conflict) as exc:
            services.pay_invoice(links.invoice_token(inv), card())
        second.append(exc.value.code)
        return charge(ids)

    monkeypatch.setattr(engine, "charge_attempts", charge_and_click_again)
    assert services.pay_invoice(links.invoice_token(inv), card()).status == "succeeded"
    assert second == ["payment_in_progress"]
    assert Payment.objects.filter(invoice=inv).count() == 1 and BuiltinCharge.objects.count() == 1
    assert PaymentMethod.objects.filter(contact=inv.contact).count() == 1  # the refused click saved nothing


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor == 'sqlite'", reason="the in-memory SQLite test database is not shared by "
                    "threads (a file database serialises writers with BEGIN IMMEDIATE)")
def test_double_submit_pays_once(admin):
    """Two submits of the same invoice at the same moment (two threads): one payment, one charge."""
    with clock.freeze(D(2027, 3, 1)):
        sub, inv = manual(admin, lambda d: None)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def submit():
        try:
            with clock.freeze(D(2027, 3, 1)):
                barrier.wait()
                results.append(services.pay_invoice(inv.pk, card()).status)
        except Conflict as exc:
            errors.append(exc.code)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["succeeded"] and errors in (["paid"], ["payment_in_progress"]), (results, errors)
    inv.refresh_from_db()
    assert inv.status == "paid" and inv.amount_paid == 4900
    assert Payment.objects.filter(invoice=inv).count() == 1
    assert BuiltinCharge.objects.count() == 1
    assert PaymentMethod.objects.filter(contact=inv.contact).count() == 1  # the loser saved nothing


def test_a_failed_auto_charge_invoice_can_be_paid_on_its_page(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["insufficient"])
    inv = first_invoice(sub)
    assert sub.status == "past_due" and inv.cycle.status == "failed"
    services.pay_invoice(inv, card())
    sub.refresh_from_db()
    inv.refresh_from_db()
    assert inv.status == "paid" and inv.cycle.status == "paid" and sub.status == "active"
    on(D(2027, 3, 4))  # the dunning retry that was planned finds nothing to do
    summary = engine.run()
    assert summary.charged == 0 and summary.failed == 0
    assert Subscription.objects.get(pk=sub.pk).payments_made == 1


# --- a written-off invoice may still be paid online (the buyer pays after all) ---------------------


def written_off(admin, on):
    """An automatic charge that failed, then the seller wrote the invoice off as uncollectible."""
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), card_number=CARDS["insufficient"])
    inv = billing.mark_uncollectible(admin, first_invoice(sub))
    sub.refresh_from_db()
    assert inv.status == "uncollectible" and inv.cycle.status == "void" and sub.status == "active"
    return sub, inv


def test_a_written_off_invoice_can_still_be_paid_on_its_page(admin, on):
    sub, inv = written_off(admin, on)
    assert services.payable(inv)
    payment = services.pay_invoice(links.invoice_token(inv), card())
    assert payment.status == "succeeded" and payment.amount == 4900
    inv.refresh_from_db()
    sub.refresh_from_db()
    assert inv.status == "paid" and inv.amount_paid == 4900 and inv.cycle.status == "paid"
    assert sub.status == "active" and sub.payments_made == 1 and sub.total_paid == 4900
    on(D(2027, 3, 4))  # the retry planned before the write-off stays cancelled
    assert engine.run().charged == 0
    with pytest.raises(Conflict) as exc:
        services.pay_invoice(inv, card())
    assert exc.value.code == "paid"


def test_a_written_off_invoice_paid_in_part_asks_online_for_the_rest(admin, on):
    on(D(2027, 3, 1))
    sub = make_subscription(admin, make_contact(admin), collection="manual", payment_terms="net_30")
    inv = first_invoice(sub)
    billing.record_manual_payment(admin, inv, 1000, paid_on=D(2027, 3, 1))
    inv = billing.mark_uncollectible(admin, Invoice.objects.get(pk=inv.pk))
    assert inv.amount_unpaid == 3900
    payment = services.pay_invoice(inv, card())
    assert payment.status == "succeeded" and payment.amount == 3900
    inv.refresh_from_db()
    sub.refresh_from_db()
    assert inv.status == "paid" and inv.amount_paid == 4900 and sub.total_paid == 4900


def test_a_declined_try_on_a_written_off_invoice_starts_no_dunning(admin, on):
    sub, inv = written_off(admin, on)
    payment = services.pay_invoice(inv, card(CARDS["declined"]))
    assert payment.status == "failed"
    inv.refresh_from_db()
    sub.refresh_from_db()
    cycle = BillingCycle.objects.get(pk=inv.cycle_id)
    assert inv.status == "uncollectible" and inv.amount_paid == 0
    assert cycle.status == "void" and cycle.next_retry_on is None and sub.status == "active"
    assert services.payable(inv)  # the buyer may try again


def test_a_void_invoice_cannot_be_paid_online(admin, on):
    sub, inv = manual(admin, on)
    billing.void_invoice(admin, inv)
    inv.refresh_from_db()
    assert not services.payable(inv)
    with pytest.raises(Conflict) as exc:
        services.pay_invoice(inv, card())
    assert exc.value.code == "invoice_not_open" and not PaymentAttempt.objects.filter(invoice=inv).exists()
