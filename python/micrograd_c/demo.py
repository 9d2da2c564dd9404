"""micrograd's moons demo (demo.ipynb), run on micrograd_c: ``python -m micrograd_c demo``.

The training loop is micrograd's, line for line, with only the import changed: a 2-16-16-1 MLP, the SVM
max-margin loss with L2 regularisation, and plain SGD with a decaying learning rate. The data is
scikit-learn's make_moons when scikit-learn is installed, else the built-in generator, which gives the same
numbers. With matplotlib (``pip install micrograd-c[demo]``) it also draws the data, the trained model's
decision boundary and the loss curve into moons.png.
"""

import os
import random
import time

from micrograd_c._progress import Progress
from micrograd_c.datasets import make_moons
from micrograd_c.engine import Value
from micrograd_c.nn import MLP

SEED = 1337
DATA_SOURCES = ("auto", "sklearn", "builtin")


def _sklearn_make_moons():
    """scikit-learn's make_moons, or None when scikit-learn is not installed."""
    try:
        from sklearn.datasets import make_moons as sklearn_make_moons
    except ImportError:
        return None
    return sklearn_make_moons


def moons_source(source="auto"):
    """Where the data comes from: "sklearn" or "builtin" ("auto": scikit-learn when it is installed)."""
    if source not in DATA_SOURCES:
        raise ValueError(f"source must be one of {', '.join(DATA_SOURCES)}, got {source!r}")
    if source == "auto":
        return "sklearn" if _sklearn_make_moons() is not None else "builtin"
    if source == "sklearn" and _sklearn_make_moons() is None:
        raise ImportError(
            "scikit-learn is not installed: pip install 'micrograd-c[demo]', or use the built-in "
            "generator (source 'builtin'), which gives the same numbers"
        )
    return source


def load_moons(n_samples=100, noise=0.1, seed=SEED, source="auto"):
    """The demo's data: scikit-learn's make_moons after np.random.seed(seed), with labels -1/+1.

    X is a list of [x0, x1] rows and y a list of -1/+1. source: "sklearn", "builtin" (the built-in
    generator, which gives the same numbers) or "auto" (scikit-learn when it is installed)."""
    if moons_source(source) == "sklearn":
        import numpy as np

        # a RandomState(seed) draws what the global generator does after np.random.seed(seed)
        X, y = _sklearn_make_moons()(n_samples=n_samples, noise=noise, random_state=np.random.RandomState(seed))
        X, y = X.tolist(), y.tolist()
    else:
        X, y = make_moons(n_samples=n_samples, noise=noise, seed=seed)
    return X, [2 * label - 1 for label in y]


def loss_and_accuracy(model, X, y, alpha=1e-4):
    """The demo's loss: mean hinge loss plus alpha * sum(p**2), and the accuracy, as micrograd computes them."""
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum((p * p for p in model.parameters()))
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    return total_loss, sum(accuracy) / len(accuracy)


def train(steps=100, seed=SEED, log=None, source="auto"):
    """Train the demo model; returns (model, X, y, history of (loss, accuracy) per step).

    source: where the data comes from, as for load_moons."""
    random.seed(seed)
    X, y = load_moons(seed=seed, source=source)
    model = MLP(2, [16, 16, 1])
    history = []
    for k in range(steps):
        total_loss, acc = loss_and_accuracy(model, X, y)
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        history.append((total_loss.data, acc))
        if log:
            log(k, steps, total_loss.data, acc)
    return model, X, y, history


def model_scores(model, points):
    """The model's output for each row of ``points`` (an (M, nin) array), computed in NumPy from its
    weights: the same numbers as calling the model on Values, to rounding, for a whole grid at once."""
    import numpy as np

    h = np.asarray(points, dtype=np.float64)
    for layer in model.layers:
        weights = np.array([[w.data for w in neuron.w] for neuron in layer.neurons])
        biases = np.array([neuron.b.data for neuron in layer.neurons])
        h = h @ weights.T + biases
        if layer.neurons[0].nonlin:
            h = np.maximum(h, 0.0)
    return h[:, 0]


