"""Workload 9: MLP.fit at real sizes against PyTorch eager, and the machine's matrix-product peak.

The models: MLP(784, [256, 10]) with batches of 128 and of 1024, MLP(784, [512, 512, 10]) with batches of
128, trained on 8192 synthetic samples: 784 features in [0, 1) like pixels, 10 classes given by a fixed
random linear teacher (so the task can be learned). Softmax cross-entropy, plain SGD (lr 0.01), the samples
reshuffled each epoch. Every engine starts from the same weights: uniform in [-1, 1) divided by
sqrt(fan-in), biases 0 (micrograd's draw of [-1, 1) is far too large for 784 inputs).

- micrograd_c: MLP.fit, with precision "exact" (micrograd's sums: products rounded, then added in order)
  or "fast" (fused multiply-adds), dtype "float64" or "float32".
- PyTorch: an eager loop over torch.nn.Linear layers and torch.optim.SGD, in float64 and in float32.

A measurement is one warm-up epoch, then `epochs` timed ones; the median is reported. The floating-point
work of a step, for layers (n_in, n_out) and a batch of B, is 2 B n_in n_out per layer for the forward
product and as much for the weights' gradient, and as much again for the inputs' gradient of every layer
but the first (nothing needs the gradient of the data).

The peak those figures are held against: the same products at the same shapes (X @ W^T, dZ^T @ X,
dZ @ W), run one after another by micrograd_c's Tensor.matmul with no graph, the median of several passes,
with fused multiply-adds ("fast") and with products rounded, then added ("exact"). On cores with
separate add and multiply units the two peaks are equal; where both share the FMA units the second is
half the first.
"""

import math

from common import import_torch, median, now
from machine import library_simd

SAMPLES = 8192
FEATURES = 784
CLASSES = 10
SEED = 0
LEARNING_RATE = 0.01

# (the MLP's layer sizes after the inputs, the batch size): the configurations measured
CONFIGS = [((256, 10), 128), ((256, 10), 1024), ((512, 512, 10), 128)]


def model_name(hidden):
    return f"MLP({FEATURES},[{','.join(map(str, hidden))}])"


def layer_shapes(hidden):
    sizes = [FEATURES, *hidden]
    return list(zip(sizes, sizes[1:]))


def products(hidden, batch):
    """The (m, k, n) of every matrix product of one training step, (m x k) @ (k x n): per layer the
    forward product, the weights' gradient and (all but the first layer) the inputs' gradient."""
    shapes = []
    for index, (n_in, n_out) in enumerate(layer_shapes(hidden)):
        shapes.append((batch, n_in, n_out))  # Z = X @ W^T
        shapes.append((n_out, batch, n_in))  # dW = dZ^T @ X
        if index > 0:
            shapes.append((batch, n_out, n_in))  # dX = dZ @ W
    return shapes


def step_flops(hidden, batch):
    return sum(2 * m * k * n for m, k, n in products(hidden, batch))


