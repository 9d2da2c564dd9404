"""Graph drawing: to_dot (DOT text, no dependency) and draw_dot (a graphviz.Digraph), as micrograd's
trace_graph notebook draws graphs: a record node per Value, a node per op, edges input -> op -> result."""

import collections
import re
import sys
from contextlib import contextmanager

import micrograd_c
import pytest
from _helpers import in_ci
from _helpers import readme_expression as build_readme_expression
from micrograd_c import draw_dot, to_dot
from micrograd_c.draw import trace
from micrograd_c.engine import Value

NODE = re.compile(r'^\t(\w+) \[label="(.*)"(?: shape=(\w+))?\]$')
EDGE = re.compile(r"^\t(\w+) -> (\w+)$")


def parse_dot(text):
    """{name: (label, shape)} and [(tail, head)] from to_dot's output; fails on any other line."""
    lines = text.splitlines()
    assert lines[0] == "digraph {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if line.startswith("\tgraph "):
            continue
        node, edge = NODE.match(line), EDGE.match(line)
        assert node or edge, f"unexpected DOT line {line!r}"
        if node:
            assert node[1] not in nodes
            nodes[node[1]] = (node[2], node[3])
        else:
            edges.append((edge[1], edge[2]))
    for tail, head in edges:
        assert tail in nodes and head in nodes
    return nodes, edges


def readme_expression():
    return build_readme_expression(Value)


@contextmanager
def low_recursion_limit(headroom=60):
    """A recursion limit a little above the current depth: any recursion over the graph fails."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_readme_expression_nodes_edges_and_labels():
    a, b, g = readme_expression()
    nodes, edges = parse_dot(to_dot(g))
    # 2 leaves and 25 ops; `x op constant` is one node with one input, a - b is its own op
    values = {name: label for name, (label, shape) in nodes.items() if shape == "record"}
    ops = {name: label for name, (label, shape) in nodes.items() if shape is None}
    assert len(values) == 27 and len(ops) == 25
    # one edge op -> result per op, and one per distinct input of each op
    assert len(edges) == 25 + 39
    assert all(f"{name}_op" in ops for name in values if f"{name}_op" in nodes)
    # the plain number of a one-input op is shown on its side (c += c + 1 is "+ 1.0", 10.0 / f is "10.0 /")
    assert sorted(collections.Counter(ops.values()).items()) == sorted(
        {
            "+": 11,
            "+ 1.0": 2,
            "*": 1,
            "* 2.0": 1,
            "* 3.0": 1,
            "-": 2,
            "/ 2.0": 1,
            "10.0 /": 1,
            "**3": 1,
            "**2": 1,
            "neg": 1,
            "ReLU": 2,
        }.items()
    )
    labels = set(values.values())
    assert "{ data 24.7041 | grad 1.0000 }" in labels
    assert "{ data -4.0000 | grad 138.8338 }" in labels
    assert "{ data 2.0000 | grad 645.5773 }" in labels
    # edges go input -> op -> result: every op node has one outgoing edge, to its own Value
    out_of_ops = [(t, h) for t, h in edges if t in ops]
    assert sorted(out_of_ops) == sorted((f"{v}_op", v) for v in values if f"{v}_op" in ops)
    # the root is v0 and nothing consumes it
    assert values["v0"] == "{ data 24.7041 | grad 1.0000 }"
    assert not any(t == "v0" for t, _ in edges)
    # leaves have no op node
    leaves = [v for v in values if f"{v}_op" not in ops]
    assert sorted(values[v] for v in leaves) == sorted(
        ["{ data -4.0000 | grad 138.8338 }", "{ data 2.0000 | grad 645.5773 }"]
    )
    text = to_dot(g, rankdir="TB")
    assert "\tgraph [rankdir=TB]" in text.splitlines()


def test_shared_and_repeated_inputs_are_one_node():
    x = Value(3.0)
    y = x * x + x  # x twice in one op, and again in another
    nodes, edges = trace(y)
    assert len(nodes) == 3 and sum(n is x for n in nodes) == 1
    assert len(edges) == 3  # x -> (x*x), (x*x) -> y, x -> y
    text_nodes, text_edges = parse_dot(to_dot(y))
    assert len(text_nodes) == 5 and len(text_edges) == 5


def test_leaf_alone():
    nodes, edges = parse_dot(to_dot(Value(1.5)))
    assert nodes == {"v0": ("{ data 1.5000 | grad 0.0000 }", "record")} and edges == []


def test_works_on_micrograds_value():
    engine = pytest.importorskip("micrograd.engine")
    a, b = engine.Value(2.0), engine.Value(-3.0)
    out = (a * b + a).relu()
    nodes, edges = parse_dot(to_dot(out))
    assert len(nodes) == 5 + 3 and len(edges) == 3 + 5


def test_bad_arguments():
    x = Value(1.0)
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(x, rankdir="XY")
    with pytest.raises(ValueError, match="max_nodes"):
        to_dot(x, max_nodes=0)


def chain(n):
    x = Value(0.5)
    for i in range(n):
        x = x * 1.0 + 0.25 if i % 2 else (x + 0.5).relu()
    return x


def test_deep_chain_without_recursion():
    root = chain(50_000)  # 100,001 Values: each step is two ops
    with low_recursion_limit():
        text = to_dot(root, max_nodes=None)
        nodes, edges = trace(root, max_nodes=200_000)
    assert len(nodes) == 100_001 and len(edges) == 100_000
    assert text.count(" shape=record]") == 100_001
    assert text.count(" -> ") == 2 * 100_000


def test_size_guard():
    root = chain(5_000)  # 10,001 Values
    with pytest.raises(ValueError) as info:
        to_dot(root)
    message = str(info.value)
    assert "10,001 Values" in message and "max_nodes=5,000" in message and "max_nodes=None" in message
    with pytest.raises(ValueError, match="10,001 Values"):
        trace(root, max_nodes=10)
    assert len(trace(root, max_nodes=10_001)[0]) == 10_001


def _graphviz():
    try:
        import graphviz
    except ImportError as exc:
        if in_ci():
            pytest.fail(f"graphviz is not importable ({exc}); it is in the [test] extra and CI is set", pytrace=False)
        pytest.skip("graphviz is not installed (pip install 'micrograd-c[draw]')")
    return graphviz


def test_draw_dot_returns_a_digraph():
    graphviz = _graphviz()
    _, _, g = readme_expression()
    dot = draw_dot(g, format="png", rankdir="TB")
    assert isinstance(dot, graphviz.Digraph)
    assert dot.format == "png" and dot.graph_attr["rankdir"] == "TB"
    source = dot.source
    assert source.count("shape=record") == 27 and source.count(" -> ") == 64
    assert "{ data 24.7041 | grad 1.0000 }" in source
    assert draw_dot(g).format == "svg"
    with pytest.raises(ValueError, match="max_nodes"):
        draw_dot(chain(3_000))


def test_draw_dot_without_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r"micrograd-c\[draw\]"):
        draw_dot(Value(1.0))


def test_exported_from_the_package():
    assert micrograd_c.draw_dot is draw_dot and micrograd_c.to_dot is to_dot
    assert {"draw_dot", "to_dot"} <= set(micrograd_c.__all__)
