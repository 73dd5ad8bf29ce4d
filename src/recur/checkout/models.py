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
    """One purchase through a hosted checkout page."""

    STATUSES = [("charging", "charging"), ("declined", "declined"), ("completed", "completed")]

    nonce = models.CharField(max_length=64, unique=True)
    payment_link = models.ForeignKey(PaymentLink, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="sessions")
    quote = models.ForeignKey("crm.Quote", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=STATUSES, default="charging")
    contact = models.ForeignKey("crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payment_method = models.ForeignKey("payments.PaymentMethod", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    invoice = models.ForeignKey("billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempt = models.ForeignKey("billing.PaymentAttempt", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    amount_due_now = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    buyer = models.JSONField(default=dict, blank=True)  # name, e-mail, addresses (never payment details)
    subscription_ids = models.JSONField(default=list, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="checkout_session_status_idx")]
