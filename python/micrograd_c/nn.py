"""Neural nets on ``Value``, as in ``micrograd.nn``: same classes, signatures, parameter order and reprs.

Weights are drawn with Python's ``random.uniform(-1, 1)`` in micrograd's order, so after
``random.seed(s)`` a model holds exactly the weights micrograd's would. ``MLP(nin, nouts,
init="kaiming_uniform")`` (or ``"xavier_uniform"``) scales each layer's bound as PyTorch does, for
models with many inputs; the draws are the same calls, ``random.uniform(-bound, bound)``.
"""

import random
import sys
import threading

from micrograd_c import _core, optim
from micrograd_c.engine import Value

__all__ = ["Module", "Neuron", "Layer", "MLP", "load_checkpoint"]


class Module:
    """Base class: ``parameters()`` lists the Values to train, ``zero_grad()`` resets their grads."""

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0

    def parameters(self):
        return []


# ids of the models that fit() is training now: a second fit of one model (another thread, or fit's
# callback) would train from the same start and overwrite the first's result, so it is refused
_training = set()
_training_lock = threading.Lock()


class _Training:
    """``with _Training(model):`` claims the model for one fit, or raises RuntimeError."""

    def __init__(self, model):
        self.key = id(model)

    def __enter__(self):
        with _training_lock:
            if self.key in _training:
                raise RuntimeError(
                    "this model is being trained by fit() already (in another thread, or this "
                    "is fit's callback): wait for that fit to return"
                )
            _training.add(self.key)

    def __exit__(self, *exc):
        with _training_lock:
            _training.discard(self.key)


