"""Testing support for lifecycles of your own (and ours).

* :func:`histories` (:mod:`.strategies`): a ``hypothesis`` strategy of valid event
  histories for any declared domain (needs ``hypothesis``: the ``testing`` extra);
* :func:`given` (:mod:`.scenario`): given/when/then examples, or refused with a reason;
* :class:`LifecycleCoverage` (:mod:`.covered`): the transitions and guards a run
  exercised; ``pytest --lifecycle-coverage`` prints it (:mod:`.plugin`).
"""

from __future__ import annotations

from typing import Any

from .covered import LifecycleCoverage
from .scenario import Scenario, When, given

__all__ = ["LifecycleCoverage", "Scenario", "When", "given", "histories", "register"]


def __getattr__(name: str) -> Any:
    # hypothesis is optional (collab-lifecycles[testing]): imported only when asked for.
    if name in ("histories", "register"):
        try:
            from . import strategies
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"statemachine.testing.{name} needs hypothesis: "
                              f"pip install 'collab-lifecycles[testing]' ({exc})") from None
        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
