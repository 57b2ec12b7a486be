"""Draw the autograd graph behind a tensor as Graphviz DOT text (and render it when Graphviz is installed).

The graph is the one :mod:`minidl.engine` records: every tensor made by an op
keeps that op as its ``creator``, and every op (a :class:`~minidl.engine.Function`)
keeps its ``inputs``. Following them back from a result reaches every tensor
and op that made it, which is exactly what ``backward`` walks in reverse.

    >>> import numpy as np, minidl
    >>> from minidl.viz import draw_graph
    >>> w = minidl.tensor(np.ones((2, 3)), requires_grad=True)
    >>> x = minidl.tensor(np.ones(3))
    >>> dot = draw_graph((w @ x).sum(), names={"w": w, "x": x})
    >>> print(dot.splitlines()[0])
    digraph autograd {

In the picture, boxes are ops (a Function's class name); ovals are tensors,
labelled with their shape. Leaves that require gradients (the parameters) are
filled blue, leaves that do not (data, constants) are white, and the tensor
drawn from is outlined twice. Arrows run the way the forward pass did; the
backward pass follows them in reverse.

Draw before calling ``backward()`` (or call it with ``retain_graph=True``):
backward frees each op's inputs as it goes, and a freed op is drawn with the
note "freed by backward".
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from .engine.tensor import Tensor

#: output formats :func:`draw_graph` can render (by the file's suffix)
FORMATS = ("svg", "png", "pdf")

LEAF_NEEDS_GRAD = 'style=filled, fillcolor="#cfe2ff"'
LEAF_NO_GRAD = 'style=filled, fillcolor="white"'
INTERMEDIATE = 'style=filled, fillcolor="#f2f2f2"'
OP = 'shape=box, style="rounded,filled", fillcolor="#fff3cd"'


class GraphvizNotFoundError(RuntimeError):
    """Rendering asked for Graphviz's ``dot`` program, and it is not installed."""


def _shape(tensor) -> str:
    return "(" + ", ".join(map(str, tensor.shape)) + ("," if tensor.ndim == 1 else "") + ")"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph_dot(root: Tensor, names: dict | None = None) -> str:
    """The DOT text of the graph that made ``root``; ``names`` maps a label to a tensor (e.g. parameters)."""
    if not isinstance(root, Tensor):
        raise TypeError(f"draw_graph: expected a minidl Tensor, got {type(root).__name__}")
    label_of = {}
    for name, tensor in (names or {}).items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"draw_graph: names[{name!r}] must be a Tensor, got {type(tensor).__name__}")
        label_of[id(tensor)] = name
    ids = {}                                 # id(tensor or function) -> node name, in the order first met

    def node(obj, prefix):
        if id(obj) not in ids:
            ids[id(obj)] = f"{prefix}{len(ids)}"
        return ids[id(obj)]

    lines = ["digraph autograd {", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=11];']

    def tensor_line(t, root_node=False):
        label = (label_of[id(t)] + "\n" if id(t) in label_of else "") + _shape(t)
        if t.is_leaf:
            label += "\nrequires_grad" if t.requires_grad else ""
            style = LEAF_NEEDS_GRAD if t.requires_grad else LEAF_NO_GRAD
        else:
            style = INTERMEDIATE
        extra = ", peripheries=2" if root_node else ""
        return f"  {node(t, 't')} [label={_quote(label)}, shape=ellipse, {style}{extra}];"

    lines.append(tensor_line(root, root_node=True))
    seen_fns = set()
    todo = [root]
    while todo:                              # breadth-first from the root: a stable order for the text
        t = todo.pop(0)
        fn = t.creator
        if fn is None:
            continue
        first_visit = id(fn) not in seen_fns
        fn_node = node(fn, "f")
        lines.append(f"  {fn_node} -> {ids[id(t)]};")
        if not first_visit:
            continue
        seen_fns.add(id(fn))
        released = getattr(fn, "_released", False)
        lines.append(f"  {fn_node} [label={_quote(fn.name + (chr(10) + 'freed by backward' if released else ''))}, "
                     f"{OP}];")
        for x in fn.inputs:
            if id(x) not in ids:
                lines.append(tensor_line(x))
                todo.append(x)
            lines.append(f"  {ids[id(x)]} -> {fn_node};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_graph(root: Tensor, path=None, names: dict | None = None) -> str:
    """The autograd graph behind ``root`` as DOT text; with ``path`` (.svg, .png or .pdf) also render it there.

    Rendering runs Graphviz's ``dot`` (Debian/Ubuntu: ``apt-get install graphviz``); without it,
    :class:`GraphvizNotFoundError` says so, and the DOT text can still be pasted into any Graphviz viewer.
    The file is written atomically (a temporary file, then a rename).
    """
    dot = graph_dot(root, names)
    if path is not None:
        render(dot, path)
    return dot


def render(dot: str, path) -> None:
    """Render DOT text into ``path``; the format comes from its suffix (svg, png, pdf)."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"draw_graph: path must end in {', '.join('.' + f for f in FORMATS)}, got {path!r}")
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            "draw_graph: rendering needs Graphviz's 'dot' program, which is not on PATH "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz); "
            "the DOT text is returned without a path=")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".draw_graph-", suffix="." + fmt, dir=folder)
    os.close(fd)
    try:
        done = subprocess.run([program, f"-T{fmt}", "-o", tmp], input=dot, text=True, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"draw_graph: dot failed with status {done.returncode}: {done.stderr.strip()}")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
