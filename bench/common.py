"""What every workload shares: the engines, timing, the garbage collector's state, and running a
measurement in a fresh interpreter.

Nothing here imports torch, micrograd or micrograd_c at import time: each engine is imported when a
workload asks for it, so `run.py --help` and the smoke test start in a fraction of a second.
"""

import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

# The names used in every table row.
MICROGRAD_C = "micrograd_c"
MICROGRAD = "micrograd"
TORCH = "PyTorch"


def value_class(engine):
    """micrograd's or micrograd_c's Value class."""
    if engine == MICROGRAD_C:
        from micrograd_c.engine import Value
    elif engine == MICROGRAD:
        from micrograd.engine import Value
    else:
        raise ValueError(f"no Value class for engine {engine!r}")
    return Value


def mlp_class(engine):
    """micrograd's or micrograd_c's MLP class."""
    if engine == MICROGRAD_C:
        from micrograd_c.nn import MLP
    elif engine == MICROGRAD:
        from micrograd.nn import MLP
    else:
        raise ValueError(f"no MLP class for engine {engine!r}")
    return MLP


TORCH_THREADS = 1


def import_torch():
    """torch, limited to one thread.

    The scalar engines run on one core, and on a small machine PyTorch's second thread makes it fragile:
    on 2 cores with the other one busy, a minibatch step took up to 100x longer with 2 threads than
    with 1. One thread is the like-for-like and the stable choice."""
    import torch

    torch.set_num_threads(TORCH_THREADS)
    return torch


def leaf_maker(engine):
    """A function making a scalar leaf that records ops for backward.

    For PyTorch that is a 0-d float64 tensor with requires_grad: the honest counterpart of a scalar
    Value. All three support `*`, `+`, `.relu()` and `.backward()`, so graphs are built by the same code.
    """
    if engine == TORCH:
        torch = import_torch()
        return lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True)
    return value_class(engine)


def warm_up_fit(X, y, nin, nouts, **fit_kwargs):
    """A short fit of a throwaway MLP(nin, nouts) on the same data and options, so that the timed fit runs
    warm (its code and memory touched once, the worker pool started), as every other figure is measured
    after a warm-up. Call it after the timed model is made: its weights come from `random` too."""
    from micrograd_c import MLP, optim

    model = MLP(nin, nouts)
    kwargs = {**fit_kwargs, "epochs": 2, "verbose": False}
    model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.01), **kwargs)


def median(values):
    return statistics.median(values)


class gc_state:
    """`with gc_state(False):` runs a block with the cyclic garbage collector off, then restores it."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.was_enabled = gc.isenabled()
        if self.enabled:
            gc.enable()
        else:
            gc.disable()
        return self

    def __exit__(self, *exc):
        if self.was_enabled:
            gc.enable()
        else:
            gc.disable()
        return False


def gc_label(enabled):
    return "default" if enabled else "off"


def now():
    return time.perf_counter()


def run_with_big_stack(function, *args, stack_mb=512, **kwargs):
    """Call function in a thread with a large C stack and return its result (or raise its exception).

    micrograd sorts the graph recursively: deep graphs need sys.setrecursionlimit raised, and a big
    stack makes sure the interpreter itself cannot overflow the C stack while it recurses.
    """
    outcome = {}

    def target():
        try:
            outcome["result"] = function(*args, **kwargs)
        except BaseException as error:  # handed back to the caller below
            outcome["error"] = error

    old_size = threading.stack_size(stack_mb * 1024 * 1024)
    try:
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_size)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


RESULT_MARK = "BENCH-RESULT "


def run_isolated(module, function, timeout=900, **kwargs):
    """Run bench/<module>.py's function(**kwargs) in a fresh Python process; return its JSON result.

    A fresh process gives every measurement the same start: no garbage or memory left from an earlier
    workload, and a crash (a deep chain that overflows the stack) ends that process, not the benchmark.
    On failure the result is {"error": "..."}.
    """
    command = [sys.executable, os.path.join(BENCH_DIR, "isolated.py"), module, function, json.dumps(kwargs)]
    arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    start = now()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    finally:
        print(f"  {module}.{function}({arguments}): {now() - start:.1f} s", file=sys.stderr, flush=True)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    if done.returncode < 0:
        reason = f"crashed with signal {-done.returncode}"
    else:
        reason = f"exited with status {done.returncode}"
    last_error = done.stderr.strip().splitlines()[-1:] or ["no output"]
    return {"error": f"{reason}: {last_error[0]}"}


def run_interleaved(calls):
    """Run calls [(module, function, kwargs, rounds)] round-robin, each run in a fresh process, and
    return, per call, the median of its rounds (see median_result).

    A shared machine's speed can drift by 1.5x over a few seconds. Measuring each engine a few times,
    interleaved with the others, keeps such a drift from favouring whichever engine ran in a fast spell.
    """
    results = [[] for _ in calls]
    for round_ in range(max(rounds for *_, rounds in calls)):
        for i, (module, function, kwargs, rounds) in enumerate(calls):
            if round_ < rounds:
                results[i].append(run_isolated(module, function, **kwargs))
    return [median_result(runs) for runs in results]


def median_result(runs):
    """One result for several runs of a measurement: numbers are the median over the runs that worked,
    other values (lists, text) come from the first of them. All failed: the first failure."""
    worked = [r for r in runs if not (isinstance(r, dict) and "error" in r)]
    if not worked:
        return runs[0]
    if not isinstance(worked[0], dict):
        return median(worked)
    combined = {}
    for key, value in worked[0].items():
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        combined[key] = median([r[key] for r in worked]) if is_number else value
    combined["processes"] = len(worked)
    return combined
