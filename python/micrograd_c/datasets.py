"""Small data sets with no dependencies.

``make_moons`` gives exactly what scikit-learn's ``make_moons`` gives after ``np.random.seed(seed)``
(scikit-learn draws from NumPy's global legacy generator): the same Mersenne Twister stream, the same
shuffle and the same Gaussian noise, so the demo runs identically with or without NumPy and scikit-learn.
"""

import math
import random

__all__ = ["make_moons", "NumpyLegacyRandom"]


class NumpyLegacyRandom:
    """The draws of ``numpy.random.RandomState(seed)`` that ``make_moons`` uses, in pure Python.

    Both libraries run MT19937 and turn two 32-bit words into a double the same way; only the seeding
    differs (NumPy's init_genrand for an int seed), so we seed the state by hand and hand it to ``random``.
    """

    def __init__(self, seed):
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed must be between 0 and 2**32 - 1, got {seed}")
        state = [seed]
        for i in range(1, 624):
            state.append((1812433253 * (state[-1] ^ (state[-1] >> 30)) + i) & 0xFFFFFFFF)
        self._rng = random.Random()
        self._rng.setstate((3, tuple(state) + (624,), None))
        self._gauss_next = None

    def random(self):
        return self._rng.random()

    def gauss(self):
        """A standard normal draw: NumPy's legacy polar method, which yields its values in pairs."""
        if self._gauss_next is not None:
            value, self._gauss_next = self._gauss_next, None
            return value
        while True:
            x1 = 2.0 * self.random() - 1.0
            x2 = 2.0 * self.random() - 1.0
            r2 = x1 * x1 + x2 * x2
            if 0.0 < r2 < 1.0:
                break
        f = math.sqrt(-2.0 * math.log(r2) / r2)
        self._gauss_next = f * x1
        return f * x2

    def interval(self, max_value):
        """A uniform int in [0, max_value], by masked rejection like NumPy's legacy bounded draw."""
        mask = max_value
        for shift in (1, 2, 4, 8, 16, 32):
            mask |= mask >> shift
        bits = 32 if max_value <= 0xFFFFFFFF else 64
        while True:
            value = self._rng.getrandbits(bits) & mask
            if value <= max_value:
                return value

    def shuffle(self, items):
        for i in reversed(range(1, len(items))):
            j = self.interval(i)
            items[i], items[j] = items[j], items[i]


def _linspace(start, stop, num):
    # NumPy's formula: start + i * step, with the last point exactly `stop`
    if num == 1:
        return [start]
    step = (stop - start) / (num - 1)
    points = [start + i * step for i in range(num)]
    points[-1] = stop
    return points


def make_moons(n_samples=100, noise=None, seed=None):
    """Two interleaving half circles: ``(X, y)`` with X a list of ``[x0, x1]`` and y a list of 0/1.

    With ``seed`` the result equals ``sklearn.datasets.make_moons(n_samples, noise=noise)`` run right after
    ``np.random.seed(seed)``; without it, a fresh random seed is used.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")
    rng = NumpyLegacyRandom(random.getrandbits(32) if seed is None else seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = _linspace(0.0, math.pi, n_out)
    inner = _linspace(0.0, math.pi, n_in)
    X = [[math.cos(t), math.sin(t)] for t in outer]
    X += [[1.0 - math.cos(t), 1.0 - math.sin(t) - 0.5] for t in inner]
    y = [0] * n_out + [1] * n_in
    order = list(range(n_samples))
    rng.shuffle(order)
    X = [X[i] for i in order]
    y = [y[i] for i in order]
    if noise is not None:
        for row in X:
            for k in range(2):
                row[k] += noise * rng.gauss()
    return X, y
