"""Replay an event log into entities and a money report."""

from .files import replay_paths
from .replayer import Replayer, read_lines, replay, replay_path
from .report import LEDGER_KINDS, LedgerLine, Rejection, Report, render_text, to_json

__all__ = [
    "LEDGER_KINDS",
    "LedgerLine",
    "Rejection",
    "Replayer",
    "Report",
    "read_lines",
    "render_text",
    "replay",
    "replay_path",
    "replay_paths",
    "to_json",
]
