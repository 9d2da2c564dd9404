"""micrograd_c.Tensor against PyTorch float64: every op and view, values and gradients.

Tolerance everywhere: |got - ref| <= 1e-12 + 1e-9 * |ref| (NaN only equals NaN). Inputs are random
(seeded NumPy, plus hypothesis for shapes), including broadcasting, non-contiguous operands (transposed,
sliced with steps) and reused tensors. Every test also checks that no C tensor is left alive.
"""

import gc
import os
import sys
import threading

import micrograd_c
import pytest
from _helpers import require
from hypothesis import given, settings
from hypothesis import strategies as st
from micrograd_c import Device, Tensor, no_grad
from micrograd_c._core import live_tensors

np = require("numpy")
torch = require("torch")

RTOL, ATOL = 1e-9, 1e-12


@pytest.fixture(autouse=True)
def no_leaked_tensors():
    gc.collect()
    before = live_tensors()
    yield
    gc.collect()
    assert live_tensors() == before, f"{live_tensors() - before} C tensors leaked"


def assert_close(got, ref):
    got = np.asarray(got.numpy() if isinstance(got, Tensor) else got, dtype=np.float64)
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} != {ref.shape}"
    both_nan = np.isnan(got) & np.isnan(ref)
    with np.errstate(invalid="ignore"):
        ok = both_nan | (got == ref) | (np.abs(got - ref) <= ATOL + RTOL * np.abs(ref))
    assert ok.all(), f"mismatch:\n got {got[~ok]}\n ref {ref[~ok]}"


def rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def pair(array):
    """The same leaf for us and for torch."""
    return Tensor(array.tolist() if array.ndim else float(array)), torch.tensor(
        array, dtype=torch.float64, requires_grad=True
    )


def check_op(fn, arrays, weights_seed=0):
    """fn(*tensors) on our tensors and torch's: values, then gradients of sum(out * w) for random w."""
    ours, theirs = zip(*(pair(a) for a in arrays))
    out, ref = fn(*ours), fn(*theirs)
    assert_close(out, ref)
    w = np.random.default_rng(weights_seed).uniform(0.5, 1.5, size=tuple(ref.shape))
    (out * Tensor(w.tolist() if w.ndim else float(w), requires_grad=False)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for o, t in zip(ours, theirs):
        if t.grad is None:
            assert o.grad is None or np.allclose(o.grad.numpy(), 0)
        else:
            assert_close(o.grad, t.grad)


# ---- micrograd_rs compatibility ----


def test_micrograd_rs_shape_strides_views():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == [2, 3] and t.strides == [3, 1] and t.is_contiguous()
    assert t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    tt = t.transpose(0, 1)
    assert tt.shape == [3, 2] and tt.strides == [1, 3] and not tt.is_contiguous()
    assert tt.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    s = tt.slice(0, 0, 3, 2)
    assert s.shape == [2, 2] and s.tolist() == [[1.0, 4.0], [3.0, 6.0]] and not s.is_contiguous()
    r = tt.reshape([6])
    assert r.shape == [6] and r.tolist() == [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    assert t.reshape([3, 2]).strides == [2, 1]
    assert tt.contiguous().is_contiguous() and tt.contiguous().tolist() == tt.tolist()


def test_micrograd_rs_ops_and_backward():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    b = Tensor([[10.0, 20.0], [30.0, 40.0]])
    assert (a + b).tolist() == [[11.0, 22.0], [33.0, 44.0]]
    assert (a * b).tolist() == [[10.0, 40.0], [90.0, 160.0]]
    with pytest.raises(ValueError):
        _ = a + Tensor([1.0, 2.0, 3.0])
    x = Tensor([[1.0, -2.0], [3.0, 4.0]], device=Device.cpu())
    (x.relu() * x).sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0], [6.0, 8.0]]
    x = Tensor([1.5, 2.0, -3.0])
    (x**3.0).sum().backward()
    assert x.grad.tolist() == [3 * 1.5 * 1.5, 12.0, 27.0]


