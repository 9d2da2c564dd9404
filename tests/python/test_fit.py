"""MLP.fit: micrograd's demo loss curve, thread-count invariance, input forms, history, progress output,
callbacks, the other losses on real data, and refusal of bad input without touching the model."""

import gc
import math
import os
import random
import time
import warnings

import micrograd_c
import micrograd_c.engine
import micrograd_c.nn
import pytest
from _helpers import demo_loop, require
from micrograd_c import losses, optim

np = require("numpy")
sklearn_datasets = require("sklearn.datasets")
model_selection = require("sklearn.model_selection")
micrograd = require("micrograd")
require("micrograd.engine")
require("micrograd.nn")

STEPS = 15  # micrograd needs about half a second a step, even with the collector run only once a step


def rel_close(a, b, rel=1e-9):
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def demo_data():
    """micrograd's demo.ipynb: np.random.seed(1337), random.seed(1337), make_moons(100, noise=0.1), y*2-1."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = sklearn_datasets.make_moons(n_samples=100, noise=0.1)
    return X, y * 2 - 1


@pytest.fixture(scope="module")
def micrograd_curve():
    """micrograd's own first STEPS steps of the demo (only micrograd objects: nothing of ours is held)."""
    X, y = demo_data()
    model = micrograd.nn.MLP(2, [16, 16, 1])
    # micrograd's graphs are reference cycles: collect once a step rather than about a hundred times
    enabled = gc.isenabled()
    gc.disable()
    try:
        return demo_loop(micrograd.engine.Value, model, X, y, STEPS, after_step=gc.collect)
    finally:
        if enabled:
            gc.enable()


def demo_fit(epochs_run=None, **kwargs):
    """micrograd_c's fit on the demo: 100 epochs of the linear schedule 1.0 -> 0.1 (micrograd's
    lr = 1.0 - 0.9 * k / 100), stopped by the callback after epochs_run epochs."""
    X, y = demo_data()
    model = micrograd_c.nn.MLP(2, [16, 16, 1])
    opt = optim.SGD(model.parameters(), lr=1.0)
    stop = None if epochs_run is None else (lambda epoch, loss, acc: epoch >= epochs_run)
    history = model.fit(
        X,
        y,
        loss="svm",
        l2=1e-4,
        optimizer=opt,
        epochs=100,
        shuffle=False,
        schedule="linear",
        lr_end=0.1,
        verbose=False,
        callback=stop,
        **kwargs,
    )
    return model, opt, history


def test_demo_weights_are_micrograds():
    demo_data()
    reference = micrograd.nn.MLP(2, [16, 16, 1])
    demo_data()
    model = micrograd_c.nn.MLP(2, [16, 16, 1])
    assert [p.data for p in model.parameters()] == [p.data for p in reference.parameters()]
    assert len(model.parameters()) == 337


def test_fit_follows_micrograds_demo_curve(micrograd_curve):
    model, opt, history = demo_fit(epochs_run=STEPS)
    assert len(history) == STEPS
    assert opt.steps == STEPS
    for k, (entry, (loss, acc)) in enumerate(zip(history, micrograd_curve)):
        assert entry["epoch"] == k + 1  # epochs count from 1, as the progress line shows them
        assert rel_close(entry["loss"], loss), f"step {k}: loss {entry['loss']!r}, micrograd {loss!r}"
        assert entry["accuracy"] == acc, f"step {k}: accuracy {entry['accuracy']}, micrograd {acc}"
    assert micrograd_curve[0][1] == 0.5 and abs(micrograd_curve[0][0] - 0.895844) < 1e-6
    assert opt.lr == 1.0  # the schedule does not leak into the optimizer


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_compute_mode_follows_micrograds_demo_curve(micrograd_curve, precision, dtype):
    model, opt, history = demo_fit(epochs_run=STEPS, precision=precision, dtype=dtype)
    rel = 1e-9 if dtype == "float64" else 1e-5  # float32: its own rounding, step after step
    for k, (entry, (loss, acc)) in enumerate(zip(history, micrograd_curve)):
        assert rel_close(entry["loss"], loss, rel=rel), f"step {k}: loss {entry['loss']!r}, micrograd {loss!r}"
        assert entry["accuracy"] == acc, f"step {k}"


