"""Parsers for the fields of input events, used in :class:`~.declaration.Field`.

Each takes the JSON value and returns the typed value or raises ``ValueError`` with
a reason short enough for a one-line rejection.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..limits import LIMITS, shown
from ..money import MAX_INTEGER_DIGITS, MoneyError, minor_units, parse_decimal
from ..timeutil import parse_instant

__all__ = ["boolean", "choice", "currency", "decimal", "identifier", "instant", "text"]


def text(value: Any) -> str:
    """Free text (a cancellation's ``reason``), at most ``LIMITS.text_chars`` long."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    if len(value) > LIMITS.text_chars:
        raise ValueError(f"is {len(value):,} characters long; at most {LIMITS.text_chars:,} "
                         f"(STATEMACHINE_MAX_TEXT_CHARS)")
    return value


def identifier(value: Any) -> str:
    """An entity id: a non-empty string without ``/`` or surrounding blanks.

    Interned: such a field names another entity (an order's project), and the many
    children of one parent then share one string instead of holding a copy each.
    """
    if not isinstance(value, str) or not value or "/" in value or value.strip() != value:
        raise ValueError(f"{shown(value)} is not an id (a non-empty string without '/')")
    if len(value) > LIMITS.id_chars or not value.isprintable():
        raise ValueError(f"{shown(value)} is not an id (at most {LIMITS.id_chars:,} printable "
                         f"characters)")
    return sys.intern(value)


def choice(*options: str) -> Callable[[Any], str]:
    canonical = {option: option for option in options}

    def parse(value: Any) -> str:
        # The declaration's own string, not the parsed copy: millions of entities then
        # share one "manual" instead of holding one each.
        found = canonical.get(value) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"{shown(value)} is not one of {', '.join(options)}")
        return found

    parse.__name__ = "choice_" + "_".join(options)
    parse.options = options  # type: ignore[attr-defined]  # what test data may choose from; schemas
    return parse


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {shown(value)}")
    return value


def decimal(value: Any) -> Decimal:
    # The common case without a regex: a plain ASCII decimal string ("250.00", "-3", "7")
    # is exactly what ``parse_decimal``'s pattern accepts; anything else (and any amount
    # too large) goes through ``parse_decimal`` itself, which accepts or explains.
    if type(value) is str and value.isascii():
        whole, dot, fraction = (value[1:] if value[:1] in _SIGNS else value).partition(".")
        if whole.isdigit() and (not dot or fraction.isdigit()):
            amount = Decimal(value)
            if not amount or amount.adjusted() < MAX_INTEGER_DIGITS:
                return amount
    try:
        return parse_decimal(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


_SIGNS = ("+", "-")


def currency(value: Any) -> str:
    try:
        minor_units(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None
    return sys.intern(value)  # one "USD" for every entity


def instant(value: Any) -> datetime:
    return parse_instant(value)
