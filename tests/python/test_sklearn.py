"""micrograd_c.sklearn: scikit-learn's own estimator checks, one test each, then seeding, threads, pickling,
Pipeline and GridSearchCV on real data, the classifier's and regressor's shapes, and parameter errors."""

import os
import pickle
import random
import subprocess
import sys
import textwrap

import micrograd_c.nn
import pytest
from _helpers import require

np = require("numpy")
require("sklearn")
from micrograd_c.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, load_iris, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

# small and fast, and still accurate enough for the checks that score the training set
FAST = dict(hidden_layer_sizes=(8,), max_iter=50, random_state=0)

# No check is expected to fail. Two can skip, each for a reason outside the estimator:
# - check_array_api_input runs only when SCIPY_ARRAY_API=1 is set before scipy is imported:
#   test_array_api_check_with_scipy_array_api runs it in a fresh interpreter that sets it;
# - the pandas checks (feature names, DataFrame input) skip without pandas, which the [test] extra installs.


@parametrize_with_checks([MLPClassifier(**FAST), MLPRegressor(**FAST)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_array_api_check_with_scipy_array_api():
    code = textwrap.dedent(f"""
        from sklearn.utils.estimator_checks import check_estimator
        from micrograd_c.sklearn import MLPClassifier, MLPRegressor
        for est in (MLPClassifier(**{FAST!r}), MLPRegressor(**{FAST!r})):
            results = check_estimator(est, on_fail=None, on_skip=None)
            ran = [r for r in results if r["check_name"] == "check_array_api_input"]
            assert ran and all(r["status"] == "passed" for r in ran), ran
            bad = [(r["check_name"], r["status"]) for r in results if r["status"] != "passed"]
            print(type(est).__name__, len(results), bad)
    """)
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- seeding, threads, pickling -------------------------------------------------------------------------


def iris_scaled():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def weights(est):
    return [p.data for p in est.model_.parameters()]


@pytest.mark.parametrize("init", [None, "micrograd", "kaiming_uniform", "xavier_uniform"])
def test_random_state_gives_the_mlps_weights_and_leaves_global_random_alone(init):
    X, y = iris_scaled()
    random.seed(123)
    before = random.getstate()
    options = {} if init is None else {"init": init}
    clf = MLPClassifier(
        (5, 4), random_state=7, max_iter=1, learning_rate_init=1e-12, optimizer="sgd", momentum=0.0, **options
    ).fit(X, y)
    assert random.getstate() == before  # fit neither reads nor moves the caller's generator
    random.seed(7)
    reference = micrograd_c.nn.MLP(4, [5, 4, 3], init=init or "kaiming_uniform")  # the default: Kaiming's
    assert repr(clf.model_) == repr(reference)
    ref = [p.data for p in reference.parameters()]
    assert all(abs(a - b) < 1e-9 for a, b in zip(weights(clf), ref)) and len(ref) == len(weights(clf))


def test_same_random_state_same_model_any_thread_count():
    X, y = iris_scaled()
    assert MLPClassifier().threads == 1 and MLPRegressor().threads == 1  # parallelism is asked for, as n_jobs
    fits = [MLPClassifier((16,), random_state=3, max_iter=20, batch_size=64, threads=t).fit(X, y) for t in (1, 2, None)]
    assert weights(fits[0]) == weights(fits[1]) == weights(fits[2])
    assert fits[0].loss_curve_ == fits[1].loss_curve_ == fits[2].loss_curve_
    assert weights(MLPClassifier((16,), random_state=4, max_iter=20).fit(X, y)) != weights(fits[0])
    # a RandomState instance draws new seeds each fit, as scikit-learn's estimators do
    rs = np.random.RandomState(0)
    clf = MLPClassifier((16,), random_state=rs, max_iter=2)
    assert weights(clf.fit(X, y)) != weights(clf.fit(X, y))


def test_pickle_round_trip_predicts_the_same():
    X, y = iris_scaled()
    clf = MLPClassifier((8,), random_state=0, max_iter=30).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.get_params() == clf.get_params()
    assert list(again.classes_) == [0, 1, 2] and again.n_iter_ == 30
    reg = MLPRegressor((8,), random_state=0, max_iter=30).fit(X, X[:, 0])
    assert np.array_equal(pickle.loads(pickle.dumps(reg)).predict(X), reg.predict(X))


# ---- real data: Pipeline and GridSearchCV ------------------------------------------------------------


def test_pipeline_on_digits():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), MLPClassifier((16,), random_state=0, max_iter=100)).fit(Xtr, ytr)
    assert model.score(Xte, yte) > 0.93


def test_grid_search_on_iris():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(random_state=0))
    grid = {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)], "mlpclassifier__optimizer": ["adam", "sgd"]}
    search = GridSearchCV(pipe, grid, cv=5).fit(X, y)
    assert search.best_score_ > 0.93
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["mlpclassifier__hidden_layer_sizes"] == (16,)
    assert search.score(X, y) > 0.95


# ---- the classifier's and the regressor's outputs --------------------------------------------------------


def test_binary_string_labels_proba_and_decision():
    X, y = iris_scaled()
    keep = y < 2
    labels = np.where(y[keep] == 0, "setosa", "versicolor")
    clf = MLPClassifier((8,), random_state=0, max_iter=30, batch_size=16).fit(X[keep], labels)
    assert list(clf.classes_) == ["setosa", "versicolor"]
    assert clf.model_.layers[-1].neurons.__len__() == 1  # one logit, trained with bce
    d = clf.decision_function(X[keep])
    p = clf.predict_proba(X[keep])
    assert d.shape == (keep.sum(),) and p.shape == (keep.sum(), 2)
    assert np.allclose(p.sum(axis=1), 1) and np.allclose(p[:, 1], 1 / (1 + np.exp(-d)))
    assert np.array_equal(clf.predict(X[keep]), clf.classes_[(d > 0).astype(int)])
    assert clf.score(X[keep], labels) == 1.0


