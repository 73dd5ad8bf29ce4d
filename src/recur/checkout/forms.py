"""The buyer's card / bank-account form. It checks the details in the buyer's
language before they reach the processor, and turns the processor's field
errors back into messages beside the right field (R-ALL-3, R-ALL-4).

The card number and CVC are never rendered back into the page."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext, gettext_lazy as _

from recur.core import clock

# The processor's field names (payments.services) → this form's fields.
SERVICE_FIELDS = {
    "card.number": "card_number", "card.exp_month": "card_exp_month", "card.exp_year": "card_exp_year",
    "card.cvc": "card_cvc", "card": "card_number", "bank_account.routing_number": "bank_routing",
    "bank_account.account_number": "bank_account", "bank_account.holder_name": "bank_holder",
    "bank_account": "bank_account", "type": "method",
}
MESSAGES = {
    "card_number": _("This card number is not valid."),
    "card_exp_month": _("Enter the expiry date."),
    "card_exp_year": _("Enter a valid expiry date."),
    "card_cvc": _("Enter the 3 or 4 digit security code."),
    "card_name": _("Enter the name on the card."),
    "bank_routing": _("This routing number is not accepted."),
    "bank_account": _("Enter an account number of 4 to 17 digits."),
    "bank_holder": _("Enter the account holder's name."),
    "method": _("Choose a payment method."),
}
EXPIRED = _("This card has expired.")
REQUIRED = _("This field is required.")
METHOD_LABELS = {"card": _("Card"), "bank_account": _("Bank account")}


def without_field(exc) -> str:
    """A service error's message without its leading "<field>: " (the page shows it beside the field or
    above the form); the services keep that English prefix in every language."""
    message = exc.message or ""
    if exc.field and message.startswith(f"{exc.field}: "):
        message = message[len(exc.field) + 2:]
    return message[:1].upper() + message[1:]


def is_required_error(exc) -> bool:
    """Whether a checkout service refused ``exc.field`` because it is empty: recognised by the
    service's own message in the language active now (the one it was raised in) or in English,
    never by a word of it, so it works whatever language the buyer reads."""
    field = exc.field or ""
    known = {"name": "name: enter your name", "email": "email: enter your e-mail address"}
    candidates = {"%(field)s: this field is required" % {"field": field}, known.get(field, "")}
    candidates |= {gettext("%(field)s: this field is required") % {"field": field}}
    if field in known:
        candidates.add(gettext(known[field]))
    return exc.message in candidates - {""}


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class PaymentDetailsForm(forms.Form):
    method = forms.ChoiceField(label=_("Payment method"), choices=())
    card_number = forms.CharField(label=_("Card number"), required=False, max_length=30)
    card_exp_month = forms.CharField(label=_("Expiry month"), required=False, max_length=2)
    card_exp_year = forms.CharField(label=_("Expiry year"), required=False, max_length=4)
    card_cvc = forms.CharField(label=_("CVC"), required=False, max_length=4)
    card_name = forms.CharField(label=_("Name on card"), required=False, max_length=200)
    bank_holder = forms.CharField(label=_("Account holder"), required=False, max_length=200)
    bank_routing = forms.CharField(label=_("Routing number"), required=False, max_length=20)
    bank_account = forms.CharField(label=_("Account number"), required=False, max_length=30)

    CARD = ("card_number", "card_exp_month", "card_exp_year", "card_cvc", "card_name")
    BANK = ("bank_holder", "bank_routing", "bank_account")

    def __init__(self, *args, accepted: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted = accepted
        self.fields["method"].choices = [(m, METHOD_LABELS[m]) for m in accepted]
        self.fields["method"].error_messages["invalid_choice"] = MESSAGES["method"]
        if not self.is_bound:
            self.initial.setdefault("method", accepted[0])

    # --- for the template ---------------------------------------------------------------

    @property
    def chosen(self) -> str:
        value = self.data.get("method") if self.is_bound else self.initial.get("method")
        return value if value in self.accepted else self.accepted[0]

    @property
    def safe_values(self) -> dict[str, str]:
        """What the buyer typed, to show again after an error; never the card number or CVC."""
        if not self.is_bound:
            return {}
        return {name: str(self.data.get(name, "")).strip() for name in self.fields
                if name not in ("card_number", "card_cvc")}

    @staticmethod
    def months() -> list[str]:
        return [f"{m:02d}" for m in range(1, 13)]

    @staticmethod
    def years() -> list[str]:
        this = clock.today().year
        return [str(y) for y in range(this, this + 21)]

    # --- checks ------------------------------------------------------------------------------

    def clean(self):
        data = super().clean()
        method = data.get("method")
        if method == "card":
            self._clean_card(data)
        elif method == "bank_account":
            self._clean_bank(data)
        return data

    def _need(self, data: dict, names) -> bool:
        ok = True
        for name in names:
            if not (data.get(name) or "").strip():
                self.add_error(name, REQUIRED)
                ok = False
        return ok

    def _clean_card(self, data: dict) -> None:
        self._need(data, ("card_number", "card_cvc", "card_name"))
        number = re.sub(r"[\s-]", "", data.get("card_number") or "")
        if number and (not re.fullmatch(r"[0-9]{12,19}", number) or not luhn_ok(number)):
            self.add_error("card_number", MESSAGES["card_number"])
        month, year = (data.get("card_exp_month") or "").strip(), (data.get("card_exp_year") or "").strip()
        if not month or not year:
            self.add_error("card_exp_month", MESSAGES["card_exp_month"])
        elif not (month.isdigit() and 1 <= int(month) <= 12):
            self.add_error("card_exp_month", MESSAGES["card_exp_month"])
        elif not (year.isdigit() and len(year) in (2, 4)):
            self.add_error("card_exp_year", MESSAGES["card_exp_year"])
        else:
            y = int(year) + (2000 if len(year) == 2 else 0)
            today = clock.today()
            if (y, int(month)) < (today.year, today.month):
                self.add_error("card_exp_year" if y < today.year else "card_exp_month", EXPIRED)
        cvc = (data.get("card_cvc") or "").strip()
        if cvc and not re.fullmatch(r"[0-9]{3,4}", cvc):
            self.add_error("card_cvc", MESSAGES["card_cvc"])

    def _clean_bank(self, data: dict) -> None:
        self._need(data, self.BANK)
        routing = re.sub(r"[\s-]", "", data.get("bank_routing") or "")
        if routing and not re.fullmatch(r"[0-9]{9}", routing):
            self.add_error("bank_routing", MESSAGES["bank_routing"])
        account = re.sub(r"[\s-]", "", data.get("bank_account") or "")
        if account and not re.fullmatch(r"[0-9]{4,17}", account):
            self.add_error("bank_account", MESSAGES["bank_account"])

    # --- to the service ------------------------------------------------------------------------

    def details(self) -> dict:
        """The details in the shape of ``payments.services.add_payment_method``."""
        d = self.cleaned_data
        if d["method"] == "card":
            year = d["card_exp_year"].strip()
            return {"type": "card", "card": {
                "number": re.sub(r"[\s-]", "", d["card_number"]), "exp_month": int(d["card_exp_month"]),
                "exp_year": int(year) + (2000 if len(year) == 2 else 0), "cvc": d["card_cvc"].strip(),
                "name": d.get("card_name", "").strip()}}
        return {"type": "bank_account", "bank_account": {
            "holder_name": d["bank_holder"].strip(), "routing_number": re.sub(r"[\s-]", "", d["bank_routing"]),
            "account_number": re.sub(r"[\s-]", "", d["bank_account"])}}

    def add_service_error(self, exc) -> None:
        """A ``ValidationFailed`` from the processor, beside the field it names, in the buyer's language."""
        name = SERVICE_FIELDS.get(exc.field or "")
        if name is None:
            self.add_error(None, _("These payment details were not accepted. Please check them and try again."))
            return
        message = EXPIRED if name in ("card_exp_month", "card_exp_year") and self._expired(exc) else MESSAGES[name]
        self.add_error(name, message)

    def _expired(self, exc) -> bool:
        """The processor refused the expiry date because it has passed: the date the buyer typed is
        before this month, or the processor said so (its message in the active language or English)."""
        month = str(self.data.get("card_exp_month") or "").strip()
        year = str(self.data.get("card_exp_year") or "").strip()
        if month.isdigit() and year.isdigit() and len(year) in (2, 4):
            today = clock.today()
            if (int(year) + (2000 if len(year) == 2 else 0), int(month)) < (today.year, today.month):
                return True
        said = {f"{exc.field}: the card has expired",
                gettext("%(field)s: the card has expired") % {"field": exc.field}}
        return exc.message in said


