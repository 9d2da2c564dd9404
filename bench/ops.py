"""Workload 1: what one op costs when called from Python: a*b, a+b, a*2.0, a.relu().

Each op is timed with timeit on two live leaves (`a = 1.5`, `b = -2.5`); the result is dropped at once.
For PyTorch the leaves are 0-d float64 tensors with requires_grad, so every op records a graph node,
as a scalar Value does. micrograd's nodes are reference cycles that only the cyclic GC frees, so it is
timed with the GC on (the default) and off; micrograd_c's and PyTorch's nodes are not GC-tracked.
"""

import gc
import timeit

from common import MICROGRAD_C, gc_state, leaf_maker, median

OPS = ["a*b", "a+b", "a*2.0", "a.relu()"]


def _time_per_call(stmt, namespace, number, repeat, gc_enabled):
    """Median seconds per execution of stmt over `repeat` runs of `number` calls, after a warm-up run."""
    # timeit turns the GC off while it times; "gc.enable()" as setup keeps it on
    timer = timeit.Timer(stmt, setup="gc.enable()" if gc_enabled else "pass", globals=dict(namespace, gc=gc))
    timer.timeit(number // 10)
    times = []
    for _ in range(repeat):
        gc.collect()  # garbage from the last run (micrograd's cycles) is not charged to this one
        times.append(timer.timeit(number) / number)
    return median(times)


def op_costs_ns(engine, gc_enabled=True, repeat=5):
    """Nanoseconds per op for one engine: {op: ns} for every op of OPS."""
    make = leaf_maker(engine)
    namespace = {"a": make(1.5), "b": make(-2.5)}
    number = 200_000 if engine == MICROGRAD_C else 20_000  # 10 to 60 ms per run
    with gc_state(gc_enabled):
        return {op: _time_per_call(op, namespace, number, repeat, gc_enabled) * 1e9 for op in OPS}


def empty_loop_ns(repeat=5):
    """The cost of timeit's own loop per call (included in every op figure)."""
    return _time_per_call("pass", {}, 1_000_000, repeat, True) * 1e9
