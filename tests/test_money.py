"""Money (``lifecycles.md``, first section): Decimal only, minor units, half-up percentages."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from statemachine.engine import fields
from statemachine.lifecycles.policy import split_fee
from statemachine.money import (
    MAX_INTEGER_DIGITS,
    MoneyError,
    format_amount,
    minor_units,
    parse_decimal,
    percent_of,
    quantum,
    validate_amount,
)
from statemachine.timeutil import format_instant, parse_instant

D = Decimal


# -- parse_decimal: exact input, never a float ---------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [("199.99", D("199.99")), ("-3", D(-3)), (5, D(5)), (D("0.10"), D("0.10")),
     ("-3", D(-3)), ("12345678901234567.89", D("12345678901234567.89"))],
)
def test_parse_decimal_reads_exactly(value: object, expected: Decimal) -> None:
    parsed = parse_decimal(value)
    assert parsed == expected
    assert str(parsed) == str(expected)  # the digits, not just the value


@pytest.mark.parametrize("value", [0.1, 199.99, 1.0, float("nan")])
def test_floats_are_refused(value: float) -> None:
    with pytest.raises(MoneyError, match="float"):
        parse_decimal(value)


def test_the_event_field_parser_refuses_floats_too() -> None:
    with pytest.raises(ValueError, match="float"):
        fields.decimal(199.99)


@pytest.mark.parametrize(
    ("value", "match"),
    [("abc", "not a decimal amount"), ("", "not a decimal amount"), ("NaN", "not a decimal amount"),
     (D("Infinity"), "not a finite"), (True, "True"), (None, "NoneType"), ([1], "list")],
)
def test_parse_decimal_refuses_what_is_not_an_amount(value: object, match: str) -> None:
    with pytest.raises(MoneyError, match=match):
        parse_decimal(value)


def test_amounts_have_at_most_max_integer_digits() -> None:
    largest = "9" * MAX_INTEGER_DIGITS + ".99"
    assert parse_decimal(largest) == D(largest)
    for too_large in ("1" + "0" * MAX_INTEGER_DIGITS, D("1E+400"), 10**30):
        with pytest.raises(MoneyError, match="too large"):
            parse_decimal(too_large)
    assert parse_decimal(D("0E+100")) == 0  # zero is small, whatever its exponent


# -- currencies ----------------------------------------------------------------------
@pytest.mark.parametrize(("code", "units"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0),
                                             ("BHD", 3), ("CLF", 4)])
def test_minor_units_follow_iso_4217(code: str, units: int) -> None:
    assert minor_units(code) == units
    assert quantum(code) == D(1).scaleb(-units)


@pytest.mark.parametrize(("code", "match"), [
    ("ABC", "'ABC' is not an ISO 4217 currency code"),
    ("usd", "three capitals"),
    ("US", "three capitals"),
    (840, "three capitals"),
])
def test_unknown_currency_is_refused(code: object, match: str) -> None:
    with pytest.raises(MoneyError, match=match):
        minor_units(code)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["XAU", "XXX", "XTS"])
def test_currency_without_minor_units_cannot_carry_money(code: str) -> None:
    with pytest.raises(MoneyError, match=f"{code} has no minor unit"):
        minor_units(code)
    with pytest.raises(MoneyError):
        validate_amount(D("1"), code)
    with pytest.raises(ValueError, match="no minor unit"):
        fields.currency(code)


# -- validate_amount: fits the currency or is refused, never rounded -------------------
@pytest.mark.parametrize(("amount", "currency", "text"), [
    ("10.5", "USD", "10.50"), ("10", "USD", "10.00"), ("0.01", "USD", "0.01"),
    ("50000", "JPY", "50000"), ("50000.00", "JPY", "50000"), ("1.234", "BHD", "1.234"),
])
def test_validate_amount_accepts_what_fits(amount: str, currency: str, text: str) -> None:
    assert str(validate_amount(D(amount), currency)) == text


@pytest.mark.parametrize(("amount", "currency"), [
    ("10.505", "USD"), ("0.001", "EUR"), ("100.5", "JPY"), ("1.2345", "BHD"),
])
def test_validate_amount_refuses_more_decimals_than_the_currency(amount: str, currency: str) -> None:
    with pytest.raises(MoneyError, match=f"more decimals than {currency} allows"):
        validate_amount(D(amount), currency)


# -- percent_of: half-up to minor units ----------------------------------------------
@pytest.mark.parametrize(("amount", "percent", "currency", "expected"), [
    ("0.05", 50, "USD", "0.03"),   # 0.025: half-up, where half-even would give 0.02
    ("0.15", 50, "USD", "0.08"),   # 0.075
    ("0.01", 50, "USD", "0.01"),   # 0.005
    ("0.03", 50, "USD", "0.02"),   # 0.015
    ("0.09", 50, "USD", "0.05"),   # 0.045
    ("0.07", 90, "USD", "0.06"),   # 0.063: below half rounds down
    ("199.99", 90, "USD", "179.99"),  # 179.991
    ("199.95", 90, "USD", "179.96"),  # 179.955
    ("999.99", 50, "USD", "500.00"),  # 499.995
    ("5", 50, "JPY", "3"),         # 2.5: half-up
    ("3", 50, "JPY", "2"),         # 1.5
    ("1", 90, "JPY", "1"),         # 0.9
    ("1.005", 50, "BHD", "0.503"),  # 0.5025
    ("100", 0, "USD", "0.00"),
    ("100", 100, "USD", "100.00"),
    ("999999999999999999.99", 90, "USD", "899999999999999999.99"),  # exact at the largest amount
])
def test_percent_of_rounds_half_up_to_minor_units(amount: str, percent: int, currency: str,
                                                  expected: str) -> None:
    assert str(percent_of(D(amount), percent, currency)) == expected


def test_format_amount_shows_exactly_the_currency_decimals() -> None:
    assert format_amount(D("180"), "USD") == "180.00"
    assert format_amount(D("50000"), "JPY") == "50000"
    assert format_amount(D("1.5"), "BHD") == "1.500"


# -- split_fee: the refund/release split every settlement uses -------------------------
_CURRENCIES = st.sampled_from(["USD", "JPY", "BHD"])


@st.composite
def _fees(draw: st.DrawFn) -> tuple[Decimal, str]:
    currency = draw(_CURRENCIES)
    minor = draw(st.integers(min_value=1, max_value=10**MAX_INTEGER_DIGITS - 1))
    return D(minor).scaleb(-minor_units(currency)), currency


@settings(max_examples=300)
@given(_fees(), st.integers(min_value=0, max_value=100))
def test_split_fee_never_loses_or_invents_money(fee_currency: tuple[Decimal, str], percent: int) -> None:
    fee, currency = fee_currency
    refund, released = split_fee(fee, percent, currency)
    assert refund + released == fee
    assert D(0) <= refund <= fee
    assert D(0) <= released <= fee
    assert validate_amount(refund, currency) == refund
    # half-up of the exact product: the refund is within half a minor unit of it
    assert abs(refund - fee * percent / 100) <= quantum(currency) / 2


@pytest.mark.parametrize("percent", [-1, 101])
def test_split_fee_refuses_a_percentage_outside_0_to_100(percent: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        split_fee(D("100.00"), percent, "USD")


@pytest.mark.parametrize("text", ["1e3", "1_000", " 12 ", "\u0661\u0662", "NaN", ".5", "5.", "+"])
def test_string_amounts_are_plain_decimals_only(text: str) -> None:
    with pytest.raises(MoneyError, match="is not a decimal amount"):
        parse_decimal(text)


@pytest.mark.parametrize(("text", "canonical"), [
    ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z"),
    ("2026-03-01T12:30:00+02:30", "2026-03-01T10:00:00Z"),  # any offset is written as UTC
    ("2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00.500000Z"),  # microseconds when non-zero
    ("2026-03-01T10:00:00.000000Z", "2026-03-01T10:00:00Z"),
    ("0999-12-31T23:00:00-01:00", "1000-01-01T00:00:00Z"),
    ("0099-01-01T00:00:00Z", "0099-01-01T00:00:00Z"),  # four-digit years, as RFC 3339 says
])
def test_instants_are_written_in_one_canonical_form(text: str, canonical: str) -> None:
    assert format_instant(parse_instant(text)) == canonical
    assert parse_instant(canonical) == parse_instant(text)


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 30),
                    timezones=st.timezones()))
@example(datetime(2010, 11, 7, 1, 0, tzinfo=ZoneInfo("America/Indiana/Indianapolis")))  # a DST fold
@settings(max_examples=200)
def test_a_written_instant_reads_back_as_the_same_instant(moment: datetime) -> None:
    # compared in UTC: Python never finds an ambiguous local time (a DST fold) equal
    # to a time in another zone, whatever the instant
    assert parse_instant(format_instant(moment)) == moment.astimezone(UTC)
