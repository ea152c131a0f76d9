"""Who may send which event: the parties of a collaboration, declared with the lifecycles.

Each :class:`~statemachine.engine.Input` names the parties that may send it
(``Input(..., parties=...)``); these tuples are the vocabulary. The engine itself never
asks (a replayed log is trusted as it is); an authenticating service does
(:mod:`statemachine.service.auth`), and the diagrams print them. A party acts through an
account: projects record the ``advertiser`` and ``provider`` account ids, and a party's
account must be the one the project records (the platform acts on every project).
"""

from __future__ import annotations

from .policy import ADVERTISER, PROVIDER

__all__ = [
    "ADVERTISER",
    "ALL",
    "BOTH_SIDES",
    "BUYER",
    "DELIVERER",
    "PLATFORM",
    "PLATFORM_ONLY",
    "PROVIDER",
]

PLATFORM = "platform"
#: Every party a token may name.
ALL = (ADVERTISER, PROVIDER, PLATFORM)
#: Either side of a collaboration (cancellation requests and answers: ``by`` says which).
BOTH_SIDES = (ADVERTISER, PROVIDER)
#: The side that pays, or the platform on its behalf (creates projects and orders,
#: judges content).
BUYER = (ADVERTISER, PLATFORM)
#: The side that delivers content.
DELIVERER = (PROVIDER,)
#: Decisions only the platform takes (reviewing a partner cancellation, ad review, billing).
PLATFORM_ONLY = (PLATFORM,)
