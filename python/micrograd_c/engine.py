"""The scalar autograd engine: ``Value``, as in ``micrograd.engine``.

``Value`` lives in the C extension; this module is where micrograd users import it from.
What differs from micrograd, on purpose:

- ``data`` and ``grad`` are always floats (micrograd keeps an int where you gave one).
- Ops with a plain number (``a * 2.0``) make one node, not two: ``_prev`` holds only the Values.
- ``a - b``, ``a / b`` and ``-a`` are ops of their own (``'-'``, ``'/'``, ``'neg'``) rather than
  compositions of ``+``, ``*`` and ``**-1``; results agree with micrograd's to the last bit or two.
  With a number, ``a - 2.0`` is ``a + (-2.0)`` (op ``'+'``, exact), and ``x ** 2.0`` reads ``'**2'``.
- A neuron of ``micrograd_c.nn`` is one ``'affine'`` node (b + w . x, summed in micrograd's order, so
  the same value) followed by ``'ReLU'``, not micrograd's chain of 2n + 1 nodes.
- Value itself takes no new attributes (it has no ``__dict__``), which keeps it 32 bytes and out of the
  cyclic garbage collector; a subclass gets a ``__dict__`` (and the collector) as usual. Results of ops
  are plain Values, as micrograd's ops make ``Value(...)``.
- A label (``Value(2.0, label='a')``, ``v.label = 'a'``, as in micrograd's lecture; ``draw_dot`` shows it),
  a subclass instance and its attributes belong to the Python object: an intermediate Value nobody holds
  any more comes back from ``_prev`` as a new plain Value, with the same data and grad.
- ``device`` (micrograd_rs): ``Value(x, device='cpu')``, ``v.device``, ``v.to(device)``, ``v.cpu()``,
  ``v.cuda()``. Values compute on the CPU; CUDA raises RuntimeError when no GPU is usable.
- ``with micrograd_c.no_grad():`` records no graph: every op gives a leaf, as in PyTorch.
- Also: ``tanh``, ``exp``, ``log``, ``sigmoid``, ``Value ** Value``, and ``_inputs`` (the inputs in order)
  and ``_constant`` (the 2.0 of ``a * 2.0``) for tools.
- Pickling or copying a Value gives a detached leaf with the same data, grad and label.
"""

from micrograd_c._core import Value

__all__ = ["Value"]
