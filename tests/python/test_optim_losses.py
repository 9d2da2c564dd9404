"""micrograd_c.optim against torch.optim, and micrograd_c.losses against torch.nn.functional, in float64.

Optimizers: the same gradients fed to both for several steps; parameters must agree within
1e-12 relative (+1e-15 absolute). Losses: value and leaf gradients within 1e-12 + 1e-9 * |ref|,
extreme logits included.

Each test runs a table of cases and reports every case that fails (the suite's per-test leak check is
not free, so the cases are not separate tests).
"""

import copy
import math
import random

import micrograd_c
import pytest
from _helpers import close, require
from micrograd_c import Value, losses, optim

torch = require("torch")
F = torch.nn.functional
np = require("numpy")


def error_problem(call, exc_type, match):
    """None if call() raises exc_type with `match` in its message, else what happened instead."""
    try:
        call()
    except exc_type as exc:
        return None if match in str(exc) else f"raised {exc_type.__name__}({str(exc)!r}), no {match!r} in it"
    except Exception as exc:  # noqa: BLE001 - reporting the wrong kind is the point
        return f"raised {type(exc).__name__}({exc}) instead of {exc_type.__name__}"
    return f"did not raise {exc_type.__name__}"


# ---- optimizers -----------------------------------------------------------------------------------------

START = [0.5, -1.25, 2.0, 0.0, -0.001, 3.5, 1e-8]
STEPS = 8


def gradients(seed, n=len(START), steps=STEPS):
    rng = random.Random(seed)
    out = []
    for k in range(steps):
        g = [rng.uniform(-2, 2) for _ in range(n)]
        if k % 3 == 1:
            g[3] = 0.0  # a zero gradient now and then
        out.append(g)
    return out


def run_ours(make, grads, start=START):
    params = [Value(x) for x in start]
    opt = make(params)
    for g in grads:
        for p, gi in zip(params, g):
            p.grad = gi
        opt.step()
    return [p.data for p in params]


def run_torch(make, grads, start=START):
    t = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make([t])
    for g in grads:
        t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return t.detach().tolist()


def params_problem(ours, ref):
    """None if every parameter is within 1e-12 relative (+1e-15) of torch's, else the first miss."""
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref)):
        if not abs(a - b) <= 1e-15 + 1e-12 * abs(b):
            return f"parameter {i}: {a!r} vs torch {b!r}"
    return None


OURS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}
TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

OPTIMIZER_CASES = {
    "sgd": [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.1, momentum=0.9, dampening=0.3),
        dict(lr=0.05, momentum=0.8, nesterov=True),
        dict(lr=0.1, weight_decay=0.05),
        dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        dict(lr=0.1, momentum=0.5, dampening=0.5, weight_decay=0.2),
    ],
    "adam": [
        dict(),
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        dict(lr=0.05, betas=(0.3, 0.5)),  # torch's lerp takes its other branch for weights >= 1/2
    ],
    "adamw": [
        dict(),
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.0, 0.9), weight_decay=0.5),
    ],
}


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_optimizer_matches_torch(kind):
    problems = []
    for seed, config in enumerate(OPTIMIZER_CASES[kind]):
        grads = gradients(seed)
        torch_config = dict(config)
        if kind == "sgd":
            torch_config.setdefault("lr", 1e-3)
        ours = run_ours(lambda p: OURS[kind](p, **config), grads)
        ref = run_torch(lambda p: TORCH[kind](p, **torch_config), grads)
        problem = params_problem(ours, ref)
        if problem:
            problems.append(f"{kind}({config}): {problem}")
        if ours == START:
            problems.append(f"{kind}({config}): nothing moved")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_optimizer_on_tensors_and_values_matches_torch(kind):
    """Leaf Tensors (float64 and float32) and Values in one optimizer, against torch.optim."""
    problems = []
    rng = np.random.RandomState(7)
    w0, v0, x0 = rng.randn(3, 4), rng.randn(4).astype(np.float32), rng.randn(5, 3)
    for config in OPTIMIZER_CASES[kind]:
        w = micrograd_c.Tensor(w0.tolist())
        v = micrograd_c.Tensor(v0.tolist(), dtype="float32")
        b = Value(0.5)
        for t in (w, v):
            t.requires_grad = True
        wt = torch.tensor(w0, requires_grad=True)
        vt = torch.tensor(v0, requires_grad=True)
        bt = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        torch_config = dict(config)
        if kind == "sgd":
            torch_config.setdefault("lr", 1e-3)
        ours = OURS[kind]([w, v, b], **config)
        ref = TORCH[kind]([wt, vt, bt], **torch_config)
        x, xt = micrograd_c.Tensor(x0.tolist()), torch.tensor(x0)
        for _ in range(4):
            ours.zero_grad()
            ref.zero_grad()
            # separate terms, so that float32 rounding in v cannot reach w's gradient
            ((x @ w).relu().sum() + (v * v).sum()).backward()
            b.grad = 2 * b.data
            ((xt @ wt).relu().sum() + (vt * vt).sum() + bt * bt).backward()
            ours.step()
            ref.step()
        got_w, got_v = np.array(w.tolist()), np.array(v.tolist(), dtype=np.float32)
        if not np.allclose(got_w, wt.detach().numpy(), rtol=1e-12, atol=1e-15):
            problems.append(f"{kind}({config}) float64 tensor: {got_w} vs {wt}")
        # float32 storage: ours steps in float64 and rounds once, torch in float32: a few float32 ulps
        if not np.allclose(got_v, vt.detach().numpy(), rtol=1e-5, atol=1e-6):
            problems.append(f"{kind}({config}) float32 tensor: {got_v} vs {vt}")
        if not close(b.data, bt.item(), rel=1e-12, abs_=1e-15):
            problems.append(f"{kind}({config}) value: {b.data} vs {bt.item()}")
    assert not problems, "\n".join(problems)


