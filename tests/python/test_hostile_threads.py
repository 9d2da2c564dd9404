"""Hostile use from several Python threads: every case gives correct numbers or a clear RuntimeError,
never a crash, a use-after-free or a silently mixed result.

The contract (docs/tensor.md, "Threads"): forward kernels release the GIL; backward keeps it, so two
threads' backward passes over one shared graph run one after the other (each whole), and a gradient
cannot be freed under a running backward. fit() claims its model and its optimizer: a second fit, or
opt.step() / load_state_dict() / a checkpoint save of that optimizer meanwhile, raises RuntimeError.
"""

import random
import threading
import time

import micrograd_c
import pytest
from _helpers import require
from micrograd_c import MLP, Tensor, Value, _core, optim

np = require("numpy")


def run_threads(*targets):
    """Run each target in its own thread; re-raise the first exception one of them raised."""
    errors = []

    def guard(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported to the test below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guard(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def big_pair(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = Tensor(rng.standard_normal((n, n)), requires_grad=True)
    b = Tensor(rng.standard_normal((n, n)) / n)
    return a, b


# ---- 1. tensors shared between threads ----


def test_grad_cleared_while_another_thread_runs_backward():
    """The case that segfaulted: A.grad = None in one thread during ((A @ B) @ B).sum().backward() in another."""
    a, b = big_pair()
    ((a @ b) @ b).sum().backward()
    single = a.grad.numpy()
    a.grad = None
    done = threading.Event()

    def train():
        try:
            for _ in range(15):
                ((a @ b) @ b).sum().backward()
        finally:
            done.set()

    def clear():
        while not done.is_set():
            a.grad = None

    run_threads(train, clear)
    g = a.grad
    if g is not None:  # whatever survived the last clear: a whole number of passes, never garbage
        passes = round(float(g.numpy()[0, 0] / single[0, 0]))
        assert 1 <= passes <= 15
        np.testing.assert_allclose(g.numpy(), passes * single, rtol=1e-12, atol=1e-12)


def test_concurrent_backward_on_one_graph_accumulates_exactly():
    """Two threads, 50 backward passes each, on one graph: exactly what 100 passes in one thread give."""
    a, b = big_pair(200, seed=1)
    loss = ((a @ b).tanh() @ b).sum()
    for _ in range(100):
        loss.backward()
    sequential = a.grad.numpy()
    a.grad = None

    def fifty():
        for _ in range(50):
            loss.backward()

    run_threads(fifty, fifty)
    np.testing.assert_array_equal(a.grad.numpy(), sequential)


def test_forward_from_threads_shares_inputs_safely():
    a, b = big_pair(300, seed=2)
    expected = (a @ b).numpy()
    results = []

    def work():
        for _ in range(5):
            results.append((a @ b).numpy())

    run_threads(work, work, work)
    assert len(results) == 15
    for r in results:
        np.testing.assert_array_equal(r, expected)


# ---- 2. fit, predict and save keep their parameters alive ----


def moons(n=64, seed=0):
    rng = random.Random(seed)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
    y = [1.0 if x0 * x1 > 0 else -1.0 for x0, x1 in X]
    return X, y


def fresh_model(seed=3):
    random.seed(seed)
    return MLP(2, [8, 1])


def reference_weights(epochs=5):
    model = fresh_model()
    X, y = moons()
    model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=epochs, shuffle=False, verbose=False)
    return [p.data for p in model.parameters()]


def test_private_fit_with_a_generator_of_parameters():
    """_core.fit once dropped its temporary list of a generator's Values before using their nodes."""
    model = fresh_model()
    X, y = moons()
    opt = optim.SGD(model.parameters(), lr=0.1)
    n_inputs, sizes, acts = model._shape()
    _core.fit((p for p in model.parameters()), n_inputs, sizes, acts, X, y, opt._core, "svm", 5, 0, shuffle=False)
    assert [p.data for p in model.parameters()] == reference_weights()


def test_private_fit_whose_callback_empties_the_parameter_list():
    model = fresh_model()
    X, y = moons()
    params = model.parameters()
    opt = optim.SGD(list(params), lr=0.1)
    n_inputs, sizes, acts = model._shape()

    def callback(epoch, loss, accuracy):
        params.clear()
        return False

    _core.fit(params, n_inputs, sizes, acts, X, y, opt._core, "svm", 5, 0, shuffle=False, callback=callback)
    assert [p.data for p in model.parameters()] == reference_weights()


def test_private_predict_and_save_with_generators(tmp_path):
    model = fresh_model()
    n_inputs, sizes, acts = model._shape()
    X, _ = moons(8)
    expected = model.predict(X)
    assert _core.predict((p for p in model.parameters()), n_inputs, sizes, acts, X) == expected
    path = tmp_path / "m.safetensors"
    _core.save_model(str(path), (p for p in model.parameters()), n_inputs, sizes, acts)
    assert MLP.load(path).predict(X) == expected


def test_save_with_metadata_that_grows_while_parameters_are_read(tmp_path):
    """The metadata dict is copied first: a parameter sequence whose iteration adds keys cannot overrun."""
    model = fresh_model()
    n_inputs, sizes, acts = model._shape()
    meta = {"a": "1"}

    def params():
        for i, p in enumerate(model.parameters()):
            meta[f"k{i}"] = "x" * 100
            yield p

    path = tmp_path / "m.safetensors"
    _core.save_model(str(path), params(), n_inputs, sizes, acts, metadata=meta)
    assert micrograd_c.load_checkpoint(path)[0].predict([[0.5, 0.5]]) == model.predict([[0.5, 0.5]])


# ---- 4. a model or an optimizer in use by a fit ----


def test_optimizer_calls_from_fits_callback_are_refused():
    model = fresh_model()
    X, y = moons()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    seen = []

    def callback(epoch, loss, accuracy):
        for call in (
            opt.step,
            lambda: opt.load_state_dict(state),
            lambda: setattr(opt, "lr", 0.5),
            lambda: model.fit(X, y, optimizer=opt, epochs=1, verbose=False),
        ):
            with pytest.raises(RuntimeError, match="fit"):
                call()
            seen.append(call)
        return True

    state = opt.state_dict()
    model.fit(X, y, optimizer=opt, epochs=3, verbose=False, callback=callback)
    assert len(seen) == 4
    opt.step()  # free again once fit returned
    assert opt.lr == 0.1


def test_checkpoint_save_during_fit_is_refused(tmp_path):
    model = fresh_model()
    X, y = moons()
    opt = optim.Adam(model.parameters(), lr=0.01)

    def callback(epoch, loss, accuracy):
        with pytest.raises(RuntimeError, match="in use"):
            model.save(tmp_path / "ckpt.safetensors", optimizer=opt, step=1)
        return True

    model.fit(X, y, optimizer=opt, epochs=2, verbose=False, callback=callback)
    assert not (tmp_path / "ckpt.safetensors").exists()
    model.save(tmp_path / "ckpt.safetensors", optimizer=opt, step=1)


def test_two_threads_fitting_one_model():
    """One of them trains, the other gets a RuntimeError at once (or, if the first had finished, trains
    after it): never both at the same time from the same start."""
    model = fresh_model()
    X, y = moons(512)
    opts = [optim.SGD(model.parameters(), lr=0.01) for _ in range(2)]
    outcomes = []
    start = threading.Barrier(2)

    def fit_with(opt):
        def run():
            start.wait()
            try:
                model.fit(X, y, optimizer=opt, epochs=200, verbose=False)
                outcomes.append("trained")
            except RuntimeError as exc:
                assert "already" in str(exc)
                outcomes.append("refused")

        return run

    run_threads(fit_with(opts[0]), fit_with(opts[1]))
    assert sorted(outcomes) in (["refused", "trained"], ["trained", "trained"])
    total_steps = sum(o.steps for o in opts)
    assert total_steps == 200 * outcomes.count("trained")


def test_one_optimizer_shared_by_two_threads_fitting():
    model = fresh_model()
    X, y = moons(512)
    opt = optim.SGD(model.parameters(), lr=0.01)
    outcomes = []
    start = threading.Barrier(2)

    def run():
        start.wait()
        try:
            model.fit(X, y, optimizer=opt, epochs=200, verbose=False)
            outcomes.append("trained")
        except RuntimeError:
            outcomes.append("refused")

    run_threads(run, run)
    assert opt.steps == 200 * outcomes.count("trained")


# ---- messages ----


def test_value_setstate_with_a_wrong_state_is_a_type_error():
    with pytest.raises(TypeError, match="__setstate__"):
        Value(1.0).__setstate__("x")


@pytest.mark.parametrize("dims", [(2**31, 0), (0, -(2**31)), (2**70, 0)])
def test_transpose_with_huge_dims_names_them(dims):
    with pytest.raises(IndexError, match=str(max(dims, key=abs))):
        Tensor([[1.0, 2.0]]).transpose(*dims)


@pytest.mark.parametrize("dim", [-1000, 2, -3, 2**40, -(2**31)])
def test_reductions_with_a_dim_out_of_range_name_it(dim):
    t = Tensor([[1.0, 2.0]])
    for method in (t.sum, t.mean, t.max, t.argmax, t.log_softmax):
        with pytest.raises(IndexError, match=str(dim)):
            method(dim)


def test_slice_positions_clamp_like_python():
    t = Tensor([[1.0, 2.0, 3.0]])
    assert t.slice(1, 0, 2**70).tolist() == [[1.0, 2.0, 3.0]]
    assert t.slice(1, -(2**70), 1).tolist() == [[1.0]]


# ---- stress: everything at once, bounded ----


def test_stress_four_threads_mixed_work():
    """Tensor backward, fit and Value graphs from 4 threads at once for about a second each; every number
    checked and every node reclaimed."""
    a, b = big_pair(128, seed=4)
    ((a @ b).relu().sum()).backward()
    tensor_grad = a.grad.numpy()
    weights = reference_weights(epochs=3)
    deadline = time.monotonic() + 1.0
    counts = {"tensor": 0, "fit": 0, "value": 0}

    def tensor_work():
        while time.monotonic() < deadline:
            x = Tensor(a.numpy(), requires_grad=True)
            ((x @ b).relu().sum()).backward()
            np.testing.assert_array_equal(x.grad.numpy(), tensor_grad)
            counts["tensor"] += 1

    def fit_work():
        while time.monotonic() < deadline:
            model = fresh_model()
            X, y = moons()
            model.fit(
                X, y, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=3, shuffle=False, verbose=False, threads=2
            )
            assert [p.data for p in model.parameters()] == weights
            counts["fit"] += 1

    def value_work():
        while time.monotonic() < deadline:
            x = Value(0.5)
            y = x
            for _ in range(2000):
                y = (y * 1.0001 + 0.0).tanh()
            y.backward()
            assert 0.0 < x.grad < 2.0
            counts["value"] += 1

    before_values, before_tensors = micrograd_c.live_values(), micrograd_c.live_tensors()
    run_threads(tensor_work, fit_work, value_work, value_work)
    assert min(counts.values()) >= 1
    assert micrograd_c.live_values() == before_values
    assert micrograd_c.live_tensors() == before_tensors
