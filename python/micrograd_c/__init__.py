"""micrograd_c: micrograd's autograd engine and neural nets, with the core written in C.

A drop-in for micrograd: change the import and the same code gives the same numbers, faster.

    from micrograd_c.engine import Value    # as micrograd.engine
    from micrograd_c.nn import MLP          # as micrograd.nn
    from micrograd_c import Value, MLP      # as micrograd_rs
"""

from micrograd_c import losses, optim
from micrograd_c._core import (
    Device,
    Tensor,
    from_dlpack,
    get_num_threads,
    live_tensors,
    live_values,
    no_grad,
    set_num_threads,
    value_size,
    version,
)
from micrograd_c.draw import draw_dot, to_dot
from micrograd_c.engine import Value
from micrograd_c.nn import MLP, Layer, Module, Neuron, load_checkpoint

__version__ = version()  # the C library's mg_version(): the version is written once, in micrograd.h

__all__ = [
    "Value",
    "Module",
    "Neuron",
    "Layer",
    "MLP",
    "load_checkpoint",
    "losses",
    "optim",
    "live_values",
    "value_size",
    "draw_dot",
    "to_dot",
    "__version__",
    "Tensor",
    "Device",
    "no_grad",
    "set_num_threads",
    "get_num_threads",
    "live_tensors",
    "from_dlpack",
]
