"""Optimizers with PyTorch's update rules, run in C: ``SGD``, ``Adam``, ``AdamW``.

Use them as in PyTorch, on any list of Values or leaf Tensors::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(100):
        loss = ...
        opt.zero_grad()
        loss.backward()
        opt.step()

or hand one to ``MLP.fit``. ``state_dict()`` / ``load_state_dict()`` carry the hyperparameters, the
step count and the momentum buffers, so training resumes exactly where it stopped.

Every hyperparameter is checked in C, however it arrives (constructor, ``opt.lr = ...``,
``load_state_dict``, a checkpoint file): torch.optim's rules (lr, momentum, weight_decay, eps >= 0; betas in
[0, 1); Nesterov needs momentum > 0 and dampening 0), and further every value finite and dampening in
[0, 1]. A bad one raises ValueError naming it.

As in PyTorch, a Tensor parameter whose ``grad`` is None is skipped by ``step()``: its value, momentum and
weight decay wait, and Adam counts its steps from its first gradient. (A Value always has a grad, 0 at first.)
"""

from micrograd_c import _core

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "KINDS"]


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
        """Zero every grad (a Tensor's stays a zero Tensor, as torch's ``zero_grad(set_to_none=False)``: so a
        Tensor that had a gradient once is stepped from then on; set ``t.grad = None`` to have it skipped)."""
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
        steps, buffers, skipped = self._core.state()
        config = dict(self._config, lr=self.lr)
        state = {"kind": self.kind, "config": config, "steps": steps, "buffers": buffers}
        if skipped is not None:  # only after a step skipped a Tensor without a gradient
            state["skipped"] = skipped
        return state

    def load_state_dict(self, state):
        """Restore ``state_dict()``: hyperparameters, steps and buffers, all checked before any changes."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(), not {type(state).__name__}")
        if state.get("kind") != self.kind:
            raise ValueError(f"state is for a {state.get('kind')!r} optimizer, this one is {self.kind!r}")
        config = state.get("config")
        if not isinstance(config, dict) or set(config) - set(self._config) - {"lr"}:
            raise ValueError(f"state's config must be a dict of this optimizer's settings, got {config!r}")
        before = self._core.state()
        backup = dict(self._config, lr=self.lr)
        self._core.set_config(**config)  # validated in C: a bad value raises and changes nothing
        try:
            self._core.set_state(state["steps"], state["buffers"], state.get("skipped"))
        except BaseException:
            self._core.set_config(**backup)
            self._core.set_state(*before)
            raise
        self._config.update((k, v) for k, v in config.items() if k != "lr")

    def __repr__(self):
        config = ", ".join(f"{k}={v!r}" for k, v in dict(self._config, lr=self.lr).items())
        return f"{type(self).__name__}({len(self.params)} parameters, {config})"


class SGD(Optimizer):
    """torch.optim.SGD: momentum, dampening, Nesterov momentum and weight decay (L2 on the gradient)."""

    kind = "sgd"  # the C library's name for it (mg_optim_kind_name), as model files record it

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(
            params,
            self.kind,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )


class Adam(Optimizer):
    """torch.optim.Adam (weight decay added to the gradient)."""

    kind = "adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, self.kind, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)


class AdamW(Optimizer):
    """torch.optim.AdamW (decoupled weight decay)."""

    kind = "adamw"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, self.kind, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)


# The optimizer class of each kind name (the C library's, in its order: _core.OPTIMIZERS), for whatever
# reads a name back (checkpoints, the CLI); tests check it against the C table.
KINDS = {cls.kind: cls for cls in (SGD, Adam, AdamW)}
