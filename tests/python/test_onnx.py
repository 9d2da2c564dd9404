"""ONNX export of an MLP: the checker accepts the model and onnxruntime computes the model's own outputs."""

import random
import sys

import pytest
from _helpers import require
from micrograd_c.engine import Value
from micrograd_c.nn import MLP

onnx = require("onnx")
ort = require("onnxruntime")
np = require("numpy")


def run(path, inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["output"]
    return session.run(None, {"input": inputs})[0]


def forward(model, inputs):
    """The model on Values, row by row, as a [N, nout] list."""
    rows = []
    for row in inputs.tolist():
        out = model([Value(x) for x in row])
        rows.append([v.data for v in (out if isinstance(out, list) else [out])])
    return rows


@pytest.mark.parametrize("nin, nouts", [(2, [16, 16, 1]), (3, [8, 4]), (5, [1]), (4, [6, 1, 3])])
def test_export_matches_the_model(tmp_path, nin, nouts):
    random.seed(nin * 100 + len(nouts))
    model = MLP(nin, nouts)
    for p in model.parameters():  # biases start at 0: give them values too
        p.data += random.uniform(-0.5, 0.5)
    path = tmp_path / "model.onnx"
    proto = model.to_onnx(path)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.SerializeToString() == proto.SerializeToString()
    assert [n.op_type for n in loaded.graph.node].count("Gemm") == len(nouts)
    assert [n.op_type for n in loaded.graph.node].count("Relu") == len(nouts) - 1

    inputs = np.random.default_rng(nin).normal(size=(64, nin)) * 2
    got = run(path, inputs)
    assert got.dtype == np.float64 and got.shape == (64, nouts[-1])
    expected = np.array(forward(model, inputs))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    if hasattr(model, "predict"):  # the batched forward in C
        np.testing.assert_allclose(got, np.array(model.predict(inputs)), rtol=1e-9, atol=1e-9)


def test_trained_demo_model_and_float32(tmp_path):
    from micrograd_c import demo

    model, X, y, _ = demo.train(steps=3, source="builtin")
    inputs = np.array(X)
    model.to_onnx(tmp_path / "demo.onnx")
    got = run(tmp_path / "demo.onnx", inputs)
    np.testing.assert_allclose(got[:, 0], [model(row).data for row in X], rtol=1e-9, atol=1e-9)
    # float32 for runtimes without float64 kernels: the same to float32 precision
    model.to_onnx(tmp_path / "demo32.onnx", dtype="float32")
    got32 = run(tmp_path / "demo32.onnx", inputs.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, got, rtol=1e-4, atol=1e-4)


def test_export_to_a_file_object_and_opset(tmp_path):
    import io

    model = MLP(2, [3, 1])
    buffer = io.BytesIO()
    proto = model.to_onnx(buffer, opset=13)
    assert proto.opset_import[0].version == 13
    assert onnx.load_from_string(buffer.getvalue()) == proto


def test_bad_arguments(tmp_path):
    model = MLP(2, [3, 1])
    with pytest.raises(ValueError, match="dtype"):
        model.to_onnx(tmp_path / "m.onnx", dtype="int8")
    model.layers[0].neurons[1].nonlin = False
    with pytest.raises(ValueError, match="mixes ReLU and linear"):
        model.to_onnx(tmp_path / "m.onnx")


def test_without_onnx(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"micrograd-c\[onnx\]"):
        MLP(2, [1]).to_onnx(tmp_path / "m.onnx")