def test_devices():
    assert repr(Device.cpu()) == "Device(cpu)" and str(Device.cpu()) == "cpu"
    assert Device.is_cuda_available() is False
    assert Device.cpu() == Device("cpu") and Device.cpu().is_cpu() and not Device.cpu().is_cuda()
    with pytest.raises(RuntimeError, match="CUDA"):
        Device.cuda()
    t = Tensor([1.0, 2.0], device="cpu")
    assert t.to(Device.cpu()) is t and t.cpu() is t and t.to("cpu") is t
    assert t.device == Device.cpu()
    with pytest.raises(RuntimeError, match="CUDA"):
        t.cuda()
    with pytest.raises(RuntimeError, match="CUDA"):
        t.to("cuda")
    with pytest.raises(RuntimeError, match="CUDA"):
        Tensor([1.0], device="cuda")
    with pytest.raises(ValueError):
        Tensor([1.0], device="tpu")


def test_shape_argument_and_dtype():
    t = Tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], shape=[2, 3])
    assert t.shape == [2, 3] and t.is_leaf and t.requires_grad
    with pytest.raises(ValueError, match="reshape"):
        Tensor([1.0, 2.0, 3.0], shape=[2, 2])
    f = Tensor([[0.1, 0.2]], dtype="float32")
    assert f.dtype == "float32" and f.tolist()[0][0] == float(np.float32(0.1))
    assert (f * f).dtype == "float32" and (f + Tensor([1.0, 2.0])).dtype == "float64"
    assert f.to("float64").dtype == "float64" and f.double().dtype == "float64"
    assert f.double().float().dtype == "float32"
    (f * 3.0).sum().backward()
    assert f.grad.dtype == "float32" and f.grad.tolist() == [[3.0, 3.0]]
    with pytest.raises(ValueError, match="dtype"):
        Tensor([1.0], dtype="int8")


@pytest.mark.parametrize("name", ["add", "mul", "div", "matmul", "exp", "log_softmax", "chain"])
def test_float32(name):
    """float32 tensors compute each op in float64 and round its result once: a single op equals the
    float64 result rounded; a chain of ops stays within a few float32 ulps of it."""
    fn = {
        "add": lambda x, y: x + y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "matmul": lambda x, y: x @ y,
        "exp": lambda x, y: x.exp(),
        "log_softmax": lambda x, y: x.log_softmax(0),
        "chain": lambda x, y: (x.exp() - y.tanh()).sum(1),
    }[name]
    rng = np.random.default_rng(14)
    a = rng.uniform(0.5, 2.0, size=(4, 4)).astype(np.float32)
    b = rng.uniform(0.5, 2.0, size=(4, 4)).astype(np.float32)
    got = fn(Tensor(a), Tensor(b))
    ref = fn(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)).numpy()
    assert got.dtype == "float32"
    if name == "chain":
        assert np.allclose(np.asarray(got), ref, rtol=1e-6, atol=0)
    else:
        assert np.array_equal(np.asarray(got), ref.astype(np.float32))
    got.sum().backward()


# ---- elementwise ops, broadcasting, scalars ----

BROADCAST_CASES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((2, 1, 4), (3, 1)),
    ((5,), ()),
    ((), (2, 3)),
    ((1, 3, 1), (2, 1, 4)),
    ((2, 3, 4), (1, 1, 4)),
]


@pytest.mark.parametrize("sa,sb", BROADCAST_CASES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_broadcast(op, sa, sb):
    rng = np.random.default_rng(abs(hash((op, sa, sb))) % 2**32)
    a, b = rand(rng, sa), rand(rng, sb)
    if op == "div":
        b = np.where(np.abs(b) < 0.2, 0.7, b)
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[
        op
    ]
    check_op(fn, [a, b])


@pytest.mark.parametrize("c", [2.5, -1.0, 0.0, 3])
def test_scalars_on_either_side(c):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.3, 2.0, size=(3, 4))
    for fn in [
        lambda x: x + c,
        lambda x: c + x,
        lambda x: x - c,
        lambda x: c - x,
        lambda x: x * c,
        lambda x: c * x,
        lambda x: -x,
        lambda x: c / x,
    ]:
        check_op(fn, [a])
    if c != 0:
        check_op(lambda x: x / c, [a])


