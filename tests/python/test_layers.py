"""The include layering of the C sources, enforced: every `#include "..."` in src/ and in the extension
must be one that the table below allows, so that the layers keep pointing one way (memory.c and the
other base files know nothing above them, tensor internals stay inside the tensor files, the extension
sees only the public header). A new file needs its row here; a new include, a reason to change the table."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# file -> the quoted includes it may have. Layers, from the bottom:
#   micrograd.h (public) <- internal.h (errors, allocation, sizes, grad mode, shared numerics)
#   <- gemm.h (the one matrix product, shared by tensors and dense layers)
#   <- value_internal.h (the value engine) / tensor_internal.h (tensors, on gemm.h) / nn_internal.h (nn,
#   dense layers, losses, fit, on gemm.h) / modelfile_internal.h (model files: JSON text, the safetensors
#   layout, file I/O; no model inside)
BASE = {"internal.h"}
ALLOWED = {
    "src/internal.h": {"micrograd.h"},
    "src/value_internal.h": BASE,
    "src/gemm.h": BASE,
    "src/tensor_internal.h": {"gemm.h"},
    "src/nn_internal.h": {"gemm.h"},
    "src/modelfile_internal.h": BASE,
    # the base layer: nothing above internal.h
    "src/memory.c": BASE,
    "src/error.c": BASE,
    "src/platform.c": BASE,
    "src/csv.c": BASE,
    # the matrix product: on the base layer only, knowing nothing of tensors or models
    "src/gemm.c": {"gemm.h"},
    # the value engine
    "src/value.c": {"value_internal.h"},
    "src/graph.c": {"value_internal.h"},
    # tensors: the only users of tensor_internal.h
    "src/tensor.c": {"tensor_internal.h"},
    "src/tensor_kernels.c": {"tensor_internal.h"},
    # nn, losses, optimizers, training
    "src/nn.c": {"nn_internal.h"},
    "src/dense.c": {"nn_internal.h"},
    "src/loss.c": {"nn_internal.h"},
    "src/train.c": {"nn_internal.h"},
    "src/optim.c": {"nn_internal.h"},
    "src/init.c": {"nn_internal.h"},
    # model files: the layers below the mapping know nothing of models; the mapping (modelfile.c) works on
    # the public API only
    "src/json.c": {"modelfile_internal.h"},
    "src/safetensors.c": {"modelfile_internal.h"},
    "src/fileio.c": {"modelfile_internal.h"},
    "src/modelfile.c": {"modelfile_internal.h"},
    # the extension: the public header only, through _core.h
    "python/micrograd_c/_core.h": {"micrograd.h"},
}
EXTENSION_C = {"_core.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def sources():
    files = sorted(ROOT.glob("src/*.c")) + sorted(ROOT.glob("src/*.h"))
    files += sorted(ROOT.glob("python/micrograd_c/*.c")) + sorted(ROOT.glob("python/micrograd_c/*.h"))
    return [f.relative_to(ROOT).as_posix() for f in files]


def allowed(path):
    if path in ALLOWED:
        return ALLOWED[path]
    if path.startswith("python/micrograd_c/") and path.endswith(".c"):
        return EXTENSION_C
    return None


def includes(path):
    return set(INCLUDE.findall((ROOT / path).read_text()))


def test_sources_found():
    files = sources()
    assert "src/memory.c" in files and "python/micrograd_c/_core.c" in files


@pytest.mark.parametrize("path", sources())
def test_includes_follow_the_layers(path):
    want = allowed(path)
    assert want is not None, f"{path} has no row in the layering table of {Path(__file__).name}: add one"
    extra = includes(path) - want
    assert not extra, f"{path} includes {sorted(extra)}; its layer allows only {sorted(want)}"


def reach(path):
    """Every header of the project reachable from path through quoted includes (looked up beside the file
    that includes it, as the compiler does, then in src/ as the build's include path)."""
    seen, todo = set(), [path]
    while todo:
        current = todo.pop()
        for name in includes(current):
            for candidate in ((Path(current).parent / name).as_posix(), f"src/{name}"):
                if (ROOT / candidate).exists():
                    if candidate not in seen:
                        seen.add(candidate)
                        todo.append(candidate)
                    break
    return seen


def test_base_layer_sees_nothing_above_it():
    for path in ["src/memory.c", "src/error.c", "src/platform.c", "src/csv.c"]:
        assert reach(path) == {"src/internal.h"}, path


def test_the_product_knows_nothing_above_it():
    assert reach("src/gemm.c") == {"src/gemm.h", "src/internal.h"}


def test_tensor_internals_stay_in_the_tensor_files():
    users = {p for p in sources() if "src/tensor_internal.h" in reach(p) and p != "src/tensor_internal.h"}
    assert users == {"src/tensor.c", "src/tensor_kernels.c"}


def test_model_file_layers_know_nothing_of_models():
    for path in ["src/json.c", "src/safetensors.c", "src/fileio.c"]:
        assert reach(path) == {"src/modelfile_internal.h", "src/internal.h"}, path


def test_extension_sees_only_the_public_header():
    for path in sources():
        if path.startswith("python/"):
            assert not any(r.startswith("src/") for r in reach(path)), path
