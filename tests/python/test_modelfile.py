"""Model files (safetensors): MLP.save / MLP.load / load_checkpoint.

- Round trips are bit-exact, metadata included; a checkpoint resumes training bit for bit.
- Our files read with the ``safetensors`` package and load into a PyTorch ``nn.Sequential``; files that
  ``safetensors`` writes from a PyTorch state_dict load here, the layers read off the tensor names.
- Malformed files, other dtypes and missing files raise clear errors; loading never touches ``random``.
- Saving is atomic: a process killed by SIGKILL in the middle of saves leaves the old file or the new one.
"""

import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time

import micrograd_c
import pytest
from _helpers import in_ci, noisy_moons, require, seeded_mlp
from micrograd_c import MLP, load_checkpoint, optim

np = require("numpy")
safetensors = require("safetensors")
torch = require("torch")
import safetensors.numpy  # noqa: E402, F811 - the submodules, after require() checked the package
import safetensors.torch  # noqa: E402

# ---- helpers -------------------------------------------------------------------------------------------


def bits(model):
    """The parameters as raw IEEE bytes: equal only when bit for bit equal (NaN payloads, -0.0)."""
    return [struct.pack("<d", p.data) for p in model.parameters()]


def state_bits(optimizer):
    state = optimizer.state_dict()
    return state["kind"], state["steps"], [struct.pack("<d", b) for b in state["buffers"]]


def shape_of(model):
    return model._shape()


make_model = seeded_mlp
moons = noisy_moons


