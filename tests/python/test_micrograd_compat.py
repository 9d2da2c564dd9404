"""micrograd_c as a drop-in for the micrograd package: same weights from the same seed, same reprs, same
API, the same training run of micrograd's demo, and what micrograd's users do with its graphs."""

import gc
import math
import random

import micrograd_c
import micrograd_c.engine
import micrograd_c.nn
import pytest
from _helpers import demo_loop, readme_expression, require, trace

micrograd = require("micrograd")
MG = require("micrograd.nn")
MGValue = require("micrograd.engine").Value
np = require("numpy")
sklearn_datasets = require("sklearn.datasets")

MC = micrograd_c.nn


def rel_close(a, b, rel=1e-12):
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


# ---- same seed, same model ----------------------------------------------------------------------------

SHAPES = [(2, [16, 16, 1]), (3, [4, 4, 1]), (1, [1]), (5, [8, 3]), (4, [6, 6, 6, 2]), (2, [16, 1])]


@pytest.mark.parametrize("seed", [0, 1, 1337, 2**31 - 1])
@pytest.mark.parametrize("nin, nouts", SHAPES)
def test_same_seed_gives_identical_weights(seed, nin, nouts):
    random.seed(seed)
    reference = MG.MLP(nin, nouts)
    random.seed(seed)
    model = MC.MLP(nin, nouts)
    assert [p.data for p in model.parameters()] == [p.data for p in reference.parameters()]
    assert all(isinstance(p.data, float) for p in model.parameters())
    # and the stream is left in the same place: what follows the model is drawn identically
    next_draw = random.random()
    random.seed(seed)
    MG.MLP(nin, nouts)
    assert next_draw == random.random()


def test_neuron_and_layer_draw_like_micrograd():
    random.seed(5)
    ref_neuron, ref_layer = MG.Neuron(3), MG.Layer(3, 4, nonlin=False)
    random.seed(5)
    neuron, layer = MC.Neuron(3), MC.Layer(3, 4, nonlin=False)
    assert [p.data for p in neuron.parameters()] == [p.data for p in ref_neuron.parameters()]
    assert [p.data for p in layer.parameters()] == [p.data for p in ref_layer.parameters()]


def test_reprs_equal_micrograds():
    random.seed(0)
    ref = MG.MLP(2, [16, 16, 1])
    random.seed(0)
    model = MC.MLP(2, [16, 16, 1])
    assert repr(model) == repr(ref)
    assert repr(model).startswith("MLP of [Layer of [ReLUNeuron(2), ReLUNeuron(2),")
    assert repr(model).endswith("Layer of [LinearNeuron(16)]]")
    assert repr(model.layers[0]) == repr(ref.layers[0])
    assert repr(MC.Neuron(2)) == "ReLUNeuron(2)"
    assert repr(MC.Neuron(16, nonlin=False)) == "LinearNeuron(16)"
    assert repr(MC.Layer(2, 2)) == "Layer of [ReLUNeuron(2), ReLUNeuron(2)]"


def test_value_repr():
    v = micrograd_c.Value(2.5)
    assert repr(v) == "Value(data=2.5, grad=0.0)"
    (v * v).backward()
    assert repr(v) == "Value(data=2.5, grad=5.0)"


def test_parameters_order_and_count():
    random.seed(3)
    model = MC.MLP(2, [16, 16, 1])
    params = model.parameters()
    assert len(params) == 337
    assert len(set(map(id, params))) == 337
    # micrograd's order: layer by layer, neuron by neuron, the weights then the bias
    first = model.layers[0].neurons[0]
    assert params[:3] == [first.w[0], first.w[1], first.b]
    last = model.layers[-1].neurons[0]
    assert params[-17:] == last.w + [last.b]
    assert all(params[k] is p for k, p in enumerate(p for layer in model.layers for p in layer.parameters()))
    assert MC.Module().parameters() == []


