"""Side-by-side benchmarks of micrograd_c against micrograd and PyTorch.

    python bench/run.py            # the full run: a few minutes
    python bench/run.py --quick    # smaller sizes and fewer configurations

Prints a markdown table and writes it, with the machine and the date, to bench/results.md.
Each measurement runs in a fresh Python process (see common.run_isolated). The C benchmarks in
bench/c/ are built with CMake into build/bench (Release) and run too, when their sources exist.
"""

import argparse
import os
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import cbench  # noqa: E402
import machine  # noqa: E402
import scale  # noqa: E402
from common import MICROGRAD, MICROGRAD_C, TORCH, TORCH_THREADS, gc_label, run_interleaved, run_isolated  # noqa: E402
from report import Row, format_number, markdown_table  # noqa: E402

# Sizes of each run. micrograd is measured on smaller graphs and fewer steps, and compared per node
# or per step: it takes about 2 s per demo step.
#   rounds: fresh processes per measurement, interleaved across engines (the median is reported);
#   repeat: timed runs inside each process, after a warm-up.
# fit at real sizes (workload 9) has its own: the configurations of scale.CONFIGS to run, the epochs timed
# after a warm-up one, the rounds, the passes of the matrix-product peak, and fit's (precision, dtype) pairs.
SIZES = {
    "quick": dict(
        rounds=1,
        repeat=3,
        graph_n=100_000,
        torch_graph_n=10_000,
        micrograd_graph_n=10_000,
        memory_n=100_000,
        micrograd_memory_n=10_000,
        micrograd_steps=1,
        demo_steps=100,
        digits_epochs=3,
        hinge_batch=8,
        chain_n=1_000_000,
        torch_chain_n=100_000,
        micrograd_gc_off=False,
        scale_configs=scale.CONFIGS[:2],
        scale_epochs=1,
        scale_rounds=1,
        scale_peak_repeat=5,
        scale_fits=[("exact", "float64"), ("fast", "float64"), ("fast", "float32")],
    ),
    "full": dict(
        rounds=3,
        repeat=5,
        graph_n=1_000_000,
        torch_graph_n=1_000_000,
        micrograd_graph_n=100_000,
        memory_n=1_000_000,
        micrograd_memory_n=100_000,
        micrograd_steps=3,
        demo_steps=100,
        digits_epochs=20,
        hinge_batch=32,
        chain_n=1_000_000,
        torch_chain_n=1_000_000,
        micrograd_gc_off=True,
        scale_configs=scale.CONFIGS,
        scale_epochs=3,
        scale_rounds=3,
        scale_peak_repeat=10,
        scale_fits=[("exact", "float64"), ("fast", "float64"), ("exact", "float32"), ("fast", "float32")],
    ),
}


def failed(workload, engine, metric, result, kind="time"):
    return Row(workload, engine, metric, kind=kind, notes=f"not measured: {result['error']}")


def count(n):
    return f"{n:,}"


# ---- 1. one op from Python -----------------------------------------------------------------------------


def bench_ops(size, c_results):
    import ops

    runs = [(MICROGRAD_C, True), (MICROGRAD, True), (TORCH, True)]
    if size["micrograd_gc_off"]:
        runs.insert(2, (MICROGRAD, False))
    calls = [("ops", "empty_loop_ns", {"repeat": size["repeat"]}, size["rounds"])]
    calls += [
        ("ops", "op_costs_ns", {"engine": engine, "gc_enabled": gc_enabled, "repeat": size["repeat"]}, size["rounds"])
        for engine, gc_enabled in runs
    ]
    loop, *results = run_interleaved(calls)
    loop_note = f"timeit's loop, {format_number(loop)} ns, included" if isinstance(loop, float) else ""
    notes = {MICROGRAD_C: loop_note, MICROGRAD: "", TORCH: "0-d float64 tensors, requires_grad"}
    rows = []
    for op in ops.OPS:
        workload = f"1 one op: `{op}`"
        for (engine, gc_enabled), result in zip(runs, results):
            if "error" in result:
                rows.append(failed(workload, engine, op, result))
            else:
                rows.append(Row(workload, engine, op, result[op], "ns", gc=gc_label(gc_enabled), notes=notes[engine]))
    return rows


