"""A hyperparameter sweep on Dask: GridSearchCV over micrograd_c's MLPClassifier on the digits data.

    pip install "micrograd-c[sweep]"                        # scikit-learn, joblib, dask[distributed]
    python examples/python/sweep.py                         # a LocalCluster on this machine
    python examples/python/sweep.py --scheduler tcp://10.0.0.5:8786   # a real cluster (micrograd-c on every worker)

GridSearchCV hands its fits, one per (parameters, fold), to joblib; inside joblib.parallel_backend("dask")
joblib sends them to the cluster's workers. The same code runs anywhere: only the scheduler address changes.

Threads and workers: fit runs in C with the GIL released and uses `threads` cores of its own (each layer's
products split between them; small models stay on one). A worker with T threads runs T fits at once, in
parallel even within one process. On a machine with C cores running W workers of T threads, give fit
threads = C // (W * T), so fits at once x threads <= cores: fit's threads meet, spinning, after every
layer, and on oversubscribed cores they spin away each other's time. With more
fits than cores (grid points x folds >= C), prefer threads=1 and W * T = C: whole fits never wait for each
other. None of this changes the results: fit is bit for bit the same for any thread count, so are the scores.
"""

import argparse
import json
import os
import socket
import time

import joblib
from dask.distributed import Client, LocalCluster
from micrograd_c.sklearn import MLPClassifier
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def _machine():
    return socket.gethostname(), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def fit_threads(client):
    """Cores per concurrent fit on the most crowded machine: its cores // the worker threads it runs."""
    machines = client.run(_machine)  # {worker address: (host name, usable cores)}
    fits_at_once = {}
    for address, nthreads in client.nthreads().items():
        fits_at_once[machines[address]] = fits_at_once.get(machines[address], 0) + nthreads
    return max(1, min(cores // fits for (_, cores), fits in fits_at_once.items()))


def sweep(client, quick):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    threads = fit_threads(client)
    model = make_pipeline(
        StandardScaler(), MLPClassifier(random_state=0, threads=threads, max_iter=30 if quick else 200)
    )
    grid = {
        "mlpclassifier__hidden_layer_sizes": [(16,), (32,)],
        "mlpclassifier__learning_rate_init": [0.003, 0.01] if quick else [0.001, 0.003, 0.01, 0.03],
        "mlpclassifier__alpha": [0.0] if quick else [0.0, 1e-3],
    }
    search = GridSearchCV(model, grid, cv=3 if quick else 5)
    start = time.perf_counter()
    with joblib.parallel_backend("dask"):  # every fit of the search runs on the cluster
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    results = search.cv_results_
    return {
        "workers": len(client.nthreads()),
        "fit_threads": threads,
        "fits": len(results["params"]) * search.n_splits_,
        "seconds": round(seconds, 2),
        "best_params": {k.split("__")[1]: v for k, v in search.best_params_.items()},
        "best_score": search.best_score_,
        "test_score": search.score(X_test, y_test),
        "mean_test_score": [float(s) for s in results["mean_test_score"]],
        "params": [{k.split("__")[1]: v for k, v in p.items()} for p in results["params"]],
    }


def report(result):
    print(
        f"{result['fits']} fits on {result['workers']} workers (fit threads={result['fit_threads']}) "
        f"in {result['seconds']} s"
    )
    for params, score in sorted(zip(result["params"], result["mean_test_score"]), key=lambda ps: -ps[1]):
        print(f"  {score:.4f}  {params}")
    print(
        f"best: {result['best_params']}, cross-validated {result['best_score']:.4f}, "
        f"held-out test {result['test_score']:.4f}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (default: start a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="the LocalCluster's worker processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="a 4-point grid, 3 folds, 30 epochs")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args(argv)
    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:  # loopback only; one thread per worker, fit's threads share the cores between the workers
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        )
        client = Client(cluster)
    try:
        result = sweep(client, args.quick)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if args.json:
        print(json.dumps(result, default=list))
    else:
        report(result)


if __name__ == "__main__":
    main()
