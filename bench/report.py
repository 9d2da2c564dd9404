"""Rows of the results table, the ratios against micrograd and PyTorch, and the markdown.

Every measurement becomes one Row. Rows that measure the same thing share a `metric`; a row's ratio
compares it with the micrograd row (default GC) and the PyTorch row of the same metric.
"""

from dataclasses import dataclass

from common import MICROGRAD, TORCH

# How to read a row: lower is better for time and memory, higher for depth; "info" rows get no ratio.
WORDS = {
    "time": ("faster", "slower"),
    "memory": ("smaller", "larger"),
    "depth": ("deeper", "shallower"),
}


@dataclass
class Row:
    workload: str
    engine: str
    metric: str  # rows with the same metric are compared with each other
    value: float = None  # None when the row could not be measured
    unit: str = ""
    kind: str = "time"  # "time", "memory", "depth" or "info"
    gc: str = "default"
    notes: str = ""
    shown: str = None  # the result as printed, when the number alone would mislead ("≥ 1,000,000")
    at_least: bool = False  # the value is a lower bound: the largest size tried, and it worked


def format_number(value):
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def ratio_text(row, reference):
    """How this row compares with a reference row of the same metric, in words: '12.3x faster'."""
    if reference is None or row is reference or row.kind not in WORDS:
        return ""
    if row.value is None or reference.value is None or row.value <= 0 or reference.value <= 0:
        return ""
    if row.at_least and reference.at_least:
        return ""  # two lower bounds: no ratio can be read from them
    bound = "≥ " if row.at_least or reference.at_least else ""
    better, worse = WORDS[row.kind]
    if row.kind == "depth":
        factor = row.value / reference.value
    else:
        factor = reference.value / row.value
    if 0.95 <= factor <= 1.05:
        return "same"
    if factor > 1:
        return f"{bound}{format_number(factor)}x {better}"
    return f"{bound}{format_number(1 / factor)}x {worse}"


def reference_row(rows, metric, engine):
    """The row to compare with: this engine's row for the metric, the default-GC one if there are two."""
    candidates = [r for r in rows if r.metric == metric and r.engine == engine and r.value is not None]
    for r in candidates:
        if r.gc == "default":
            return r
    return candidates[0] if candidates else None


def markdown_table(rows):
    lines = [
        "| workload | engine | result | GC | vs micrograd | vs PyTorch | notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        result = row.shown or format_number(row.value)
        if row.value is not None and row.unit and not row.shown:
            result += f" {row.unit}"
        versus_micrograd = ratio_text(row, reference_row(rows, row.metric, MICROGRAD))
        versus_torch = ratio_text(row, reference_row(rows, row.metric, TORCH))
        cells = [row.workload, row.engine, result, row.gc, versus_micrograd, versus_torch, row.notes]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)