# ---- 2. build and backward of big graphs ------------------------------------------------------------


def bench_graphs(size, c_results):
    rows = []
    graph_names = {"chain": "chain `y = y * x`", "dag": "random DAG"}
    for graph in ["chain", "dag"]:
        # (engine, nodes, GC on?, rounds): PyTorch's 10^6-node graphs take a minute, so one round
        runs = [
            (MICROGRAD_C, size["graph_n"], True, size["rounds"]),
            (MICROGRAD, size["micrograd_graph_n"], True, size["rounds"]),
            (TORCH, size["torch_graph_n"], True, 1),
        ]
        if size["micrograd_gc_off"]:
            runs.insert(2, (MICROGRAD, size["micrograd_graph_n"], False, size["rounds"]))
        results = run_interleaved(
            [
                (
                    "graphs",
                    "build_backward_free",
                    {"engine": engine, "graph": graph, "n": n, "gc_enabled": gc_enabled},
                    rounds,
                )
                for engine, n, gc_enabled, rounds in runs
            ]
        )
        for phase in ["build", "backward"]:
            workload = f"2 {graph_names[graph]}: {phase}"
            metric = f"{graph} {phase}"
            for (engine, n, gc_enabled, rounds), result in zip(runs, results):
                if "error" in result:
                    rows.append(failed(workload, engine, metric, result))
                    continue
                notes = f"{count(n)} nodes"
                if phase == "backward" and graph == "dag":
                    notes += f", {count(result['reached'])} reached"
                if phase == "build":
                    notes += f"; free {format_number(result['free_ns'])} ns/node"
                    if engine == MICROGRAD:
                        notes += " (gc.collect())"
                rows.append(
                    Row(
                        workload, engine, metric, result[f"{phase}_ns"], "ns/node", gc=gc_label(gc_enabled), notes=notes
                    )
                )
    rows.extend(cbench.graph_rows(c_results))
    return rows


# ---- 3. memory per node --------------------------------------------------------------------------------


def bench_memory(size, c_results):
    rows = []
    groups = [
        (
            "chain",
            "accounted",
            "3 memory, chain held by its root: Python + C allocations",
            [(MICROGRAD_C, size["memory_n"]), (MICROGRAD, size["micrograd_memory_n"])],
        ),
        (
            "chain",
            "rss",
            "3 memory, chain held by its root: resident memory growth",
            [(MICROGRAD_C, size["memory_n"]), (MICROGRAD, size["micrograd_memory_n"]), (TORCH, size["memory_n"])],
        ),
        (
            "dag",
            "accounted",
            "3 memory, DAG with every node in a list: Python + C allocations",
            [(MICROGRAD_C, size["memory_n"]), (MICROGRAD, size["micrograd_memory_n"])],
        ),
    ]
    for graph, method, workload, runs in groups:
        metric = f"memory {graph} {method}"
        for engine, n in runs:
            result = run_isolated("graphs", "memory_per_node", engine=engine, graph=graph, n=n, method=method)
            if "error" in result:
                rows.append(failed(workload, engine, metric, result, kind="memory"))
                continue
            notes = f"{count(n)} nodes"
            if method == "accounted":
                notes += "; tracemalloc" + (" + value_size() x live_values()" if engine == MICROGRAD_C else "")
            rows.append(Row(workload, engine, metric, result["bytes_per_node"], "B/node", kind="memory", notes=notes))
        if graph == "chain":
            rows.extend(cbench.memory_rows(c_results, method))
    return rows


# ---- 4, 5 and 8. the moons demo --------------------------------------------------------------------------


