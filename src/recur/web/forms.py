"""Forms of the seller pages. They check and convert input; services decide and write.

Errors raised by services (``ValidationFailed`` with a field such as
``line_items[0].unit_price``) are put beside the matching input by
``add_service_error``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from recur.core import account
from recur.core.money import currency_exponent, parse_amount, validate_currency
from recur.crm.models import BILLING_FREQUENCIES, BILLING_TERMS, Company, Contact, Product
from recur.subscriptions.models import CANCEL_MODES, PAYMENT_TERMS

CURRENCIES = ["EUR", "USD", "GBP", "CHF", "SEK", "DKK", "NOK", "PLN", "CZK", "JPY", "CAD", "AUD"]
ADDRESS_FIELDS = ("address_line1", "address_line2", "postal_code", "city", "region", "country")


def money_text(minor: int, currency: str) -> str:
    """Minor units as the plain decimal a user types back ("49.00")."""
    exp = currency_exponent(currency)
    return f"{Decimal(minor).scaleb(-exp):.{exp}f}"


class MoneyField(forms.CharField):
    """An amount typed in major units ("49.00" or "49,00"); cleaned to a Decimal string.
    The currency is applied by the form (``to_minor``)."""

    default_error_messages = {"invalid": _("Enter an amount such as 49.00.")}

    def clean(self, value):
        value = super().clean(value)
        if value in ("", None):
            return None
        text = str(value).strip().replace(" ", "")
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        if not re.fullmatch(r"\d+(\.\d+)?", text):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return text


def to_minor(text: str, currency: str, form: forms.Form, field: str) -> int | None:
    try:
        return parse_amount(text, currency)
    except ValueError:
        form.add_error(field, _("Use at most %(n)s decimals for %(cur)s.") % {
            "n": currency_exponent(currency), "cur": currency})
        return None


def service_message(exc) -> str:
    """A service error's message without its leading "field: " (the form shows it beside the field)."""
    message = exc.message
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2:]
    return message[:1].upper() + message[1:]


def add_service_error(form: forms.Form, exc, mapping: dict[str, str] | None = None) -> None:
    """Put a service error beside its input: ``exc.field`` through ``mapping`` or by name."""
    field = exc.field or ""
    target = (mapping or {}).get(field, field)
    form.add_error(target if target in form.fields else None, service_message(exc))


class PercentField(forms.DecimalField):
    def __init__(self, **kw):
        super().__init__(min_value=0, max_value=100, max_digits=6, decimal_places=3, required=False, **kw)


# --- line items -----------------------------------------------------------------------------


class ItemForm(forms.Form):
    """One line item row (wizard and edit)."""

    product = forms.TypedChoiceField(label=_("Product"), required=False, coerce=int, empty_value=None)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    unit_price = MoneyField(label=_("Unit price"), required=False)
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=1_000_000, initial=1)
    discount_percent = PercentField(label=_("Discount (%)"))
    tax_rate = PercentField(label=_("Tax rate (%)"))
    remove = forms.BooleanField(label=_("Remove"), required=False)

    def __init__(self, *args, products=(), **kw):
        super().__init__(*args, **kw)
        self.fields["product"].choices = [("", _("Custom line item"))] + [
            (p.pk, f"{p.name} ({p.currency})") for p in products]

    @property
    def blank(self) -> bool:
        if not self.is_bound:
            return True
        d = self.data
        p = self.prefix + "-"
        return not any((d.get(p + n) or "").strip() for n in ("product", "name", "unit_price"))

    def clean(self):
        data = super().clean()
        if data.get("remove"):
            return data
        if not data.get("product") and not (data.get("name") or "").strip() and not self.blank:
            self.add_error("name", _("Enter a name or choose a product."))
        if not data.get("product") and data.get("unit_price") is None and not self.blank and "unit_price" not in self.errors:
            self.add_error("unit_price", _("Enter a price or choose a product."))
        return data


