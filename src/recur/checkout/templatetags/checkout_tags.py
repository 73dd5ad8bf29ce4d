"""Filters for the buyer's pages: amounts and dates in the active language (Babel)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency
from django import template
from django.utils import translation

from recur.core import clock
from recur.core.money import currency_exponent

register = template.Library()
LOCALES = {"en": "en_US", "nl": "nl_NL"}


def _locale() -> str:
    return LOCALES.get((translation.get_language() or "en")[:2], "en_US")


@register.filter
def amount(minor, currency) -> str:
    """Minor units → ``€49.00`` / ``€ 49,00``."""
    if minor is None or not currency:
        return ""
    return format_currency(Decimal(int(minor)).scaleb(-currency_exponent(currency)), currency, locale=_locale())


@register.filter
def percent(rate) -> str:
    """A rate in percent → ``21%`` / ``5,5%``, as on the invoice PDF (recur.billing.pdf.percent)."""
    from recur.billing.pdf import percent as pdf_percent

    if rate is None or rate == "":
        return ""
    lang = (translation.get_language() or "en")[:2]
    return pdf_percent(rate, lang if lang in LOCALES else "en")


@register.filter
def day(value, fmt: str = "long") -> str:
    """A date (or a moment, taken in the account's time zone) → ``March 1, 2027`` / ``1 maart 2027``."""
    if not value:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(clock.account_zone()).date()
    return format_date(value, format=fmt, locale=_locale())


BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
          "jcb": "JCB", "diners": "Diners Club", "unionpay": "UnionPay"}


@register.filter
def method_label(pm) -> str:
    """A saved payment method → ``Visa ····4242`` / ``Bank account ····6789``."""
    from django.utils.translation import gettext

    if pm is None:
        return ""
    if pm.type == "bank_account":
        return gettext("Bank account ····%(last4)s") % {"last4": pm.last4}
    brand = BRANDS.get(pm.brand, "") or gettext("Card")
    return f"{brand} ····{pm.last4}"
