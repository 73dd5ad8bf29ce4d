"""Payment links and the hosted checkout as services (R-NEW-1, R-NEW-2, R-SIGN-1..7, R-ALL-4)."""

from __future__ import annotations

import datetime as dt

import pytest

from recur.billing import engine
from recur.billing.models import BillingCycle, Invoice, Payment, PaymentAttempt
from recur.checkout import payment_links as pl
from recur.checkout.models import CheckoutAttempt, CheckoutSession
from recur.core import records
from recur.core.errors import ValidationFailed
from recur.crm import services as crm
from recur.crm.models import Contact, Deal
from recur.notifications.models import OutboxMessage
from recur.payments.models import BuiltinCharge, BuiltinToken, PaymentMethod, ProcessorCustomer
from recur.subscriptions.models import Subscription
from tests.checkout.conftest import bank, card

pytestmark = pytest.mark.django_db

DAY = dt.date(2027, 3, 1)
BUYER = {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"}


def monthly(**kw):
    return {"name": "Support plan", "unit_price": 4900, "currency": "EUR", "billing_frequency": "monthly", **kw}


def annual(**kw):
    return {"name": "Licence", "unit_price": 50000, "currency": "EUR", "billing_frequency": "annually", **kw}


def setup_fee(**kw):
    return {"name": "Onboarding", "unit_price": 15000, "currency": "EUR", **kw}


def link(admin, *items, **kw):
    return pl.create_payment_link(admin, {"name": "Plans", "line_items": list(items), **kw})


@pytest.fixture(autouse=True)
def _day(on):
    on(DAY)


def test_monthly_and_annual_make_two_subscriptions_and_one_charge(admin):
    lk = link(admin, monthly(), annual(), setup_fee())
    result = pl.checkout(lk, BUYER, card())
    assert result.status == "completed"
    subs = result.subscriptions
    assert sorted(s.billing_frequency for s in subs) == ["annually", "monthly"]  # R-SIGN-4
    assert all(s.status == "active" and s.payments_made == 1 and s.billed_through == 0 for s in subs)
    assert {s.next_payment_date for s in subs} == {dt.date(2027, 4, 1), dt.date(2028, 3, 1)}
    # One charge at the processor, booked as one payment per invoice adding up to it.
    charge = BuiltinCharge.objects.get()
    assert (charge.amount, charge.status) == (69900, "succeeded")
    by_sub = {p.subscription.billing_frequency if p.subscription else None: p for p in Payment.objects.all()}
    assert {k: (p.amount, p.status) for k, p in by_sub.items()} == {  # the one-time fee on the first invoice
        "monthly": (4900 + 15000, "succeeded"), "annually": (50000, "succeeded")}
    assert {p.charge_ref for p in by_sub.values()} == {charge.charge_ref}
    contact = Contact.objects.get(email="anna@example.nl")
    assert all(s.contact_id == contact.pk and s.payment_method_id for s in subs)
    engine.run(DAY)
    assert Payment.objects.count() == 2 and Invoice.objects.count() == 2
    assert BillingCycle.objects.filter(period_index=0).count() == 2
    engine.run(dt.date(2027, 4, 1))  # a month later the monthly one renews on its own (R-KIND-1)
    assert Payment.objects.filter(subscription__billing_frequency="monthly").count() == 2


def test_one_time_items_charged_once_and_make_no_subscription(admin):
    lk = link(admin, setup_fee(), setup_fee(name="Training", unit_price=5000))
    result = pl.checkout(lk, BUYER, card())
    assert result.status == "completed" and result.subscriptions == []
    assert Subscription.objects.count() == 0
    assert [(p.amount, p.status, p.subscription_id) for p in Payment.objects.all()] == [(20000, "succeeded", None)]
    assert Invoice.objects.get().status == "paid" and Invoice.objects.get().lines.count() == 2
    engine.run(DAY)
    assert Payment.objects.count() == 1


def test_sign_up_emails_once(admin):
    crm.create_contact(admin, {"name": "Someone", "email": "x@example.nl"})
    lk = link(admin, monthly())
    result = pl.checkout(lk, BUYER, card())
    pid = result.payments[0].pk
    kinds = sorted(OutboxMessage.objects.filter(record_type="payment", record_id=pid).values_list("kind", "to_email"))
    assert kinds.count(("payment_receipt", "anna@example.nl")) == 1  # R-SIGN-1 buyer receipt
    assert kinds.count(("seller_receipt", "admin@example.com")) == 1  # seller receipt to every super admin
    pl.settle_sessions(older_than_seconds=0)
    engine.run(DAY)
    assert OutboxMessage.objects.filter(kind="seller_receipt").count() == 1
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1


def test_one_receipt_for_a_charge_split_over_several_subscriptions(admin):
    result = pl.checkout(link(admin, monthly(), annual(), setup_fee()), BUYER, card())
    receipts = OutboxMessage.objects.filter(kind="payment_receipt")
    assert receipts.count() == 1
    ctx = receipts.get().context
    assert ctx["amount"] == {"amount_minor": 69900, "currency": "EUR"} and ctx["subscription_name"] == "Plans"
    assert OutboxMessage.objects.filter(kind="seller_receipt").count() == 1  # one super admin
    assert OutboxMessage.objects.filter(kind="admin_payment_succeeded").count() == 1
    assert receipts.get().record_id == result.payments[0].pk
    sub = result.payments[0].subscription_id  # the seller's copies link to a subscription bought
    assert OutboxMessage.objects.get(kind="seller_receipt").context["url"].endswith(f"/subscriptions/{sub}/")


def test_one_time_only_purchase_has_seller_receipt(admin):
    result = pl.checkout(link(admin, setup_fee()), BUYER, card())
    assert OutboxMessage.objects.filter(kind="seller_receipt", record_id=result.payments[0].pk).count() == 1


NOTHING = (Contact, PaymentMethod, Subscription, Invoice, Payment, PaymentAttempt, ProcessorCustomer, Deal)


def counts():
    return {m.__name__: m.objects.count() for m in NOTHING}


@pytest.mark.parametrize("number,code,reason", [
    ("4000000000000002", "card_declined", "Your card was declined."),
    ("4000000000009995", "insufficient_funds", "Your card has insufficient funds."),
])
def test_declined_card_creates_nothing_and_retry_on_the_same_form_works(admin, number, code, reason):
    lk = link(admin, monthly(), annual(), setup_fee())
    before = counts()
    nonce = pl.new_nonce()
    result = pl.checkout(lk, BUYER, card(number), nonce=nonce)
    assert (result.status, result.failure_code, result.reason) == ("declined", code, reason)
    assert counts() == before  # no contact, method, subscription, invoice, payment, customer
    assert not BuiltinToken.objects.exists()  # the saved card was detached at the processor
    assert not OutboxMessage.objects.exists()
    session = CheckoutSession.objects.get()
    assert session.status == "declined"
    assert [(a.attempt_no, a.status, a.failure_code, a.amount) for a in session.attempts.all()] == [
        (1, "failed", code, 69900)]
    engine.run(DAY)
    assert counts() == before
    retry = pl.checkout(lk, BUYER, card(), nonce=nonce)  # the same page, a good card
    assert retry.status == "completed" and len(retry.subscriptions) == 2
    assert retry.session.pk == session.pk
    assert [(a.attempt_no, a.status) for a in session.attempts.order_by("attempt_no")] == [
        (1, "failed"), (2, "succeeded")]
    assert Contact.objects.filter(email="anna@example.nl").count() == 1
    assert sum(p.amount for p in Payment.objects.filter(status="succeeded")) == 69900
    assert list(BuiltinCharge.objects.order_by("pk").values_list("status", "amount")) == [
        ("failed", 69900), ("succeeded", 69900)]
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1
    # Paying the completed session again changes nothing.
    again = pl.checkout(lk, BUYER, card(), nonce=nonce)
    assert again.status == "completed" and Payment.objects.count() == 2 and BuiltinCharge.objects.count() == 2


def test_declined_card_of_a_known_contact_adds_nothing_to_it(admin):
    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl"})
    result = pl.checkout(link(admin, monthly()), BUYER, card("4000000000000002"))
    assert result.status == "declined"
    assert not PaymentMethod.objects.filter(contact=contact).exists()
    assert not Subscription.objects.exists() and not Invoice.objects.exists() and not Payment.objects.exists()
    assert records.history("contact", contact.pk).count() == 1  # created, nothing since


def test_bank_debit_creates_subscription_while_pending(admin, on):
    lk = link(admin, monthly())
    result = pl.checkout(lk, BUYER, bank())
    assert result.status == "pending"
    sub = Subscription.objects.get()  # R-SIGN-5
    assert sub.status == "active" and sub.payments_made == 0 and sub.billed_through == 0
    payment = result.payments[0]
    assert payment.status == "pending" and payment.subscription_id == sub.pk and payment.amount == 4900
    assert not OutboxMessage.objects.filter(kind="seller_receipt").exists()
    # Three business days later the debit settles: recorded on the subscription, seller receipt once.
    on(dt.date(2027, 3, 5))
    engine.run()
    sub.refresh_from_db()
    assert sub.payments_made == 1 and sub.total_paid == 4900 and Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert OutboxMessage.objects.filter(kind="seller_receipt", record_id=payment.pk).count() == 1
    assert OutboxMessage.objects.filter(kind="payment_receipt").count() == 1


def test_delayed_start_is_scheduled_and_only_one_time_items_are_charged(admin):
    lk = link(admin, monthly(billing_start_delay_days=14), setup_fee())
    result = pl.checkout(lk, BUYER, card())
    sub = Subscription.objects.get()
    assert sub.status == "scheduled" and sub.start_date == DAY + dt.timedelta(days=14)  # R-SIGN-7
    assert [p.amount for p in Payment.objects.all()] == [15000]
    engine.run(DAY + dt.timedelta(days=14))
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payments_made == 1
    assert result.status == "completed"


def test_future_start_without_one_time_items_charges_nothing(admin):
    lk = link(admin, monthly(billing_start_date=dt.date(2027, 5, 1)))
    result = pl.checkout(lk, BUYER, card())
    assert result.status == "completed" and result.payments == [] and result.charge.status == "saved"
    sub = Subscription.objects.get()
    assert sub.status == "scheduled" and not Payment.objects.exists() and not BuiltinCharge.objects.exists()
    assert sub.payment_method.last4 == "4242"  # saved for the first charge on 1 May
    engine.run(dt.date(2027, 5, 1))
    sub.refresh_from_db()
    assert sub.status == "active" and sub.payments_made == 1


def test_double_submit_is_one_purchase(admin):
    lk = link(admin, monthly(), setup_fee())
    nonce = pl.new_nonce()
    first = pl.checkout(lk, BUYER, card(), nonce=nonce)
    second = pl.checkout(lk, BUYER, card(), nonce=nonce)
    assert first.session.pk == second.session.pk and second.status == "completed"
    assert Subscription.objects.count() == 1 and Payment.objects.count() == 1
    assert BuiltinCharge.objects.count() == 1 and CheckoutSession.objects.count() == 1
    assert CheckoutAttempt.objects.count() == 1


def test_archived_product_refused(admin):
    product = crm.create_product(admin, {"name": "Old plan", "unit_price": 1000, "currency": "EUR",
                                         "billing_frequency": "monthly"})
    crm.update_product(admin, product, {"archived": True})
    with pytest.raises(ValidationFailed) as exc:
        link(admin, {"product_id": product.pk})
    assert exc.value.field == "line_items[0].product_id"


def test_archived_after_link_made_refused_at_checkout(admin):
    product = crm.create_product(admin, {"name": "Plan", "unit_price": 1000, "currency": "EUR",
                                         "billing_frequency": "monthly"})
    lk = link(admin, {"product_id": product.pk})
    crm.update_product(admin, product, {"archived": True})
    with pytest.raises(pl.Unavailable):
        pl.checkout(lk, BUYER, card())
    assert not Contact.objects.exists() and not PaymentMethod.objects.exists()


def test_mismatched_currency_names_the_field(admin):
    with pytest.raises(ValidationFailed) as exc:
        link(admin, monthly(), setup_fee(currency="USD"))
    assert exc.value.field == "line_items[1].unit_price.currency"


def test_no_deal_for_recurring_even_when_allowed(admin):
    deal = crm.create_deal(admin, {"name": "Big deal"})
    lk = link(admin, monthly(), allow_create_deals=True, deal_ids=[deal.pk])
    result = pl.checkout(lk, BUYER, card())
    assert list(Deal.objects.values_list("pk", flat=True)) == [deal.pk]  # R-SIGN-3
    sub = result.subscriptions[0]
    assert [d.pk for d in records.associated(sub, "deal")] == [deal.pk]  # R-SIGN-2
    assert records.associated(sub, "contact").get().email == "anna@example.nl"


def test_one_time_purchase_may_create_a_deal_when_allowed(admin):
    pl.checkout(link(admin, setup_fee(), allow_create_deals=True), BUYER, card())
    assert Deal.objects.get().stage == "closed_won"


def test_bad_buyer_details_save_nothing(admin):
    lk = link(admin, monthly(), collect_billing_address=True)
    with pytest.raises(ValidationFailed) as exc:
        pl.checkout(lk, {**BUYER, "email": "nope"}, card())
    assert exc.value.field == "email"
    with pytest.raises(ValidationFailed) as exc:
        pl.checkout(lk, BUYER, card())
    assert exc.value.field == "billing_address.address_line1"
    with pytest.raises(ValidationFailed) as exc:
        pl.checkout(lk, BUYER, card(number="4242424242424241"))
    assert not Contact.objects.exists() and not CheckoutSession.objects.exists()


def test_bank_not_accepted_when_link_takes_cards_only(admin):
    lk = link(admin, monthly(), accepted_payment_methods=["card"])
    with pytest.raises(ValidationFailed) as exc:
        pl.checkout(lk, BUYER, bank())
    assert exc.value.field == "type"


def test_archived_link_takes_no_payment(admin):
    lk = link(admin, monthly())
    pl.archive_payment_link(admin, lk)
    with pytest.raises(pl.Unavailable):
        pl.checkout(lk, BUYER, card())


def test_quote_checkout_associates_quote_and_deal_and_marks_paid(admin):
    from recur.crm import quotes

    contact = crm.create_contact(admin, {"name": "Anna de Vries", "email": "anna@example.nl", "language": "nl"})
    deal = crm.create_deal(admin, {"name": "Deal"})
    q = quotes.create_quote(admin, {"contact_id": contact.pk, "deal_id": deal.pk, "line_items": [
        {"name": "Seat", "unit_price": 2500, "currency": "EUR", "quantity": 3, "billing_frequency": "monthly"},
        {"name": "Onboarding", "unit_price": 15000, "currency": "EUR"}]})
    with pytest.raises(pl.Unavailable):
        pl.checkout(q, BUYER, card())
    q = quotes.publish_quote(admin, q)
    result = pl.checkout(q, BUYER, card())
    assert result.status == "completed"
    sub = result.subscriptions[0]
    assert sub.quote_id == q.pk and sub.contact_id == contact.pk
    assert [d.pk for d in records.associated(sub, "deal")] == [deal.pk]
    q.refresh_from_db()
    assert q.status == "paid"
    assert list(Payment.objects.values_list("amount", flat=True)) == [7500 + 15000]
    with pytest.raises(pl.Unavailable):
        pl.checkout(q, BUYER, card())
