"""scikit-learn estimators on micrograd_c's MLP: ``MLPClassifier`` and ``MLPRegressor``.

They train with ``MLP.fit`` (in C, the GIL released) and follow scikit-learn's conventions, so they pass
``sklearn.utils.estimator_checks``, pickle, and work in ``Pipeline``, ``GridSearchCV`` and the rest::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from micrograd_c.sklearn import MLPClassifier

    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), random_state=0))
    clf.fit(X_train, y_train).score(X_test, y_test)

The network is micrograd's MLP: ReLU on the hidden layers, a linear last layer, biases starting at 0 and
weights drawn with PyTorch's Kaiming uniform bounds by default (``init="micrograd"`` gives micrograd's
uniform(-1, 1) whatever the fan-in). Inputs are not scaled for you: put a ``StandardScaler`` (or another
scaler) before the estimator in a Pipeline, or training will be slow or diverge.

Needs scikit-learn >= 1.6: ``pip install micrograd-c[sklearn]``.
"""

import numbers
import random

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from micrograd_c import _core, optim
from micrograd_c.nn import MLP, _check_count, _init_bound

__all__ = ["MLPClassifier", "MLPRegressor"]

_OPTIMIZERS = ("adam", "adamw", "sgd")

_PARAMS_DOC = """
    hidden_layer_sizes: the widths of the hidden layers, (16,) by default; () for a linear model.
    optimizer: "adam" (default), "adamw" (decoupled weight decay 0.01) or "sgd" (with ``momentum``).
    learning_rate_init: the optimizer's learning rate, 0.01 by default (scikit-learn's is 0.001).
    momentum: SGD's momentum, 0.9 by default; only used with optimizer="sgd".
    alpha: L2 penalty, ``alpha * sum(p**2)`` over every weight and bias added to the mean loss (fit's l2).
    max_iter: how many epochs to train (there is no early stopping: it always trains max_iter epochs).
    batch_size: "auto" (min(200, n_samples), as scikit-learn's MLP), None (the whole set: full-batch) or
        an int (capped at n_samples).
    shuffle: shuffle the samples in each epoch.
    init: the initial weights: "kaiming_uniform" (default: PyTorch's bound for ReLU networks, gain *
        sqrt(3 / fan_in)), "xavier_uniform", or "micrograd" (uniform(-1, 1), micrograd's own); see MLP.
    random_state: None, an int or a numpy RandomState. An int s gives the weights ``MLP(..., init=init)``
        draws after ``random.seed(s)`` and the shuffling seed s; the caller's global ``random`` is never touched.
    threads: the cores one fit uses: 1 by default (as scikit-learn's n_jobs, parallelism is asked for), None
        or 0 for every core. Results are bit for bit the same for any number. Threads split each layer's
        products, so they pay off on large batches and wide layers with idle cores; when several fits run at
        once (GridSearchCV with n_jobs, Dask workers), keep fits at once x threads <= cores.
    verbose: print a progress line per epoch.
"""