# Why Stripe.js could not set the card up (its error's decline_code or code), in the buyer's language.
CARD_ERRORS = {
    "card_declined": _("Your card was declined."),
    "generic_decline": _("Your card was declined."),
    "insufficient_funds": _("Your card has insufficient funds."),
    "expired_card": _("Your card has expired."),
    "incorrect_cvc": MESSAGES["card_cvc"],
    "invalid_cvc": MESSAGES["card_cvc"],
    "incorrect_number": MESSAGES["card_number"],
    "invalid_number": MESSAGES["card_number"],
    "processing_error": _("The payment could not be processed. Please try again."),
}
CARD_NOT_SAVED = _("Your card could not be saved. Please check the details or use another card.")
BANK_NOT_SAVED = _("This bank account could not be saved. Please check the IBAN and the account holder's name.")
ENTER_CARD = _("Enter your card details.")
ENTER_IBAN = _("Enter the IBAN of your bank account.")


class ProcessorTokenForm(forms.Form):
    """The payment form when the processor collects the details itself (Stripe.js, ``MethodEntry.mode
    == "stripe"``): the card number or IBAN goes from the buyer's browser to the processor only; this
    form receives the PaymentMethod id and the SetupIntent that made it, or the code of the error
    Stripe.js met (shown in the buyer's language)."""

    method = forms.ChoiceField(label=_("Payment method"), choices=())
    card_name = forms.CharField(label=_("Name on card"), required=False, max_length=200)
    bank_holder = forms.CharField(label=_("Account holder"), required=False, max_length=200)
    payment_method = forms.CharField(required=False, max_length=255)
    setup_intent = forms.CharField(required=False, max_length=255)
    stripe_error = forms.CharField(required=False, max_length=60)

    def __init__(self, *args, methods: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted = list(methods)
        self.fields["method"].choices = [(m, METHOD_LABELS[m]) for m in self.accepted]
        self.fields["method"].error_messages["invalid_choice"] = MESSAGES["method"]
        if self.accepted and not self.is_bound:
            self.initial.setdefault("method", self.accepted[0])

    @property
    def chosen(self) -> str:
        value = self.data.get("method") if self.is_bound else self.initial.get("method")
        return value if value in self.accepted else (self.accepted[0] if self.accepted else "")

    @property
    def safe_values(self) -> dict[str, str]:
        if not self.is_bound:
            return {}
        return {name: str(self.data.get(name, "")).strip() for name in ("card_name", "bank_holder")}

    def clean(self):
        data = super().clean()
        code = (data.get("stripe_error") or "").strip()
        bank = data.get("method") == "bank_account"
        if code:
            self.add_error(None, CARD_ERRORS.get(code) or (BANK_NOT_SAVED if bank else CARD_NOT_SAVED))
            return data
        name = "bank_holder" if bank else "card_name"
        if not (data.get(name) or "").strip():
            self.add_error(name, MESSAGES[name])
        pm, si = (data.get("payment_method") or "").strip(), (data.get("setup_intent") or "").strip()
        if not (pm.startswith("pm_") and si.startswith("seti_")):
            self.add_error(None, ENTER_IBAN if bank else ENTER_CARD)
        return data

    def details(self) -> dict:
        """``{"type": "card", "token": "pm_…", "setup_intent": "seti_…"}`` for ``add_payment_method``."""
        d = self.cleaned_data
        return {"type": d["method"], "token": d["payment_method"].strip(), "setup_intent": d["setup_intent"].strip()}

    def add_service_error(self, exc) -> None:
        """A ``ValidationFailed`` from the processor (a card Stripe declined when attaching, a
        SetupIntent that does not match) as a message above the card field."""
        bank = self.is_bound and self.data.get("method") == "bank_account"
        self.add_error(None, CARD_ERRORS.get(getattr(exc, "code", None) or "")
                       or (BANK_NOT_SAVED if bank else CARD_NOT_SAVED))


def payment_form(entry, data=None, *, initial=None):
    """The payment details form for a hosted page, as the processor collects methods (``MethodEntry``)."""
    if entry.mode == "fields":
        return PaymentDetailsForm(data, accepted=list(entry.methods), initial=initial)
    return ProcessorTokenForm(data, methods=list(entry.methods), initial=initial)


ADDRESS_FIELDS = (("address_line1", _("Address"), "address-line1"), ("postal_code", _("Postal code"), "postal-code"),
                  ("city", _("City"), "address-level2"), ("country", _("Country"), "country"))


class InvoiceAddressForm(forms.Form):
    """The addresses a manually collected subscription asks for on its hosted invoice page (R-NEW-3)."""

    def __init__(self, *args, billing: bool = False, shipping: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.billing, self.shipping = billing, shipping
        for name, on in (("billing", billing), ("shipping", shipping)):
            if on:
                for field, label, _ac in ADDRESS_FIELDS:
                    self.fields[f"{name}_{field}"] = forms.CharField(
                        label=label, max_length=60 if field == "country" else 200,
                        error_messages={"required": REQUIRED})

    def sections(self):
        """(legend, [(bound field, autocomplete)]) per address asked for."""
        return [(legend, [(self[f"{name}_{f}"], f"{name} {ac}") for f, _l, ac in ADDRESS_FIELDS])
                for name, on, legend in (("billing", self.billing, _("Billing address")),
                                         ("shipping", self.shipping, _("Shipping address"))) if on]

    def addresses(self) -> dict:
        """``{"billing": {...}, "shipping": {...}}`` for ``checkout.services.pay_invoice``."""
        d = self.cleaned_data
        return {name: {f: d[f"{name}_{f}"].strip() for f, *_ in ADDRESS_FIELDS}
                for name in ("billing", "shipping") if getattr(self, name)}

    def add_service_error(self, exc) -> None:
        name = (exc.field or "").replace("_address.", "_")
        if name in self.fields:
            self.add_error(name, REQUIRED)
        else:
            self.add_error(None, without_field(exc))
