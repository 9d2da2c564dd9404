"""Workloads 2, 3 and 7: big graphs. Build and backward time per node, memory per node, deepest chain.

Two graphs, built from Python with the same code for every engine:

- chain: `y = y * x` repeated n times on one leaf x (every op is one node; depth n).
- random DAG: `window` leaves, then each new node is `a * b` or `a + b` (a coin flip) of two nodes
  picked at random among the `window` nodes made just before it. Every node is kept in a list, as a
  program holding its intermediate results would. The root is the last node; about 80% of the graph
  is reachable from it (backward is reported per node reached). Its longest path is about n/330, so
  micrograd's recursive sort copes with it. The values are meaningless (they can overflow to inf,
  which costs nothing extra); only the graph's shape matters.

Run every function here through common.run_isolated: each then starts in a fresh process.
"""

import gc
import os
import random
import sys
import tracemalloc

from common import MICROGRAD, MICROGRAD_C, gc_state, leaf_maker, median, now, run_with_big_stack

DAG_WINDOW = 1000


def build_chain(make_leaf, n):
    x = make_leaf(1.0)
    y = x
    for _ in range(n):
        y = y * x
    return y, [x]


def dag_plan(n, window=DAG_WINDOW, seed=0):
    """The random DAG as plain data: leaf values, then (multiply?, input index, input index) per node."""
    rng = random.Random(seed)
    leaves = [rng.uniform(-1, 1) for _ in range(window)]
    steps = [
        (rng.random() < 0.5, i - 1 - rng.randrange(window), i - 1 - rng.randrange(window)) for i in range(window, n)
    ]
    return leaves, steps


def dag_reached(plan):
    """How many nodes of the DAG the last node depends on (itself included): what backward visits."""
    leaves, steps = plan
    n = len(leaves) + len(steps)
    reached = bytearray(n)
    reached[n - 1] = 1
    for i in range(n - 1, len(leaves) - 1, -1):
        if reached[i]:
            _, a, b = steps[i - len(leaves)]
            reached[a] = reached[b] = 1
    return sum(reached)


def build_dag(make_leaf, plan):
    leaves, steps = plan
    nodes = [make_leaf(x) for x in leaves]
    for multiply, a, b in steps:
        nodes.append(nodes[a] * nodes[b] if multiply else nodes[a] + nodes[b])
    return nodes[-1], nodes


def _setup(engine, n):
    """Engines that sort recursively (micrograd) get a recursion limit above the graph's depth."""
    if engine == MICROGRAD:
        sys.setrecursionlimit(max(sys.getrecursionlimit(), n + 10_000))


def _one_run(make_leaf, graph, n, plan, collect):
    """Build, backward and free one graph; returns (build, backward, free) seconds."""
    start = now()
    if graph == "chain":
        root, keep = build_chain(make_leaf, n)
    else:
        root, keep = build_dag(make_leaf, plan)
    built = now()
    root.backward()
    backward_done = now()
    del root, keep
    if collect:
        gc.collect()  # micrograd's graph is a web of reference cycles: only the collector frees it
    freed = now()
    return built - start, backward_done - built, freed - backward_done


def build_backward_free(engine, graph, n, repeat=3, gc_enabled=True):
    """Median ns per node to build, to backward and to free a graph of n nodes (after a warm-up at n/10).

    Build and free are per node made (leaves excluded: the chain makes n ops, the DAG n - window);
    backward is per node it reaches."""
    _setup(engine, n)
    make_leaf = leaf_maker(engine)
    if graph == "chain":
        plan, made, reached = None, n, n + 1
    else:
        plan = dag_plan(n)
        made, reached = n - DAG_WINDOW, dag_reached(plan)
    warmup_plan = dag_plan(n // 10) if graph == "dag" else None
    collect = engine == MICROGRAD  # only micrograd needs the cyclic GC to free a graph

    def measure():
        with gc_state(gc_enabled):
            _one_run(make_leaf, graph, n // 10, warmup_plan, collect)
            return [_one_run(make_leaf, graph, n, plan, collect) for _ in range(repeat)]

    runs = run_with_big_stack(measure) if engine == MICROGRAD else measure()
    return {
        "n": n,
        "made": made,
        "reached": reached,
        "build_ns": median(r[0] for r in runs) / made * 1e9,
        "backward_ns": median(r[1] for r in runs) / reached * 1e9,
        "free_ns": median(r[2] for r in runs) / made * 1e9,
    }


def _rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_per_node(engine, graph, n, method):
    """Bytes per node of a built graph (before backward), kept alive as built_* keep it.

    method "accounted": Python allocations seen by tracemalloc, plus for micrograd_c the engine's own
    C nodes (value_size() * live values); "rss": growth of the process's resident memory."""
    make_leaf = leaf_maker(engine)
    plan = dag_plan(n) if graph == "dag" else None
    made = n if graph == "chain" else n - DAG_WINDOW
    c_nodes_before = 0
    if engine == MICROGRAD_C:
        import micrograd_c

        c_nodes_before = micrograd_c.live_values()
    gc.collect()
    if method == "accounted":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = _rss_bytes()

    graph_alive = build_chain(make_leaf, n) if graph == "chain" else build_dag(make_leaf, plan)
    if method == "accounted":
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        if engine == MICROGRAD_C:
            grown += (micrograd_c.live_values() - c_nodes_before) * micrograd_c.value_size()
    else:
        grown = _rss_bytes() - before
    del graph_alive
    return {"n": n, "made": made, "bytes_per_node": grown / made}


def chain_survives(engine, n, recursion_limit=None):
    """Build a chain of n ops, backward, free: does it work? (Run isolated: a failure may be a crash.)"""
    if recursion_limit:
        sys.setrecursionlimit(recursion_limit)
    make_leaf = leaf_maker(engine)
    start = now()
    try:
        y, keep = build_chain(make_leaf, n)
        y.backward()
        gradient = float(keep[0].grad)
        del y, keep
        gc.collect()
    except RecursionError:
        return {"n": n, "ok": False, "error": "RecursionError"}
    return {"n": n, "ok": gradient == n + 1, "seconds": now() - start, "grad": gradient}  # d(x**(n+1))/dx


def micrograd_deepest_chain(limit=5000):
    """The longest chain micrograd's backward survives at the default recursion limit (binary search).

    The search runs a few frames below the top of the stack, as a user's script would."""
    make_leaf = leaf_maker(MICROGRAD)

    def survives(n):
        y, _ = build_chain(make_leaf, n)
        try:
            y.backward()
            return True
        except RecursionError:
            return False

    low, high = 1, limit  # survives(low) holds; survives(high) fails
    if survives(high):
        return {"deepest": high, "recursion_limit": sys.getrecursionlimit(), "note": "no failure found"}
    while high - low > 1:
        middle = (low + high) // 2
        if survives(middle):
            low = middle
        else:
            high = middle
    return {"deepest": low, "recursion_limit": sys.getrecursionlimit()}
