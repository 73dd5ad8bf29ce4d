"""Forms of the contact, company, deal and product pages (R-OBJ-1). They check and convert input; the
services of ``recur.crm.services`` decide and write. A service error is put beside its field."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from recur.crm.models import BILLING_FREQUENCIES, CONTACT_LANGUAGES, Deal
from recur.web import forms as wf

_SPLIT = re.compile(r"[\s,;]+")


def split_list(text: str) -> list[str]:
    """One value a line (or separated by commas): e-mail addresses, domains."""
    return [v for v in _SPLIT.split(text or "") if v]


def _textarea(rows=2):
    return forms.Textarea(attrs={"rows": rows})


class ContactForm(wf.AddressMixin):
    name = forms.CharField(label=_("Name"), max_length=200,
                           error_messages={"required": _("Enter the contact's name.")})
    email = forms.EmailField(label=_("Primary e-mail"), required=False)
    other_emails = forms.CharField(label=_("Other e-mails"), required=False, widget=_textarea(),
                                   help_text=_("One address a line."))
    phone = forms.CharField(label=_("Phone"), max_length=50, required=False)
    language = forms.ChoiceField(label=_("Language"), choices=CONTACT_LANGUAGES, initial="en",
                                 help_text=_("E-mails to the contact are sent in this language."))
    company = forms.TypedChoiceField(label=_("Company"), coerce=int, required=False, empty_value=None)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        src = self.data if self.is_bound else self.initial
        self.fields["company"].choices = wf._company_choices(wf._int_or_none(src.get("company")))

    def clean_other_emails(self):
        values = split_list(self.cleaned_data.get("other_emails"))
        for v in values:
            try:
                forms.EmailField().clean(v)
            except forms.ValidationError:
                raise forms.ValidationError(_("“%(value)s” is not a valid e-mail address.") % {"value": v}) from None
        return values

    def service_data(self) -> dict:
        d = self.cleaned_data
        data = {"name": d["name"].strip(), "email": d.get("email") or None, "other_emails": d["other_emails"],
                "phone": d.get("phone", "").strip(), "language": d["language"]}
        data.update({k: (d.get(k) or "").strip() for k in wf.ADDRESS_FIELDS})
        return data


class CompanyForm(wf.AddressMixin):
    name = forms.CharField(label=_("Name"), max_length=200,
                           error_messages={"required": _("Enter the company's name.")})
    domains = forms.CharField(label=_("Domains"), required=False, widget=_textarea(),
                              help_text=_("One a line, such as example.com; the first is the primary domain."))
    phone = forms.CharField(label=_("Phone"), max_length=50, required=False)

    def service_data(self) -> dict:
        d = self.cleaned_data
        data = {"name": d["name"].strip(), "domains": split_list(d.get("domains")), "phone": d.get("phone", "").strip()}
        data.update({k: (d.get(k) or "").strip() for k in wf.ADDRESS_FIELDS})
        return data


class ProductForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200,
                           error_messages={"required": _("Enter the product's name.")})
    sku = forms.CharField(label=_("SKU"), max_length=100, required=False)
    description = forms.CharField(label=_("Description"), required=False, widget=_textarea(3))
    unit_price = wf.MoneyField(label=_("Unit price"), error_messages={"required": _("Enter the unit price.")})
    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in wf.CURRENCIES], initial="EUR")
    billing_frequency = forms.ChoiceField(label=_("Billing frequency"), required=False,
                                          choices=[("", _("One-time"))] + list(BILLING_FREQUENCIES))
    tax_rate = wf.PercentField(label=_("Tax rate (%)"))
    archived = forms.BooleanField(label=_("Archived"), required=False,
                                  help_text=_("An archived product can no longer be added to new line items."))

    def service_data(self) -> dict | None:
        d = self.cleaned_data
        price = wf.to_minor(d["unit_price"], d["currency"], self, "unit_price")
        if price is None:
            return None
        return {"name": d["name"].strip(), "sku": d.get("sku", "").strip() or None,
                "description": d.get("description", ""), "unit_price": price, "currency": d["currency"],
                "billing_frequency": d.get("billing_frequency") or None,
                "tax_rate": d["tax_rate"] if d.get("tax_rate") is not None else 0, "archived": bool(d.get("archived"))}


class DealForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, error_messages={"required": _("Enter the deal's name.")})
    amount = wf.MoneyField(label=_("Amount"), required=False)
    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in wf.CURRENCIES], initial="EUR")
    stage = forms.ChoiceField(label=_("Stage"), choices=Deal.STAGES, initial="appointment_scheduled")
    close_date = forms.DateField(label=_("Close date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    contact = forms.TypedChoiceField(label=_("Contact"), coerce=int, required=False, empty_value=None,
                                     help_text=_("Converting the deal bills this contact."))
    company = forms.TypedChoiceField(label=_("Company"), coerce=int, required=False, empty_value=None)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        src = self.data if self.is_bound else self.initial
        self.fields["contact"].choices = [("", _("No contact"))] + wf._contact_choices(
            wf._int_or_none(src.get("contact")))[1:]
        self.fields["company"].choices = wf._company_choices(wf._int_or_none(src.get("company")))

    def service_data(self) -> dict | None:
        d = self.cleaned_data
        amount = 0
        if d.get("amount") is not None:
            amount = wf.to_minor(d["amount"], d["currency"], self, "amount")
            if amount is None:
                return None
        return {"name": d["name"].strip(), "amount": amount, "currency": d["currency"], "stage": d["stage"],
                "close_date": d.get("close_date")}


class DealItemsForm(forms.Form):
    """The currency of a deal's line items (the rows are ``ScheduledItemForm``s)."""

    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in wf.CURRENCIES], initial="EUR")
