"""DLPack: zero-copy exchange with NumPy and PyTorch both ways, the versioned protocol with copy= and
dl_device=, copies where sharing is impossible, and nothing leaked or freed early."""

import gc
import sys
import threading

import micrograd_c
import pytest
from _helpers import require
from micrograd_c import Tensor, from_dlpack

np = require("numpy")
torch = require("torch")


def test_numpy_to_tensor_shares_the_numbers():
    a = np.arange(6.0).reshape(2, 3)
    t = from_dlpack(a)
    assert t.shape == [2, 3] and t.dtype == "float64" and not t.requires_grad
    a[0, 0] = 100.0
    assert t.tolist()[0][0] == 100.0
    t.add_(Tensor([1.0, 1.0, 1.0]))
    assert a[0].tolist() == [101.0, 2.0, 3.0]


def test_torch_both_ways_shares_the_numbers():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])
    tt = torch.from_dlpack(x)
    assert tt.dtype == torch.float64 and tt.data_ptr() == np.from_dlpack(x).ctypes.data
    tt[1, 1] = -5.0  # a write through the torch view is seen by our Tensor
    assert x.tolist() == [[1.0, 2.0], [3.0, -5.0]]
    back = from_dlpack(tt)
    back.add_(Tensor([10.0, 10.0]))  # and ours by torch
    assert tt.tolist() == [[11.0, 12.0], [13.0, 5.0]] and x.tolist() == tt.tolist()


def test_views_and_float32_keep_their_layout():
    a = np.arange(12.0).reshape(3, 4)
    v = from_dlpack(a.T[1:3])
    assert v.shape == [2, 3] and v.strides == [1, 4] and v.tolist() == a.T[1:3].tolist()
    f = from_dlpack(torch.arange(4, dtype=torch.float32))
    assert f.dtype == "float32" and f.tolist() == [0.0, 1.0, 2.0, 3.0]
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).transpose(0, 1)
    assert np.from_dlpack(t).tolist() == t.tolist() and torch.from_dlpack(t).stride() == (1, 3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(4),
        lambda: np.array([True, False]),
        lambda: torch.arange(3, dtype=torch.int32),
        lambda: np.arange(4.0)[::-1],
    ],
)
def test_other_dtypes_and_negative_strides_are_copied(make):
    x = make()
    t = from_dlpack(x)
    assert t.dtype == "float64" and t.tolist() == [float(v) for v in x.tolist()]
    with pytest.raises(BufferError, match="cannot be shared"):
        from_dlpack(make(), copy=False)


def test_read_only_arrays_are_copied():
    a = np.arange(3.0)
    a.flags.writeable = False
    t = from_dlpack(a)
    t.add_(Tensor([1.0, 1.0, 1.0]))
    assert a.tolist() == [0.0, 1.0, 2.0] and t.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(BufferError, match="read-only"):
        from_dlpack(a, copy=False)


def test_copy_true_copies():
    a = np.arange(3.0)
    t = from_dlpack(a, copy=True)
    a[0] = 9.0
    assert t.tolist() == [0.0, 1.0, 2.0]
    x = Tensor([1.0, 2.0])
    n = np.from_dlpack(x, copy=True)
    n[0] = 5.0
    assert x.tolist() == [1.0, 2.0]


def test_the_versioned_protocol():
    x = Tensor([1.0, 2.0])
    assert x.__dlpack_device__() == (1, 0)
    assert "dltensor_versioned" in repr(x.__dlpack__(max_version=(1, 0)))
    assert '"dltensor"' in repr(x.__dlpack__())  # an older consumer gets the plain capsule
    assert "dltensor_versioned" in repr(x.__dlpack__(max_version=(1, 2), dl_device=(1, 0), copy=False))
    with pytest.raises(BufferError, match="CPU"):
        x.__dlpack__(dl_device=(2, 0))
    with pytest.raises(TypeError, match="max_version"):
        x.__dlpack__(max_version="1.0")
    with pytest.raises(BufferError, match="CPU"):
        x.__dlpack__(dl_device=(1, 1))


def test_broadcast_views_export_read_only():
    e = Tensor([1.0, 2.0]).expand(3, 2)
    n = np.from_dlpack(e)
    assert n.tolist() == [[1.0, 2.0]] * 3 and not n.flags.writeable


def test_bad_inputs():
    with pytest.raises(TypeError, match="__dlpack__"):
        from_dlpack([1.0, 2.0])
    capsule = Tensor([1.0]).__dlpack__()
    from_dlpack(capsule)  # the old from_dlpack(capsule) form
    with pytest.raises(TypeError, match="used one"):
        from_dlpack(capsule)  # a capsule can be consumed once
    with pytest.raises(RuntimeError, match="CUDA"):
        from_dlpack(np.arange(2.0), device="cuda")


def test_nothing_leaks_and_nothing_is_freed_early():
    before = micrograd_c.live_tensors()
    x = Tensor([1.0, 2.0, 3.0])
    refs = sys.getrefcount(x)
    for _ in range(100):
        x.__dlpack__()  # capsules nobody consumes free their export
        x.__dlpack__(max_version=(1, 0))
    assert sys.getrefcount(x) == refs
    tt = torch.from_dlpack(x)
    del x
    gc.collect()
    assert tt.tolist() == [1.0, 2.0, 3.0]  # torch keeps our numbers alive
    del tt
    a = np.arange(5.0)
    t = from_dlpack(a)
    del a
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # and we keep NumPy's
    del t
    gc.collect()
    assert micrograd_c.live_tensors() == before


def test_the_deleter_may_run_in_another_thread():
    x = Tensor([1.0, 2.0])
    tensors = [torch.from_dlpack(x) for _ in range(20)]
    refs = sys.getrefcount(x)

    def drop():
        tensors.clear()  # each torch tensor calls our deleter from this thread

    thread = threading.Thread(target=drop)
    thread.start()
    thread.join()
    assert sys.getrefcount(x) == refs - 20
