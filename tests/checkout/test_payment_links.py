"""Payment links and the hosted checkout as services (R-NEW-1, R-NEW-2, R-SIGN-1..7, R-ALL-4)."""

from __future__ import annotations

import datetime as dt

import pytest

from recur.billing import engine
from recur.billing.models import BillingCycle, Invoice, Payment, PaymentAttempt
from recur.checkout import payment_links as pl
from recur.checkout.models import CheckoutSession
from recur.core import records
from recur.core.errors import ValidationFailed
from recur.crm import services as crm
from recur.crm.models import Contact, Deal
from recur.notifications.models import OutboxMessage
from recur.payments.models import PaymentMethod
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
    payments = Payment.objects.all()
    assert [(p.amount, p.status) for p in payments] == [(4900 + 50000 + 15000, "succeeded")]
    inv = Invoice.objects.get()
    assert inv.status == "paid" and inv.lines.count() == 3
    contact = Contact.objects.get(email="anna@example.nl")
    assert all(s.contact_id == contact.pk and s.payment_method_id for s in subs)
    # The billing run does not bill the first periods again.
    engine.run(DAY)
    assert Payment.objects.count() == 1 and Invoice.objects.count() == 1
    assert BillingCycle.objects.filter(period_index=0).count() == 2
    # A month later the monthly one renews on its own (R-KIND-1).
    engine.run(dt.date(2027, 4, 1))
    assert Payment.objects.filter(subscription__billing_frequency="monthly").count() == 2


def test_one_time_items_charged_once_and_make_no_subscription(admin):
    lk = link(admin, setup_fee(), setup_fee(name="Training", unit_price=5000))
    result = pl.checkout(lk, BUYER, card())
    assert result.status == "completed" and result.subscriptions == []
    assert Subscription.objects.count() == 0
    assert [(p.amount, p.status) for p in Payment.objects.all()] == [(20000, "succeeded")]
    engine.run(DAY)
    assert Payment.objects.count() == 1


def test_sign_up_emails_once(admin):
    crm.create_contact(admin, {"name": "Someone", "email": "x@example.nl"})
    lk = link(admin, monthly())
    result = pl.checkout(lk, BUYER, card())
    pid = result.payment.pk
    kinds = sorted(OutboxMessage.objects.filter(record_type="payment", record_id=pid).values_list("kind", "to_email"))
    assert kinds.count(("payment_receipt", "anna@example.nl")) == 1  # R-SIGN-1 buyer receipt
    assert kinds.count(("seller_receipt", "admin@example.com")) == 1  # seller receipt to every super admin
    pl.finish(result.session.pk)
    engine.run(DAY)
    assert OutboxMessage.objects.filter(kind="seller_receipt").count() == 1


def test_one_time_only_purchase_has_seller_receipt(admin):
    result = pl.checkout(link(admin, setup_fee()), BUYER, card())
    assert OutboxMessage.objects.filter(kind="seller_receipt", record_id=result.payment.pk).count() == 1


def test_declined_card_creates_nothing_and_retry_works(admin):
    lk = link(admin, monthly(), setup_fee())
    result = pl.checkout(lk, BUYER, card("4000000000000002"))
    assert result.status == "declined" and "declined" in result.reason
    assert Subscription.objects.count() == 0
    assert not Invoice.objects.exclude(status="void").exists()
    assert not PaymentMethod.objects.filter(removed_at__isnull=True).exists()
    assert not OutboxMessage.objects.filter(kind__in=("payment_failed", "admin_payment_failed")).exists()
    engine.run(DAY)
    assert Subscription.objects.count() == 0
    retry = pl.checkout(lk, BUYER, card())
    assert retry.status == "completed" and len(retry.subscriptions) == 1
    assert Contact.objects.filter(email="anna@example.nl").count() == 1
    assert Payment.objects.filter(status="succeeded").count() == 1


def test_bank_debit_creates_subscription_while_pending(admin, on):
    lk = link(admin, monthly())
    result = pl.checkout(lk, BUYER, bank())
    assert result.status == "pending"
    sub = Subscription.objects.get()  # R-SIGN-5
    assert sub.status == "active" and sub.payments_made == 0 and sub.billed_through == 0
    assert result.payment.status == "pending" and result.payment.subscription_id == sub.pk
    assert not OutboxMessage.objects.filter(kind="seller_receipt").exists()
    # Three business days later the debit settles: recorded on the subscription, seller receipt once.
    on(dt.date(2027, 3, 5))
    engine.run()
    sub.refresh_from_db()
    assert sub.payments_made == 1 and sub.total_paid == 4900 and Payment.objects.get(pk=result.payment.pk).status == "succeeded"
    assert OutboxMessage.objects.filter(kind="seller_receipt", record_id=result.payment.pk).count() == 1


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
    assert result.status == "completed" and result.payment is None
    assert Subscription.objects.get().status == "scheduled" and not Payment.objects.exists()


def test_double_submit_is_one_purchase(admin):
    lk = link(admin, monthly(), setup_fee())
    nonce = pl.new_nonce()
    first = pl.checkout(lk, BUYER, card(), nonce=nonce)
    second = pl.checkout(lk, BUYER, card(), nonce=nonce)
    assert first.session.pk == second.session.pk and second.status == "completed"
    assert Subscription.objects.count() == 1 and Payment.objects.count() == 1
    assert PaymentAttempt.objects.count() == 1 and CheckoutSession.objects.count() == 1


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
    assert Payment.objects.get().amount == 7500 + 15000
    with pytest.raises(pl.Unavailable):
        pl.checkout(q, BUYER, card())
