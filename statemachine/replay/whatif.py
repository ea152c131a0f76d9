"""What-if pricing: what would a draft policy version have cost (``replay --what-if``)?

``policy-versions.md``, "What-if". The log is replayed twice: once as it stands (the
baseline, priced by the versions given), once with the draft version governing
**every** order, whenever agreed ("what if this rule had always applied"). The
result holds both runs' totals per currency and ledger kind, their difference, and
the orders whose money or state changes, largest absolute change first.

A state can differ only through the deemed-approval period: a shorter one approves
an order before its rejection arrives, and that rejection is then refused in the
what-if run (its report counts it as rejected).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ..lifecycles.versions import Policies, PolicyVersion
from ..money import format_amount
from .report import LEDGER_KINDS, Report

__all__ = ["Change", "WhatIf", "compare_runs", "render_what_if_text", "what_if"]

#: Rows of the text table of changes (the JSON lists them all).
TABLE_ROWS = 50


@attrs.frozen
class Change:
    """One order and ledger kind whose money or state differs between the runs."""

    subject: str
    kind: str | None  # None: the order's state changed and it has no money line in either run
    currency: str | None
    before: Decimal
    after: Decimal
    state_before: str | None
    state_after: str | None

    @property
    def delta(self) -> Decimal:
        return self.after - self.before

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "kind": self.kind, "before": self._fmt(self.before),
                "after": self._fmt(self.after), "state_before": self.state_before,
                "state_after": self.state_after}

    def _fmt(self, value: Decimal) -> str:
        return format_amount(value, self.currency) if self.currency else str(value)


@attrs.frozen
class WhatIf:
    """Both runs and what changed: plain data for the text, the JSON and other views."""

    version: PolicyVersion
    baseline: Report
    what_if: Report
    changes: Sequence[Change]

    @property
    def exit_status(self) -> int:
        """The baseline's: the log as it stands."""
        return self.baseline.exit_status

    def totals(self) -> list[tuple[str, str, Decimal, Decimal]]:
        """``(currency, kind, baseline, what-if)``, per currency (sorted) and kind."""
        before, after = self.baseline.totals(), self.what_if.totals()
        rows = []
        for currency in sorted(set(before) | set(after)):
            b, a = before.get(currency, {}), after.get(currency, {})
            for kind in LEDGER_KINDS:
                if kind in b or kind in a:
                    rows.append((currency, kind, b.get(kind, Decimal(0)), a.get(kind, Decimal(0))))
        return rows

    def to_dict(self) -> dict[str, Any]:
        difference: dict[str, dict[str, str]] = {}
        for currency, kind, before, after in self.totals():
            difference.setdefault(currency, {})[kind] = format_amount(after - before, currency)
        return {
            "baseline": _run(self.baseline),
            "what_if": _run(self.what_if),
            "difference": difference,
            "changes": [c.to_dict() for c in self.changes],
        }


def _run(report: Report) -> dict[str, Any]:
    whole = report.to_dict()
    return {"totals": whole["totals"], "stats": whole["stats"]}


def _money(report: Report) -> dict[tuple[str, str], tuple[str, Decimal]]:
    """``(order, kind) -> (currency, total)``."""
    sums: dict[tuple[str, str], tuple[str, Decimal]] = {}
    for line in report.ledger:
        if line.subject.startswith("order/"):
            key = (line.subject, line.kind)
            sums[key] = (line.currency, sums.get(key, (line.currency, Decimal(0)))[1] + line.amount)
    return sums


def compare_runs(version: PolicyVersion, baseline: Report, draft: Report) -> WhatIf:
    """The orders whose money or state differ between ``baseline`` and ``draft``: one
    change per order and ledger kind, largest absolute change first (then by subject
    and kind, so the order is stable)."""
    before, after = _money(baseline), _money(draft)
    orders = [s for s in dict.fromkeys([*baseline.entities, *draft.entities]) if s.startswith("order/")]
    kinds: dict[str, list[str]] = {}
    for subject, kind in [*before, *after]:
        if kind not in kinds.setdefault(subject, []):
            kinds[subject].append(kind)
    changes: list[Change] = []
    zero = Decimal(0)
    for subject in orders:
        state_before, state_after = baseline.entities.get(subject), draft.entities.get(subject)
        money = [(kind, before.get((subject, kind)), after.get((subject, kind)))
                 for kind in kinds.get(subject, [])]
        changed = state_before != state_after or any(
            (b[1] if b else zero) != (a[1] if a else zero) for _, b, a in money)
        if not changed:
            continue
        if not money:
            changes.append(Change(subject, None, None, zero, zero, state_before, state_after))
        for kind, b, a in money:
            currency = (b or a)[0]  # type: ignore[index]
            changes.append(Change(subject, kind, currency, b[1] if b else zero, a[1] if a else zero,
                                  state_before, state_after))
    order = {kind: i for i, kind in enumerate(LEDGER_KINDS)}
    changes.sort(key=lambda c: (-abs(c.delta), c.subject, order.get(c.kind or "", -1)))
    return WhatIf(version, baseline, draft, tuple(changes))


def what_if(run: Callable[[Policies | None], Report], version: PolicyVersion,
            baseline: Policies | None = None) -> WhatIf:
    """Replay twice through ``run(policies)`` (a replay of one log): with ``baseline``
    (the versions given; ``None``: the built-in one), then with ``version`` governing
    every order; compare."""
    first = run(baseline)
    return compare_runs(version, first, run(Policies.only(version)))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _stats(report: Report) -> str:
    return (f"{_count(report.lines, 'line')}, {report.applied} applied, "
            f"{_count(report.duplicates, 'duplicate')}, {len(report.rejected)} rejected")


def render_what_if_text(result: WhatIf, *, width: int = 100) -> str:
    """The comparison for people: both runs' totals and the difference, then the
    orders that change (at most :data:`TABLE_ROWS` rows, then how many more)."""
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    console.print(f"What if policy {result.version.id} ({result.version.title}) had governed every order")
    console.print(f"baseline: {_stats(result.baseline)}")
    console.print(f"what-if:  {_stats(result.what_if)}")
    totals = Table(title="Totals", title_justify="left")
    for column, justify in (("currency", "left"), ("kind", "left"), ("baseline", "right"),
                            ("what-if", "right"), ("difference", "right")):
        totals.add_column(column, justify=justify)  # type: ignore[arg-type]
    for currency, kind, before, after in result.totals():
        totals.add_row(currency, kind, format_amount(before, currency), format_amount(after, currency),
                       format_amount(after - before, currency))
    console.print(totals)
    if not result.changes:
        console.print("No order changes.")
        return out.getvalue()
    table = Table(title="Orders that change (largest change first)", title_justify="left")
    for column, justify in (("order", "left"), ("kind", "left"), ("before", "right"), ("after", "right"),
                            ("state before", "left"), ("state after", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for change in result.changes[:TABLE_ROWS]:
        entry = change.to_dict()
        table.add_row(change.subject, change.kind or "-", entry["before"], entry["after"],
                      change.state_before or "-", change.state_after or "-")
    console.print(table)
    if len(result.changes) > TABLE_ROWS:
        console.print(f"… and {len(result.changes) - TABLE_ROWS} more (--format json lists them all)")
    return out.getvalue()
