#!/usr/bin/env bash
# System packages the project needs: Graphviz's `dot` (renders SVG/PNG diagrams) and
# Chromium (the tests open the HTML replay report in a real headless browser).
# Installed with apt-get when missing and we may (root, or passwordless sudo).
set -euo pipefail
# issue 16: PostgreSQL's server binaries (initdb, pg_ctl, postgres: Debian's `postgresql`),
# for the throwaway cluster the store tests start (tests/pgcluster.py; CI fails without them).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then PG_SUDO=""; elif sudo -n true 2>/dev/null; then PG_SUDO="sudo -n"; else PG_SUDO="-"; fi
  if [ "$PG_SUDO" != "-" ] && command -v apt-get >/dev/null 2>&1; then
    $PG_SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $PG_SUDO apt-get install -y -qq postgresql >/dev/null
  else
    echo "note: PostgreSQL is missing; install it (Debian: apt-get install postgresql) to test its store." >&2
  fi
fi
need_dot=$(command -v dot >/dev/null 2>&1 || echo yes)
# Debian's Chromium, driven by Playwright in tests/test_html_browser.py (never `playwright install`).
need_chromium=$(command -v chromium >/dev/null 2>&1 || echo yes)
if [ -z "$need_dot$need_chromium" ]; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  [ -n "$need_dot" ] && echo "note: Graphviz 'dot' is missing; install it (Debian: apt-get install graphviz) to render SVG/PNG." >&2
  [ -n "$need_chromium" ] && echo "note: Chromium is missing; install it (Debian: apt-get install chromium) to run the HTML report's browser test." >&2
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null
  if [ -n "$need_dot" ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
  fi
  if [ -n "$need_chromium" ]; then  # headless, no sandbox: its recommends are not needed
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
else
  echo "note: no apt-get here; install Graphviz ('dot') and Chromium with your package manager." >&2
fi