def _check_params(est):
    """Every hyperparameter checked at fit time (scikit-learn's rule: __init__ only stores them)."""
    sizes = est.hidden_layer_sizes
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    try:
        sizes = list(sizes)
    except TypeError:
        raise ValueError(f"hidden_layer_sizes must be a sequence of positive ints, got {est.hidden_layer_sizes!r}")
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be a sequence of positive ints, got {est.hidden_layer_sizes!r}")
    if est.optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {est.optimizer!r}")
    for name in ("learning_rate_init", "momentum", "alpha"):
        value = getattr(est, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if est.learning_rate_init == 0:
        raise ValueError("learning_rate_init must be > 0, got 0")
    _check_count("max_iter", est.max_iter, 1)
    if not (est.batch_size is None or est.batch_size == "auto"):
        _check_count("batch_size", est.batch_size, 1)
    _check_count("threads", est.threads, 0, none="every core")
    if not isinstance(est.shuffle, (bool, np.bool_)):
        raise ValueError(f"shuffle must be True or False, got {est.shuffle!r}")
    if not isinstance(est.init, str) or est.init not in _core.INITS:
        raise ValueError(f"init must be one of {_core.INITS}, got {est.init!r}")
    return [int(s) for s in sizes]


def _seeds(random_state):
    """(weights seed, shuffling seed): an int is used as it is; None or a RandomState draws them."""
    rng = check_random_state(random_state)  # raises ValueError for anything else
    if isinstance(random_state, numbers.Integral):
        return int(random_state), int(random_state)
    init, order = rng.randint(0, 2**31 - 1, size=2)
    return int(init), int(order)


def _new_mlp(n_inputs, sizes, seed, init):
    """MLP(n_inputs, sizes, init=init) after random.seed(seed), drawn from a private generator: the
    global `random` is neither read nor changed, so fits running in threads cannot disturb each other."""
    rng = random.Random(seed)
    params, width = [], n_inputs
    for i, size in enumerate(sizes):
        bound = _init_bound(init, width, size, i < len(sizes) - 1)
        for _ in range(size):  # Neuron: nin weights from uniform(-bound, bound), then a bias of 0
            params.extend(rng.uniform(-bound, bound) for _ in range(width))
            params.append(0.0)
        width = size
    activations = ["relu"] * (len(sizes) - 1) + ["linear"]
    return MLP._from_parameters(n_inputs, sizes, activations, params)


def _store_params(est, params):
    """__init__'s one job in scikit-learn: each argument stored as it is, under its own name (params is
    __init__'s locals())."""
    for name, value in params.items():
        if name != "self":
            setattr(est, name, value)


class _BaseMLP(BaseEstimator):
    def _train(self, X, y, hidden, n_outputs, loss):
        """A fresh model of these sizes trained for max_iter epochs: sets model_, loss_curve_, loss_, n_iter_."""
        init_seed, order_seed = _seeds(self.random_state)
        model = _new_mlp(X.shape[1], hidden + [n_outputs], init_seed, self.init)
        params = model.parameters()
        lr = float(self.learning_rate_init)
        if self.optimizer == "sgd":
            opt = optim.SGD(params, lr=lr, momentum=float(self.momentum))
        else:
            opt = (optim.Adam if self.optimizer == "adam" else optim.AdamW)(params, lr=lr)
        n = X.shape[0]
        batch = n if self.batch_size is None else min(200 if self.batch_size == "auto" else self.batch_size, n)
        history = model.fit(
            X,
            y,
            loss=loss,
            optimizer=opt,
            epochs=int(self.max_iter),
            batch_size=batch,
            l2=float(self.alpha),
            shuffle=bool(self.shuffle),
            seed=order_seed,
            threads=self.threads,
            verbose=bool(self.verbose),
        )
        self.model_ = model
        self.loss_curve_ = [entry["loss"] for entry in history]
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = len(history)
        return self

    def _outputs(self, X):
        """The network's outputs for X, shape (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(self.model_.predict(X), dtype=np.float64).reshape(X.shape[0], -1)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = (
        """A classifier: micrograd's MLP trained by micrograd_c's fit.

    Any labels (numbers or strings; classes_ holds them sorted). Two classes: one output trained with
    "bce" (loss="log_loss"; predict_proba is its sigmoid) or with micrograd's max-margin "svm" loss
    (loss="hinge"; no predict_proba). More classes: one output per class, softmax "cross_entropy".
    Standardise the inputs first (a Pipeline with StandardScaler): the estimator does not.

    loss: "log_loss" (default) or "hinge" (two classes only)."""
        + _PARAMS_DOC
        + """
    Fitted attributes: classes_, n_features_in_ (and feature_names_in_ for a DataFrame), model_ (the
    micrograd_c.nn.MLP), loss_curve_ (one loss per epoch), loss_ (the last), n_iter_ (epochs trained).
    """
    )

    # fmt: off
    def __init__(self, hidden_layer_sizes=(16,), *, loss="log_loss", optimizer="adam", learning_rate_init=0.01,
                 momentum=0.9, alpha=0.0, max_iter=200, batch_size="auto", shuffle=True, init="kaiming_uniform",
                 random_state=None, threads=1, verbose=False):  # scikit-learn reads the parameters from here
        _store_params(self, locals())
    # fmt: on

    def fit(self, X, y):
        """Train a new model on X (n_samples, n_features) and the labels y; returns self."""
        hidden = _check_params(self)
        if self.loss not in ("log_loss", "hinge"):
            raise ValueError(f"loss must be 'log_loss' or 'hinge', got {self.loss!r}")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, index = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes in y, got 1 class: {self.classes_}")
        if self.loss == "hinge":
            if k > 2:
                raise ValueError(f"loss='hinge' is for two classes, y has {k}: use loss='log_loss'")
            return self._train(X, index * 2.0 - 1.0, hidden, 1, "svm")
        if k == 2:
            return self._train(X, index.astype(np.float64), hidden, 1, "bce")
        return self._train(X, index.astype(np.float64), hidden, k, "cross_entropy")

    def decision_function(self, X):
        """The network's outputs: shape (n_samples,) for two classes (> 0 means classes_[1]), else the
        logits, (n_samples, n_classes)."""
        out = self._outputs(X)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict(self, X):
        """The most likely class of each row."""
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    def _has_proba(self):
        return self.loss == "log_loss"

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Probabilities of the classes, (n_samples, n_classes): the sigmoid for two, softmax for more."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = (
        """A regressor: micrograd's MLP trained by micrograd_c's fit with the mean squared error.

    y of shape (n_samples,) gives predictions of that shape; (n_samples, n_outputs) trains one output per
    column (multi-output). Standardise the inputs first (a Pipeline with StandardScaler); scaling the
    targets (TransformedTargetRegressor) helps too.

    loss: "squared_error", the only one (fit's "mse")."""
        + _PARAMS_DOC
        + """
    Fitted attributes: n_features_in_ (and feature_names_in_ for a DataFrame), n_outputs_, model_ (the
    micrograd_c.nn.MLP), loss_curve_ (one loss per epoch), loss_ (the last), n_iter_ (epochs trained).
    """
    )

    # fmt: off
    def __init__(self, hidden_layer_sizes=(16,), *, loss="squared_error", optimizer="adam", learning_rate_init=0.01,
                 momentum=0.9, alpha=0.0, max_iter=200, batch_size="auto", shuffle=True, init="kaiming_uniform",
                 random_state=None, threads=1, verbose=False):  # scikit-learn reads the parameters from here
        _store_params(self, locals())
    # fmt: on

    def fit(self, X, y):
        """Train a new model on X (n_samples, n_features) and the targets y; returns self."""
        hidden = _check_params(self)
        if self.loss != "squared_error":
            raise ValueError(f"loss must be 'squared_error', got {self.loss!r}")
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        self._one_d = y.ndim == 1
        self.n_outputs_ = 1 if self._one_d else y.shape[1]
        return self._train(X, y, hidden, self.n_outputs_, "mse")

    def predict(self, X):
        """The predictions: (n_samples,) if fit had a 1-D y, else (n_samples, n_outputs_)."""
        out = self._outputs(X)
        return out[:, 0] if self._one_d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
