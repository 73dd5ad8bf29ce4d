from decimal import Decimal

from babel.numbers import format_currency
from django import template
from django.utils import translation

from recur.core.money import currency_exponent

register = template.Library()


@register.filter
def money(minor, currency):
    """Minor units → the amount in the active language's format (Babel)."""
    if minor is None:
        return ""
    amount = Decimal(int(minor)).scaleb(-currency_exponent(currency))
    locale = {"nl": "nl_NL", "en": "en_US"}.get(translation.get_language() or "en", "en_US")
    return format_currency(amount, currency, locale=locale)


@register.filter
def neg(value):
    """-value (to show a credit as a positive amount)."""
    return -int(value or 0)
