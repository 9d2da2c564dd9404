"""Tensor benchmarks: micrograd_c.Tensor against NumPy and PyTorch, printed as a markdown table.

    python bench/bench_tensor.py [--quick]

- matmul 256x256 and 1024x1024, float64, GFLOP/s: micrograd_c with 1 thread and with every core, NumPy
  (its BLAS limited to 1 thread with threadpoolctl when installed, else left alone, as noted), PyTorch
  with torch.set_num_threads(1) and with its default.
- elementwise add, mul, exp on 10^6 float64 elements, ms per op (no autograd recording).
- one training step of an MLP 2-16-16-1 on 100 moons-like points (hinge loss, L2 1e-4, SGD), float64:
  forward, backward and update, us per step.

Each figure is the best of several repeats (the least disturbed by the rest of the machine).
"""

import argparse
import math
import os
import time

import micrograd_c
import numpy as np
from micrograd_c import Tensor

try:
    import torch
except ImportError:  # the table says so
    torch = None

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None


def best_time(fn, repeats, inner=1):
    fn()  # warm up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def matmul_rows(sizes, repeats):
    rows = []
    for n in sizes:
        flops = 2.0 * n**3
        a_np, b_np = np.random.rand(n, n), np.random.rand(n, n)
        reps = repeats if n <= 256 else max(2, repeats // 4)
        inner = 10 if n <= 256 else 1
        a, b = Tensor(a_np, requires_grad=False), Tensor(b_np, requires_grad=False)
        cells = {}
        for threads, label in [(1, "1 thread"), (0, "all threads")]:
            micrograd_c.set_num_threads(threads)
            cells[f"micrograd_c, {label}"] = flops / best_time(lambda: a @ b, reps, inner) / 1e9
        micrograd_c.set_num_threads(0)
        if threadpool_limits is not None:
            with threadpool_limits(limits=1):
                cells["NumPy, 1 thread"] = flops / best_time(lambda: a_np @ b_np, reps, inner) / 1e9
        cells["NumPy, default threads" + ("" if threadpool_limits else " (no threadpoolctl)")] = (
            flops / best_time(lambda: a_np @ b_np, reps, inner) / 1e9
        )
        if torch is not None:
            ta, tb = torch.from_numpy(a_np), torch.from_numpy(b_np)
            default = torch.get_num_threads()
            torch.set_num_threads(1)
            cells["PyTorch, 1 thread"] = flops / best_time(lambda: ta @ tb, reps, inner) / 1e9
            torch.set_num_threads(default)
            cells["PyTorch, default threads"] = flops / best_time(lambda: ta @ tb, reps, inner) / 1e9
        rows.append((n, cells))
    return rows


def elementwise_rows(repeats):
    n = 10**6
    x_np, y_np = np.random.rand(n) + 0.5, np.random.rand(n) + 0.5
    x, y = Tensor(x_np, requires_grad=False), Tensor(y_np, requires_grad=False)
    rows = []
    ops = {
        "add": (lambda: x + y, lambda: x_np + y_np, lambda a, b: a + b),
        "mul": (lambda: x * y, lambda: x_np * y_np, lambda a, b: a * b),
        "exp": (lambda: x.exp(), lambda: np.exp(x_np), lambda a, b: a.exp()),
    }
    tx, ty = (torch.from_numpy(x_np), torch.from_numpy(y_np)) if torch is not None else (None, None)
    for name, (ours, numpy_fn, torch_fn) in ops.items():
        cells = {"micrograd_c": best_time(ours, repeats, 5) * 1e3, "NumPy": best_time(numpy_fn, repeats, 5) * 1e3}
        if torch is not None:
            cells["PyTorch"] = best_time(lambda: torch_fn(tx, ty), repeats, 5) * 1e3
        rows.append((name, cells))
    return rows


def moons(n=100, seed=1337):
    """Two interleaving half circles with noise 0.1 (the shape of sklearn's make_moons), labels -1/+1."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t_out, t_in = np.linspace(0, np.pi, half), np.linspace(0, np.pi, n - half)
    x = np.concatenate(
        [np.stack([np.cos(t_out), np.sin(t_out)], 1), np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)]
    )
    x += rng.normal(scale=0.1, size=x.shape)
    y = np.concatenate([-np.ones(half), np.ones(n - half)]).reshape(n, 1)
    return x, y


def mlp_params(seed=0):
    rng = np.random.default_rng(seed)
    sizes = [2, 16, 16, 1]
    params = []
    for i in range(3):
        params.append(rng.uniform(-1, 1, size=(sizes[i], sizes[i + 1])))
        params.append(np.zeros(sizes[i + 1]))
    return params


def mlp_loss_backward(x, neg_y, params):
    """The demo's loss (mean hinge + 1e-4 L2) and its backward: the same code for both engines."""
    h = (x @ params[0] + params[1]).relu()
    h = (h @ params[2] + params[3]).relu()
    scores = h @ params[4] + params[5]
    loss = (neg_y * scores + 1.0).relu().mean()
    reg = (params[0] * params[0]).sum()
    for p in params[1:]:
        reg = reg + (p * p).sum()
    loss = loss + reg * 1e-4
    for p in params:
        p.grad = None
    loss.backward()
    return loss


def mlp_step_ours(x, neg_y, params, lr):
    loss = mlp_loss_backward(x, neg_y, params)
    for p in params:
        p.add_(p.grad, alpha=-lr)
    return loss


def mlp_step_torch(x, neg_y, params, lr):
    loss = mlp_loss_backward(x, neg_y, params)
    with torch.no_grad():
        for p in params:
            p.add_(p.grad, alpha=-lr)
    return loss


def mlp_rows(repeats):
    x_np, y_np = moons()
    init = mlp_params()
    cells = {}
    x, neg_y = Tensor(x_np, requires_grad=False), Tensor(-y_np, requires_grad=False)
    ours = [Tensor(p) for p in init]
    cells["micrograd_c"] = best_time(lambda: mlp_step_ours(x, neg_y, ours, 0.05), repeats, 50) * 1e6
    losses = [mlp_step_ours(x, neg_y, ours, 0.05).item() for _ in range(3)]
    if torch is not None:
        tx, tneg_y = torch.from_numpy(x_np), torch.from_numpy(-y_np)
        theirs = [torch.tensor(p, requires_grad=True) for p in init]
        default = torch.get_num_threads()
        torch.set_num_threads(1)
        cells["PyTorch, 1 thread"] = best_time(lambda: mlp_step_torch(tx, tneg_y, theirs, 0.05), repeats, 50) * 1e6
        torch.set_num_threads(default)
        cells["PyTorch, default threads"] = (
            best_time(lambda: mlp_step_torch(tx, tneg_y, theirs, 0.05), repeats, 50) * 1e6
        )
    return cells, losses


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a rougher estimate)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    np.random.seed(0)

    import datetime
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"# Tensor benchmarks ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu})\n")
    print(
        f"micrograd_c {micrograd_c.__version__}, {os.cpu_count()} cores, micrograd_c threads "
        f"{micrograd_c.get_num_threads()}, NumPy {np.__version__}"
        + (f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", no PyTorch")
        + ("" if threadpool_limits else "; threadpoolctl missing: NumPy's 1-thread row skipped")
    )
    print()

    mm = matmul_rows([256, 1024], repeats)
    names = list(mm[0][1])
    print("### matmul, float64, GFLOP/s (higher is better)\n")
    print(table(["n"] + names, [[n] + [f"{cells[k]:.1f}" for k in names] for n, cells in mm]))
    print()

    ew = elementwise_rows(repeats)
    names = list(ew[0][1])
    print("### elementwise on 10^6 float64, ms per op (lower is better)\n")
    print(table(["op"] + names, [[op] + [f"{cells[k]:.3f}" for k in names] for op, cells in ew]))
    print()

    cells, losses = mlp_rows(repeats)
    print("### MLP 2-16-16-1 training step, 100 samples, float64, us per step (lower is better)\n")
    print(table(list(cells), [[f"{v:.0f}" for v in cells.values()]]))
    print(f"\n(loss after the timed steps: {losses[-1]:.4f})")


if __name__ == "__main__":
    main()