def product_choices():
    return list(Product.objects.filter(archived=False).order_by("name")[:500])


def item_forms(data, count: int, products, initial: list[dict] | None = None) -> list[ItemForm]:
    forms_ = []
    for i in range(count):
        init = (initial or [])[i] if initial and i < len(initial) else None
        forms_.append(ItemForm(data, prefix=f"item-{i}", products=products, initial=init)
                      if data is not None else ItemForm(prefix=f"item-{i}", products=products, initial=init))
    return forms_


def item_dicts(items: list[ItemForm], currency: str) -> list[tuple[int, dict]]:
    """(row index, service line item) of each filled, not removed row; money in minor units."""
    out = []
    for i, f in enumerate(items):
        d = f.cleaned_data
        if f.blank or d.get("remove"):
            continue
        item = {"quantity": d.get("quantity") or 1}
        if d.get("product"):
            item["product_id"] = d["product"]
        if (d.get("name") or "").strip():
            item["name"] = d["name"].strip()
        if d.get("unit_price") is not None:
            minor = to_minor(d["unit_price"], currency, f, "unit_price")
            if minor is None:
                continue
            item["unit_price"], item["currency"] = minor, currency
        if d.get("discount_percent") is not None:
            item["discount_percent"] = d["discount_percent"]
        if d.get("tax_rate") is not None:
            item["tax_rate"] = d["tax_rate"]
        out.append((i, item))
    return out


def item_field_map(rows: list[tuple[int, dict]]) -> dict[str, tuple[int, str | None]]:
    """Service field ``line_items[k].x`` → (form row, form field)."""
    names = {"name": "name", "unit_price": "unit_price", "unit_price.currency": "unit_price", "quantity": "quantity",
             "discount_percent": "discount_percent", "tax_rate": "tax_rate", "product_id": "product"}
    out = {}
    for k, (row, _) in enumerate(rows):
        out[f"line_items[{k}]"] = (row, None)
        for svc, mine in names.items():
            out[f"line_items[{k}].{svc}"] = (row, mine)
    return out


# --- addresses ------------------------------------------------------------------------------