def test_optimizer_refuses_non_leaf_tensors():
    w = micrograd_c.Tensor([[1.0, 2.0]])
    w.requires_grad = True
    with pytest.raises(ValueError, match="leaf"):
        optim.SGD([w * 2.0], lr=0.1).step()
    with pytest.raises(TypeError, match="not a Value or a Tensor"):
        optim.SGD([w, "x"], lr=0.1)


def test_optimizer_defaults_are_torchs():
    grads = gradients(seed=4)
    assert params_problem(run_ours(optim.Adam, grads), run_torch(torch.optim.Adam, grads)) is None
    assert params_problem(run_ours(optim.AdamW, grads), run_torch(torch.optim.AdamW, grads)) is None
    assert params_problem(run_ours(optim.SGD, grads), run_torch(lambda p: torch.optim.SGD(p, lr=1e-3), grads)) is None
    p = [Value(1.0)]
    assert optim.SGD(p).lr == 1e-3 and optim.Adam(p).lr == 1e-3 and optim.AdamW(p).lr == 1e-3


def test_changing_lr_between_steps_matches_torch():
    grads = gradients(seed=9)
    params = [Value(x) for x in START]
    ours = optim.Adam(params, lr=0.1)
    t = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    ref = torch.optim.Adam([t], lr=0.1)
    for k, g in enumerate(grads):
        lr = 0.1 / (k + 1)
        ours.lr = lr
        for group in ref.param_groups:
            group["lr"] = lr
        for p, gi in zip(params, g):
            p.grad = gi
        ours.step()
        t.grad = torch.tensor(g, dtype=torch.float64)
        ref.step()
    assert params_problem([p.data for p in params], t.detach().tolist()) is None


def test_step_on_a_model_after_backward():
    """The usual loop: zero_grad, backward, step; the optimizer reads the grads backward left."""
    random.seed(3)
    model = micrograd_c.MLP(2, [4, 1])
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = [p.data for p in model.parameters()]
    for _ in range(3):
        loss = losses.mse([model([Value(0.5), Value(-1.0)])], [2.0])
        opt.zero_grad()
        assert all(p.grad == 0.0 for p in model.parameters())
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        opt.step()
    assert any(g != 0.0 for g in grads)
    assert [p.data for p in model.parameters()] != before
    assert opt.steps == 3


def test_lr_property():
    opt = optim.SGD([Value(1.0), Value(2.0)], lr=0.25)
    assert opt.lr == 0.25
    opt.lr = 0.5
    assert opt.lr == 0.5
    opt.lr = 1  # an int is a number
    assert opt.lr == 1.0 and isinstance(opt.lr, float)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr"):
            opt.lr = bad
    with pytest.raises(TypeError, match="lr"):
        opt.lr = "fast"
    assert opt.lr == 1.0  # failed sets left it alone
    # the learning rate in effect is the one set
    p = [Value(1.0)]
    opt = optim.SGD(p, lr=0.1)
    opt.lr = 0.5
    p[0].grad = 2.0
    opt.step()
    assert p[0].data == 1.0 - 0.5 * 2.0
    assert opt.state_dict()["config"]["lr"] == 0.5


