"""Re-finds each block of the documentation that quotes the source and rewrites its `path:first-last` line.

A block that quotes a file of the project names it on the line right above the block, as `path:first-last`
alone on the line; tests/python/test_docs.py checks that the block matches those lines, white space aside.
When the source moves (a formatter, an edit above the quoted lines), run

    python tools/refresh_quotes.py

from anywhere: each block is looked up in its file again (white space aside, whole lines) and its line
numbers rewritten. Where the text occurs more than once, the place nearest the old numbers wins. A block
whose text is no longer in its file is listed and the script exits 1: edit that block (or its source) by
hand. Nothing else in the documentation is changed.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)  # as tests/python/test_docs.py reads them
QUOTE = re.compile(r"^`([\w./-]+):(\d+)-(\d+)`\s*$")


def documents():
    """The files test_docs.py reads: README.md and every Markdown file under docs/."""
    return sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


def squash(text):
    return re.sub(r"\s+", "", text)


def find(code, lines, near):
    """The (first, last) line numbers, 1-based, of the runs of whole lines that equal code, white space aside;
    the one nearest line `near` if there are several, None if there is none."""
    want = squash(code)
    found = []
    for first in range(len(lines)):
        got = ""
        for last in range(first, len(lines)):
            got += squash(lines[last])
            if not want.startswith(got):
                break
            if got == want and squash(lines[first]):
                found.append((first + 1, last + 1))
                break
    return min(found, key=lambda span: abs(span[0] - near)) if found else None


def refresh(doc, sources):
    """Rewrites doc's quote lines in place; returns (how many changed, the blocks not found)."""
    text = doc.read_text(encoding="utf-8")
    lines = text.split("\n")
    changed, lost = 0, []
    for m in FENCE.finditer(text):
        above = len(text[: m.start()].rstrip("\n").split("\n")) - 1
        q = QUOTE.match(lines[above]) if above >= 0 else None
        if not q:
            continue
        path, first, last = q.group(1), int(q.group(2)), int(q.group(3))
        where = f"{doc.relative_to(ROOT)}:{above + 1}"
        if path not in sources:
            source = ROOT / path
            sources[path] = source.read_text(encoding="utf-8").split("\n") if source.is_file() else None
        if sources[path] is None:
            lost.append(f"{where}: quotes {path}, which is not a file")
            continue
        if 1 <= first <= last <= len(sources[path]) and squash(m.group(2)) == squash(
            "\n".join(sources[path][first - 1 : last])
        ):
            continue  # still where it was
        span = find(m.group(2), sources[path], first)
        if span is None:
            lost.append(f"{where}: the block quoting {path}:{first}-{last} is no longer in {path}")
            continue
        if span != (first, last):
            new = f"`{path}:{span[0]}-{span[1]}`"
            print(f"{where}: {lines[above].strip()} -> {new}")
            lines[above] = new
            changed += 1
    if changed:
        doc.write_text("\n".join(lines), encoding="utf-8")
    return changed, lost


def main():
    sources, changed, lost = {}, 0, []
    for doc in documents():
        n, missing = refresh(doc, sources)
        changed += n
        lost += missing
    print(f"{changed} quote line(s) rewritten")
    for line in lost:
        print(f"error: {line}", file=sys.stderr)
    if lost:
        print(
            "error: edit those blocks (or their sources) by hand so that each quotes whole lines of its file",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
