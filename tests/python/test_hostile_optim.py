"""Hostile optimizer settings, fit arguments, Tensors without gradients, and resuming a run.

- Every optimizer hyperparameter is checked in C at every way in: the constructors, ``opt.lr = ...``,
  ``load_state_dict`` and a checkpoint file: NaN, infinities and out-of-range values are a ValueError
  naming the field and its value, and nothing changes.
- ``fit``: more threads than cores are capped at the core count with a RuntimeWarning; negative or
  non-int counts and ints too big for C are a ValueError naming the argument (never a bare OverflowError).
- A Tensor parameter whose grad is None is skipped by the optimizers, as torch.optim skips it.
- A run split by a checkpoint (shuffle, a schedule, momentum or Adam) ends bit for bit where one fit ends.
"""

import json
import math
import struct
import warnings

import micrograd_c
import pytest
from _helpers import noisy_moons, require, seeded_mlp
from micrograd_c import Value, load_checkpoint, optim

np = require("numpy")

NAN, INF = float("nan"), float("inf")


def bits(model):
    return [struct.pack("<d", p.data) for p in model.parameters()]


make_model = seeded_mlp
moons = noisy_moons


def value_text(value):
    """How C's %g writes a float (as the messages show it)."""
    return "nan" if value != value else "inf" if value == INF else "-inf" if value == -INF else f"{value:g}"


# ---- hyperparameters: every field, every entry point -----------------------------------------------------

# (optimizer class, keyword, C name in the message, bad values)
BAD_FIELDS = [
    (optim.SGD, "lr", "lr", [NAN, INF, -INF, -1e-3]),
    (optim.SGD, "momentum", "momentum", [NAN, INF, -0.1]),
    (optim.SGD, "dampening", "dampening", [NAN, INF, -0.1, 1.5]),
    (optim.SGD, "weight_decay", "weight_decay", [NAN, INF, -1.0]),
    (optim.Adam, "lr", "lr", [NAN, INF, -0.5]),
    (optim.Adam, "eps", "eps", [NAN, INF, -1e-8]),
    (optim.Adam, "weight_decay", "weight_decay", [NAN, INF, -1.0]),
    (optim.Adam, "beta1", "beta1", [NAN, INF, 1.0, -0.1]),
    (optim.Adam, "beta2", "beta2", [NAN, INF, 1.0, -0.1]),
    (optim.AdamW, "eps", "eps", [NAN, INF]),
    (optim.AdamW, "weight_decay", "weight_decay", [NAN, INF, -1e-2]),
    (optim.AdamW, "beta2", "beta2", [NAN, 1.5]),
]

GOOD = {optim.SGD: dict(lr=0.1, momentum=0.5), optim.Adam: dict(lr=0.01), optim.AdamW: dict(lr=0.01)}


def constructor_kwargs(cls, key, value):
    kwargs = dict(GOOD[cls])
    if key in ("beta1", "beta2"):
        betas = [0.9, 0.999]
        betas[key == "beta2"] = value
        kwargs["betas"] = tuple(betas)
    else:
        kwargs[key] = value
    return kwargs


def expect_refusal(problems, where, call, name, value):
    try:
        call()
    except ValueError as exc:
        if name not in str(exc) or value_text(value) not in str(exc):
            problems.append(f"{where} {name}={value}: message {str(exc)!r} does not name the field and value")
    except Exception as exc:  # noqa: BLE001 - reporting the wrong kind is the point
        problems.append(f"{where} {name}={value}: {type(exc).__name__}({exc}) instead of ValueError")
    else:
        problems.append(f"{where} {name}={value}: accepted")


def test_every_field_is_refused_by_every_entry_point():
    problems = []
    for cls, key, name, values in BAD_FIELDS:
        params = [Value(1.0), Value(-2.0)]
        opt = cls(params, **GOOD[cls])
        good_state = opt.state_dict()
        for value in values:
            expect_refusal(
                problems, f"{cls.__name__}()", lambda: cls(params, **constructor_kwargs(cls, key, value)), name, value
            )
            if key == "lr":

                def set_lr():
                    opt.lr = value

                expect_refusal(problems, f"{cls.__name__}.lr =", set_lr, name, value)
            state = opt.state_dict()
            state["config"][key] = value
            expect_refusal(problems, f"{cls.__name__}.load_state_dict", lambda: opt.load_state_dict(state), name, value)
            if opt.state_dict() != good_state:
                problems.append(f"{cls.__name__} {name}={value}: a refusal changed the optimizer")
    assert not problems, "\n".join(problems)