RESUME_CASES = [
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("adam", dict(lr=0.02, weight_decay=0.1)),
    ("adamw", dict(lr=0.02, betas=(0.8, 0.9))),
]


def test_state_dict_round_trip_resumes_identically():
    grads = gradients(seed=11, steps=10)
    for kind, config in RESUME_CASES:
        # ten steps straight
        straight = [Value(x) for x in START]
        opt = OURS[kind](straight, **config)
        for g in grads:
            for p, gi in zip(straight, g):
                p.grad = gi
            opt.step()

        # five steps, a checkpoint (a deep copy, as a file would hold), five more on fresh objects
        first = [Value(x) for x in START]
        opt = OURS[kind](first, **config)
        for g in grads[:5]:
            for p, gi in zip(first, g):
                p.grad = gi
            opt.step()
        state = copy.deepcopy(opt.state_dict())
        saved = [p.data for p in first]
        assert state["kind"] == kind and state["steps"] == 5
        assert state["config"]["lr"] == config["lr"]
        assert all(isinstance(b, float) for b in state["buffers"])

        resumed = [Value(x) for x in saved]
        opt2 = OURS[kind](resumed, **dict(config, lr=123.0))
        opt2.load_state_dict(state)
        assert opt2.lr == config["lr"] and opt2.steps == 5
        for g in grads[5:]:
            for p, gi in zip(resumed, g):
                p.grad = gi
            opt2.step()
        assert [p.data for p in resumed] == [p.data for p in straight], f"{kind}({config})"
        assert opt2.steps == 10


def test_state_dict_is_a_snapshot_and_wrong_states_are_refused():
    params = [Value(1.0), Value(2.0)]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = 1.0
    opt.step()
    state = opt.state_dict()
    buffers = list(state["buffers"])
    opt.step()
    assert state["buffers"] == buffers and state["steps"] == 1
    assert opt.state_dict()["steps"] == 2

    adam = optim.Adam(params)
    with pytest.raises(ValueError, match="sgd"):
        adam.load_state_dict(opt.state_dict())
    bigger = optim.SGD([Value(0.0) for _ in range(3)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="state"):
        opt.load_state_dict(bigger.state_dict())
    assert opt.steps == 2 and adam.steps == 0


BAD_CONFIGS = [
    (lambda p: optim.SGD(p, lr=-0.1), "lr"),
    (lambda p: optim.SGD(p, lr=float("nan")), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.9), "momentum"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "betas"),
    (lambda p: optim.Adam(p, betas=(-0.1, 0.999)), "betas"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.5)), "betas"),
    (lambda p: optim.Adam(p, eps=-1e-8), "eps"),
    (lambda p: optim.Adam(p, lr=float("inf")), "lr"),
    (lambda p: optim.AdamW(p, weight_decay=-0.01), "weight_decay"),
    (lambda p: optim.AdamW(p, betas=(0.9, float("nan"))), "betas"),
    (lambda p: optim.SGD([], lr=0.1), "empty"),
]


def test_bad_config_raises_value_error():
    problems = []
    for i, (make, match) in enumerate(BAD_CONFIGS):
        problem = error_problem(lambda: make([Value(1.0), Value(2.0)]), ValueError, match)
        if problem:
            problems.append(f"case {i} ({match}): {problem}")
    assert not problems, "\n".join(problems)


def test_non_value_params_raise_type_error():
    for params in ([Value(1.0), 2.0], [1.0, 2.0], [Value(1.0), "x"], [Value(1.0), None]):
        with pytest.raises(TypeError, match="Value"):
            optim.SGD(params, lr=0.1)
        # and at step time, if the list changed after the optimizer was made
        opt = optim.SGD([Value(1.0), Value(2.0)], lr=0.1)
        opt.params[1:] = params[1:]
        with pytest.raises(TypeError, match="Value"):
            opt.step()
        assert opt.steps == 0
        assert opt.params[0].data == 1.0


# ---- losses -----------------------------------------------------------------------------------------------


def tol_close(got, ref):
    return close(got, ref, rel=1e-9, abs_=1e-12)


