"""How the service logs, and where it may listen: small edge concerns of the runner."""

from __future__ import annotations

import ipaddress

import structlog

from ..streams import STDERR

__all__ = ["configure_logging", "is_loopback"]


def configure_logging(level: int, fmt: str = "text") -> None:
    """structlog to stderr: ``text`` for people, ``json`` (one object a line, with the
    level and an ISO time) for log collectors."""
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    elif fmt == "text":
        processors += [structlog.dev.ConsoleRenderer(colors=False)]
    else:
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    structlog.configure(processors=processors,
                        wrapper_class=structlog.make_filtering_bound_logger(level),
                        logger_factory=structlog.PrintLoggerFactory(STDERR),
                        cache_logger_on_first_use=False)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback interface (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

