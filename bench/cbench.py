"""The C benchmarks of bench/c/, built with CMake into build/bench (Release) and run; their rows.

- bench_engine: libmicrograd from C: build, backward and free per node on big graphs, bytes per node,
  the deepest chain.
- floor_moons: the moons demo's MLP as plain C arrays, forward and backward by hand: the floor any
  engine could reach.

A benchmark whose source is not there (or that fails to build or run) is skipped with a note.
"""

import os
import re
import subprocess

from common import BENCH_DIR, median_result
from report import Row

ROOT = os.path.dirname(BENCH_DIR)
BUILD_DIR = os.path.join(ROOT, "build", "bench")
PROGRAMS = ["bench_engine", "floor_moons"]
ENGINE = "libmicrograd (C)"
FLOOR = "C floor: plain arrays"


def _source(name):
    return os.path.join(BENCH_DIR, "c", f"{name}.c")


def build(names):
    """Configure and build the given programs; returns an error message or None."""
    configure = [
        "cmake",
        "-S",
        ROOT,
        "-B",
        BUILD_DIR,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DMG_BUILD_TESTS=OFF",
        "-DMG_BUILD_EXAMPLES=OFF",
        "-DMG_BUILD_BENCH=ON",
    ]
    compile_ = ["cmake", "--build", BUILD_DIR, "-j", "2", "--target", *names]
    for command in [configure, compile_]:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as error:
            return f"`{' '.join(command[:2])}` failed: {error}"
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
            return f"`{' '.join(command[:2])}` failed: {last[0]}"
    return None


