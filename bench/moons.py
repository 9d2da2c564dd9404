"""Workloads 4 and 5: micrograd's moons demo (demo.ipynb).

`demo` is the notebook's code, verbatim but for the import: make_moons(n_samples=100, noise=0.1) after
np.random.seed(1337) and random.seed(1337), MLP(2, [16, 16, 1]), the SVM max-margin loss with L2
regularisation, SGD with a decaying learning rate. Each step (forward, backward, update) is timed.

`demo_torch` trains the same model on the same data with PyTorch, the way a user who picks PyTorch
instead would write it: batched float64 tensors, the same loss, the same learning rates, and the very
weights micrograd draws (random.uniform(-1, 1) in micrograd's order), so its losses match micrograd's.
"""

import random

from common import gc_state, import_torch, median, mlp_class, now, value_class, warm_up_fit


def demo(engine, steps=100, gc_enabled=True):
    import numpy as np
    from sklearn.datasets import make_moons

    Value, MLP = value_class(engine), mlp_class(engine)

    np.random.seed(1337)
    random.seed(1337)

    # make up a dataset
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1  # make y be -1 or 1

    # initialize a model
    model = MLP(2, [16, 16, 1])  # 2-layer neural network

    # loss function
    def loss(batch_size=None):

        # inline DataLoader :)
        if batch_size is None:
            Xb, yb = X, y
        else:
            ri = np.random.permutation(X.shape[0])[:batch_size]
            Xb, yb = X[ri], y[ri]
        inputs = [list(map(Value, xrow)) for xrow in Xb]

        # forward the model to get scores
        scores = list(map(model, inputs))

        # svm "max-margin" loss
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(yb, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        # L2 regularization
        alpha = 1e-4
        reg_loss = alpha * sum((p * p for p in model.parameters()))
        total_loss = data_loss + reg_loss

        # also get accuracy
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]
        return total_loss, sum(accuracy) / len(accuracy)

    step_seconds, losses, accuracies = [], [], []
    with gc_state(gc_enabled):
        # optimization
        for k in range(steps):
            start = now()

            # forward
            total_loss, acc = loss()

            # backward
            model.zero_grad()
            total_loss.backward()

            # update (sgd)
            learning_rate = 1.0 - 0.9 * k / 100
            for p in model.parameters():
                p.data -= learning_rate * p.grad

            step_seconds.append(now() - start)
            losses.append(float(total_loss.data))
            accuracies.append(float(acc))

        summary = _summary(step_seconds, losses, accuracies)
        summary["nodes"] = graph_nodes(loss()[0]) - len(model.parameters())  # one more graph, untimed
    return summary


def graph_nodes(root):
    """How many Values root depends on, itself included (an explicit stack: graphs can be deep)."""
    seen = {id(root): root}
    stack = [root]
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen[id(child)] = child
                stack.append(child)
    return len(seen)


def _summary(step_seconds, losses, accuracies):
    """The median step (the first one counts as a warm-up when there are more) and the final figures."""
    timed = step_seconds[1:] if len(step_seconds) > 1 else step_seconds
    return {
        "steps": len(step_seconds),
        "step_seconds": median(timed),
        "total_seconds": sum(step_seconds),
        "losses": losses,
        "final_loss": losses[-1],
        "final_accuracy": accuracies[-1],
    }


def micrograd_initial_weights(sizes):
    """The weights micrograd's MLP(sizes[0], sizes[1:]) draws: per layer, per neuron, nin uniforms.

    Biases start at 0. Call after random.seed() exactly where the MLP would be made."""
    layers = []
    for nin, nout in zip(sizes, sizes[1:]):
        weights = [[random.uniform(-1, 1) for _ in range(nin)] for _ in range(nout)]
        layers.append((weights, [0.0] * nout))
    return layers


def demo_torch(steps=100):
    import numpy as np

    torch = import_torch()
    from sklearn.datasets import make_moons

    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    X = torch.tensor(X, dtype=torch.float64)
    y = torch.tensor(y, dtype=torch.float64)

    params = []
    for weights, biases in micrograd_initial_weights([2, 16, 16, 1]):
        params.append(torch.tensor(weights, dtype=torch.float64, requires_grad=True))
        params.append(torch.tensor(biases, dtype=torch.float64, requires_grad=True))
    W1, b1, W2, b2, W3, b3 = params

    step_seconds, losses, accuracies = [], [], []
    for k in range(steps):
        start = now()
        hidden = torch.relu(X @ W1.T + b1)
        hidden = torch.relu(hidden @ W2.T + b2)
        scores = (hidden @ W3.T + b3).squeeze(1)
        data_loss = torch.relu(1 - y * scores).sum() * (1.0 / len(y))
        reg_loss = 1e-4 * sum((p * p).sum() for p in params)
        total_loss = data_loss + reg_loss
        accuracy = ((y > 0) == (scores > 0)).double().mean()

        for p in params:
            p.grad = None
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        with torch.no_grad():
            for p in params:
                p -= learning_rate * p.grad

        step_seconds.append(now() - start)
        losses.append(total_loss.item())
        accuracies.append(accuracy.item())

    summary = _summary(step_seconds, losses, accuracies)
    summary["threads"] = torch.get_num_threads()
    return summary


def demo_fit(steps=100, threads=1):
    """The same demo trained by micrograd_c's MLP.fit: the whole loop in C (full batch, the demo's loss,
    SGD with lr 1.0 - 0.9 * k / 100), from the same data and weights."""
    import numpy as np
    from micrograd_c import MLP, optim
    from sklearn.datasets import make_moons

    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])
    opt = optim.SGD(model.parameters(), lr=1.0)
    options = dict(loss="svm", l2=1e-4, shuffle=False, schedule="linear", lr_end=0.1, threads=threads)
    warm_up_fit(X, y, 2, [16, 16, 1], **options)
    start = now()
    history = model.fit(X, y, optimizer=opt, epochs=steps, verbose=False, **options)
    seconds = now() - start
    losses = [h["loss"] for h in history]
    return {
        "steps": steps,
        "step_seconds": seconds / steps,
        "losses": losses,
        "final_loss": losses[-1],
        "final_accuracy": history[-1]["accuracy"],
        "threads": threads,
    }