def test_layer_with_one_neuron_returns_a_bare_value():
    layer = MC.Layer(3, 1)
    out = layer([1.0, 2.0, 3.0])
    assert isinstance(out, micrograd_c.Value)
    outs = MC.Layer(3, 2)([1.0, 2.0, 3.0])
    assert isinstance(outs, list) and len(outs) == 2
    assert isinstance(MC.MLP(2, [3, 1])([1.0, 2.0]), micrograd_c.Value)


def test_mlp_with_a_one_neuron_hidden_layer_works():
    # micrograd's MLP(2, [16, 1, 1]) fails: its one-neuron layer returns a Value and the next layer zips it
    random.seed(11)
    model = MC.MLP(2, [16, 1, 1])
    assert len(model.parameters()) == 16 * 3 + 17 + 2
    out = model([0.5, -1.5])
    assert isinstance(out, micrograd_c.Value)
    out.backward()
    # the same function written out by hand
    hidden = [n([0.5, -1.5]) for n in model.layers[0].neurons]
    expected = model.layers[2].neurons[0]([model.layers[1].neurons[0](hidden)])
    assert out.data == expected.data
    with pytest.raises(TypeError):
        random.seed(11)
        MG.MLP(2, [16, 1, 1])([0.5, -1.5])


def test_values_reused_as_neuron_inputs_match_micrograd():
    # a neuron fed its own weights, its bias twice, or one Value twice: every use adds to the gradient
    def run(nn, Value):
        random.seed(3)
        n = nn.Neuron(2, nonlin=False)
        v = Value(1.5)
        total = n([n.w[0], n.w[1]]) + n([n.b, n.b]) + n([v, v])
        total.backward()
        return float(total.data), [float(p.grad) for p in n.parameters()] + [float(v.grad)]

    (data, grads), (ref_data, ref_grads) = run(MC, micrograd_c.Value), run(MG, MGValue)
    assert data == ref_data
    assert all(rel_close(g, r) for g, r in zip(grads, ref_grads)), (grads, ref_grads)


def test_zero_grad():
    random.seed(1)
    model = MC.MLP(3, [4, 1])
    model([1.0, -2.0, 0.5]).backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    neuron = MC.Neuron(2)
    neuron([1.0, 1.0]).backward()
    neuron.zero_grad()
    assert [p.grad for p in neuron.parameters()] == [0.0, 0.0, 0.0]


def _two_neurons(nn):
    class TwoNeurons(nn.Module):
        """The kind of model micrograd users write: a Module subclass with its own parameters()."""

        def __init__(self):
            self.hidden = nn.Neuron(2)
            self.out = nn.Neuron(2, nonlin=False)
            self.scale = nn.Layer(1, 1, nonlin=False)

        def __call__(self, x):
            h = self.hidden(x)
            return self.out([h, x[0]]) + self.scale([h])

        def parameters(self):
            return self.hidden.parameters() + self.out.parameters() + self.scale.parameters()

    return TwoNeurons


def test_module_subclass_works_as_in_micrograd():
    random.seed(21)
    ref = _two_neurons(MG)()
    random.seed(21)
    model = _two_neurons(MC)()
    assert isinstance(model, MC.Module)
    x = [0.75, -0.25]
    ref_out, out = ref([MGValue(v) for v in x]), model([micrograd_c.Value(v) for v in x])
    ref_out.backward()
    out.backward()
    assert out.data == ref_out.data
    assert [p.grad for p in model.parameters()] == [p.grad for p in ref.parameters()]
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


# ---- micrograd's demo: three training steps with both packages from the same seed -----------------------------


