"""Money: ``Decimal`` amounts in a currency's ISO 4217 minor units.

Why a module of its own: every money path of the project (fees, refunds, holds,
charges) goes through these few functions, so the rounding rule (half-up to minor
units) and the input rule (an amount never has more decimals than its currency
allows) are written once. Floats never enter: amounts are parsed from strings or
from JSON numbers that the log reader has already turned into ``Decimal``.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import iso4217

from .limits import shown

__all__ = [
    "HUNDRED",
    "MAX_INTEGER_DIGITS",
    "ZERO",
    "MoneyError",
    "format_amount",
    "minor_units",
    "parse_decimal",
    "percent_of",
    "quantum",
    "validate_amount",
    "validate_written",
]

_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?", re.ASCII)
ZERO = Decimal(0)
HUNDRED = Decimal(100)
#: Amounts stay below 10**18. Decimal arithmetic runs at 28 significant digits, so with
#: at most 4 decimals (ISO 4217's largest) every percentage and every total stays exact.
MAX_INTEGER_DIGITS = 18


class MoneyError(ValueError):
    """An amount or currency that cannot be used: the message says which and why."""


@cache
def minor_units(currency: str) -> int:
    """The number of decimals of ``currency`` (USD 2, JPY 0, BHD 3).

    Raises :class:`MoneyError` for a code that is not an ISO 4217 currency, or one
    without minor units (gold, testing codes), which cannot carry a fee.
    """
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code (three capitals)")
    try:
        exponent = iso4217.Currency(currency).exponent
    except ValueError:
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code") from None
    if exponent is None:
        raise MoneyError(f"{currency} has no minor unit; it cannot be used for money here")
    return int(exponent)


@cache
def quantum(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``Decimal('0.01')`` for USD, ``1`` for JPY."""
    return Decimal(1).scaleb(-minor_units(currency))


def parse_decimal(value: object) -> Decimal:
    """Read an amount exactly: a decimal string, an int, or an already exact ``Decimal``.

    A ``float`` is refused on purpose: by the time a value is a float it may already
    have lost digits, and money never goes through binary floating point here.
    """
    if isinstance(value, bool):
        raise MoneyError(f"an amount must be a decimal string, not {value!r}")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        # A plain decimal string only: Decimal() alone would also take "1e3", "1_000",
        # padded or non-ASCII digits, which no well-behaved writer of amounts sends.
        if _DECIMAL_TEXT.fullmatch(value) is None:
            raise MoneyError(f"{shown(value)} is not a decimal amount (digits, an optional sign and point)")
        amount = Decimal(value)
    else:
        raise MoneyError(f"an amount must be a decimal string, not {type(value).__name__}")
    if not amount.is_finite():
        raise MoneyError(f"{shown(value)} is not a finite amount")
    if amount and amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise MoneyError(f"{shown(amount)} is too large: at most {MAX_INTEGER_DIGITS} digits "
                         f"before the point")
    return amount


def validate_amount(amount: Decimal, currency: str) -> Decimal:
    """Return ``amount`` in ``currency``'s minor units, or raise if it has more decimals.

    ``"10.50"`` and ``"10.5"`` are both fine for USD; ``"10.505"`` is refused rather
    than silently rounded, because an input that does not fit the currency is a bug
    upstream, not something to paper over.
    """
    q = quantum(currency)
    exact = amount.quantize(q, rounding=ROUND_HALF_UP)
    if exact != amount:
        raise MoneyError(
            f"{amount} has more decimals than {currency} allows ({minor_units(currency)})"
        )
    return exact


def validate_written(amount: Decimal, currency: str) -> Decimal:
    """An amount as an input wrote it: :func:`validate_amount`, and refused when it is
    *written* with more decimals than ``currency`` has, even zeros (``"100.0"`` JPY).

    Why stricter than :func:`validate_amount` (which takes ``50000.00`` JPY, a value
    that fits): an input names an amount in the currency's own terms, and a writer that
    sends tenths of a yen has a bug upstream, whatever the tenth is. Reading exactly
    means reading what was written, not a rounded or normalised value.
    """
    exponent = amount.as_tuple().exponent
    if type(exponent) is int and exponent < -minor_units(currency):
        raise MoneyError(
            f"{amount} has more decimals than {currency} allows ({minor_units(currency)})"
        )
    return validate_amount(amount, currency)


def percent_of(amount: Decimal, percent: int | Decimal, currency: str) -> Decimal:
    """``percent`` % of ``amount``, rounded half-up to ``currency``'s minor units."""
    return (amount * Decimal(percent) / HUNDRED).quantize(quantum(currency), ROUND_HALF_UP)


def format_amount(amount: Decimal, currency: str) -> str:
    """The canonical text of an amount: exactly the currency's decimals (``"180.00"``)."""
    return str(amount.quantize(quantum(currency), rounding=ROUND_HALF_UP))
