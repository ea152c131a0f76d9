"""Screenshots of the example log's HTML report, for the README (``docs/html-report-*.png``).

Writes the report with the command line, opens it in Debian's headless Chromium through
Playwright (as ``tests/test_html_browser.py`` does: no network, a fresh profile) and
takes two pictures: the top of the page (summary, money, chart) and the entity browser
with ``order/O-404`` chosen.

``.venv/bin/python scripts/html-report-screenshots.py [--out docs]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "collaborations.jsonl"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where (default: docs/)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "collaborations.html"
        subprocess.run([sys.executable, "-m", "statemachine", "replay", str(EXAMPLE.relative_to(ROOT)),
                        "--format", "json", "--html", str(report)], cwd=ROOT, check=False,
                       stdout=subprocess.DEVNULL)
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(Path(tmp) / "profile"), executable_path=args.chromium, headless=True, args=FLAGS,
                viewport={"width": 1200, "height": 1560}, offline=True)
            page = context.new_page()
            page.goto(report.as_uri())
            page.screenshot(path=str(out / "html-report-summary.png"))
            page.goto(report.as_uri() + "#entity=order/O-404")
            page.reload()
            page.locator("#entities").screenshot(path=str(out / "html-report-entity.png"))
            context.close()
    for name in ("html-report-summary.png", "html-report-entity.png"):
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