def bench_moons(size, c_results):
    metric = "moons step"
    # (engine, steps, GC on?, rounds): micrograd takes seconds per step, so one round of a few steps
    runs = [(MICROGRAD_C, size["demo_steps"], True, size["rounds"]), (MICROGRAD, size["micrograd_steps"], True, 1)]
    if size["micrograd_gc_off"]:
        runs.append((MICROGRAD, size["micrograd_steps"], False, 1))
    calls = [
        ("moons", "demo", {"engine": engine, "steps": steps, "gc_enabled": gc_enabled}, rounds)
        for engine, steps, gc_enabled, rounds in runs
    ]
    calls.append(("moons", "demo_torch", {"steps": size["demo_steps"]}, size["rounds"]))
    calls.append(("moons", "demo_fit", {"steps": size["demo_steps"], "threads": 1}, size["rounds"]))
    *results, torch_result, fit_result = run_interleaved(calls)

    rows = []
    for (engine, steps, gc_enabled, rounds), result in zip(runs, results):
        workload = "4 moons demo, verbatim: one step"
        if "error" in result:
            rows.append(failed(workload, engine, metric, result))
            continue
        plural = "s" if steps > 1 else ""
        notes = (
            f"{steps} step{plural}, {count(result['nodes'])} nodes each; loss {result['final_loss']:.6f}, "
            f"accuracy {result['final_accuracy'] * 100:.0f}% after the last"
        )
        rows.append(
            Row(workload, engine, metric, result["step_seconds"] * 1e3, "ms", gc=gc_label(gc_enabled), notes=notes)
        )

    # micrograd_c must give micrograd's numbers: compare the losses of the steps both ran
    ours, theirs = results[0], results[1]
    if "error" not in ours and "error" not in theirs:
        steps = len(theirs["losses"])
        gap = max(abs(a - b) for a, b in zip(ours["losses"], theirs["losses"]))
        same = "identical to micrograd's" if gap == 0 else f"within {gap:.1e} of micrograd's"
        which = f"losses of the first {steps} steps" if steps > 1 else "loss of the first step"
        rows[0].notes += f"; {which} {same}"

    workload = "5 moons, PyTorch batched float64: one step"
    if "error" in torch_result:
        rows.append(failed(workload, TORCH, metric, torch_result))
    else:
        notes = (
            f"{size['demo_steps']} steps, {torch_result['threads']} thread; "
            f"loss {torch_result['final_loss']:.6f}, accuracy {torch_result['final_accuracy'] * 100:.0f}% "
            "after the last; same initial weights"
        )
        rows.append(Row(workload, TORCH, metric, torch_result["step_seconds"] * 1e3, "ms", notes=notes))
    workload = "4 moons demo with MLP.fit(): one step"
    if "error" in fit_result:
        rows.append(failed(workload, MICROGRAD_C + " fit()", metric, fit_result))
    else:
        notes = (
            f"{size['demo_steps']} steps in C, 1 thread; loss {fit_result['final_loss']:.6f}, accuracy "
            f"{fit_result['final_accuracy'] * 100:.0f}% after the last"
        )
        if "error" not in results[1]:
            micrograd_losses = results[1]["losses"]
            gap = max(abs(a - b) for a, b in zip(fit_result["losses"], micrograd_losses))
            notes += f"; losses within {gap:.1e} of micrograd's for the first {len(micrograd_losses)} steps"
        rows.append(Row(workload, MICROGRAD_C + " fit()", metric, fit_result["step_seconds"] * 1e3, "ms", notes=notes))
    rows.extend(cbench.floor_rows(c_results, metric))
    return rows


# ---- 6. MLP on digits --------------------------------------------------------------------------------------