def test_value_graph_demo_follows_micrograds_curve(micrograd_curve):
    X, y = demo_data()
    model = micrograd_c.nn.MLP(2, [16, 16, 1])
    history = demo_loop(micrograd_c.engine.Value, model, X, y, STEPS)
    for k, ((loss, acc), (ref_loss, ref_acc)) in enumerate(zip(history, micrograd_curve)):
        assert rel_close(loss, ref_loss), f"step {k}: loss {loss!r}, micrograd {ref_loss!r}"
        assert acc == ref_acc, f"step {k}"


def test_full_demo_fit_reaches_micrograds_final_numbers():
    model, opt, history = demo_fit()
    assert len(history) == 100
    assert abs(history[0]["loss"] - 0.895844) < 1e-6 and history[0]["accuracy"] == 0.5
    assert abs(history[-1]["loss"] - 0.010978) < 1e-6
    assert history[-1]["accuracy"] == 1.0
    # and the model it leaves classifies every point right
    X, y = demo_data()
    scores = [model(list(map(micrograd_c.Value, row))).data for row in X]
    assert all((yi > 0) == (s > 0) for yi, s in zip(y, scores))


# ---- threads ------------------------------------------------------------------------------------------


def _pool_workers():
    """(count, CPU seconds) of the library's pool workers (threads named "mg-pool"); None where unreadable.
    The pool is started on first need and kept, so workers outlive the fit that started them."""
    count, cpu = 0, 0.0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read() != "mg-pool\n":
                    continue
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                cpu += int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue  # a thread that has just exited
        count += 1
    return count, cpu


def test_thread_count_does_not_change_the_result():
    X, y = sklearn_datasets.make_moons(n_samples=3000, noise=0.2, random_state=0)
    y = y * 2 - 1
    results = []
    for threads in (1, 2, 3):
        random.seed(5)
        model = micrograd_c.nn.MLP(2, [32, 32, 1])
        opt = optim.Adam(model.parameters(), lr=0.01)
        seen = []
        cores = micrograd_c._core.num_cores()
        before = _pool_workers()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(
                X,
                y,
                loss="svm",
                l2=1e-4,
                optimizer=opt,
                epochs=3,
                batch_size=300,
                shuffle=True,
                seed=7,
                schedule="cosine",
                lr_end=1e-3,
                threads=threads,
                verbose=False,
                callback=lambda *args: seen.append(_pool_workers()),
            )
        # more threads than cores are capped at the core count, with a warning that says so
        assert [str(w.message) for w in caught] == (
            [] if threads <= cores else [f"fit: threads={threads} is more than the {cores} cores; using {cores}"]
        )
        if before is not None:  # the pool had the workers, and fit grew it no further than the cores
            expected = min(threads, cores)
            workers = max(count for count, _ in seen)
            assert expected - 1 <= workers <= max(before[0], cores - 1), f"{threads} threads asked, {workers} seen"
        results.append(([p.data for p in model.parameters()], history))
    for params, history in results[1:]:
        assert params == results[0][0]
        assert history == results[0][1]


def _fit_with_pool_share(X, y, threads):
    """Parameters after a fit, and the pool workers' CPU time during it as a share of the fit's own time."""
    # read while the workers sleep: the kernel brings a running thread's CPU time up to date only at a tick
    # or when it stops running, and the workers spin a little after a fit step
    time.sleep(0.03)
    random.seed(3)
    model = micrograd_c.nn.MLP(2, [64, 64, 1])
    opt = optim.SGD(model.parameters(), lr=0.05)
    before, start = _pool_workers(), time.thread_time()
    model.fit(X, y, loss="svm", optimizer=opt, epochs=4, threads=threads, verbose=False)
    spent = time.thread_time() - start
    time.sleep(0.03)
    after = _pool_workers()
    return [p.data for p in model.parameters()], (after[1] - before[1]) / spent if before and spent > 0 else None


