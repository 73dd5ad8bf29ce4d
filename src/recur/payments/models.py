"""Saved payment methods, processor customers, and the built-in processor's ledger (R-PAY-1).

Nothing here ever holds a full card number or a CVC: a payment method keeps its
brand, last four digits, expiry, a keyed fingerprint and the processor's token.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from recur.core.models import Record
from recur.crm.models import Contact

METHOD_TYPES = [("card", _("Card")), ("bank_account", _("Bank account"))]
CHARGE_STATUSES = [("succeeded", "succeeded"), ("failed", "failed"), ("pending", "pending")]


class PaymentMethod(Record):
    """A contact's saved card or bank account. Removal is a soft delete, so past
    payments keep pointing at the method they used."""

    record_type = "payment_method"
    tracked_fields = (
        "contact", "type", "processor", "processor_ref", "brand", "last4", "exp_month", "exp_year", "removed_at",
        "owner",
    )

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="payment_methods")
    type = models.CharField(_("type"), max_length=20, choices=METHOD_TYPES)
    processor = models.CharField(_("processor"), max_length=20)
    processor_ref = models.CharField(max_length=255)
    brand = models.CharField(_("brand"), max_length=30, blank=True)
    last4 = models.CharField(_("last four digits"), max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"), null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(_("expiry year"), null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment method")
        verbose_name_plural = _("payment methods")
        constraints = [models.UniqueConstraint(fields=["processor", "processor_ref"], name="uniq_payment_method_ref")]

    def __str__(self) -> str:
        label = self.brand or self.get_type_display()
        return f"{label} ····{self.last4}"


class ProcessorCustomer(models.Model):
    """A contact's customer id at one processor."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="processor_customers")
    processor = models.CharField(max_length=20)
    customer_ref = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "processor"], name="uniq_processor_customer"),
            models.UniqueConstraint(fields=["processor", "customer_ref"], name="uniq_processor_customer_ref"),
        ]


# --- the built-in processor's own ledger (what a remote gateway would keep) --------------


class BuiltinToken(models.Model):
    """A tokenized card or bank account; ``behaviour`` comes from the test number."""

    token = models.CharField(max_length=64, unique=True)
    customer_ref = models.CharField(max_length=64, db_index=True)
    type = models.CharField(max_length=20, choices=METHOD_TYPES)
    brand = models.CharField(max_length=30, blank=True)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField(null=True)
    exp_year = models.PositiveSmallIntegerField(null=True)
    holder_name = models.CharField(max_length=200, blank=True)
    fingerprint = models.CharField(max_length=64)
    behaviour = models.CharField(max_length=30)
    created_at = models.DateTimeField()


class BuiltinCharge(models.Model):
    """One charge; the unique idempotency key is what stops a second charge."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    charge_ref = models.CharField(max_length=64, unique=True)
    token = models.CharField(max_length=64)
    customer_ref = models.CharField(max_length=64, blank=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=CHARGE_STATUSES)
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    settles_at = models.DateTimeField(null=True)  # bank debits: when the pending debit settles or fails
    refunded = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["settles_at"], condition=Q(status="pending"), name="builtin_charge_pending"),
        ]


class BuiltinRefund(models.Model):
    idempotency_key = models.CharField(max_length=255, unique=True)
    refund_ref = models.CharField(max_length=64, unique=True)
    charge = models.ForeignKey(BuiltinCharge, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, default="succeeded")
    created_at = models.DateTimeField()


class BuiltinEvent(models.Model):
    """A settled or failed bank debit, reported once by ``poll_events``."""

    event_id = models.CharField(max_length=64, unique=True)
    charge = models.ForeignKey(BuiltinCharge, on_delete=models.PROTECT, related_name="events")
    status = models.CharField(max_length=10, choices=CHARGE_STATUSES)
    created_at = models.DateTimeField()


# --- Stripe ----------------------------------------------------------------------------


class ProcessedWebhookEvent(models.Model):
    """A processor event already acted on (R-PAY-2). The unique event id, inserted in the
    same transaction as the change the event caused, makes a redelivered or concurrent
    copy of the event change nothing."""

    processor = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["processor", "event_id"], name="uniq_processed_webhook_event"),
        ]
