"""Subscriptions and their line items (R-OBJ-2, R-KIND, R-VIEW-4)."""

from __future__ import annotations

import datetime as dt

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from recur.core.models import Record
from recur.crm.models import BILLING_FREQUENCIES, BILLING_TERMS
from recur.subscriptions import schedule

STATUSES = [
    ("active", _("Active")),
    ("past_due", _("Unpaid")),
    ("canceled", _("Canceled")),
    ("expired", _("Expired")),
    ("scheduled", _("Scheduled")),
    ("paused", _("Paused")),
]
COLLECTIONS = [("auto_charge", _("Charge the saved payment method automatically")),
               ("manual", _("Send invoices and collect manually"))]
PAYMENT_TERMS = [
    ("due_on_receipt", _("Due on receipt")),
    ("net_15", _("Net 15")),
    ("net_30", _("Net 30")),
    ("net_45", _("Net 45")),
    ("net_60", _("Net 60")),
    ("net_90", _("Net 90")),
]
PAYMENT_TERM_DAYS = {"due_on_receipt": 0, "net_15": 15, "net_30": 30, "net_45": 45, "net_60": 60, "net_90": 90}
CANCEL_MODES = [
    ("immediately", _("Immediately")),
    ("end_of_period", _("At the end of the current billing period")),
    ("refund_unused", _("Immediately, refunding the unused days")),
]
# Statuses whose due periods the billing run bills.
BILLABLE = ("active", "past_due", "scheduled")