def save_plot(model, X, y, history, path, resolution=250):
    """Write a PNG: the data coloured by class over the model's decision regions, and the loss and
    accuracy per step. Needs matplotlib (raises ImportError without it); draws without a display."""
    try:
        import numpy as np
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the plot needs matplotlib: pip install 'micrograd-c[demo]'") from exc

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    margin = 0.5
    xs = np.linspace(X[:, 0].min() - margin, X[:, 0].max() + margin, resolution)
    ys = np.linspace(X[:, 1].min() - margin, X[:, 1].max() + margin, resolution)
    xx, yy = np.meshgrid(xs, ys)
    scores = model_scores(model, np.column_stack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
    losses = [loss for loss, _ in history]
    accuracies = [100 * acc for _, acc in history]
    steps = range(1, len(history) + 1)
    colors = ("#d62728", "#1f77b4")  # class -1, class +1

    # Figure without pyplot: no GUI backend, no global state; savefig renders with Agg
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax, ax_loss = fig.subplots(1, 2, gridspec_kw={"width_ratios": (1, 1.15)})
    ax.contourf(xx, yy, scores > 0, levels=[-0.5, 0.5, 1.5], cmap=ListedColormap(["#f7c6c6", "#c6dcf2"]))
    if scores.min() < 0 < scores.max():
        ax.contour(xx, yy, scores, levels=[0.0], colors="k", linewidths=1.2)
    for label, color in zip((-1, 1), colors):
        rows = X[y == label]
        ax.scatter(rows[:, 0], rows[:, 1], s=28, c=color, edgecolors="k", linewidths=0.5, label=f"class {label:+d}")
    ax.set(
        xlim=(xs[0], xs[-1]),
        ylim=(ys[0], ys[-1]),
        xlabel="$x_0$",
        ylabel="$x_1$",
        title=f"Decision boundary: accuracy {accuracies[-1]:.0f}%",
    )
    ax.legend(loc="upper right", framealpha=0.9)

    ax_loss.plot(steps, losses, color="#2c3e50", label="loss")
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="step", ylabel="loss (log scale)", title=f"Training: final loss {losses[-1]:.4f}")
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_acc = ax_loss.twinx()
    ax_acc.plot(steps, accuracies, color="#2ca02c", label="accuracy")
    ax_acc.set_ylim(0, 105)
    ax_acc.set_ylabel("accuracy (%)")
    lines = ax_loss.get_lines() + ax_acc.get_lines()
    ax_loss.legend(lines, [line.get_label() for line in lines], loc="center right")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m micrograd_c demo", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    parser.add_argument(
        "--out", default="moons.png", metavar="PATH", help="where to write the plot (default moons.png)"
    )
    parser.add_argument("--no-plot", action="store_true", help="don't draw the plot")
    parser.add_argument(
        "--data",
        choices=DATA_SOURCES,
        default="auto",
        help="make_moons from scikit-learn or the built-in one, which gives the same numbers "
        "(default auto: scikit-learn when installed)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    try:
        source = moons_source(args.data)
    except ImportError as exc:
        parser.error(f"--data sklearn: {exc}")

    data = (
        "scikit-learn's make_moons"
        if source == "sklearn"
        else "the built-in make_moons (same numbers as scikit-learn's)"
    )
    print(f"micrograd's moons demo: MLP(2, [16, 16, 1]), 100 samples from {data}, {args.steps} steps of SGD")
    start = time.perf_counter()
    progress = None if args.quiet else Progress(args.steps)
    log = progress and (lambda k, steps, loss, acc: progress.update(k + 1, loss=loss, accuracy=acc))
    model, X, y, history = train(steps=args.steps, log=log, source=source)
    elapsed = time.perf_counter() - start
    loss, acc = history[-1]
    print(f"final loss {loss:.6f}, accuracy {acc:.1%}, {elapsed:.2f} s ({elapsed / args.steps * 1000:.1f} ms per step)")
    if not args.no_plot:
        try:
            save_plot(model, X, y, history, args.out)
        except ImportError:
            print(
                "note: no plot, matplotlib is not installed; pip install 'micrograd-c[demo]' to get "
                f"{args.out} (the data, the decision boundary and the loss curve)"
            )
        else:
            print(f"wrote {args.out}: the data, the decision boundary and the loss curve")
    return 0