def test_fit_follows_set_num_threads():
    """One knob: threads=None follows set_num_threads, an explicit count overrides it; same parameters."""
    if micrograd_c._core.num_cores() < 2 or _pool_workers() is None:
        pytest.skip("needs 2 cores and /proc")
    X, y = sklearn_datasets.make_moons(n_samples=2000, noise=0.2, random_state=1)
    y = y * 2 - 1
    old = micrograd_c.get_num_threads()
    try:
        micrograd_c.set_num_threads(1)
        one, _ = _fit_with_pool_share(X, y, None)
        overridden, pooled = _fit_with_pool_share(X, y, 2)  # starts the workers if none are yet
        serial_params, serial = _fit_with_pool_share(X, y, None)
        micrograd_c.set_num_threads(2)
        followed_params, followed = _fit_with_pool_share(X, y, None)
    finally:
        micrograd_c.set_num_threads(old)
    assert overridden == one and serial_params == one and followed_params == one
    # a worker computes about half the chunks when there are 2 threads, nothing when there is 1
    assert serial < 0.05 and pooled > 0.3 and followed > 0.3, (serial, pooled, followed)


# ---- input forms, history, output, callback -------------------------------------------------------------


def small_data(n=60, seed=0):
    X, y = sklearn_datasets.make_moons(n_samples=n, noise=0.15, random_state=seed)
    return X, y * 2 - 1


def fit_small(X, y, epochs=5, **kwargs):
    random.seed(2)
    model = micrograd_c.nn.MLP(2, [8, 8, 1])
    opt = kwargs.pop("optimizer", None) or optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    history = model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=16, seed=3, verbose=False, **kwargs)
    return [p.data for p in model.parameters()], history


def test_numpy_arrays_and_lists_give_identical_results():
    X, y = small_data()
    reference = fit_small(X, y)
    assert fit_small(X.tolist(), y.tolist()) == reference
    assert fit_small([tuple(row) for row in X.tolist()], tuple(y.tolist())) == reference
    assert fit_small(X, y.astype(np.int64)) == reference
    assert fit_small(X, y.astype(np.float32)) == reference
    # other dtypes are converted to float64
    X32 = X.astype(np.float32)
    assert fit_small(X32, y) == fit_small(X32.astype(np.float64).tolist(), y.tolist())
    assert fit_small(np.asfortranarray(X), y.reshape(-1, 1)) == reference  # column-major, y as a column
    assert fit_small(X.tolist(), [[v] for v in y.tolist()]) == reference


def test_history_format():
    X, y = small_data()
    _, history = fit_small(X, y, epochs=4)
    assert isinstance(history, list) and len(history) == 4
    for k, entry in enumerate(history, start=1):
        assert set(entry) == {"epoch", "loss", "accuracy"}
        assert entry["epoch"] == k
        assert isinstance(entry["loss"], float) and math.isfinite(entry["loss"]) and entry["loss"] >= 0
        assert isinstance(entry["accuracy"], float) and 0.0 <= entry["accuracy"] <= 1.0
        assert (entry["accuracy"] * len(y)) == round(entry["accuracy"] * len(y))
    # MSE has no accuracy
    _, history = fit_small(X, y.astype(float), epochs=2, loss="mse")
    assert all(math.isnan(entry["accuracy"]) for entry in history)
    # zero epochs: nothing happens, an empty history
    params, history = fit_small(X, y, epochs=0)
    random.seed(2)
    assert history == [] and params == [p.data for p in micrograd_c.nn.MLP(2, [8, 8, 1]).parameters()]


