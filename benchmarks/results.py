"""What every benchmark variant reports, and how two reports are compared.

Standard library only: this module is imported by our engine's runner (project
interpreter) and by the peers (their own virtualenv, where ``statemachine`` is the
PyPI package, not ours).

A variant's outcome is the final state of every entity and the money totals per
currency and ledger kind (formatted in the currency's minor units, as the report
prints them). Only a fingerprint and small summaries travel between processes; the
full states are dumped to a file on request, to show where two variants disagree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LEDGER_KINDS", "compare", "describe", "dump", "main", "summary"]

#: The ledger kinds of ``event-log.md``, in the order the report lists them.
LEDGER_KINDS = ("refund", "payment_released", "hold_placed", "hold_released", "charge")


def summary(variant: str, events: int, seconds: float, states: Mapping[str, str],
            totals: Mapping[str, Mapping[str, str]], **extra: Any) -> dict[str, Any]:
    """The one JSON object a variant prints: timing, a fingerprint of the final states,
    the count of entities per (kind, state) and the money totals."""
    digest = hashlib.sha256()
    for subject in sorted(states):
        digest.update(f"{subject}={states[subject]}\n".encode())
    counts = Counter(f"{s.partition('/')[0]}:{state}" for s, state in states.items())
    return {
        "variant": variant,
        "events": events,
        "seconds": seconds,
        "entities": len(states),
        "states_sha256": digest.hexdigest(),
        "counts": dict(sorted(counts.items())),
        "totals": {cur: {k: totals[cur][k] for k in LEDGER_KINDS if k in totals[cur]}
                   for cur in sorted(totals)},
        **extra,
    }


def dump(path: str | Path, states: Mapping[str, str],
         totals: Mapping[str, Mapping[str, str]]) -> None:
    """Write the full outcome (for a diff when two variants disagree)."""
    Path(path).write_text(json.dumps({"states": dict(sorted(states.items())), "totals": totals},
                                     indent=1) + "\n")


def compare(reference: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What differs between two summaries (empty when they agree)."""
    problems = []
    if reference["entities"] != other["entities"]:
        problems.append(f"entities: {reference['entities']} vs {other['entities']}")
    if reference["states_sha256"] != other["states_sha256"]:
        diff = {k: (reference["counts"].get(k, 0), other["counts"].get(k, 0))
                for k in sorted(set(reference["counts"]) | set(other["counts"]))
                if reference["counts"].get(k, 0) != other["counts"].get(k, 0)}
        problems.append(f"final states differ; counts (reference, other) where unequal: {diff}")
    if reference["totals"] != other["totals"]:
        problems.append(f"totals differ: {reference['totals']} vs {other['totals']}")
    return problems


def describe(states_a: Mapping[str, str], states_b: Mapping[str, str], limit: int = 10) -> list[str]:
    """The first subjects whose final state differs between two full dumps."""
    lines = []
    for subject in sorted(set(states_a) | set(states_b)):
        a, b = states_a.get(subject), states_b.get(subject)
        if a != b:
            lines.append(f"{subject}: {a} vs {b}")
            if len(lines) >= limit:
                break
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python results.py REPORT.json --variant NAME --seconds S``: the summary of a
    replay report (``--format json``), printed as one JSON object. ``run.py`` reads the
    CLI's report through this, in a process of its own, so that the harness itself
    stays small: a child's peak RSS can include its parent's, as Linux folds the
    parent's high-water mark into a ``vfork``-ed child's ``ru_maxrss``."""
    parser = argparse.ArgumentParser(description="Summarise a replay report (--format json).")
    parser.add_argument("report")
    parser.add_argument("--variant", default="ours-cli")
    parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    with open(args.report, "rb") as stream:
        report = json.load(stream)
    print(json.dumps(summary(args.variant, report["stats"]["lines"], args.seconds, report["entities"],
                             report["totals"], rejected=report["stats"]["rejected"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
