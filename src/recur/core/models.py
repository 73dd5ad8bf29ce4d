"""Users, API tokens, record history, associations and other shared tables."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        email = self.normalize_email(email).lower()
        user = self.model(email=email, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_superuser", True)
        extra.setdefault("is_staff", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login of the seller's team. ``is_superuser`` is the "super admin" role."""

    email = models.EmailField(_("e-mail"), unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=8, default="en")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    @property
    def role(self) -> str:
        return "super_admin" if self.is_superuser else "user"

    def __str__(self) -> str:
        return self.name or self.email


class ApiToken(models.Model):
    """A bearer token; only its SHA-256 is stored (tokens are 256-bit random)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first response to a POST with an ``Idempotency-Key``, for replay."""

    owner_key = models.CharField(max_length=64)  # hash of the token that sent it
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner_key", "key"], name="uniq_idempotency_key")]


class HistoryEntry(models.Model):
    """One change of one record: who, what, when (R-OBJ-4)."""

    record_type = models.CharField(max_length=40)
    record_id = models.BigIntegerField()
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=40)  # created, updated, deleted, associated, dissociated, …
    changes = models.JSONField(default=dict)  # {field: [old, new]}
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["record_type", "record_id", "at"])]
        ordering = ["at", "id"]


class Association(models.Model):
    """A link between two records of any types (R-OBJ-3), stored once, in canonical order."""

    a_type = models.CharField(max_length=40)
    a_id = models.BigIntegerField()
    b_type = models.CharField(max_length=40)
    b_id = models.BigIntegerField()
    label = models.CharField(max_length=40, blank=True)  # e.g. "billing_contact"
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["a_type", "a_id", "b_type", "b_id", "label"], name="uniq_association")
        ]
        indexes = [models.Index(fields=["b_type", "b_id", "a_type"])]


class SimulatedClock(models.Model):
    """Test mode only: the instance's simulated "now" (one row)."""

    now = models.DateTimeField()

    @classmethod
    def current(cls) -> dt.datetime | None:
        row = cls.objects.filter(pk=1).values_list("now", flat=True).first()
        return row


class Record(models.Model):
    """Fields every business record has (R-OBJ-4)."""

    record_type: str = ""
    tracked_fields: tuple[str, ...] = ()

    owner = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True


# --- the account's settings -------------------------------------------------------------------------
# The environment (RECUR_TIME_ZONE, RECUR_DUNNING_RETRY_DAYS, RECUR_DUNNING_FINAL_ACTION) only gives the
# defaults of a fresh installation; once a super admin saves the Settings page, the row below decides.


def default_time_zone() -> str:
    from django.conf import settings

    return settings.RECUR_TIME_ZONE


def default_retry_days() -> list[int]:
    from django.conf import settings

    return list(settings.RECUR_DUNNING_RETRY_DAYS)


def default_final_action() -> str:
    from django.conf import settings

    return settings.RECUR_DUNNING_FINAL_ACTION


def default_payment_methods() -> list[str]:
    return ["card", "bank_account"]


def all_buyer_email_kinds() -> list[str]:
    from recur.notifications.models import BUYER_KINDS

    return list(BUYER_KINDS)


class AccountSettings(models.Model):
    """The account's settings: one row (pk=1), edited by super admins on the Settings page.

    Read them through ``recur.core.account.current()`` (one query per request or worker round, not per
    subscription); change them through ``recur.core.account.update()`` (validated, recorded in the change
    history as record type "account_settings"). No row yet means the defaults above.
    """

    STAY_PAST_DUE, CANCEL = "stay_past_due", "cancel"
    FINAL_ACTIONS = [(STAY_PAST_DUE, _("Leave it unpaid (past due)")), (CANCEL, _("Cancel the subscription"))]
    PAYMENT_METHODS = [("card", _("Card")), ("bank_account", _("Bank debit"))]

    time_zone = models.CharField(_("time zone"), max_length=64, default=default_time_zone)
    # Days after each failed try on which the charge is tried again (R-BILL-6).
    dunning_retry_days = models.JSONField(_("retry schedule"), default=default_retry_days)
    dunning_final_action = models.CharField(_("after the last retry"), max_length=20, choices=FINAL_ACTIONS,
                                            default=default_final_action)
    # Pre-filled on new payment links and manually collected subscriptions (R-NEW-3).
    default_payment_methods = models.JSONField(_("accepted payment methods"), default=default_payment_methods)
    # R-SIGN-2: a subscription converted from a quote or deal is associated with its billing contact.
    associate_billing_contacts = models.BooleanField(_("associate billing contacts"), default=True)
    # E-mail (R-BILL-2..4).
    reminder_enabled = models.BooleanField(_("send payment reminders"), default=False)
    reminder_days = models.PositiveSmallIntegerField(_("days before the payment"), default=14)
    sender_name = models.CharField(_("sender name"), max_length=200, blank=True)
    sender_email = models.EmailField(_("sender e-mail"), blank=True)
    buyer_emails_enabled = models.JSONField(default=all_buyer_email_kinds)  # buyer kinds that are sent
    updated_at = models.DateTimeField(_("last changed"), null=True, blank=True)
    updated_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("account settings")
        verbose_name_plural = _("account settings")

    @classmethod
    def load(cls) -> AccountSettings:
        """The row as stored (not cached), or an unsaved one holding the defaults."""
        return cls.objects.filter(pk=1).select_related("updated_by").first() or cls(pk=1)
