"""micrograd habits and micrograd_rs's Device on Value: labels (Karpathy's lecture version), subclasses,
devices, and what draw_dot shows of them."""

import copy
import pickle
import random
import re
import sys

import micrograd_c
import pytest
from micrograd_c import MLP, Device, Value, to_dot

# ---- labels ----


def test_label_from_the_constructor_and_by_assignment():
    a = Value(2.0, label="a")
    b = Value(-3.0, (), "", "b")  # the lecture's positional form: data, _children, _op, label
    e = a * b
    assert (a.label, b.label, e.label) == ("a", "b", "")
    e.label = "e"
    assert e.label == "e"
    e.label = None
    assert e.label == ""
    del a.label
    assert a.label == ""
    assert repr(b) == "Value(data=-3.0, grad=0.0)"  # micrograd's repr, label or not


@pytest.mark.parametrize("bad", [3, b"x", ["a"]])
def test_a_label_is_a_str(bad):
    with pytest.raises(TypeError, match="label must be a str"):
        Value(1.0, label=bad)
    v = Value(1.0)
    with pytest.raises(TypeError, match="label must be a str"):
        v.label = bad


def test_labels_survive_pickle_and_copy():
    a = Value(1.5, label="a")
    a.grad = 0.25
    for b in (pickle.loads(pickle.dumps(a)), copy.copy(a), copy.deepcopy(a)):
        assert (b.data, b.grad, b.label) == (1.5, 0.25, "a")


def test_old_two_item_pickle_state_still_loads():
    v = Value(2.0)
    v.__setstate__((None, 0.5))
    assert v.grad == 0.5


def test_the_lecture_graph_draws_its_labels():
    """Karpathy's micrograd lecture: a, b, c, e, d, f, L, each labelled, drawn as { label | data | grad }."""
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    L.backward()
    text = to_dot(L)
    for name, data, grad in [
        ("a", 2, 6),
        ("b", -3, -4),
        ("c", 10, -2),
        ("e", -6, -2),
        ("d", 4, -2),
        ("f", -2, 4),
        ("L", -8, 1),
    ]:
        assert f'"{{ {name} | data {data:.4f} | grad {grad:.4f} }}"' in text


# ---- what draw_dot shows of constants and neurons ----


@pytest.mark.parametrize(
    "make,shown",
    [
        (lambda a: a * 2.0, "* 2.0"),
        (lambda a: 2.0 * a, "* 2.0"),
        (lambda a: a + 1, "+ 1.0"),
        (lambda a: a - 1, "+ -1.0"),
        (lambda a: 1 - a, "1.0 -"),
        (lambda a: a / 4, "/ 4.0"),
        (lambda a: 4 / a, "4.0 /"),
        (lambda a: a**2, "**2"),
        (lambda a: 2**a, "2.0 **"),
        (lambda a: a * a, "*"),
        (lambda a: a.relu(), "ReLU"),
    ],
)
def test_the_op_node_shows_the_plain_number(make, shown):
    v = make(Value(3.0))
    assert v._op_label == shown
    assert f'v0_op [label="{shown}"]' in to_dot(v)


def test_constant_attribute():
    a = Value(3.0)
    assert (a * 2.5)._constant == 2.5 and (a * a)._constant is None and a._constant is None


def test_affine_edges_say_bias_weight_input():
    random.seed(1)
    neuron = MLP(2, [1]).layers[0].neurons[0]
    x = [Value(0.5, label="x_first"), Value(-1.5, label="x_second")]
    out = neuron(x)
    assert out._op == "affine"
    assert out._inputs == (neuron.b, neuron.w[0], neuron.w[1], x[0], x[1])
    edges = dict(re.findall(r'\t(\w+) -> v0_op \[label="(\w+)"\]', to_dot(out)))
    assert sorted(edges.values()) == ["b", "w0", "w1", "x0", "x1"]
    names = dict(re.findall(r'\t(\w+) \[label="\{ (\w+) \|', to_dot(out)))
    assert {edges[n] for n, label in names.items() if label.startswith("x_")} == {"x0", "x1"}


