"""The command line (micrograd-c train / predict) and the CSV reader under it, end to end.

Data sets are generated small and separable, so a few dozen epochs learn them; every command is run
both in-process (cli.main) and, for what a user sees (exit status, stderr), as `python -m micrograd_c`.
"""

import csv
import io
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import one_line_error, write_csv
from micrograd_c import _core, cli
from micrograd_c.nn import MLP

# ---- helpers ----


def blobs(n=60, classes=("a", "b"), seed=0):
    """Two features, one well-separated cloud per class; raw scales far from 1 (standardising matters)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = i % len(classes)
        rows.append([f"{100 + 40 * k + rng.gauss(0, 4):.4f}", f"{0.01 * k + rng.gauss(0, 0.001):.6f}", classes[k]])
    return rows


def regression(n=80, seed=0):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.uniform(-2, 2), rng.uniform(0, 1000)
        rows.append([repr(a), repr(b), repr(30000 + 5000 * a + 20 * b)])
    return rows


def run(argv, capsys):
    """cli.main in this process: (exit status, stdout, stderr)."""
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def run_module(*args, cwd=None):
    """python -m micrograd_c ...: what a user sees."""
    return subprocess.run(
        [sys.executable, "-m", "micrograd_c", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def read_output(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def assert_one_line_error(result, *fragments):
    assert result.stdout == ""
    one_line_error(result, 1, *fragments)


# ---- the CSV reader from Python ----


def test_parse_csv():
    table = _core.parse_csv(b'\xef\xbb\xbfa,"b, quoted",label\r\n1,2.5,cat\r\n-3,"4e2","say ""hi""\nagain"')
    assert repr(table) == "<Csv: 2 rows, 3 columns>"
    assert table.header == ["a", "b, quoted", "label"]
    assert len(table) == table.num_rows == 2 and table.num_cols == 3
    assert table.rows() == [["1", "2.5", "cat"], ["-3", "4e2", 'say "hi"\nagain']]
    assert table.row(-1) == table.rows()[1]
    assert table.column("label") == ["cat", 'say "hi"\nagain'] == table.column(2) == table.column(-1)
    assert table.column_index("b, quoted") == 1
    assert table.matrix(["b, quoted", 0]) == [[2.5, 1.0], [400.0, -3.0]]
    assert table.matrix([]) == [[], []]
    assert [table.line(0), table.line(1)] == [2, 3]
    assert _core.parse_csv("x,y\n1,2").rows() == [["1", "2"]]  # str works too
    assert _core.parse_csv(bytearray(b"x\n1\n")).matrix([0]) == [[1.0]]
    assert _core.parse_csv("x\n", allow_no_rows=True).matrix(["x"]) == []


def test_parse_csv_errors():
    table = _core.parse_csv("a,age\n1,2\n3,abc\n4,nan\n")
    with pytest.raises(ValueError, match=r"^line 3, column 'age': 'abc' is not a number$"):
        table.matrix(["a", "age"])
    assert table.matrix(["a"]) == [[1.0], [3.0], [4.0]]
    with pytest.raises(ValueError, match="no column 'zz': the columns are 'a', 'age'"):
        table.column("zz")
    with pytest.raises(IndexError):
        table.row(3)
    with pytest.raises(IndexError):
        table.column(2)
    with pytest.raises(TypeError):
        table.column(1.5)
    with pytest.raises(TypeError):
        _core.Csv()
    cases = {
        "a,b,c,d\n" + "1,2,3,4\n" * 5 + "1,2,3\n": "line 7: 3 fields, the header has 4",
        'a,b\n1,"open\n2,3\n': "line 2: a quoted field is never closed",
        'a,b\n"x"y,2\n': "line 2: text after the closing quote",
        "": "the file is empty",
        "a,b\n": "line 1: the header is the only row: there is no data",
        "a,b\n1,\0\n": "line 2: a NUL byte",
        "a,a\n1,2\n": "line 1: the column name 'a' appears twice",
    }
    for text, message in cases.items():
        with pytest.raises(ValueError, match=message):
            _core.parse_csv(text.encode())
    with pytest.raises(ValueError, match="line 2: a field is longer than the limit of 1048576 bytes"):
        _core.parse_csv(b"a\n" + b"x" * ((1 << 20) + 1))
    with pytest.raises(ValueError, match="line 2: a field is longer than the limit of 3 bytes"):
        _core.parse_csv("a\n1234\n", max_field=3)
    with pytest.raises(ValueError, match="the input is 7 bytes, more than the limit of 5"):
        _core.parse_csv("a\n1234\n", max_bytes=5)
    with pytest.raises(ValueError, match="line 2, column 1: the text is not UTF-8"):
        _core.parse_csv(b"a\n\xff\n").rows()
    with pytest.raises(ValueError, match="'inf' is not a finite number"):
        _core.parse_csv("x\ninf\n").matrix(["x"])


def test_read_csv_file(tmp_path):
    path = write_csv(tmp_path / "data.csv", ["x", "label"], [["1", "yes"], ["2", "no"]])
    table = _core.read_csv(path)
    assert table.column("label") == ["yes", "no"]
    assert _core.read_csv(Path(path)).matrix(["x"]) == [[1.0], [2.0]]  # path-like
    with pytest.raises(FileNotFoundError) as info:
        _core.read_csv(tmp_path / "missing.csv")
    assert info.value.filename == str(tmp_path / "missing.csv")
    with pytest.raises(IsADirectoryError):
        _core.read_csv(tmp_path)
    (tmp_path / "ragged.csv").write_text("x,y\n1,2\n3\n")
    with pytest.raises(ValueError, match="line 3: 1 field, the header has 2"):
        _core.read_csv(tmp_path / "ragged.csv")
    with pytest.raises(ValueError, match="larger than the limit of 4 bytes"):
        _core.read_csv(path, max_bytes=4)


# ---- train and predict ----


@pytest.mark.parametrize("loss", ["svm", "bce", "cross_entropy"])
def test_train_predict_classification(tmp_path, capsys, loss):
    classes = ("a", "b", "c") if loss == "cross_entropy" else ("a", "b")
    data = write_csv(tmp_path / "train.csv", ["x", "y", "label"], blobs(classes=classes))
    model = str(tmp_path / "model.safetensors")
    status, out, err = run(
        ["train", data, "--target", "label", "--loss", loss, "--epochs", "60", "--out", model, "--quiet"], capsys
    )
    assert (status, out, err) == (0, "", "")
    status, out, err = run(["predict", model, data], capsys)
    assert status == 0
    header, rows = read_output(out)
    if loss == "svm":
        assert header == ["label", "score"]
        assert all((float(score) > 0) == (label == "b") for label, score in rows)
    else:
        assert header == ["label"] + [f"p({k})" for k in classes]
        for row in rows:
            probabilities = [float(p) for p in row[1:]]
            assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-12)
            assert row[0] == classes[probabilities.index(max(probabilities))]
    truth = [row[2] for row in blobs(classes=classes)]
    assert len(rows) == len(truth)
    assert sum(row[0] == t for row, t in zip(rows, truth)) >= 0.95 * len(truth)
    assert err.startswith("accuracy ") and "against the 'label' column" in err  # the file has the target


def test_train_predict_mse(tmp_path, capsys):
    data = write_csv(tmp_path / "houses.csv", ["rooms", "area", "price"], regression())
    model = str(tmp_path / "houses.safetensors")
    status, out, _ = run(
        ["train", data, "-t", "price", "--loss", "mse", "--epochs", "300", "-o", model, "--hidden", "8"], capsys
    )
    assert status == 0 and "saved" in out
    status, out, err = run(["predict", model, data, "--quiet"], capsys)
    assert status == 0 and err == ""
    header, rows = read_output(out)
    assert header == ["price"]
    truth = [float(row[2]) for row in regression()]
    predicted = [float(row[0]) for row in rows]
    rmse = math.sqrt(sum((p - t) ** 2 for p, t in zip(predicted, truth)) / len(truth))
    spread = max(truth) - min(truth)
    assert rmse < 0.05 * spread  # predictions come back in the target's own units

    # the metadata that made it possible: features, the scaling of the inputs and of the target
    loaded = MLP.load(model)
    assert json.loads(loaded.metadata["cli.features"]) == ["rooms", "area"]
    area = [float(row[1]) for row in regression()]
    mean = sum(area) / len(area)
    assert math.isclose(json.loads(loaded.metadata["cli.mean"])[1], mean, rel_tol=1e-12)
    assert math.isclose(json.loads(loaded.metadata["cli.target_mean"]), sum(truth) / len(truth), rel_tol=1e-12)
    assert loaded.metadata["cli.loss"] == "mse" and loaded.metadata["cli.target"] == "price"


def test_string_labels_subprocess(tmp_path):
    """Labels that are words, one with a comma in it, through `python -m micrograd_c`."""
    classes = ("red", "green", "dark, blue")
    write_csv(tmp_path / "colours.csv", ["x", "y", "colour"], blobs(n=90, classes=classes, seed=3))
    new = blobs(n=9, classes=classes, seed=4)
    write_csv(tmp_path / "new.csv", ["y", "x"], [[r[1], r[0]] for r in new])  # other order, no target
    result = run_module(
        "train",
        "colours.csv",
        "--target",
        "colour",
        "--loss",
        "cross_entropy",
        "--epochs",
        "80",
        "--hidden",
        "16,16",
        "--out",
        "colours.safetensors",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 80/80" in result.stderr  # the progress bar (lines when not on a terminal)
    assert "trained MLP(2, [16, 16, 3])" in result.stdout and "accuracy" in result.stdout
    result = run_module("predict", "colours.safetensors", "new.csv", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    header, rows = read_output(result.stdout)
    assert header == ["colour", "p(dark, blue)", "p(green)", "p(red)"]  # sorted labels
    assert [row[0] for row in rows] == [row[2] for row in new]


def test_numeric_labels(tmp_path, capsys):
    """Numbers as class labels sort by value (2 before 10) and come back as written."""
    rows = [[x, y, {"a": "10", "b": "2.0"}[k]] for x, y, k in blobs()]
    data = write_csv(tmp_path / "d.csv", ["x", "y", "k"], rows)
    model = str(tmp_path / "m.st")
    for loss in ("bce", "svm"):
        assert run(["train", data, "-t", "k", "--loss", loss, "--epochs", "40", "-o", model, "-q"], capsys)[0] == 0
        status, out, err = run(["predict", model, data], capsys)
        header, predicted = read_output(out)
        assert header == (["k", "p(2.0)", "p(10)"] if loss == "bce" else ["k", "score"])
        assert {row[0] for row in predicted} == {"10", "2.0"}
        assert "accuracy 100.0%" in err


def test_options(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["id", "x", "y", "label"], [[str(i)] + row for i, row in enumerate(blobs())])
    model = str(tmp_path / "m.st")
    outputs = []
    for threads in ("1", "2"):
        argv = [
            "train",
            data,
            "-t",
            "label",
            "--loss",
            "bce",
            "--features",
            "x,y",
            "--hidden",
            "4,4",
            "--epochs",
            "20",
            "--batch-size",
            "16",
            "--optimizer",
            "sgd",
            "--lr",
            "0.01",
            "--l2",
            "1e-4",
            "--seed",
            "7",
            "--threads",
            threads,
            "--no-standardize",
            "--out",
            model,
            "--quiet",
        ]
        assert run(argv, capsys)[0] == 0
        outputs.append(run(["predict", model, data, "--quiet"], capsys)[1])
    assert outputs[0] == outputs[1]  # any number of threads: the same model
    loaded = MLP.load(model)
    assert json.loads(loaded.metadata["cli.features"]) == ["x", "y"]
    assert "cli.mean" not in loaded.metadata
    assert [len(layer.neurons) for layer in loaded.layers] == [4, 4, 1]
    out_file = tmp_path / "predictions.csv"
    assert run(["predict", model, data, "--output", str(out_file)], capsys)[1] == ""
    assert out_file.read_text() == outputs[0]
    # no hidden layer: logistic regression
    assert run(["train", data, "-t", "label", "--loss", "bce", "--hidden", "none", "-o", model, "-q"], capsys)[0] == 0
    assert [len(layer.neurons) for layer in MLP.load(model).layers] == [1]


@pytest.mark.parametrize("init", [None, "micrograd", "xavier_uniform"])
def test_init_draws_the_mlps_weights(tmp_path, capsys, init):
    # an SGD step of 1e-300 leaves every weight as it was drawn (a bias moves from 0 to ~1e-301): the file
    # holds the initial model
    data = write_csv(tmp_path / "d.csv", ["x", "y", "label"], blobs())
    model = str(tmp_path / "m.st")
    argv = [
        "train",
        data,
        "-t",
        "label",
        "--loss",
        "bce",
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--lr",
        "1e-300",
        "--seed",
        "5",
        "-o",
        model,
        "-q",
    ]
    assert run(argv + (["--init", init] if init else []), capsys)[0] == 0
    random.seed(5)
    want = MLP(2, [16, 16, 1], init=init or "kaiming_uniform")  # the default: Kaiming's, for ReLU layers
    got = [p.data for p in MLP.load(model).parameters()]
    assert got == pytest.approx([p.data for p in want.parameters()], rel=0, abs=1e-290)


def test_progress_and_summary(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["x", "y", "label"], blobs())
    status, out, err = run(
        ["train", data, "-t", "label", "--loss", "svm", "--epochs", "5", "-o", str(tmp_path / "m.st")], capsys
    )
    assert status == 0
    assert "epoch 1/5 loss" in err and "epoch 5/5" in err
    assert out.splitlines() == [out.splitlines()[0], f"saved {tmp_path / 'm.st'}"]
    assert out.startswith("trained MLP(2, [16, 16, 1]) on 60 rows, 5 epochs: loss ")


def test_predict_edge_cases(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["x", "y", "label"], blobs())
    model = str(tmp_path / "m.st")
    assert run(["train", data, "-t", "label", "--loss", "svm", "--epochs", "3", "-o", model, "-q"], capsys)[0] == 0
    # a header without rows: just the output's header
    empty = write_csv(tmp_path / "empty.csv", ["x", "y"], [])
    assert run(["predict", model, empty], capsys) == (0, "label,score\n", "")
    # a model saved without the command's metadata: every column is an input, raw outputs
    plain = MLP(2, [3, 2])
    plain.save(str(tmp_path / "plain.st"))
    features = write_csv(tmp_path / "f.csv", ["a", "b"], [["1", "2"], ["3", "4"]])
    status, out, _ = run(["predict", str(tmp_path / "plain.st"), features], capsys)
    header, rows = read_output(out)
    assert status == 0 and header == ["output_0", "output_1"]
    assert [[float(v) for v in row] for row in rows] == plain.predict([[1.0, 2.0], [3.0, 4.0]])
    status, _, err = run(["predict", str(tmp_path / "plain.st"), data], capsys)
    assert status == 1 and "the model takes 2 inputs, " in err and "has 3 columns" in err


# ---- errors: one line on stderr, exit status 1, no traceback ----


MALFORMED = {
    "ragged": ("a,b,c,d\n" + "1,2,3,4\n" * 5 + "1,2,3\n", "line 7: 3 fields, the header has 4"),
    "unclosed quote": ('x,y,d\n1,2,3\n1,"2,3\n4,5,6\n', "line 3: a quoted field is never closed"),
    "not a number": ("x,age,d\n1,2,3\n1,2,3\n1,2,3\n1,abc,4\n", "line 5, column 'age': 'abc' is not a number"),
    "nan": ("x,y,d\n1,NaN,3\n", "line 2, column 'y': 'NaN' is not a finite number"),
    "empty": ("", "the file is empty"),
    "header only": ("x,y,d\n", "line 1: the header is the only row: there is no data"),
    "nul byte": ("x,y,d\n1,2\x00,3\n", "line 2: a NUL byte"),
    "quote then text": ('x,y,d\n"1"2,3,4\n', "line 2: text after the closing quote"),
    "empty label": ("x,y,d\n1,2,a\n3,4,\n", "line 3, column 'd': the cell is empty, a label is needed"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_csv(tmp_path, capsys, case):
    text, message = MALFORMED[case]
    (tmp_path / "bad.csv").write_bytes(text.encode())
    status, out, err = run(["train", str(tmp_path / "bad.csv"), "-t", "d", "--loss", "cross_entropy", "-q"], capsys)
    assert status == 1 and out == ""
    assert err.startswith(f"micrograd-c train: error: {tmp_path / 'bad.csv'}: {message}")
    assert err.count("\n") == 1 and err.endswith("\n")


def test_errors_subprocess(tmp_path):
    (tmp_path / "bad.csv").write_text(MALFORMED["ragged"][0])
    assert_one_line_error(
        run_module("train", "bad.csv", "-t", "d", "--loss", "mse", cwd=tmp_path),
        "bad.csv: line 7: 3 fields, the header has 4",
    )
    assert_one_line_error(
        run_module("train", "missing.csv", "-t", "d", "--loss", "mse", cwd=tmp_path),
        "cannot read missing.csv: No such file or directory",
    )
    write_csv(tmp_path / "d.csv", ["x", "y", "label"], blobs())
    assert_one_line_error(
        run_module("train", "d.csv", "-t", "colour", "--loss", "svm", cwd=tmp_path),
        "d.csv has no column 'colour' to use as the target; its columns are 'x', 'y', 'label'",
    )
    assert_one_line_error(
        run_module("predict", "missing.st", "d.csv", cwd=tmp_path), "cannot read missing.st: No such file or directory"
    )
    result = run_module("train", "d.csv", "-t", "label", "--loss", "svm", "--epochs", "2", "-q", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == result.stderr == ""
    write_csv(tmp_path / "partial.csv", ["y", "z"], [["1", "2"]])
    assert_one_line_error(
        run_module("predict", "model.safetensors", "partial.csv", cwd=tmp_path),
        "partial.csv has no column 'x', which the model needs (its features: 'x', 'y')",
    )
    assert_one_line_error(
        run_module("predict", "model.safetensors", "missing.csv", cwd=tmp_path),
        "cannot read missing.csv: No such file or directory",
    )
    assert_one_line_error(
        run_module("predict", "d.csv", "d.csv", cwd=tmp_path),  # not a model, named once
        "error: d.csv is not a model file",
        "did you swap MODEL and DATA.csv?",
    )


def test_target_errors(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", ["x", "y", "label"], blobs(classes=("a", "b", "c")))
    argv = ["train", data, "-t", "label", "-q", "-o", str(tmp_path / "m.st")]
    status, _, err = run(argv + ["--loss", "svm"], capsys)
    assert status == 1 and "the svm loss needs a target with 2 distinct values, column 'label' has 3" in err
    status, _, err = run(argv + ["--loss", "mse"], capsys)
    assert status == 1 and "column 'label': 'a' is not a number" in err
    status, _, err = run(argv + ["--loss", "bce", "--features", "x,label"], capsys)
    assert status == 1 and "--features lists the target 'label'" in err
    status, _, err = run(argv + ["--loss", "bce", "--features", "x,w"], capsys)
    assert status == 1 and "has no feature column 'w'" in err
    one = write_csv(tmp_path / "one.csv", ["x", "label"], [["1", "a"], ["2", "a"]])
    status, _, err = run(["train", one, "-t", "label", "--loss", "cross_entropy", "-q"], capsys)
    assert status == 1 and "column 'label' has a single value 'a': nothing to classify" in err
    only = write_csv(tmp_path / "only.csv", ["label"], [["a"], ["b"]])
    status, _, err = run(["train", only, "-t", "label", "--loss", "svm", "-q"], capsys)
    assert status == 1 and "has no feature columns" in err


def test_bad_usage(capsys):
    for argv in (
        ["train", "d.csv", "--loss", "svm"],
        ["train", "d.csv", "-t", "y", "--loss", "hinge"],
        ["train", "d.csv", "-t", "y", "--loss", "svm", "--epochs", "0"],
        ["train", "d.csv", "-t", "y", "--loss", "svm", "--hidden", "16,x"],
        ["train", "d.csv", "-t", "y", "--loss", "svm", "--lr", "nan"],
        ["train", "d.csv", "-t", "y", "--init", "he"],
        ["predict", "m.st"],
    ):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        assert "error:" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert "train" in capsys.readouterr().err


# ---- help ----


def test_help_mentions_every_option():
    train = run_module("train", "--help")
    assert train.returncode == 0
    for option in (
        "--target",
        "--loss",
        "--features",
        "--hidden",
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--lr",
        "--l2",
        "--init",
        "--seed",
        "--threads",
        "--no-standardize",
        "--out",
        "--quiet",
        "svm",
        "mse",
        "bce",
        "cross_entropy",
        "sgd",
        "adam",
        "adamw",
        "example:",
    ):
        assert option in train.stdout, option
    assert "python -m micrograd_c train iris.csv --target species" in train.stdout
    predict = run_module("predict", "--help")
    for option in ("--output", "--quiet", "MODEL", "DATA.csv", "example:"):
        assert option in predict.stdout, option
    top = run_module("--help")
    assert top.returncode == 0 and "train" in top.stdout and "predict" in top.stdout and "demo" in top.stdout
    # every option of the parser has help text
    parser = cli.build_parser()
    for action in parser._subparsers._group_actions[0].choices["train"]._actions:
        assert action.help, action


def test_console_script(tmp_path):
    script = Path(sys.executable).with_name("micrograd-c")
    if not script.exists():
        pytest.skip("the package is not installed with its scripts here")
    result = subprocess.run([str(script), "train", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: micrograd-c train")


@pytest.mark.parametrize(
    "rows,loss",
    [
        (["0", "1", "1", "0"], "bce"),
        (["yes", "no", "no", "yes"], "bce"),
        (["0", "1", "2", "1", "0", "2"], "cross_entropy"),
        (["setosa", "virginica", "versicolor", "setosa"], "cross_entropy"),
        (["1.5", "2.7", "0.1", "3.3"], "mse"),
        ([str(i) for i in range(40)], "mse"),
    ],
)
def test_loss_is_inferred_when_left_out(tmp_path, rows, loss):
    data = tmp_path / "d.csv"
    data.write_text("a,y\n" + "".join(f"{i},{label}\n" for i, label in enumerate(rows)))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "micrograd_c",
            "train",
            str(data),
            "-t",
            "y",
            "--epochs",
            "1",
            "-o",
            str(tmp_path / "m.st"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"note: --loss {loss}, inferred from the 'y' column" in done.stderr
    assert MLP.load(tmp_path / "m.st").metadata["cli.loss"] == loss
