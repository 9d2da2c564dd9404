"""The type stubs of the C extension (python/micrograd_c/_core.pyi) match the module, checked by mypy's
stubtest: a renamed method, a changed signature or a new function without a stub fails here."""

import subprocess
import sys

from _helpers import require

require("mypy")


def test_stubs_match_the_extension(tmp_path):
    # run from an empty folder, so mypy's cache stays out of the tree and the installed package is the one read
    done = subprocess.run([sys.executable, "-m", "mypy.stubtest", "micrograd_c._core"], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_says_it_is_typed():
    import importlib.resources

    assert importlib.resources.files("micrograd_c").joinpath("py.typed").is_file()