class Subscription(Record):
    record_type = "subscription"
    tracked_fields = (
        "name", "status", "collection", "billing_frequency", "billing_terms", "number_of_payments", "start_date",
        "end_date", "next_payment_date", "amount", "currency", "payment_terms", "contact", "company",
        "payment_method", "billing_address", "shipping_address", "owner", "cancel_mode", "canceled_at", "cancel_at",
        "accept_online_payments", "accepted_payment_methods", "collect_billing_address", "collect_shipping_address",
        "save_payment_method",
    )

    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(_("status"), max_length=20, choices=STATUSES, default="scheduled")
    collection = models.CharField(_("collection"), max_length=20, choices=COLLECTIONS, default="auto_charge")
    billing_frequency = models.CharField(_("billing frequency"), max_length=20, choices=BILLING_FREQUENCIES)
    billing_terms = models.CharField(_("billing terms"), max_length=20, choices=BILLING_TERMS, default="auto_renew")
    number_of_payments = models.PositiveIntegerField(_("number of payments"), null=True, blank=True,
                                                     validators=[MinValueValidator(1)])
    start_date = models.DateField(_("start date"))  # the schedule's anchor: period k starts at anchor + k periods
    end_date = models.DateField(_("end date"), null=True, blank=True)
    next_payment_date = models.DateField(_("next payment date"), null=True, blank=True)
    last_payment_date = models.DateField(_("last payment date"), null=True, blank=True)
    payments_made = models.PositiveIntegerField(_("payments made"), default=0)
    amount = models.BigIntegerField(_("amount per period"), default=0, validators=[MinValueValidator(0)])
    currency = models.CharField(_("currency"), max_length=3)
    total_paid = models.BigIntegerField(_("total paid"), default=0)
    payment_terms = models.CharField(_("payment terms"), max_length=20, choices=PAYMENT_TERMS, default="due_on_receipt")
    accept_online_payments = models.BooleanField(_("accept online payments"), default=True)
    accepted_payment_methods = models.JSONField(_("accepted payment methods"), default=list, blank=True)
    # Manual collection (R-NEW-3): what the hosted invoice page asks the buyer for.
    collect_billing_address = models.BooleanField(_("collect billing address"), default=False)
    collect_shipping_address = models.BooleanField(_("collect shipping address"), default=False)
    save_payment_method = models.BooleanField(_("save payment method for future charges"), default=False)
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="subscriptions",
                                verbose_name=_("billing contact"))
    company = models.ForeignKey("crm.Company", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="subscriptions", verbose_name=_("company"))
    quote = models.ForeignKey("crm.Quote", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payment_method = models.ForeignKey("payments.PaymentMethod", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", verbose_name=_("payment method"))
    billing_address = models.JSONField(_("billing address"), default=dict, blank=True)
    # Where the goods go, as the buyer gave it at checkout (R-NEW-3 "collect shipping address").
    shipping_address = models.JSONField(_("shipping address"), default=dict, blank=True)
    # Engine state: the index of the last period that has a billing cycle (-1: none yet).
    billed_through = models.IntegerField(default=-1)
    # Period ``anchor_index`` starts on ``start_date``; it moves when the seller edits the next
    # payment date, so period indexes keep increasing and stay unique.
    anchor_index = models.PositiveIntegerField(default=0)
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    cancel_mode = models.CharField(_("cancel mode"), max_length=20, choices=CANCEL_MODES, blank=True)
    cancel_at = models.DateField(_("cancels on"), null=True, blank=True)  # end-of-period cancellation
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        indexes = [
            # The billing run claims due rows through sub_npd_id_idx (payment date order); the status
            # filters use sub_status_idx. The contact's foreign key has its own index.
            models.Index(fields=["status", "id"], name="sub_status_idx"),
            # keyset paging of the index page on each sortable column (R-VIEW-1)
            models.Index(fields=["next_payment_date", "id"], name="sub_npd_id_idx"),
            models.Index(fields=["start_date", "id"], name="sub_start_id_idx"),
            models.Index(fields=["amount", "id"], name="sub_amount_id_idx"),
            models.Index(fields=["name", "id"], name="sub_name_id_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    # --- the schedule, from the pure rules in schedule.py ---------------------------------

    @property
    def fixed_payments(self) -> int | None:
        return self.number_of_payments if self.billing_terms == "fixed" else None

    def period(self, k: int) -> tuple[dt.date, dt.date]:
        """Start (= payment date) and end of period ``k``."""
        return schedule.shifted_period(self.start_date, self.billing_frequency, self.anchor_index, k)

    def period_start(self, k: int) -> dt.date:
        return self.period(k)[0]

    def index_for(self, day: dt.date) -> int:
        return schedule.period_index_for(self.start_date, self.billing_frequency, day) + self.anchor_index

    def due_indexes(self, until: dt.date) -> list[int]:
        """Periods due by ``until`` that have no billing cycle yet (R-BILL-8)."""
        return schedule.shifted_due(self.start_date, self.billing_frequency, self.anchor_index, self.billed_through,
                                    until, self.fixed_payments)

    def next_start_after_billing(self) -> dt.date | None:
        return schedule.shifted_next(self.start_date, self.billing_frequency, self.anchor_index, self.billed_through,
                                     self.fixed_payments)

    def compute_end_date(self) -> dt.date | None:
        n = self.fixed_payments
        return None if n is None else self.period_start(n)

    def ends_on(self) -> dt.date | None:
        """The day it ends or ended, as a seller reads it: a cancellation's day (in the account's time
        zone), or the end of the period a cancellation chose, before the fixed term's ``end_date``."""
        from recur.core import clock

        canceled_on = self.canceled_at.astimezone(clock.account_zone()).date() if self.canceled_at else None
        if canceled_on and not (self.cancel_at and self.cancel_at <= canceled_on):
            return canceled_on
        return self.cancel_at or self.end_date


class SubscriptionItem(models.Model):
    """A line item of a subscription, copied when it was created (R-OBJ-1)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    product = models.ForeignKey("crm.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"), default=1, validators=[MinValueValidator(1)])
    unit_price = models.BigIntegerField(_("unit price"), validators=[MinValueValidator(0)])
    discount_percent = models.DecimalField(_("discount (%)"), max_digits=6, decimal_places=3, default=0,
                                           validators=[MinValueValidator(0), MaxValueValidator(100)])
    tax_rate = models.DecimalField(_("tax rate (%)"), max_digits=6, decimal_places=3, default=0,
                                   validators=[MinValueValidator(0), MaxValueValidator(100)])

    class Meta:
        ordering = ["position", "id"]
