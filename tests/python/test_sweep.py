"""A hyperparameter sweep on a real engine: GridSearchCV over MLPClassifier through joblib's Dask backend on a
LocalCluster of two worker processes (loopback only), equal to the same search run sequentially; and
examples/python/sweep.py, against that cluster by its address and with a LocalCluster of its own."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import require

require("dask")
distributed = require("distributed")
joblib = require("joblib")
require("sklearn")
from micrograd_c.sklearn import MLPClassifier  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "sweep.py"
LOOPBACK = dict(host="127.0.0.1", dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each: what a real cluster does (every task's estimator and data
    pickled to another process), on loopback addresses."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **LOOPBACK)
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        yield cluster
    finally:
        cluster.close()


def search(threads):
    X, y = load_digits(return_X_y=True)
    model = make_pipeline(StandardScaler(), MLPClassifier(random_state=0, max_iter=20, threads=threads))
    grid = {"mlpclassifier__hidden_layer_sizes": [(8,), (16,)], "mlpclassifier__learning_rate_init": [0.003, 0.01]}
    return GridSearchCV(model, grid, cv=3), X, y


def test_grid_search_on_dask_equals_the_sequential_search(cluster):
    sequential, X, y = search(threads=0)  # here every core per fit, one fit at a time
    sequential.fit(X, y)
    on_dask, X, y = search(threads=1)  # on the workers one core per fit, two fits at a time
    with distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            on_dask.fit(X, y)
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2, f"the fits ran on {workers}"
    assert on_dask.best_score_ > 0.85
    assert on_dask.best_params_ == sequential.best_params_
    # fit is bit for bit the same for any thread count and in any process, so every fold's score is the same
    for key in ("mean_test_score", *(f"split{k}_test_score" for k in range(3))):
        assert list(on_dask.cv_results_[key]) == list(sequential.cv_results_[key]), key


def run_example(*args):
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--json", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_result(result, workers):
    assert result["workers"] == workers and result["fits"] == 12
    assert result["fit_threads"] >= 1
    assert result["best_score"] > 0.85 and result["test_score"] > 0.85
    assert result["best_score"] == max(result["mean_test_score"])


def test_sweep_example_on_a_cluster_by_its_address(cluster):
    check_result(run_example("--scheduler", cluster.scheduler_address), workers=2)


def test_sweep_example_with_its_own_local_cluster():
    check_result(run_example("--workers", "1"), workers=1)
