"""micrograd's moons demo (demo.ipynb), run on micrograd_c: ``python -m micrograd_c demo``.

The training loop is micrograd's, line for line, with only the import changed: a 2-16-16-1 MLP, the SVM
max-margin loss with L2 regularisation, and plain SGD with a decaying learning rate.
"""

import random
import time

from micrograd_c._progress import Progress
from micrograd_c.datasets import make_moons
from micrograd_c.engine import Value
from micrograd_c.nn import MLP

SEED = 1337


def load_moons(n_samples=100, noise=0.1, seed=SEED):
    """The demo's data: scikit-learn's make_moons after np.random.seed(seed), with labels -1/+1.

    Without scikit-learn the built-in generator gives the same numbers."""
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


def train(steps=100, seed=SEED, log=None):
    """Train the demo model; returns (model, X, y, history of (loss, accuracy) per step)."""
    random.seed(seed)
    X, y = load_moons(seed=seed)
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


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m micrograd_c demo", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")

    print(f"micrograd's moons demo: MLP(2, [16, 16, 1]), 100 samples, {args.steps} steps of SGD")
    start = time.perf_counter()
    progress = None if args.quiet else Progress(args.steps)
    log = progress and (lambda k, steps, loss, acc: progress.update(k + 1, loss=loss, accuracy=acc))
    _, _, _, history = train(steps=args.steps, log=log)
    elapsed = time.perf_counter() - start
    loss, acc = history[-1]
    print(f"final loss {loss:.6f}, accuracy {acc * 100:.0f}%, {elapsed:.2f} s "
          f"({elapsed / args.steps * 1000:.1f} ms per step)")
    return 0
