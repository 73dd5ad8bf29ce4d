"""State changes of saved payment methods (R-PAY-1, R-PAY-3). Views, API and
checkout pages call these; nothing else writes ``PaymentMethod`` rows. One call
= one transaction; bad details raise ``ValidationFailed`` naming the field
(``card.number``, ``bank_account.routing_number``, …) and save nothing."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from recur.core import clock, records
from recur.core.errors import NotFound, ValidationFailed
from recur.crm.models import Contact
from recur.payments.models import PaymentMethod, ProcessorCustomer
from recur.payments.processor import MethodEntry, Processor, SavedMethod, get_processor

METHOD_TYPES = ("card", "bank_account", "stripe")


def _check_shape(details: dict, processor_name: str) -> None:
    kind = details.get("type") if isinstance(details, dict) else None
    if kind not in METHOD_TYPES:
        raise ValidationFailed(_("type: must be one of %(choices)s") % {"choices": ", ".join(METHOD_TYPES)},
                               field="type")
    if kind == "stripe":
        if processor_name != "stripe":
            raise ValidationFailed(_("type: stripe payment methods need RECUR_PROCESSOR=stripe"), field="type")
        if not str(details.get("stripe_payment_method") or "").startswith("pm_"):
            raise ValidationFailed(_("stripe_payment_method: a Stripe PaymentMethod id (pm_…) is required"),
                                   field="stripe_payment_method")
    elif "token" in details:  # collected by the processor's own script on a hosted page
        if not isinstance(details["token"], str) or not details["token"].strip():
            raise ValidationFailed(_("token: the processor's payment method token is required"), field="token")
    elif not isinstance(details.get(kind), dict):
        raise ValidationFailed(_("card: the card details are required") if kind == "card"
                               else _("bank_account: the bank account details are required"), field=kind)


@transaction.atomic
def add_payment_method(actor, contact: Contact, details: dict) -> PaymentMethod:
    """Tokenize card or bank details at the processor and save the method for ``contact``."""
    processor = get_processor()
    _check_shape(details, processor.name)
    saved = processor.save_payment_method(processor.ensure_customer(contact), details)
    return records.create(PaymentMethod, actor, {
        "contact": contact, "type": saved.type, "processor": processor.name, "processor_ref": saved.processor_ref,
        "brand": saved.brand, "last4": saved.last4, "exp_month": saved.exp_month, "exp_year": saved.exp_year,
        "fingerprint": saved.fingerprint,
    })


def method_entry(contact: Contact | None, methods: list[str], *, currency: str = "",
                 prepare: bool = True) -> MethodEntry:
    """What a hosted page needs to collect one of ``methods`` with the configured processor
    (raw fields for the built-in one; Stripe.js and a SetupIntent for Stripe). ``contact``:
    the buyer when known; ``currency``: what will be charged. ``prepare=False``: only the types
    the page can take, nothing made."""
    return get_processor().method_entry(contact, list(methods), currency=currency, prepare=prepare)

def tokenize(processor: Processor, customer_ref: str, details: dict) -> SavedMethod:
    """Save card or bank details at the processor only (no ``PaymentMethod`` row yet): a checkout
    does this before its charge and keeps the method (``keep_saved_method``) only if the charge
    did not fail. Bad details raise ``ValidationFailed`` naming the field."""
    _check_shape(details, processor.name)
    return processor.save_payment_method(customer_ref, details)


@transaction.atomic
def keep_saved_method(actor, contact: Contact, processor_name: str, saved: SavedMethod) -> PaymentMethod:
    """The ``PaymentMethod`` row of a method ``tokenize`` saved at the processor."""
    return records.create(PaymentMethod, actor, {
        "contact": contact, "type": saved.type, "processor": processor_name, "processor_ref": saved.processor_ref,
        "brand": saved.brand, "last4": saved.last4, "exp_month": saved.exp_month, "exp_year": saved.exp_year,
        "fingerprint": saved.fingerprint,
    })


def bind_customer(contact: Contact, processor_name: str, customer_ref: str) -> bool:
    """Make ``customer_ref`` (from ``Processor.create_customer``) the contact's customer at the
    processor. False when the contact already has another one (it keeps that one)."""
    existing = ProcessorCustomer.objects.filter(contact=contact, processor=processor_name).values_list(
        "customer_ref", flat=True).first()
    if existing is None:
        ProcessorCustomer.objects.create(contact=contact, processor=processor_name, customer_ref=customer_ref,
                                         created_at=clock.now())
        return True
    return existing == customer_ref


@transaction.atomic
def remove_payment_method(actor, method: PaymentMethod) -> PaymentMethod:
    """Soft delete: the method is no longer offered or charged, but past payments keep it."""
    method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
    if method.removed_at is None:
        method = records.update(method, actor, {"removed_at": clock.now()})
    return method


def list_payment_methods(contact: Contact) -> QuerySet[PaymentMethod]:
    """The contact's methods that are not removed, oldest first."""
    return PaymentMethod.objects.filter(contact=contact, removed_at__isnull=True).order_by("pk")


def get_payment_method(contact: Contact, method_id: int) -> PaymentMethod:
    """One of the contact's methods that is not removed, else ``NotFound``."""
    method = list_payment_methods(contact).filter(pk=method_id).first()
    if method is None:
        raise NotFound(_("No payment method with id %(id)s for contact %(contact)s")
                       % {"id": method_id, "contact": contact.pk})
    return method
