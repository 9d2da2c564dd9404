"""Deep graphs, memory and copies: backward and freeing never recurse, nothing leaks, RSS stays flat."""

import contextlib
import copy
import gc
import math
import pickle
import sys
import threading

import micrograd_c
import pytest
from _helpers import rss_bytes
from micrograd_c import Value

N = 10**6


def frame_depth():
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


@contextlib.contextmanager
def recursion_limit(limit=100):
    """A recursion limit far below the graph depth: any recursive traversal would raise."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, frame_depth() + 20))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@contextlib.contextmanager
def thread_stack_size(size):
    old = threading.stack_size(size)
    try:
        yield
    finally:
        threading.stack_size(old)


def run_in_thread(target):
    """Run target in a new thread created with a 256 KiB stack; re-raise what it raised."""
    errors = []

    def wrapper():
        try:
            target()
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    with thread_stack_size(256 * 1024):
        thread = threading.Thread(target=wrapper)
        thread.start()
    thread.join()
    if errors:
        raise errors[0]


def chain_add(n, start=0.5):
    x = Value(start)
    y = x
    for _ in range(n):
        y = y + 1
    return x, y


# ---- deep chains -------------------------------------------------------------------------------------------


def test_backward_on_a_million_node_chain():
    start = micrograd_c.live_values()
    with recursion_limit(100):
        x, y = chain_add(N)
        assert micrograd_c.live_values() - start == N + 1
        y.backward()
        assert y.data == 0.5 + N
        assert x.grad == 1.0
        del y
        assert micrograd_c.live_values() - start == 1  # x alone
        del x
    assert micrograd_c.live_values() == start


def test_backward_on_a_million_node_chain_of_alternating_ops():
    c = 1 - 1e-6
    start = micrograd_c.live_values()
    with recursion_limit(100):
        x = Value(0.25)
        w = Value(-0.75)
        y = x
        expected = 0.25
        for k in range(N // 4):
            y = y * c
            y = y + w
            y = y.relu() if k % 2 else -y
            y = 2.0 - y
            expected = 2.0 - (max(expected * c + -0.75, 0.0) if k % 2 else -(expected * c + -0.75))
        y.backward()
        assert y.data == expected
        # d/dx and d/dw by the same recurrences, step by step from the output: forward mode by hand
        dx, dw = 1.0, 0.0
        value = 0.25
        for k in range(N // 4):
            pre = value * c + -0.75
            sign = (1.0 if pre > 0 else 0.0) if k % 2 else -1.0
            dx, dw = -sign * dx * c, -sign * (dw * c + 1.0)
            value = 2.0 - (max(pre, 0.0) if k % 2 else -pre)
        assert x.grad == pytest.approx(dx, rel=1e-9, abs=1e-12)
        assert w.grad == pytest.approx(dw, rel=1e-9, abs=1e-12)
        del x, w, y
    assert micrograd_c.live_values() == start


def test_a_leaf_used_a_million_times():
    x = Value(1.5)
    with recursion_limit(100):
        total = x
        for _ in range(N - 1):
            total = total + x
        total.backward()
    assert total.data == 1.5 * N
    assert x.grad == float(N)
    product = x * x
    for _ in range(1000):
        product = product * x
    x.grad = 0.0
    product.backward()
    assert x.grad == pytest.approx(1002 * 1.5**1001, rel=1e-12)


def test_a_wide_graph_of_a_million_leaves():
    leaves = [Value(float(i % 7)) for i in range(N)]
    total = sum(leaves[i] * leaves[i] for i in range(N))
    with recursion_limit(100):
        total.backward()
    assert total.data == float(sum((i % 7) ** 2 for i in range(N)))
    assert all(leaf.grad == 2.0 * (i % 7) for i, leaf in enumerate(leaves[:1000]))
    assert leaves[-1].grad == 2.0 * ((N - 1) % 7)


def test_dropping_a_million_node_chain_in_a_thread_with_a_small_stack():
    start = micrograd_c.live_values()
    holder = [chain_add(N)[1]]
    assert micrograd_c.live_values() - start == N + 1

    def drop():
        holder.clear()  # the last reference dies in this thread

    run_in_thread(drop)
    assert holder == []
    assert micrograd_c.live_values() == start


def test_building_backward_and_dropping_in_a_thread_with_a_small_stack():
    results = []

    def work():
        x, y = chain_add(N)
        y.backward()
        results.append((x.grad, y.data))
        del x, y
        results.append(micrograd_c.live_values())

    start = micrograd_c.live_values()
    run_in_thread(work)
    assert results == [(1.0, 0.5 + N), start]
    assert micrograd_c.live_values() == start


def test_values_built_in_a_thread_and_dropped_in_the_main_thread():
    start = micrograd_c.live_values()
    box = []
    run_in_thread(lambda: box.append(chain_add(10_000)))
    assert micrograd_c.live_values() - start == 10_001  # the thread is gone, its values are counted
    x, y = box.pop()
    y.backward()
    assert x.grad == 1.0
    del x, y
    assert micrograd_c.live_values() == start


def test_threads_building_graphs_at_the_same_time():
    shared = Value(0.5)
    results, errors = [], []

    def work(seed):
        try:
            total = 0.0
            for k in range(2000):
                a = Value(seed + 0.001 * k)
                out = (a * shared + a.tanh()) ** 2 - shared / (a + 3.0)
                out.backward()
                total += a.grad
            results.append((seed, total))
        except BaseException as exc:
            errors.append(exc)

    start = micrograd_c.live_values()
    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert micrograd_c.live_values() == start
    # the same work in this thread alone gives the same numbers
    for seed, total in results:
        expected = 0.0
        for k in range(2000):
            a = Value(seed + 0.001 * k)
            ((a * shared + a.tanh()) ** 2 - shared / (a + 3.0)).backward()
            expected += a.grad
        assert total == expected
    assert len(results) == 4


THREAD_CHURN_SCRIPT = r"""
import os, threading
import micrograd_c
from micrograd_c import Value

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def chain(n):
    y = Value(0.5)
    for _ in range(n):
        y = y + 1
    return y