def test_the_issues_cases():
    params = [Value(1.0)]
    with pytest.raises(ValueError, match="dampening must be a finite number in \\[0, 1\\], got nan"):
        optim.SGD(params, lr=0.1, momentum=0.9, dampening=NAN)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0, got inf"):
        optim.Adam(params, eps=INF)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    # the edges torch.optim allows stay allowed
    optim.SGD(params, lr=0.0, momentum=1.0, dampening=1.0)
    optim.Adam(params, lr=0.0, betas=(0.0, 0.0), eps=0.0)


def test_load_state_dict_refuses_bad_buffers_and_changes_nothing():
    params = [Value(1.0), Value(2.0)]
    opt = optim.Adam(params, lr=0.01)
    for p in params:
        p.grad = 0.5
    opt.step()
    good = opt.state_dict()
    cases = [
        ({"buffers": [NAN, 0.0, 0.0, 0.0]}, "state[0]"),
        ({"buffers": [0.0, INF, 0.0, 0.0]}, "state[1]"),
        ({"buffers": [0.0, 0.0, 0.0, -1.0]}, "state[3]"),  # a second moment below 0
        ({"buffers": [0.0, 0.0]}, "numbers"),
        ({"config": dict(good["config"], lr=0.5, eps=NAN)}, "eps"),
        ({"config": dict(good["config"], bogus=1.0)}, "config"),
        ({"skipped": [0, 99]}, "skipped[1]"),
        ({"skipped": [0]}, "skipped"),
        ({"skipped": [0, -1]}, "skipped[1]"),
    ]
    problems = []
    for change, match in cases:
        state = dict(good, **change)
        try:
            opt.load_state_dict(state)
        except ValueError as exc:
            if match not in str(exc):
                problems.append(f"{change}: {exc!r} does not say {match!r}")
        else:
            problems.append(f"{change}: accepted")
        if opt.state_dict() != good:
            problems.append(f"{change}: the optimizer changed")
    with pytest.raises(ValueError, match="adam"):
        opt.load_state_dict(dict(good, kind="sgd"))
    for steps in (-1, 2**64, 1.5, None):
        with pytest.raises(ValueError, match="steps"):
            opt.load_state_dict(dict(good, steps=steps))
    assert opt.state_dict() == good
    assert not problems, "\n".join(problems)


def test_load_state_dict_restores_the_hyperparameters():
    """As torch's: the saved settings come back, not only lr."""
    a = optim.SGD([Value(1.0)], lr=0.1, momentum=0.9, dampening=0.25, weight_decay=1e-3)
    b = optim.SGD([Value(1.0)], lr=0.5, momentum=0.1)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()
    assert "dampening=0.25" in repr(b)


# ---- checkpoint files edited by hand -----------------------------------------------------------------------


def read_file(path):
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def write_file(path, header, payload):
    text = json.dumps(header, separators=(",", ":")).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + payload)


def saved_checkpoint(tmp_path, opt_kind):
    model = make_model(2, [3, 1], seed=4)
    X, y = moons(16, seed=1)
    opt = (
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.25)
        if opt_kind == "sgd"
        else optim.Adam(model.parameters(), lr=0.01)
    )
    model.fit(X, y, optimizer=opt, epochs=2, batch_size=8, verbose=False)
    path = tmp_path / f"{opt_kind}.safetensors"
    model.save(path, optimizer=opt, step=2)
    return path


