"""The machine and the software a run was measured on."""

import datetime
import os
import platform
import subprocess
from importlib import metadata


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
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
