"""The e-mail outbox and the users' notification switches (R-BILL-2..4, R-ALL-5).

The outbox is the source of truth: a message exists once its row is committed
(in the same transaction as the change that caused it, DESIGN rule 4), and the
worker delivers it later. Without ``EMAIL_URL`` the outbox is the delivery.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# Kinds sent to the buyer (the subscription's billing contact).
BUYER_KINDS = {
    "payment_receipt": _("Payment receipt"),
    "invoice_issued": _("Invoice issued"),
    "payment_reminder": _("Payment reminder"),
    "payment_failed": _("Payment failed"),
    "subscription_canceled": _("Subscription canceled"),
}
# Kinds sent to the seller's super admins; each user can switch them off (R-BILL-4).
ADMIN_KINDS = {
    "seller_receipt": _("New subscription paid"),
    "admin_payment_succeeded": _("Subscription payment succeeded"),
    "admin_payment_failed": _("Subscription payment failed"),
    "admin_payment_to_refund": _("Payment to refund"),
}
# Kinds sent to the user who asked for them.
USER_KINDS = {"export_ready": _("Export ready")}
KINDS = {**BUYER_KINDS, **ADMIN_KINDS, **USER_KINDS}
EMAIL_LANGUAGES = ("en", "nl")


class OutboxMessage(models.Model):
    """One e-mail to one recipient; rendered from ``kind`` + ``context`` at delivery."""

    QUEUED, SENDING, SENT, FAILED, KEPT = "queued", "sending", "sent", "failed", "kept"
    # Kept: delivered to the outbox only, because no SMTP server is configured (R-ALL-5); never sent.
    STATUSES = [(QUEUED, _("Queued")), (SENDING, _("Sending")), (SENT, _("Sent")), (FAILED, _("Failed")),
                (KEPT, _("Kept in outbox"))]

    kind = models.CharField(_("kind"), max_length=40)
    to_email = models.EmailField(_("to"))
    to_name = models.CharField(_("recipient name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=8, default="en")
    context = models.JSONField(default=dict)  # plain JSON values only; see services.py
    record_type = models.CharField(max_length=40, blank=True)
    record_id = models.BigIntegerField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=STATUSES, default=QUEUED)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Queued: earliest next try. Sending: when the claim expires (a crashed
    # worker's message is taken again after that).
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    message_id = models.CharField(max_length=255)  # RFC 5322 Message-ID, fixed at queue time

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["record_type", "record_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to_email} ({self.status})"

    @property
    def kind_label(self) -> str:
        return str(KINDS.get(self.kind, self.kind))


class NotificationSetting(models.Model):
    """A user's switch for one notification kind; no row means on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings")
    kind = models.CharField(max_length=40)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="uniq_notification_setting")]


def _all_buyer_kinds() -> list[str]:  # kept for migration 0001
    return list(BUYER_KINDS)


# The account's e-mail settings (reminders, sender, buyer e-mails) are part of the account's settings,
# which moved to recur.core (migration core 0002 keeps the existing row). Re-exported for older imports.
from recur.core.models import AccountSettings  # noqa: E402,F401