def test_multiclass_softmax():
    X, y = iris_scaled()
    clf = MLPClassifier((8,), random_state=0, max_iter=60, batch_size=16).fit(X, y + 10)
    d, p = clf.decision_function(X), clf.predict_proba(X)
    assert d.shape == p.shape == (150, 3)
    e = np.exp(d - d.max(axis=1, keepdims=True))
    assert np.allclose(p, e / e.sum(axis=1, keepdims=True))
    assert np.allclose(clf.predict_log_proba(X), np.log(p))
    assert set(clf.predict(X)) <= {10, 11, 12} and clf.score(X, y + 10) > 0.9


def test_hinge_loss_is_micrograds_svm_for_two_classes():
    X, y = iris_scaled()
    clf = MLPClassifier((8,), loss="hinge", random_state=0, max_iter=50).fit(X[y < 2], y[y < 2])
    assert clf.score(X[y < 2], y[y < 2]) == 1.0
    assert not hasattr(clf, "predict_proba") and not hasattr(clf, "predict_log_proba")
    assert hasattr(MLPClassifier(), "predict_proba")
    with pytest.raises(ValueError, match="loss='hinge' is for two classes, y has 3"):
        clf.fit(X, y)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit([[0.0], [1.0]], [1, 1])


def test_regressor_shapes_and_fit():
    X, y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=0.1, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = y / y.std(axis=0)
    reg = MLPRegressor((16,), random_state=0, max_iter=200).fit(X, y)
    assert reg.n_outputs_ == 2 and reg.predict(X).shape == (200, 2)
    assert reg.score(X, y) > 0.95
    one = clone(reg).fit(X, y[:, 0])
    assert one.n_outputs_ == 1 and one.predict(X).shape == (200,)
    column = clone(reg).fit(X, y[:, :1])
    assert column.predict(X).shape == (200, 1)
    assert np.array_equal(column.predict(X)[:, 0], one.predict(X))  # same seed, same data: same model
    assert not hasattr(reg, "predict_proba")


def test_verbose_prints_progress_and_quiet_prints_nothing(capsys):
    X, y = iris_scaled()
    MLPClassifier((4,), random_state=0, max_iter=3).fit(X, y)
    assert capsys.readouterr() == ("", "")
    MLPClassifier((4,), random_state=0, max_iter=3, verbose=True).fit(X, y)
    out = capsys.readouterr()
    assert "epoch" in out.out + out.err


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = MLPClassifier((4,), random_state=0, max_iter=5).fit(X, y)
    assert list(clf.feature_names_in_) == list(X.columns) and clf.n_features_in_ == 4
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X.to_numpy())
    assert isinstance(pd, object)


# ---- parameter errors: found at fit time, named with what was passed -----------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({"hidden_layer_sizes": (4, 0)}, r"hidden_layer_sizes must be a sequence of positive ints, got \(4, 0\)"),
        ({"hidden_layer_sizes": "16"}, "hidden_layer_sizes must be a sequence of positive ints, got '16'"),
        ({"hidden_layer_sizes": 3.5}, "hidden_layer_sizes must be a sequence of positive ints, got 3.5"),
        ({"optimizer": "rmsprop"}, r"optimizer must be one of \('adam', 'adamw', 'sgd'\), got 'rmsprop'"),
        ({"learning_rate_init": -1}, "learning_rate_init must be a finite number >= 0, got -1"),
        ({"learning_rate_init": 0}, "learning_rate_init must be > 0, got 0"),
        ({"alpha": float("nan")}, "alpha must be a finite number >= 0, got nan"),
        ({"momentum": "0.9"}, "momentum must be a finite number >= 0, got '0.9'"),
        ({"max_iter": 0}, "max_iter must be an int >= 1, got 0"),
        ({"max_iter": 2.0}, "max_iter must be an int >= 1, got 2.0"),
        ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
        ({"batch_size": "all"}, "batch_size must be an int >= 1, got 'all'"),
        ({"threads": -1}, r"threads must be None \(every core\) or an int >= 0, got -1"),
        ({"shuffle": "yes"}, "shuffle must be True or False, got 'yes'"),
        ({"init": "he"}, r"init must be one of \('micrograd', 'kaiming_uniform', 'xavier_uniform'\), got 'he'"),
        ({"init": None}, "init must be one of .*, got None"),
        ({"random_state": "seed"}, "'seed' cannot be used to seed"),
        ({"loss": "mse"}, "loss must be 'log_loss' or 'hinge', got 'mse'"),
    ],
)
def test_bad_parameters_raise_at_fit(params, message):
    clf = MLPClassifier(**params)  # __init__ only stores them
    assert clf.get_params()[next(iter(params))] is params[next(iter(params))]
    with pytest.raises(ValueError, match=message):
        clf.fit([[0.0], [1.0]], [0, 1])
    assert not hasattr(clf, "model_")


def test_regressor_loss_is_squared_error():
    with pytest.raises(ValueError, match="loss must be 'squared_error', got 'log_loss'"):
        MLPRegressor(loss="log_loss").fit([[0.0], [1.0]], [0.0, 1.0])


def test_batch_size_none_and_large_mean_full_batch():
    X, y = iris_scaled()
    runs = [MLPClassifier((4,), random_state=0, max_iter=5, batch_size=b).fit(X, y) for b in (None, 150, 10_000)]
    assert weights(runs[0]) == weights(runs[1]) == weights(runs[2])
