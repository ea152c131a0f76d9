"""``--domain module:ATTRIBUTE``: every face (replay, diagrams, diagram, the service) runs
any declared domain, not only ours.

The attribute is a :class:`~.engine.Domain`, or a single :class:`~.engine.Lifecycle`
(wrapped in a domain of its own). Loading also compiles every lifecycle, so a
declaration that does not compile is reported here, before any log is read, as the
:class:`~.engine.DeclarationError` message: one line that names what is wrong.

The current directory is put on ``sys.path`` first (as ``uvicorn`` does for its app),
so ``--domain examples.support_request:DOMAIN`` works from a checkout however the
command was started (``python -m`` or a script).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .engine import DeclarationError, Domain, Lifecycle, Runtime

__all__ = ["DomainError", "load_domain"]


class DomainError(ValueError):
    """The ``--domain`` reference cannot be used: the message says why, in one line."""


def load_domain(spec: str) -> Domain:
    """The domain named by ``spec`` (``package.module:ATTRIBUTE``), checked by compiling it.

    Raises :class:`DomainError` when the reference is malformed, the module does not
    import, the attribute is missing or not a domain, or a lifecycle does not compile.
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise DomainError(f"--domain {spec!r}: expected module:ATTRIBUTE, e.g. "
                          "examples.support_request:DOMAIN")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except DeclarationError as exc:  # a lifecycle refused while the module was built
        raise DomainError(f"--domain {spec}: {exc}") from None
    except Exception as exc:
        raise DomainError(f"--domain {spec}: cannot import {module_name}: "
                          f"{type(exc).__name__}: {exc}") from None
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise DomainError(f"--domain {spec}: {module_name} has no attribute {attribute}") from None
    if isinstance(value, Lifecycle):
        value = Domain(lifecycles=(value,))
    if not isinstance(value, Domain):
        raise DomainError(f"--domain {spec}: {attribute} is a {type(value).__name__}, "
                          "not a Domain or a Lifecycle")
    try:
        Runtime(value)  # compiles every lifecycle and checks how their inputs meet
    except (DeclarationError, ValueError) as exc:
        raise DomainError(f"--domain {spec}: {exc}") from None
    return value