def _check_size(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _init_bound(init, nin, nout, nonlin):
    """The bound of the weights of a layer of nin inputs and nout neurons under `init` (C's formula)."""
    if not isinstance(init, str):
        raise TypeError(f"init must be a str, one of {', '.join(map(repr, _core.INITS))}; got {init!r}")
    return _core.init_bound(init, "relu" if nonlin else "linear", nin, nout)


def _check_count(name, value, least, none=None):
    """An int >= least (or None, meaning `none`, where allowed); any size: fit caps or refuses it in C."""
    if value is None and none is not None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        allowed = f"None ({none}) or an int >= {least}" if none is not None else f"an int >= {least}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


class Neuron(Module):
    """``nin`` weights and a bias: ``relu(w . x + b)``, or linear with ``nonlin=False``.

    The weights are ``random.uniform(-bound, bound)``, micrograd's ``uniform(-1, 1)`` by default; Layer and
    MLP compute the bound from their ``init``. The bias starts at 0."""

    def __init__(self, nin, nonlin=True, bound=1.0):
        _check_size("nin", nin)
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 < bound < float("inf"):
            raise ValueError(f"bound must be a positive finite number, got {bound!r}")
        self.w = [Value(random.uniform(-bound, bound)) for _ in range(nin)]
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
    """``nout`` neurons on the same inputs. Like micrograd, a one-neuron layer returns a bare Value.

    init: "micrograd" (weights uniform(-1, 1)), "kaiming_uniform" or "xavier_uniform" (PyTorch's bounds for
    nin inputs, nout neurons and the layer's activation; see MLP)."""

    def __init__(self, nin, nout, init="micrograd", **kwargs):
        _check_size("nin", nin)
        _check_size("nout", nout)
        bound = _init_bound(init, nin, nout, kwargs.get("nonlin", True))
        self.neurons = [Neuron(nin, bound=bound, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = _core.layer(self.neurons, x)  # [n(x) for n in self.neurons], in one C call
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self):
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A stack of layers, ReLU on all but the last: ``MLP(2, [16, 16, 1])``.

    init: how the weights are drawn, each with ``random.uniform(-bound, bound)`` in micrograd's order
    (biases start at 0):

    - "micrograd" (the default): bound 1, micrograd's own weights after the same ``random.seed``;
    - "kaiming_uniform": PyTorch's ``kaiming_uniform_`` (mode fan_in) with each layer's gain, sqrt(2) for
      the ReLU layers and 1 for the linear last one: bound = gain * sqrt(3 / fan_in);
    - "xavier_uniform": PyTorch's ``xavier_uniform_`` with the same gains: gain * sqrt(6 / (fan_in + fan_out)).

    With many inputs (say over 50) micrograd's init saturates: a 784-input ReLU layer sums hundreds of
    products of size ~0.5, the outputs reach the hundreds and the loss does not come down; use
    "kaiming_uniform" there."""

    def __init__(self, nin, nouts, init="micrograd"):
        _check_size("nin", nin)
        nouts = list(nouts)
        if not nouts:
            raise ValueError("MLP needs at least one layer: nouts is empty")
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], init=init, nonlin=i != len(nouts) - 1) for i in range(len(nouts))]

    def __call__(self, x):
        # x = layer(x) for each layer, in one C call; a one-neuron hidden layer returns a bare Value
        # (micrograd's API) and the next layer gets [x], which micrograd forgets: MLP(2, [16, 1, 1]) works
        return _core.mlp(self.layers, x)

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self):
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"

    def to_onnx(self, path, **options):
        """Write this model as ONNX to ``path``: input "input" [N, nin], output "output" [N, nout].

        One Gemm per layer and Relu after the ReLU layers, float64 by default; options (opset=17,
        dtype="float64" or "float32") go to ``micrograd_c.onnx_export.export``. Returns the ModelProto.
        Needs the onnx package: ``pip install micrograd-c[onnx]``.
        """
        from micrograd_c import onnx_export

        return onnx_export.export(self, path, **options)

    def fit(
        self,
        X,
        y,
        loss="svm",
        optimizer=None,
        epochs=100,
        batch_size=None,
        l2=0.0,
        shuffle=True,
        seed=0,
        schedule="constant",
        lr_end=0.0,
        threads=None,
        verbose=True,
        callback=None,
        total_epochs=None,
        precision="exact",
        dtype="float64",
    ):
        """Train in C, whole epochs at a time with the GIL released; returns the history.

        With many inputs (say over 50), micrograd's init saturates and the loss barely moves: build the model
        with MLP(nin, nouts, init="kaiming_uniform").

        X: rows of features (a list of lists or a 2-D array); y: one label per row (-1/+1 for "svm",
        0/1 for "bce", the class index for "cross_entropy") or rows of targets for "mse".
        loss: "svm" (micrograd's max-margin hinge), "mse", "bce" (on logits) or "cross_entropy"
        (softmax on the outputs). l2: adds l2 * sum(p**2) over the parameters, as micrograd's demo.
        optimizer: from micrograd_c.optim, made on this model's parameters (default SGD, lr 0.1).
        epochs: how many epochs this call trains. batch_size: None (or 0) for the whole data set.
        shuffle and seed: the order of samples of each epoch, made from (seed, the epoch's number).
        schedule: "constant", "linear" or "cosine", from the optimizer's lr to lr_end over the run: this
        call's epochs, or total_epochs. The optimizer's lr stays the base rate.
        threads: None or 0 follows micrograd_c.set_num_threads (every core by default), the one thread
        setting of tensor kernels and fit; an int overrides it for this call, and more than the cores are
        capped at the core count (with a RuntimeWarning). The result is bit for bit the same for any number.
        precision: "exact" (the default) sums each neuron as micrograd does, its bias and then w[i] * x[i] in
        order, each product rounded: micrograd's numbers. "fast" fuses each multiply and add (FMA): faster on
        CPUs whose multiply and add share units (most Intel cores), different in the last bits.
        dtype: "float64" (the default) or "float32": the parameters are rounded to float32 when training
        starts, trained in float32 (layers, gradients, the optimizer's update; its state stays float64) and
        written back to the Values at the end: about twice the speed, float32's accuracy, as PyTorch in
        float32. Any precision and dtype keep the thread invariance.
        callback(epoch, loss, accuracy) runs after each epoch, epochs counting from 1 (as in the history and the
        progress line); returning True stops training. If it raises (or Ctrl-C arrives), the model keeps
        what it has learned so far, in step with the optimizer.

        Resuming: the optimizer counts its steps, and fit numbers epochs from them (steps // batches per
        epoch), so the shuffled order continues where the last call stopped. For the schedule to continue
        too, give the whole run's length as total_epochs in every call: fit(epochs=k, total_epochs=n), a
        checkpoint (model.save(path, optimizer)), load_checkpoint(path), then fit(epochs=n - k,
        total_epochs=n) gives bit for bit the parameters of fit(epochs=n). Without total_epochs each call
        runs its own schedule from lr to lr_end, as before.

        Returns a list with one dict per epoch: {"epoch", "loss", "accuracy"} (accuracy is nan for mse);
        "epoch" counts from 1 in each call, as the progress line and the callback do.
        """
        import warnings

        from micrograd_c._progress import Progress

        params = self.parameters()
        if optimizer is None:
            optimizer = optim.SGD(params, lr=0.1)
        if not isinstance(optimizer, optim.Optimizer):
            raise TypeError(f"optimizer must come from micrograd_c.optim, not {type(optimizer).__name__}")
        if len(optimizer.params) != len(params) or any(a is not b for a, b in zip(optimizer.params, params)):
            raise ValueError("the optimizer was made for other parameters than this model's")
        _check_count("epochs", epochs, 0)
        _check_count("batch_size", batch_size, 0, none="the whole data set")
        _check_count("total_epochs", total_epochs, 1, none="this call's epochs")
        _check_count("threads", threads, 0, none="the set_num_threads setting")
        _check_count("seed", seed, 0)
        if seed >= 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        cores = _core.num_cores()
        if threads is not None and threads > cores:
            warnings.warn(
                f"fit: threads={threads} is more than the {cores} cores; using {cores}", RuntimeWarning, stacklevel=2
            )
            threads = cores
        X, y = _as_arrays(X, y)
        history = []
        # progress goes to stderr, like the command line's: stdout stays the program's own output
        progress = Progress(epochs, label="epoch", stream=sys.stderr) if verbose and epochs else None

        def on_epoch(index, loss_value, accuracy):
            epoch = index + 1  # epochs count from 1, the same in the history, the progress line and the callback
            history.append({"epoch": epoch, "loss": loss_value, "accuracy": accuracy})
            if progress:
                metrics = {"loss": loss_value} if accuracy != accuracy else {"loss": loss_value, "accuracy": accuracy}
                progress.update(epoch, **metrics)
            return bool(callback(epoch, loss_value, accuracy)) if callback else False

        n_inputs, sizes, activations = self._shape()
        with _Training(self):
            _core.fit(
                params,
                n_inputs,
                sizes,
                activations,
                X,
                y,
                optimizer._core,
                loss,
                epochs,
                batch_size,
                l2=l2,
                shuffle=shuffle,
                seed=seed,
                schedule=schedule,
                lr_end=lr_end,
                threads=threads,
                callback=on_epoch,
                total_epochs=total_epochs,
                precision=precision,
                dtype=dtype,
            )
        return history

    def predict(self, X, precision="exact", dtype="float64"):
        """The model's outputs for many inputs at once, computed in C with no graph: a list of rows.

        precision and dtype as for fit: "exact" and "float64" give what calling the model on each row gives,
        bit for bit."""
        n_inputs, sizes, activations = self._shape()
        return _core.predict(
            self.parameters(), n_inputs, sizes, activations, _as_arrays(X, [])[0], precision=precision, dtype=dtype
        )

    def save(self, path, optimizer=None, step=0, metadata=None):
        """Write the model (and, for a checkpoint, the optimizer's state and the step) to a safetensors file.

        Tensors are named like a PyTorch nn.Sequential state_dict ("0.weight", "0.bias", "2.weight", ...),
        float64. metadata: a dict of str to str kept in the file. The write is atomic: a crash leaves the
        old file or the new one. Load with MLP.load(path) or micrograd_c.load_checkpoint(path).

        Save never writes what load rejects: more than 256 layers, more than 4096 metadata keys, a header
        over 100,000,000 bytes, NUL characters or reserved keys in metadata, or optimizer settings that are
        not finite raise ValueError before anything is written. Only a regular file is replaced: a FIFO,
        socket or device raises ValueError, a folder IsADirectoryError, each left as it was. A symbolic link
        is written through (the link stays), and a replaced file keeps its permissions."""
        if optimizer is not None:
            if not isinstance(optimizer, optim.Optimizer):
                raise TypeError(f"optimizer must come from micrograd_c.optim, not {type(optimizer).__name__}")
            params = self.parameters()
            if len(optimizer.params) != len(params) or any(a is not b for a, b in zip(optimizer.params, params)):
                raise ValueError("the optimizer was made for other parameters than this model's")
        n_inputs, sizes, activations = self._shape()
        _core.save_model(
            path,
            self.parameters(),
            n_inputs,
            sizes,
            activations,
            optimizer._core if optimizer is not None else None,
            step,
            metadata,
        )

    @classmethod
    def load(cls, path):
        """The model saved in a safetensors file, with the file's own metadata in ``model.metadata``."""
        return load_checkpoint(path)[0]

    def _shape(self):
        """(n_inputs, layer sizes, activation names), checking every layer is uniform as fit needs."""
        if not self.layers:
            raise ValueError("the MLP has no layers")
        sizes, activations = [], []
        n_inputs = width = len(self.layers[0].neurons[0].w)
        for layer in self.layers:
            nonlin = layer.neurons[0].nonlin
            for neuron in layer.neurons:
                if len(neuron.w) != width or neuron.nonlin != nonlin:
                    raise ValueError("every neuron of a layer must take the same inputs and activation")
            sizes.append(len(layer.neurons))
            activations.append("relu" if nonlin else "linear")
            width = len(layer.neurons)
        return n_inputs, sizes, activations

    @classmethod
    def _from_parameters(cls, n_inputs, sizes, activations, params):
        """A model with these weights, made without drawing from `random` (so loading never changes it)."""
        for name in activations:
            if name not in ("relu", "linear"):
                raise ValueError(f"the file has a {name!r} layer; micrograd's MLP has only relu and linear layers")
        model = cls.__new__(cls)
        model.layers = []
        values = iter(params)
        width = n_inputs
        for size, name in zip(sizes, activations):
            layer = Layer.__new__(Layer)
            layer.neurons = []
            for _ in range(size):
                neuron = Neuron.__new__(Neuron)
                neuron.w = [Value(next(values)) for _ in range(width)]
                neuron.b = Value(next(values))
                neuron.nonlin = name == "relu"
                layer.neurons.append(neuron)
            model.layers.append(layer)
            width = size
        return model


def load_checkpoint(path):
    """(model, optimizer or None, step) from a file written by ``model.save(path, optimizer, step)``.

    The optimizer comes back on the new model's parameters with its state, so training resumes exactly."""
    contents = _core.load_model(path)
    model = MLP._from_parameters(contents["n_inputs"], contents["sizes"], contents["activations"], contents["params"])
    model.metadata = contents["metadata"]
    saved = contents["optimizer"]
    optimizer = None
    if saved is not None:
        params = model.parameters()
        kind = optim.KINDS[saved["kind"]]
        if kind is optim.SGD:
            optimizer = optim.SGD(
                params,
                lr=saved["lr"],
                momentum=saved["momentum"],
                dampening=saved["dampening"],
                weight_decay=saved["weight_decay"],
                nesterov=saved["nesterov"],
            )
        else:
            optimizer = kind(
                params,
                lr=saved["lr"],
                betas=(saved["beta1"], saved["beta2"]),
                eps=saved["eps"],
                weight_decay=saved["weight_decay"],
            )
        optimizer._core.set_state(saved["steps"], saved["buffers"])
    return model, optimizer, contents["step"]


def _as_arrays(X, y):
    """NumPy arrays become contiguous float64 (read without a Python loop); lists pass as they are."""
    try:
        import numpy as np
    except ImportError:
        return X, y
    if isinstance(X, np.ndarray):
        X = np.ascontiguousarray(X, dtype=np.float64)
    if isinstance(y, np.ndarray):
        y = np.ascontiguousarray(y, dtype=np.float64)
    return X, y


_core._set_nn_classes(Neuron, Layer)
