"""The README's Python examples run as written (docs that cannot rot)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_embedding_example_runs_and_prints_what_it_claims() -> None:
    blocks = python_blocks()
    assert blocks, "README has no python example"
    result = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True",
        "order/O-1: cannot start in state submitted",
        "deemed_approved True",
    ]


def test_readme_mermaid_block_is_the_generated_order_diagram() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)
    assert blocks == [(ROOT / "diagrams" / "order.mmd").read_text()], (
        "README's Mermaid block differs from diagrams/order.mmd: paste the regenerated file"
    )


def test_durable_example_runs_and_survives_a_restart(tmp_path: Path) -> None:
    block = python_blocks()[1]
    assert "SQLiteStore" in block
    first = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60, check=False,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["approved", "e3#1 250.00"]
    again = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60, check=False,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["approved"]  # reopened; duplicates; nothing to drain
    assert (tmp_path / "collab.jsonl").exists()
