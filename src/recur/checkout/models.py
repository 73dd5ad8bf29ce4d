"""Payment links and checkout sessions (R-OBJ-2, R-NEW-1, R-NEW-2).

A ``PaymentLink`` holds line items (product or custom, recurring or one-time)
and the collection options of its hosted checkout page. A ``CheckoutSession``
is one buyer's purchase through a payment link or a public quote: its unique
``nonce`` (one per rendered form) makes a double submit one purchase, and it
remembers what the purchase made (see ``checkout.payment_links``).
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from recur.core.models import Record
from recur.crm.models import BILLING_FREQUENCIES, BILLING_TERMS


class PaymentLink(Record):
    record_type = "payment_link"
    tracked_fields = ("name", "currency", "accepted_payment_methods", "collect_billing_address",
                      "collect_shipping_address", "save_payment_method", "allow_create_deals", "active", "owner")

    name = models.CharField(_("name"), max_length=200)
    currency = models.CharField(_("currency"), max_length=3)
    accepted_payment_methods = models.JSONField(_("accepted payment methods"), default=list)
    collect_billing_address = models.BooleanField(_("collect billing address"), default=False)
    collect_shipping_address = models.BooleanField(_("collect shipping address"), default=False)
    # Always on when the link holds recurring items (they are charged again later).
    save_payment_method = models.BooleanField(_("save payment method for future charges"), default=True)
    # Only ever for one-time purchases: recurring payments never create deals (R-SIGN-3).
    allow_create_deals = models.BooleanField(_("allow payment links to create new deals"), default=False)
    active = models.BooleanField(_("active"), default=True)
    token = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("payment link")
        verbose_name_plural = _("payment links")

    def __str__(self) -> str:
        return self.name


class PaymentLinkItem(models.Model):
    """A line item of a payment link; stored like ``crm.LineItem``."""

    link = models.ForeignKey(PaymentLink, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    product = models.ForeignKey("crm.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"), default=1, validators=[MinValueValidator(1)])
    unit_price = models.BigIntegerField(_("unit price"), validators=[MinValueValidator(0)])
    currency = models.CharField(_("currency"), max_length=3)
    discount_percent = models.DecimalField(_("discount (%)"), max_digits=6, decimal_places=3, default=0,
                                           validators=[MinValueValidator(0), MaxValueValidator(100)])
    tax_rate = models.DecimalField(_("tax rate (%)"), max_digits=6, decimal_places=3, default=0,
                                   validators=[MinValueValidator(0), MaxValueValidator(100)])
    billing_frequency = models.CharField(max_length=20, choices=BILLING_FREQUENCIES, null=True, blank=True)
    billing_terms = models.CharField(max_length=20, choices=BILLING_TERMS, default="auto_renew")
    number_of_payments = models.PositiveIntegerField(null=True, blank=True)
    billing_start_date = models.DateField(null=True, blank=True)
    billing_start_delay_days = models.PositiveIntegerField(default=0)
    billing_start_delay_months = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    @property
    def is_recurring(self) -> bool:
        return bool(self.billing_frequency)


class CheckoutSession(models.Model):
    """One purchase through a hosted checkout page: one per rendered form (its ``nonce``).

    Until a charge succeeds (or a bank debit is submitted) the session is all there is: its
    attempts (``CheckoutAttempt``) carry the charges' idempotency keys; no contact, payment
    method, subscription, invoice or payment exists yet. ``completed`` lists what was made."""

    STATUSES = [("charging", "charging"), ("declined", "declined"), ("completed", "completed")]

    nonce = models.CharField(max_length=64, unique=True)
    payment_link = models.ForeignKey(PaymentLink, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="sessions")
    quote = models.ForeignKey("crm.Quote", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=STATUSES, default="charging")
    amount_due_now = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    buyer = models.JSONField(default=dict, blank=True)  # name, e-mail, addresses (never payment details)
    # The last decline, shown to the buyer beside the form.
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    # What a completed purchase made.
    contact = models.ForeignKey("crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payment_method = models.ForeignKey("payments.PaymentMethod", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    subscription_ids = models.JSONField(default=list, blank=True)
    invoice_ids = models.JSONField(default=list, blank=True)
    payment_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="checkout_session_status_idx")]


class CheckoutAttempt(models.Model):
    """One try to pay a checkout session, committed BEFORE the processor is called (DESIGN rule 2).

    The processor charge carries ``idempotency_key``; a crash between the charge and its recording
    is settled by ``payment_links.settle_sessions`` looking the key up. The method was saved at
    the processor for this try only (``method_*``): it becomes a ``PaymentMethod`` of the contact
    when the charge succeeds or is pending, and is detached when it fails."""

    STATUSES = [("started", "started"), ("succeeded", "succeeded"), ("pending", "pending"), ("failed", "failed"),
                ("saved", "saved")]  # saved: nothing was due today, the method was only saved

    session = models.ForeignKey(CheckoutSession, on_delete=models.CASCADE, related_name="attempts")
    attempt_no = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=100, unique=True)
    amount = models.BigIntegerField(validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=STATUSES, default="started")
    processor = models.CharField(max_length=20)
    customer_ref = models.CharField(max_length=255)
    new_customer = models.BooleanField(default=False)  # made for this buyer: bound to the contact on success
    method_ref = models.CharField(max_length=255)
    method_type = models.CharField(max_length=20)
    method_brand = models.CharField(max_length=30, blank=True)
    method_last4 = models.CharField(max_length=4, blank=True)
    method_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    method_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    method_fingerprint = models.CharField(max_length=64, blank=True)
    charge_ref = models.CharField(max_length=100, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "attempt_no"], name="uniq_checkout_attempt_no")]
        indexes = [models.Index(fields=["status", "created_at"], name="checkout_attempt_status_idx")]
