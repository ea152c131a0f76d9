"""Input limits shared by the replay and every service: one place, one set of defaults.

Why: an event log and a service are fed by other programs, and a single hostile or
buggy line (a 50 MB id, a NUL in a subject, a 10 MB ``reason``) must be one rejected
line, never a store grown by hundreds of megabytes or an entity no URL can reach. The
envelope (:mod:`statemachine.envelope`) reads these values on every line; a service
may tighten them for its own requests (:meth:`Limits.tightened`), never loosen them
past what the replay accepts, so an event a service stored can always be replayed.

Defaults (see :data:`DEFAULT`):

=====================  =======  ============================================================
``line_bytes``         1 MiB    one log line or one ``POST /events`` body, in bytes
``id_chars``           256      an event ``id``, an event ``type``, and an id in ``data``
``subject_chars``      256      a ``subject`` (``order/<id>``)
``text_chars``         4,096    a free text field (``data.reason``)
=====================  =======  ============================================================

Ids, types and subjects must also be printable (:meth:`str.isprintable`: no control,
separator or unassigned character except the ASCII space), so every one can be
printed on one line and fetched by a URL.

Change them with the environment, read once at import:
``STATEMACHINE_MAX_LINE_BYTES``, ``STATEMACHINE_MAX_ID_CHARS``,
``STATEMACHINE_MAX_SUBJECT_CHARS``, ``STATEMACHINE_MAX_TEXT_CHARS`` (whole numbers > 0).
Whoever replays a log a service wrote must allow at least what that service allowed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import attrs

__all__ = ["DEFAULT", "ENV", "ENV_ERROR", "LIMITS", "Limits", "LimitsError", "printable", "shown"]


class LimitsError(ValueError):
    """A limit that cannot be used (not a whole number > 0, or looser than allowed)."""


@attrs.frozen
class Limits:
    """The size and character limits of an event. Frozen: pass a new one to change."""

    line_bytes: int = 1_048_576
    id_chars: int = 256
    subject_chars: int = 256
    text_chars: int = 4096

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(Limits):
            value = getattr(self, field.name)
            if type(value) is not int or value <= 0:
                raise LimitsError(f"{field.name} must be a whole number > 0, not {value!r}")

    def tightened(self, **changes: int) -> Limits:
        """These limits with some made stricter; a looser value is a :class:`LimitsError`
        (a service must never store what the replay of its log would refuse)."""
        for name, value in changes.items():
            if name not in attrs.fields_dict(Limits):
                raise LimitsError(f"no limit named {name!r}")
            if type(value) is int and value > getattr(self, name):
                raise LimitsError(f"{name} = {value} would loosen the envelope's limit "
                                  f"({getattr(self, name)}); a service may only tighten it")
        return attrs.evolve(self, **changes)


#: The environment variable of each limit.
ENV: Mapping[str, str] = {
    "line_bytes": "STATEMACHINE_MAX_LINE_BYTES",
    "id_chars": "STATEMACHINE_MAX_ID_CHARS",
    "subject_chars": "STATEMACHINE_MAX_SUBJECT_CHARS",
    "text_chars": "STATEMACHINE_MAX_TEXT_CHARS",
}

#: The built-in defaults, whatever the environment says.
DEFAULT = Limits()


def from_environment(environ: Mapping[str, str] = os.environ) -> Limits:
    """:data:`DEFAULT`, with each limit whose variable is set replaced by its value."""
    changes: dict[str, int] = {}
    for name, variable in ENV.items():
        text = environ.get(variable)
        if text is None or not text.strip():
            continue
        if not text.strip().isascii() or not text.strip().isdigit():
            raise LimitsError(f"{variable} must be a whole number > 0, not {text!r}")
        changes[name] = int(text)
    try:
        return attrs.evolve(DEFAULT, **changes)
    except LimitsError as exc:
        raise LimitsError(f"{ENV[str(exc).split()[0]]}: {exc}") from None


def _in_force() -> tuple[Limits, str | None]:
    try:
        return from_environment(), None
    except LimitsError as exc:
        # Importing a library must not fail on the environment: the defaults stay, and
        # the command line and the service refuse to start with this message.
        warnings.warn(f"{exc}; the default limits apply", stacklevel=3)
        return DEFAULT, str(exc)


#: The limits in force: the envelope reads these (the defaults unless the environment
#: changed them at import). ``ENV_ERROR`` says why a variable was ignored, if one was.
LIMITS, ENV_ERROR = _in_force()


def shown(value: object, width: int = 60) -> str:
    """A value as an error message quotes it (``repr`` of a string, ``str`` of a number),
    cut to about ``width`` characters: a reason quoting a 50 MB id or a 5,000-digit
    number must still be one short line."""
    text = repr(value) if isinstance(value, str | bytes) or not hasattr(value, "as_tuple") \
        else str(value)
    if len(text) <= width:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:width]}… ({size:,} characters)"


def printable(text: str) -> str:
    """``text`` with every unprintable character (a NUL, a newline, U+2028) written as
    its escape (``\\x00``), so whatever reaches a one-line output (a report's table, a
    DOT or Mermaid label) stays on its line and never ends a label early. Printable text
    comes back as it was."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
