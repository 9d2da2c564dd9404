"""The suite's own machinery: optional dependencies fail in CI instead of skipping, the comparison rule,
and the hypothesis profile."""

import math

import pytest
from _helpers import close, in_ci, require
from hypothesis import settings

MISSING = "micrograd_c_no_such_module"


def test_require_imports_what_is_there():
    assert require("math") is math


def test_require_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(MISSING)


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_require_fails_in_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=MISSING):
        require(MISSING)


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_unset_values(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert not in_ci()


def test_hypothesis_profile_follows_ci():
    assert settings.default.derandomize == in_ci()
    assert settings.default.deadline is None


def test_close():
    assert close(1.0, 1.0 + 1e-10)
    assert not close(1.0, 1.0 + 1e-8)
    assert close(0.0, 1e-13) and not close(0.0, 1e-11)
    assert close(math.nan, math.nan) and not close(math.nan, 0.0) and not close(0.0, math.nan)
    assert close(math.inf, math.inf) and not close(math.inf, -math.inf) and not close(1e308, math.inf)
