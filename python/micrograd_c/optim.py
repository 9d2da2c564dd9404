"""Optimizers with PyTorch's update rules, run in C: ``SGD``, ``Adam``, ``AdamW``.

Use them as in PyTorch, on any list of Values or leaf Tensors::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(100):
        loss = ...
        opt.zero_grad()
        loss.backward()
        opt.step()

or hand one to ``MLP.fit``. ``state_dict()`` / ``load_state_dict()`` carry the step count and the
momentum buffers, so training resumes exactly where it stopped.
"""

from micrograd_c import _core

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Base class: holds the parameters and the C optimizer state."""

    def __init__(self, params, kind, **config):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self._config = dict(config)
        self._core = _core.Optimizer(kind, _core.parameter_count(self.params), **config)
        self.kind = kind

    def step(self):
        """Update every parameter's data from its grad."""
        self._core.step(self.params)

    def zero_grad(self):
        for p in self.params:
            if isinstance(p, _core.Tensor):
                p.zero_grad()
            else:
                p.grad = 0.0

    @property
    def lr(self):
        return self._core.lr

    @lr.setter
    def lr(self, value):
        self._core.lr = value

    @property
    def steps(self):
        """Updates made so far."""
        return self._core.steps

    def state_dict(self):
        steps, buffers = self._core.state()
        config = dict(self._config, lr=self.lr)
        return {"kind": self.kind, "config": config, "steps": steps, "buffers": buffers}

    def load_state_dict(self, state):
        if state.get("kind") != self.kind:
            raise ValueError(f"state is for a {state.get('kind')!r} optimizer, this one is {self.kind!r}")
        self._core.set_state(state["steps"], state["buffers"])
        self.lr = state["config"]["lr"]

    def __repr__(self):
        config = ", ".join(f"{k}={v!r}" for k, v in dict(self._config, lr=self.lr).items())
        return f"{type(self).__name__}({len(self.params)} parameters, {config})"


class SGD(Optimizer):
    """torch.optim.SGD: momentum, dampening, Nesterov momentum and weight decay (L2 on the gradient)."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, "sgd", lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)


class Adam(Optimizer):
    """torch.optim.Adam (weight decay added to the gradient)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, "adam", lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                         weight_decay=weight_decay)


class AdamW(Optimizer):
    """torch.optim.AdamW (decoupled weight decay)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, "adamw", lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                         weight_decay=weight_decay)
