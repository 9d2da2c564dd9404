"""Wrong inputs raise clear Python errors, and the error paths leak nothing: each case runs 1000 times while
the reference counts of its operands, the live C nodes and Python's traced memory stay where they were."""

import gc
import sys
import tracemalloc

import micrograd_c
import pytest
from micrograd_c import MLP, Layer, Neuron, Value

REPEAT = 1000


def attempt(action, exc_type):
    try:
        action()
    except exc_type:
        return
    pytest.fail(f"{action} did not raise {exc_type.__name__}")


def assert_raises_without_leaks(exc_type, action, *operands, match=None):
    """action() raises exc_type (message matching `match`); REPEAT more calls leak no reference to any
    operand, no C node and no Python memory."""
    with pytest.raises(exc_type, match=match):
        action()
    for _ in range(50):  # warm up caches (interned strings, method caches, free lists)
        attempt(action, exc_type)
    gc.collect()
    refs = [sys.getrefcount(o) for o in operands]
    live = micrograd_c.live_values()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(REPEAT):
            attempt(action, exc_type)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # exact for the test's own objects; shared ones (None, small ints) move a little with the interpreter's
    # own work, while a leak on the error path would add REPEAT references
    grown_refs = [sys.getrefcount(o) - r for o, r in zip(operands, refs)]
    assert all(abs(g) <= 10 for g in grown_refs), f"an error path leaks references to its operands: {grown_refs}"
    assert micrograd_c.live_values() == live, "an error path leaks C nodes"
    assert grown < 16 * 1024, f"Python memory grew by {grown} bytes over {REPEAT} errors"


# ---- Value construction -----------------------------------------------------------------------------------


def test_value_from_a_string():
    text = "x"
    assert_raises_without_leaks(TypeError, lambda: Value(text), text, match="str")


def test_value_from_none():
    assert_raises_without_leaks(TypeError, lambda: Value(None), None, match="NoneType")


@pytest.mark.parametrize("bad", [[1.0], (1.0,), {"a": 1}, 1 + 2j, b"1", object()])
def test_value_from_other_non_numbers(bad):
    assert_raises_without_leaks(TypeError, lambda: Value(bad), bad, match=type(bad).__name__)


def test_value_from_an_int_too_large_for_a_float():
    big = 10**400
    assert_raises_without_leaks(OverflowError, lambda: Value(big), big)


def test_value_without_data():
    assert_raises_without_leaks(TypeError, lambda: Value())


def test_value_with_a_micrograd_style_children_argument_is_a_leaf():
    a = Value(1.0)
    v = Value(2.0, (a,), "+")
    assert v._prev == set() and v._op == ""


# ---- operators ---------------------------------------------------------------------------------------------


def test_add_a_string():
    v, text = Value(1), "x"
    assert_raises_without_leaks(TypeError, lambda: v + text, v, text, match="str")


def test_string_times_value():
    v, text = Value(1), "x"
    assert_raises_without_leaks(TypeError, lambda: text * v, v, text)


def test_pow_with_a_string_exponent():
    v, text = Value(1), "x"
    assert_raises_without_leaks(TypeError, lambda: v**text, v, text)
    assert_raises_without_leaks(TypeError, lambda: text**v, v, text)


def test_pow_with_a_modulus():
    v, three, five = Value(2), 3, 5
    assert_raises_without_leaks(TypeError, lambda: pow(v, three, five), v, three, five, match="modulus")
    w = Value(3)
    assert_raises_without_leaks(TypeError, lambda: pow(v, w, five), v, w, five)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**"])
def test_operators_with_an_int_too_large_for_a_float(op):
    fn = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "**": lambda a, b: a**b,
    }[op]
    v, big = Value(1), 10**400
    assert_raises_without_leaks(OverflowError, lambda: fn(v, big), v, big)
    assert_raises_without_leaks(OverflowError, lambda: fn(big, v), v, big)


@pytest.mark.parametrize("other", [None, [1.0], "1", b"1", 1j, {}, object()])
def test_operators_with_non_numbers(other):
    v = Value(1.5)
    for fn in (
        lambda: v + other,
        lambda: other + v,
        lambda: v - other,
        lambda: other - v,
        lambda: v * other,
        lambda: v / other,
        lambda: other / v,
        lambda: v**other,
    ):
        assert_raises_without_leaks(TypeError, fn, v, other)


def test_ordering_is_not_defined():
    # micrograd's Value has no ordering either: comparing two Values is a TypeError
    a, b = Value(1), Value(2)
    for fn in (lambda: a < b, lambda: a <= b, lambda: a > b, lambda: a >= b, lambda: a < 2, lambda: 2 > a):
        assert_raises_without_leaks(TypeError, fn, a, b)


def test_methods_take_no_arguments():
    v = Value(1.0)
    for fn in (lambda: v.relu(1), lambda: v.tanh(None), lambda: v.backward(1.0), lambda: v.exp(v)):
        assert_raises_without_leaks(TypeError, fn, v)


