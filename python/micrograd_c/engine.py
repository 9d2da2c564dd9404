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
- Value is final: it cannot be subclassed or take new attributes (it has no ``__dict__``), which keeps
  it 24 bytes and out of the cyclic garbage collector.
- Also: ``tanh``, ``exp``, ``log``, ``sigmoid`` and ``Value ** Value``.
- Pickling or copying a Value gives a detached leaf with the same data and grad.
"""

from micrograd_c._core import Value

__all__ = ["Value"]