def craft(header, payload=b"", declared=None):
    """A safetensors file from a header (a dict, dumped compactly, or raw bytes) and the data bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(raw) if declared is None else declared) + raw + payload


def f64(*values):
    return struct.pack(f"<{len(values)}d", *values)


def tensor(shape, begin, end, dtype="F64"):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


ONE_LAYER = {"0.weight": tensor([1, 2], 0, 16), "0.bias": tensor([1], 16, 24)}


def one_layer(**changes):
    header = {k: dict(v) for k, v in ONE_LAYER.items()}
    header.update(changes)
    return header


# ---- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("nin,nouts", [(1, [1]), (2, [16, 16, 1]), (3, [4, 5, 6, 2]), (5, [8, 1, 3]), (20, [30, 10])])
def test_round_trip_is_bit_exact(tmp_path, nin, nouts):
    model = make_model(nin, nouts, seed=nin)
    params = model.parameters()
    # the awkward numbers too: -0, NaN, infinities, the smallest subnormal
    for i, value in enumerate([-0.0, float("nan"), float("inf"), -float("inf"), 5e-324, 1 / 3]):
        if i < len(params) - 1:
            params[i + 1].data = value
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = MLP.load(path)
    assert shape_of(loaded) == shape_of(model)
    assert repr(loaded) == repr(model)
    assert bits(loaded) == bits(model)
    assert loaded.metadata == {}
    # str paths work as well as Path objects
    model.save(str(path))
    assert bits(MLP.load(str(path))) == bits(model)


def test_predictions_equal_after_loading(tmp_path):
    model = make_model(3, [8, 8, 2], seed=3)
    X = np.random.default_rng(1).normal(size=(50, 3))
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = MLP.load(path)
    assert loaded.predict(X) == model.predict(X)
    # and the graph path of the loaded model agrees with predict
    row = [float(v) for v in X[0]]
    assert [v.data for v in loaded(row)] == model.predict(X[:1])[0]


def test_metadata_round_trip(tmp_path):
    model = make_model(2, [3, 1], seed=4)
    metadata = {
        "plain": "value",
        'quote"key': 'say "hi"',
        "back\\slash": 'C:\\dir\\file \\" \\\\',
        "utf8 é": "café ✓ 😀 中",
        "control": "\x01\x02\x1f tab\t nl\n cr\r bs\b ff\f",
        "": "empty key",
        "empty value": "",
        "json-ish": '{"not": ["json"]}',
        "optimizer.custom": "only exact names are reserved",
        "long": "x" * 10000,
    }
    path = tmp_path / "meta.safetensors"
    model.save(path, metadata=metadata)
    loaded = MLP.load(path)
    assert loaded.metadata == metadata
    assert bits(loaded) == bits(model)
    # a checkpoint carries it too
    opt = optim.Adam(model.parameters(), lr=0.01)
    model.save(path, optimizer=opt, step=3, metadata=metadata)
    loaded, opt2, step = load_checkpoint(path)
    assert loaded.metadata == metadata and step == 3 and opt2 is not None


def test_metadata_argument_errors(tmp_path):
    model = make_model(2, [1], seed=5)
    path = tmp_path / "m.safetensors"
    with pytest.raises(TypeError):
        model.save(path, metadata={"a": 1})
    with pytest.raises(TypeError):
        model.save(path, metadata={1: "a"})
    with pytest.raises(TypeError):
        model.save(path, metadata=[("a", "b")])
    with pytest.raises(ValueError, match="NUL"):
        model.save(path, metadata={"a": "b\0c"})
    assert not path.exists()


@pytest.mark.parametrize("key", ["format", "step", "optimizer.lr", "__metadata__"])
def test_reserved_metadata_keys_are_a_value_error(tmp_path, key):
    """A reserved key is a bad argument, like a NUL in a value: ValueError, not an OSError about the disk."""
    model = make_model(2, [1], seed=5)
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="reserved"):
        model.save(path, metadata={key: "x"})
    assert not path.exists()


@pytest.mark.parametrize("step", [-1, 2**64, -(2**63)])
def test_step_out_of_range_is_refused(tmp_path, step):
    """The step is stored as an unsigned 64-bit number: a negative or too large step must raise, not wrap
    around silently (step=-1 would come back as 18446744073709551615)."""
    model = make_model(2, [1], seed=5)
    path = tmp_path / "m.safetensors"
    with pytest.raises((ValueError, OverflowError)):
        model.save(path, step=step)


def test_step_round_trip(tmp_path):
    model = make_model(2, [1], seed=5)
    path = tmp_path / "m.safetensors"
    for step in [0, 1, 2**53 + 1, 2**64 - 1]:
        model.save(path, step=step)
        assert load_checkpoint(path)[2] == step


def test_optimizer_must_belong_to_the_model(tmp_path):
    model, other = make_model(2, [3, 1], seed=1), make_model(2, [3, 1], seed=2)
    with pytest.raises(ValueError, match="other parameters"):
        model.save(tmp_path / "m.safetensors", optimizer=optim.SGD(other.parameters(), lr=0.1))
    with pytest.raises(TypeError):
        model.save(tmp_path / "m.safetensors", optimizer="sgd")


# ---- checkpoints ---------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "sgd-dampening": lambda p: optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.25, weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-7),
    "adamw": lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_checkpoint_round_trip(tmp_path, kind):
    model = make_model(2, [8, 8, 1], seed=7)
    X, y = moons(32)
    opt = OPTIMIZERS[kind](model.parameters())
    model.fit(X, y, optimizer=opt, epochs=3, batch_size=8, shuffle=False, verbose=False)
    path = tmp_path / "ckpt.safetensors"
    model.save(path, optimizer=opt, step=123)
    loaded, opt2, step = load_checkpoint(path)
    assert step == 123
    assert bits(loaded) == bits(model)
    assert type(opt2) is type(opt)
    assert len(opt2.params) == len(loaded.parameters())
    assert all(a is b for a, b in zip(opt2.params, loaded.parameters()))
    assert state_bits(opt2) == state_bits(opt)
    assert opt2.state_dict()["config"] == opt.state_dict()["config"]
    # MLP.load takes just the model out of a checkpoint
    assert bits(MLP.load(path)) == bits(model)
    # a plain model file has no optimizer and step 0
    model.save(path)
    assert load_checkpoint(path)[1:] == (None, 0)


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_checkpoint_resumes_bit_identically(tmp_path, kind):
    X, y = moons(64, seed=2)
    fit = dict(batch_size=16, shuffle=False, l2=1e-4, verbose=False)

    straight = make_model(2, [8, 8, 1], seed=1)
    opt_straight = OPTIMIZERS[kind](straight.parameters())
    straight.fit(X, y, optimizer=opt_straight, epochs=10, **fit)

    first = make_model(2, [8, 8, 1], seed=1)
    opt_first = OPTIMIZERS[kind](first.parameters())
    first.fit(X, y, optimizer=opt_first, epochs=4, **fit)
    path = tmp_path / "resume.safetensors"
    first.save(path, optimizer=opt_first, step=4, metadata={"run": "resume"})
    del first, opt_first

    resumed, opt_resumed, step = load_checkpoint(path)
    assert step == 4 and resumed.metadata == {"run": "resume"}
    resumed.fit(X, y, optimizer=opt_resumed, epochs=10 - step, **fit)
    assert bits(resumed) == bits(straight)
    assert state_bits(opt_resumed) == state_bits(opt_straight)


def test_checkpoint_resumes_with_shuffle_and_the_same_seed_per_call(tmp_path):
    """With shuffle on, the order of each fit call comes from its seed: two calls of 5 epochs with the
    same seeds equal two calls of 5 epochs with a save and a load between them."""
    X, y = moons(64, seed=3)
    fit = dict(batch_size=8, shuffle=True, verbose=False)
    a = make_model(2, [8, 1], seed=2)
    opt_a = optim.Adam(a.parameters(), lr=0.02)
    a.fit(X, y, optimizer=opt_a, epochs=5, seed=11, **fit)
    a.fit(X, y, optimizer=opt_a, epochs=5, seed=12, **fit)

    b = make_model(2, [8, 1], seed=2)
    opt_b = optim.Adam(b.parameters(), lr=0.02)
    b.fit(X, y, optimizer=opt_b, epochs=5, seed=11, **fit)
    b.save(tmp_path / "c.safetensors", optimizer=opt_b, step=5)
    b, opt_b, _ = load_checkpoint(tmp_path / "c.safetensors")
    b.fit(X, y, optimizer=opt_b, epochs=5, seed=12, **fit)
    assert bits(a) == bits(b)


# ---- interoperability ----------------------------------------------------------------------------------


def our_tensors(model):
    """The model as nn.Sequential's state_dict would hold it: {"0.weight": [out, in], "0.bias": [out], ...}."""
    tensors, index = {}, 0
    for layer in model.layers:
        tensors[f"{index}.weight"] = np.array([[w.data for w in n.w] for n in layer.neurons])
        tensors[f"{index}.bias"] = np.array([n.b.data for n in layer.neurons])
        index += 2 if layer.neurons[0].nonlin else 1
    return tensors