def run_demo(nn, Value, steps):
    """The training loop of micrograd's demo.ipynb, with the engine passed in."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = sklearn_datasets.make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = nn.MLP(2, [16, 16, 1])
    history = demo_loop(Value, model, X, y, steps)
    return history, [float(p.data) for p in model.parameters()]


@pytest.fixture(scope="module")
def micrograd_demo_run():
    # micrograd's graphs are reference cycles: with the cyclic GC off the three steps take a fraction of
    # the time (collected right after)
    gc.disable()
    try:
        return run_demo(MG, MGValue, steps=3)
    finally:
        gc.enable()
        gc.collect()


def test_demo_training_matches_micrograd(micrograd_demo_run):
    ref_history, ref_params = micrograd_demo_run
    history, params = run_demo(micrograd_c.nn, micrograd_c.engine.Value, steps=3)
    assert len(history) == 3
    for step, ((loss, acc), (ref_loss, ref_acc)) in enumerate(zip(history, ref_history)):
        assert rel_close(loss, ref_loss), f"step {step}: loss {loss!r} vs micrograd {ref_loss!r}"
        assert rel_close(acc, ref_acc), f"step {step}: accuracy {acc!r} vs micrograd {ref_acc!r}"
    assert len(params) == len(ref_params) == 337
    bad = [(i, p, r) for i, (p, r) in enumerate(zip(params, ref_params)) if not rel_close(p, r)]
    assert bad == []
    # micrograd's logged first step
    assert round(history[0][0], 4) == 0.8958 and history[0][1] == 0.5


def test_builtin_make_moons_equals_sklearns():
    from micrograd_c.datasets import make_moons

    for seed, n, noise in [(1337, 100, 0.1), (0, 7, 0.3), (42, 64, None)]:
        np.random.seed(seed)
        X_ref, y_ref = sklearn_datasets.make_moons(n_samples=n, noise=noise)
        X, y = make_moons(n_samples=n, noise=noise, seed=seed)
        assert X == X_ref.tolist()
        assert y == y_ref.tolist()


def test_package_demo_matches_micrograd(micrograd_demo_run):
    from micrograd_c import demo

    ref_history, ref_params = micrograd_demo_run
    model, _, _, history = demo.train(steps=3)
    assert all(rel_close(a, b) and acc == ref_acc for (a, acc), (b, ref_acc) in zip(history, ref_history))
    assert all(rel_close(p.data, r) for p, r in zip(model.parameters(), ref_params))


# ---- the engine's API as micrograd users touch it ---------------------------------------------------------------


def test_readme_expression():
    from micrograd_c.engine import Value

    a, b, g = readme_expression(Value)
    assert f"{g.data:.4f}" == "24.7041"
    assert f"{a.grad:.4f}" == "138.8338"
    assert f"{b.grad:.4f}" == "645.5773"


def test_every_import_path():
    from micrograd_c import MLP as TopMLP
    from micrograd_c import Layer as TopLayer
    from micrograd_c import Neuron as TopNeuron
    from micrograd_c import Value as TopValue
    from micrograd_c.engine import Value
    from micrograd_c.nn import MLP, Layer, Module, Neuron

    assert TopValue is Value is micrograd_c.Value
    assert (TopNeuron, TopLayer, TopMLP) == (Neuron, Layer, MLP)
    assert issubclass(MLP, Module) and issubclass(Layer, Module) and issubclass(Neuron, Module)
    assert micrograd_c.nn.Value is Value
    assert isinstance(micrograd_c.live_values(), int)
    assert micrograd_c.value_size() > 0
    assert micrograd_c.__version__


def test_op_strings():
    Value = micrograd_c.Value
    a, b = Value(2.0), Value(3.0)
    assert a._op == ""
    assert (a + b)._op == "+"
    assert (a + 1)._op == "+"
    assert (1 + a)._op == "+"
    assert (a * b)._op == "*"
    assert (2 * a)._op == "*"
    assert (a**2)._op == "**2"
    assert (a**-1)._op == "**-1"
    assert (a**0.5)._op == "**0.5"
    assert a.relu()._op == "ReLU"
    # ops of their own here (micrograd composes them from +, * and **-1)
    assert (a - b)._op == "-"
    assert (a / b)._op == "/"
    assert (-a)._op == "neg"
    assert (a.tanh()._op, a.exp()._op, a.log()._op, a.sigmoid()._op) == ("tanh", "exp", "log", "sigmoid")
    assert isinstance(a._op, str)


def test_prev_returns_the_same_objects_each_call():
    Value = micrograd_c.Value
    a, b = Value(2.0), Value(-1.0)
    c = a * b
    assert c._prev == {a, b}
    assert a._prev == set()
    assert (a * a)._prev == {a}
    assert (a + 1)._prev == {a}  # the constant is kept in the node, not as a leaf

    def build():
        x, y = Value(0.5), Value(1.5)
        return ((x * y) + (x * y).relu()).tanh()  # intermediates held by nobody in Python

    root = build()
    first = root._prev
    second = root._prev
    assert len(first) == 1
    (node,) = first
    assert next(iter(second)) is node
    assert {id(n) for n in node._prev} == {id(n) for n in node._prev}
    inner = node._prev
    assert all(any(n is m for m in node._prev) for n in inner)


def test_trace_deduplicates_on_a_graph_with_reuse():
    def graph(Value):
        a, b = Value(2.0), Value(-3.0)
        c = a * b
        d = c + c
        e = d * a
        return (e + c).relu()

    nodes, edges = trace(graph(micrograd_c.Value))
    ref_nodes, ref_edges = trace(graph(MGValue))
    # a, b, c, d, e, e + c, relu; and a->c, b->c, c->d, d->e, a->e, e->(e+c), c->(e+c), (e+c)->relu
    assert len(nodes) == len(ref_nodes) == 7
    assert len(edges) == len(ref_edges) == 8
    assert sorted(n._op for n in nodes) == sorted(n._op for n in ref_nodes)
    assert sorted(n.data for n in nodes) == sorted(float(n.data) for n in ref_nodes)
    # draw_dot names nodes by id(): every edge must join nodes of the node set
    ids = {id(n) for n in nodes}
    assert len(ids) == 7
    assert all(id(child) in ids and id(parent) in ids for child, parent in edges)


def test_trace_of_an_mlp_output_finds_the_parameters_themselves():
    random.seed(4)
    model = MC.MLP(2, [3, 1])
    inputs = [micrograd_c.Value(1.0), micrograd_c.Value(-2.0)]
    root = model(inputs)
    nodes, edges = trace(root)
    leaves = {id(n) for n in nodes if not n._prev}
    assert leaves == {id(p) for p in model.parameters()} | {id(x) for x in inputs}
    assert len({id(n) for n in nodes}) == len(nodes)
    assert len(edges) == sum(len(n._prev) for n in nodes)
    # a second trace while the first is alive sees the very same objects
    again, again_edges = trace(root)
    assert {id(n) for n in again} == {id(n) for n in nodes}
    assert again_edges == edges


def test_mlp_forward_and_gradients_equal_micrograds():
    rng = random.Random(8)
    for seed, (nin, nouts) in enumerate([(2, [16, 16, 1]), (3, [5, 4]), (1, [1])]):
        random.seed(seed)
        ref = MG.MLP(nin, nouts)
        random.seed(seed)
        model = MC.MLP(nin, nouts)
        for _ in range(5):
            x = [rng.uniform(-2, 2) for _ in range(nin)]
            ref_out = ref([MGValue(v) for v in x])
            out = model([micrograd_c.Value(v) for v in x])
            ref_out = ref_out if isinstance(ref_out, list) else [ref_out]
            out = out if isinstance(out, list) else [out]
            # the forward pass is documented to be micrograd's bit for bit
            assert [o.data for o in out] == [float(o.data) for o in ref_out]
            ref.zero_grad()
            model.zero_grad()
            sum(ref_out).backward()
            sum(out).backward()
            for p, r in zip(model.parameters(), ref.parameters()):
                assert rel_close(p.grad, r.grad), (p.grad, r.grad)
        plain = model([0.5] * nin)  # plain numbers as inputs, as micrograd allows
        assert [o.data for o in (plain if isinstance(plain, list) else [plain])] == [
            float(o.data) for o in (lambda r: r if isinstance(r, list) else [r])(ref([0.5] * nin))
        ]


def test_numpy_scalars_work_on_both_sides():
    Value = micrograd_c.Value
    v = Value(3.0)
    cases = {
        "v * np.float64": (lambda: v * np.float64(2.5), 7.5, 2.5),
        "np.float64 * v": (lambda: np.float64(2.5) * v, 7.5, 2.5),
        "np.int64 * v": (lambda: np.int64(-1) * v, -3.0, -1.0),
        "v + np.int64": (lambda: v + np.int64(4), 7.0, 1.0),
        "np.int64 + v": (lambda: np.int64(4) + v, 7.0, 1.0),
        "np.float64 - v": (lambda: np.float64(1.0) - v, -2.0, -1.0),
        "v - np.int64": (lambda: v - np.int64(1), 2.0, 1.0),
        "np.float64 / v": (lambda: np.float64(6.0) / v, 2.0, -6.0 / 9.0),
        "v / np.int64": (lambda: v / np.int64(2), 1.5, 0.5),
        "v ** np.int64": (lambda: v ** np.int64(2), 9.0, 6.0),
        "np.float64 ** v": (lambda: np.float64(2.0) ** v, 8.0, 8.0 * math.log(2.0)),
        "v * np.float32": (lambda: v * np.float32(0.5), 1.5, 0.5),
        "-np.int64 * v": (lambda: -np.int64(1) * v, -3.0, -1.0),
    }
    for name, (make, data, grad) in cases.items():
        v.grad = 0.0
        out = make()
        assert type(out) is Value, name
        out.backward()
        assert math.isclose(out.data, data, rel_tol=1e-15), name
        assert math.isclose(v.grad, grad, rel_tol=1e-15), name
    assert Value(np.float64(1.25)).data == 1.25
    assert Value(np.int64(7)).data == 7.0


ARITHMETIC = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
}
NUMPY_SCALARS = {
    "int64": lambda: np.int64(2),
    "float64": lambda: np.float64(2.5),
    "0-d int64": lambda: np.array(2),
    "0-d float64": lambda: np.array(2.5),
}


@pytest.mark.parametrize("op", ARITHMETIC)
@pytest.mark.parametrize("kind", NUMPY_SCALARS)
@pytest.mark.parametrize("value_first", [True, False], ids=["value op number", "number op value"])
def test_numpy_numbers_and_values_make_a_value(op, kind, value_first):
    # a NumPy scalar or 0-d array on either side is a plain number: the result is one Value, in the graph
    f, v, number = ARITHMETIC[op], micrograd_c.Value(3.0), NUMPY_SCALARS[kind]()
    out = f(v, number) if value_first else f(number, v)
    assert type(out) is micrograd_c.Value
    want = f(3.0, float(number)) if value_first else f(float(number), 3.0)
    assert out.data == want
    out.backward()
    assert v.grad != 0.0


NUMPY_ARRAYS = {
    "int64": lambda: np.array([2, -1, 4]),
    "float64": lambda: np.array([2.5, 0.5, -1.5]),
    "2-d float64": lambda: np.array([[1.5, 2.0], [0.25, 3.0]]),
}


@pytest.mark.parametrize("op", ARITHMETIC)
@pytest.mark.parametrize("kind", NUMPY_ARRAYS)
@pytest.mark.parametrize("value_first", [True, False], ids=["value op array", "array op value"])
def test_numpy_arrays_and_values_go_elementwise(op, kind, value_first):
    # NumPy's own operator runs, element by element, as with micrograd's Value on the array's side: an object
    # array of Values, each in the graph
    f, v, array = ARITHMETIC[op], micrograd_c.Value(3.0), NUMPY_ARRAYS[kind]()
    out = f(v, array) if value_first else f(array, v)
    assert isinstance(out, np.ndarray) and out.dtype == object and out.shape == array.shape
    for got, x in zip(out.flat, array.flat):
        assert type(got) is micrograd_c.Value
        assert got.data == (f(3.0, float(x)) if value_first else f(float(x), 3.0))
    sum(out.flat).backward()
    assert v.grad != 0.0


@pytest.mark.parametrize(
    "other",
    [np.int64(2), np.float64(3.0), np.array(3.0), np.array([3.0, 4.0])],
    ids=["int64", "float64", "0-d", "array"],
)
def test_values_compare_with_numpy_as_objects(other):
    # Value has no comparisons of its own: == is identity, ordering raises, on either side; an array compares
    # element by element
    v = micrograd_c.Value(3.0)
    for eq, ne in [(other == v, other != v), (v == other, v != other)]:
        if isinstance(other, np.ndarray) and other.ndim:
            assert eq.dtype == bool and not eq.any() and ne.all()
        else:
            assert not eq and ne
    for compare in [lambda a, b: a < b, lambda a, b: a <= b, lambda a, b: a > b, lambda a, b: a >= b]:
        for a, b in [(other, v), (v, other)]:
            with pytest.raises(TypeError, match="not supported between instances"):
                compare(a, b)


def test_numpy_scalars_leave_values_to_the_value_type():
    # `number op v` asks the NumPy scalar first: it gives up (NotImplemented) so that Value's reflected
    # operator runs, and no array is made of the Value first (that cost 1.8 us of each np.int64 * Value, the
    # verbatim demo's -yi*scorei)
    v = micrograd_c.Value(3.0)
    for number in [np.int64(2), np.float64(2.5), np.float32(0.5), np.bool_(True)]:
        for method in ["__add__", "__sub__", "__mul__", "__truediv__", "__pow__"]:
            assert getattr(number, method)(v) is NotImplemented, (type(number).__name__, method)
    assert isinstance(np.array([1.0, 2.0]).__mul__(v), np.ndarray)  # an array's does not: it goes elementwise


def test_demo_loss_expression_with_numpy_labels():
    Value = micrograd_c.Value
    y = np.array([0, 1, 1]) * 2 - 1
    scores = [Value(0.3), Value(-0.2), Value(1.7)]
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    assert all(type(loss) is Value for loss in losses)
    assert [loss.data for loss in losses] == [1.3, 1.2, 0.0]
    total = sum(losses) * (1.0 / len(losses))
    total.backward()
    assert [s.grad for s in scores] == [1 / 3, -1 / 3, 0.0]


def test_data_and_grad_are_floats_and_settable():
    v = micrograd_c.Value(3)
    assert v.data == 3.0 and isinstance(v.data, float)
    assert v.grad == 0.0 and isinstance(v.grad, float)
    v.data = 5
    v.grad = 1.5
    assert (v.data, v.grad) == (5.0, 1.5)
    v.data -= 0.5 * v.grad
    assert v.data == 4.25


def test_changing_data_before_backward_behaves_like_micrograd():
    # backward reads the inputs' .data as they are when it runs, as micrograd's closures do
    def run(Value):
        a, b = Value(2.0), Value(-3.0)
        out = a * b + a**2 + (a * b).relu() + b * 4
        a.data = 5.0
        out.backward()
        return a.grad, b.grad

    assert run(micrograd_c.Value) == tuple(float(g) for g in run(MGValue))


def test_backward_twice_accumulates_like_micrograd():
    def run(Value):
        x = Value(1.5)
        z = x * 2
        y = z * z + x.relu()
        y.backward()
        y.backward()
        return x.grad, z.grad, y.grad

    assert run(micrograd_c.Value) == tuple(float(g) for g in run(MGValue))


def test_values_are_hashable_and_compare_by_identity():
    Value = micrograd_c.Value
    a, b = Value(1.0), Value(1.0)
    assert a != b and a == a
    assert len({a, b, a}) == 2


def test_subclassed_layers_and_neurons_are_called_as_they_are():
    """MLP and Layer calls run in C for micrograd_c's own classes; a subclass's __call__ still runs."""
    calls = []

    class LoggingNeuron(micrograd_c.nn.Neuron):
        def __call__(self, x):
            calls.append("neuron")
            return super().__call__(x)

    class DoublingLayer(micrograd_c.nn.Layer):
        def __call__(self, x):
            calls.append("layer")
            out = super().__call__(x)
            return [o * 2 for o in out] if isinstance(out, list) else out * 2

    random.seed(5)
    model = micrograd_c.nn.MLP(2, [3, 1])
    plain = model([0.5, -1.0]).data
    model.layers[0].neurons[1].__class__ = LoggingNeuron
    assert model([0.5, -1.0]).data == plain and calls == ["neuron"]
    model.layers[1].__class__ = DoublingLayer
    assert model([0.5, -1.0]).data == 2 * plain and calls == ["neuron", "neuron", "layer"]