@pytest.mark.parametrize("p", [2.0, 3.0, 0.5, -1.5, 1.0, 0.0, -2])
def test_pow(p):
    rng = np.random.default_rng(2)
    check_op(lambda x: x**p, [rng.uniform(0.2, 3.0, size=(4, 3))])


@pytest.mark.parametrize("name", ["relu", "exp", "log", "tanh", "sigmoid"])
def test_unary(name):
    rng = np.random.default_rng(3)
    a = rng.uniform(0.1, 3.0, size=(5, 4)) if name == "log" else rng.uniform(-3, 3, size=(5, 4))
    if name == "relu":
        a[0, 0] = 0.0
    check_op(lambda x: getattr(x, name)(), [a])


def test_unary_edge_values():
    x = Tensor([1000.0, -1000.0, 0.0, float("nan"), float("inf")])
    tx = torch.tensor([1000.0, -1000.0, 0.0, float("nan"), float("inf")], dtype=torch.float64)
    for name in ["tanh", "sigmoid", "exp", "relu"]:
        assert_close(getattr(x, name)(), getattr(tx, name)())
    assert_close(Tensor([0.0, -1.0]).log(), torch.tensor([0.0, -1.0], dtype=torch.float64).log())
    assert_close(Tensor([1.0, 0.0]) / Tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]) / torch.tensor([0.0, 0.0]))


def test_reused_tensors():
    rng = np.random.default_rng(4)
    a = rand(rng, (3, 3))
    check_op(lambda t: t * t, [a])
    check_op(lambda t: t + t, [a])
    check_op(lambda t: (t * t + t) * (t - 1.0), [a])
    check_op(lambda t: (t @ t) * t, [a])
    x = Tensor(2.0)
    b = x + x
    (b + b).backward()
    assert x.grad.item() == 4.0


# ---- non-contiguous operands: the op sees a transposed or step-sliced view of the leaf ----

VIEWS = {
    "transpose": (lambda t: t.transpose(0, 1), lambda t: t.transpose(0, 1)),
    "step_slice": (lambda t: t.slice(1, 1, 6, 2), lambda t: t[:, 1:6:2]),
    "getitem": (lambda t: t[1:, ::2], lambda t: t[1:, ::2]),
}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("op", ["mul", "exp", "matmul", "sum0", "max1", "log_softmax", "reshape"])
def test_non_contiguous_inputs(view, op):
    base = rand(np.random.default_rng(5), (6, 6))
    ours_v, torch_v = VIEWS[view]

    def max1(v):
        r = v.max(1, keepdim=True)
        return r[0] if isinstance(v, torch.Tensor) else r

    fn = {
        "mul": lambda v: v * v.exp(),
        "exp": lambda v: v.exp(),
        "matmul": lambda v: v @ v.transpose(0, 1),
        "sum0": lambda v: v.sum(0) * 2.0,
        "max1": max1,
        "log_softmax": lambda v: v.log_softmax(1),
        "reshape": lambda v: v.reshape([-1]) * 3.0,
    }[op]
    a, ta = pair(base)
    out, ref = fn(ours_v(a)), fn(torch_v(ta))
    assert_close(out, ref)
    out.sum().backward()
    ref.sum().backward()
    assert_close(a.grad, ta.grad)


