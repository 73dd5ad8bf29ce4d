"""Forms of the payment-link, quote and payment-method pages. They check and convert input; the
services (checkout.payment_links, crm.quotes, subscriptions.conversions, payments.services) decide
and write."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from recur.core import account
from recur.crm.models import BILLING_FREQUENCIES, BILLING_TERMS, Deal
from recur.subscriptions.models import PAYMENT_TERMS
from recur.web import forms as wf

METHOD_CHOICES = [("card", _("Card")), ("bank_account", _("Bank debit"))]


class ScheduledItemForm(wf.ItemForm):
    """A line item with its own billing schedule (R-SIGN-4): recurring or one-time."""

    billing_frequency = forms.ChoiceField(
        label=_("Billing frequency"), required=False, initial="",
        choices=[("", _("As the product (custom: one-time)")), ("one_time", _("One-time"))] + list(BILLING_FREQUENCIES))
    billing_terms = forms.ChoiceField(label=_("Billing terms"), choices=BILLING_TERMS, initial="auto_renew",
                                      required=False)
    number_of_payments = forms.IntegerField(label=_("Number of payments"), min_value=1, max_value=1000,
                                            required=False)
    start_date = forms.DateField(label=_("Start date"), required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}))
    delay_days = forms.IntegerField(label=_("Start after (days)"), min_value=0, max_value=3650, required=False)

    def clean(self):
        data = super().clean()
        if data.get("remove") or self.blank:
            return data
        if data.get("billing_terms") == "fixed" and data.get("billing_frequency") != "one_time" \
                and not data.get("number_of_payments") and "number_of_payments" not in self.errors:
            self.add_error("number_of_payments", _("Enter how many payments a fixed term has."))
        if data.get("start_date") and data.get("delay_days"):
            self.add_error("delay_days", _("Give a start date or a delay, not both."))
        return data


SCHEDULE_FIELDS = {"billing_frequency": "billing_frequency", "billing_terms": "billing_terms",
                   "number_of_payments": "number_of_payments", "billing_start_date": "start_date",
                   "billing_start_delay_days": "delay_days", "billing_start_delay_months": "delay_days"}


def scheduled_item_forms(data, count: int, products) -> list[ScheduledItemForm]:
    return [ScheduledItemForm(data, prefix=f"item-{i}", products=products) if data is not None
            else ScheduledItemForm(prefix=f"item-{i}", products=products) for i in range(count)]


def scheduled_items(items: list[ScheduledItemForm], currency: str) -> list[tuple[int, dict]]:
    """(row, service line item) of each filled row, with its schedule; money in minor units."""
    out = []
    for row, item in wf.item_dicts(items, currency):
        d = items[row].cleaned_data
        freq = d.get("billing_frequency") or ""
        if freq == "one_time":
            item["billing_frequency"] = ""  # one-time even for a recurring product
        elif freq:
            item["billing_frequency"] = freq
        if freq != "one_time":
            item["billing_terms"] = d.get("billing_terms") or "auto_renew"
            if item["billing_terms"] == "fixed":
                item["number_of_payments"] = d.get("number_of_payments")
            if d.get("start_date"):
                item["billing_start_date"] = d["start_date"]
            elif d.get("delay_days"):
                item["billing_start_delay_days"] = d["delay_days"]
        out.append((row, item))
    return out


def map_item_error(form: forms.Form, items: list[ScheduledItemForm], rows, exc, mapping: dict) -> None:
    """A service error beside its input: a line item's field, else the form's field, else on top."""
    field = exc.field or ""
    target = wf.item_field_map(rows).get(field)
    m = re.fullmatch(r"line_items\[(\d+)\]\.(\w+)", field)
    if target is None and m and int(m.group(1)) < len(rows) and m.group(2) in SCHEDULE_FIELDS:
        target = (rows[int(m.group(1))][0], SCHEDULE_FIELDS[m.group(2)])
    if target is not None:
        row, name = target
        items[row].add_error(name, wf.service_message(exc))
    else:
        wf.add_service_error(form, exc, mapping)


class PaymentLinkForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False,
                           help_text=_("Shown to the buyer; by default the name of the first line item."))
    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in wf.CURRENCIES], initial="EUR")
    accepted_payment_methods = forms.MultipleChoiceField(
        label=_("Accepted payment methods"), widget=forms.CheckboxSelectMultiple, choices=METHOD_CHOICES,
        initial=account.default_payment_methods,
        error_messages={"required": _("Choose at least one payment method the buyer may use.")})
    collect_billing_address = forms.BooleanField(label=_("Collect billing address"), required=False)
    collect_shipping_address = forms.BooleanField(label=_("Collect shipping address"), required=False)

    def service_data(self, items: list[dict]) -> dict:
        d = self.cleaned_data
        return {"name": d.get("name") or "", "line_items": items,
                "accepted_payment_methods": d["accepted_payment_methods"],
                "collect_billing_address": bool(d.get("collect_billing_address")),
                "collect_shipping_address": bool(d.get("collect_shipping_address"))}


LINK_FIELD_MAP = {"name": "name", "accepted_payment_methods": "accepted_payment_methods",
                  "collect_billing_address": "collect_billing_address",
                  "collect_shipping_address": "collect_shipping_address"}


class QuoteForm(forms.Form):
    contact = forms.TypedChoiceField(label=_("Contact"), coerce=int,
                                     error_messages={"required": _("Choose the contact the quote is for.")})
    deal = forms.TypedChoiceField(label=_("Deal"), coerce=int, required=False, empty_value=None)
    title = forms.CharField(label=_("Title"), max_length=200, required=False,
                            help_text=_("By default “Quote for” and the contact's name."))
    expires_on = forms.DateField(label=_("Expires on"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in wf.CURRENCIES], initial="EUR")

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        src = self.data if self.is_bound else self.initial
        self.fields["contact"].choices = wf._contact_choices(wf._int_or_none(src.get("contact")))
        self.fields["deal"].choices = [("", _("No deal"))] + [
            (d.pk, d.name) for d in Deal.objects.order_by("-pk")[:500]]

    def service_data(self, items: list[dict]) -> dict:
        d = self.cleaned_data
        data = {"contact_id": d["contact"], "title": d.get("title") or "", "expires_on": d.get("expires_on"),
                "line_items": items}
        if d.get("deal"):
            data["deal_id"] = d["deal"]
        return data


QUOTE_FIELD_MAP = {"contact_id": "contact", "deal_id": "deal", "expires_on": "expires_on", "title": "title"}


class ConvertForm(forms.Form):
    """How the subscriptions made from a quote are collected (R-NEW-6)."""

    collection = forms.ChoiceField(label=_("Collection method"), widget=forms.RadioSelect, initial="manual",
                                   choices=[("auto_charge", _("Charge a saved payment method automatically")),
                                            ("manual", _("Send invoices and collect manually"))])
    payment_method = forms.TypedChoiceField(label=_("Payment method"), coerce=int, required=False, empty_value=None)
    payment_terms = forms.ChoiceField(label=_("Payment terms"), choices=PAYMENT_TERMS, initial="due_on_receipt")

    def __init__(self, *args, contact=None, **kw):
        super().__init__(*args, **kw)
        from recur.payments.models import PaymentMethod

        methods = PaymentMethod.objects.filter(contact=contact, removed_at__isnull=True).order_by("-pk") \
            if contact else PaymentMethod.objects.none()
        self.fields["payment_method"].choices = [("", _("Choose a saved payment method…"))] + [
            (m.pk, wf.method_label(m)) for m in methods]
        self.has_methods = bool(methods)

    def clean(self):
        data = super().clean()
        if data.get("collection") == "auto_charge" and not data.get("payment_method"):
            self.add_error("payment_method", _("Choose one of the contact's saved payment methods.")
                           if self.has_methods else
                           _("This contact has no saved payment method: collect manually, or add a card first."))
        return data

    def options(self) -> dict:
        d = self.cleaned_data
        if d["collection"] == "auto_charge":
            return {"collection": "auto_charge", "payment_method_id": d["payment_method"]}
        return {"collection": "manual", "payment_terms": d["payment_terms"], "accept_online_payments": True,
                "accepted_payment_methods": account.default_payment_methods()}


CONVERT_FIELD_MAP = {"payment_method_id": "payment_method", "payment_terms": "payment_terms",
                     "collection": "collection"}
