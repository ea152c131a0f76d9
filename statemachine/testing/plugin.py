"""The pytest plugin: ``pytest --lifecycle-coverage`` prints which declared transitions
and guards the run exercised (:mod:`.covered`), per lifecycle, after the tests.

``--lifecycle-coverage-domain=MODULE:ATTRIBUTE`` reports that domain's lifecycles only
(listed even when no test ran them); ``--lifecycle-coverage-fail-under=PCT`` fails the
run when a reported lifecycle took fewer than PCT % of its declared transitions.

Registered through the ``pytest11`` entry point of ``collab-lifecycles``, so installing
the package is enough. Without the option it does nothing and imports nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

_KEY = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lifecycle-coverage", "statemachine lifecycle coverage")
    group.addoption("--lifecycle-coverage", action="store_true", default=False,
                    help="report which declared transitions and guards of every lifecycle "
                         "the run exercised")
    group.addoption("--lifecycle-coverage-domain", metavar="MODULE:ATTRIBUTE", default=None,
                    help="report only this domain's lifecycles (implies --lifecycle-coverage)")
    group.addoption("--lifecycle-coverage-fail-under", metavar="PCT", type=float, default=None,
                    help="fail when a reported lifecycle took fewer than PCT %% of its "
                         "declared transitions (implies --lifecycle-coverage)")


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("lifecycle_coverage_domain", None)
    wanted = (config.getoption("lifecycle_coverage", False) or spec is not None
              or config.getoption("lifecycle_coverage_fail_under", None) is not None)
    if wanted:
        from .covered import LifecycleCoverage

        only = None
        if spec is not None:
            from ..loading import DomainError, load_domain

            try:
                only = load_domain(spec).lifecycles
            except DomainError as exc:
                raise pytest.UsageError(str(exc).replace("--domain", "--lifecycle-coverage-domain", 1)) \
                    from None
        coverage = LifecycleCoverage(only)
        coverage.install()
        config.stash[_KEY] = coverage


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    coverage = config.stash.get(_KEY, None)
    if coverage is None:
        return
    terminalreporter.write_sep("-", "lifecycle coverage: declared transitions taken")
    terminalreporter.write(coverage.table())
    floor = config.getoption("lifecycle_coverage_fail_under", None)
    if floor is not None and (short := coverage.below(floor)):
        terminalreporter.write_line(f"FAIL: lifecycle coverage under {floor:g} % for "
                                    f"{', '.join(short)}", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    coverage = session.config.stash.get(_KEY, None)
    floor = session.config.getoption("lifecycle_coverage_fail_under", None)
    if coverage is not None and floor is not None and coverage.below(floor) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    coverage = config.stash.get(_KEY, None)
    if coverage is not None:
        coverage.uninstall()
