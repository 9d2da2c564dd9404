"""The benchmarks start: `bench/run.py --help` works and every bench module imports without torch.

No benchmark runs here. Each check runs in a fresh interpreter, so bench's modules (common.py, ...)
never mix with the test suite's own.
"""

import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "bench")
MODULES = ["run", "common", "report", "machine", "isolated", "ops", "graphs", "moons", "digits", "cbench"]


def python(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)


def test_run_help():
    done = python(os.path.join(BENCH, "run.py"), "--help")
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout


def test_modules_import_without_torch():
    code = (f"import sys; sys.path.insert(0, {BENCH!r})\n"
            f"for name in {MODULES!r}: __import__(name)\n"
            "heavy = [m for m in ('torch', 'micrograd', 'sklearn') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = python("-c", code)
    assert done.returncode == 0, done.stderr


def test_table_and_ratios():
    code = (f"import sys; sys.path.insert(0, {BENCH!r})\n"
            "from report import Row, markdown_table\n"
            "rows = [Row('op', 'micrograd_c', 'a*b', 50.0, 'ns'), Row('op', 'micrograd', 'a*b', 1000.0, 'ns'),\n"
            "        Row('op', 'PyTorch', 'a*b', 2000.0, 'ns'),\n"
            "        Row('depth', 'micrograd', 'deep', 994, kind='depth'),\n"
            "        Row('depth', 'micrograd_c', 'deep', 10**6, kind='depth', at_least=True)]\n"
            "table = markdown_table(rows)\n"
            "assert '| op | micrograd_c | 50.0 ns | default | 20.0x faster | 40.0x faster |' in table, table\n"
            "assert '≥ 1,006x deeper' in table, table\n")
    done = python("-c", code)
    assert done.returncode == 0, done.stderr
