"""Workload 6: MLP(64, [32, 10]) on scikit-learn's digits (8x8 images, 10 classes).

The data: load_digits, pixels scaled to [0, 1], a stratified 75/25 train/test split. Every engine
starts from the weights micrograd's MLP draws after random.seed(1337), sees the same minibatches
(32 samples, reshuffled each epoch) and takes plain SGD steps with the same learning rates (0.5,
decaying linearly to 0.05 over the run, as the moons demo decays its own), so PyTorch and micrograd_c
train the same model and reach the same held-out accuracy.

- PyTorch: batched float64 tensors, softmax cross-entropy (F.cross_entropy).
- micrograd_c: its scalar engine, one graph per minibatch, softmax cross-entropy written with Values
  (exp, log).
- micrograd: has no exp or log, so its batch uses the multiclass hinge loss
  sum_j relu(1 + s_j - s_label); micrograd_c runs the same hinge batch for a like-for-like ratio.
"""

import random

from common import gc_state, import_torch, median, mlp_class, now, value_class, warm_up_fit
from moons import micrograd_initial_weights

SEED = 1337
SIZES = [64, 32, 10]
BATCH = 32
LEARNING_RATE = 0.5


def learning_rate(epoch, epochs):
    return LEARNING_RATE * (1 - 0.9 * epoch / epochs)