def bench_digits(size, c_results):
    epochs, batch, rounds = size["digits_epochs"], size["hinge_batch"], size["rounds"]
    hinge_runs = [(MICROGRAD_C, True, 5, rounds), (MICROGRAD, True, 1, 1)]
    if size["micrograd_gc_off"]:
        hinge_runs.append((MICROGRAD, False, 1, 1))
    calls = [
        ("digits", "train_scalar", {"engine": MICROGRAD_C, "epochs": epochs}, rounds),
        ("digits", "train_torch", {"epochs": epochs}, rounds),
        ("digits", "train_fit", {"epochs": epochs}, rounds),
        ("digits", "train_fit", {"epochs": epochs, "threads": 1, "batch": None}, rounds),
        ("digits", "train_fit", {"epochs": epochs, "threads": 2, "batch": None}, rounds),
        ("digits", "train_fit", {"epochs": 3 * epochs}, 1),
    ]
    calls += [
        (
            "digits",
            "hinge_batch",
            {"engine": engine, "batch_size": batch, "repeat": repeat, "gc_enabled": gc_enabled},
            engine_rounds,
        )
        for engine, gc_enabled, repeat, engine_rounds in hinge_runs
    ]
    scalar, torch_result, fit_result, full_1, full_2, fit_longer, *hinge_results = run_interleaved(calls)

    epoch_rows, accuracy_rows, hinge_rows = [], [], []
    epoch_label = "6 digits MLP(64,[32,10]): one epoch, batches of 32"
    accuracy_label = "6 digits MLP(64,[32,10]): held-out accuracy"
    for engine, result in [(MICROGRAD_C, scalar), (TORCH, torch_result)]:
        if "error" in result:
            epoch_rows.append(failed(epoch_label, engine, "digits epoch", result))
            continue
        how = "batched tensors" if engine == TORCH else "a scalar graph per batch"
        epoch_rows.append(
            Row(
                epoch_label,
                engine,
                "digits epoch",
                result["epoch_seconds"],
                "s",
                notes=f"{how}, softmax cross-entropy, SGD; median of {epochs} epochs",
            )
        )
        accuracy_rows.append(
            Row(
                accuracy_label,
                engine,
                "digits accuracy",
                result["test_accuracy"] * 100,
                "%",
                kind="info",
                notes=f"after {epochs} epochs, same initial weights and batches",
            )
        )

    engine = MICROGRAD_C + " fit()"
    if "error" in fit_result:
        epoch_rows.append(failed(epoch_label, engine, "digits epoch", fit_result))
    else:
        epoch_rows.append(
            Row(
                epoch_label,
                engine,
                "digits epoch",
                fit_result["epoch_seconds"],
                "s",
                notes=f"MLP.fit in C, softmax cross-entropy, SGD; {epochs} epochs, 1 thread",
            )
        )
        accuracy_rows.append(
            Row(
                accuracy_label,
                engine,
                "digits accuracy",
                fit_result["test_accuracy"] * 100,
                "%",
                kind="info",
                notes=f"after {epochs} epochs, same initial weights",
            )
        )
    if "error" in fit_longer:
        accuracy_rows.append(failed(accuracy_label, engine, "digits accuracy", fit_longer))
    else:
        accuracy_rows.append(
            Row(
                accuracy_label,
                engine,
                "digits accuracy",
                fit_longer["test_accuracy"] * 100,
                "%",
                kind="info",
                notes=f"after {3 * epochs} epochs (the same recipe, trained longer: "
                f"{3 * epochs * fit_longer['epoch_seconds']:.2f} s in all)",
            )
        )
    full_label = "6 digits MLP(64,[32,10]) with MLP.fit(): one epoch, the whole training set per step"
    for result in (full_1, full_2):
        if "error" in result:
            epoch_rows.append(failed(full_label, engine, "digits full-batch epoch", result))
            continue
        notes = f"{result['threads']} thread{'s' if result['threads'] > 1 else ''}; same parameters for any count"
        if result is full_2 and "error" not in full_1:
            notes += f"; {full_1['epoch_seconds'] / result['epoch_seconds']:.2f}x the speed of 1 thread"
        epoch_rows.append(
            Row(
                full_label,
                f"{engine}, {result['threads']} thread(s)",
                "digits full-batch epoch",
                result["epoch_seconds"] * 1e3,
                "ms",
                notes=notes,
            )
        )

    hinge_label = f"6 digits MLP(64,[32,10]): one SGD step on {batch} samples, hinge loss"
    for (engine, gc_enabled, repeat, engine_rounds), result in zip(hinge_runs, hinge_results):
        if "error" in result:
            hinge_rows.append(failed(hinge_label, engine, "digits hinge step", result))
            continue
        how_many = f"median of {repeat}" if repeat > 1 else "1 run"
        hinge_rows.append(
            Row(
                hinge_label,
                engine,
                "digits hinge step",
                result["step_seconds"] * 1e3,
                "ms",
                gc=gc_label(gc_enabled),
                notes=f"{how_many}; micrograd has no exp/log for softmax",
            )
        )
        if engine == MICROGRAD and gc_enabled:
            epoch_rows.append(
                Row(
                    epoch_label,
                    MICROGRAD,
                    "digits epoch",
                    result["epoch_seconds"],
                    "s",
                    notes=f"extrapolated from one hinge-loss step on {batch} samples",
                )
            )
    return epoch_rows + accuracy_rows + hinge_rows


