"""The engine: graph building, accumulation, broadcasting, freeing, no_grad, dtypes."""
import numpy as np
import pytest

import minidl
import minidl.functional as F

from float_bounds import unit_roundoff


def test_gradients_accumulate_across_uses():
    x = minidl.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x + x + x).sum().backward()               # d/dx (x^2 + 2x) = 2x + 2
    np.testing.assert_allclose(x.grad, 2 * x.data + 2)
    a = minidl.tensor(np.array(2.0), requires_grad=True)
    b, c = a * 3, a * 5                             # a diamond: a -> b, c -> d
    (b * c).backward()                              # d = 15 a^2, dd/da = 30 a
    assert a.grad == pytest.approx(60.0)


def test_broadcasting_backward_sums_to_the_input_shape():
    a = minidl.tensor(np.ones((3, 1)), requires_grad=True)
    b = minidl.tensor(np.ones((1, 4)), requires_grad=True)
    (a + b).sum().backward()
    np.testing.assert_array_equal(a.grad, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad, np.full((1, 4), 3.0))
    c = minidl.tensor(np.ones((2, 3, 4)), requires_grad=True)
    d = minidl.tensor(np.arange(4.0), requires_grad=True)
    (c * d).sum().backward()
    np.testing.assert_array_equal(d.grad, np.full(4, 6.0))
    np.testing.assert_array_equal(c.grad, np.broadcast_to(np.arange(4.0), (2, 3, 4)))
    s = minidl.tensor(np.ones(3), requires_grad=True)
    (2.0 - s).sum().backward()
    np.testing.assert_array_equal(s.grad, -np.ones(3))


def test_max_splits_ties_and_fancy_index_adds_repeats():
    x = minidl.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])
    y = minidl.tensor(np.arange(5.0), requires_grad=True)
    y[np.array([0, 2, 2, 4])].sum().backward()
    np.testing.assert_array_equal(y.grad, [1, 0, 2, 0, 1])


def test_graph_is_freed_after_backward_unless_retained():
    x = minidl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x * 3).sum()
    x.grad = None
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_backward_needs_a_scalar_or_a_gradient():
    x = minidl.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="only for a scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        minidl.tensor(np.ones(1)).backward()
    (x * 2).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_no_grad_and_detach_build_no_graph():
    x = minidl.tensor(np.ones(3), requires_grad=True)
    with minidl.no_grad():
        y = x * 2
    assert not y.requires_grad and y.creator is None
    d = (x * 2).detach()
    assert not d.requires_grad and d.creator is None


def test_dtypes_item_numpy():
    assert minidl.tensor([1.0, 2.0]).dtype == np.float32
    assert minidl.tensor(np.zeros(2)).dtype == np.float64
    assert (minidl.tensor([1.0]) * 2).dtype == np.float32       # a Python scalar does not upcast
    t = minidl.tensor([[3.5]])
    assert t.item() == 3.5 and isinstance(t.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="one-element"):
        minidl.tensor([1.0, 2.0]).item()
    with pytest.raises(TypeError, match="floating"):
        minidl.tensor([1, 2], requires_grad=True)


def test_a_deep_chain_backpropagates_without_recursion_errors():
    x = minidl.tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1
    y.backward()
    assert x.grad == 1.0


def test_matmul_and_reductions_against_numpy(rng):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    ta, tb = minidl.tensor(a, requires_grad=True), minidl.tensor(b, requires_grad=True)
    (ta @ tb).sum().backward()
    np.testing.assert_allclose(ta.grad, np.ones((2, 3, 5)) @ b.T)
    np.testing.assert_allclose(tb.grad, (a.transpose(0, 2, 1) @ np.ones((2, 3, 5))).sum(0))
    np.testing.assert_allclose(minidl.tensor(a).mean(axis=(0, -1), keepdims=True).numpy(), a.mean(axis=(0, 2), keepdims=True))


def test_dropout_masks_scales_and_is_seeded():
    x = minidl.tensor(np.ones((64, 8, 6, 6), dtype=np.float32), requires_grad=True)
    minidl.manual_seed(3)
    y = F.dropout(x, 0.25, training=True)
    kept = y.numpy() != 0
    assert 0.70 < kept.mean() < 0.80
    # the scale 1 / 0.75 rounds once to float32 (u; the float64 steps before it: ~1e-16), x * mask is exact
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75, rtol=2 * unit_roundoff())
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.75, rtol=2 * unit_roundoff())
    minidl.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.25, training=True).numpy(), y.numpy())
    assert F.dropout(x, 0.25, training=False) is x and F.dropout(x, 0.0) is x
    cl = minidl.tensor(np.ones((2, 6, 6, 3), np.float32)).transpose(0, 3, 1, 2).detach()
    assert F.dropout(cl, 0.5).data.transpose(0, 2, 3, 1).flags.c_contiguous   # keeps channels-last layout
