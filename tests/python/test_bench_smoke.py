"""The benchmarks start: `bench/run.py --help` works and every bench module imports without torch.

No benchmark runs here. Each check runs in a fresh interpreter, so bench's modules (common.py, ...)
never mix with the test suite's own.
"""

import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "bench")
MODULES = ["run", "common", "report", "machine", "isolated", "ops", "graphs", "moons", "digits", "cbench", "scale"]


def python(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)


def test_run_help():
    done = python(os.path.join(BENCH, "run.py"), "--help")
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout


def test_modules_import_without_torch():
    code = (
        f"import sys; sys.path.insert(0, {BENCH!r})\n"
        f"for name in {MODULES!r}: __import__(name)\n"
        "heavy = [m for m in ('torch', 'micrograd', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = python("-c", code)
    assert done.returncode == 0, done.stderr


def test_table_and_ratios():
    code = (
        f"import sys; sys.path.insert(0, {BENCH!r})\n"
        "from report import Row, markdown_table\n"
        "rows = [Row('op', 'micrograd_c', 'a*b', 50.0, 'ns'), Row('op', 'micrograd', 'a*b', 1000.0, 'ns'),\n"
        "        Row('op', 'PyTorch', 'a*b', 2000.0, 'ns'),\n"
        "        Row('depth', 'micrograd', 'deep', 994, kind='depth'),\n"
        "        Row('depth', 'micrograd_c', 'deep', 10**6, kind='depth', at_least=True)]\n"
        "table = markdown_table(rows)\n"
        "assert '| op | micrograd_c | 50.0 ns | default | 20.0x faster | 40.0x faster |' in table, table\n"
        "assert '≥ 1,006x deeper' in table, table\n"
    )
    done = python("-c", code)
    assert done.returncode == 0, done.stderr


def test_scale_flops():
    # per layer 2 B n_in n_out for the forward product and for the weights' gradient; the inputs'
    # gradient for every layer but the first
    code = (
        f"import sys; sys.path.insert(0, {BENCH!r})\n"
        "import scale\n"
        "B = 128\n"
        "assert scale.step_flops([256, 10], B) == 2 * B * (2 * (784 * 256 + 256 * 10) + 256 * 10)\n"
        "layers = 784 * 512 + 512 * 512 + 512 * 10\n"
        "assert scale.epoch_flops([512, 512, 10], B) == 64 * 2 * B * (3 * layers - 784 * 512)\n"
    )
    done = python("-c", code)
    assert done.returncode == 0, done.stderr


SCALE_ROWS = """
import os
import run

os.cpu_count = lambda: 4


def made_up(calls):
    results = []
    for module, function, kwargs, rounds in calls:
        t = kwargs["threads"]
        if function == "gemm_peak":
            results.append({"threads": t, "simd": "avx2", "exact float64": 10.0, "fast float64": 20.0,
                            "exact float32": 20.0, "fast float32": 40.0})
        elif function == "train_fit":
            results.append({"epoch_seconds": 0.1 / t, "epochs": 3, "gflops": 8.0 * t, "loss": 2.3, "threads": t})
        elif t == 4:
            results.append({"error": "no torch"})
        else:
            results.append({"epoch_seconds": 0.2 / t, "epochs": 3, "gflops": 4.0, "loss": 2.3, "threads": t})
    return results


run.run_interleaved = made_up
lines = run.markdown_table(run.bench_scale(run.SIZES["full"], {})).splitlines()


def row(*words):
    found = [line for line in lines if all(word in line for word in words)]
    assert len(found) == 1, (words, lines)
    return found[0]


assert not [line for line in lines if "batch 128, 2 threads" in line]  # 2 threads only at batch 1024
fast32 = row("[256,10]), batch 1024, 2 threads", "fast float32")
assert "| 2.00x faster |" in fast32 and "40% of the FMA peak (40.0 GF/s)" in fast32, fast32
assert "2.00x the speed of 1 thread" in fast32, fast32
assert "80% of the multiply-then-add peak (10.0 GF/s)" in row("[512,512,10]), batch 128, 1 thread", "exact float64")
assert "not measured: no torch" in row("[256,10]), batch 128, 4 threads", "PyTorch", "float64")
"""


def test_scale_rows():
    # the rows of fit at real sizes, from made-up results on a 4-core machine: nothing is measured
    done = python("-c", f"import sys; sys.path.insert(0, {BENCH!r})\n" + SCALE_ROWS)
    assert done.returncode == 0, done.stderr