def test_views_share_storage_and_grads_flow_to_base():
    a, ta = pair(np.arange(24.0).reshape(2, 3, 4))
    views = [
        lambda t: t.transpose(0, 2),
        lambda t: t[1],
        lambda t: t[:, -1, 1::2],
        lambda t: t[..., 2],
        lambda t: t.reshape([6, 4])[::3],
        lambda t: t.expand([5, 2, 3, 4]) if isinstance(t, Tensor) else t.expand(5, 2, 3, 4),
    ]
    for k, fn in enumerate(views):
        v, tv = fn(a), fn(ta)
        assert v.shape == list(tv.shape) and v.strides == list(tv.stride()), k
        assert_close(v, tv)
        (v * v).sum().backward()
        (tv * tv).sum().backward()
        assert_close(a.grad, ta.grad)
    d = a.detach()
    assert not d.requires_grad and d.is_leaf
    d.add_(1.0)  # the same storage: a sees it
    assert a.tolist()[0][0][0] == 1.0


@pytest.mark.parametrize(
    "key",
    [
        0,
        -1,
        (1, 2),
        (slice(None), 1),
        (slice(1, None), slice(None, None, 2)),
        (Ellipsis, 0),
        (0, Ellipsis, slice(1, 3)),
        slice(-2, None),
        (slice(5, 9),),
        (1, -3, -4),
    ],
)
def test_indexing(key):
    a, ta = pair(np.random.default_rng(6).uniform(-1, 1, size=(3, 4, 5)))
    v, tv = a[key], ta[key]
    assert v.shape == list(tv.shape)
    assert_close(v, tv)
    (v * 2.0).sum().backward()
    (tv * 2.0).sum().backward()
    assert_close(a.grad, ta.grad)


def test_iteration_and_len():
    t = Tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert len(t) == 3 and [r.tolist() for r in t] == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


# ---- matmul ----

MATMUL_CASES = [
    ((3, 4), (4, 5)),
    ((1, 1), (1, 1)),
    ((2, 3, 4), (4, 2)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((5,), (2, 5, 3)),
    ((2, 3, 5), (5,)),
    ((20, 37), (37, 41)),
    ((70, 65), (65, 33)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_CASES)
def test_matmul(sa, sb):
    rng = np.random.default_rng(sum(sa) * 31 + sum(sb))
    check_op(lambda x, y: x @ y, [rand(rng, sa), rand(rng, sb)])
    check_op(lambda x, y: x.matmul(y), [rand(rng, sa), rand(rng, sb)])


def test_matmul_big_threads_and_layouts():
    rng = np.random.default_rng(7)
    a, b = rand(rng, (200, 300)), rand(rng, (200, 300))
    ta, tb = torch.tensor(a), torch.tensor(b)
    for threads in [1, 2, 0]:
        micrograd_c.set_num_threads(threads)
        assert_close(Tensor(a) @ Tensor(b).transpose(0, 1), ta @ tb.T)
        assert_close(Tensor(a).transpose(0, 1) @ Tensor(b), ta.T @ tb)
    assert micrograd_c.get_num_threads() >= 1


def test_matmul_releases_the_gil():
    """Matmuls from several Python threads at once give the same numbers as one after another."""
    rng = np.random.default_rng(8)
    mats = [rand(rng, (160, 160)) for _ in range(4)]
    ref = [torch.tensor(m) @ torch.tensor(m) for m in mats]
    results = [None] * 4

    def work(i):
        t = Tensor(mats[i])
        for _ in range(3):
            results[i] = (t @ t).numpy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for got, r in zip(results, ref):
        assert_close(got, r)


def test_matmul_lets_other_threads_run():
    """The GIL is released inside the kernel: with a switch interval of 100 s, another thread can only
    run while `inside` is set if the matmul let go of the GIL."""
    import time

    a = Tensor(np.random.default_rng(12).uniform(-1, 1, size=(512, 512)), requires_grad=False)
    state = {"inside": False, "seen": 0}
    started = threading.Event()

    def work():
        started.set()
        state["inside"] = True
        for _ in range(3):
            a @ a
        state["inside"] = False

    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        th = threading.Thread(target=work)
        th.start()
        started.wait()
        while th.is_alive():
            if state["inside"]:
                state["seen"] += 1
            time.sleep(0.0002)
        th.join()
    finally:
        sys.setswitchinterval(old)
    assert state["seen"] > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_kernels_work_after_fork():
    """The worker pool is per process: a forked child starts its own."""
    import warnings

    a = Tensor(np.random.default_rng(13).uniform(-1, 1, size=(300, 300)), requires_grad=False)
    ref = (a @ a).numpy()  # the pool is running in the parent now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if the numbers are right
        ok = np.array_equal((a @ a).numpy(), ref) and np.array_equal((a @ a).numpy(), ref)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# ---- reductions and log_softmax ----


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (None, True), (0, False), (1, True), (-1, False), (2, True)])
def test_reductions(name, dim, keepdim):
    rng = np.random.default_rng(9)
    a = rand(rng, (3, 4, 5))

    def fn(t):
        if isinstance(t, torch.Tensor):
            if dim is None:
                r = getattr(t, name)()
                return r.reshape([1, 1, 1]) if keepdim else r
            r = getattr(t, name)(dim=dim, keepdim=keepdim)
            return r[0] if name == "max" else r
        return getattr(t, name)(dim=dim, keepdim=keepdim)

    check_op(fn, [a])


