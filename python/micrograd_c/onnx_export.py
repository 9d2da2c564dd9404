"""Export an ``MLP`` to ONNX: ``model.to_onnx("model.onnx")`` or ``export(model, "model.onnx")``.

The graph takes ``input`` of shape [N, n_inputs] and gives ``output`` of shape [N, n_outputs]: one
``Gemm`` per layer (weight [out, in] with transB=1, and bias [out], as initializers), followed by ``Relu``
for the layers with ReLU neurons (all but the last in ``MLP(nin, nouts)``). float64 by default, so a
runtime gives the model's own numbers to rounding; ``dtype="float32"`` for runtimes without float64 Gemm.

Needs the ``onnx`` package: ``pip install micrograd-c[onnx]`` (which also installs onnxruntime to run it).
"""

__all__ = ["export", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "exporting to ONNX needs the onnx package: pip install 'micrograd-c[onnx]' (or pip install onnx)"
        ) from exc
    return onnx


def _layers(model):
    """[(weights as rows, biases, relu?)] per layer, read from the model's Values."""
    layers = getattr(model, "layers", None)
    if not layers:
        raise TypeError(f"export needs an MLP (a model with .layers of neurons), not {type(model).__name__}")
    out = []
    n_in = None
    for i, layer in enumerate(layers):
        neurons = layer.neurons
        nonlins = {bool(n.nonlin) for n in neurons}
        if len(nonlins) != 1:
            raise ValueError(f"layer {i} mixes ReLU and linear neurons: ONNX export needs one activation per layer")
        weights = [[float(w.data) for w in n.w] for n in neurons]
        widths = {len(row) for row in weights}
        if len(widths) != 1 or (n_in is not None and widths != {n_in}):
            expected = "the same number" if n_in is None else n_in
            raise ValueError(f"layer {i} has neurons with {sorted(widths)} inputs; expected {expected}")
        n_in = len(neurons)
        out.append((weights, [float(n.b.data) for n in neurons], nonlins.pop()))
    return out


def export(model, path=None, opset=DEFAULT_OPSET, dtype="float64"):
    """Write ``model`` (an MLP) as an ONNX model to ``path`` (a path or a binary file; None: don't write).

    opset: the ONNX opset (default 17); dtype: "float64" (default) or "float32".
    Returns the ``onnx.ModelProto``, which passes ``onnx.checker.check_model``.
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper

    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    elem = TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT
    layers = _layers(model)
    n_inputs = len(layers[0][0][0])
    n_outputs = len(layers[-1][1])

    nodes, initializers = [], []
    current = "input"
    for i, (weights, biases, relu) in enumerate(layers):
        last = i == len(layers) - 1
        w_name, b_name = f"layer{i}.weight", f"layer{i}.bias"
        initializers.append(
            helper.make_tensor(w_name, elem, [len(weights), len(weights[0])], [w for row in weights for w in row])
        )
        initializers.append(helper.make_tensor(b_name, elem, [len(biases)], biases))
        gemm_out = "output" if last and not relu else f"layer{i}.linear"
        nodes.append(helper.make_node("Gemm", [current, w_name, b_name], [gemm_out], name=f"layer{i}.gemm", transB=1))
        current = gemm_out
        if relu:
            relu_out = "output" if last else f"layer{i}.relu"
            nodes.append(helper.make_node("Relu", [current], [relu_out], name=f"layer{i}.relu"))
            current = relu_out

    graph = helper.make_graph(
        nodes,
        "micrograd_c_mlp",
        [helper.make_tensor_value_info("input", elem, ["N", n_inputs])],
        [helper.make_tensor_value_info("output", elem, ["N", n_outputs])],
        initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(graph, opset_imports=opsets, producer_name="micrograd-c", doc_string=repr(model))
    # the lowest IR version for the opset, so that older runtimes load the file too
    onnx_model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(onnx_model)
    if path is not None:
        onnx.save(onnx_model, path)
    return onnx_model
