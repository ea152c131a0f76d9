"""``replay ... --out DIR``: the ledger and the final entities as Parquet (issue 13).

Next to the usual report (whose JSON stays the contract of the command), for tools
that read Parquet directly (DuckDB, pandas, Spark, Polars):

* ``DIR/ledger/currency=XXX/part-0.parquet``: the ledger, partitioned by currency
  (Hive style: the currency is the directory's value, not a column of the files).
  Columns: ``position`` (the line's place in the report's ledger, from 0: the order of
  the report), ``time`` (timestamp, µs, UTC), ``kind``, ``subject``, ``amount``
  (``decimal128(38, 4)``: exact; ISO 4217 has no currency with more than 4 minor
  digits), ``cause``.
* ``DIR/entities.parquet``: ``subject``, ``kind`` (the part before ``/``), ``state``, in
  the report's order.

Money stays exact: ``Decimal`` in, ``decimal128`` out, never a float. ``DIR`` is made
if missing; files of an earlier run there are replaced (the ledger directory is
written anew).
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

from .report import Report

__all__ = ["SCALE", "MissingPyarrow", "read_entities", "read_ledger", "write_parquet"]

#: Digits after the point of the ``amount`` column.
SCALE = 4
_QUANTUM = Decimal(1).scaleb(-SCALE)


class MissingPyarrow(RuntimeError):
    """pyarrow is not installed."""


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.dataset
        import pyarrow.parquet
    except ImportError:
        raise MissingPyarrow("--out needs pyarrow: pip install 'collab-lifecycles[dask]'") from None
    return pyarrow


def write_parquet(report: Report, out: str | Path) -> list[Path]:
    """Write the ledger and the entities of ``report`` under ``out``; the files written.
    ``ValueError`` for an amount with more than :data:`SCALE` decimals (a domain's own
    currency), ``OSError`` when ``out`` cannot be written."""
    pa = _pyarrow()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    amounts = []
    for line in report.ledger:
        exact = line.amount.quantize(_QUANTUM)
        if exact != line.amount:
            raise ValueError(f"{line.subject}: amount {line.amount} has more than {SCALE} decimals")
        amounts.append(exact)
    ledger = pa.table({
        "position": pa.array(range(len(report.ledger)), pa.int64()),
        "time": pa.array([line.time for line in report.ledger], pa.timestamp("us", tz="UTC")),
        "kind": pa.array([line.kind for line in report.ledger], pa.string()),
        "subject": pa.array([line.subject for line in report.ledger], pa.string()),
        "amount": pa.array(amounts, pa.decimal128(38, SCALE)),
        "currency": pa.array([line.currency for line in report.ledger], pa.string()),
        "cause": pa.array([line.cause for line in report.ledger], pa.string()),
    })
    target = folder / "ledger"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    written: list[Path] = []
    for currency in sorted({line.currency for line in report.ledger}):
        part = target / f"currency={currency}"
        part.mkdir()
        rows = ledger.filter(pa.compute.equal(ledger["currency"], currency)).drop_columns(["currency"])
        pa.parquet.write_table(rows, part / "part-0.parquet")
        written.append(part / "part-0.parquet")
    subjects = list(report.entities)
    entities = pa.table({
        "subject": pa.array(subjects, pa.string()),
        "kind": pa.array([s.partition("/")[0] for s in subjects], pa.string()),
        "state": pa.array([report.entities[s] for s in subjects], pa.string()),
    })
    pa.parquet.write_table(entities, folder / "entities.parquet")
    written.append(folder / "entities.parquet")
    return written


def read_ledger(out: str | Path) -> list[dict[str, Any]]:
    """The ledger written under ``out``, as dicts in the report's order (``currency``
    from the partition): what DuckDB or pandas would read."""
    pa = _pyarrow()
    target = Path(out) / "ledger"
    if not any(target.iterdir()):
        return []
    dataset = pa.dataset.dataset(target, format="parquet", partitioning="hive")
    rows = dataset.to_table().to_pylist()
    return sorted(rows, key=lambda row: row["position"])


def read_entities(out: str | Path) -> dict[str, str]:
    """The entities written under ``out``: subject -> state, in the report's order."""
    pa = _pyarrow()
    table = pa.parquet.read_table(Path(out) / "entities.parquet")
    return dict(zip(table["subject"].to_pylist(), table["state"].to_pylist(), strict=True))
