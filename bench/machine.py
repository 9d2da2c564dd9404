"""The machine and the software a run was measured on."""

import datetime
import os
import platform
import subprocess
from importlib import metadata


def cpu_fields():
    """The first processor's fields of /proc/cpuinfo ({} elsewhere)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the end of the first processor
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model():
    """The CPU's name, with its family and model numbers: a virtual machine may name only the line
    ("AMD EPYC"), and the numbers tell its generation (AMD's family 25 is Zen 3 and Zen 4).
    """
    fields = cpu_fields()
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def simd_flags():
    """The vector instructions the CPU offers that matter to the matrix kernels, from /proc/cpuinfo."""
    flags = cpu_fields().get("flags")
    if flags is None:
        return "unknown"
    names = {"avx512f": "AVX-512F", "avx2": "AVX2", "fma": "FMA"}
    offered = [name for flag, name in names.items() if flag in flags.split()]
    return ", ".join(offered) if offered else f"none of {', '.join(names.values())}"


def library_simd():
    """The kernels micrograd_c picked at run time ("avx512", "avx2" or "generic"): the C library's
    mg_simd(), read through ctypes from the extension that links it; None where it cannot be read."""
    import ctypes

    try:
        from micrograd_c import _core

        function = ctypes.CDLL(_core.__file__).mg_simd
    except (ImportError, OSError, AttributeError):
        return None
    function.restype = ctypes.c_char_p
    return function().decode()


def compiler_version():
    try:
        done = subprocess.run(["cc", "--version"], capture_output=True, text=True, timeout=10)
        return done.stdout.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "no cc found"


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def source_version():
    """The commit of the tree the benchmarks ran from, marked when it has uncommitted changes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown (not a git checkout)"
    return commit + (" with uncommitted changes" if changed else "")


def describe():
    """A list of (label, value) pairs."""
    return [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("CPU", cpu_model()),
        ("SIMD", f"{simd_flags()}; micrograd_c's kernels: {library_simd() or 'unknown'}"),
        ("cores", str(os.cpu_count())),
        ("load average when the run began (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("C compiler", compiler_version()),
        ("micrograd-c", f"{package_version('micrograd-c')}, source {source_version()}"),
        ("micrograd", package_version("micrograd")),
        ("torch", package_version("torch")),
        ("numpy", package_version("numpy")),
        ("scikit-learn", package_version("scikit-learn")),
    ]
