"""A throwaway PostgreSQL cluster owned by the test run (a pytest plugin, see conftest).

``initdb`` into a temporary directory, the server listening on a Unix socket only
(no TCP port to collide with anything), stopped and deleted at the end of the session.
Tests never depend on a server someone else started. initdb and postgres refuse to
run as root, so under root they run as the ``postgres`` system user Debian's package
creates, in a directory that user owns.

Where PostgreSQL is not installed, the tests that need it skip, except in CI
(``CI=true``), where a missing PostgreSQL fails the run: CI installs it
(``scripts/install-system-deps.sh``) and must test both stores.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _binaries() -> Path | None:
    def major(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """The running cluster: ``url(dbname)`` and ``new_database()`` for each test."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pg16-"))
        self.user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.user = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.socket = self.root  # short: a socket path is limited to ~100 bytes
        self._names = itertools.count(1)
        self._made = False

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.user, *argv], check=True, capture_output=True, cwd=self.root)

    def start(self) -> Cluster:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        # fsync off: the tests kill clients, never the server, so it costs no claim.
        options = (f"-k {self.socket} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
                   " -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            # Deleting thousands of small files takes minutes on a busy disk: the server is
            # stopped, so a detached rm cleans up while the test run ends.
            subprocess.Popen(["rm", "-rf", str(self.root)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def url(self, dbname: str, schema: str | None = None) -> str:
        options = f"&options=-csearch_path%3D{schema}" if schema else ""
        return f"postgresql://postgres@/{dbname}?host={self.socket}{options}"

    def new_database(self) -> str:
        """A fresh, empty place for one store: a schema of its own in the ``tests``
        database (the URL sets its ``search_path``). A schema costs a few files where a
        database costs hundreds, and is made in milliseconds."""
        import psycopg

        if not self._made:
            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute('CREATE DATABASE "tests" TEMPLATE template0')
            self._made = True
        name = f"s{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url("tests"), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return self.url("tests", name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bindir = _binaries()
    if bindir is None:
        message = "PostgreSQL is not installed (scripts/install-system-deps.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must test the PostgreSQL store", pytrace=False)
        pytest.skip(message)
    cluster = Cluster(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()