def test_files_read_with_the_safetensors_package(tmp_path):
    model = make_model(3, [4, 5, 2], seed=9)
    path = tmp_path / "m.safetensors"
    model.save(path, metadata={"author": "tests", "note": 'é "q"'})
    expected = our_tensors(model)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert sorted(f.keys()) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
        for name in f.keys():
            t = f.get_tensor(name)
            assert t.dtype == np.float64
            assert t.shape == expected[name].shape
            assert np.array_equal(t, expected[name])
        meta = f.metadata()
    assert meta["format"] == "micrograd-c"
    assert meta["n_inputs"] == "3" and meta["sizes"] == "4,5,2" and meta["activations"] == "relu,relu,linear"
    assert meta["author"] == "tests" and meta["note"] == 'é "q"'
    loaded = safetensors.numpy.load_file(str(path))
    assert set(loaded) == set(expected)

    # a checkpoint adds the optimizer state as one more tensor
    opt = optim.Adam(model.parameters(), lr=0.01)
    model.save(path, optimizer=opt, step=2)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert "optimizer.state" in f.keys()
        assert f.get_tensor("optimizer.state").shape == (2 * len(model.parameters()),)
        meta = f.metadata()
    assert meta["optimizer"] == "adam" and meta["step"] == "2" and float(meta["optimizer.lr"]) == 0.01


def torch_sequential(nin, nouts, seed):
    torch.manual_seed(seed)
    modules, width = [], nin
    for i, n in enumerate(nouts):
        modules.append(torch.nn.Linear(width, n, dtype=torch.float64))
        if i < len(nouts) - 1:
            modules.append(torch.nn.ReLU())
        width = n
    return torch.nn.Sequential(*modules)


def test_files_load_into_torch(tmp_path):
    model = make_model(3, [4, 5, 2], seed=10)
    path = tmp_path / "m.safetensors"
    model.save(path)
    seq = torch_sequential(3, [4, 5, 2], seed=0)
    seq.load_state_dict(safetensors.torch.load_file(str(path)), strict=True)
    X = np.random.default_rng(2).normal(size=(40, 3))
    with torch.no_grad():
        want = seq(torch.from_numpy(X)).numpy()
    got = np.array(model.predict(X))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("writer", ["torch", "numpy"])