def test_inputs_keep_order_and_repeats():
    a, b = Value(1.0), Value(2.0)
    assert (a - b)._inputs == (a, b) and (b - a)._inputs == (b, a)
    assert (a * a)._inputs == (a, a) and (a * a)._prev == {a}
    assert a._inputs == ()


# ---- subclasses ----


class Named(Value):
    """A subclass with an __init__ of its own that takes other arguments (it gets a __dict__)."""

    def __init__(self, data, name=None):
        self.name = name


class Lecture(Value):
    """One that passes micrograd's arguments on, as a subclass of micrograd's Value would."""

    def __init__(self, data, _children=(), _op="", label=""):
        super().__init__(data, _children, _op, label)
        self.extra = "kept"


class Plain(Value):
    pass


def test_subclasses_build_and_compute():
    n, lec, p = Named(3.0, name="n"), Lecture(5.0, label="l"), Plain(7.0, label="p")
    assert (n.data, n.name, lec.data, lec.label, lec.extra, p.data, p.label) == (3.0, "n", 5.0, "l", "kept", 7.0, "p")
    assert isinstance(n, Value) and type(n) is Named
    out = n * lec + p * 2
    assert type(out) is Value  # results are plain Values, as micrograd's ops make `Value(...)`
    out.backward()
    assert (n.grad, lec.grad, p.grad) == (5.0, 3.0, 2.0)
    assert n in (n * lec)._prev  # the very objects come back from _prev


def test_subclass_instances_pickle_with_their_attributes():
    n = Named(3.0, name="n")
    n.grad = 1.5
    back = pickle.loads(pickle.dumps(n))
    assert (type(back), back.data, back.grad, back.name) == (Named, 3.0, 1.5, "n")
    l2 = copy.deepcopy(Lecture(2.0, label="x"))
    assert (l2.extra, l2.label, l2.data) == ("kept", "x", 2.0)


def test_subclass_errors():
    with pytest.raises(TypeError, match="needs the data"):
        Plain()
    with pytest.raises(TypeError, match="real number"):
        Plain("x")
    with pytest.raises(TypeError, match="label must be a str"):
        Lecture(1.0, label=5)


def test_subclass_instances_are_collected():
    before = micrograd_c.live_values()
    for _ in range(100):
        n = Named(1.0)
        n.me = n  # a reference cycle through its __dict__: only the collector frees it
        del n
    import gc

    gc.collect()
    assert micrograd_c.live_values() == before


def test_the_base_type_stays_lean():
    assert sys.getsizeof(Value(1.0)) == 32  # what pymalloc gives a 24-byte object anyway
    with pytest.raises(AttributeError):
        Value(1.0).anything = 1  # no __dict__ on the base type
    import gc

    assert not gc.is_tracked(Value(1.0))


# ---- devices (micrograd_rs) ----


def test_value_device_api():
    v = Value(2.0, device="cpu")
    assert str(v.device) == "cpu" and v.device == Device.cpu()
    assert v.to("cpu") is v and v.to(Device.cpu()) is v and v.cpu() is v
    assert Value(1.0, device=None).device == Device.cpu()
    assert repr(v) == "Value(data=2.0, grad=0.0)"


@pytest.mark.skipif(Device.is_cuda_available(), reason="a usable GPU: CUDA works")
def test_cuda_without_a_gpu_says_why():
    v = Value(2.0)
    for call in (v.cuda, lambda: v.to("cuda"), lambda: Value(1.0, device="cuda"), Device.cuda):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            call()


def test_unknown_device_is_a_value_error():
    with pytest.raises(ValueError, match="unknown device"):
        Value(1.0, device="tpu")
    with pytest.raises(ValueError, match="unknown device"):
        Value(1.0).to("tpu")
