"""minidl.viz.draw_graph: the DOT text of an autograd graph, and rendering it when Graphviz is there."""
import re
import shutil

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.viz import GraphvizNotFoundError, draw_graph


def parse(dot):
    """(labels by node, edges as (from label, to label)) of draw_graph's DOT text."""
    labels = dict(re.findall(r'^\s+(\w+) \[label="((?:[^"\\]|\\.)*)"', dot, flags=re.M))
    edges = [(labels[a], labels[b]) for a, b in re.findall(r"^\s+(\w+) -> (\w+);", dot, flags=re.M)]
    return labels, edges


def test_small_expression_ops_shapes_and_grad_flags():
    a = minidl.tensor(np.ones((2, 3)), requires_grad=True)
    b = minidl.tensor(np.ones(3))
    y = (a * b + a).sum()
    dot = draw_graph(y, names={"a": a, "b": b})
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    labels, edges = parse(dot)
    assert sorted(v for v in labels.values() if not v.startswith(("(", "a", "b"))) == ["Add", "Mul", "Sum"]
    assert labels["t0"] == "()"                                          # the root: a scalar
    assert r"a\n(2, 3)\nrequires_grad" in labels.values()
    assert r"b\n(3,)" in labels.values()                                 # a leaf without gradients
    assert set(edges) == {("Sum", "()"), (r"(2, 3)", "Sum"), ("Add", "(2, 3)"), ("Mul", "(2, 3)"),
                          (r"(2, 3)", "Add"), (r"a\n(2, 3)\nrequires_grad", "Mul"),
                          (r"a\n(2, 3)\nrequires_grad", "Add"), (r"b\n(3,)", "Mul")}
    assert len(edges) == 8
    [a_line] = [line for line in dot.splitlines() if 'label="a\\n' in line]
    [b_line] = [line for line in dot.splitlines() if 'label="b\\n' in line]
    assert 'fillcolor="#cfe2ff"' in a_line and 'fillcolor="white"' in b_line     # blue: a leaf that needs grad
    assert "peripheries=2" in dot.splitlines()[3], "the root is outlined twice"


def test_a_tensor_used_twice_has_two_edges_into_its_op():
    a = minidl.tensor(np.ones(2), requires_grad=True)
    labels, edges = parse(draw_graph((a * a).sum()))
    assert edges.count((r"(2,)\nrequires_grad", "Mul")) == 2


def test_an_mlpconv_block_with_named_parameters():
    minidl.manual_seed(0)
    block = nn.MLPConv(3, [4, 2], kernel_size=3, padding=1)
    x = minidl.tensor(np.zeros((1, 3, 5, 5), np.float32))
    dot = draw_graph(block(x), names={"x": x, **dict(block.named_parameters())})
    labels, edges = parse(dot)
    ops = [v for k, v in labels.items() if k.startswith("f")]
    assert ops == ["Conv2d+ReLU", "Conv2d+ReLU"]            # MLPConv fuses each ReLU into its convolution
    assert (r"0.weight\n(4, 3, 3, 3)\nrequires_grad", "Conv2d+ReLU") in edges
    assert (r"2.bias\n(2,)\nrequires_grad", "Conv2d+ReLU") in edges
    assert (r"x\n(1, 3, 5, 5)", "Conv2d+ReLU") in edges
    assert labels["t0"] == "(1, 2, 5, 5)"


def test_a_graph_freed_by_backward_says_so():
    a = minidl.tensor(np.ones(2), requires_grad=True)
    y = (a * 2).sum()
    y.backward()
    assert r"Sum\nfreed by backward" in draw_graph(y)
    z = (a * 2).sum()
    z.backward(retain_graph=True)
    assert "freed" not in draw_graph(z) and "Mul" in draw_graph(z)


def test_a_leaf_is_one_node_and_bad_input_is_named():
    labels, edges = parse(draw_graph(minidl.tensor(np.ones(4), requires_grad=True)))
    assert list(labels.values()) == [r"(4,)\nrequires_grad"] and edges == []
    with pytest.raises(TypeError, match="draw_graph: expected a minidl Tensor, got ndarray"):
        draw_graph(np.ones(3))
    with pytest.raises(TypeError, match=r"draw_graph: names\['w'\] must be a Tensor, got list"):
        draw_graph(minidl.tensor(np.ones(1)), names={"w": [1]})


def test_rendering_without_graphviz_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    y = minidl.tensor(np.ones(2), requires_grad=True).sum()
    with pytest.raises(GraphvizNotFoundError, match="needs Graphviz's 'dot' program.*apt-get install graphviz"):
        draw_graph(y, tmp_path / "g.svg")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"draw_graph: path must end in \.svg, \.png, \.pdf, got '.*g\.jpg'"):
        draw_graph(y, str(tmp_path / "g.jpg"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_rendering_with_graphviz(tmp_path):
    a = minidl.tensor(np.ones(2), requires_grad=True)
    y = (a * a).sum()
    draw_graph(y, tmp_path / "g.svg", names={"a": a})
    draw_graph(y, tmp_path / "g.png")
    svg = (tmp_path / "g.svg").read_text()
    assert "<svg" in svg and ">Mul<" in svg and ">Sum<" in svg
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "g.svg"]     # no temporary file left
