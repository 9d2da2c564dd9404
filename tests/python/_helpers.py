"""Small helpers shared by the test modules (imported as ``from _helpers import ...``)."""

import importlib
import math
import os
import sys

import pytest


def in_ci():
    """True when the environment variable CI is set to something other than an empty/false value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(module_name):
    """Import an optional test dependency: skip without it, but fail in CI, where the test extra
    installs every dependency and a missing one means the suite silently tests less."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        message = f"{module_name} is not importable ({exc}); it is part of the [test] extra"
        if in_ci():
            pytest.fail(f"{message} and CI is set", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def close(got, ref, rel=1e-9, abs_=1e-12):
    """``|got - ref| <= abs_ + rel * |ref|``, with nan equal only to nan and an infinity only to itself."""
    got, ref = float(got), float(ref)
    if math.isnan(ref) or math.isnan(got):
        return math.isnan(ref) and math.isnan(got)
    if math.isinf(ref) or math.isinf(got):
        return got == ref
    return abs(got - ref) <= abs_ + rel * abs(ref)


def rss_bytes():
    """Resident memory of this process now (Linux), else the peak resident size."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def trace(root):
    """micrograd's trace() from trace_graph.ipynb: every node and edge reachable through ``_prev``."""
    nodes, edges = set(), set()

    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)

    build(root)
    return nodes, edges


def demo_loop(Value, model, X, y, steps, after_step=None):
    """micrograd's training loop from demo.ipynb, verbatim but for the number of steps (one step per call
    of an inner function, so that its graph is garbage by the time after_step runs).

    Returns [(loss, accuracy)] per step."""

    def step(k):
        # loss(): the demo's full-batch loss
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses_ = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses_) * (1.0 / len(losses_))
        alpha = 1e-4
        reg_loss = alpha * sum((p * p for p in model.parameters()))
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        acc = sum(accuracy) / len(accuracy)
        # backward, update (sgd)
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        return float(total_loss.data), float(acc)

    history = []
    for k in range(steps):
        history.append(step(k))
        if after_step:
            after_step()
    return history


def readme_expression(Value):
    """micrograd's README expression with the given Value class, after g.backward(): (a, b, g).
    Expected: g.data 24.7041, a.grad 138.8338, b.grad 645.5773."""
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    return a, b, g


def seeded_mlp(nin, nouts, seed):
    """micrograd_c's MLP(nin, nouts) with the weights random.seed(seed) gives (micrograd's draws)."""
    import random

    from micrograd_c import MLP

    random.seed(seed)
    return MLP(nin, nouts)


def noisy_moons(n=64, seed=0):
    """Two interleaved half circles, as NumPy arrays (X of n rows of 2, y in {-1, +1}): small, fast data."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    upper = np.arange(n) % 2 == 0
    x = np.where(upper, np.cos(t), 1 - np.cos(t)) + rng.uniform(-0.2, 0.2, n)
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t)) + rng.uniform(-0.2, 0.2, n)
    return np.stack([x, y], axis=1), np.where(upper, -1.0, 1.0)


def write_csv(path, header, rows):
    """A CSV file of a header and rows, written with the csv module; returns its path as str."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def one_line_error(result, status, *fragments):
    """A finished command (subprocess.run's result) failed with `status` and said why in one line on stderr,
    naming every fragment, with no traceback. Returns that line."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
