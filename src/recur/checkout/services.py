"""The buyer's hosted pages as services: pay an invoice online, update the
payment method of a subscription (R-KIND-2, R-BILL-5, R-BILL-6, R-ALL-2).

Money safety (DESIGN rules 1, 2, 5):

- A payment attempt is committed, under a lock of the invoice (and of its
  billing cycle), BEFORE the processor is called; the billing engine's
  ``charge_attempts`` then charges it with its idempotency key and records the
  outcome in a second transaction. A crash in between leaves the attempt
  ``started``, and the billing run's recovery settles it with the same key.
- The invoice lock makes a double click harmless: the second request finds an
  attempt in flight (or nothing left to pay) and is refused.
- The card number and CVC go straight to the processor's tokenizer through
  ``payments.services.add_payment_method``; they are never logged or kept.

The signed links themselves are in ``links.py``; only the record a link names
can be read or changed through it.
"""

from __future__ import annotations

import dataclasses
import logging

from django.core import signing
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from recur.billing import services as billing
from recur.billing.engine import install_id
from recur.billing.models import TAKES_PAYMENTS, BillingCycle, Invoice, Payment, PaymentAttempt
from recur.checkout import links
from recur.core import clock, records
from recur.core.errors import Conflict, NotFound, ServiceError, ValidationFailed
from recur.payments import services as payments
from recur.payments.models import PaymentMethod
from recur.subscriptions import status as rules
from recur.subscriptions.models import Subscription

log = logging.getLogger("recur.checkout")

METHODS = ("card", "bank_account")


class LinkInvalid(ServiceError):
    """The link was altered, cut short or made for another page."""

    status = 400
    code = "link_invalid"


class LinkExpired(ServiceError):
    """The link was genuine but is too old, or its record is gone."""

    status = 410
    code = "link_expired"


class PaymentProcessing(Conflict):
    """The attempt is committed but its outcome is not known yet; the billing run settles it."""

    code = "payment_processing"


# --- links -----------------------------------------------------------------------------------


def invoice_for_token(token: str) -> Invoice:
    """The invoice a hosted-invoice link names; ``LinkInvalid`` / ``LinkExpired`` otherwise."""
    try:
        invoice_id = links.read_invoice_token(token)
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkInvalid(_("This invoice link is not valid.")) from None
    invoice = Invoice.objects.select_related("contact", "subscription").filter(pk=invoice_id).first()
    if invoice is None:
        raise LinkExpired(_("This invoice no longer exists."))
    return invoice


def subscription_id_for_token(token: str) -> int:
    """The subscription an update-payment-method link names (signed, expiring: R-BILL-5)."""
    try:
        return links.read_update_payment_method_token(token)
    except signing.SignatureExpired:
        raise LinkExpired(_("This link has expired.")) from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkInvalid(_("This link is not valid.")) from None


def subscription_for_token(token: str) -> Subscription:
    sub = (Subscription.objects.select_related("contact", "payment_method")
           .filter(pk=subscription_id_for_token(token)).first())
    if sub is None:
        raise LinkExpired(_("This subscription no longer exists."))
    return sub


# --- what may be paid, and how ----------------------------------------------------------------


def accepted_methods(record) -> list[str]:
    """Payment method types the buyer may use for a subscription or an invoice (R-NEW-3)."""
    sub = record if isinstance(record, Subscription) else getattr(record, "subscription", None)
    chosen = list(getattr(sub, "accepted_payment_methods", None) or [])
    return [m for m in METHODS if m in chosen] or list(METHODS)


def payable(invoice: Invoice) -> bool:
    """Whether the buyer can pay the invoice on its page now: an open invoice, or one written off as
    uncollectible (the buyer pays after all), with something unpaid and no payment under way."""
    return invoice.accept_online_payments and billing.invoice_actions(invoice).take_payment