@pytest.mark.parametrize("nin,nouts", [(4, [8, 8, 3]), (2, [1]), (3, [5, 1])])
def test_files_written_by_safetensors_load(tmp_path, writer, nin, nouts):
    seq = torch_sequential(nin, nouts, seed=len(nouts))
    state = {k: v.contiguous() for k, v in seq.state_dict().items()}
    path = tmp_path / f"{writer}.safetensors"
    if writer == "torch":
        safetensors.torch.save_file(state, str(path), metadata={"format": "pt"})
    else:
        safetensors.numpy.save_file({k: v.numpy() for k, v in state.items()}, str(path))
    model = MLP.load(path)
    n_inputs, sizes, activations = shape_of(model)
    assert (n_inputs, sizes) == (nin, nouts)
    assert activations == ["relu"] * (len(nouts) - 1) + ["linear"]
    X = np.random.default_rng(3).normal(size=(30, nin))
    with torch.no_grad():
        want = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(np.array(model.predict(X)), want, rtol=1e-12, atol=1e-12)
    model2, opt, step = load_checkpoint(path)
    assert opt is None and step == 0 and model2.metadata == {}


@pytest.mark.parametrize("dtype,name", [(np.float32, "F32"), (np.float16, "F16"), (np.int64, "I64")])
def test_other_dtypes_are_refused_by_name(tmp_path, dtype, name):
    seq = torch_sequential(3, [4, 1], seed=0)
    path = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({k: v.numpy().astype(dtype) for k, v in seq.state_dict().items()}, str(path))
    with pytest.raises(ValueError, match=name) as info:
        MLP.load(path)
    assert "F64" in str(info.value)


def test_a_layer_python_cannot_hold_is_refused(tmp_path):
    header = {
        "0.weight": tensor([1, 2], 0, 16),
        "0.bias": tensor([1], 16, 24),
        "__metadata__": {"n_inputs": "2", "sizes": "1", "activations": "tanh"},
    }
    path = tmp_path / "tanh.safetensors"
    path.write_bytes(craft(header, f64(1, 2, 3)))
    with pytest.raises(ValueError, match="tanh"):
        MLP.load(path)


# ---- malformed files -----------------------------------------------------------------------------------


def good_file():
    return craft(one_layer(), f64(0.5, 1.5, 2.5))


