"""Model files under real use: save never writes what load rejects, never replaces what is not a regular file,
keeps the file's mode, and is atomic.

- Property (hypothesis): any model, optimizer state, step and metadata that ``save`` accepts, ``load`` reads back
  bit for bit; what it refuses (past a limit, NUL or surrogates in metadata, reserved keys, settings load
  would refuse) is a ValueError that leaves no file and no temporary file behind, and an old file as it was.
- The limits (the C header's MG_FILE_MAX_*): 256 layers, 4096 metadata keys, a 100,000,000-byte header.
- Targets: a FIFO, a socket, a device (our own, then /dev/null) and a folder are refused and left alone; a
  symbolic link is written through (the link stays), a dangling one gets its target made, a loop is ELOOP;
  a re-saved file keeps its permission bits whatever the umask.
"""

import errno
import math
import os
import socket
import stat
import struct
import tempfile

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from micrograd_c import MLP, load_checkpoint, optim

MAX_LAYERS = 256
MAX_METADATA = 4096
MAX_HEADER = 100 * 1000 * 1000
RESERVED = {
    "format",
    "format_version",
    "n_inputs",
    "sizes",
    "activations",
    "step",
    "optimizer",
    "optimizer.lr",
    "optimizer.momentum",
    "optimizer.dampening",
    "optimizer.nesterov",
    "optimizer.beta1",
    "optimizer.beta2",
    "optimizer.eps",
    "optimizer.weight_decay",
    "optimizer.steps",
    "__metadata__",
}


def bits(values):
    return [struct.pack("<d", v) for v in values]


def model_bits(model):
    return bits(p.data for p in model.parameters())


def optimizer_bits(optimizer):
    state = optimizer.state_dict()
    config = {k: struct.pack("<d", v) if isinstance(v, float) else v for k, v in state["config"].items()}
    return state["kind"], config, state["steps"], bits(state["buffers"])


def make_model(nin, sizes, values=None):
    model = MLP(nin, sizes)
    if values is not None:
        for p, x in zip(model.parameters(), values):
            p.data = x
    return model


# ---- the property: what save accepts loads back bit for bit; what it refuses leaves nothing --------------

awkward = st.sampled_from(
    [
        0.0,
        -0.0,
        5e-324,
        -1.7976931348623157e308,
        math.inf,
        -math.inf,
        math.nan,
        struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000123))[0],
        struct.unpack("<d", struct.pack("<Q", 0xFFF0000000000001))[0],
    ]
)
numbers = st.floats(allow_nan=True, allow_infinity=True) | awkward
# every code point, surrogates and NUL included: those must be refused, the rest kept exactly
texts = st.text(alphabet=st.characters(exclude_categories=()), max_size=12)
bad_texts = st.sampled_from(["\0", "a\0b", "\ud800", "x\udfff", "\ud83d\ude00"])  # NUL, lone and paired surrogates
keys = texts | bad_texts | st.sampled_from(sorted(RESERVED) + ["0.weight", "optimizer.state", "optimizer.x"])


@st.composite
def shapes(draw):
    if draw(st.integers(0, 9)) == 9:  # near the layer limit, on both sides: layers of one neuron are cheap
        return 1, [1] * draw(st.integers(MAX_LAYERS - 2, MAX_LAYERS + 2))
    nin = draw(st.integers(1, 4))
    return nin, draw(st.lists(st.integers(1, 4), min_size=1, max_size=5))


