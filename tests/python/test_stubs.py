"""The type stubs of the C extension (python/micrograd_c/_core.pyi) match the module, checked by mypy's
stubtest: a renamed method, a changed signature or a new function without a stub fails here."""

import subprocess
import sys

from _helpers import require

require("mypy")


def test_stubs_match_the_extension(tmp_path):
    # run from an empty folder, so mypy's cache stays out of the tree and the installed package is the one read
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "micrograd_c._core"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_says_it_is_typed():
    import importlib.resources

    assert importlib.resources.files("micrograd_c").joinpath("py.typed").is_file()


def test_every_function_and_method_of_the_extension_has_a_signature():
    """__text_signature__ everywhere: inspect.signature and help() show the real parameters."""
    import inspect

    import micrograd_c._core as core

    missing = []
    for name in dir(core):
        obj = getattr(core, name)
        if name.startswith("__") or name == "_NoGradFunction" or not callable(obj):
            continue
        members = [(name, obj)]
        if isinstance(obj, type):
            members += [
                (f"{name}.{m}", getattr(obj, m))
                for m in vars(obj)
                if callable(getattr(obj, m)) and not m.startswith("__")
            ]
        for label, member in members:
            try:
                inspect.signature(member)
            except (ValueError, TypeError):
                missing.append(label)
    assert missing == []