MALFORMED = {
    "empty": (b"", "8-byte"),
    "shorter than the size field": (b"\x05\0\0\0", "8-byte"),
    "header over the cap": (struct.pack("<Q", 2**40) + good_file()[8:], "limit"),
    "header size over the file": (struct.pack("<Q", len(good_file())) + good_file()[8:], "truncated"),
    "not JSON": (craft(b"not json", f64(1, 2, 3)), "JSON object"),
    "truncated JSON": (craft(json.dumps(one_layer()).encode()[:-1], f64(1, 2, 3)), "JSON"),
    "text after the JSON": (craft(json.dumps(one_layer()).encode() + b"x", f64(1, 2, 3)), "after the JSON"),
    "trailing comma": (craft(json.dumps(one_layer()).encode()[:-1] + b",}", f64(1, 2, 3)), "JSON"),
    "lone surrogate": (
        craft(b'{"__metadata__":{"a":"\\ud800"},' + json.dumps(one_layer()).encode()[1:], f64(1, 2, 3)),
        "string",
    ),
    "overlapping offsets": (craft(one_layer(**{"0.bias": tensor([1], 8, 16)}), f64(1, 2, 3)), "overlap"),
    "offsets out of range": (craft(one_layer(**{"0.bias": tensor([1], 16, 32)}), f64(1, 2, 3)), "outside"),
    "begin after end": (craft(one_layer(**{"0.bias": tensor([1], 24, 16)}), f64(1, 2, 3)), "outside"),
    "gap": (craft(one_layer(**{"0.bias": tensor([1], 24, 32)}), f64(1, 2, 3, 4)), "gaps"),
    "trailing bytes": (good_file() + b"\0", "trailing"),
    "size against shape": (craft(one_layer(**{"0.weight": tensor([1, 3], 0, 16)}), f64(1, 2, 3)), "bytes for"),
    "overflowing shape": (craft(one_layer(**{"0.weight": tensor([2**40, 2**40], 0, 16)}), f64(1, 2, 3)), "large"),
    "wrong dtype": (craft(one_layer(**{"0.weight": tensor([1, 2], 0, 16, "F32")}), f64(1, 2, 3)), "F32"),
    "missing dtype": (
        craft(one_layer(**{"0.weight": {"shape": [1, 2], "data_offsets": [0, 16]}}), f64(1, 2, 3)),
        "lacks",
    ),
    "missing bias": (craft({"0.weight": tensor([1, 2], 0, 16)}, f64(1, 2)), "0.bias"),
    "no tensors": (craft({}), "no tensors"),
    "metadata contradicts": (
        craft(dict(one_layer(), __metadata__={"n_inputs": "3", "sizes": "1", "activations": "linear"}), f64(1, 2, 3)),
        "n_inputs",
    ),
    "optimizer without state": (craft(dict(one_layer(), __metadata__={"optimizer": "sgd"}), f64(1, 2, 3)), "optimizer"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_raise_value_error(tmp_path, case):
    data, part = MALFORMED[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=part) as info:
        MLP.load(path)
    assert "bad.safetensors" in str(info.value)  # the message names the file
    with pytest.raises(ValueError, match=part):
        load_checkpoint(path)


def test_the_crafted_good_file_loads(tmp_path):
    path = tmp_path / "good.safetensors"
    path.write_bytes(good_file())
    model = MLP.load(path)
    assert bits(model) == [struct.pack("<d", v) for v in (0.5, 1.5, 2.5)]


def test_every_truncation_of_a_checkpoint_raises(tmp_path):
    model = make_model(2, [3, 2], seed=12)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    full = tmp_path / "full.safetensors"
    model.save(full, optimizer=opt, step=5, metadata={"k": "v"})
    data = full.read_bytes()
    cut = tmp_path / "cut.safetensors"
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        with pytest.raises(ValueError):
            micrograd_c._core.load_model(str(cut))  # the loader behind MLP.load, without building Values
    assert bits(load_checkpoint(full)[0]) == bits(model)


def test_a_missing_file_raises(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises((OSError, ValueError), match="nope.safetensors"):
        MLP.load(path)
    with pytest.raises((OSError, ValueError)):
        load_checkpoint(path)
    with pytest.raises((OSError, ValueError), match="regular file"):
        MLP.load(tmp_path)  # a folder


def test_a_missing_file_is_file_not_found(tmp_path):
    """As open(), numpy.load, torch.load and safetensors.safe_open do: a caller catching ValueError for a
    corrupt file must not mistake a missing one for it, and `except FileNotFoundError` must work."""
    with pytest.raises(FileNotFoundError):
        MLP.load(tmp_path / "nope.safetensors")


def test_saving_into_a_missing_folder_raises(tmp_path):
    model = make_model(2, [1], seed=1)
    with pytest.raises(OSError, match="no_folder"):
        model.save(tmp_path / "no_folder" / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_loading_never_changes_random(tmp_path):
    model = make_model(3, [8, 8, 1], seed=13)
    path = tmp_path / "m.safetensors"
    model.save(path, optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.5), step=1)
    random.seed(2024)
    state = random.getstate()
    MLP.load(path)
    load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        MLP.load(tmp_path / "missing")
    assert random.getstate() == state


def test_checkpoints_do_not_depend_on_the_locale(tmp_path):
    """A program that sets a locale with a decimal comma (locale.setlocale(locale.LC_ALL, "de_DE.UTF-8"))
    must still save files others can read and read files others saved. Checked when such a locale exists."""
    import locale

    old = locale.setlocale(locale.LC_NUMERIC)
    for name in ("de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"):
        try:
            locale.setlocale(locale.LC_NUMERIC, name)
        except locale.Error:
            continue
        if locale.localeconv()["decimal_point"] == ",":
            break
    else:
        locale.setlocale(locale.LC_NUMERIC, old)
        if in_ci():  # make test compiles one (the Makefile's locale target): CI must run this test
            pytest.fail("no locale with a decimal comma: `make locale` should have compiled de_DE.UTF-8")
        pytest.skip("no locale with a decimal comma is installed (`make locale` compiles one)")
    comma = locale.setlocale(locale.LC_NUMERIC)
    model = make_model(2, [3, 1], seed=6)
    opt = optim.Adam(model.parameters(), lr=0.125)
    try:
        locale.setlocale(locale.LC_NUMERIC, old)
        model.save(tmp_path / "c.safetensors", optimizer=opt, step=1)
        locale.setlocale(locale.LC_NUMERIC, comma)
        model.save(tmp_path / "comma.safetensors", optimizer=opt, step=1)
        loaded_in_comma = load_checkpoint(tmp_path / "c.safetensors")  # written in C, read with commas
    finally:
        locale.setlocale(locale.LC_NUMERIC, old)
    loaded_in_c = load_checkpoint(tmp_path / "comma.safetensors")  # written with commas, read in C
    for loaded, opt2, step in (loaded_in_comma, loaded_in_c):
        assert bits(loaded) == bits(model) and opt2.lr == 0.125 and step == 1


# ---- atomic saves --------------------------------------------------------------------------------------

SAVER = textwrap.dedent("""
    import os, random, signal, sys
    from micrograd_c import MLP
    path, ref_a, ref_b = sys.argv[1:4]
    random.seed(1)
    a = MLP(256, [512, 512, 10])   # about 400,000 parameters: 3.2 MB a file
    b = MLP._from_parameters(*a._shape(), [-p.data for p in a.parameters()])   # every parameter negated
    for model in (a, b):
        # save() asks for parameters() (a 400,000-Value list: 40 ms of Python); cached, the workers spend
        # their time in the save itself, where a kill matters
        params = model.parameters()
        model.parameters = lambda params=params: params
    a.save(ref_a)
    b.save(ref_b)
    a.save(path)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "go":         # a worker saving A, B, A, B, ... (or B, A, ...) until killed
            pid = os.fork()
            if pid == 0:
                models = (a, b) if command[1] == "0" else (b, a)
                while True:
                    for model in models:
                        model.save(path)
            print(pid, flush=True)
        elif command[0] == "reap":
            _, status = os.waitpid(int(command[1]), 0)
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            print("killed" if killed else f"status {status}", flush=True)
        else:
            break
""")


def test_a_killed_save_leaves_the_old_or_the_new_file(tmp_path):
    """Processes save two different models in turn over one file and are killed with SIGKILL at random
    moments (20 times). After each kill the file must load and be exactly one of the two models, never a
    mix or a truncated file.

    A child process (sys.executable) builds the two models once, then for each kill forks a worker that
    saves in a loop; the test kills that worker by its pid after a random delay. Forking spares building
    400,000 Values for every kill.

    Temporary files (path + ".tmp.<pid>.<n>", in the same folder so that the rename is atomic) may be left
    behind by a process killed in the middle of a save: nothing can remove them then. They never take the
    target's place, and later saves of the same path do not depend on them."""
    path, ref_a, ref_b = tmp_path / "model.safetensors", tmp_path / "ref_a.bin", tmp_path / "ref_b.bin"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path), str(ref_a), str(ref_b)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def ask(command):
        if command:
            saver.stdin.write(command + "\n")
            saver.stdin.flush()
        answer = saver.stdout.readline()
        if not answer:
            saver.kill()
            pytest.fail(f"the saving process ended: {saver.stderr.read()}")
        return answer.strip()

    rng = random.Random(20240607)
    seen = {"a": 0, "b": 0}
    interrupted = 0  # kills that left a temporary file: they landed inside a save's write
    try:
        assert ask(None) == "ready"
        a, b = ref_a.read_bytes(), ref_b.read_bytes()
        assert a != b and path.read_bytes() == a
        for kill in range(20):
            pid = int(ask(f"go {kill % 2}"))
            time.sleep(rng.uniform(0.0, 0.25))
            os.kill(pid, signal.SIGKILL)  # the worker this test had forked, by its pid
            assert ask(f"reap {pid}") == "killed"
            data = path.read_bytes()
            assert data in (a, b), f"kill {kill}: the file is {len(data)} bytes and matches neither model"
            seen["a" if data == a else "b"] += 1
            micrograd_c._core.load_model(str(path))  # the loader behind MLP.load accepts it
            leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("model.safetensors.tmp.")]
            interrupted = len(leftovers)
            for name in leftovers:  # the target is never one of them, and they never replaced it
                assert re.fullmatch(r"model\.safetensors\.tmp\.\d+\.\d+", name), name
        saver.stdin.write("quit\n")
        saver.stdin.flush()
        saver.wait(timeout=30)
    finally:
        if saver.poll() is None:
            saver.kill()
            saver.wait(timeout=30)
        for stream in (saver.stdin, saver.stdout, saver.stderr):
            stream.close()
    assert seen["a"] + seen["b"] == 20
    print(
        f"20 kills: the file held model A {seen['a']} times, B {seen['b']} times; "
        f"{interrupted} kills landed inside a write and left a temporary file"
    )
    # the last state loads as a whole model, equal to one of the two
    model = MLP.load(path)
    assert len(model.parameters()) == 256 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
