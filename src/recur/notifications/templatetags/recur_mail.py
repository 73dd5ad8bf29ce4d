"""Filters for e-mail templates: amounts, dates and payment methods in the active language (Babel)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency
from django import template
from django.utils import translation
from django.utils.translation import gettext

from recur.core import clock
from recur.core.money import currency_exponent

register = template.Library()
LOCALES = {"en": "en_US", "nl": "nl_NL"}


def _locale() -> str:
    return LOCALES.get(translation.get_language() or "en", "en_US")


@register.filter
def money(value: dict | None) -> str:
    """``{"amount_minor": 1250, "currency": "EUR"}`` → ``€12.50`` / ``€ 12,50``."""
    if not value:
        return ""
    currency = value["currency"]
    amount = Decimal(int(value["amount_minor"])).scaleb(-currency_exponent(currency))
    return format_currency(amount, currency, locale=_locale())


@register.filter
def ldate(value: str | None, fmt: str = "long") -> str:
    """An ISO date (or datetime, taken in the account's time zone) → ``March 1, 2027`` / ``1 maart 2027``."""
    if not value:
        return ""
    if "T" in value:
        day = dt.datetime.fromisoformat(value).astimezone(clock.account_zone()).date()
    else:
        day = dt.date.fromisoformat(value)
    return format_date(day, format=fmt, locale=_locale())


@register.simple_tag(takes_context=True)
def failure_reason(context, seller: bool = False) -> str:
    """A failed payment's reason (the context's ``reason``, ``reason_code`` and ``payment_method``) in
    the e-mail's language when its failure code is known, else the processor's words as given:
    ``{% failure_reason as why %}``, ``{% failure_reason seller=True as why %}`` in the seller's copy."""
    from recur.payments.reasons import failure_reason as words

    message, code, method = context.get("reason"), context.get("reason_code"), context.get("payment_method")
    if not (message or code):
        return ""
    return words(code, message, (method or {}).get("type"), seller=seller)


@register.filter
def period(start: str | None, end: str | None) -> str:
    """Two ISO dates → ``March 1, 2027 – April 1, 2027``."""
    return f"{ldate(start)} – {ldate(end)}" if start and end else ""


@register.filter
def payment_method(value: dict | None) -> str:
    """``{"type": "card", "brand": "visa", "last4": "4242"}`` → ``Visa •••• 4242``."""
    if not value:
        return ""
    if value.get("type") == "bank_account":
        label = gettext("Bank account")
    else:
        label = (value.get("brand") or gettext("Card")).replace("_", " ").title()
        if label.lower() in {"amex", "american express"}:
            label = "American Express"
    last4 = value.get("last4")
    return f"{label} •••• {last4}" if last4 else label