def _check_method(details: dict, allowed: list[str]) -> None:
    kind = details.get("type") if isinstance(details, dict) else None
    if kind not in allowed:
        raise ValidationFailed(_("type: must be one of %(choices)s") % {"choices": ", ".join(allowed)}, field="type")



# --- pay an invoice online (R-KIND-2) ---------------------------------------------------------


@sensitive_variables("details")
@transaction.atomic
def _start_invoice_attempt(invoice_id: int, details: dict, addresses: dict | None = None) -> PaymentAttempt:
    """Lock the invoice, check there is something to pay, save the method, commit the attempt."""
    cycle_id = Invoice.objects.filter(pk=invoice_id).values_list("cycle_id", flat=True).first()
    if cycle_id:
        # The billing run locks cycles before it touches their invoices: the same order here.
        list(BillingCycle.objects.select_for_update().filter(pk=cycle_id))
    invoice = Invoice.objects.select_for_update().filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(_("No invoice with id %(id)s") % {"id": invoice_id})
    if invoice.status not in TAKES_PAYMENTS:
        raise Conflict(_("status: invoice %(number)s is %(status)s")
                       % {"number": invoice.number, "status": str(invoice.get_status_display()).lower()},
                       field="status", code="paid" if invoice.status == "paid" else "invoice_not_open")
    if not invoice.accept_online_payments:
        raise Conflict(_("This invoice cannot be paid online"), code="online_payments_off")
    if invoice.amount_unpaid <= 0:  # an invoice written off may still be paid: what is left of it
        raise Conflict(_("Nothing is due on invoice %(number)s") % {"number": invoice.number}, code="paid")
    if invoice.attempt_in_flight() is not None:
        raise Conflict(_("A payment of invoice %(number)s is already being processed") % {"number": invoice.number},
                       code="payment_in_progress")
    sub = Subscription.objects.filter(pk=invoice.subscription_id).first() if invoice.subscription_id else None
    invoice.subscription = sub
    _check_method(details, accepted_methods(invoice))
    save_invoice_addresses(invoice, addresses or {})
    method = payments.add_payment_method(None, invoice.contact, details)
    n = (PaymentAttempt.objects.filter(invoice=invoice).aggregate(n=Max("attempt_no"))["n"] or 0) + 1
    if cycle_id:
        # While this attempt is in flight, dunning retries (and collect_past_due) leave the cycle
        # alone: they only pick up "failed" cycles. Recording the outcome sets its status again.
        BillingCycle.objects.filter(pk=cycle_id, status="failed").update(status="open", next_retry_on=None)
    attempt = PaymentAttempt.objects.create(
        invoice=invoice, cycle_id=cycle_id, attempt_no=n, idempotency_key=f"rc-{install_id()}-inv-{invoice.pk}-{n}",
        payment_method=method, amount=invoice.amount_unpaid, currency=invoice.currency, created_at=clock.now(),
        buyer_initiated=True,
    )
    return attempt


@sensitive_variables("details")
def pay_invoice(token_or_invoice, details: dict, addresses: dict | None = None) -> Payment:
    """Save the buyer's card or bank account and charge what is due on the invoice.

    ``token_or_invoice``: the token of a hosted-invoice link, an ``Invoice`` or its id.
    Returns the ``Payment`` (``succeeded``, ``failed`` with the reason, or ``pending``
    for a bank debit). Raises ``ValidationFailed`` naming the field for bad details
    (nothing is saved), ``Conflict`` when there is nothing to pay or a payment is
    already under way, ``PaymentProcessing`` when the outcome is not known yet.

    ``addresses``: ``{"billing": {...}, "shipping": {...}}``, required as the invoice's subscription
    asks (``collect_billing_address`` / ``collect_shipping_address``, R-NEW-3); saved on the invoice.
    After the payment the method is kept as the subscription's payment method when it has
    ``save_payment_method``, else removed (manual collection).
    """
    from recur.billing import engine

    if isinstance(token_or_invoice, str):
        invoice_id = invoice_for_token(token_or_invoice).pk
    else:
        invoice_id = getattr(token_or_invoice, "pk", token_or_invoice)
    attempt = _start_invoice_attempt(invoice_id, details, addresses)
    try:
        engine.charge_attempts([attempt.pk])
    except Exception:  # the attempt is committed: the billing run's recovery settles it with the same key
        log.exception("Charging payment attempt %s of invoice %s failed; recovery will settle it",
                      attempt.pk, invoice_id)
        raise PaymentProcessing(_("Your payment is being processed.")) from None
    payment = Payment.objects.filter(attempt_id=attempt.pk).first()
    if payment is None:
        raise PaymentProcessing(_("Your payment is being processed."))
    _after_buyer_attempt(attempt.pk, payment)
    return payment