def epoch_flops(hidden, batch):
    return step_flops(hidden, batch) * (SAMPLES // batch)


def make_data():
    """(X, y): SAMPLES rows of FEATURES numbers in [0, 1), labels 0..CLASSES-1 from a linear teacher."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    X = rng.random((SAMPLES, FEATURES))
    teacher = rng.standard_normal((FEATURES, CLASSES))
    y = np.argmax((X - 0.5) @ teacher, axis=1)
    return X, y


def initial_weights(hidden):
    """Per layer (W of shape (n_out, n_in), b of n_out): uniform in [-1, 1) / sqrt(n_in), biases 0."""
    import numpy as np

    rng = np.random.default_rng(SEED + 1)
    return [
        (rng.uniform(-1.0, 1.0, (n_out, n_in)) / math.sqrt(n_in), np.zeros(n_out))
        for n_in, n_out in layer_shapes(hidden)
    ]


def summary(epoch_seconds, losses, hidden, batch, threads):
    timed = epoch_seconds[1:]  # the first epoch is the warm-up
    seconds = median(timed)
    return {
        "epoch_seconds": seconds,
        "epochs": len(timed),
        "gflops": epoch_flops(hidden, batch) / seconds / 1e9,
        "loss": losses[-1],
        "threads": threads,
    }


# ---- micrograd_c: MLP.fit -------------------------------------------------------------------------------


def train_fit(hidden, batch, threads, precision, dtype, epochs):
    """One fit call of epochs + 1 epochs; each epoch timed from one callback to the next."""
    import micrograd_c
    import numpy as np
    from micrograd_c import MLP, optim

    X, y = make_data()
    model = MLP(FEATURES, list(hidden))
    # micrograd's order: per layer, per neuron, its weights and then its bias
    flat = np.concatenate([np.hstack([W, b[:, None]]).ravel() for W, b in initial_weights(hidden)])
    params = model.parameters()
    assert len(params) == len(flat)
    for p, value in zip(params, flat.tolist()):
        p.data = value
    threads = min(threads, micrograd_c._core.num_cores())
    micrograd_c.set_num_threads(threads)
    optimizer = optim.SGD(params, lr=LEARNING_RATE)
    stamps = [now()]
    history = model.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=optimizer,
        epochs=epochs + 1,
        batch_size=batch,
        shuffle=True,
        seed=SEED,
        threads=threads,
        verbose=False,
        precision=precision,
        dtype=dtype,
        callback=lambda *_: stamps.append(now()),
    )
    seconds = [b - a for a, b in zip(stamps, stamps[1:])]
    return summary(seconds, [h["loss"] for h in history], hidden, batch, threads)


# ---- PyTorch: an eager loop --------------------------------------------------------------------------------


def train_torch(hidden, batch, threads, dtype, epochs):
    torch = import_torch()  # which sets one thread: this measurement's count is set next
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    X, y = make_data()
    X, y = torch.from_numpy(X).to(dt), torch.from_numpy(y)
    layers = []
    for index, (W, b) in enumerate(initial_weights(hidden)):
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dt)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if index < len(hidden) - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(SEED)
    seconds, losses = [], []
    for _ in range(epochs + 1):
        start = now()
        order = torch.randperm(SAMPLES, generator=generator)
        total = torch.zeros((), dtype=dt)
        for first in range(0, SAMPLES, batch):
            index = order[first : first + batch]
            opt.zero_grad()
            loss = F.cross_entropy(net(X[index]), y[index])
            loss.backward()
            opt.step()
            total += loss.detach()
        seconds.append(now() - start)
        losses.append(total.item() / (SAMPLES // batch))
    return summary(seconds, losses, hidden, batch, torch.get_num_threads())


# ---- the peak: Tensor.matmul at the same shapes ---------------------------------------------------------


def gemm_peak(hidden, batch, threads, repeat):
    """GFLOP/s of one step's products, run by Tensor.matmul in float64, per "precision float64": the median
    of `repeat` passes over all of them (after one warm-up pass)."""
    import micrograd_c
    import numpy as np
    from micrograd_c import Tensor, no_grad

    threads = min(threads, micrograd_c._core.num_cores())
    micrograd_c.set_num_threads(threads)
    rng = np.random.default_rng(SEED)
    shapes = products(hidden, batch)
    flops = step_flops(hidden, batch)
    result = {"threads": threads, "simd": library_simd()}
    for dtype in ("float64",):  # Tensor.matmul computes in float64 whatever the tensors' dtype: no float32 peak
        operands = [
            (
                Tensor(rng.random((m, k)), dtype=dtype, requires_grad=False),
                Tensor(rng.random((k, n)), dtype=dtype, requires_grad=False),
            )
            for m, k, n in shapes
        ]
        for precision in ("exact", "fast"):
            seconds = []
            with no_grad():
                for _ in range(repeat + 1):
                    start = now()
                    for a, b in operands:
                        a.matmul(b, precision=precision)
                    seconds.append(now() - start)
            # the median, as fit's epochs are: on a machine whose speed drifts, best-of against a median
            # would hold fit to a peak it never had at the same moment (the first pass warms up)
            result[f"{precision} {dtype}"] = flops / median(seconds[1:]) / 1e9
    return result