def test_verbose_progress_goes_to_stderr(capsys):
    """Like the command line's: stdout stays the program's own output."""
    X, y = small_data()
    random.seed(2)
    model = micrograd_c.nn.MLP(2, [8, 1])
    model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=3)  # verbose by default
    out, err = capsys.readouterr()
    assert "epoch" in err and "loss" in err and "accuracy" in err
    assert "3/3" in err
    assert out == ""
    model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=3, verbose=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_callback_sees_each_epoch_and_can_stop_early():
    X, y = small_data()
    calls = []

    def callback(epoch, loss, accuracy):
        calls.append((epoch, loss, accuracy))
        return epoch == 5

    random.seed(2)
    model = micrograd_c.nn.MLP(2, [8, 1])
    opt = optim.SGD(model.parameters(), lr=0.1)
    history = model.fit(X, y, optimizer=opt, epochs=50, batch_size=20, verbose=False, callback=callback)
    assert len(history) == 5 and len(calls) == 5
    assert [(h["epoch"], h["loss"], h["accuracy"]) for h in history] == calls
    assert opt.steps == 5 * 3
    # a falsy return keeps going
    random.seed(2)
    model = micrograd_c.nn.MLP(2, [8, 1])
    history = model.fit(
        X, y, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=6, verbose=False, callback=lambda *args: None
    )
    assert len(history) == 6


def test_stopping_early_equals_asking_for_fewer_epochs():
    X, y = small_data()
    stopped = fit_small(X, y, epochs=40, callback=lambda epoch, *rest: epoch == 3)
    assert stopped == fit_small(X, y, epochs=3)


def test_callback_exception_propagates_and_leaves_model_and_optimizer_consistent():
    """A callback that raises (a KeyboardInterrupt lands in the callback too) stops training with that
    exception. The model and its optimizer must then agree: either both as before the fit, or both after
    the epochs that ran; Adam's step count and moments must never belong to other parameters."""
    X, y = small_data()
    random.seed(2)
    model = micrograd_c.nn.MLP(2, [8, 1])
    opt = optim.Adam(model.parameters(), lr=0.05)
    before = [p.data for p in model.parameters()]

    def boom(epoch, loss, accuracy):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        model.fit(X, y, optimizer=opt, epochs=5, verbose=False, callback=boom)
    after = [p.data for p in model.parameters()]
    untouched = after == before and opt.steps == 0
    advanced = after != before and opt.steps == 1
    assert untouched or advanced, f"parameters changed: {after != before}, optimizer steps: {opt.steps}"


# ---- other losses -----------------------------------------------------------------------------------------


def test_mse_with_multi_output_targets():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(200, 3))
    Y = np.stack([X[:, 0] + 0.5 * X[:, 1], X[:, 1] * X[:, 2]], axis=1)
    random.seed(4)
    model = micrograd_c.nn.MLP(3, [16, 2])
    # the first epoch's loss is the mean over all n * k squared errors of the untrained model
    Value = micrograd_c.Value
    errors = []
    for row, target in zip(X.tolist(), Y.tolist()):
        out = model([Value(v) for v in row])
        errors += [(o.data - t) ** 2 for o, t in zip(out, target)]
    initial = sum(errors) / len(errors)
    history = model.fit(X, Y, loss="mse", optimizer=optim.Adam(model.parameters(), lr=0.01), epochs=150, verbose=False)
    assert abs(history[0]["loss"] - initial) <= 1e-12 * initial
    assert history[-1]["loss"] < 0.1 * history[0]["loss"]
    # targets as lists of rows work the same; a wrong number of targets per row is refused
    random.seed(4)
    again = micrograd_c.nn.MLP(3, [16, 2])
    history2 = again.fit(
        X.tolist(), Y.tolist(), loss="mse", optimizer=optim.Adam(again.parameters(), lr=0.01), epochs=150, verbose=False
    )
    assert [h["loss"] for h in history2] == [h["loss"] for h in history]
    with pytest.raises(ValueError, match="target"):
        again.fit(X, Y[:, :1], loss="mse", optimizer=optim.Adam(again.parameters()), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="target"):
        again.fit(X, Y[:, 0], loss="mse", optimizer=optim.Adam(again.parameters()), epochs=1, verbose=False)


