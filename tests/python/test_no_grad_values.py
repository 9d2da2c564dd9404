"""micrograd_c.no_grad() governs the scalar engine as it does tensors (torch.no_grad's rule): under it a
Value op returns a leaf holding the computed number, with no inputs, so nothing is recorded and backward
through it reaches nothing. Per thread, nestable, usable as a decorator."""

import math
import threading

import micrograd_c
import pytest
from micrograd_c import MLP, Layer, Neuron, Tensor, Value, no_grad

OPS = {
    "a * b + 1": lambda a, b: a * b + 1,
    "a - b": lambda a, b: a - b,
    "a / b": lambda a, b: a / b,
    "a ** b": lambda a, b: a**b,
    "a ** 2": lambda a, b: a**2,
    "2 ** a": lambda a, b: 2**a,
    "3 - a": lambda a, b: 3 - a,
    "3 / a": lambda a, b: 3 / a,
    "-a": lambda a, b: -a,
    "relu": lambda a, b: a.relu(),
    "tanh": lambda a, b: a.tanh(),
    "exp": lambda a, b: a.exp(),
    "log": lambda a, b: a.log(),
    "sigmoid": lambda a, b: a.sigmoid(),
}


@pytest.mark.parametrize("name", OPS)
def test_each_op_gives_a_leaf_with_the_same_number(name):
    a, b = Value(1.5), Value(-0.75)
    want = OPS[name](a, b)
    with no_grad():
        c = OPS[name](a, b)
    assert not c._prev
    assert c._op == ""
    assert c.data == want.data or (math.isnan(c.data) and math.isnan(want.data))
    c.backward()
    assert a.grad == 0.0 and b.grad == 0.0


def test_brief_example():
    a, b = Value(2.0), Value(-3.0)
    with no_grad():
        c = a * b + 1
    assert c._prev == set()
    assert c.data == -5.0
    c.backward()
    assert (a.grad, b.grad, c.grad) == (0.0, 0.0, 1.0)


def test_graphs_again_afterwards():
    a, b = Value(2.0), Value(-3.0)
    with no_grad():
        pass
    c = a * b + 1
    assert len(c._prev) == 1 and c._op == "+"
    c.backward()
    assert (a.grad, b.grad) == (-3.0, 2.0)


def test_a_leaf_made_under_no_grad_joins_later_graphs():
    a = Value(2.0)
    with no_grad():
        s = a * 3.0
    c = s * a
    assert c._prev == {s, a}
    c.backward()
    assert a.grad == 6.0  # only through the direct edge: s is a constant now
    assert s.grad == 2.0


def test_inputs_are_not_kept_alive():
    live = micrograd_c.live_values()
    a, b = Value(1.0), Value(2.0)
    with no_grad():
        c = (a + b) * (a - b)
    del a, b
    assert micrograd_c.live_values() == live + 1  # only c
    assert c.data == -3.0


def test_decorator_form():
    @no_grad()
    def f(a, b):
        return a * b + a.tanh()

    a, b = Value(0.5), Value(4.0)
    c = f(a, b)
    assert not c._prev
    assert c.data == pytest.approx(2.0 + math.tanh(0.5), abs=0)
    d = a * b  # outside the function: recorded
    assert d._prev == {a, b}


def test_nesting_restores_the_outer_mode():
    a = Value(1.0)
    with no_grad():
        with no_grad():
            inner = a + 1
        still_off = a + 2
    on = a + 3
    assert not inner._prev and not still_off._prev
    assert on._prev == {a}


def test_exception_inside_restores_the_mode():
    a = Value(1.0)
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert (a * 2)._prev == {a}


def test_per_thread():
    a = Value(1.0)
    results = {}
    entered, done = threading.Event(), threading.Event()

    def other():
        entered.wait(10)
        results["other"] = a * 2  # the main thread is under no_grad: this thread is not
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with no_grad():
        entered.set()
        assert done.wait(10)
        results["main"] = a * 2
    t.join()
    assert results["other"]._prev == {a}
    assert not results["main"]._prev


def test_under_no_grad_in_another_thread():
    a = Value(1.0)
    out = {}

    def other():
        with no_grad():
            out["c"] = a * 5

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert not out["c"]._prev and out["c"].data == 5.0
    assert (a * 5)._prev == {a}


def test_nn_fast_paths_honour_it():
    n = Neuron(3)
    layer = Layer(3, 2)
    model = MLP(3, [4, 2])
    x = [Value(0.5), Value(-1.0), Value(2.0)]
    want = [n(x).data, [v.data for v in layer(x)], [v.data for v in model(x)]]
    with no_grad():
        got_n, got_layer, got_model = n(x), layer(x), model(x)
    for v in [got_n, *got_layer, *got_model]:
        assert not v._prev and v._op == ""
    assert [got_n.data, [v.data for v in got_layer], [v.data for v in got_model]] == want
    got_n.backward()
    assert all(p.grad == 0.0 for p in n.parameters())


def test_tensors_still_follow_it():
    t = Tensor([1.0, 2.0])
    with no_grad():
        u = (t * 2).sum()
    assert not u.requires_grad
    assert (t * 2).sum().requires_grad
