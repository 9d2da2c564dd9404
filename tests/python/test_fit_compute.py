"""How fit and predict compute: precision ("exact", micrograd's sums bit for bit; "fast", fused multiply-adds)
and dtype ("float64"; "float32", checked against PyTorch in float32), their thread invariance, and
Tensor.matmul's precision against Python's own arithmetic."""

import random

import micrograd_c
import pytest
from _helpers import close, require
from micrograd_c import MLP, Tensor, optim

np = require("numpy")
torch = require("torch")


def classes(n=300, features=12, k=4, seed=0):
    """n rows of `features` numbers in [0, 1) and labels 0..k-1 from a fixed linear teacher."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, features))
    y = np.argmax(X @ rng.standard_normal((features, k)), axis=1).astype(np.float64)
    return X, y


def small_model(seed=3, sizes=(12, [16, 4])):
    random.seed(seed)
    model = MLP(*sizes)
    for p in model.parameters():  # a sane scale for 12 inputs
        p.data *= 0.3
    return model


def trained(precision="exact", dtype="float64", threads=1, epochs=3, batch_size=50, shuffle=True):
    X, y = classes()
    model = small_model()
    opt = optim.SGD(model.parameters(), lr=0.2)
    history = model.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=4,
        threads=threads,
        verbose=False,
        precision=precision,
        dtype=dtype,
    )
    return model, history


def params(model):
    return [p.data for p in model.parameters()]


def test_fast_follows_exact_to_rounding():
    exact, exact_history = trained("exact")
    fast, fast_history = trained("fast")
    assert all(close(a, b, rel=1e-9, abs_=1e-12) for a, b in zip(params(fast), params(exact)))
    assert all(close(a["loss"], b["loss"], rel=1e-9) for a, b in zip(fast_history, exact_history))


def test_predict_exact_is_the_models_own_numbers():
    model = small_model()
    X, _ = classes(n=40)
    rows = model.predict(X, precision="exact")
    for row, x in zip(rows, X):
        assert row == [v.data for v in model(list(map(float, x)))]
    fast = model.predict(X, precision="fast")
    assert all(close(a, b, rel=1e-12) for r, s in zip(fast, rows) for a, b in zip(r, s))


@pytest.mark.parametrize("precision", ["exact", "fast"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_any_thread_count_gives_the_same_bits(precision, dtype):
    # a model and batch large enough for fit to use its threads
    X, y = classes(n=600, features=40, k=5)
    results = []
    for threads in (1, 2):
        random.seed(9)
        model = MLP(40, [64, 64, 5])
        for p in model.parameters():
            p.data *= 0.2
        opt = optim.Adam(model.parameters(), lr=0.01)
        model.fit(
            X,
            y,
            loss="cross_entropy",
            optimizer=opt,
            epochs=2,
            batch_size=300,
            threads=threads,
            verbose=False,
            precision=precision,
            dtype=dtype,
        )
        results.append(params(model))
    assert results[0] == results[1]


def torch_copy(model, dtype):
    """The model as torch Linear layers of `dtype`, with the same weights (micrograd's order: per neuron, its
    weights, then its bias)."""
    layers = []
    for layer in model.layers:
        linear = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons), dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.float64))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64))
        layers += [linear, torch.nn.ReLU()] if layer.neurons[0].nonlin else [linear]
    return torch.nn.Sequential(*layers)


def test_float32_trains_as_pytorch_float32():
    X, y = classes()
    model = small_model()
    net = torch_copy(model, torch.float32)
    opt = optim.SGD(model.parameters(), lr=0.2)
    history = model.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=opt,
        epochs=3,
        batch_size=50,
        shuffle=False,
        verbose=False,
        dtype="float32",
    )
    # PyTorch in float32: the same batches in the same order, plain SGD
    torch_opt = torch.optim.SGD(net.parameters(), lr=0.2)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
    for epoch in range(3):
        total = 0.0
        for start in range(0, len(X), 50):
            torch_opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(Xt[start : start + 50]), yt[start : start + 50])
            loss.backward()
            torch_opt.step()
            total += loss.item() * 50
        assert close(history[epoch]["loss"], total / len(X), rel=1e-5), epoch
    ours = torch.tensor(params(model), dtype=torch.float64)
    theirs = torch.cat(
        [torch.cat([lin.weight, lin.bias[:, None]], 1).flatten() for lin in net if isinstance(lin, torch.nn.Linear)]
    ).double()
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5), (ours - theirs).abs().max()
    # what was written back is float32's numbers
    assert all(float(np.float32(p)) == p for p in params(model))


def test_predict_float32_as_pytorch_float32():
    model = small_model()
    X, _ = classes(n=500)
    ours = np.array(model.predict(X, dtype="float32"))
    theirs = torch_copy(model, torch.float32)(torch.tensor(X, dtype=torch.float32)).detach().double().numpy()
    assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    exact = np.array(model.predict(X))
    assert np.allclose(ours, exact, rtol=1e-5, atol=1e-6) and not np.array_equal(ours, exact)


def test_float32_without_a_step_leaves_the_parameters():
    X, y = classes(n=30)
    model = small_model()
    before = params(model)
    model.fit(
        X,
        y,
        loss="cross_entropy",
        optimizer=optim.SGD(model.parameters(), lr=0.1),
        epochs=0,
        verbose=False,
        dtype="float32",
    )
    assert params(model) == before


@pytest.mark.parametrize("call", ["fit", "predict"])
def test_bad_names_are_refused(call):
    X, y = classes(n=10)
    model = small_model()
    before = params(model)

    def run(**kwargs):
        if call == "fit":
            model.fit(X, y, loss="cross_entropy", epochs=1, verbose=False, **kwargs)
        else:
            model.predict(X, **kwargs)

    with pytest.raises(ValueError, match="unknown precision 'fused': expected exact or fast"):
        run(precision="fused")
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        run(dtype="float16")
    with pytest.raises(TypeError):
        run(precision=1)
    assert params(model) == before


def test_matmul_exact_is_pythons_own_arithmetic():
    rng = random.Random(5)
    a = [[rng.uniform(-1, 1) for _ in range(37)] for _ in range(9)]
    b = [[rng.uniform(-1, 1) for _ in range(11)] for _ in range(37)]
    got = Tensor(a).matmul(Tensor(b), precision="exact").tolist()
    for i in range(9):
        for j in range(11):
            s = 0.0
            for p in range(37):
                s += a[i][p] * b[p][j]  # each product rounded, then added in order: Python's floats
            assert got[i][j] == s
    fast = (Tensor(a) @ Tensor(b)).tolist()
    assert all(close(x, y, rel=1e-13, abs_=1e-14) for r, q in zip(fast, got) for x, y in zip(r, q))
    with pytest.raises(ValueError, match="expected exact or fast"):
        Tensor(a).matmul(Tensor(b), precision="highest")


def test_matmul_exact_gradients():
    a = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = Tensor([[0.5, -1.0], [0.25, 2.0], [-0.125, 1.5]])
    a.matmul(b, precision="exact").sum().backward()
    assert a.grad.tolist() == [[-0.5, 2.25, 1.375]] * 2
    assert b.grad.tolist() == [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]]
    assert micrograd_c.Tensor is Tensor