@st.composite
def optimizers(draw, params):
    kind = draw(st.sampled_from([None, "sgd", "adam", "adamw"]))
    if kind is None:
        return None
    setting = st.floats(0, 10) | st.sampled_from([0.0, 5e-324, math.inf])
    try:
        if kind == "sgd":
            momentum = draw(setting)
            nesterov = draw(st.booleans()) and momentum > 0
            made = optim.SGD(
                params,
                lr=draw(st.floats(0, 10)),
                momentum=momentum,
                nesterov=nesterov,
                dampening=0.0 if nesterov else draw(setting),
                weight_decay=draw(setting),
            )
        else:
            beta = st.floats(0, 1, exclude_max=True)
            made = (optim.Adam if kind == "adam" else optim.AdamW)(
                params,
                lr=draw(st.floats(0, 10)),
                betas=(draw(beta), draw(beta)),
                eps=draw(setting),
                weight_decay=draw(setting),
            )
    except ValueError:
        return None  # settings the optimizer itself refuses
    steps, buffers, _ = made._core.state()
    try:
        made._core.set_state(
            draw(st.integers(0, 2**64 - 1)), draw(st.lists(numbers, min_size=len(buffers), max_size=len(buffers)))
        )
    except ValueError:
        return None  # a state the optimizer refuses (a NaN buffer, a negative second moment)
    return made


def save_should_work(sizes, optimizer, metadata):
    if len(sizes) > MAX_LAYERS or len(metadata) > MAX_METADATA:
        return False
    if any(k in RESERVED for k in metadata):
        return False
    for s in list(metadata) + list(metadata.values()):
        if "\0" in s or any(0xD800 <= ord(c) < 0xE000 for c in s):
            return False
    if optimizer is not None:
        config = optimizer.state_dict()["config"]
        if not all(math.isfinite(v) for k, v in config.items() if isinstance(v, float)):
            return False
    return True


@given(data=st.data())
def test_what_save_accepts_loads_back_bit_for_bit(data):
    nin, sizes = data.draw(shapes())
    model = make_model(nin, sizes)
    values = data.draw(st.lists(numbers, min_size=len(model.parameters()), max_size=len(model.parameters())))
    for p, x in zip(model.parameters(), values):
        p.data = x
    optimizer = data.draw(optimizers(model.parameters()))
    step = data.draw(st.integers(0, 2**64 - 1))
    metadata = data.draw(st.dictionaries(keys, texts | bad_texts, max_size=6))
    expected = save_should_work(sizes, optimizer, metadata)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.safetensors")
        try:
            model.save(path, optimizer, step, metadata)
        except ValueError as e:
            event("refused")
            assert not expected, f"save refused what load takes: {e}"
            assert os.listdir(folder) == []
            return
        event("saved with an optimizer" if optimizer else "saved without an optimizer")
        assert expected, "save accepted what it should refuse"
        assert os.listdir(folder) == ["m.safetensors"]
        back, back_optimizer, back_step = load_checkpoint(path)
        assert back._shape() == model._shape()
        assert model_bits(back) == model_bits(model)
        assert back.metadata == metadata and back_step == step
        if optimizer is None:
            assert back_optimizer is None
        else:
            assert optimizer_bits(back_optimizer) == optimizer_bits(optimizer)


# ---- the limits, and what else load would refuse ----------------------------------------------------------


def refuses(tmp_path, match, *args, over_old=True, **kwargs):
    """save(*args) into an empty folder and over an existing file: ValueError, nothing new, the old file kept."""
    model = args[0]
    fresh = tempfile.mkdtemp(dir=tmp_path)
    with pytest.raises(ValueError, match=match):
        model.save(os.path.join(fresh, "m.safetensors"), *args[1:], **kwargs)
    assert os.listdir(fresh) == []
    if not over_old:
        return
    old = os.path.join(fresh, "old.safetensors")
    make_model(1, [1]).save(old)
    with open(old, "rb") as f:
        before = f.read()
    with pytest.raises(ValueError, match=match):
        model.save(old, *args[1:], **kwargs)
    with open(old, "rb") as f:
        assert f.read() == before
    assert os.listdir(fresh) == ["old.safetensors"]


def test_more_layers_than_a_file_holds_are_refused(tmp_path):
    refuses(tmp_path, "300 layers.*256", make_model(1, [1] * 300))
    deep = make_model(1, [1] * MAX_LAYERS)
    refuses(tmp_path, "257 layers", make_model(1, [1] * (MAX_LAYERS + 1)))
    deep.save(tmp_path / "deep.safetensors", optim.SGD(deep.parameters()), 3)
    back, back_optimizer, step = load_checkpoint(tmp_path / "deep.safetensors")
    assert model_bits(back) == model_bits(deep) and step == 3 and back_optimizer is not None