# ---- 7. the deepest chain ----------------------------------------------------------------------------------


def bench_deepest(size, c_results):
    rows = []
    workload = "7 deepest chain that backward survives"
    result = run_isolated("graphs", "micrograd_deepest_chain")
    if "error" in result:
        rows.append(failed(workload, MICROGRAD, "deepest chain", result, kind="depth"))
    else:
        rows.append(
            Row(
                workload,
                MICROGRAD,
                "deepest chain",
                result["deepest"],
                "ops",
                kind="depth",
                shown=count(result["deepest"]),
                notes=f"RecursionError at {count(result['deepest'] + 1)} (recursion limit {result['recursion_limit']})",
            )
        )
    for engine, n, limit in [(MICROGRAD_C, size["chain_n"], 100), (TORCH, size["torch_chain_n"], None)]:
        result = run_isolated("graphs", "chain_survives", engine=engine, n=n, recursion_limit=limit)
        if "error" in result or not result["ok"]:
            reason = result.get("error") or f"wrong gradient {result.get('grad')}"
            rows.append(
                Row(
                    workload,
                    engine,
                    "deepest chain",
                    kind="depth",
                    shown=f"< {count(n)}",
                    notes=f"a chain of {count(n)}: {reason}",
                )
            )
            continue
        notes = f"build + backward + free of {count(n)} ops in {result['seconds']:.1f} s, the largest tried"
        if limit:
            notes += f", at recursion limit {limit}"
        rows.append(
            Row(
                workload,
                engine,
                "deepest chain",
                n,
                "ops",
                kind="depth",
                shown=f"≥ {count(n)}",
                at_least=True,
                notes=notes,
            )
        )
    rows.extend(cbench.deepest_rows(c_results, workload))
    return rows


# ---- 9. MLP.fit at real sizes ----------------------------------------------------------------------------


