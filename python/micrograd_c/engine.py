"""The scalar autograd engine: ``Value``, as in ``micrograd.engine``.

``Value`` lives in the C extension; this module is where micrograd users import it from.
What differs from micrograd, on purpose:

- ``data`` and ``grad`` are always floats (micrograd keeps an int where you gave one).
- Ops with a plain number (``a * 2.0``) make one node, not two: ``_prev`` holds only the Values.
- ``a - b``, ``a / b`` and ``-a`` are ops of their own (``'-'``, ``'/'``, ``'neg'``) rather than
  compositions of ``+``, ``*`` and ``**-1``; results agree with micrograd's to the last bit or two.
- Also: ``tanh``, ``exp``, ``log``, ``sigmoid`` and ``Value ** Value``.
- Pickling or copying a Value gives a detached leaf with the same data and grad.
"""

from micrograd_c._core import Value

__all__ = ["Value"]