n = 300_000
holder = [chain(n)]
holder.clear()                      # warm up in this thread: its pool reaches the size of one chain
before = rss()
for _ in range(5):
    holder.append(chain(n))         # built here...
    t = threading.Thread(target=holder.clear)
    t.start()                       # ...freed in a thread that then exits
    t.join()
print(rss() - before, n * micrograd_c.value_size(), micrograd_c.live_values())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_freed_by_a_finished_thread_is_reused():
    # Graphs built in one thread and freed in another that then exits (a worker pool, a request thread)
    # must not grow the process forever. A fresh interpreter, so the pools start empty.
    import subprocess

    done = subprocess.run([sys.executable, "-c", THREAD_CHURN_SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    grown, chain_bytes, live = map(int, done.stdout.split())
    assert live == 0
    assert grown < 1.5 * chain_bytes, (
        f"RSS grew by {grown / 2**20:.0f} MiB over 5 chains of {chain_bytes / 2**20:.0f} MiB freed in exited threads"
    )


# ---- soak ---------------------------------------------------------------------------------------------------


def small_graph_cycle(k):
    a = Value(0.1 * (k % 13) - 0.6)
    b = Value(1.5)
    c = (a * b + a.tanh() - 2.0 / b) ** 2
    d = (c.relu() + (a - b).exp() * 0.5).sigmoid() + c.log()
    d.backward()
    return a.grad + b.grad


def test_soak_build_backward_drop_stays_flat():
    start = micrograd_c.live_values()
    for k in range(10_000):  # warm up: pools, free lists and the float freelist reach their size
        small_graph_cycle(k)
    gc.collect()
    rss_before = rss_bytes()
    counts = []
    total = 0.0
    for block in range(10):
        for k in range(10_000):
            total += small_graph_cycle(k)
        counts.append(micrograd_c.live_values())
    gc.collect()
    grown = rss_bytes() - rss_before
    assert counts == [start] * 10
    assert math.isfinite(total)  # every cycle ran backward to a number
    assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 100,000 cycles"


def test_soak_of_mlp_steps_stays_flat():
    import random

    random.seed(0)
    model = micrograd_c.MLP(2, [8, 8, 1])
    start = micrograd_c.live_values()
    for step in range(300):
        loss = sum((model([0.5 * i, -0.25 * i]) - i) ** 2 for i in range(4))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.001 * p.grad
        del loss
        assert micrograd_c.live_values() == start


# ---- copies and pickles -------------------------------------------------------------------------------------


def graph_root():
    a, b = Value(2.0), Value(-3.0)
    out = (a * b + a.exp()).tanh() * 4
    out.backward()
    return out


@pytest.mark.parametrize(
    "duplicate",
    [
        pytest.param(lambda v: pickle.loads(pickle.dumps(v)), id="pickle"),
        *[
            pytest.param(lambda v, p=p: pickle.loads(pickle.dumps(v, protocol=p)), id=f"pickle-protocol-{p}")
            for p in range(pickle.HIGHEST_PROTOCOL + 1)
        ],
        pytest.param(copy.copy, id="copy"),
        pytest.param(copy.deepcopy, id="deepcopy"),
    ],
)
def test_copies_are_detached_leaves_with_equal_data_and_grad(duplicate):
    root = graph_root()
    twin = duplicate(root)
    assert type(twin) is Value
    assert twin is not root
    assert (twin.data, twin.grad) == (root.data, root.grad) == (root.data, 1.0)
    assert twin._op == "" and twin._prev == set()
    # detached: changing one leaves the other alone, and the copy's backward reaches nothing else
    twin.data = 7.0
    assert root.data != 7.0
    leaf = duplicate(Value(3.5))
    assert (leaf.data, leaf.grad) == (3.5, 0.0)
    for special in (float("inf"), float("-inf")):
        assert duplicate(Value(special)).data == special
    nan_copy = duplicate(Value(float("nan")))
    assert nan_copy.data != nan_copy.data


def test_deepcopy_of_a_model_gives_independent_parameters():
    import random

    random.seed(2)
    model = micrograd_c.MLP(2, [3, 1])
    clone = copy.deepcopy(model)
    assert [p.data for p in clone.parameters()] == [p.data for p in model.parameters()]
    assert all(p is not q for p, q in zip(clone.parameters(), model.parameters()))
    assert clone([1.0, 2.0]).data == model([1.0, 2.0]).data
    restored = pickle.loads(pickle.dumps(model))
    assert repr(restored) == repr(model)
    assert [p.data for p in restored.parameters()] == [p.data for p in model.parameters()]


def test_pickling_the_root_of_a_million_node_chain():
    x, y = chain_add(N)
    y.backward()
    with recursion_limit(100):
        data = pickle.dumps(y)
        twin = pickle.loads(data)
        twin_copy = copy.deepcopy(y)
    assert len(data) < 200
    assert (twin.data, twin.grad) == (y.data, 1.0)
    assert (twin_copy.data, twin_copy.grad) == (y.data, 1.0)
    assert twin._prev == set()
