"""CRM records: contacts, companies, deals, products, line items, quotes (R-OBJ-1, R-OBJ-2)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from recur.core.models import Record

CONTACT_LANGUAGES = [
    ("en", "English"), ("nl", "Nederlands"), ("de", "Deutsch"), ("es", "Español"), ("fi", "Suomi"),
    ("fr", "Français"), ("it", "Italiano"), ("ja", "日本語"), ("pl", "Polski"), ("pt", "Português"),
    ("sv", "Svenska"),
]

BILLING_FREQUENCIES = [
    ("weekly", _("Weekly")),
    ("biweekly", _("Every two weeks")),
    ("monthly", _("Monthly")),
    ("quarterly", _("Quarterly")),
    ("per_six_months", _("Every six months")),
    ("annually", _("Yearly")),
    ("per_two_years", _("Every two years")),
    ("per_three_years", _("Every three years")),
    ("per_four_years", _("Every four years")),
    ("per_five_years", _("Every five years")),
]

BILLING_TERMS = [("auto_renew", _("Auto-renew until canceled")), ("fixed", _("Fixed number of payments"))]


class Address(models.Model):
    """Postal address fields, embedded in contacts and companies."""

    address_line1 = models.CharField(_("address"), max_length=200, blank=True)
    address_line2 = models.CharField(_("address line 2"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    region = models.CharField(_("state/region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text="ISO 3166 code")

    ADDRESS_FIELDS = ("address_line1", "address_line2", "postal_code", "city", "region", "country")

    class Meta:
        abstract = True


class Company(Record, Address):
    record_type = "company"
    tracked_fields = ("name", "domains", "phone", "owner", *Address.ADDRESS_FIELDS)

    name = models.CharField(_("name"), max_length=200)
    domains = models.JSONField(_("domains"), default=list, blank=True)  # first is the primary domain
    phone = models.CharField(_("phone"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name


class Contact(Record, Address):
    record_type = "contact"
    tracked_fields = ("name", "email", "other_emails", "phone", "language", "owner", *Address.ADDRESS_FIELDS)

    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("primary e-mail"), unique=True, null=True, blank=True)
    # Additional addresses; each also has a ContactEmail row so that no address
    # belongs to two contacts.
    other_emails = models.JSONField(_("other e-mails"), default=list, blank=True)
    phone = models.CharField(_("phone"), max_length=50, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=CONTACT_LANGUAGES, default="en")

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name

    @property
    def all_emails(self) -> list[str]:
        return ([self.email] if self.email else []) + list(self.other_emails)


class ContactEmail(models.Model):
    """Every e-mail address of every contact, unique across contacts."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="email_rows")
    email = models.EmailField(unique=True)
    is_primary = models.BooleanField(default=False)


class Deal(Record):
    record_type = "deal"
    STAGES = [
        ("appointment_scheduled", _("Appointment scheduled")),
        ("qualified_to_buy", _("Qualified to buy")),
        ("presentation_scheduled", _("Presentation scheduled")),
        ("decision_maker_bought_in", _("Decision maker bought-in")),
        ("contract_sent", _("Contract sent")),
        ("closed_won", _("Closed won")),
        ("closed_lost", _("Closed lost")),
    ]
    tracked_fields = ("name", "amount", "currency", "stage", "close_date", "owner")

    name = models.CharField(_("name"), max_length=200)
    amount = models.BigIntegerField(_("amount"), default=0, validators=[MinValueValidator(0)])  # minor units
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    stage = models.CharField(_("stage"), max_length=40, choices=STAGES, default="appointment_scheduled")
    close_date = models.DateField(_("close date"), null=True, blank=True)

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")

    def __str__(self) -> str:
        return self.name


class Product(Record):
    """An entry of the product library."""

    record_type = "product"
    tracked_fields = (
        "name", "sku", "description", "unit_price", "currency", "billing_frequency", "tax_rate", "archived", "owner",
    )

    name = models.CharField(_("name"), max_length=200)
    sku = models.CharField(_("SKU"), max_length=100, unique=True, null=True, blank=True)
    description = models.TextField(_("description"), blank=True)
    unit_price = models.BigIntegerField(_("unit price"), validators=[MinValueValidator(0)])  # minor units
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    # None: sold one-time; otherwise the default billing frequency.
    billing_frequency = models.CharField(
        _("billing frequency"), max_length=20, choices=BILLING_FREQUENCIES, null=True, blank=True
    )
    tax_rate = models.DecimalField(
        _("tax rate (%)"), max_digits=6, decimal_places=3, default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    archived = models.BooleanField(_("archived"), default=False)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return self.name


class LineItem(models.Model):
    """A product or custom item on a deal or a quote (R-OBJ-1).

    Subscriptions keep their own line items (copied at creation), so that a
    later change to a quote never changes what a subscription bills.
    """

    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.CASCADE, related_name="line_items")
    quote = models.ForeignKey("Quote", null=True, blank=True, on_delete=models.CASCADE, related_name="line_items")
    position = models.PositiveIntegerField(default=0)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"), default=1, validators=[MinValueValidator(1)])
    unit_price = models.BigIntegerField(_("unit price"), validators=[MinValueValidator(0)])
    currency = models.CharField(_("currency"), max_length=3)
    discount_percent = models.DecimalField(
        _("discount (%)"), max_digits=6, decimal_places=3, default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    tax_rate = models.DecimalField(
        _("tax rate (%)"), max_digits=6, decimal_places=3, default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
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


class Quote(Record):
    record_type = "quote"
    STATUSES = [
        ("draft", _("Draft")),
        ("published", _("Published")),
        ("accepted", _("Accepted")),
        ("paid", _("Paid")),
        ("expired", _("Expired")),
    ]
    tracked_fields = ("title", "status", "contact", "deal", "expires_on", "currency", "owner")

    title = models.CharField(_("title"), max_length=200)
    status = models.CharField(_("status"), max_length=20, choices=STATUSES, default="draft")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="quotes")
    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.SET_NULL, related_name="quotes")
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    public_token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("quote")
        verbose_name_plural = _("quotes")

    def __str__(self) -> str:
        return self.title
