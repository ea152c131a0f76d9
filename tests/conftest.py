import logging

import pytest
import structlog

# tests/helpers.py holds shared asserts: rewrite them too (test modules import it early).
pytest.register_assert_rewrite("helpers")

# Library code logs through structlog; keep test output quiet unless a test captures.
structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    cache_logger_on_first_use=False,
)

# A throwaway PostgreSQL cluster for the store and service tests (issue 16).
pytest_plugins = ["pgcluster", "backends"]
