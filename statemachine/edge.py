"""A service's edge: what it refuses before the engine sees a request.

Why a service needs more than the envelope: a log replay takes the latest well-formed
``time`` as its clock (``event-log.md``), and the durable engine keeps that rule. In a
live service one event dated 9999 (even one refused for an unknown type) would then
push the stored clock past every real event, and every later event would be "out of
order", across restarts. So the service bounds event times by its own wall clock, here
at the edge and nowhere inside the engine (time inside comes from events only), and
refuses without moving anything what lies further ahead than :attr:`Edge.skew`.

The edge also bounds the request body (413) and may hold :class:`~.limits.Limits`
tighter than the envelope's (never looser): ids, subjects and free text fields.

Defaults: ``skew`` 5 minutes, ``max_body`` 256 KiB, ``limits`` the envelope's
(:data:`statemachine.limits.LIMITS`). ``create_app(clock_skew=, max_body=, limits=,
clock=)`` changes them; ``examples/service.py`` has ``--clock-skew`` and
``--max-body``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs

from .limits import LIMITS, Limits, LimitsError
from .timeutil import LAST, format_instant, later, parse_instant

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_SKEW", "Edge", "Refused", "text_fields", "utc_now"]

DEFAULT_SKEW = timedelta(minutes=5)
#: One event is a few hundred bytes; 256 KiB leaves room for a long ``reason`` written
#: with escapes, and keeps a hostile body from growing the store.
DEFAULT_MAX_BODY = 262_144


def utc_now() -> datetime:
    """The wall clock in UTC: the service's default ``clock``."""
    return datetime.now(UTC)


class Refused(Exception):
    """A request refused at the edge: rendered by the service as a problem document."""

    def __init__(self, status: int, slug: str, title: str, detail: str, *,
                 field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.field = status, slug, title, detail, field


class _Request(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    def stream(self) -> Any: ...


def text_fields(domain: Any) -> frozenset[tuple[str, str]]:
    """``(event type, data field)`` of every free text field a domain declares (parsed
    by :func:`statemachine.engine.fields.text`): what ``text_chars`` bounds."""
    from .engine import fields

    return frozenset((inp.type, fd.name) for lc in domain.lifecycles for inp in lc.inputs
                     for fd in inp.fields if fd.parse is fields.text)


@attrs.frozen
class Edge:
    """The checks of one service: its wall clock, the skew it allows, its body and
    text limits."""

    clock: Callable[[], datetime] = utc_now
    skew: timedelta = DEFAULT_SKEW
    max_body: int = DEFAULT_MAX_BODY
    limits: Limits = LIMITS
    #: The free text fields ``limits.text_chars`` bounds (:func:`text_fields`).
    texts: frozenset[tuple[str, str]] = frozenset()

    def __attrs_post_init__(self) -> None:
        if self.skew < timedelta(0):
            raise ValueError(f"the clock skew cannot be negative, not {self.skew}")
        if type(self.max_body) is not int or not 0 < self.max_body <= LIMITS.line_bytes:
            raise LimitsError(f"max_body must be a whole number from 1 to {LIMITS.line_bytes:,} "
                              f"(the envelope's line limit), not {self.max_body!r}")
        LIMITS.tightened(**attrs.asdict(self.limits))  # a looser limit raises LimitsError

    async def read_body(self, request: _Request) -> bytes:
        """The request body, or 413 as soon as it is known to be over ``max_body``
        (from ``Content-Length``, or while reading a body sent without one)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> Refused:
        return Refused(413, "too-large", "The request body is too large",
                       f"the body is larger than {self.max_body:,} bytes, this service's limit "
                       f"(one event is a few hundred)")

    def check_time(self, when: object, field: str = "time") -> None:
        """Refuse an instant further ahead of the wall clock than ``skew`` (a time that
        cannot be read is left to the engine, which says why)."""
        try:
            moment = parse_instant(when)
        except ValueError:
            return
        now = self.clock()
        if moment > (later(now, self.skew) or LAST):  # a clock near the calendar's end
            raise Refused(422, "time-ahead", "The time lies ahead of the service's clock",
                          f"{field} {format_instant(moment)} is more than {self.skew} ahead of this "
                          f"service's clock ({format_instant(now)}): send events as they happen",
                          field=field)

    def check_event(self, envelope: Any) -> None:
        """The edge's checks of one parsed envelope: its time, and the service's limits
        where they are tighter than the envelope's."""
        if not isinstance(envelope, dict):
            return
        self.check_time(envelope.get("time"))
        limits = self.limits
        if limits == LIMITS:
            return  # the envelope checks exactly these
        # (not the type: a type is one the domain declares, or refused by the engine)
        for name, most in (("id", limits.id_chars), ("subject", limits.subject_chars)):
            value = envelope.get(name)
            if isinstance(value, str) and len(value) > most:
                raise Refused(422, "too-long", "A field is too long",
                              f"{name} is {len(value):,} characters long; this service allows "
                              f"{most:,}", field=name)
        data, kind = envelope.get("data"), envelope.get("type")
        if not isinstance(data, dict):
            return
        for name, text in data.items():
            if isinstance(text, str) and len(text) > limits.text_chars and (kind, name) in self.texts:
                raise Refused(422, "too-long", "A field is too long",
                              f"data.{name} is {len(text):,} characters long; this service allows "
                              f"{limits.text_chars:,}", field=f"data.{name}")