def test_max_ties_follow_torch():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    check_op(lambda t: t.max(), [a])  # torch shares the gradient between ties
    for dim in [0, 1]:
        ours, ta = pair(a)
        ours.max(dim).sum().backward()
        ta.max(dim)[0].sum().backward()
        assert_close(ours.grad, ta.grad)  # to the index torch returns


def test_argmax():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [0.0, -1.0, 5.0]])
    t, ta = Tensor(a), torch.tensor(a)
    assert t.argmax().item() == ta.argmax().item()
    for dim in [0, 1, -1]:
        assert t.argmax(dim).tolist() == ta.max(dim)[1].double().tolist()
        assert t.argmax(dim, keepdim=True).shape == list(ta.argmax(dim, keepdim=True).shape)
    assert not t.argmax().requires_grad


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_softmax(dim):
    rng = np.random.default_rng(10)
    a = rand(rng, (4, 6), -5, 5)
    a[0, 0] = 700.0  # no overflow
    check_op(lambda t: t.log_softmax(dim), [a])


def test_mlp_step_matches_torch():
    """A tiny MLP with hinge loss: forward, backward and one SGD step, as torch does it."""
    rng = np.random.default_rng(11)
    x, y = rand(rng, (10, 2)), np.sign(rand(rng, (10, 1)))
    w1, b1, w2, b2 = rand(rng, (2, 16)), rand(rng, (16,)), rand(rng, (16, 1)), rand(rng, (1,))
    ours = [Tensor(p) for p in (w1, b1, w2, b2)]
    theirs = [torch.tensor(p, requires_grad=True) for p in (w1, b1, w2, b2)]

    def loss(ps, X, Y):
        h = (X @ ps[0] + ps[1]).relu()
        s = h @ ps[2] + ps[3]
        return (1.0 + -Y * s).relu().mean() + 1e-4 * sum((p * p).sum() for p in ps)

    lo = loss(ours, Tensor(x, requires_grad=False), Tensor(y, requires_grad=False))
    lt = loss(theirs, torch.tensor(x), torch.tensor(y))
    assert_close(lo, lt)
    lo.backward()
    lt.backward()
    for o, t in zip(ours, theirs):
        assert_close(o.grad, t.grad)
        o.add_(o.grad, alpha=-0.5)
        with torch.no_grad():
            t -= 0.5 * t.grad
        assert_close(o, t)


# ---- hypothesis: random shapes ----

dims = st.integers(min_value=1, max_value=4)


