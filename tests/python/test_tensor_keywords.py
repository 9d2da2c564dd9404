"""Tensor methods take the keywords micrograd_rs and PyTorch users pass, and say their signatures."""

import inspect

import pytest
from micrograd_c import Device, Tensor, no_grad


def t23():
    return Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


@pytest.mark.parametrize(
    "call,shape",
    [
        (lambda t: t.transpose(dim0=0, dim1=1), [3, 2]),
        (lambda t: t.transpose(0, dim1=1), [3, 2]),
        (lambda t: t.reshape(shape=[3, 2]), [3, 2]),
        (lambda t: t.reshape([3, 2]), [3, 2]),
        (lambda t: t.reshape(3, 2), [3, 2]),
        (lambda t: t.view(shape=(6,)), [6]),
        (lambda t: t.expand(size=[4, 2, 3]), [4, 2, 3]),
        (lambda t: t.slice(dim=1, start=0, end=2), [2, 2]),
        (lambda t: t.slice(1, start=0, end=3, step=2), [2, 2]),
        (lambda t: t.sum(dim=1, keepdim=True), [2, 1]),
        (lambda t: t.mean(dim=0), [3]),
        (lambda t: t.max(dim=1, keepdim=False), [2]),
        (lambda t: t.argmax(dim=1), [2]),
        (lambda t: t.log_softmax(dim=1), [2, 3]),
        (lambda t: t.matmul(other=t.transpose(0, 1)), [2, 2]),
        (lambda t: t.to(device="cpu"), [2, 3]),
        (lambda t: t.to(dtype="float32"), [2, 3]),
    ],
)
def test_keywords(call, shape):
    assert call(t23()).shape == shape


def test_keyword_results_equal_positional_ones():
    t = t23()
    assert t.slice(dim=1, start=1, end=3).tolist() == t.slice(1, 1, 3).tolist()
    assert t.transpose(dim0=1, dim1=0).tolist() == t.transpose(1, 0).tolist()
    assert t.add_(other=Tensor([1.0, 1.0, 1.0]), alpha=2.0).tolist() == [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.reshape(3, shape=[2]),
        lambda t: t.reshape(shape=[6], other=1),
        lambda t: t.transpose(dim=0),
        lambda t: t.slice(dim=0, start=0),
        lambda t: t.matmul(t, other=t),
    ],
)
def test_wrong_keywords_are_type_errors(call):
    with pytest.raises(TypeError):
        call(t23())


@pytest.mark.parametrize(
    "method,expected",
    [
        ("transpose", "(self, /, dim0, dim1)"),
        ("reshape", "(self, /, *shape, **kwargs)"),
        ("slice", "(self, /, dim, start, end, step=1)"),
        ("sum", "(self, /, dim=None, keepdim=False)"),
        ("log_softmax", "(self, /, dim)"),
        ("matmul", "(self, /, other, precision='fast')"),
        ("add_", "(self, /, other, alpha=1.0)"),
        ("to", "(self, /, device=None, dtype=None)"),
        ("relu", "(self, /)"),
        ("backward", "(self, /)"),
    ],
)
def test_signatures(method, expected):
    assert str(inspect.signature(getattr(Tensor, method))) == expected


def test_every_public_method_has_a_signature():
    for name in dir(Tensor):
        attribute = getattr(Tensor, name)
        if callable(attribute) and not name.startswith("_"):
            inspect.signature(attribute)  # raises ValueError where there is none
    assert str(inspect.signature(Tensor)) == "(data, shape=None, device=None, dtype=None, requires_grad=True)"
    assert str(inspect.signature(Device)) == "(type='cpu')"
    for f in (Device.cpu, Device.cuda, Device.is_cuda_available, no_grad):
        inspect.signature(f)
    assert Tensor.transpose.__text_signature__ == "($self, /, dim0, dim1)"
