"""Money as integer minor units of an ISO 4217 currency (pure; no Django).

Amounts are ``int`` counts of the currency's minor unit (cents for EUR, yen for
JPY, fils for BHD). Arithmetic goes through :class:`decimal.Decimal`; floats
are refused everywhere. Currency exponents come from Babel (CLDR).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

__all__ = [
    "MAX_MINOR",
    "LineAmounts",
    "currency_exponent",
    "format_amount",
    "line_amounts",
    "parse_amount",
    "round_half_up",
    "split",
    "validate_currency",
]

#: Largest absolute amount in minor units (fits a signed 64-bit column).
MAX_MINOR = 2**63 - 1

# Generous precision so that no intermediate product is ever rounded.
_CTX = Context(prec=80, rounding=ROUND_HALF_UP)
_AMOUNT_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?", re.ASCII)
_HUNDRED = Decimal(100)


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def validate_currency(code: str) -> str:
    """Return ``code`` upper-cased if it is a known ISO 4217 code, else ``ValueError``."""
    if not isinstance(code, str):
        raise ValueError(f"Currency must be a three-letter ISO 4217 code, not {code!r}.")
    normalised = code.strip().upper()
    if not (len(normalised) == 3 and normalised.isascii() and normalised.isalpha()):
        raise ValueError(f"Currency must be a three-letter ISO 4217 code such as EUR, not {code!r}.")
    if normalised not in _known_currencies():
        raise ValueError(f"Unknown currency code {code!r}.")
    return normalised


def currency_exponent(code: str) -> int:
    """Number of decimals of the currency's minor unit (JPY 0, EUR 2, BHD 3)."""
    return int(get_currency_precision(validate_currency(code)))


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer number of minor units, not {value!r}.")
    return value


def _check_decimal(value: object, what: str) -> Decimal:
    """Accept ``int`` or finite ``Decimal``; refuse floats and everything else."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"{what} must be an integer or a Decimal, not {value!r}.")
    dec = Decimal(value)
    if not dec.is_finite():
        raise ValueError(f"{what} must be a finite number, not {value!r}.")
    return dec


def parse_amount(text: str, currency: str, *, allow_negative: bool = False) -> int:
    """Parse a decimal string such as ``"12.50"`` into minor units of ``currency``.

    Digits beyond the currency's precision are accepted only when they are
    zeros (``"1000.00"`` JPY is 1000); ``"12.505"`` EUR is refused, never rounded.
    """
    code = validate_currency(currency)
    exponent = currency_exponent(code)
    if not isinstance(text, str):
        raise ValueError(f"Amount must be given as a string such as '12.50', not {text!r}.")
    match = _AMOUNT_RE.fullmatch(text.strip())
    if match is None or not (match.group(2) or match.group(3)):
        raise ValueError(f"{text!r} is not a valid amount; expected a number such as '12.50'.")
    sign, whole, fraction = match.group(1), match.group(2) or "0", match.group(3) or ""
    if len(fraction) > exponent and fraction[exponent:].strip("0"):
        allowed = "no decimals" if exponent == 0 else f"at most {exponent} decimal{'s' * (exponent > 1)}"
        raise ValueError(f"{text!r} has too many decimals: {code} allows {allowed}.")
    fraction = fraction[:exponent].ljust(exponent, "0")
    minor = int(whole + fraction)
    if sign == "-":
        minor = -minor
    if minor < 0 and not allow_negative:
        raise ValueError(f"Amount must not be negative, got {text!r}.")
    if abs(minor) > MAX_MINOR:
        raise ValueError(f"Amount {text!r} is too large.")
    return minor


def format_amount(minor: int, currency: str) -> str:
    """Plain API format without grouping: 1250 EUR → ``"12.50"``, 1 BHD → ``"0.001"``."""
    _check_int(minor, "Amount")
    exponent = currency_exponent(currency)
    sign = "-" if minor < 0 else ""
    if exponent == 0:
        return f"{sign}{abs(minor)}"
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def round_half_up(value: Decimal | int) -> int:
    """Round to the nearest integer, halves away from zero (2.5 → 3, -2.5 → -3)."""
    dec = _check_decimal(value, "Value")
    return int(dec.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class LineAmounts:
    """Amounts of one line item in minor units; ``total = net + tax``, ``net = subtotal - discount``."""

    subtotal: int
    discount: int
    net: int
    tax: int
    total: int


def line_amounts(
    unit_price: int,
    quantity: int | Decimal,
    discount_percent: Decimal | int | None = None,
    discount_amount: int | None = None,
    tax_rate_percent: Decimal | int | None = None,
) -> LineAmounts:
    """Compute a line item's amounts, each rounded half-up to the minor unit.

    ``discount_amount`` is for the whole line (not per unit) and is capped at the
    subtotal; ``discount_percent`` must lie in 0..100; at most one of them is given.
    Tax is charged on the net (discounted) amount.
    """
    _check_int(unit_price, "Unit price")
    if unit_price < 0:
        raise ValueError("Unit price must not be negative.")
    qty = _check_decimal(quantity, "Quantity")
    if qty < 0:
        raise ValueError("Quantity must not be negative.")
    if discount_percent is not None and discount_amount is not None:
        raise ValueError("Give a discount as a percentage or as an amount, not both.")
    with localcontext(_CTX):
        subtotal = round_half_up(unit_price * qty)
        discount = 0
        if discount_percent is not None:
            pct = _check_decimal(discount_percent, "Discount percentage")
            if not 0 <= pct <= 100:
                raise ValueError("Discount percentage must be between 0 and 100.")
            discount = round_half_up(subtotal * pct / _HUNDRED)
        elif discount_amount is not None:
            _check_int(discount_amount, "Discount amount")
            if discount_amount < 0:
                raise ValueError("Discount amount must not be negative.")
            discount = discount_amount
        discount = min(discount, subtotal)
        net = subtotal - discount
        tax = 0
        if tax_rate_percent is not None:
            rate = _check_decimal(tax_rate_percent, "Tax rate")
            if rate < 0:
                raise ValueError("Tax rate must not be negative.")
            tax = round_half_up(net * rate / _HUNDRED)
    return LineAmounts(subtotal=subtotal, discount=discount, net=net, tax=tax, total=net + tax)


def split(total: int, parts: int | list[int]) -> list[int]:
    """Split ``total`` into parts that add up to it exactly.

    ``parts`` is a count (equal parts) or a list of non-negative integer weights.
    Each part is rounded toward zero and the remainder goes to the last part
    (the last part with a non-zero weight, so a zero weight always gets 0).
    """
    _check_int(total, "Total")
    if total < 0:
        return [-part for part in split(-total, parts)]
    if isinstance(parts, bool):
        raise ValueError("Parts must be a positive count or a list of weights.")
    if isinstance(parts, int):
        if parts < 1:
            raise ValueError("Number of parts must be at least 1.")
        weights = [1] * parts
    else:
        weights = list(parts)
        if not weights:
            raise ValueError("Give at least one weight.")
        for weight in weights:
            _check_int(weight, "Weight")
            if weight < 0:
                raise ValueError("Weights must not be negative.")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("At least one weight must be positive.")
    result = [total * weight // weight_sum for weight in weights]
    last = max(i for i, weight in enumerate(weights) if weight > 0)
    result[last] += total - sum(result)
    return result