def bench_scale(size, c_results):
    """fit against PyTorch eager at the sizes of size["scale_configs"], with 1 thread and every core (and 2 at the
    largest batch, the count the thread scaling is judged by), and the matrix-product peaks of the same
    shapes (see scale.py)."""
    epochs, rounds, fits = size["scale_epochs"], size["scale_rounds"], size["scale_fits"]
    cores = os.cpu_count() or 1
    plan = []  # (hidden sizes, batch, threads)
    for hidden, batch in size["scale_configs"]:
        counts = {1, cores} | ({2} if batch >= 1024 and cores > 2 else set())
        plan += [(hidden, batch, threads) for threads in sorted(counts)]
    engines = [("fit", precision, dtype) for precision, dtype in fits] + [
        ("torch", None, "float64"),
        ("torch", None, "float32"),
    ]
    calls = []
    for hidden, batch, threads in plan:
        shape = {"hidden": list(hidden), "batch": batch, "threads": threads}
        calls.append(("scale", "gemm_peak", {**shape, "repeat": size["scale_peak_repeat"]}, rounds))
        for how, precision, dtype in engines:
            if how == "fit":
                calls.append(
                    ("scale", "train_fit", {**shape, "precision": precision, "dtype": dtype, "epochs": epochs}, rounds)
                )
            else:
                calls.append(("scale", "train_torch", {**shape, "dtype": dtype, "epochs": epochs}, rounds))
    results = iter(run_interleaved(calls))

    peak_names = {"exact": "multiply-then-add", "fast": "FMA"}
    rows, one_thread, simd = [], {}, None
    for hidden, batch, threads in plan:
        model = scale.model_name(hidden)
        plural = "s" if threads > 1 else ""
        workload = f"9 {model}, batch {batch}, {threads} thread{plural}: one epoch of {count(scale.SAMPLES)}"
        peak = next(results)
        if "error" in peak:
            rows.append(
                failed(
                    workload, MICROGRAD_C + " matmul peak", f"scale peak {model} {batch} {threads}", peak, kind="info"
                )
            )
            peak = {}
        else:
            simd = simd or peak["simd"]
            rows.append(
                Row(
                    workload,
                    MICROGRAD_C + " matmul peak",
                    f"scale peak {model} {batch} {threads}",
                    peak["fast float64"],
                    "GF/s",
                    kind="info",
                    notes=f"Tensor.matmul on one step's products at their shapes, median of "
                    f"{size['scale_peak_repeat']} passes: float64 FMA (the figure) and "
                    f"multiply-then-add {peak['exact float64']:.1f} GF/s",
                )
            )
        for how, precision, dtype in engines:
            result = next(results)
            metric = f"scale {model} {batch} {threads} {dtype}"
            engine = f"{MICROGRAD_C} fit(), {precision} {dtype}" if how == "fit" else TORCH
            if "error" in result:
                rows.append(failed(workload, engine, metric, result))
                if how == "torch":
                    rows[-1].notes = f"{dtype} eager; {rows[-1].notes}"
                continue
            notes = [f"{result['gflops']:.1f} GF/s"]
            key = f"{precision} {dtype}"
            if how == "fit" and key in peak:
                notes[0] += (
                    f" = {100 * result['gflops'] / peak[key]:.0f}% of the {peak_names[precision]} "
                    f"peak ({peak[key]:.1f} GF/s)"
                )
            if how == "torch":
                notes.insert(0, f"{dtype} eager")
            same = (hidden, batch, how, precision, dtype)
            if threads == 1:
                one_thread[same] = result
            elif same in one_thread:
                notes.append(
                    f"{one_thread[same]['epoch_seconds'] / result['epoch_seconds']:.2f}x the speed of 1 thread"
                )
            timed = f"median of {result['epochs']} epochs" if result["epochs"] > 1 else "1 epoch"
            notes.append(f"{timed} after a warm-up; loss {result['loss']:.4f} after the last")
            rows.append(Row(workload, engine, metric, result["epoch_seconds"] * 1e3, "ms", notes="; ".join(notes)))
    rows.insert(
        0,
        Row(
            "9 fit at real sizes: the machine",
            "CPU",
            "scale machine",
            kind="info",
            shown=machine.cpu_model(),
            notes=f"{cores} cores; {machine.simd_flags()}; micrograd_c's kernels: {simd or 'unknown'}",
        ),
    )
    return rows


WORKLOADS = {
    "ops": bench_ops,
    "graphs": bench_graphs,
    "memory": bench_memory,
    "moons": bench_moons,
    "digits": bench_digits,
    "deepest": bench_deepest,
    "scale": bench_scale,
}


def write_results(path, description, rows, mode, seconds, skipped):
    lines = ["# Benchmarks: micrograd_c against micrograd and PyTorch", ""]
    lines.append(f"Written by `bench/run.py{' --quick' if mode == 'quick' else ''}` ({mode} mode, {seconds:.0f} s).")
    lines.append("")
    for label, value in description:
        lines.append(f"- {label}: {value}")
    lines += ["", "## Results", "", markdown_table(rows), "", "## How to read it", "", METHOD]
    if skipped:
        lines += ["", "## Not measured", ""] + [f"- {note}" for note in skipped]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