def run_program(name):
    """The program's stdout, or raises RuntimeError."""
    path = os.path.join(BUILD_DIR, name)
    done = subprocess.run([path], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited with status {done.returncode}: {done.stderr.strip()[-200:]}")
    return done.stdout


def run_all(rounds=1):
    """Build the programs whose sources exist and run each `rounds` times (a few seconds a run).

    Returns {"engine": parse_engine's dict, "floor": parse_floor's dict, "skipped": [notes]}, with
    "engine" or "floor" missing when that program was not run; figures are medians over the rounds."""
    results = {"skipped": []}
    present = [name for name in PROGRAMS if os.path.exists(_source(name))]
    for name in PROGRAMS:
        if name not in present:
            results["skipped"].append(f"{name}: bench/c/{name}.c does not exist yet; its rows are left out")
    if not present:
        return results
    error = build(present)
    if error:
        results["skipped"].append(f"the C benchmarks: {error}")
        return results
    parsers = {"bench_engine": ("engine", parse_engine), "floor_moons": ("floor", parse_floor)}
    for name in present:
        key, parse = parsers[name]
        try:
            results[key] = median_result([parse(run_program(name)) for _ in range(rounds)])
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as error:
            results["skipped"].append(f"{name}: {error}")
    return results


# ---- reading their output: markdown tables, one measure per row --------------------------------------------


def table_rows(text):
    """Every markdown table row of the text, as a list of stripped cells (separator rows left out)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def number(cell):
    """The first number in a cell ("41.76 µs" -> 41.76, "10000000 nodes" -> 10000000.0)."""
    found = re.search(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", cell.replace(",", ""))
    if not found:
        raise ValueError(f"no number in {cell!r}")
    return float(found.group())


def measure(rows, label):
    """The cells after the first one, of the row whose first cell starts with label."""
    for row in rows:
        if row[0].lower().startswith(label.lower()):
            return row[1:]
    raise ValueError(f"no row {label!r} in the output")


def parse_engine(text):
    """bench_engine's tables: per-node figures on its 10^6-node graph, bytes, and the deep chain."""
    rows = table_rows(text)
    # the deep-chain table's row starts with its size: "| 10000000 nodes | 348 ms | 378 ms | 137 ms |"
    deep = [row for row in rows if re.fullmatch(r"\d+ nodes", row[0])]
    if not deep:
        raise ValueError("no deep-chain row in the output")
    deep = deep[-1]
    return {
        "nodes": number(measure(rows, "measure")[0]),  # the header: "| measure | 1000000 nodes | ..."
        "build_ns": number(measure(rows, "build")[0]),
        "backward_ns": number(measure(rows, "backward,")[0]),
        "ordering_ns": number(measure(rows, "ordering")[0]),
        "free_ns": number(measure(rows, "free")[0]),
        "pool_bytes": number(measure(rows, "pool")[0]),
        "rss_bytes": number(measure(rows, "RSS growth")[0]),
        "deep_chain": number(deep[0]),
        "deep_chain_ms": [number(cell) for cell in deep[1:4]],
    }


def parse_floor(text):
    """floor_moons' table: microseconds per training step of the demo's MLP."""
    rows = table_rows(text)
    return {
        "step_us": number(measure(rows, "training step")[0]),
        "forward_us": number(measure(rows, "of which forward")[0]),
        "final_loss": number(measure(rows, "loss at step")[0].split("/")[-1]),
        "final_accuracy": number(measure(rows, "accuracy at step")[0]),
    }


# ---- rows for run.py ----------------------------------------------------------------------------------------

ENGINE_GRAPH = "its own 10^6-node graph: half a chain of relu(x*w + b) + 0.01, half a DAG over a 1024-node window"


def graph_rows(results):
    """The engine's own figures, from C, on its own graph (not the graph of the Python rows)."""
    engine = results.get("engine")
    if not engine:
        return []
    workload = "2 libmicrograd from C (bench_engine)"
    return [
        Row(
            f"{workload}: build",
            ENGINE,
            "c build",
            engine["build_ns"],
            "ns/node",
            notes=f"{ENGINE_GRAPH}; free {engine['free_ns']:.1f} ns/node",
        ),
        Row(
            f"{workload}: backward",
            ENGINE,
            "c backward",
            engine["backward_ns"],
            "ns/node",
            notes=f"same graph; ordering the nodes alone takes {engine['ordering_ns']:.1f} ns/node",
        ),
    ]


def memory_rows(results, method):
    """The engine's pool bytes per node (counting allocator) and its RSS growth on a 10^7-node chain."""
    engine = results.get("engine")
    if not engine:
        return []
    if method == "accounted":
        return [
            Row(
                "3 memory, chain held by its root: Python + C allocations",
                ENGINE,
                "memory chain accounted",
                engine["pool_bytes"],
                "B/node",
                kind="memory",
                notes="from C: the value pool's bytes per node, chunk headers included",
            )
        ]
    return [
        Row(
            "3 memory, chain held by its root: resident memory growth",
            ENGINE,
            "memory chain rss",
            engine["rss_bytes"],
            "B/node",
            kind="memory",
            notes=f"from C: a chain of {engine['deep_chain']:,.0f} nodes",
        )
    ]


def floor_rows(results, metric):
    floor = results.get("floor")
    if not floor:
        return []
    return [
        Row(
            "8 moons: the C floor (bench/c/floor_moons)",
            FLOOR,
            metric,
            floor["step_us"] / 1e3,
            "ms",
            notes=f"no graph: forward and backward written out over arrays; forward "
            f"{floor['forward_us']:.1f} µs of it; loss {floor['final_loss']:.4f}, accuracy "
            f"{floor['final_accuracy']:.0f}% after 100 steps (its own make_moons and weights)",
        )
    ]


def deepest_rows(results, workload):
    engine = results.get("engine")
    if not engine:
        return []
    build_ms, backward_ms, free_ms = engine["deep_chain_ms"]
    n = engine["deep_chain"]
    return [
        Row(
            workload,
            ENGINE,
            "deepest chain",
            n,
            "ops",
            kind="depth",
            shown=f"≥ {n:,.0f}",
            at_least=True,
            notes=f"from C: build {build_ms:.0f} ms, backward {backward_ms:.0f} ms, free {free_ms:.0f} ms; "
            "the largest tried",
        )
    ]