def test_matmul_and_abs_are_not_values_ops():
    a, b = Value(1), Value(2)
    assert_raises_without_leaks(TypeError, lambda: a @ b, a, b)
    assert_raises_without_leaks(TypeError, lambda: abs(a), a)


# ---- attributes ----------------------------------------------------------------------------------------------


def test_set_data_to_a_string():
    v, text = Value(1), "x"

    def set_data():
        v.data = text

    assert_raises_without_leaks(TypeError, set_data, v, text, match="str")
    assert v.data == 1.0


def test_set_grad_to_none():
    v = Value(1)

    def set_grad():
        v.grad = None

    assert_raises_without_leaks(TypeError, set_grad, v, match="NoneType")
    assert v.grad == 0.0


def test_set_data_to_an_int_too_large_for_a_float():
    v, big = Value(1), 10**400

    def set_data():
        v.data = big

    assert_raises_without_leaks(OverflowError, set_data, v, big)
    assert v.data == 1.0


def test_delete_data_and_grad():
    v = Value(1)

    def del_data():
        del v.data

    def del_grad():
        del v.grad

    assert_raises_without_leaks(AttributeError, del_data, v)
    assert_raises_without_leaks(AttributeError, del_grad, v)
    assert (v.data, v.grad) == (1.0, 0.0)


def test_prev_and_op_are_read_only():
    v = Value(1)

    def set_prev():
        v._prev = set()

    def set_op():
        v._op = "+"

    assert_raises_without_leaks(AttributeError, set_prev, v)
    assert_raises_without_leaks(AttributeError, set_op, v)


# ---- nn -------------------------------------------------------------------------------------------------------


def test_mlp_with_no_inputs():
    nouts = []
    assert_raises_without_leaks(ValueError, lambda: MLP(0, nouts), nouts, match="nin")


def test_mlp_with_no_layers():
    nouts = []
    assert_raises_without_leaks(ValueError, lambda: MLP(2, nouts), nouts, match="nouts|layer")


def test_mlp_with_an_empty_layer():
    nouts = [3, 0]
    assert_raises_without_leaks(ValueError, lambda: MLP(2, nouts), nouts, match="nout")


@pytest.mark.parametrize("nin", [0, -1, 2.5, True, "2", None])
def test_neuron_with_a_bad_size(nin):
    assert_raises_without_leaks(ValueError, lambda: Neuron(nin), nin, match="nin")


@pytest.mark.parametrize("nin, nout", [(2, 0), (2, -3), (0, 2), (2, 1.0)])
def test_layer_with_a_bad_size(nin, nout):
    assert_raises_without_leaks(ValueError, lambda: Layer(nin, nout), match="nin|nout")


def test_neuron_with_the_wrong_number_of_inputs():
    neuron = Neuron(2)
    values = [Value(1.0), Value(2.0), Value(3.0)]
    assert_raises_without_leaks(
        ValueError, lambda: neuron(values), neuron, values, *values, *neuron.parameters(), match=r"2 inputs, got 3"
    )
    numbers = [1.0]
    assert_raises_without_leaks(
        ValueError, lambda: neuron(numbers), neuron, numbers, *neuron.parameters(), match=r"2 inputs, got 1"
    )


def test_mlp_with_the_wrong_number_of_inputs():
    model = MLP(3, [4, 1])
    inputs = [Value(1.0), 2.0]
    assert_raises_without_leaks(
        ValueError, lambda: model(inputs), model, inputs, inputs[0], *model.parameters(), match=r"3 inputs, got 2"
    )
    layer = Layer(2, 3)
    assert_raises_without_leaks(
        ValueError, lambda: layer([1.0, 2.0, 3.0, 4.0]), layer, *layer.parameters(), match=r"2 inputs, got 4"
    )


def test_neuron_with_a_non_number_input():
    neuron = Neuron(2)
    inputs = [1.0, "x"]  # the first input becomes a leaf before the second fails: it must be freed
    assert_raises_without_leaks(TypeError, lambda: neuron(inputs), neuron, inputs, *neuron.parameters(), match="str")
    model = MLP(2, [3, 1])
    bad = [Value(1.0), None]
    assert_raises_without_leaks(
        TypeError, lambda: model(bad), model, bad, bad[0], *model.parameters(), match="NoneType"
    )
    assert_raises_without_leaks(TypeError, lambda: model(5.0), model, *model.parameters())


def test_python_messages_do_not_start_with_c_function_names():
    """The library's C messages name the C function for C callers; Python users get the rest of the text."""
    from micrograd_c import MLP

    model = MLP(2, [1])
    with pytest.raises(ValueError) as caught:
        model.fit([[1.0, 2.0]], [0], loss="svm", epochs=1, verbose=False)
    assert str(caught.value) == "svm loss: y[0] is 0, expected -1 or 1 (for 0/1 labels, use the bce loss)"