@pytest.mark.parametrize(
    "kind,key,text,match",
    [
        ("sgd", "optimizer.dampening", "nan", "dampening"),
        ("sgd", "optimizer.dampening", "2", "dampening"),
        ("sgd", "optimizer.momentum", "-inf", "momentum"),
        ("sgd", "optimizer.lr", "inf", "lr"),
        ("sgd", "optimizer.lr", "-0.5", "lr"),
        ("sgd", "optimizer.nesterov", "2", "nesterov"),
        ("sgd", "optimizer.beta1", "nan", "beta1"),  # unused by SGD, but stored: finite
        ("adam", "optimizer.eps", "inf", "eps"),
        ("adam", "optimizer.eps", "-1e-8", "eps"),
        ("adam", "optimizer.beta1", "1", "beta1"),
        ("adam", "optimizer.beta2", "nan", "beta2"),
        ("adam", "optimizer.weight_decay", "-1", "weight_decay"),
        ("adam", "optimizer.dampening", "nan", "dampening"),
    ],
)
def test_a_checkpoint_with_a_bad_setting_is_refused(tmp_path, kind, key, text, match):
    path = saved_checkpoint(tmp_path, kind)
    header, payload = read_file(path)
    assert load_checkpoint(path)[1] is not None  # the file as saved loads
    header["__metadata__"][key] = text
    write_file(path, header, payload)
    with pytest.raises(ValueError, match=f"checkpoint's optimizer: {match}") as caught:
        load_checkpoint(path)
    assert value_text(float(text)) in str(caught.value)


@pytest.mark.parametrize("value,index", [(NAN, 0), (INF, 3), (-1.0, -1)])
def test_a_checkpoint_with_a_bad_buffer_is_refused(tmp_path, value, index):
    path = saved_checkpoint(tmp_path, "adam")
    header, payload = read_file(path)
    begin, end = header["optimizer.state"]["data_offsets"]
    state = list(struct.unpack(f"<{(end - begin) // 8}d", payload[begin:end]))
    state[index] = value  # -1 in the last place: a second moment below 0
    payload = payload[:begin] + struct.pack(f"<{len(state)}d", *state) + payload[end:]
    write_file(path, header, payload)
    with pytest.raises(ValueError, match="checkpoint's optimizer state"):
        load_checkpoint(path)


# ---- fit's integer arguments ---------------------------------------------------------------------------


