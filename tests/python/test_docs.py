"""Every code block in README.md and docs/ runs, so the documentation cannot drift from the code.

- ```python blocks of one file run in order, in one namespace, in a fresh folder (the file's own
  working directory, with a link to the clone's examples/ folder), as a reader pasting them one after
  another in the clone would, without littering it.
- ```sh blocks run with bash in that same folder, with this interpreter's scripts (micrograd-c) first on
  PATH, after the Python blocks above them.
- ```c blocks with a main() are compiled against the library's sources and run; they must exit 0.
- A block that quotes the project (C or Python) names its source right above it, as `path:first-last`
  alone on a line; it must match those lines, white space aside.
- A block that must not run here says why on the line right above it: <!-- not run: reason -->.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
QUOTE = re.compile(r"^`([\w./-]+):(\d+)-(\d+)`\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (.+) -->\s*$")


class Block:
    def __init__(self, path, lang, code, line, above):
        self.path, self.lang, self.code, self.line, self.above = path, lang, code, line, above

    def __repr__(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def quote(self):
        m = QUOTE.match(self.above)
        return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None

    @property
    def skip_reason(self):
        m = NOT_RUN.match(self.above)
        return m.group(1) if m else None


def blocks_of(path):
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        start = text.count("\n", 0, m.start())
        lines_before = text[: m.start()].rstrip("\n").split("\n")
        above = lines_before[-1] if lines_before else ""
        found.append(Block(path, m.group(1), m.group(2), start + 1, above))
    return found


ALL = [b for p in DOCS for b in blocks_of(p)]


def squash(text):
    return re.sub(r"\s+", "", text)


def test_every_block_has_a_known_kind():
    for b in ALL:
        assert b.lang in ("python", "sh", "c", "text"), f"{b}: unknown block language {b.lang!r}"
        if b.lang == "c" and not b.quote and not b.skip_reason:
            assert re.search(r"\bint\s+main\s*\(", b.code), f"{b}: a C block is a whole program or a quote"


@pytest.mark.parametrize("block", [b for b in ALL if b.quote], ids=repr)
def test_quoted_blocks_match_their_source(block):
    path, first, last = block.quote
    source = (ROOT / path).read_text(encoding="utf-8").split("\n")
    assert 1 <= first <= last <= len(source), f"{block}: {path} has {len(source)} lines"
    assert squash(block.code) == squash("\n".join(source[first - 1 : last])), (
        f"{block} no longer matches {path}:{first}-{last}"
    )


def run_python(block, namespace, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(block.code, str(block), "exec"), namespace)
    finally:
        os.chdir(old)


def run_sh(block, cwd):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{block} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def c_library(tmp_path_factory):
    """The library's sources compiled once into a static archive for the C blocks."""
    out = tmp_path_factory.mktemp("libmicrograd")
    objects = []
    for src in sorted((ROOT / "src").glob("*.c")):
        obj = out / (src.stem + ".o")
        subprocess.run(
            ["cc", "-std=c11", "-O1", "-I", str(ROOT / "include"), "-c", str(src), "-o", str(obj)], check=True
        )
        objects.append(str(obj))
    archive = out / "libmicrograd.a"
    subprocess.run(["ar", "rcs", str(archive), *objects], check=True)
    return archive


def run_c(block, cwd, archive):
    src = Path(cwd) / f"block_{block.line}.c"
    src.write_text(block.code, encoding="utf-8")
    exe = Path(cwd) / f"block_{block.line}"
    subprocess.run(
        [
            "cc",
            "-std=c11",
            "-Wall",
            "-Werror",
            "-I",
            str(ROOT / "include"),
            str(src),
            str(archive),
            "-lm",
            "-lpthread",
            "-o",
            str(exe),
        ],
        check=True,
    )
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert done.returncode == 0, f"{block} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_blocks_of_a_file_run_in_order(doc, tmp_path, c_library):
    namespace = {"__name__": "__doc_test__"}
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for block in blocks_of(doc):
        if block.quote or block.skip_reason or block.lang == "text":
            continue
        if block.lang == "python":
            run_python(block, namespace, tmp_path)
        elif block.lang == "sh":
            run_sh(block, tmp_path)
        elif block.lang == "c":
            run_c(block, tmp_path, c_library)
