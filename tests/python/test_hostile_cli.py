"""Hostile use of the command line: absurd options, huge values, damaged model files, full disks, files
in the wrong place, and a large CSV whose peak memory is measured. Every failure must be one line on
stderr and a non-zero exit status, never a traceback.
"""

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
from _helpers import one_line_error, write_csv
from hypothesis import given
from hypothesis import strategies as st
from micrograd_c import _core, cli
from micrograd_c.nn import MLP

# ---- helpers ----


def blobs(n=40):
    return [[f"{i % 2 * 3 + 0.01 * i:.4f}", f"{(i * 7) % 5:.1f}", "ab"[i % 2]] for i in range(n)]


def run_module(*args, cwd=None, stdout=subprocess.PIPE):
    return subprocess.run(
        [sys.executable, "-m", "micrograd_c", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        timeout=120,
    )


one_line = one_line_error


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def fails(argv, capsys, *fragments):
    status, out, err = run(argv, capsys)
    assert status == 1 and out == "", (status, err)
    assert err.count("\n") == 1 and "error:" in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture
def trained(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["x", "y", "label"], blobs())
    model = str(tmp_path / "m.st")
    assert run(["train", data, "-t", "label", "--loss", "bce", "--epochs", "3", "-o", model, "-q"], capsys)[0] == 0
    return SimpleNamespace(data=data, model=model, dir=tmp_path)


# ---- options: bounds, each named in a one-line usage error (exit status 2) ----

BAD_OPTIONS = {
    "--epochs 10**20": (["--epochs", str(10**20)], "argument --epochs: must be from 1 to 1000000000"),
    "--epochs 0": (["--epochs", "0"], "argument --epochs"),
    "--epochs 1.5": (["--epochs", "1.5"], "argument --epochs: expected a whole number"),
    "--seed 2**64": (["--seed", str(2**64)], "argument --seed: must be from 0 to 18446744073709551615"),
    "--seed -1": (["--seed", "-1"], "argument --seed"),
    "--hidden 99999999999": (["--hidden", "99999999999"], "argument --hidden: a layer has at most 2^24"),
    "--hidden 0": (["--hidden", "16,0"], "argument --hidden: layer sizes must be at least 1"),
    "--hidden x": (["--hidden", "16,x"], "argument --hidden: expected sizes like 16,16"),
    "--hidden 1001 layers": (["--hidden", ",".join(["2"] * 1001)], "argument --hidden: at most 1000 hidden layers"),
    "--hidden 5000 digits": (["--hidden", "9" * 5000], "argument --hidden"),
    "--threads 99999": (["--threads", "99999"], "argument --threads: must be from 0 to 1024"),
    "--batch-size -1": (["--batch-size", "-1"], "argument --batch-size"),
    "--batch-size 2**70": (["--batch-size", str(2**70)], "argument --batch-size"),
    "--lr inf": (["--lr", "inf"], "argument --lr"),
    "--lr 1e400": (["--lr", "1e400"], "argument --lr"),
    "--lr nan": (["--lr", "nan"], "argument --lr"),
    "--lr 0": (["--lr", "0"], "argument --lr: must be a number above 0"),
    "--lr 1e7": (["--lr", "1e7"], "argument --lr"),
    "--l2 -1": (["--l2", "-1"], "argument --l2"),
    "--l2 nan": (["--l2", "nan"], "argument --l2"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_option_is_one_usage_line(capsys, case):
    extra, fragment = BAD_OPTIONS[case]
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "d.csv", "-t", "y", "--loss", "svm"] + extra)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("micrograd-c train: error: ") and fragment in err, err


def test_bad_options_subprocess(tmp_path):
    for extra in (["--epochs", str(10**20)], ["--seed", str(2**64)], ["--hidden", "99999999999"]):
        one_line(run_module("train", "d.csv", "-t", "y", "--loss", "svm", *extra, cwd=tmp_path), 2, "argument --")
    one_line(run_module("train", "d.csv", "--loss", "svm", cwd=tmp_path), 2, "--target")


def test_largest_seed_trains(trained, capsys):
    argv = [
        "train",
        trained.data,
        "-t",
        "label",
        "--loss",
        "bce",
        "--epochs",
        "1",
        "--seed",
        str(2**64 - 1),
        "-o",
        trained.model,
        "-q",
    ]
    assert run(argv, capsys) == (0, "", "")


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("micrograd-c 0.")
    result = run_module("--version")
    assert result.returncode == 0 and result.stdout.startswith("python -m micrograd_c 0."), result


# ---- sizes: bounded before anything is allocated ----


def test_huge_hidden_layers_refused_at_once(trained):
    result = run_module(
        "train", trained.data, "-t", "label", "--loss", "bce", "--hidden", "100000,100000", cwd=trained.dir
    )
    one_line(result, 1, "MLP(2, [100000, 100000, 1]) would have 10000500001 parameters", "--hidden")


def test_memory_estimate_refuses(trained, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_memory_available", lambda: 50 << 20)  # a machine with 50 MiB left
    err = fails(
        ["train", trained.data, "-t", "label", "--loss", "bce", "--hidden", "2000,200", "-o", trained.model, "-q"],
        capsys,
        "MLP(2, [2000, 200, 1]) (406401 parameters) on 40 rows needs about",
        "more than the 50 MiB available",
    )
    assert "use smaller --hidden layers" in err


def test_memory_estimate_counts_the_work_buffers():
    # fit runs any batch through its layers 256 samples at a time: the whole set as one batch costs no more
    # than minibatches, whatever the rows
    small = cli._fit_bytes(10, [16, 16, 1], 10**6, 1000, 1)[1]
    whole = cli._fit_bytes(10, [16, 16, 1], 10**6, 0, 1)[1]
    assert whole == small
    wide = cli._fit_bytes(1000, [4096, 1], 10**3, 0, 1)[1]  # the chunk's activations: 256 x (1000 + 4097 + 8192)
    assert wide - cli._fit_bytes(1000, [4096, 1], 10**3, 8, 1)[1] == 8 * (256 - 8) * (1000 + 4097 + 2 * 4096)
    n_params, need = cli._fit_bytes(1, [2**24, 1], 10, 0, 1)
    assert n_params == 3 * 2**24 + 1 and need > n_params * cli.PYTHON_BYTES_PER_PARAM
    assert cli._memory_available() is None or cli._memory_available() > 0


# ---- values near the limits of a double ----


def test_values_near_1e308_train_and_predict(tmp_path, capsys):
    rows = [
        [repr(v), repr(w), "ab"[i % 2]]
        for i, (v, w) in enumerate([(1.7e308, 1e-300), (-1.7e308, 2e-300), (1.7e308, -1e-300), (-1.6e308, 5e-324)] * 5)
    ]
    data = write_csv(tmp_path / "big.csv", ["x", "y", "label"], rows)
    model = str(tmp_path / "m.st")
    assert run(["train", data, "-t", "label", "--loss", "bce", "--epochs", "5", "-o", model, "-q"], capsys)[0] == 0
    metadata = MLP.load(model).metadata
    means, stds = json.loads(metadata["cli.mean"]), json.loads(metadata["cli.std"])
    assert all(np.isfinite(means)) and all(np.isfinite(stds)) and min(stds) > 0
    assert 1e307 < stds[0] <= 1.7e308
    status, out, _ = run(["predict", model, data, "-q"], capsys)
    assert status == 0 and len(out.splitlines()) == 21
    # mse on a target near the limit: standardised, and predicted back in its own units
    rows = [[str(i), repr((-1) ** i * 1.5e308)] for i in range(20)]
    data = write_csv(tmp_path / "t.csv", ["x", "t"], rows)
    assert run(["train", data, "-t", "t", "--loss", "mse", "--epochs", "2", "-o", model, "-q"], capsys)[0] == 0
    assert 1e308 < json.loads(MLP.load(model).metadata["cli.target_std"]) < 1.6e308


def test_mean_std_cannot_overflow():
    X = np.array([[1.7e308, 3.0], [1.7e308, 3.0], [-1.7e308, 3.0]])
    means, stds = cli._mean_std(X.copy())
    assert np.isclose(means[0], 1.7e308 / 3, rtol=1e-12) and np.isclose(stds[0], 1.7e308 / 3 * np.sqrt(8), rtol=1e-12)
    assert means[1] == 3.0 and stds[1] == 1.0  # constant: std 1
    out = cli._standardize(X, means, stds, "f.csv", SimpleNamespace(line=lambda row: row + 2), ["a", "b"])
    assert np.isfinite(out).all() and np.isclose(out[:, 0], [1 / np.sqrt(2)] * 2 + [-np.sqrt(2)]).all()
    subnormal = np.array([[5e-324], [1e-323], [0.0]])
    means, stds = cli._mean_std(subnormal.copy())
    assert means[0] > 0 and stds[0] > 0


def test_predict_far_outside_the_training_data(trained, capsys):
    far = write_csv(trained.dir / "far.csv", ["x", "y"], [["1", "2"], ["1.7e308", "2"]])
    fails(["predict", trained.model, far], capsys, "far.csv: line 3: the model's output is not a finite number")
    rewrite(trained.model, std="[1e-10, 1.0]")
    fails(
        ["predict", trained.model, far],
        capsys,
        "far.csv: line 3, column 'x': the value is too far from the model's training data (mean ",
    )


# ---- damaged metadata in the model file ----


def rewrite(path, **changes):
    model = MLP.load(path)
    metadata = dict(model.metadata)
    for key, value in changes.items():
        key = "cli." + key
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    model.save(path, metadata=metadata)


DAMAGED = {
    "std zeros": (dict(std="[0.0, 0.0]"), "'cli.std' is damaged: item 0 is 0.0; it must be a positive"),
    "std negative": (dict(std="[1.0, -2.0]"), "'cli.std' is damaged: item 1 is -2.0"),
    "std infinite": (dict(std="[1.0, 1e999]"), "'cli.std' is damaged: item 1 is inf"),
    "std NaN": (dict(std="[NaN, 1.0]"), "'cli.std' is damaged: item 0 is nan"),
    "std missing": (dict(std=None), "'cli.std' is damaged: it is missing"),
    "mean strings": (dict(mean='["a", "b"]'), "'cli.mean' is damaged: item 0 is 'a', not a number"),
    "mean bools": (dict(mean="[true, false]"), "'cli.mean' is damaged: item 0 is True, not a number"),
    "mean short": (dict(mean="[1.0]"), "'cli.mean' is damaged: it must be a list of 2 numbers"),
    "mean not JSON": (dict(mean="[1.0,"), "'cli.mean' is damaged: '[1.0,' is not JSON"),
    "mean huge int": (dict(mean="[1" + "0" * 400 + ", 0]"), "'cli.mean' is damaged: item 0 is too large"),
    "mean nested": (dict(mean="[" * 100000 + "]" * 100000), "'cli.mean' is damaged"),
    "mean an object": (dict(mean='{"a": 1}'), "'cli.mean' is damaged"),
    "features short": (dict(features='["x"]'), "'cli.features' is damaged: it has 1 names for a model of 2"),
    "features numbers": (dict(features="[1, 2]"), "'cli.features' is damaged: it must be a list of names"),
    "features twice": (dict(features='["x", "x"]'), "'cli.features' is damaged: it names the same thing twice"),
    "features missing": (dict(features=None), "'cli.features'"),
    "classes three": (dict(classes='["a", "b", "c"]'), "the metadata names 3 classes for 1 outputs"),
    "classes numbers": (dict(classes="[1, 2]"), "'cli.classes' is damaged: it must be a list of names"),
    "classes twice": (dict(classes='["a", "a"]'), "'cli.classes' is damaged: it names the same thing twice"),
    "classes missing": (dict(classes=None), "'cli.classes'"),
    "loss unknown": (dict(loss="hinge"), "unknown loss 'hinge' in the metadata"),
    "target empty": (dict(target=""), "'cli.target' is damaged: it must be a non-empty text"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_metadata(trained, capsys, case):
    changes, fragment = DAMAGED[case]
    rewrite(trained.model, **changes)
    err = fails(["predict", trained.model, trained.data], capsys, f"{trained.model}: ", fragment)
    assert err.startswith("micrograd-c predict: error: ")


def test_damaged_mse_metadata(tmp_path, capsys):
    data = write_csv(tmp_path / "r.csv", ["x", "t"], [[str(i), str(2 * i)] for i in range(20)])
    model = str(tmp_path / "r.st")
    assert run(["train", data, "-t", "t", "--loss", "mse", "--epochs", "2", "-o", model, "-q"], capsys)[0] == 0
    for changes, fragment in (
        (dict(target_std="0"), "'cli.target_std' is damaged: it is 0.0"),
        (dict(target_std='"big"'), "'cli.target_std' is damaged: 'big' is not a number"),
        (dict(target_mean="abc"), "'cli.target_mean' is damaged: 'abc' is not JSON"),
        (dict(target_mean="1e999"), "'cli.target_mean' is damaged: it is inf"),
    ):
        assert run(["train", data, "-t", "t", "--loss", "mse", "--epochs", "2", "-o", model, "-q"], capsys)[0] == 0
        rewrite(model, **changes)
        fails(["predict", model, data], capsys, fragment)


def test_damaged_metadata_subprocess(trained):
    rewrite(trained.model, std="[0, 0]")
    one_line(run_module("predict", trained.model, trained.data), 1, "'cli.std' is damaged")
    rewrite(trained.model, std="[1, 1]", mean='["a", 1]')
    one_line(run_module("predict", trained.model, trained.data), 1, "'cli.mean' is damaged")


# ---- files in the wrong place, full disks, other encodings ----


def test_csv_given_as_the_model(trained):
    result = run_module("predict", "d.csv", "d.csv", cwd=trained.dir)
    line = one_line(result, 1, "d.csv is not a model file", "did you swap MODEL and DATA.csv?")
    assert line.count("d.csv") == 1  # the path once
    result = run_module("predict", trained.data, trained.model)  # swapped
    one_line(result, 1, f"{trained.data} is not a model file", "did you swap MODEL and DATA.csv?")
    (trained.dir / "junk.bin").write_bytes(b"\xff\x00" * 10)
    one_line(run_module("predict", "junk.bin", "d.csv", cwd=trained.dir), 1, "junk.bin is not a model file")
    one_line(run_module("predict", ".", "d.csv", cwd=trained.dir), 1, "cannot read .")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_full_disk(trained):
    with open("/dev/full", "w") as full:
        result = run_module("predict", trained.model, trained.data, stdout=full)
    one_line(result, 1, "cannot write the predictions to stdout: No space left on device")
    one_line(
        run_module("predict", trained.model, trained.data, "--output", "/dev/full"),
        1,
        "cannot write /dev/full: No space left on device",
    )
    one_line(
        run_module(
            "train",
            trained.data,
            "-t",
            "label",
            "--loss",
            "bce",
            "--epochs",
            "1",
            "-q",
            "--out",
            str(trained.dir / "no" / "such" / "dir.st"),
        ),
        1,
        "cannot write",
    )


def test_latin1_names_the_file(tmp_path):
    (tmp_path / "latin.csv").write_bytes("x,y,label\n1,2,caf\xe9\n3,4,b\n".encode("latin-1"))
    one_line(
        run_module("train", "latin.csv", "-t", "label", "--loss", "bce", cwd=tmp_path),
        1,
        "latin.csv: line 2, column 3: the text is not UTF-8",
    )
    (tmp_path / "head.csv").write_bytes("x,caf\xe9\n1,2\n".encode("latin-1"))
    one_line(
        run_module("train", "head.csv", "-t", "x", "--loss", "mse", cwd=tmp_path),
        1,
        "head.csv: the header, column 2: the text is not UTF-8",
    )
    one_line(run_module("predict", "model.safetensors", "head.csv", cwd=tmp_path), 1, "cannot read")


def test_latin1_in_predict(trained):
    (trained.dir / "latin.csv").write_bytes("x,\xff\n1,2\n".encode("latin-1"))
    one_line(
        run_module("predict", trained.model, "latin.csv", cwd=trained.dir),
        1,
        "latin.csv: the header, column 2: the text is not UTF-8",
    )


# ---- reading a CSV a piece at a time gives what reading it whole gives ----

TRICKY = {
    "quoted newlines": "a,b,label\n" + '1,"2",x\n"3",4,"y\r\nz"\n5,6,"q""uote"\n' * 3,
    "not a number in a quote": 'a,b,label\n1,"2",x\n"3\n",4,"y\r\nz"\n',
    "crlf and blank lines": "a,b,label\r\n\r\n1,2,x\r\n3,4,y\r\n\n5,6,x\r\n7,8,y",
    "lone cr": "a,b,label\r1,2,x\r3,4,y\r",
    "bom and spaces": "\ufeffa,b,label\n 1 ,2, x\n3,4,x \n5,6,y\n",
    "stray quote": 'a,b,label\n1,2,5"inch\n3,4,"x\ny"\n5,6,x\n7,8,5"inch\n',
    "no final newline": "a,b,label\n1,2,x\n3,4,y",
}


def both_ways(path, monkeypatch, piece_bytes, loss="cross_entropy", target="label"):
    """(whole-file result, piece-by-piece result, whether that fell back to the whole file): each result the
    _Columns, or the message of the CliError."""
    args = SimpleNamespace(data=str(path), target=target, features=None, loss=loss, quiet=True)
    results, whole_files = [], []  # whole_files: whether the pieces gave up and the whole file was read
    for size in (None, piece_bytes):
        try:
            if size is None:
                results.append(cli._columns_of_table(args, _core.read_csv(str(path)))[0])
            else:
                monkeypatch.setattr(cli, "PIECE_BYTES", size)
                monkeypatch.setattr(cli, "_read_csv", lambda *a: whole_files.append(a) or _core.read_csv(*a))
                results.append(cli._training_columns(args)[0])
        except cli.CliError as e:
            results.append(str(e))
    return results + [bool(whole_files)]


def same_columns(whole, pieces):
    if isinstance(whole, str) or isinstance(pieces, str):
        assert whole == pieces
        return
    assert whole.header == pieces.header and whole.rows == pieces.rows
    assert np.array_equal(whole.X, pieces.X) and np.array_equal(whole.lines, pieces.lines)
    if whole.y is not None:
        assert np.array_equal(whole.y, pieces.y)
    else:
        labels = lambda d: [d.distinct[int(k)] for k in d.codes]  # noqa: E731
        assert labels(whole) == labels(pieces)


@pytest.mark.parametrize("case", sorted(TRICKY))
@pytest.mark.parametrize("piece_bytes", [1, 5, 16, 1 << 20])
def test_pieces_match_whole_file(tmp_path, monkeypatch, case, piece_bytes):
    path = tmp_path / "t.csv"
    path.write_bytes(TRICKY[case].encode())
    whole, pieces, fell_back = both_ways(path, monkeypatch, piece_bytes)
    same_columns(whole, pieces)
    # errors are reported from the whole file; a stray quote in an unquoted field can make a piece fail
    assert fell_back == (isinstance(whole, str) or (case == "stray quote" and piece_bytes < 64))


CELL = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.sampled_from(["1e308", "-1.7e308", " 2 ", "5e-324"]).map(lambda v: f'"{v}"'),
)
LABEL = st.sampled_from(["a", '"b,c"', '"d\nd"', '"e""e"', "f", " a", '"g\r\nh"'])
ROW = st.tuples(CELL, CELL, LABEL).map(",".join)


@given(
    rows=st.lists(st.tuples(ROW, st.sampled_from(["\n", "\r\n", "\r", "\n\n"])), min_size=1, max_size=40),
    piece_bytes=st.integers(1, 64),
)
def test_pieces_match_whole_file_random(tmp_path_factory, rows, piece_bytes):
    text = "a,b,label\n" + "".join(row + end for row, end in rows)
    path = tmp_path_factory.mktemp("csv") / "r.csv"
    path.write_bytes(text.encode())
    monkeypatch = pytest.MonkeyPatch()
    try:
        whole, pieces, fell_back = both_ways(path, monkeypatch, piece_bytes)
        same_columns(whole, pieces)
        assert fell_back == isinstance(whole, str)
    finally:
        monkeypatch.undo()


def test_piece_errors_name_the_files_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "PIECE_BYTES", 64)
    rows = [[str(i), str(i % 3), "ab"[i % 2]] for i in range(500)]
    rows[300][1] = "abc"
    data = write_csv(tmp_path / "n.csv", ["x", "y", "label"], rows)
    fails(
        ["train", data, "-t", "label", "--loss", "bce", "-q"],
        capsys,
        f"{data}: line 302, column 'y': 'abc' is not a number",
    )
    text = (tmp_path / "n.csv").read_text().replace("abc", "1").splitlines()
    text[400] = "1,2"
    (tmp_path / "n.csv").write_text("\n".join(text) + "\n")
    fails(["train", data, "-t", "label", "--loss", "bce", "-q"], capsys, "line 401: 2 fields, the header has 3")
    rows = [[str(i), "1", "ab"[i % 2]] for i in range(500)]
    rows[450][2] = " "
    data = write_csv(tmp_path / "e.csv", ["x", "y", "label"], rows)
    fails(
        ["train", data, "-t", "label", "--loss", "bce", "-q"],
        capsys,
        "line 452, column 'label': the cell is empty, a label is needed",
    )
    data = write_csv(tmp_path / "k.csv", ["x", "label"], [[str(i), str(i)] for i in range(cli.MAX_DISTINCT + 5)])
    fails(
        ["train", data, "-t", "label", "--loss", "cross_entropy", "-q"],
        capsys,
        f"column 'label' has more than {cli.MAX_DISTINCT} distinct values",
    )


# ---- memory: a large CSV is kept in arrays, not in Python lists ----

PEAK_DRIVER = textwrap.dedent("""
    import sys

    def peak():  # this process's own high-water mark (ru_maxrss would count the parent's pages at spawn)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    if sys.argv[1] == "baseline":
        import micrograd_c, numpy
        print(peak())
    else:
        from micrograd_c import cli
        status = cli.main(sys.argv[1:])
        print(peak() if status == 0 else -status)
""")


def child_peak(tmp_path, *args):
    driver = tmp_path / "peak_driver.py"
    driver.write_text(PEAK_DRIVER)
    result = subprocess.run(
        [sys.executable, str(driver), *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0 and "error" not in result.stderr, result.stderr
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc (Linux)")
def test_train_peak_memory_on_a_large_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(330_000, 10))
    label = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    with open(tmp_path / "big.csv", "w") as f:
        f.write(",".join([f"f{i}" for i in range(10)] + ["label"]) + "\n")
        np.savetxt(f, np.column_stack([X, label]), fmt=["%.6f"] * 10 + ["%d"], delimiter=",")
    del X, label
    size = os.path.getsize(tmp_path / "big.csv")
    assert size >= 30e6
    baseline = child_peak(tmp_path, "baseline")  # python with micrograd_c and numpy imported
    peak = child_peak(
        tmp_path,
        "train",
        "big.csv",
        "-t",
        "label",
        "--loss",
        "bce",
        "--hidden",
        "2",
        "--epochs",
        "1",
        "-q",
        "-o",
        "m.st",
    )
    margin = 16 << 20
    print(
        f"CSV {size / 2**20:.1f} MiB: peak resident {peak / 2**20:.1f} MiB ({peak / size:.2f}x the file), "
        f"baseline {baseline / 2**20:.1f} MiB, limit 3x + baseline + {margin >> 20} MiB = "
        f"{(3 * size + baseline + margin) / 2**20:.1f} MiB"
    )
    assert peak <= 3 * size + baseline + margin
    assert MLP.load(str(tmp_path / "m.st")).metadata["cli.features"].startswith('["f0"')


def test_threads_above_the_cores_is_one_note_line(tmp_path):
    """fit caps threads at the core count with a warning; the command says it once, in its own words."""
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    cores = _core.num_cores()
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "micrograd_c",
            "train",
            str(data),
            "-t",
            "y",
            "--loss",
            "bce",
            "--epochs",
            "2",
            "--threads",
            str(cores + 7),
            "-o",
            str(tmp_path / "m.st"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "threads" in line]
    assert notes == [f"note: --threads {cores + 7} is more than the {cores} cores; using {cores}"]


def test_reading_a_big_csv_shows_progress(tmp_path, monkeypatch, capsys):
    """Past cli.SLOW_CSV_BYTES the command says how much of the file it has read (here lowered to 1 MiB)."""
    monkeypatch.setattr(cli, "SLOW_CSV_BYTES", 1 << 20)
    rows = [[i % 7, (i * 13) % 11, i % 2] for i in range(400_000)]
    data = write_csv(tmp_path / "big.csv", ["x", "y", "label"], rows)
    mib = os.path.getsize(data) >> 20
    assert mib >= 2
    assert (
        cli.main(
            [
                "train",
                data,
                "-t",
                "label",
                "--loss",
                "bce",
                "--hidden",
                "2",
                "--epochs",
                "1",
                "-o",
                str(tmp_path / "m.st"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"reading big.csv: MiB {mib}/{mib}" in err
    monkeypatch.setattr(cli, "SLOW_CSV_BYTES", 1 << 40)  # a small file says nothing of reading
    assert (
        cli.main(
            [
                "train",
                data,
                "-t",
                "label",
                "--loss",
                "bce",
                "--hidden",
                "2",
                "--epochs",
                "1",
                "-o",
                str(tmp_path / "m.st"),
            ]
        )
        == 0
    )
    assert "reading" not in capsys.readouterr().err