def test_cross_entropy_learns_digits():
    digits = sklearn_datasets.load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test = model_selection.train_test_split(
        X, digits.target, test_size=0.25, random_state=0
    )
    random.seed(0)
    model = micrograd_c.nn.MLP(64, [32, 10])
    history = model.fit(
        X_train,
        y_train,
        loss="cross_entropy",
        optimizer=optim.Adam(model.parameters(), lr=0.01),
        epochs=30,
        batch_size=64,
        seed=1,
        verbose=False,
    )
    assert history[-1]["accuracy"] > 0.97
    Value = micrograd_c.Value
    right = 0
    for row, label in zip(X_test.tolist(), y_test.tolist()):
        scores = [v.data for v in model([Value(v) for v in row])]
        right += scores.index(max(scores)) == label
    assert right / len(y_test) >= 0.95, f"held-out accuracy {right / len(y_test):.3f}"


def test_bce_on_moons():
    X, y = sklearn_datasets.make_moons(n_samples=300, noise=0.1, random_state=1)
    random.seed(1)
    model = micrograd_c.nn.MLP(2, [16, 16, 1])
    history = model.fit(X, y, loss="bce", optimizer=optim.Adam(model.parameters(), lr=0.02), epochs=200, verbose=False)
    assert history[-1]["accuracy"] >= 0.97
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]


# ---- bad input: a clear exception, and the model as it was ------------------------------------------------


def bad_fit_cases():
    X, y = small_data(n=20)
    Xl, yl = X.tolist(), y.tolist()
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    return [
        ("X rows != y rows", dict(X=X, y=y[:-1]), ValueError, "rows"),
        ("X rows != y rows, lists", dict(X=Xl, y=yl + [1]), ValueError, "rows"),
        ("wrong feature count", dict(X=np.hstack([X, X]), y=y), ValueError, "features"),
        ("wrong feature count, lists", dict(X=[row + [0.0] for row in Xl], y=yl), ValueError, "features"),
        ("1-D X", dict(X=X[:, 0], y=y), ValueError, "2-D"),
        ("NaN in X", dict(X=X_nan, y=y), ValueError, "finite"),
        ("inf in X", dict(X=X_inf, y=y), ValueError, "finite"),
        ("NaN in X, lists", dict(X=X_nan.tolist(), y=yl), ValueError, "finite"),
        ("NaN in y", dict(X=X, y=np.where(np.arange(20) == 5, np.nan, y)), ValueError, "finite"),
        ("unknown loss", dict(X=X, y=y, loss="hinge"), ValueError, "hinge"),
        ("empty X", dict(X=[], y=[]), ValueError, "empty"),
        ("empty array X", dict(X=np.zeros((0, 2)), y=np.zeros(0)), ValueError, "empty"),
        ("svm labels 0/1", dict(X=X, y=(y > 0).astype(int)), ValueError, "svm"),
        ("bce labels -1/1", dict(X=X, y=y, loss="bce"), ValueError, "bce"),
        (
            "cross_entropy on one output",
            dict(X=X, y=(y > 0).astype(int), loss="cross_entropy"),
            ValueError,
            "cross_entropy",
        ),
        ("non-numeric cell", dict(X=[row[:1] + ["a"] for row in Xl], y=yl), TypeError, "X[0][1]"),
        ("None cell", dict(X=Xl[:5] + [[None, 1.0]] + Xl[6:], y=yl), TypeError, "X[5][0]"),
        ("non-numeric label", dict(X=Xl, y=yl[:-1] + ["yes"]), TypeError, "y["),
        ("string rows", dict(X=["ab"] * 20, y=yl), ValueError, "row"),
        ("ragged rows", dict(X=Xl[:7] + [Xl[7][:1]] + Xl[8:], y=yl), ValueError, "ragged"),
        ("negative epochs", dict(X=X, y=y, epochs=-1), ValueError, "epochs"),
        ("negative l2", dict(X=X, y=y, l2=-1e-4), ValueError, "l2"),
        ("unknown schedule", dict(X=X, y=y, schedule="step"), ValueError, "schedule"),
    ]