@transaction.atomic
def _after_buyer_attempt(attempt_id: int, payment: Payment) -> None:
    """Keep or drop the buyer's payment method, as the subscription says (R-NEW-3).

    Status and dunning need nothing here: the engine's recorder makes a subscription active when
    its last unpaid invoice is paid, and a buyer's declined try (``buyer_initiated``) on a manual
    invoice, or on one written off, changes neither the cycle nor the status.
    """
    attempt = PaymentAttempt.objects.select_related("invoice").get(pk=attempt_id)
    invoice = attempt.invoice
    if not invoice.subscription_id:
        return
    sub = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
    _keep_or_remove_method(sub, invoice, attempt, payment)


ADDRESS_KEYS = ("address_line1", "address_line2", "postal_code", "city", "region", "country")
ADDRESS_REQUIRED = ("address_line1", "postal_code", "city", "country")


def collects(invoice: Invoice) -> tuple[bool, bool]:
    """(billing address, shipping address): what the hosted page of this invoice asks the buyer for."""
    sub = getattr(invoice, "subscription", None) if invoice.subscription_id else None
    if sub is None or invoice.collection != "manual":
        return False, False
    return bool(sub.collect_billing_address), bool(sub.collect_shipping_address)


def _clean_address(raw, field: str) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    address = {k: str(raw.get(k) or "").strip()[:200] for k in ADDRESS_KEYS}
    for k in ADDRESS_REQUIRED:
        if not address[k]:
            raise ValidationFailed(_("%(field)s: this field is required") % {"field": f"{field}.{k}"},
                                   field=f"{field}.{k}")
    return {k: v for k, v in address.items() if v}


def save_invoice_addresses(invoice: Invoice, addresses: dict) -> None:
    """Check and save the addresses the invoice's subscription asks for (R-NEW-3): the billing
    address becomes the invoice's ``billing_address``; a shipping address is kept under its
    ``"shipping"`` key. Raises ``ValidationFailed`` naming ``billing_address.<key>`` /
    ``shipping_address.<key>`` when one is missing; nothing is saved then."""
    billing, shipping = collects(invoice)
    if not (billing or shipping):
        return
    current = invoice.billing_address if isinstance(invoice.billing_address, dict) else {}
    new = dict(current)
    if billing:
        new = {**_clean_address(addresses.get("billing"), "billing_address"),
               **({"shipping": current["shipping"]} if "shipping" in current else {})}
    if shipping:
        new["shipping"] = _clean_address(addresses.get("shipping"), "shipping_address")
    if new != current:
        Invoice.objects.filter(pk=invoice.pk).update(billing_address=new)
        invoice.billing_address = new
        records.log(invoice, None, None, "updated", {"billing_address": [current, new]})


def _keep_or_remove_method(sub: Subscription, invoice: Invoice, attempt: PaymentAttempt, payment: Payment) -> None:
    """Manual collection (R-NEW-3): with "save payment method for future charges" a method that paid
    becomes the subscription's payment method; without it the method is removed once the outcome
    is known, so nothing is kept. A pending bank debit keeps it until it settles."""
    if invoice.collection != "manual" or attempt.payment_method_id is None or payment.status == "pending":
        return
    method = PaymentMethod.objects.get(pk=attempt.payment_method_id)
    if sub.save_payment_method:
        if payment.status == "succeeded" and sub.payment_method_id != method.pk:
            records.update(sub, None, {"payment_method": method})
    elif sub.payment_method_id != method.pk:
        payments.remove_payment_method(None, method)


