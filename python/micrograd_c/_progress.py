"""A dependency-free progress bar: redrawn in place on a terminal, a few plain lines otherwise."""

import sys
import time


class Progress:
    def __init__(self, total, label="step", stream=None, width=30):
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stdout
        self.width = width
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._next_line = 0

    def update(self, done, **metrics):
        """Report `done` of `total` units, with metrics such as loss=0.1 or accuracy=0.98."""
        # accuracy as a percentage, as every final line says it (fit's, the demo's, the command line's)
        text = " ".join(
            f"{name} {value:.1%}" if name == "accuracy" else f"{name} {value:.6g}" for name, value in metrics.items()
        )
        elapsed = time.perf_counter() - self.start
        if self.interactive:
            filled = self.width * done // self.total
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {self.label} {done}/{self.total} {text} {elapsed:.1f}s")
            if done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif done >= self._next_line or done == self.total:
            # in a log, about ten lines per run
            self.stream.write(f"{self.label} {done}/{self.total} {text} {elapsed:.1f}s\n")
            self._next_line = done + max(1, self.total // 10)
