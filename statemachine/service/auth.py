"""Parties that prove who they are: bearer tokens, and what each party may send.

``--auth FILE`` is a TOML file of bearer tokens::

    [tokens.s3cr3t-advertiser-token]
    party = "advertiser"      # or "provider" or "platform"
    account = "A-1"

A request names its token in ``Authorization: Bearer <token>``; tokens are compared in
constant time (:func:`hmac.compare_digest`, against every token, so the time taken
does not tell how much of a guess was right). No token, or an unknown one: 401.

Who may send which event is not written here: each lifecycle input declares its
``parties`` (:mod:`statemachine.lifecycles.parties`); :func:`authorize` reads the
declaration. On top of the party, the *account* must be the one the project records
(``advertiser``/``provider`` of ``project.created``; an order answers to its project's):
a token of advertiser ``A-2`` cannot act on a project of advertiser ``A-1``. The
platform acts on every project. Where no account is recorded (a project created
without account ids, a promotion), the party alone decides.

The event's ``by`` is the token's party: set when the body leaves it out, a 403 when
the body says another party (never a silent overwrite). Likewise the ``advertiser`` or
``provider`` of a project created by that party is its own account.
"""

from __future__ import annotations

import hmac
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ..api import Engine
from ..engine import Entity, Input, Lifecycle
from ..lifecycles.parties import ALL, PLATFORM

__all__ = ["AuthError", "Forbidden", "Principal", "Tokens", "authorize", "load_tokens"]


class AuthError(ValueError):
    """The auth file cannot be used: what is wrong, and where."""


@attrs.frozen
class Principal:
    """Who a token proves the caller is. ``repr`` never shows the token (there is none)."""

    party: str
    account: str


class Forbidden(Exception):
    """The caller is who it says, but may not send this event (403)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class Tokens:
    """The tokens of an auth file, checked in constant time."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        if not tokens:
            raise AuthError("the auth file declares no token: add a [tokens.<token>] table")
        self._tokens = [(token.encode(), who) for token, who in tokens.items()]

    def __len__(self) -> int:
        return len(self._tokens)

    def identify(self, authorization: str | None) -> Principal | None:
        """The principal of an ``Authorization: Bearer <token>`` header, or ``None``."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        given = token.strip().encode("utf-8", "surrogateescape")
        found = None
        for known, who in self._tokens:  # every token, always: the time says nothing
            if hmac.compare_digest(given, known):
                found = who
        return found


def load_tokens(path: str | Path) -> Tokens:
    """Read an auth file (module docs); :class:`AuthError` says what is wrong."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthError(f"{path}: cannot read the auth file: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuthError(f"{path}: not TOML: {exc}") from None
    tables = document.get("tokens")
    if not isinstance(tables, dict):
        raise AuthError(f"{path}: no [tokens.<token>] tables")
    tokens: dict[str, Principal] = {}
    for token, entry in tables.items():
        where = f"{path}: [tokens.<{len(tokens) + 1}th token>]"  # never the token itself
        if not isinstance(entry, dict):
            raise AuthError(f"{where} is not a table")
        if len(token) < 16:
            raise AuthError(f"{where}: a token must be at least 16 characters long")
        party, account = entry.get("party"), entry.get("account")
        if party not in ALL:
            raise AuthError(f"{where}: party must be one of {', '.join(ALL)}, not {party!r}")
        if not isinstance(account, str) or not account.strip() or "/" in account:
            raise AuthError(f"{where}: account must be a non-empty id without '/', not {account!r}")
        unknown = set(entry) - {"party", "account"}
        if unknown:
            raise AuthError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        tokens[token] = Principal(party, account)
    return Tokens(tokens)


# -- what a party may send -----------------------------------------------------------
def _declared(engine: Engine, kind: str, type_: str) -> tuple[Lifecycle, Input] | None:
    for lifecycle in engine.runtime.domain.lifecycles:
        if lifecycle.kind == kind:
            for declared in lifecycle.inputs:
                if declared.type == type_:
                    return lifecycle, declared
    return None


def _lifecycle_of(engine: Engine, entity: Entity) -> Lifecycle:
    return next(lc for lc in engine.runtime.domain.lifecycles if lc.name == entity.lifecycle)


def _recorded_account(engine: Engine, entity: Entity | None, party: str,
                      lifecycle: Lifecycle, data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(account, owner)``: the ``party`` account recorded by ``entity``, or by its parent
    (named by the entity's data, or by the creating event's ``data``), and who records it."""
    if entity is not None:
        data = entity.data
        lifecycle = _lifecycle_of(engine, entity)
        account = data.get(party)
        if account is not None:
            return str(account), entity.subject
    link = lifecycle.parent
    if link is None:
        return None, None
    parent_id = data.get(link.field)
    if not isinstance(parent_id, str):
        return None, None
    parent = engine.get(f"{link.kind}/{parent_id}")
    if parent is None:
        return None, None
    return _recorded_account(engine, parent, party, lifecycle, parent.data)


def authorize(engine: Engine, who: Principal, envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope as ``who`` may send it (``by`` and a project's own account filled
    in), or :class:`Forbidden` with the reason. An event the engine will reject anyway
    (no such type, a malformed subject) passes through: the engine says why."""
    type_, subject = envelope.get("type"), envelope.get("subject")
    if not isinstance(type_, str) or not isinstance(subject, str):
        return envelope
    kind = subject.partition("/")[0]
    found = _declared(engine, kind, type_)
    if found is None:
        return envelope
    lifecycle, declared = found
    if declared.parties and who.party not in declared.parties:
        article = "an" if who.party[0] in "aeiou" else "a"
        raise Forbidden(f"{article} {who.party} may not send {type_}; the lifecycle declares it for "
                        f"{' or '.join(declared.parties)}", "type")
    data = envelope.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return envelope  # the engine refuses it (422)
    data = dict(data)
    names = {f.name for f in declared.fields}
    if "by" in names:
        if "by" in data and data["by"] != who.party:
            raise Forbidden(f"the event says it is by {data['by']!r}, but the token is the "
                            f"{who.party}'s", "data.by")
        data["by"] = who.party
    if who.party != PLATFORM:
        entity = engine.get(subject)
        if entity is None and who.party in names:  # creating, and naming the party's account
            if who.party in data and data[who.party] != who.account:
                raise Forbidden(f"account {who.account} may not create {subject} for the {who.party} "
                                f"{data[who.party]!r}", f"data.{who.party}")
            data[who.party] = who.account
        else:
            account, owner = _recorded_account(engine, entity, who.party, lifecycle, data)
            if account is not None and account != who.account:
                raise Forbidden(f"account {who.account} is not the {who.party} of {owner}", "subject")
    return {**envelope, "data": data} if data or "data" in envelope else envelope
