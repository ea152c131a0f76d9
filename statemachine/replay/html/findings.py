"""The HTML report's sections for ``--verify`` and ``--what-if``: what they found, as
:class:`~.sections.Section` objects.

Here, not in :mod:`..audit` or :mod:`..whatif`: those modules hand out plain data and
know nothing of this package (which sits above them). The verify findings are shown
field by field (:func:`~.sections.section_from`: one table per kind of finding, every
column the JSON report has). A :class:`~..whatif.WhatIf` is not shown that way: it
holds both runs' whole reports, and the page already shows the baseline; its section
has the money per currency and kind of both runs and the orders that change.
"""

from __future__ import annotations

import attrs

from ...money import format_amount
from ..audit import Verification
from ..whatif import WhatIf
from ..whatif import _stats as run_stats  # the text report's own words
from .sections import Section, Table, section_from

__all__ = ["CHANGE_ROWS", "verify_section", "what_if_section"]

#: Orders that change listed in the page (all of them are counted; the JSON lists them all).
CHANGE_ROWS = 2000


def verify_section(verification: Verification, recorded: str) -> Section:
    """``--verify RECORDED``: the counts, every finding of each kind, and the totals
    recorded vs recomputed with their difference, as the text report has them."""
    counts = ", ".join(f"{n} {name}" for name, n in verification.counts().items())
    verdict = "Every recorded line matched." if verification.clean else "Not every recorded line matched."
    section = section_from(f"Verify against {recorded}", verification, summary=f"{counts}. {verdict}")
    totals = Table("totals", ("currency", "kind", "recorded", "recomputed", "difference"),
                   tuple((row.currency, row.kind, format_amount(row.recorded, row.currency),
                          format_amount(row.recomputed, row.currency),
                          format_amount(row.difference, row.currency)) for row in verification.totals))
    return attrs.evolve(section, tables=tuple(totals if table.caption == "totals" else table
                                              for table in section.tables))


def what_if_section(result: WhatIf, *, rows: int = CHANGE_ROWS) -> Section:
    """``--what-if FILE``: both runs' money per currency and kind, and the orders that
    change (largest change first, at most ``rows`` of them listed)."""
    version = result.version
    money = Table("money per currency and kind", ("currency", "kind", "baseline", "what if", "difference"),
                  tuple((currency, kind, format_amount(before, currency), format_amount(after, currency),
                         format_amount(after - before, currency))
                        for currency, kind, before, after in result.totals()))
    paragraphs = [f"The log replayed as it stands (the baseline, the rest of this page) and again "
                  f"with policy {version.id} ({version.title}) governing every order, whenever agreed.",
                  f"Baseline: {run_stats(result.baseline)}.", f"What if: {run_stats(result.what_if)}."]
    tables = [money]
    if result.changes:
        shown = [change.to_dict() for change in result.changes[:rows]]
        tables.append(Table(
            "orders that change (largest change first)",
            ("order", "kind", "before", "after", "state before", "state after"),
            tuple((c["subject"], c["kind"] or "–", c["before"], c["after"], c["state_before"] or "–",
                   c["state_after"] or "–") for c in shown),
            total=len(result.changes) if len(result.changes) > rows else None))
    else:
        paragraphs.append("No order changes.")
    return Section(f"What if policy {version.id} had governed every order", tuple(paragraphs), tuple(tables),
                   anchor="section-what-if")
