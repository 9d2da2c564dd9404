"""MLP(init=...): micrograd's weights by default, PyTorch's Kaiming and Xavier uniform bounds on request.

The bounds are checked against torch.nn.init itself (calculate_gain, and the weights kaiming_uniform_ and
xavier_uniform_ draw), the weights against their draws from `random` in micrograd's order."""

import math
import random

import micrograd_c
import pytest
from _helpers import require
from micrograd_c import MLP, _core, optim
from micrograd_c.nn import Layer, Neuron

torch = require("torch")
np = require("numpy")

LAYERS = [(784, 256, True), (256, 10, False), (2, 16, True), (16, 1, False), (1, 1, True)]


def torch_bound(init, fan_in, fan_out, nonlin):
    """The largest |w| of a big draw by torch's own init function (it fills its bound to ~1e-4)."""
    w = torch.empty(fan_out, fan_in, dtype=torch.float64)
    rows = max(1, 200_000 // fan_in)  # enough draws to reach the bound; fan_in and fan_out are what count
    big = torch.empty(rows, fan_in, dtype=torch.float64)
    if init == "kaiming_uniform":
        torch.nn.init.kaiming_uniform_(big, mode="fan_in", nonlinearity="relu" if nonlin else "linear")
    else:  # xavier reads fan_out from the shape: draw with the real one, several times
        gain = torch.nn.init.calculate_gain("relu" if nonlin else "linear")
        big = torch.cat([torch.nn.init.xavier_uniform_(w.clone(), gain=gain) for _ in range(rows // fan_out + 1)])
    return big.abs().max().item()


@pytest.mark.parametrize("init", ["kaiming_uniform", "xavier_uniform"])
@pytest.mark.parametrize("fan_in,fan_out,nonlin", LAYERS)
def test_bounds_are_pytorchs(init, fan_in, fan_out, nonlin):
    gain = torch.nn.init.calculate_gain("relu" if nonlin else "linear")
    assert gain == (math.sqrt(2.0) if nonlin else 1.0)
    want = gain * math.sqrt(3.0 / fan_in) if init == "kaiming_uniform" else gain * math.sqrt(6.0 / (fan_in + fan_out))
    got = _core.init_bound(init, "relu" if nonlin else "linear", fan_in, fan_out)
    assert got == pytest.approx(want, rel=1e-15)
    drawn = torch_bound(init, fan_in, fan_out, nonlin)  # torch's own draws lie within our bound and fill it
    assert 0.999 * got < drawn <= got


def test_the_names_come_from_c_and_micrograd_is_the_default():
    assert _core.INITS == ("micrograd", "kaiming_uniform", "xavier_uniform")
    assert _core.init_bound("micrograd", "relu", 784, 256) == 1.0
    random.seed(5)
    default = [p.data for p in MLP(3, [4, 2]).parameters()]
    random.seed(5)
    assert [p.data for p in MLP(3, [4, 2], init="micrograd").parameters()] == default


@pytest.mark.parametrize("init", _core.INITS)
def test_weights_are_random_uniform_draws_in_micrograds_order(init):
    sizes = [5, [7, 3, 2]]
    random.seed(11)
    model = MLP(*sizes, init=init)
    random.seed(11)
    want, width = [], sizes[0]
    for i, nout in enumerate(sizes[1]):
        bound = _core.init_bound(init, "relu" if i < len(sizes[1]) - 1 else "linear", width, nout)
        for _ in range(nout):
            want += [random.uniform(-bound, bound) for _ in range(width)] + [0.0]
        width = nout
    assert [p.data for p in model.parameters()] == want
    assert repr(model) == repr(MLP(*sizes))  # the same layers, ReLU and Linear neurons


def test_a_wide_model_fills_each_layers_bound():
    random.seed(0)
    model = MLP(784, [256, 10], init="kaiming_uniform")
    for layer, nonlin in zip(model.layers, (True, False)):
        bound = (math.sqrt(2.0) if nonlin else 1.0) * math.sqrt(3.0 / len(layer.neurons[0].w))
        weights = [w.data for n in layer.neurons for w in n.w]
        assert all(-bound <= w <= bound for w in weights)
        assert max(abs(w) for w in weights) > 0.99 * bound
        assert all(n.b.data == 0.0 for n in layer.neurons)


def test_scaled_init_keeps_a_wide_models_outputs_near_unit_size():
    # the reason for the option: with 784 inputs micrograd's uniform(-1, 1) makes outputs in the hundreds
    X = np.random.default_rng(0).standard_normal((64, 784))
    spread = {}
    for init in _core.INITS:
        random.seed(1)
        spread[init] = float(np.std(MLP(784, [64, 10], init=init).predict(X)))
    assert spread["micrograd"] > 50
    assert spread["kaiming_uniform"] < 3 and spread["xavier_uniform"] < 3


def test_kaiming_trains_where_micrograds_init_stalls():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, 784))
    y = np.arange(512) % 10
    X = centers[y] + 0.5 * rng.standard_normal((512, 784))
    final = {}
    for init in ("micrograd", "kaiming_uniform"):
        random.seed(0)
        model = MLP(784, [32, 10], init=init)
        history = model.fit(
            X,
            y,
            loss="cross_entropy",
            batch_size=128,
            optimizer=optim.SGD(model.parameters(), lr=0.01),
            epochs=2,
            verbose=False,
        )
        final[init] = history[-1]["loss"]
    # log(10) = 2.30 is a uniform guess's loss; micrograd's init is still far above it after two epochs
    assert final["kaiming_uniform"] < 2.0 and final["micrograd"] > 10.0


def test_layer_and_neuron_take_it_too():
    random.seed(2)
    layer = Layer(100, 4, init="xavier_uniform", nonlin=False)
    bound = math.sqrt(6.0 / 104)
    assert all(abs(w.data) <= bound for n in layer.neurons for w in n.w) and not layer.neurons[0].nonlin
    random.seed(2)
    neuron = Neuron(100, bound=bound, nonlin=False)
    assert [w.data for w in neuron.w] == [w.data for w in layer.neurons[0].w]


@pytest.mark.parametrize(
    "init,error,message",
    [
        ("he", ValueError, "unknown init 'he': expected micrograd, kaiming_uniform or xavier_uniform"),
        ("Kaiming_Uniform", ValueError, "expected micrograd, kaiming_uniform or xavier_uniform"),
        ("", ValueError, "unknown init ''"),
        (None, TypeError, "init must be a str, one of 'micrograd', 'kaiming_uniform', 'xavier_uniform'; got None"),
        (1, TypeError, "init must be a str"),
    ],
)
def test_unknown_inits_are_refused(init, error, message):
    for make in (lambda: MLP(2, [3, 1], init=init), lambda: Layer(2, 3, init=init)):
        with pytest.raises(error, match=message):
            make()


@pytest.mark.parametrize("bound", [0, -1.0, float("nan"), float("inf"), True, "1", None])
def test_a_neurons_bound_is_a_positive_finite_number(bound):
    with pytest.raises(ValueError, match=f"bound must be a positive finite number, got {bound!r}"[:40]):
        Neuron(3, bound=bound)


def test_init_bound_refuses_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        _core.init_bound("micrograd", "gelu", 2, 2)
    with pytest.raises(ValueError, match="fan_in and fan_out must be >= 1, got 0 and 2"):
        _core.init_bound("kaiming_uniform", "relu", 0, 2)
    with pytest.raises(TypeError):
        _core.init_bound("kaiming_uniform", "relu", 2.5, 2)
    assert micrograd_c.MLP is MLP
