"""Billing cycles, invoices, payment attempts, payments and refunds.

The money-safety rules of DESIGN.md live in these constraints: one cycle per
(subscription, period), one attempt row per idempotency key, one payment per
attempt, gapless invoice numbers per year.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from recur.core.models import Record
from recur.subscriptions.models import PAYMENT_TERMS


# Attempt statuses whose outcome is not known yet.
IN_FLIGHT = ("started", "pending")
# Invoice statuses that take a payment: an uncollectible invoice is no longer asked for, but a payment
# that comes after all (booked by hand, paid on its page, a late charge) is taken on it.
TAKES_PAYMENTS = ("open", "uncollectible")


class InvoiceSequence(models.Model):
    """The last invoice number used in a year; its row lock keeps numbers gapless."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)


class BillingCycle(models.Model):
    STATUSES = [("open", "open"), ("paid", "paid"), ("failed", "failed"), ("void", "void")]

    # Indexed by uniq_cycle_per_period (subscription first): no index of its own.
    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.CASCADE, related_name="cycles",
                                     db_index=False)
    period_index = models.PositiveIntegerField()
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=STATUSES, default="open")
    # Dunning: how many charges were tried and when the next retry is due.
    attempts = models.PositiveSmallIntegerField(default=0)
    next_retry_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period_index"], name="uniq_cycle_per_period"),
        ]
        # Only failed cycles wait for a retry: a cycle that is opened and paid never enters the index.
        indexes = [models.Index(fields=["next_retry_on", "id"], condition=models.Q(status="failed"),
                                name="cycle_retry_idx")]
        ordering = ["subscription_id", "period_index"]


class Invoice(Record):
    record_type = "invoice"
    STATUSES = [("draft", _("Draft")), ("open", _("Open")), ("paid", _("Paid")), ("void", _("Void")),
                ("uncollectible", _("Uncollectible"))]
    tracked_fields = ("status", "amount_paid", "due_date")

    number = models.CharField(_("number"), max_length=20, unique=True)
    subscription = models.ForeignKey("subscriptions.Subscription", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="invoices")
    cycle = models.OneToOneField(BillingCycle, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoice")
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="invoices")
    status = models.CharField(_("status"), max_length=20, choices=STATUSES, default="open")
    issue_date = models.DateField(_("issue date"))
    due_date = models.DateField(_("due date"))
    payment_terms = models.CharField(max_length=20, choices=PAYMENT_TERMS, default="due_on_receipt")
    collection = models.CharField(max_length=20, default="auto_charge")
    accept_online_payments = models.BooleanField(default=True)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    billing_address = models.JSONField(default=dict, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    overdue_notified = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["status", "due_date"], name="invoice_due_idx")]

    @property
    def amount_due(self) -> int:
        return 0 if self.status in ("void", "uncollectible") else max(self.total - self.amount_paid, 0)

    @property
    def amount_unpaid(self) -> int:
        """What has not been paid, also of an invoice written off (which may still be paid after all)."""
        return 0 if self.status == "void" else max(self.total - self.amount_paid, 0)

    @staticmethod
    def in_flight() -> models.Exists:
        """An attempt of the invoice whose outcome is not known yet (a charge under way, a pending bank
        debit), as a query expression: ``annotate(in_flight_=Invoice.in_flight())`` spares ``is_overdue`` a query."""
        return models.Exists(PaymentAttempt.objects.filter(invoice=models.OuterRef("pk"), status__in=IN_FLIGHT))

    @staticmethod
    def overdue_filter(today) -> models.Q:
        """Open and past its due date, and no payment of it under way: the invoices a seller chases
        (``is_overdue`` as a query)."""
        return models.Q(status="open", due_date__lt=today) & ~models.Q(Invoice.in_flight())

    def attempt_in_flight(self) -> "PaymentAttempt | None":
        """The newest attempt of this invoice whose outcome is not known yet (``in_flight`` for one invoice)."""
        return self.attempts.filter(status__in=IN_FLIGHT).order_by("-pk").first()

    def is_overdue(self, today) -> bool:
        if not (self.status == "open" and self.due_date < today):
            return False
        in_flight = getattr(self, "in_flight_", None)  # annotated by a list, else asked
        if in_flight is None:
            in_flight = self.attempt_in_flight() is not None
        return not in_flight

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.BigIntegerField()
    discount = models.BigIntegerField(default=0)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField()
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]


class PaymentAttempt(models.Model):
    """One try to charge an invoice. Committed BEFORE the processor is called."""

    STATUSES = [("started", "started"), ("succeeded", "succeeded"), ("failed", "failed"), ("pending", "pending")]

    # Indexed by uniq_attempt_no (invoice first): no index of its own.
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    cycle = models.ForeignKey(BillingCycle, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempt_no = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=100, unique=True)
    payment_method = models.ForeignKey("payments.PaymentMethod", null=True, on_delete=models.SET_NULL, related_name="+")
    amount = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=STATUSES, default="started")
    # Made by the buyer on a hosted page (not by the billing run): a decline is shown to the
    # buyer there, so it sends no "payment failed" e-mails and starts no dunning on manual invoices.
    buyer_initiated = models.BooleanField(default=False)
    charge_ref = models.CharField(max_length=100, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invoice", "attempt_no"], name="uniq_attempt_no")]
        # Only unfinished attempts are looked for by status (recovery after a crash, pending debits):
        # an attempt leaves these indexes when it succeeds or fails.
        indexes = [
            models.Index(fields=["created_at", "id"], condition=models.Q(status="started"), name="attempt_started_idx"),
            models.Index(fields=["created_at", "id"], condition=models.Q(status="pending"), name="attempt_pending_idx"),
        ]


class Payment(Record):
    record_type = "payment"
    STATUSES = [("succeeded", _("Succeeded")), ("failed", _("Failed")), ("pending", _("Pending")),
                ("refunded", _("Refunded")), ("partially_refunded", _("Partially refunded"))]
    METHODS = [("card", _("Card")), ("bank_account", _("Bank debit")), ("bank_transfer", _("Bank transfer")),
               ("cash", _("Cash")), ("cheque", _("Cheque")), ("other", _("Other"))]
    tracked_fields = ("status", "refunded_amount")

    # Indexed by payment_sub_idx (subscription first): no index of its own.
    subscription = models.ForeignKey("subscriptions.Subscription", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="payments", db_index=False)
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments")
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="payments")
    attempt = models.OneToOneField(PaymentAttempt, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="payment")
    amount = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=STATUSES)
    refunded_amount = models.BigIntegerField(default=0)
    method = models.CharField(max_length=20, choices=METHODS, default="card")
    payment_method = models.ForeignKey("payments.PaymentMethod", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    charge_ref = models.CharField(max_length=100, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    paid_on = models.DateField()
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subscription", "id"], name="payment_sub_idx")]


class Refund(Record):
    record_type = "refund"
    tracked_fields = ("status",)

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField(validators=[MinValueValidator(1)])
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, default="succeeded")
    refund_ref = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