def test_bad_input_raises_and_leaves_the_model_alone():
    problems = []
    for name, kwargs, exc_type, match in bad_fit_cases():
        random.seed(6)
        model = micrograd_c.nn.MLP(2, [4, 1])
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        before = [p.data for p in model.parameters()]
        kwargs = dict(kwargs)
        kwargs.setdefault("epochs", 2)
        try:
            model.fit(kwargs.pop("X"), kwargs.pop("y"), optimizer=opt, verbose=False, **kwargs)
            problems.append(f"{name}: no exception")
        except exc_type as exc:
            if match not in str(exc):
                problems.append(f"{name}: {exc_type.__name__}({str(exc)!r}) does not mention {match!r}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: {type(exc).__name__}({exc}) instead of {exc_type.__name__}")
        if [p.data for p in model.parameters()] != before or opt.steps != 0:
            problems.append(f"{name}: the model or optimizer changed")
    assert not problems, "\n".join(problems)


def test_optimizer_made_for_other_parameters_is_refused():
    X, y = small_data(n=20)
    random.seed(6)
    model, other = micrograd_c.nn.MLP(2, [4, 1]), micrograd_c.nn.MLP(2, [4, 1])
    before = [p.data for p in model.parameters()]
    for opt in (
        optim.SGD(other.parameters(), lr=0.1),
        optim.SGD(model.parameters()[:-1], lr=0.1),
        optim.Adam(list(reversed(model.parameters()))),
    ):
        with pytest.raises(ValueError, match="optimizer"):
            model.fit(X, y, optimizer=opt, epochs=1, verbose=False)
    with pytest.raises(TypeError, match="optimizer"):
        model.fit(X, y, optimizer="adam", epochs=1, verbose=False)
    assert [p.data for p in model.parameters()] == before


def test_a_bad_lr_end_is_refused():
    """The schedule's end is a learning rate: NaN (or negative, or infinite) must be refused as the
    optimizer refuses it, not turn the model into NaNs."""
    X, y = small_data(n=20)
    problems = []
    for schedule in ("linear", "cosine"):
        for lr_end in (float("nan"), -0.5, float("inf")):
            random.seed(6)
            model = micrograd_c.nn.MLP(2, [4, 1])
            before = [p.data for p in model.parameters()]
            try:
                model.fit(
                    X,
                    y,
                    optimizer=optim.SGD(model.parameters(), lr=0.1),
                    epochs=3,
                    schedule=schedule,
                    lr_end=lr_end,
                    verbose=False,
                )
                after = [p.data for p in model.parameters()]
                state = "NaN/inf" if not all(map(math.isfinite, after)) else "finite"
                problems.append(f"{schedule}, lr_end {lr_end}: accepted, parameters now {state}")
            except ValueError:
                if [p.data for p in model.parameters()] != before:
                    problems.append(f"{schedule}, lr_end {lr_end}: refused but the model changed")
    assert not problems, "\n".join(problems)


def test_fit_leaves_the_values_usable():
    """fit writes the trained numbers back into the model's own Values: the graph API sees them."""
    X, y = small_data(n=40)
    random.seed(8)
    model = micrograd_c.nn.MLP(2, [8, 1])
    params = model.parameters()
    model.fit(X, y, optimizer=optim.SGD(params, lr=0.3), epochs=30, verbose=False)
    assert all(a is b for a, b in zip(params, model.parameters()))
    scores = [model(list(map(micrograd_c.Value, row))) for row in X.tolist()]
    loss = losses.svm(scores, y.tolist())
    loss.backward()
    assert math.isfinite(loss.data) and any(p.grad != 0 for p in params)
