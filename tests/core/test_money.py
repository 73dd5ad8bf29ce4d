"""Money in integer minor units (DESIGN "Money safety rules"; SPEC §12 money format)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from recur.core.money import (
    MAX_MINOR,
    LineAmounts,
    currency_exponent,
    format_amount,
    line_amounts,
    parse_amount,
    round_half_up,
    split,
    validate_currency,
)

CURRENCIES = ["JPY", "EUR", "BHD", "USD", "KWD", "GBP"]
amounts = st.integers(min_value=0, max_value=10**15)
percents = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)


# --- currencies -------------------------------------------------------------


@pytest.mark.parametrize(("code", "exponent"), [("JPY", 0), ("EUR", 2), ("USD", 2), ("BHD", 3), ("KWD", 3)])
def test_currency_exponent(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize("code", ["eur", " Eur ", "EUR"])
def test_validate_currency_normalises_case(code: str) -> None:
    assert validate_currency(code) == "EUR"
    assert currency_exponent(code) == 2


@pytest.mark.parametrize("code", ["ZZZ", "EU", "EURO", "", "€", "E1R", None, 978])
def test_validate_currency_rejects_unknown(code: object) -> None:
    with pytest.raises(ValueError, match="(?i)currency"):
        validate_currency(code)  # type: ignore[arg-type]


# --- parse_amount -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("12", "EUR", 1200),
        ("0.01", "EUR", 1),
        (".5", "EUR", 50),
        ("+3.00", "EUR", 300),
        (" 49.00 ", "EUR", 4900),
        ("1000", "JPY", 1000),
        ("1000.00", "JPY", 1000),  # zeros beyond the precision change nothing
        ("12.500", "EUR", 1250),
        ("0.001", "BHD", 1),
        ("1.234", "BHD", 1234),
        ("0", "EUR", 0),
        ("-0.00", "EUR", 0),
        ("007.10", "EUR", 710),
    ],
)
def test_parse_amount_examples(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("12.505", "EUR", "too many decimals: EUR allows at most 2 decimals"),
        ("10.5", "JPY", "too many decimals: JPY allows no decimals"),
        ("1.2345", "BHD", "at most 3 decimals"),
        ("-1.00", "EUR", "must not be negative"),
        ("abc", "EUR", "not a valid amount"),
        ("", "EUR", "not a valid amount"),
        (".", "EUR", "not a valid amount"),
        ("1,50", "EUR", "not a valid amount"),
        ("1.000,00", "EUR", "not a valid amount"),
        ("NaN", "EUR", "not a valid amount"),
        ("Infinity", "EUR", "not a valid amount"),
        ("-inf", "EUR", "not a valid amount"),
        ("1e3", "EUR", "not a valid amount"),
        ("1_000", "EUR", "not a valid amount"),
        ("--1", "EUR", "not a valid amount"),
        ("١٢", "EUR", "not a valid amount"),  # non-ASCII digits
        ("12 EUR", "EUR", "not a valid amount"),
        ("9" * 30, "EUR", "too large"),
    ],
)
def test_parse_amount_rejects(text: str, currency: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(text, currency)


def test_parse_amount_rejects_non_strings_and_unknown_currency() -> None:
    with pytest.raises(ValueError, match="string"):
        parse_amount(12.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="currency"):
        parse_amount("12.50", "XYZ")


def test_parse_amount_allows_negative_when_asked() -> None:
    assert parse_amount("-12.50", "EUR", allow_negative=True) == -1250
    assert parse_amount("-1", "JPY", allow_negative=True) == -1


# --- format_amount ----------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1250, "EUR", "12.50"),
        (1, "EUR", "0.01"),
        (0, "EUR", "0.00"),
        (1000, "JPY", "1000"),
        (1, "BHD", "0.001"),
        (1234567, "EUR", "12345.67"),  # no grouping
        (-1250, "EUR", "-12.50"),
        (-5, "BHD", "-0.005"),
    ],
)
def test_format_amount_examples(minor: int, currency: str, text: str) -> None:
    assert format_amount(minor, currency) == text


@pytest.mark.parametrize("bad", [12.5, Decimal("12"), "1250", True])
def test_format_amount_rejects_non_integers(bad: object) -> None:
    with pytest.raises(ValueError):
        format_amount(bad, "EUR")  # type: ignore[arg-type]


@given(minor=st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR), currency=st.sampled_from(CURRENCIES))
def test_format_parse_round_trip(minor: int, currency: str) -> None:
    text = format_amount(minor, currency)
    assert parse_amount(text, currency, allow_negative=True) == minor
    exponent = currency_exponent(currency)
    assert ("." in text) == (exponent > 0)
    if exponent:
        assert len(text.split(".")[1]) == exponent


@given(
    whole=st.integers(min_value=0, max_value=10**12),
    fraction=st.text(alphabet="0123456789", max_size=3),
    currency=st.sampled_from(["JPY", "EUR", "BHD"]),
)
def test_parse_format_round_trip_from_text(whole: int, fraction: str, currency: str) -> None:
    exponent = currency_exponent(currency)
    assume(len(fraction) <= exponent)
    text = f"{whole}.{fraction}" if fraction else str(whole)
    minor = parse_amount(text, currency)
    assert Decimal(format_amount(minor, currency)) == Decimal(text)


# --- round_half_up ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2.5", 3), ("2.4999", 2), ("3477.419", 3477), ("0.5", 1), ("-2.5", -3), ("-2.4", -2), ("7", 7)],
)
def test_round_half_up_examples(value: str, expected: int) -> None:
    assert round_half_up(Decimal(value)) == expected


def test_round_half_up_refuses_floats_and_nan() -> None:
    for bad in (2.5, Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError):
            round_half_up(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=1, max_value=10**6))
def test_round_half_up_matches_exact_integer_rounding(numerator: int, denominator: int) -> None:
    with localcontext() as ctx:
        ctx.prec = 80
        value = Decimal(numerator) / Decimal(denominator)
    sign = -1 if numerator < 0 else 1
    assert round_half_up(value) == sign * ((2 * abs(numerator) + denominator) // (2 * denominator))


# --- line_amounts -----------------------------------------------------------


def test_line_amounts_example_with_percent_discount_and_tax() -> None:
    # 3 × 19.99 = 59.97; 10 % off = 6.00 (5.997); net 53.97; 21 % VAT = 11.33 (11.3337)
    assert line_amounts(1999, 3, Decimal("10"), None, Decimal("21")) == LineAmounts(5997, 600, 5397, 1133, 6530)


def test_line_amounts_examples() -> None:
    assert line_amounts(4900, 1) == LineAmounts(4900, 0, 4900, 0, 4900)
    assert line_amounts(2500, 3, discount_amount=1000) == LineAmounts(7500, 1000, 6500, 0, 6500)
    assert line_amounts(1000, Decimal("1.5"), tax_rate_percent=Decimal("9")) == LineAmounts(1500, 0, 1500, 135, 1635)
    assert line_amounts(1, Decimal("0.5")).subtotal == 1  # half-up
    assert line_amounts(1000, 2, discount_amount=5000).discount == 2000  # capped at subtotal
    assert line_amounts(1000, 2, discount_percent=100, tax_rate_percent=21).total == 0
    assert line_amounts(1000, 0, tax_rate_percent=21) == LineAmounts(0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"unit_price": -1, "quantity": 1},
        {"unit_price": 100, "quantity": -1},
        {"unit_price": 100, "quantity": 1.5},
        {"unit_price": 1.5, "quantity": 1},
        {"unit_price": 100, "quantity": Decimal("NaN")},
        {"unit_price": 100, "quantity": 1, "discount_percent": Decimal("100.01")},
        {"unit_price": 100, "quantity": 1, "discount_percent": -1},
        {"unit_price": 100, "quantity": 1, "discount_amount": -1},
        {"unit_price": 100, "quantity": 1, "discount_percent": 10, "discount_amount": 5},
        {"unit_price": 100, "quantity": 1, "tax_rate_percent": -1},
        {"unit_price": 100, "quantity": 1, "tax_rate_percent": 0.21},
    ],
)
def test_line_amounts_rejects_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        line_amounts(**kwargs)  # type: ignore[arg-type]


@given(
    unit_price=amounts,
    quantity=st.one_of(
        st.integers(min_value=0, max_value=10_000),
        st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False, allow_infinity=False),
    ),
    discount=st.one_of(st.none(), percents, amounts),
    tax=st.one_of(st.none(), percents),
)
def test_line_amounts_invariants(
    unit_price: int, quantity: int | Decimal, discount: Decimal | int | None, tax: Decimal | None
) -> None:
    percent = discount if isinstance(discount, Decimal) else None
    amount = discount if isinstance(discount, int) else None
    result = line_amounts(unit_price, quantity, percent, amount, tax)
    for value in (result.subtotal, result.discount, result.net, result.tax, result.total):
        assert isinstance(value, int) and value >= 0
    assert result.subtotal == round_half_up(unit_price * Decimal(quantity))
    assert result.discount <= result.subtotal
    assert result.net == result.subtotal - result.discount
    assert result.total == result.net + result.tax
    if tax is not None:
        assert abs(Decimal(result.tax) - result.net * tax / 100) <= Decimal("0.5")


# --- split ------------------------------------------------------------------


def test_split_examples() -> None:
    assert split(100, 3) == [33, 33, 34]  # remainder to the last part
    assert split(1000, 4) == [250, 250, 250, 250]
    assert split(2, 3) == [0, 0, 2]
    assert split(100, [1, 1, 1]) == [33, 33, 34]
    assert split(1000, [1, 3]) == [250, 750]
    assert split(10, [1, 1, 0]) == [5, 5, 0]  # a zero weight gets nothing
    assert split(1, [1, 1, 0]) == [0, 1, 0]
    assert split(0, 3) == [0, 0, 0]
    assert split(-100, 3) == [-33, -33, -34]


@pytest.mark.parametrize("parts", [0, -1, [], [0, 0], [1, -1], [1.5], True])
def test_split_rejects_bad_parts(parts: object) -> None:
    with pytest.raises(ValueError):
        split(100, parts)  # type: ignore[arg-type]


@given(total=st.integers(min_value=-(10**15), max_value=10**15), count=st.integers(min_value=1, max_value=50))
def test_split_equal_parts_add_up(total: int, count: int) -> None:
    result = split(total, count)
    assert len(result) == count
    assert sum(result) == total
    assert max(result) - min(result) < count  # near-equal: all but the last are identical
    assert len(set(result[:-1])) <= 1


@given(
    total=st.integers(min_value=0, max_value=10**15),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30).filter(any),
)
def test_split_by_weights_adds_up_and_is_proportional(total: int, weights: list[int]) -> None:
    result = split(total, weights)
    assert len(result) == len(weights)
    assert sum(result) == total
    assert all(part >= 0 for part in result)
    weight_sum = sum(weights)
    last = max(i for i, w in enumerate(weights) if w)
    for i, (part, weight) in enumerate(zip(result, weights)):
        if weight == 0:
            assert part == 0
        elif i != last:
            assert part == total * weight // weight_sum