def test_more_metadata_keys_than_a_file_holds_are_refused(tmp_path):
    model = make_model(2, [2, 1])
    most = {f"key {i}": str(i) for i in range(MAX_METADATA)}
    model.save(tmp_path / "most.safetensors", optim.Adam(model.parameters()), 1, most)  # our keys on top
    assert MLP.load(tmp_path / "most.safetensors").metadata == most
    refuses(tmp_path, "4097 metadata keys.*4096", model, metadata=dict(most, extra="x"))


def test_metadata_over_the_header_limit_is_refused(tmp_path):
    model = make_model(1, [1])
    refuses(tmp_path, "100000000-byte limit", model, metadata={"big": "x" * MAX_HEADER})
    refuses(tmp_path, "header would be", model, metadata={"big": "x" * (MAX_HEADER - 40)}, over_old=False)
    refuses(
        tmp_path,
        "metadata of",
        model,
        metadata={"quotes": '"' * (MAX_HEADER // 2 + 1)},  # escaped: 2 bytes each
        over_old=False,
    )
    fits = "y" * (MAX_HEADER - 1000)
    model.save(tmp_path / "fits.safetensors", metadata={"fits": fits})
    assert MLP.load(tmp_path / "fits.safetensors").metadata == {"fits": fits}


@pytest.mark.parametrize(
    "metadata, match",
    [
        ({"a\0b": "v"}, "NUL"),
        ({"k": "v\0"}, "NUL"),
        ({"\ud800": "v"}, "surrogate"),
        ({"k": "\udfff"}, "surrogate"),
        ({"format": "x"}, "reserved"),
        ({"optimizer.lr": "x"}, "reserved"),
        ({"__metadata__": "x"}, "reserved"),
    ],
)
def test_metadata_load_would_refuse_is_refused(tmp_path, metadata, match):
    refuses(tmp_path, match, make_model(2, [1]), metadata=metadata)


def test_metadata_named_like_tensors_round_trips(tmp_path):
    """Metadata lives in its own object: a key named like a tensor cannot collide with it."""
    model = make_model(2, [3, 1])
    metadata = {"0.weight": "a", "0.bias": "b", "optimizer.state": "c", "optimizer.custom": "d", "": ""}
    model.save(tmp_path / "m.safetensors", optim.SGD(model.parameters(), momentum=0.5), 2, metadata)
    back, back_optimizer, _ = load_checkpoint(tmp_path / "m.safetensors")
    assert back.metadata == metadata and model_bits(back) == model_bits(model)


def test_optimizer_settings_load_would_refuse_cannot_be_made(tmp_path):
    """A file holds finite settings only, and no optimizer holds others: every way of setting one (the
    constructor, lr, load_state_dict) checks them as load does, so there is nothing save must refuse."""
    model = make_model(2, [1])
    for make in [
        lambda: optim.Adam(model.parameters(), eps=math.inf),
        lambda: optim.AdamW(model.parameters(), eps=math.inf),
        lambda: optim.SGD(model.parameters(), dampening=math.inf),
    ]:
        with pytest.raises(ValueError, match="finite"):
            make()
    opt = optim.SGD(model.parameters(), momentum=0.5)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = math.nan
    model.save(tmp_path / "m.safetensors", opt, 1)
    assert load_checkpoint(tmp_path / "m.safetensors")[1].lr == opt.lr


# ---- what is at the path ------------------------------------------------------------------------------


def assert_left_alone(path, kind):
    assert kind(os.lstat(path).st_mode)
    assert [p for p in os.listdir(os.path.dirname(path)) if ".tmp." in p] == []


def test_a_fifo_is_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "m.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="FIFO.*regular file"):
        make_model(2, [1]).save(fifo)
    assert_left_alone(fifo, stat.S_ISFIFO)
    (tmp_path / "to_fifo").symlink_to("m.fifo")
    with pytest.raises(ValueError, match="FIFO"):
        make_model(2, [1]).save(tmp_path / "to_fifo")
    assert_left_alone(fifo, stat.S_ISFIFO)
    assert (tmp_path / "to_fifo").is_symlink()


def test_a_socket_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "m.sock"
    if len(os.fsencode(path)) >= 100:
        pytest.skip("the temporary folder's path is too long for a socket")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(os.fspath(path))
        with pytest.raises(ValueError, match="socket"):
            make_model(2, [1]).save(path)
        assert_left_alone(path, stat.S_ISSOCK)


def test_a_folder_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        make_model(2, [1]).save(folder)
    assert_left_alone(folder, stat.S_ISDIR)
    assert list(folder.iterdir()) == []
    (tmp_path / "to_folder").symlink_to("folder")
    with pytest.raises(IsADirectoryError):
        make_model(2, [1]).save(tmp_path / "to_folder")
    assert (tmp_path / "to_folder").is_symlink()


def test_dev_null_is_refused_and_left_alone(tmp_path):
    before = os.stat("/dev/null")
    if not stat.S_ISCHR(before.st_mode):
        pytest.fail("/dev/null is not a character device before the test")
    model = make_model(2, [1])
    # A save that replaced devices would, run as root, replace the system's /dev/null: prove it on a device
    # of our own first (pytest.raises fails the test before /dev/null is tried).
    own = tmp_path / "null"
    try:
        os.mknod(own, 0o600 | stat.S_IFCHR, before.st_rdev)
    except OSError:
        if os.access("/dev", os.W_OK):
            pytest.skip("cannot make a device to try first, and /dev is writable: /dev/null not risked")
    else:
        with pytest.raises(ValueError, match="character device"):
            model.save(own)
        assert_left_alone(own, stat.S_ISCHR)
    with pytest.raises(ValueError, match="character device"):
        model.save("/dev/null")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


def test_a_symlink_is_written_through_and_stays(tmp_path):
    a, b = make_model(2, [3, 1]), make_model(2, [3, 1])
    real = tmp_path / "real.safetensors"
    a.save(real)
    os.chmod(real, 0o640)
    link = tmp_path / "link.safetensors"
    link.symlink_to("real.safetensors")
    b.save(link)
    assert link.is_symlink() and os.readlink(link) == "real.safetensors"
    assert model_bits(MLP.load(real)) == model_bits(b)
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640
    (tmp_path / "sub").mkdir()
    inner = tmp_path / "sub" / "inner.safetensors"
    inner.symlink_to("../real.safetensors")  # relative to the link's own folder
    absolute = tmp_path / "absolute.safetensors"
    absolute.symlink_to(real.resolve())
    for target, model in [(inner, a), (absolute, b)]:
        model.save(target)
        assert target.is_symlink() and model_bits(MLP.load(real)) == model_bits(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "absolute.safetensors",
        "link.safetensors",
        "real.safetensors",
        "sub",
    ]


def test_a_dangling_symlink_gets_its_target_made(tmp_path):
    model = make_model(2, [1])
    link = tmp_path / "dangling.safetensors"
    link.symlink_to("made.safetensors")
    model.save(link)
    assert link.is_symlink() and model_bits(MLP.load(tmp_path / "made.safetensors")) == model_bits(model)
    nowhere = tmp_path / "nowhere.safetensors"
    nowhere.symlink_to("no_such_folder/m.safetensors")
    with pytest.raises(FileNotFoundError):
        model.save(nowhere)
    assert not (tmp_path / "no_such_folder").exists()


def test_a_symlink_loop_is_an_error(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError) as raised:
        make_model(2, [1]).save(tmp_path / "a")
    assert raised.value.errno == errno.ELOOP
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400, 0o755])
def test_a_resaved_file_keeps_its_mode(tmp_path, mode):
    model = make_model(2, [1])
    path = tmp_path / "private.safetensors"
    old_mask = os.umask(0o022)
    try:
        model.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # a new file: 0666 less the umask
        os.chmod(path, mode)
        model.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
        os.umask(0o077)
        os.chmod(path, 0o644)
        model.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # kept, not cut by the umask
        os.unlink(path)
        model.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        os.umask(old_mask)
    assert [p.name for p in tmp_path.iterdir()] == ["private.safetensors"]