def torch_problem(our_loss, leaves, torch_loss, t):
    """None if our_loss (a Value over `leaves`) and torch_loss (over tensor t) agree in value and
    gradients, with nothing NaN or infinite; else what differs."""
    torch_loss.backward()
    if not math.isfinite(our_loss.data) or not tol_close(our_loss.data, torch_loss.item()):
        return f"loss {our_loss.data!r} vs torch {torch_loss.item()!r}"
    our_loss.backward()
    for i, (a, b) in enumerate(zip([v.grad for v in leaves], t.grad.reshape(-1).tolist())):
        if not math.isfinite(a) or not tol_close(a, b):
            return f"grad {i} (at {leaves[i].data!r}): {a!r} vs torch {b!r}"
    return None


def tensor(values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def labels_tensor(labels):
    return torch.tensor(labels, dtype=torch.float64)


def test_svm_matches_torch():
    cases = [
        ([0.5, -2.0, 3.0, 0.0, 1.0, 2.0], [1, 1, -1, -1, 1, 1]),  # margin 1 - y*s = 0 at s = 1, y = 1
        ([0.1], [-1]),
        ([10.0, -10.0, 0.999, -1.001], [1, -1, 1, -1]),
        ([800.0, -800.0, 800.0, -800.0], [1, 1, -1, -1]),
    ]
    problems = []
    for scores, labels in cases:
        leaves = [Value(s) for s in scores]
        t = tensor(scores)
        problem = torch_problem(losses.svm(leaves, labels), leaves, torch.relu(1 - labels_tensor(labels) * t).mean(), t)
        if problem:
            problems.append(f"svm({scores}, {labels}): {problem}")
    assert not problems, "\n".join(problems)


def test_mse_matches_torch():
    problems = []
    for seed in range(6):
        rng = random.Random(seed)
        n = rng.randint(1, 30)
        scores = [rng.uniform(-5, 5) for _ in range(n)]
        targets = [rng.uniform(-5, 5) for _ in range(n)]
        leaves = [Value(s) for s in scores]
        t = tensor(scores)
        problem = torch_problem(losses.mse(leaves, targets), leaves, F.mse_loss(t, labels_tensor(targets)), t)
        if problem:
            problems.append(f"seed {seed}: {problem}")
    assert not problems, "\n".join(problems)


def test_bce_matches_torch_including_extreme_logits():
    cases = [
        ([0.3, -1.2, 2.5, -0.7], [1, 0, 0, 1]),
        ([50.0, -50.0, 50.0, -50.0], [1, 1, 0, 0]),
        ([800.0, -800.0, 800.0, -800.0], [1, 1, 0, 0]),
        ([36.9, -36.9, 709.0, -745.0], [0, 1, 1, 0]),
        ([1e-10, -1e-10, 3.0], [1, 0, 1.0]),
    ]
    problems = []
    for logits, labels in cases:
        leaves = [Value(x) for x in logits]
        t = tensor(logits)
        ref = F.binary_cross_entropy_with_logits(t, labels_tensor(labels))
        problem = torch_problem(losses.bce(leaves, labels), leaves, ref, t)
        if problem:
            problems.append(f"bce({logits}, {labels}): {problem}")
    assert not problems, "\n".join(problems)


def test_bce_gradient_at_a_zero_logit():
    """d/dx softplus(x) at x = 0 is sigmoid(0) = 0.5: a zero logit (a zero-initialised output layer, or
    all-zero inputs) is an ordinary point of a smooth loss, not a kink."""
    problems = []
    for label in (0, 1):
        leaves = [Value(0.0), Value(1.0)]
        t = tensor([0.0, 1.0])
        ref = F.binary_cross_entropy_with_logits(t, labels_tensor([label, 1]))
        problem = torch_problem(losses.bce(leaves, [label, 1]), leaves, ref, t)
        if problem:
            problems.append(f"label {label}: {problem}")
    assert not problems, "\n".join(problems)


def test_cross_entropy_matches_torch_including_extreme_logits():
    cases = [
        ([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -1.0, 5.0]], [2, 0, 1]),
        ([[50.0, -50.0], [-50.0, 50.0], [50.0, 50.0]], [0, 0, 1]),
        ([[800.0, -800.0, 0.0], [-800.0, -800.0, -800.0], [800.0, 800.0, -800.0]], [1, 2, 0]),
        ([[0.25, -0.5, 1.5, 2.0, -3.0]], [3]),
    ]
    for seed in range(4):
        rng = random.Random(seed)
        n, k = rng.randint(1, 8), rng.randint(2, 6)
        logits = [[rng.uniform(-10, 10) for _ in range(k)] for _ in range(n)]
        cases.append((logits, [rng.randrange(k) for _ in range(n)]))
    problems = []
    for logits, labels in cases:
        rows = [[Value(x) for x in row] for row in logits]
        t = tensor(logits)
        ref = F.cross_entropy(t, torch.tensor(labels))
        problem = torch_problem(losses.cross_entropy(rows, labels), [v for row in rows for v in row], ref, t)
        if problem:
            problems.append(f"cross_entropy({logits}, {labels}): {problem}")
    assert not problems, "\n".join(problems)