@st.composite
def broadcastable(draw):
    nd = draw(st.integers(0, 4))
    shape = [draw(dims) for _ in range(nd)]
    a = [s if draw(st.booleans()) else 1 for s in shape]
    b = [s if draw(st.booleans()) else 1 for s in shape]
    return tuple(a[draw(st.integers(0, nd)) :]), tuple(b[draw(st.integers(0, nd)) :]), draw(st.integers(0, 2**31))


@settings(max_examples=40, deadline=None)
@given(broadcastable(), st.sampled_from(["add", "sub", "mul", "div", "chain"]))
def test_hypothesis_broadcasting(shapes, op):
    sa, sb, seed = shapes
    rng = np.random.default_rng(seed)
    a, b = rand(rng, sa), rng.uniform(0.5, 2.0, size=sb)
    fn = {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "chain": lambda x, y: ((x * y).tanh() + y).exp() / y,
    }[op]
    check_op(fn, [a, b])


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(0, 3), st.booleans(), st.integers(0, 2**31))
def test_hypothesis_matmul(n, k, m, batch, transposed, seed):
    rng = np.random.default_rng(seed)
    sa = (batch, n, k) if batch else (n, k)
    if transposed:
        check_op(lambda x, y: x @ y.transpose(0, 1), [rand(rng, sa), rand(rng, (m, k))])
    else:
        check_op(lambda x, y: x @ y, [rand(rng, sa), rand(rng, (k, m))])


@settings(max_examples=30, deadline=None)
@given(st.lists(dims, min_size=1, max_size=4), st.data())
def test_hypothesis_reductions(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    name = data.draw(st.sampled_from(["sum", "mean", "max", "log_softmax"]))
    a = np.random.default_rng(data.draw(st.integers(0, 2**31))).uniform(-3, 3, size=shape)

    def fn(t):
        if name == "log_softmax":
            return t.log_softmax(dim)
        r = getattr(t, name)(dim=dim, keepdim=keepdim)
        return r[0] if isinstance(t, torch.Tensor) and name == "max" else r

    check_op(fn, [a])


OPS_FOR_GRAPHS = [
    ("add", 2, lambda x, y: x + y),
    ("sub", 2, lambda x, y: x - y),
    ("mul", 2, lambda x, y: x * y),
    ("div", 2, lambda x, y: x / (y * y + 1.0)),
    ("matmul", 2, lambda x, y: x @ y),
    ("tanh", 1, lambda x: x.tanh()),
    ("sigmoid", 1, lambda x: x.sigmoid()),
    ("relu", 1, lambda x: x.relu()),
    ("exp", 1, lambda x: (x * 0.3).exp()),
    ("log", 1, lambda x: (x * x + 1.0).log()),
    ("pow", 1, lambda x: x**2.0),
    ("t", 1, lambda x: x.transpose(0, 1)),
    ("softmax", 1, lambda x: x.log_softmax(1)),
    ("mean0", 1, lambda x: x - x.mean(0, keepdim=True)),
    ("max1", 1, lambda x: x * (x.max(1, keepdim=True) if isinstance(x, Tensor) else x.max(1, keepdim=True)[0])),
    ("slice", 1, lambda x: x[::2, :].sum(0, keepdim=True) + x),
]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(OPS_FOR_GRAPHS) - 1), st.integers(0, 99), st.integers(0, 99)),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 2**31),
)
def test_hypothesis_random_graphs(steps, seed):
    """Random graphs over 3x3 tensors in which any earlier node can be used again (reuse, diamonds)."""
    rng = np.random.default_rng(seed)
    leaves = [rand(rng, (3, 3), -1.5, 1.5) for _ in range(3)]
    ours = [Tensor(a) for a in leaves]
    theirs = [torch.tensor(a, requires_grad=True) for a in leaves]
    pool_o, pool_t = list(ours), list(theirs)
    for op, i, j in steps:
        _, arity, fn = OPS_FOR_GRAPHS[op]
        x, y = i % len(pool_o), j % len(pool_o)
        args_o = (pool_o[x], pool_o[y])[:arity]
        args_t = (pool_t[x], pool_t[y])[:arity]
        pool_o.append(fn(*args_o))
        pool_t.append(fn(*args_t))
    out_o = sum((t.sum() for t in pool_o[3:]), Tensor(0.0, requires_grad=False))
    out_t = sum(t.sum() for t in pool_t[3:])
    assert_close(out_o, out_t)
    out_o.backward()
    out_t.backward()
    for o, t in zip(ours, theirs):
        if t.grad is None:
            assert o.grad is None or not o.grad.numpy().any()
        else:
            assert_close(o.grad, t.grad)