METHOD = f"""\
- Every figure is the median of repeated runs after a warm-up run, in a fresh Python process. A
  shared machine's speed drifts (by 1.5x over seconds on the one measured here), so in the full mode
  each measurement that takes seconds runs in 3 processes, interleaved with the other engines', and
  the median of the 3 is shown; the longest ones (PyTorch's 10^6-node graphs, micrograd's demo and
  digits steps) run once. Ratios compare a row with the micrograd row (default GC) and the PyTorch row of the
  same workload: "12x faster" means micrograd (or PyTorch) takes 12 times as long.
- GC: micrograd's nodes are reference cycles (node, closure, cell) that only the cyclic garbage
  collector frees, so micrograd runs with the GC on, as users run it ("default"), and also with it
  off ("off"), which is faster but never frees a graph until `gc.collect()`. micrograd_c's and
  PyTorch's nodes are not tracked by the GC: its state does not change their figures.
- PyTorch runs with {TORCH_THREADS} thread, like the scalar engines; the scalar workloads use 0-d
  float64 tensors with `requires_grad`, the rest batched float64 tensors.
- Fit at real sizes (9) is the exception: both engines run with 1 thread and with every core (and with
  2 at batch 1024 on larger machines), PyTorch in float64 and in float32, each compared with
  micrograd_c's rows of the same dtype; each figure is the median of the epochs after a warm-up one in a
  process, and in the full mode the median of 3 such processes, interleaved. GF/s counts the step's
  matrix products (2 B n_in n_out per layer for the forward product, as much for the weights' gradient
  and, all layers but the first, for the inputs' gradient)
  over the whole epoch's time; the peaks are those products alone, run by Tensor.matmul with fused
  multiply-adds and with products rounded, then added (bench/scale.py), so a fit above 100% does its
  products faster than Tensor.matmul does. The table's CPU row names the machine: cores with separate
  add and multiply units have equal peaks, cores whose FMA units do both halve the second.
- micrograd is measured on smaller graphs and fewer steps (it needs about 2 s per demo step);
  figures are per op, per node or per step, so sizes differ between engines: the notes give them.
- micrograd_c's `nn` computes each neuron as one fused C node, so its demo graph has fewer nodes than
  micrograd's; the demo's loss and accuracy are the same.
- Timings assume an otherwise idle machine: the load average above says how busy it was."""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer configurations")
    parser.add_argument(
        "--only", metavar="NAMES", help=f"comma-separated workloads to run, of: {', '.join(WORKLOADS)} (default: all)"
    )
    parser.add_argument("--no-c", action="store_true", help="do not build or run the C benchmarks")
    parser.add_argument(
        "--out",
        default=os.path.join(BENCH_DIR, "results.md"),
        help="where to write the results (default: bench/results.md)",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    size = SIZES[mode]
    chosen = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [name for name in chosen if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}")
    # the C benchmarks' rows go with these workloads
    run_c = not args.no_c and any(name in chosen for name in ["graphs", "memory", "moons", "deepest"])

    start = time.perf_counter()
    description = machine.describe()  # now, while the load average is the one the run starts with
    skipped = []
    c_results = {}
    if run_c:
        print("building and running the C benchmarks ...", file=sys.stderr, flush=True)
        c_results = cbench.run_all(size["rounds"])
        skipped += c_results.get("skipped", [])
    rows = []
    for name, function in WORKLOADS.items():
        if name not in chosen:
            continue
        print(f"{name} ...", file=sys.stderr, flush=True)
        workload_start = time.perf_counter()
        try:
            rows += function(size, c_results)
        except Exception as error:  # a broken workload must not lose the others' results
            skipped.append(f"{name}: {type(error).__name__}: {error}")
        print(f"{name}: {time.perf_counter() - workload_start:.0f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    print(markdown_table(rows))
    for note in skipped:
        print(f"\nnot measured: {note}")
    write_results(args.out, description, rows, mode, seconds, skipped)
    print(f"\nwritten to {os.path.relpath(args.out)} in {seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
