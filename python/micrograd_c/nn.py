"""Neural nets on ``Value``, as in ``micrograd.nn``: same classes, signatures, parameter order and reprs.

Weights are drawn with Python's ``random.uniform(-1, 1)`` in micrograd's order, so after
``random.seed(s)`` a model holds exactly the weights micrograd's would.
"""

import random

from micrograd_c import _core
from micrograd_c.engine import Value

__all__ = ["Module", "Neuron", "Layer", "MLP"]


class Module:
    """Base class: ``parameters()`` lists the Values to train, ``zero_grad()`` resets their grads."""

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0

    def parameters(self):
        return []


def _check_size(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class Neuron(Module):
    """``nin`` weights and a bias: ``relu(w . x + b)``, or linear with ``nonlin=False``."""

    def __init__(self, nin, nonlin=True):
        _check_size("nin", nin)
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        # one C node for b + w[0]*x[0] + w[1]*x[1] + ..., summed in micrograd's order so the value is
        # bit for bit micrograd's; then a ReLU node if nonlin
        return _core.neuron(self.w, self.b, x, self.nonlin)

    def parameters(self):
        return self.w + [self.b]

    def __repr__(self):
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons on the same inputs. Like micrograd, a one-neuron layer returns a bare Value."""

    def __init__(self, nin, nout, **kwargs):
        _check_size("nout", nout)
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = _core.layer(self.neurons, x)  # [n(x) for n in self.neurons], in one C call
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self):
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A stack of layers, ReLU on all but the last: ``MLP(2, [16, 16, 1])``."""

    def __init__(self, nin, nouts):
        _check_size("nin", nin)
        nouts = list(nouts)
        if not nouts:
            raise ValueError("MLP needs at least one layer: nouts is empty")
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            # a one-neuron hidden layer returns a bare Value (micrograd's API); the next layer still
            # needs a list, which micrograd forgets: MLP(2, [16, 1, 1]) works here
            x = layer([x] if isinstance(x, Value) else x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self):
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


_core._set_neuron_class(Neuron)