# ---- autograd semantics ----


def test_requires_grad_no_grad_detach():
    a = Tensor([1.0, 2.0])
    c = Tensor([3.0, 4.0], requires_grad=False)
    assert not (c * 2.0).requires_grad and (a * c).requires_grad
    with no_grad():
        assert not micrograd_c._core.is_grad_enabled()
        b = a * 2.0
    assert micrograd_c._core.is_grad_enabled()
    assert not b.requires_grad and b.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        b.sum().backward()
    a.requires_grad = False
    assert not (a * 2.0).requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (c + Tensor([1.0, 1.0])).requires_grad = False
    assert a.detach().requires_grad is False


def test_no_grad_as_a_decorator():
    a = Tensor([1.0, 2.0])

    @no_grad()
    def double(t):
        """Twice t."""
        return t * 2.0

    class Model:
        @no_grad()
        def predict(self, t):
            return t * 3.0

    assert not double(a).requires_grad and double.__name__ == "double" and double.__doc__ == "Twice t."
    assert not Model().predict(a).requires_grad and Model().predict(a).tolist() == [3.0, 6.0]
    assert (a * 2.0).requires_grad  # recording is back on after the call
    with pytest.raises(TypeError):
        no_grad()(42)


def test_backward_accumulates_and_zero_grad():
    x = Tensor([1.0, 2.0, 3.0])
    y = (x * x).sum()
    assert x.grad is None
    y.backward()
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0, 12.0]  # leaves accumulate, as torch
    x.zero_grad()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    x.grad = None
    assert x.grad is None
    assert y.grad.item() == 1.0


def test_deep_chain_no_recursion():
    x = Tensor([1.0])
    t = x
    for i in range(100000):
        t = t * 1.0 if i % 2 else t[0:1]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100)
    try:
        t.sum().backward()
        del t
    finally:
        sys.setrecursionlimit(limit)
    assert x.grad.item() == 1.0


# ---- NumPy and buffers ----


def test_numpy_and_buffers():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    strided = base[::2, 1::2]
    assert Tensor(strided).tolist() == strided.tolist()
    assert Tensor(base.T).tolist() == base.T.tolist()
    for dtype in [np.float32, np.int8, np.int32, np.int64, np.uint16, np.bool_]:
        arr = (np.arange(6).reshape(2, 3) % 3).astype(dtype)
        t = Tensor(arr)
        assert t.tolist() == arr.astype(np.float64).tolist()
        assert t.dtype == ("float32" if dtype == np.float32 else "float64")
    assert Tensor(np.float64(2.5)).item() == 2.5 and Tensor(np.float64(2.5)).shape == []
    import array

    assert Tensor(array.array("d", [1.0, 2.0])).tolist() == [1.0, 2.0]
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    n = t.numpy()
    assert n.dtype == np.float64 and n.tolist() == t.tolist()
    n[0, 0] = 99.0  # a copy
    assert t.tolist()[0][0] == 1.0
    view = np.asarray(t.transpose(0, 1))  # the buffer protocol: a view with strides
    assert view.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert (t + np.ones((2, 2))).tolist() == [[2.0, 3.0], [4.0, 5.0]]
    assert Tensor([[1.0, 2.0]], dtype="float32").numpy().dtype == np.float64
    assert Tensor(5.0).item() == 5.0 and Tensor(True).item() == 1.0


