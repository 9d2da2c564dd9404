"""Shared test setup: a leak check around every test and the hypothesis profiles.

- Every test must leave ``micrograd_c.live_values()`` where it found it: whatever a test builds is freed
  when the test drops it, so every test doubles as a leak test.
- Hypothesis runs derandomized (fixed examples, reproducible) when the environment variable CI is set.
"""

import gc
import sys

import micrograd_c
import pytest
from _helpers import in_ci
from hypothesis import HealthCheck, settings

# The leak check is a function-scoped autouse fixture on purpose: it wraps a whole @given test.
_SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=150, suppress_health_check=_SUPPRESSED)
settings.load_profile("ci" if in_ci() else "dev")


def pytest_collection_finish(session):
    # torch, numpy and friends bring ~200k GC-tracked objects: freezing them makes each gc.collect() of the
    # leak check scan only what the tests create (microseconds instead of ~100 ms)
    gc.collect()
    gc.freeze()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_report_{report.when}", report)


@pytest.fixture(autouse=True)
def no_leaked_values(request):
    """live_values() after the test equals live_values() before it (after a full collection)."""
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):  # an earlier failure's traceback: it keeps that test's Values alive
            delattr(sys, name)
    gc.collect()
    before = micrograd_c.live_values()
    yield
    call = getattr(request.node, "_report_call", None)
    if call is not None and call.failed:
        return  # the failure's traceback keeps the test's Values alive: don't report a second problem
    gc.collect()
    after = micrograd_c.live_values()
    assert after == before, f"the test leaked {after - before} C value nodes ({before} -> {after})"
