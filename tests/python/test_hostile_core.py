"""Hostile inputs to the C core seen from Python: sizes that overflow size_t, dims out of range. Each raises a
clear exception (ValueError for a size no machine can hold, IndexError for a dim out of range), with the value
passed in the message, and leaves no tensor alive."""

import micrograd_c
import pytest
from micrograd_c import Tensor, _core

G = 2**32
T = 2**40


@pytest.fixture(autouse=True)
def no_live_tensors():
    before = micrograd_c.live_tensors()
    yield
    assert micrograd_c.live_tensors() == before


# ---- sizes that overflow ----


def test_mlp_whose_byte_count_overflows_is_refused():
    # 4097 layers of 2^24 on 2^24 inputs: 2^60 parameters, whose bytes overflow size_t (a heap overflow once)
    n, layers = 2**24, 4097
    with pytest.raises(ValueError, match="too large.*bytes"):
        _core.predict([], n, [n] * layers, ["relu"] * layers, [[0.0] * 1])


def test_mlp_whose_parameter_count_overflows_is_refused():
    n, layers = 2**24, 65537
    with pytest.raises(ValueError, match="too large.*number of parameters"):
        _core.predict([], n, [n] * layers, ["relu"] * layers, [[0.0] * 1])


@pytest.mark.parametrize("shape", [(G, G, G), (0, T, T), (2**61,), (T, T, 0, 1)])
def test_expand_to_a_shape_too_large(shape):
    t = Tensor([1.0])
    with pytest.raises(ValueError, match="too large"):
        t.expand(*shape)


@pytest.mark.parametrize("shape", [(G, G, G), (0, T, T), (-1, T, T, T)])
def test_reshape_to_a_shape_too_large(shape):
    for data in ([1.0], []):
        with pytest.raises(ValueError, match="reshape"):
            Tensor(data).reshape(*shape)


def test_shape_too_large_in_the_constructor():
    with pytest.raises(ValueError):
        Tensor([], shape=[0, T, T])


def test_matmul_whose_batch_overflows():
    # batch dims 2^32 x 1 and 1 x 2^32 broadcast to 2^64 items, while each operand has no element
    a = Tensor([]).reshape(G, 1, 1, 0)
    b = Tensor([]).reshape(1, G, 0, 1)
    with pytest.raises(ValueError, match="matmul"):
        a @ b


def test_slice_with_a_huge_step():
    # one element per slice: the size computation used to wrap and the stride to overflow int64
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t[:, :: 2**62].tolist() == [[1.0], [4.0]]
    assert t[:, 1 :: 2**63 - 1].tolist() == [[2.0], [5.0]]
    assert t[:: 2**62].tolist() == [[1.0, 2.0, 3.0]]


# ---- dims: the value passed and the range allowed ----


@pytest.mark.parametrize("method", ["sum", "mean", "max", "argmax"])
@pytest.mark.parametrize("dim", [2, 7, -3, -8])
def test_reduction_dim_out_of_range_names_it(method, dim):
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(IndexError, match=rf"dimension {dim} is out of range.*-2 to 1"):
        getattr(t, method)(dim)


@pytest.mark.parametrize("dim", [-1000, 1000, 2**40])
def test_reduction_far_out_of_range_dim_names_it(dim):
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(IndexError) as raised:
        t.sum(dim)
    message = str(raised.value)
    del t, raised  # a failing assert must not keep the tensor alive through its traceback
    assert f"dimension {dim} is out of range" in message


@pytest.mark.parametrize("dim", [-1000, 2, -3])
def test_log_softmax_dim_out_of_range_names_it(dim):
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(IndexError, match=rf"log_softmax: dimension {dim} is out of range.*-2 to 1"):
        t.log_softmax(dim)


def test_transpose_dim_out_of_range_names_it():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(IndexError, match=r"transpose: dimension -5 is out of range.*-2 to 1"):
        t.transpose(0, -5)
    with pytest.raises(IndexError, match=r"transpose: dimension 2 is out of range"):
        t.transpose(2, 0)


def test_dim_of_a_scalar_tensor():
    s = Tensor([1.0, 2.0]).sum()
    with pytest.raises(IndexError, match="0-dimensional"):
        s.sum(0)


@pytest.mark.parametrize("sizes", [(-5,), (2, -2), (-1, 3)])
def test_expand_refuses_negative_sizes(sizes):
    t = Tensor([1.0, 2.0, 3.0]) if len(sizes) == 2 else Tensor([1.0])
    with pytest.raises(ValueError, match="expand: size"):
        t.expand(*sizes)
