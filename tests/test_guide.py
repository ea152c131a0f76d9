"""docs/your-own-lifecycle.md runs as written: every block, in order, output compared.

* ```` ```python ```` blocks run one after the other in one namespace (a fresh process);
  a ```` ```text ```` block right after one is exactly what it prints.
* ```` ```sh ```` blocks: each line is run (``python`` is this interpreter) in a copy of
  ``examples/``; its exit status is 0 unless the line ends ``# exit N``; a ```` ```text ````
  block after the block lists lines that its output contains, in order. The service line
  is run by :func:`test_the_guide_serves_the_log_with_its_domain`, with real uvicorn.
* The declaration blocks are the example file, verbatim: the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "your-own-lifecycle.md"
EXAMPLE = ROOT / "examples" / "support_request.py"
LOG = ROOT / "examples" / "support_request.jsonl"

_RUN_BLOCKS = """
import contextlib, io, json, sys
namespace = {"__name__": "__guide__"}
outputs = []
for block in json.loads(sys.stdin.read()):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(block, "docs/your-own-lifecycle.md", "exec"), namespace)
    outputs.append(buffer.getvalue())
print(json.dumps(outputs))
"""


def blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced block, in order."""
    return re.findall(r"^```(\w+)\n(.*?)^```", GUIDE.read_text(), flags=re.S | re.M)


def _followed_by_text(items: list[tuple[str, str]], index: int) -> str | None:
    if index + 1 < len(items) and items[index + 1][0] == "text":
        return items[index + 1][1]
    return None


def test_the_readme_links_the_guide() -> None:
    assert "docs/your-own-lifecycle.md" in (ROOT / "README.md").read_text()


def test_every_python_block_runs_and_prints_what_the_guide_shows() -> None:
    items = blocks()
    python = [(i, text) for i, (lang, text) in enumerate(items) if lang == "python"]
    assert len(python) >= 8
    result = subprocess.run([sys.executable, "-c", _RUN_BLOCKS], input=json.dumps([t for _, t in python]),
                            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    for (index, _), output in zip(python, outputs, strict=True):
        expected = _followed_by_text(items, index)
        assert output == (expected or ""), f"block {index} printed:\n{output}"


def test_the_declaration_blocks_are_the_example_verbatim() -> None:
    example = EXAMPLE.read_text()
    markers = ("Lifecycle(", "@attrs.frozen", "@guard", "@action", "def influencer_ids")
    declarations = [text for lang, text in blocks()
                    if lang == "python" and any(marker in text for marker in markers)]
    assert len(declarations) >= 4
    for text in declarations:
        body = "\n".join(line for line in text.splitlines() if not line.startswith(("print(", "try:",
                         "    influencer_ids(", "except", "    print(")))
        for chunk in body.strip().split("\n\n\n"):  # top-level pieces, two blank lines apart
            assert chunk.strip() in example, f"not in {EXAMPLE.name}:\n{chunk[:300]}"


def _commands() -> list[tuple[str, int, str | None]]:
    items = blocks()
    out = []
    for index, (lang, text) in enumerate(items):
        if lang != "sh":
            continue
        expected = _followed_by_text(items, index)
        for line in text.splitlines():
            if line.strip() and "examples/service.py" not in line:
                status = re.search(r"#\s*exit (\d+)\s*$", line)
                out.append((line, int(status.group(1)) if status else 0, expected))
    return out


def test_every_command_of_the_guide_runs(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "tests", tmp_path / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = _commands()
    assert len(commands) >= 5
    outputs: dict[str | None, str] = {}
    for line, status, expected in commands:
        command = shlex.split(line.split("#")[0])
        assert command[0] == "python", line
        result = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True,
                                cwd=tmp_path, env=env, timeout=300, check=False)
        assert result.returncode == status, f"{line}\n{result.stdout}\n{result.stderr}"
        if status == 2:
            assert len(result.stderr.splitlines()) == 1, result.stderr
        outputs[expected] = outputs.get(expected, "") + result.stdout + result.stderr
    for expected, output in outputs.items():
        if expected is None:
            continue
        position = 0
        for wanted in expected.splitlines():
            found = output.find(wanted, position)
            assert found >= 0, f"{wanted!r} not in the output (in order):\n{output}"
            position = found + len(wanted)
    assert (tmp_path / "support-diagrams" / "support_request.mmd").is_file()


def test_the_guide_serves_the_log_with_its_domain(tmp_path: Path) -> None:
    """The guide's service command, on a free port, with real uvicorn: the example log
    posted line by line ends where the replay ends."""
    line = next(line for lang, text in blocks() if lang == "sh"
                for line in text.splitlines() if "examples/service.py" in line)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = shlex.split(line)
    command[command.index("--port") + 1] = str(port)
    command[command.index("--db") + 1] = str(tmp_path / "support.db")
    log = open(tmp_path / "service.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, *command[1:], "--drain-interval", "0"], cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(300):  # waiting for start-up, not timing anything
                if process.poll() is not None:
                    pytest.fail((tmp_path / "service.log").read_text())
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            statuses = [client.post("/events", json=json.loads(raw)).status_code
                        for raw in LOG.read_text().splitlines()]
            assert statuses == [200] * 8 + [422, 200, 422]  # guards judging data.* fields: 422
            assert client.get("/entities/support_request/R-1").json()["state"] == "approved"
            assert client.get("/entities/support_request/R-2").json()["state"] == "declined"
            assert client.get("/entities/agreement/A-1").json()["state"] == "cancelled"
            ledger = client.get("/ledger").json()
            assert [(x["kind"], x["amount"]) for x in ledger["ledger"]] == [("charge", "150.00")]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