def small_fit(**kwargs):
    model = make_model(2, [4, 1], seed=3)
    X, y = moons(24, seed=2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = model.fit(X, y, optimizer=opt, verbose=False, **dict(dict(epochs=2, batch_size=8), **kwargs))
    return model, opt, history


@pytest.mark.parametrize("threads", [10**6, 2**40, 10**100])
def test_too_many_threads_are_capped_with_a_warning(threads):
    reference = bits(small_fit(threads=1)[0])
    cores = micrograd_c._core.num_cores()
    with pytest.warns(RuntimeWarning, match=f"threads={threads} is more than the {cores} cores; using {cores}"):
        model, _, _ = small_fit(threads=threads)
    assert bits(model) == reference


def test_threads_up_to_the_core_count_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for threads in (None, 0, 1, micrograd_c._core.num_cores()):
            small_fit(threads=threads)


@pytest.mark.parametrize(
    "name,value",
    [
        ("threads", -1),
        ("threads", -(2**70)),
        ("threads", 1.5),
        ("threads", True),
        ("threads", "4"),
        ("epochs", -1),
        ("epochs", 2**70),
        ("epochs", 10**100),
        ("epochs", 2.0),
        ("batch_size", -1),
        ("batch_size", 2**64),
        ("batch_size", 10**100),
        ("batch_size", 8.0),
        ("total_epochs", 0),
        ("total_epochs", -3),
        ("total_epochs", 2**80),
        ("total_epochs", 1),
        ("seed", -1),
        ("seed", 2**64),
        ("seed", 10**100),
        ("seed", 1.0),
    ],
)
def test_bad_counts_name_the_argument(name, value):
    model = make_model(2, [4, 1], seed=3)
    before = bits(model)
    with pytest.raises(ValueError, match=name):
        small_fit(**{name: value})
    assert bits(model) == before


def test_bad_counts_name_the_argument_in_the_core_call_too():
    """The C binding checks them itself (MLP.fit is one caller of it)."""
    model = make_model(2, [4, 1], seed=3)
    X, y = moons(8)
    opt = optim.SGD(model.parameters(), lr=0.1)
    n_inputs, sizes, activations = model._shape()
    micrograd_c._core.fit(
        model.parameters(), n_inputs, sizes, activations, X, y, opt._core, "svm", 1, threads=2**40
    )  # capped at the cores, as MLP.fit caps it (with its warning)
    for key, value in (("threads", 10**100), ("threads", -1), ("batch_size", 10**100), ("total_epochs", 2**64)):
        with pytest.raises(ValueError, match=key):
            micrograd_c._core.fit(
                model.parameters(), n_inputs, sizes, activations, X, y, opt._core, "svm", 1, **{key: value}
            )
    for epochs in (2**63, -1):
        with pytest.raises(ValueError, match="epochs"):
            micrograd_c._core.fit(model.parameters(), n_inputs, sizes, activations, X, y, opt._core, "svm", epochs)
    # a C-sized int that still makes too many steps
    with pytest.raises(ValueError, match="epochs"):
        micrograd_c._core.fit(
            model.parameters(), n_inputs, sizes, activations, X, y, opt._core, "svm", 2**63 - 1, batch_size=1
        )


@pytest.mark.parametrize("name,value", [("lr_end", NAN), ("lr_end", -1.0), ("lr_end", INF), ("l2", NAN), ("l2", -1.0)])
def test_bad_schedule_and_l2_values_are_refused_with_any_schedule(name, value):
    for schedule in ("constant", "linear", "cosine"):
        with pytest.raises(ValueError, match=name):
            small_fit(schedule=schedule, **{name: value})


# ---- Tensor parameters without a gradient: skipped, as torch does ---------------------------------------

torch = None


def _torch():
    global torch
    if torch is None:
        torch = require("torch")
    return torch


@pytest.mark.parametrize(
    "kind,config",
    [
        ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.05)),
        ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
        ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("adam", dict(lr=0.05, weight_decay=0.01)),
        ("adamw", dict(lr=0.05, weight_decay=0.1)),
    ],
)
def test_a_tensor_without_grad_is_skipped_as_torch_does(kind, config):
    t = _torch()
    ours_cls = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[kind]
    torch_cls = {"sgd": t.optim.SGD, "adam": t.optim.Adam, "adamw": t.optim.AdamW}[kind]
    rng = np.random.RandomState(3)
    w0, b0, x0 = rng.randn(3, 2), rng.randn(2), rng.randn(4, 3)
    w, b = micrograd_c.Tensor(w0.tolist()), micrograd_c.Tensor(b0.tolist())
    w.requires_grad = b.requires_grad = True
    wt, bt = t.tensor(w0, requires_grad=True), t.tensor(b0, requires_grad=True)
    ours, ref = ours_cls([w, b], **config), torch_cls([wt, bt], **config)
    x, xt = micrograd_c.Tensor(x0.tolist()), t.tensor(x0)
    for step in range(7):
        ours.zero_grad()
        ref.zero_grad()
        if step < 3:  # b takes no part yet: its grad stays None in both
            (x @ w).relu().sum().backward()
            (xt @ wt).relu().sum().backward()
            assert b.grad is None and bt.grad is None
        else:
            ((x @ w).relu().sum() + (b * b * (step - 1.5)).sum()).backward()
            ((xt @ wt).relu().sum() + (bt * bt * (step - 1.5)).sum()).backward()
        ours.step()
        ref.step()
        if step < 3:
            assert b.tolist() == b0.tolist(), "a tensor without a gradient moved"
    for got, want in ((w, wt), (b, bt)):
        assert np.allclose(np.array(got.tolist()), want.detach().numpy(), rtol=1e-12, atol=1e-12), (
            f"{kind}({config}): {got.tolist()} vs {want.detach().numpy().tolist()}"
        )
    # the per-parameter step counts survive a state_dict round trip
    state = ours.state_dict()
    assert state["skipped"][-1] == 3 and state["skipped"][0] == 0
    w2, b2 = micrograd_c.Tensor(w.tolist()), micrograd_c.Tensor(b.tolist())
    w2.requires_grad = b2.requires_grad = True
    again = ours_cls([w2, b2], **config)
    again.load_state_dict(state)
    for opt, (pw, pb) in ((ours, (w, b)), (again, (w2, b2))):
        opt.zero_grad()
        ((x @ pw).relu().sum() + (pb * pb).sum()).backward()
        opt.step()
    assert w2.tolist() == w.tolist() and b2.tolist() == b.tolist()


