"""Losses on Values, built from the engine's ops so that ``backward()`` goes through them.

The same losses, on whole data sets and without a graph, are what ``MLP.fit(loss=...)`` trains with:
"svm", "mse", "bce", "cross_entropy". Each here returns one Value, the mean over the samples.
"""

import math
import operator

__all__ = ["svm", "mse", "bce", "cross_entropy", "l2"]


def _mean(terms):
    terms = list(terms)
    if not terms:
        raise ValueError("a loss needs at least one sample")
    return sum(terms) * (1.0 / len(terms))


def _pairs(scores, targets):
    scores, targets = list(scores), list(targets)
    if len(scores) != len(targets):
        raise ValueError(f"{len(scores)} scores but {len(targets)} targets")
    return zip(scores, targets)


def svm(scores, labels):
    """micrograd's max-margin hinge: mean(relu(1 - y * score)), labels -1/+1."""

    def one(s, y):
        if y not in (-1, 1):
            raise ValueError(f"svm labels must be -1 or 1, got {y!r}")
        return (1 + -y * s).relu()

    return _mean(one(s, y) for s, y in _pairs(scores, labels))


def mse(scores, targets):
    """Mean squared error: mean((score - target)**2)."""
    return _mean((s - t) ** 2 for s, t in _pairs(scores, targets))


def bce(logits, labels):
    """Binary cross-entropy on logits, labels 0/1: mean(softplus(x) - y * x), stable for any x."""

    def one(x, y):
        if y not in (0, 1):
            raise ValueError(f"bce labels must be 0 or 1, got {y!r}")
        # softplus(x) = log(1 + exp(x)), written so exp never overflows: the branch is on the value only,
        # both forms are the same function with the same gradient, sigmoid(x)
        softplus = x + (1 + (-x).exp()).log() if x.data > 0 else (1 + x.exp()).log()
        return softplus - y * x

    return _mean(one(x, y) for x, y in _pairs(logits, labels))


def cross_entropy(logits, labels):
    """Softmax cross-entropy: logits is one list of Values per sample, labels the class indices."""

    def one(row, label):
        row = list(row)
        try:
            label = operator.index(label)  # ints, NumPy ints; not floats or bools' lookalikes
        except TypeError:
            raise ValueError(f"class label must be an int in [0, {len(row)}), got {label!r}") from None
        if not 0 <= label < len(row):
            raise ValueError(f"class label must be an int in [0, {len(row)}), got {label!r}")
        # subtracting the largest logit (a constant here) keeps exp from overflowing
        top = max(v.data for v in row)
        log_sum = sum((v - top).exp() for v in row).log() + top
        return log_sum - row[label]

    return _mean(one(row, label) for row, label in _pairs(logits, labels))


def l2(params, alpha):
    """alpha * sum(p**2), micrograd's regularisation: ``alpha * sum(p*p for p in params)``."""
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return alpha * sum(p * p for p in params)