class AddressMixin(forms.Form):
    address_line1 = forms.CharField(label=_("Address"), max_length=200, required=False)
    address_line2 = forms.CharField(label=_("Address line 2"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=20, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    region = forms.CharField(label=_("State/region"), max_length=100, required=False)
    country = forms.CharField(label=_("Country (ISO code)"), max_length=2, min_length=2, required=False)

    def clean_country(self):
        value = (self.cleaned_data.get("country") or "").strip().upper()
        if value and not value.isalpha():
            raise forms.ValidationError(_("Enter a two-letter country code such as NL."))
        return value

    def address(self) -> dict:
        return {k: self.cleaned_data.get(k, "").strip() for k in ADDRESS_FIELDS if self.cleaned_data.get(k, "").strip()}


def _contact_choices(selected: int | None, q: str = ""):
    qs = Contact.objects.order_by("name", "pk")
    if q:
        qs = qs.filter(name__icontains=q) | Contact.objects.filter(email__icontains=q)
        qs = qs.order_by("name", "pk")
    rows = list(qs[:200])
    if selected and all(c.pk != selected for c in rows):
        extra = Contact.objects.filter(pk=selected).first()
        if extra:
            rows.insert(0, extra)
    return [("", _("Choose a contact…"))] + [(c.pk, f"{c.name} <{c.email}>" if c.email else c.name) for c in rows]


def _company_choices(selected: int | None):
    rows = list(Company.objects.order_by("name", "pk")[:500])
    if selected and all(c.pk != selected for c in rows):
        extra = Company.objects.filter(pk=selected).first()
        if extra:
            rows.insert(0, extra)
    return [("", _("No company"))] + [(c.pk, c.name) for c in rows]


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- create subscription (R-NEW-3) ----------------------------------------------------------


class WizardForm(AddressMixin):
    contact = forms.TypedChoiceField(label=_("Billing contact"), coerce=int,
                                     error_messages={"required": _("Choose the billing contact.")})
    contact_q = forms.CharField(label=_("Search contacts"), required=False)
    company = forms.TypedChoiceField(label=_("Company"), coerce=int, required=False, empty_value=None)
    deal = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(label=_("Subscription name"), max_length=200, required=False,
                           help_text=_("Optional; by default the name of the first line item."))
    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in CURRENCIES], initial="EUR")
    billing_frequency = forms.ChoiceField(label=_("Billing frequency"), choices=BILLING_FREQUENCIES, initial="monthly")
    billing_terms = forms.ChoiceField(label=_("Billing terms"), choices=BILLING_TERMS, initial="auto_renew",
                                      widget=forms.RadioSelect)
    number_of_payments = forms.IntegerField(label=_("Number of payments"), min_value=1, max_value=1000,
                                            required=False)
    start = forms.ChoiceField(label=_("Billing starts"), widget=forms.RadioSelect, initial="today", choices=[
        ("today", _("Today")), ("date", _("On a date")), ("delay", _("After a delay"))])
    start_date = forms.DateField(label=_("Start date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    delay_amount = forms.IntegerField(label=_("Delay"), min_value=1, max_value=3650, required=False)
    delay_unit = forms.ChoiceField(label=_("Unit"), choices=[("days", _("days")), ("months", _("months"))],
                                   initial="days", required=False)
    collection = forms.ChoiceField(label=_("Collection method"), widget=forms.RadioSelect, initial="auto_charge",
                                   choices=[("auto_charge", _("Charge a saved payment method automatically")),
                                            ("manual", _("Send invoices and collect manually"))])
    payment_method = forms.TypedChoiceField(label=_("Payment method"), coerce=int, required=False, empty_value=None)
    payment_terms = forms.ChoiceField(label=_("Payment terms"), choices=PAYMENT_TERMS, initial="due_on_receipt")
    accept_online_payments = forms.BooleanField(label=_("Accept online payments"), required=False, initial=True)
    accepted_payment_methods = forms.MultipleChoiceField(
        label=_("Accepted payment methods"), required=False, widget=forms.CheckboxSelectMultiple,
        initial=account.default_payment_methods, choices=[("card", _("Card")), ("bank_account", _("Bank debit"))])
    collect_billing_address = forms.BooleanField(label=_("Collect billing address"), required=False)
    collect_shipping_address = forms.BooleanField(label=_("Collect shipping address"), required=False)
    save_payment_method = forms.BooleanField(label=_("Save payment method for future charges"), required=False)

    COLLECTION_OPTIONS = ("collect_billing_address", "collect_shipping_address", "save_payment_method")

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        src = self.data if self.is_bound else self.initial
        contact = _int_or_none(src.get("contact"))
        self.fields["contact"].choices = _contact_choices(contact, (src.get("contact_q") or "").strip())
        self.fields["company"].choices = _company_choices(_int_or_none(src.get("company")))
        from recur.payments.models import PaymentMethod

        methods = PaymentMethod.objects.filter(contact_id=contact, removed_at__isnull=True).order_by("-pk") \
            if contact else PaymentMethod.objects.none()
        self.fields["payment_method"].choices = [("", _("Choose a saved payment method…"))] + [
            (m.pk, method_label(m)) for m in methods]
        self.has_methods = bool(methods)

    def clean(self):
        data = super().clean()
        if data.get("billing_terms") == "fixed" and not data.get("number_of_payments") \
                and "number_of_payments" not in self.errors:  # one message: 0 has its own already
            self.add_error("number_of_payments", _("Enter how many payments a fixed term has."))
        if data.get("start") == "date" and not data.get("start_date") and "start_date" not in self.errors:
            self.add_error("start_date", _("Enter the date billing starts."))
        if data.get("start") == "delay" and not data.get("delay_amount") and "delay_amount" not in self.errors:
            self.add_error("delay_amount", _("Enter the delay."))
        if data.get("collection") == "auto_charge" and not data.get("payment_method"):
            self.add_error("payment_method", _("Choose one of the contact's saved payment methods.")
                           if self.has_methods else
                           _("This contact has no saved payment method: collect manually, or add a card first."))
        if data.get("collection") == "manual" and data.get("accept_online_payments") \
                and not data.get("accepted_payment_methods"):
            self.add_error("accepted_payment_methods", _("Choose at least one payment method the buyer may use."))
        return data

    def schedule_fields(self) -> dict:
        """The R-SIGN-4 fields every line item shares."""
        d = self.cleaned_data
        out = {"billing_frequency": d["billing_frequency"], "billing_terms": d["billing_terms"]}
        if d["billing_terms"] == "fixed":
            out["number_of_payments"] = d.get("number_of_payments")
        if d.get("start") == "date" and d.get("start_date"):
            out["billing_start_date"] = d["start_date"]
        elif d.get("start") == "delay" and d.get("delay_amount"):
            key = "billing_start_delay_months" if d.get("delay_unit") == "months" else "billing_start_delay_days"
            out[key] = d["delay_amount"]
        return out

    def service_data(self, items: list[dict]) -> dict:
        d = self.cleaned_data
        shared = self.schedule_fields()
        data = {
            "contact_id": d["contact"], "company_id": d.get("company"), "name": d.get("name") or "",
            "collection": d["collection"], "billing_address": self.address(),
            "line_items": [{**it, **shared} for it in items],
        }
        if d.get("deal"):
            data["deal_ids"] = [d["deal"]]
        if d["collection"] == "auto_charge":
            data["payment_method_id"] = d.get("payment_method")
        else:
            data.update(payment_terms=d["payment_terms"], accept_online_payments=bool(d.get("accept_online_payments")),
                        accepted_payment_methods=d.get("accepted_payment_methods") or ["card", "bank_account"],
                        **{k: bool(d.get(k)) for k in self.COLLECTION_OPTIONS})
        return data


WIZARD_FIELD_MAP = {
    "contact_id": "contact", "company_id": "company", "payment_method_id": "payment_method",
    "payment_terms": "payment_terms", "accepted_payment_methods": "accepted_payment_methods",
    "collection": "collection", "name": "name",
    "line_items[0].billing_frequency": "billing_frequency", "line_items[0].billing_terms": "billing_terms",
    "line_items[0].number_of_payments": "number_of_payments", "line_items[0].billing_start_date": "start_date",
    "line_items[0].billing_start_delay_days": "delay_amount", "line_items[0].billing_start_delay_months": "delay_amount",
}


def method_label(m) -> str:
    if m.type == "card":
        exp = f" · {m.exp_month:02d}/{m.exp_year}" if m.exp_month and m.exp_year else ""
        return f"{(m.brand or 'card').title()} ···· {m.last4}{exp}"
    return f"{_('Bank account')} ···· {m.last4}"


# --- edit (R-MAN-1) ---------------------------------------------------------------------------


class EditForm(AddressMixin):
    name = forms.CharField(label=_("Subscription name"), max_length=200)
    next_payment_date = forms.DateField(label=_("Next payment date"), required=False,
                                        widget=forms.DateInput(attrs={"type": "date"}))
    contact = forms.TypedChoiceField(label=_("Billing contact"), coerce=int)
    contact_q = forms.CharField(label=_("Search contacts"), required=False)
    payment_method = forms.TypedChoiceField(label=_("Payment method"), coerce=int, required=False, empty_value=None)
    payment_terms = forms.ChoiceField(label=_("Payment terms"), choices=PAYMENT_TERMS, required=False)
    prorate = forms.BooleanField(label=_("Prorate the change for the current period"), required=False)
    # manual collection: how the hosted invoice page takes payment (R-NEW-3)
    accept_online_payments = forms.BooleanField(label=_("Accept online payments"), required=False)
    accepted_payment_methods = forms.MultipleChoiceField(
        label=_("Accepted payment methods"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[("card", _("Card")), ("bank_account", _("Bank debit"))])
    collect_billing_address = forms.BooleanField(label=_("Collect billing address"), required=False)
    collect_shipping_address = forms.BooleanField(label=_("Collect shipping address"), required=False)
    save_payment_method = forms.BooleanField(label=_("Save payment method for future charges"), required=False)

    COLLECTION_OPTIONS = ("collect_billing_address", "collect_shipping_address", "save_payment_method")

    def __init__(self, *args, sub, **kw):
        super().__init__(*args, **kw)
        self.manual = sub.collection == "manual"
        src = self.data if self.is_bound else self.initial
        contact = _int_or_none(src.get("contact")) or sub.contact_id
        self.fields["contact"].choices = _contact_choices(contact, (src.get("contact_q") or "").strip())
        from recur.payments.models import PaymentMethod

        methods = PaymentMethod.objects.filter(contact_id=sub.contact_id, removed_at__isnull=True).order_by("-pk")
        self.fields["payment_method"].choices = [("", "—")] + [(m.pk, method_label(m)) for m in methods]

    def clean(self):
        data = super().clean()
        if self.manual and data.get("accept_online_payments") and not data.get("accepted_payment_methods"):
            self.add_error("accepted_payment_methods", _("Choose at least one payment method the buyer may use."))
        return data

    def collection_changes(self, sub) -> dict:
        """The manual-collection options that differ from the subscription's."""
        if not self.manual:
            return {}
        d = self.cleaned_data
        out = {}
        for name in ("accept_online_payments", *self.COLLECTION_OPTIONS):
            if bool(d.get(name)) != getattr(sub, name):
                out[name] = bool(d.get(name))
        methods = [m for m in ("card", "bank_account") if m in (d.get("accepted_payment_methods") or [])]
        if d.get("accept_online_payments") and methods != list(sub.accepted_payment_methods or []):
            out["accepted_payment_methods"] = methods
        return out


EDIT_FIELD_MAP = {"contact_id": "contact", "payment_method_id": "payment_method", "next_payment_date":
                  "next_payment_date", "payment_terms": "payment_terms", "name": "name",
                  "accepted_payment_methods": "accepted_payment_methods"}


# --- cancel, refund, saved views ----------------------------------------------------------------


class CancelForm(forms.Form):
    mode = forms.ChoiceField(label=_("When"), choices=CANCEL_MODES, widget=forms.RadioSelect,
                             error_messages={"required": _("Choose when the subscription ends.")})
    confirm = forms.BooleanField(label=_("I understand the customer will not be charged again"),
                                 error_messages={"required": _("Tick this box to confirm the cancellation.")})


class RefundForm(forms.Form):
    amount = MoneyField(label=_("Amount to refund"), error_messages={"required": _("Enter the amount to refund.")})
    reason = forms.CharField(label=_("Reason (optional)"), max_length=200, required=False)


class ViewNameForm(forms.Form):
    name = forms.CharField(label=_("View name"), max_length=100,
                           error_messages={"required": _("Give the view a name.")})


def initial_from(data, form: forms.Form) -> dict:
    """The values of a bound form as ``initial`` of an unbound one (to re-show input without errors)."""
    init = {}
    for name, f in form.fields.items():
        key = form.add_prefix(name)
        if isinstance(f, forms.MultipleChoiceField):
            init[name] = data.getlist(key)
        elif isinstance(f, forms.BooleanField):
            init[name] = data.get(key) not in (None, "", "false", "0", "off")
        elif key in data:
            init[name] = data.get(key)
    return init


def parse_iso(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def currency_ok(code: str) -> bool:
    try:
        validate_currency(code)
        return True
    except ValueError:
        return False