# --- update the payment method of a subscription (R-BILL-5, R-BILL-6) --------------------------


@dataclasses.dataclass
class UpdateOutcome:
    """What happened: the new method, and the past-due charges made with it at once."""

    subscription: Subscription
    payment_method: PaymentMethod
    attempts: list[PaymentAttempt]

    @property
    def currency(self) -> str:
        return self.subscription.currency

    @property
    def succeeded(self) -> int:
        return sum(a.amount for a in self.attempts if a.status == "succeeded")

    @property
    def pending(self) -> int:
        return sum(a.amount for a in self.attempts if a.status == "pending")

    @property
    def failed(self) -> list[PaymentAttempt]:
        return [a for a in self.attempts if a.status == "failed"]

    @property
    def processing(self) -> bool:
        return any(a.status == "started" for a in self.attempts)


@sensitive_variables("details")
def update_payment_method(subscription_id: int, details: dict) -> UpdateOutcome:
    """Save a new card or bank account for the subscription's billing contact, make it the
    subscription's payment method, then charge every past-due amount at once (R-BILL-6).

    The method it replaces is replaced on the contact's other live subscriptions that used it too
    (a checkout that made a monthly and an annual subscription charges both to one method: when
    that fails, both are past due and the buyer gets one link), and their past-due amounts are
    charged as well. Nothing of another contact is read or changed. Bad details raise
    ``ValidationFailed`` naming the field and change nothing.
    """
    from recur.billing import engine

    with transaction.atomic():
        first = Subscription.objects.filter(pk=subscription_id).values_list("contact_id", "payment_method_id").first()
        if first is None:
            raise LinkExpired(_("This subscription no longer exists."))
        contact_id, old = first
        ids = {subscription_id}
        if old is not None:
            ids |= set(Subscription.objects.filter(contact_id=contact_id, payment_method_id=old).values_list(
                "pk", flat=True))
        locked = {s.pk: s for s in Subscription.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        sub = locked.get(subscription_id)
        if sub is None:
            raise LinkExpired(_("This subscription no longer exists."))
        if rules.is_terminal(sub.status):
            raise Conflict(_("status: the subscription is %(status)s")
                           % {"status": str(sub.get_status_display()).lower()}, field="status",
                           code="subscription_ended")
        _check_method(details, accepted_methods(sub))
        method = payments.add_payment_method(None, sub.contact, details)
        sub = records.update(sub, None, {"payment_method": method})
        siblings = [s for pk, s in locked.items() if pk != sub.pk and s.payment_method_id == old
                    and s.contact_id == sub.contact_id and not rules.is_terminal(s.status)
                    and method.type in accepted_methods(s)]
        for other in siblings:
            records.update(other, None, {"payment_method": method})
        before = PaymentAttempt.objects.aggregate(n=Max("pk"))["n"] or 0
    charged = [sub.pk, *[s.pk for s in siblings]]
    for sid in charged:
        try:
            engine.collect_past_due(sid)
        except Exception:  # attempts are committed first; the billing run's recovery settles them
            log.exception("Collecting the past-due amounts of subscription %s failed; recovery will settle them", sid)
    attempts = list(PaymentAttempt.objects.filter(pk__gt=before, invoice__subscription_id__in=charged).order_by("pk"))
    sub.refresh_from_db()
    return UpdateOutcome(sub, method, attempts)


def past_due_amount(sub: Subscription) -> int:
    """What is unpaid on the subscription's failed cycles (shown on the update page)."""
    return sum(i.amount_due for i in Invoice.objects.filter(subscription=sub, status="open",
                                                             cycle__status="failed"))