def test_cross_entropy_takes_numpy_labels():
    """Class labels usually come as a NumPy integer array (scikit-learn's y, as MLP.fit takes them)."""
    rows = [[Value(1.0), Value(2.0)], [Value(0.5), Value(-0.5)]]
    labels = np.array([1, 0])
    t = tensor([[1.0, 2.0], [0.5, -0.5]])
    problem = torch_problem(
        losses.cross_entropy(rows, labels),
        [v for row in rows for v in row],
        F.cross_entropy(t, torch.tensor(labels)),
        t,
    )
    assert problem is None, problem


def test_l2_matches_torch():
    values = [0.5, -1.5, 2.0, 0.0, -3.25]
    for alpha in (0.0, 1e-4, 0.5):
        leaves = [Value(x) for x in values]
        t = tensor(values)
        problem = torch_problem(losses.l2(leaves, alpha), leaves, alpha * (t**2).sum(), t)
        assert problem is None, f"alpha {alpha}: {problem}"


def test_losses_compose_like_the_demo():
    """The demo's loss from the library's pieces, svm + l2: gradients as torch computes them."""
    scores = [Value(x) for x in [0.3, -0.8, 1.7]]
    params = [Value(x) for x in [0.1, -0.2]]
    total = losses.svm(scores, [1, -1, -1]) + losses.l2(params, 1e-4)
    t_s, t_p = tensor([0.3, -0.8, 1.7]), tensor([0.1, -0.2])
    ref = torch.relu(1 - labels_tensor([1, -1, -1]) * t_s).mean() + 1e-4 * (t_p**2).sum()
    ref.backward()
    total.backward()
    assert tol_close(total.data, ref.item())
    for v, g in zip(scores + params, t_s.grad.tolist() + t_p.grad.tolist()):
        assert tol_close(v.grad, g)


BAD_LOSS_INPUTS = [
    (lambda: losses.svm([Value(1.0), Value(2.0)], [1]), "2 scores but 1 targets"),
    (lambda: losses.mse([Value(1.0)], [1.0, 2.0]), "1 scores but 2 targets"),
    (lambda: losses.bce([Value(1.0)], []), "targets"),
    (lambda: losses.cross_entropy([[Value(1.0), Value(2.0)]], [0, 1]), "targets"),
    (lambda: losses.svm([], []), "at least one"),
    (lambda: losses.mse([], []), "at least one"),
    (lambda: losses.bce([], []), "at least one"),
    (lambda: losses.cross_entropy([], []), "at least one"),
    (lambda: losses.bce([Value(1.0)], [2]), "0 or 1"),
    (lambda: losses.bce([Value(1.0)], [-1]), "0 or 1"),
    (lambda: losses.bce([Value(1.0)], [0.5]), "0 or 1"),
    (lambda: losses.cross_entropy([[Value(1.0), Value(2.0)]], [2]), "label"),
    (lambda: losses.cross_entropy([[Value(1.0), Value(2.0)]], [-1]), "label"),
    (lambda: losses.cross_entropy([[Value(1.0), Value(2.0)]], [0.5]), "label"),
    (lambda: losses.cross_entropy([[]], [0]), "label"),
    (lambda: losses.l2([Value(1.0)], -1e-4), "alpha"),
    (lambda: losses.l2([Value(1.0)], float("nan")), "alpha"),
]


def test_bad_loss_inputs_raise_value_error():
    problems = []
    for i, (call, match) in enumerate(BAD_LOSS_INPUTS):
        problem = error_problem(call, ValueError, match)
        if problem:
            problems.append(f"case {i} ({match}): {problem}")
    assert not problems, "\n".join(problems)


def test_svm_refuses_labels_other_than_plus_minus_one():
    """MLP.fit(loss='svm') refuses such labels; the Value-graph loss must not quietly train on them."""
    problems = []
    for label in (0, 2, 0.5, -3):
        problem = error_problem(lambda: losses.svm([Value(0.5), Value(-0.5)], [1, label]), ValueError, "-1")
        if problem:
            problems.append(f"label {label!r}: {problem}")
    assert not problems, "\n".join(problems)