def test_a_checkpoint_refuses_an_optimizer_that_skipped(tmp_path):
    """MLP.save checks the optimizer's parameters are the model's Values, which always have a grad; the C
    call refuses an optimizer with per-parameter skips outright (a checkpoint has no place for them)."""
    model = make_model(2, [1], seed=1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    opt._core.set_state(5, [0.0] * 3, [0, 2, 0])
    with pytest.raises(RuntimeError, match="skipped"):
        model.save(tmp_path / "c.safetensors", optimizer=opt)


# ---- resuming: the step lives in the optimizer ------------------------------------------------------------

OPTIMIZERS = {
    "sgd-momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=0.02),
}


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("how", ["split", "stopped"])
def test_a_run_split_by_a_checkpoint_is_bit_identical(tmp_path, schedule, kind, how):
    X, y = moons(60, seed=5)
    fit = dict(batch_size=16, shuffle=True, seed=9, schedule=schedule, lr_end=1e-3, l2=1e-4, verbose=False)
    total, k = 10, 4

    straight = make_model(2, [8, 8, 1], seed=1)
    straight.fit(X, y, optimizer=OPTIMIZERS[kind](straight.parameters()), epochs=total, **fit)

    first = make_model(2, [8, 8, 1], seed=1)
    opt = OPTIMIZERS[kind](first.parameters())
    if how == "split":  # the first call knows the run's length
        first.fit(X, y, optimizer=opt, epochs=k, total_epochs=total, **fit)
    else:  # a run of `total` epochs stopped after k by its callback
        first.fit(X, y, optimizer=opt, epochs=total, callback=lambda epoch, *_: epoch == k, **fit)
    path = tmp_path / "resume.safetensors"
    first.save(path, optimizer=opt, step=k)
    resumed, opt2, step = load_checkpoint(path)
    assert step == k and opt2.steps == k * 4
    history = resumed.fit(X, y, optimizer=opt2, epochs=total - step, total_epochs=total, **fit)
    assert len(history) == total - k
    assert bits(resumed) == bits(straight)


def test_fit_calls_compose_with_shuffle_and_a_constant_rate():
    """Without a schedule no total is needed: fit(4) then fit(6) is fit(10), the order continuing."""
    X, y = moons(50, seed=6)
    fit = dict(batch_size=8, shuffle=True, seed=3, verbose=False)
    a, b = make_model(2, [6, 1], seed=2), make_model(2, [6, 1], seed=2)
    opt_a, opt_b = optim.Adam(a.parameters(), lr=0.02), optim.Adam(b.parameters(), lr=0.02)
    a.fit(X, y, optimizer=opt_a, epochs=10, **fit)
    b.fit(X, y, optimizer=opt_b, epochs=4, **fit)
    b.fit(X, y, optimizer=opt_b, epochs=6, **fit)
    assert bits(a) == bits(b)
    assert opt_a.state_dict() == opt_b.state_dict()


def test_a_schedule_without_total_epochs_restarts_each_call_and_keeps_the_base_lr():
    X, y = moons(40, seed=7)
    model = make_model(2, [6, 1], seed=2)
    opt = optim.SGD(model.parameters(), lr=0.3)
    model.fit(X, y, optimizer=opt, epochs=3, schedule="cosine", lr_end=0.0, verbose=False)
    assert opt.lr == 0.3
    # total_epochs shorter than what the optimizer has done plus this call is refused, naming it
    with pytest.raises(ValueError, match="total_epochs"):
        model.fit(X, y, optimizer=opt, epochs=3, total_epochs=5, schedule="cosine", verbose=False)
    model.fit(X, y, optimizer=opt, epochs=2, total_epochs=5, schedule="cosine", verbose=False)
    assert opt.steps == 5 and opt.lr == 0.3
    assert all(math.isfinite(p.data) for p in model.parameters())