def test_bool_float_pickle_copy():
    import copy
    import pickle

    assert bool(Tensor([2.0])) and not bool(Tensor(0.0)) and float(Tensor([[1.5]])) == 1.5
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))
    x = Tensor([[1.0, 2.0]], dtype="float32")
    y = x * 2.0
    for clone in [pickle.loads(pickle.dumps(y)), copy.deepcopy(y), copy.copy(y)]:
        assert clone.tolist() == y.tolist() and clone.dtype == "float32" and clone.is_leaf
    assert pickle.loads(pickle.dumps(Tensor(3.0))).item() == 3.0


def test_repr():
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1.0, 2.0], shape=[2], device=cpu)"
    assert "float32" in repr(Tensor([1.0], dtype="float32"))
    assert repr(Tensor(np.zeros(2000))) == "Tensor(shape=[2000], device=cpu)"


# ---- bad inputs: a clear exception each, nothing leaked ----


@pytest.mark.parametrize(
    "data,exc,match",
    [
        ([[1.0, 2.0], [3.0]], ValueError, "ragged"),
        ([[1.0, 2.0], 3.0], ValueError, "ragged"),
        ([1.0, [2.0]], ValueError, "ragged"),
        ([1.0, "x"], TypeError, "real numbers"),
        ([None], TypeError, "real numbers"),
        ("abc", TypeError, "Tensor data"),
        ({"a": 1}, TypeError, "Tensor data"),
        ([[[[[[[[[1.0]]]]]]]]], ValueError, "at most 8"),
    ],
)
def test_bad_construction(data, exc, match):
    with pytest.raises(exc, match=match):
        Tensor(data)


def test_huge_shared_lists_are_refused():
    row = [0.0] * 1000
    with pytest.raises(MemoryError):
        Tensor([[[[[[row] * 1000] * 1000] * 1000] * 1000] * 1000])


def test_bad_ops():
    a = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(ValueError, match=r"\[2, 3\] and \[2\]"):
        a + Tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="matmul"):
        a @ a
    with pytest.raises(ValueError, match="backward"):
        (a * 2.0).backward()
    with pytest.raises(ValueError, match="reshape"):
        a.reshape([4, 2])
    with pytest.raises(IndexError):
        a.transpose(0, 2)
    with pytest.raises(IndexError):
        a[2]
    with pytest.raises(IndexError):
        a[0, 0, 0]
    with pytest.raises(IndexError):
        a.slice(3, 0, 1, 1)
    with pytest.raises(ValueError, match="step"):
        a.slice(1, 0, 2, 0)
    with pytest.raises(ValueError, match="before start"):
        a.slice(1, 2, 1)
    with pytest.raises(ValueError, match="negative slice"):
        a[::-1]
    with pytest.raises(IndexError):
        a.sum(dim=5)
    with pytest.raises(TypeError):
        a**a
    with pytest.raises(TypeError):
        a + "x"
    with pytest.raises(TypeError):
        a["x"]
    with pytest.raises(ValueError, match="empty"):
        Tensor([]).max()
    with pytest.raises(ValueError, match="item"):
        a.item()
    with pytest.raises(TypeError):
        len(Tensor(1.0))
    with pytest.raises(ValueError, match="at most 8"):
        a.reshape([1] * 9)
    assert a.slice(1, -2, 100).tolist() == [[2.0, 3.0], [5.0, 6.0]]  # clamped, as micrograd_rs


def test_threads_setting():
    micrograd_c.set_num_threads(1)
    assert micrograd_c.get_num_threads() == 1
    micrograd_c.set_num_threads(0)
    assert micrograd_c.get_num_threads() >= 1
    with pytest.raises(ValueError):
        micrograd_c.set_num_threads(-1)
    micrograd_c.set_num_threads(0)


def test_soak_no_growth():
    x = Tensor(np.ones((8, 8)))
    for _ in range(2000):
        ((x @ x).relu() + 1.0).log_softmax(1).sum().backward()
    assert live_tensors() >= 1
