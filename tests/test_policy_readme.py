"""The README's ``--verify`` and ``--what-if`` outputs are what the commands print (docs
that cannot rot): each ```sh block of the policy section is run and the ```text block
after it compared, line by line (trailing spaces aside)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOWN = re.compile(r"```sh\n\.venv/bin/python (-m statemachine replay examples/[^\n]*)\n```\n\n"
                   r"```text\n(.*?)```", flags=re.S)


def shown() -> list[tuple[str, str]]:
    return SHOWN.findall((ROOT / "README.md").read_text())


def test_the_readme_shows_verify_and_what_if() -> None:
    commands = [command for command, _ in shown()]
    assert any("--verify examples/recorded-ledger.csv" in c for c in commands)
    assert any("--what-if examples/policy-2026-03.toml" in c for c in commands)


@pytest.mark.parametrize(("command", "output"), shown())
def test_the_readme_output_is_what_the_command_prints(command: str, output: str) -> None:
    args = command.partition(" | sed -n '/^Verify/,$p'")[0]
    done = subprocess.run([sys.executable, *args.split()], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1, done.stderr  # the example log has rejected lines; the ledger findings
    printed = done.stdout
    if "| sed" in command:
        printed = printed[printed.index("\nVerify") + 1:]
    assert [line.rstrip() for line in printed.splitlines()] == output.splitlines()
