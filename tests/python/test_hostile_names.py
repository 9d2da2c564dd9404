"""Names of the C library's enums (optimizer kinds, schedules, activations, dtypes) as the extension reads
them: one table per enum in C, so every bad name is a ValueError that names it and lists the choices, and
a name with anything after a NUL is not mistaken for the name before it."""

import pytest
from micrograd_c import Tensor, _core, optim
from micrograd_c.nn import MLP


def test_unknown_optimizer_kind_lists_the_choices():
    for bad in ("rmsprop", "SGD", "", "adam "):
        with pytest.raises(ValueError, match=f"unknown optimizer '{bad}': expected sgd, adam or adamw"):
            _core.Optimizer(bad, 3)
    with pytest.raises(ValueError):
        _core.Optimizer("sgd\0x", 3)


def test_the_c_name_tables_are_exposed():
    assert _core.OPTIMIZERS == ("sgd", "adam", "adamw")
    assert _core.SCHEDULES == ("constant", "linear", "cosine")
    assert _core.ACTIVATIONS == ("linear", "relu", "tanh", "sigmoid")
    assert _core.LOSSES == ("svm", "mse", "bce", "cross_entropy")
    assert _core.DTYPES == ("float64", "float32")


def test_kinds_table_matches_the_c_names():
    assert tuple(optim.KINDS) == _core.OPTIMIZERS
    for name, cls in optim.KINDS.items():
        assert cls.kind == name and cls([MLP(1, [1]).parameters()[0]]).kind == name


def test_unknown_schedule_lists_the_choices():
    model = MLP(2, [1])
    with pytest.raises(ValueError, match="unknown schedule 'step': expected constant, linear or cosine"):
        model.fit(
            [[0.0, 1.0], [1.0, 0.0]],
            [1.0, -1.0],
            optimizer=optim.SGD(model.parameters()),
            epochs=1,
            schedule="step",
            verbose=False,
        )


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match="unknown activation 'gelu': expected linear, relu, tanh or sigmoid"):
        _core.predict([0.0] * 3, 2, [1], ["gelu"], [[1.0, 2.0]])


@pytest.mark.parametrize(
    "name,want",
    [("float64", "float64"), ("double", "float64"), ("float32", "float32"), ("float", "float32"), (float, "float64")],
)
def test_dtype_names_and_aliases(name, want):
    assert Tensor([1.0, 2.0], dtype=name).dtype == want


@pytest.mark.parametrize("bad", ["int8", "Float32", "float32\0", "float64\0junk", "", 3, b"float32"])
def test_unknown_dtype_is_a_value_error(bad):
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32'"):
        Tensor([1.0], dtype=bad)


def test_to_takes_a_dtype_name_in_the_device_place():
    t = Tensor([1.0])
    assert t.to("float32").dtype == "float32" and t.to("float64").dtype == "float64"
    with pytest.raises(ValueError, match="unknown device"):
        t.to("float16")


# One reader of plain-number operands (mgpy_as_real) for Values and Tensors: the same rules for what is a
# number, except that Tensors take arrays and Tensors as operands to broadcast, never as numbers.
class _FloatRaisesTypeError:
    def __float__(self):
        raise TypeError("not a number after all")


class _FloatOverflows:
    def __float__(self):
        raise OverflowError("too big")


@pytest.mark.parametrize("make", [lambda: Tensor([1.0]), lambda: __import__("micrograd_c").Value(1.0)])
def test_number_operands_follow_one_rule(make):
    import numpy as np

    with pytest.raises(TypeError, match="unsupported operand"):
        make() + _FloatRaisesTypeError()
    with pytest.raises(OverflowError, match="too big"):
        make() + _FloatOverflows()
    with pytest.raises(OverflowError):
        make() + 10**400
    result = make() * np.float32(2.0)
    assert (result.tolist() if isinstance(result, Tensor) else [result.data]) == [2.0]


def test_a_one_element_array_is_broadcast_by_tensors():
    import numpy as np

    assert (Tensor([1.0, 2.0]) + np.array([3.0])).tolist() == [4.0, 5.0]
    assert (Tensor([1.0, 2.0]) + Tensor([3.0])).tolist() == [4.0, 5.0]