def load_data():
    """(X_train, X_test, y_train, y_test) as lists of Python floats and ints."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target
    )
    return X_train.tolist(), X_test.tolist(), y_train.tolist(), y_test.tolist()


def minibatches(n, epoch, batch=BATCH):
    """Lists of sample indices for one epoch: a shuffle seeded by the epoch number, cut in batches."""
    order = list(range(n))
    random.Random(SEED + epoch).shuffle(order)
    return [order[i : i + batch] for i in range(0, n, batch)]


# ---- PyTorch -----------------------------------------------------------------------------------------


def train_torch(epochs):
    torch = import_torch()
    import torch.nn.functional as F

    X_train, X_test, y_train, y_test = load_data()
    X_train, X_test = torch.tensor(X_train, dtype=torch.float64), torch.tensor(X_test, dtype=torch.float64)
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

    random.seed(SEED)
    params = []
    for weights, biases in micrograd_initial_weights(SIZES):
        params.append(torch.tensor(weights, dtype=torch.float64, requires_grad=True))
        params.append(torch.tensor(biases, dtype=torch.float64, requires_grad=True))
    W1, b1, W2, b2 = params

    def forward(X):
        return torch.relu(X @ W1.T + b1) @ W2.T + b2

    epoch_seconds = []
    for epoch in range(epochs):
        start = now()
        lr = learning_rate(epoch, epochs)
        for batch in minibatches(len(y_train), epoch):
            index = torch.tensor(batch)
            loss = F.cross_entropy(forward(X_train[index]), y_train[index])
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
        epoch_seconds.append(now() - start)

    with torch.no_grad():
        accuracy = (forward(X_test).argmax(1) == y_test).double().mean().item()
    timed = epoch_seconds[1:] if epochs > 1 else epoch_seconds
    return {
        "epochs": epochs,
        "epoch_seconds": median(timed),
        "test_accuracy": accuracy,
        "threads": torch.get_num_threads(),
    }


# ---- the scalar engines --------------------------------------------------------------------------------


def softmax_cross_entropy(scores, label):
    """-log softmax(scores)[label], shifted by the largest score (a constant) so exp cannot overflow."""
    top = max(s.data for s in scores)
    exps = [(s - top).exp() for s in scores]
    return sum(exps).log() - (scores[label] - top)


def multiclass_hinge(scores, label):
    """sum over wrong classes j of relu(1 + s_j - s_label): a loss micrograd can express."""
    correct = scores[label]
    return sum((1 + s - correct).relu() for j, s in enumerate(scores) if j != label)


def scalar_step(Value, model, X, y, batch, loss_of, lr):
    """One SGD step on one minibatch: a graph for the whole batch, backward, update."""
    losses = []
    for i in batch:
        scores = model(list(map(Value, X[i])))
        losses.append(loss_of(scores, y[i]))
    loss = sum(losses) * (1.0 / len(batch))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data


def scalar_accuracy(Value, model, X, y):
    correct = 0
    for xrow, label in zip(X, y):
        scores = [s.data for s in model(list(map(Value, xrow)))]
        correct += scores.index(max(scores)) == label
    return correct / len(y)


def train_scalar(engine, epochs):
    """A scalar engine with softmax cross-entropy: `epochs` whole epochs, then the held-out accuracy."""
    Value, MLP = value_class(engine), mlp_class(engine)
    X_train, X_test, y_train, y_test = load_data()
    random.seed(SEED)
    model = MLP(SIZES[0], SIZES[1:])
    epoch_seconds = []
    for epoch in range(epochs):
        start = now()
        lr = learning_rate(epoch, epochs)
        for batch in minibatches(len(y_train), epoch):
            scalar_step(Value, model, X_train, y_train, batch, softmax_cross_entropy, lr)
        epoch_seconds.append(now() - start)
    timed = epoch_seconds[1:] if epochs > 1 else epoch_seconds
    return {
        "epochs": epochs,
        "epoch_seconds": median(timed),
        "test_accuracy": scalar_accuracy(Value, model, X_test, y_test),
    }


def hinge_batch(engine, batch_size=BATCH, repeat=1, gc_enabled=True):
    """Seconds for one hinge-loss SGD step on the first `batch_size` training samples (median of
    `repeat`, after a warm-up step when repeat > 1), and the epoch time that extrapolates to."""
    Value, MLP = value_class(engine), mlp_class(engine)
    X_train, _, y_train, _ = load_data()
    random.seed(SEED)
    model = MLP(SIZES[0], SIZES[1:])
    batch = minibatches(len(y_train), 0)[0][:batch_size]
    seconds = []
    with gc_state(gc_enabled):
        for _ in range(repeat + 1 if repeat > 1 else 1):
            start = now()
            loss = scalar_step(Value, model, X_train, y_train, batch, multiclass_hinge, LEARNING_RATE)
            seconds.append(now() - start)
    timed = seconds[1:] if repeat > 1 else seconds
    step = median(timed)
    return {
        "batch_size": batch_size,
        "runs": len(timed),
        "step_seconds": step,
        "epoch_seconds": step * len(y_train) / batch_size,
        "loss": float(loss),
    }


# ---- micrograd_c's fit(): the whole run in C -----------------------------------------------------------


def train_fit(epochs, threads=1, batch=BATCH):
    """MLP.fit with the recipe above (the same weights, SGD from 0.5 decaying linearly to 0.05, softmax
    cross-entropy), minibatches drawn by fit's own shuffle. batch=None trains on the whole set per step."""
    from micrograd_c import MLP, optim

    X_train, X_test, y_train, y_test = load_data()
    random.seed(SEED)
    model = MLP(SIZES[0], SIZES[1:])
    opt = optim.SGD(model.parameters(), lr=LEARNING_RATE)
    options = dict(
        loss="cross_entropy",
        batch_size=batch,
        seed=SEED,
        schedule="linear",
        lr_end=LEARNING_RATE * 0.1,
        threads=threads,
    )
    warm_up_fit(X_train, y_train, SIZES[0], SIZES[1:], **options)
    start = now()
    model.fit(X_train, y_train, optimizer=opt, epochs=epochs, verbose=False, **options)
    seconds = now() - start
    scores = model.predict(X_test)
    right = sum(max(range(len(row)), key=row.__getitem__) == label for row, label in zip(scores, y_test))
    return {"epoch_seconds": seconds / epochs, "test_accuracy": right / len(y_test), "threads": threads}
