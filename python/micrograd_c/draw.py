"""Drawing computation graphs, as micrograd's trace_graph notebook does.

- ``to_dot(root)`` returns the graph as DOT text (Graphviz's language) and needs nothing else installed:
  ``dot -Tsvg graph.dot -o graph.svg`` renders it, as does any DOT viewer.
- ``draw_dot(root)`` returns a ``graphviz.Digraph`` (the ``graphviz`` Python package, in the ``draw``
  extra: ``pip install micrograd-c[draw]``); in Jupyter it displays itself, ``.render()`` writes a file
  (rendering needs Graphviz's ``dot`` program).

Each Value is a record node ``{ data ... | grad ... }`` (``{ label | data ... | grad ... }`` when it has a
label, as in micrograd's lecture); a Value made by an op gets a small node with the op's name, and the
edges go input -> op -> result. The walk over ``_prev`` is iterative, so graphs of any depth work, and
``max_nodes`` guards against drawing a graph too big to look at.

Ops with a plain number (``a * 2.0``) are one node with one input: the op node shows the number on its
side (``* 2.0``, ``1.0 -``). A neuron's ``affine`` node labels its input edges: ``b`` the bias, ``w3`` a
weight, ``x3`` an input. micrograd's own Values (no label, no ``_op_label``) draw as micrograd draws them.
"""

__all__ = ["trace", "to_dot", "draw_dot"]

DEFAULT_MAX_NODES = 5000
_RANKDIRS = ("LR", "TB", "RL", "BT")
# past the limit we keep counting, up to this many Values, to say how big the graph is
_COUNT_CAP = 1_000_000


def trace(root, max_nodes=DEFAULT_MAX_NODES):
    """The Values ``root`` depends on, and the edges between them: ``(nodes, edges)``.

    nodes: a list of Values, root first, each once (by identity); edges: ``(child, parent)`` pairs, one
    per distinct input of each Value. Works on any object with micrograd's ``_prev`` (micrograd's own
    Value too). Raises ValueError when there are more than ``max_nodes`` Values (None: no limit).
    """
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"max_nodes must be a positive int or None, got {max_nodes!r}")
    # `seen` keeps every visited object alive, so ids stay unique and `_prev` keeps returning the very
    # objects we have already met
    seen = {id(root): root}
    nodes, edges = [], []
    stack = [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        for child in node._prev:
            edges.append((child, node))
            if id(child) not in seen:
                seen[id(child)] = child
                stack.append(child)
                if max_nodes is not None and len(seen) > max_nodes:
                    _too_big(seen, stack, max_nodes)
    return nodes, edges


def _too_big(seen, stack, max_nodes):
    """Count on (without edges) up to _COUNT_CAP Values, then raise a ValueError saying how many."""
    while stack and len(seen) < _COUNT_CAP:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen[id(child)] = child
                stack.append(child)
    count = f"{len(seen):,}" if not stack else f"more than {_COUNT_CAP:,}"
    raise ValueError(
        f"the graph has {count} Values, more than max_nodes={max_nodes:,}: a drawing that big cannot be "
        f"read. Pass a larger max_nodes (or max_nodes=None for no limit) to draw it anyway."
    )


def _check_rankdir(rankdir):
    if rankdir not in _RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(_RANKDIRS)}, got {rankdir!r}")


def _record(node):
    label = getattr(node, "label", "")
    values = "data %.4f | grad %.4f" % (node.data, node.grad)
    return "{ %s | %s }" % (label, values) if label else "{ %s }" % values


def _input_edges(node, names, children):
    """(tail, label) per input edge: an affine node's inputs in order with their roles, else each distinct
    input once, unlabelled."""
    inputs = getattr(node, "_inputs", None)
    if node._op == "affine" and inputs is not None:
        n = (len(inputs) - 1) // 2
        roles = ["b"] + [f"w{i}" for i in range(n)] + [f"x{i}" for i in range(n)]
        return [(names[id(child)], role) for child, role in zip(inputs, roles)]
    return [(names[id(child)], None) for child in children]


def _elements(root, max_nodes):
    """The drawing: ([(name, label, shape or None)], [(tail, head, label or None)]), nodes v0, v1, ..."""
    nodes, edges = trace(root, max_nodes)
    names = {id(node): f"v{i}" for i, node in enumerate(nodes)}
    children = {}
    for child, parent in edges:
        children.setdefault(id(parent), []).append(child)
    dot_nodes, dot_edges = [], []
    for node in nodes:
        name = names[id(node)]
        dot_nodes.append((name, _record(node), "record"))
        if node._op:
            dot_nodes.append((name + "_op", getattr(node, "_op_label", node._op), None))
            dot_edges.append((name + "_op", name, None))
            for tail, role in _input_edges(node, names, children.get(id(node), [])):
                dot_edges.append((tail, name + "_op", role))
    return dot_nodes, dot_edges


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(root, rankdir="LR", max_nodes=DEFAULT_MAX_NODES):
    """The graph of ``root`` as DOT text, drawn like micrograd's ``draw_dot``; no dependency needed.

    rankdir: "LR" (left to right, the default), "TB", "RL" or "BT". max_nodes: raise ValueError for a
    graph with more Values than this (None: no limit).
    """
    _check_rankdir(rankdir)
    dot_nodes, dot_edges = _elements(root, max_nodes)
    lines = ["digraph {", f"\tgraph [rankdir={rankdir}]"]
    for name, label, shape in dot_nodes:
        lines.append(f"\t{name} [label={_quote(label)}" + (f" shape={shape}]" if shape else "]"))
    for tail, head, label in dot_edges:
        lines.append(f"\t{tail} -> {head}" + (f" [label={_quote(label)}]" if label else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_dot(root, format="svg", rankdir="LR", max_nodes=DEFAULT_MAX_NODES):
    """The graph of ``root`` as a ``graphviz.Digraph``, as in micrograd's trace_graph notebook.

    format: the output format of ``.render()`` / ``.pipe()`` ("svg", "png", ...); rankdir: "LR" or "TB"
    (or "RL", "BT"); max_nodes: raise ValueError for a graph with more Values than this (None: no limit).
    Needs the ``graphviz`` Python package: ``pip install micrograd-c[draw]``.
    """
    try:
        import graphviz
    except ImportError as exc:
        raise ImportError(
            "draw_dot needs the graphviz Python package: pip install 'micrograd-c[draw]' (or pip install "
            "graphviz; rendering to a file also needs Graphviz's dot program). to_dot(root) gives the DOT "
            "text with no dependency."
        ) from exc
    _check_rankdir(rankdir)
    dot_nodes, dot_edges = _elements(root, max_nodes)
    dot = graphviz.Digraph(format=format, graph_attr={"rankdir": rankdir})
    for name, label, shape in dot_nodes:
        if shape:
            dot.node(name=name, label=label, shape=shape)
        else:
            dot.node(name=name, label=label)
    for tail, head, label in dot_edges:
        dot.edge(tail, head, **({"label": label} if label else {}))
    return dot
