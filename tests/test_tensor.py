"""Tensor and the autograd engine: accumulation, broadcasting, matmul, reductions, indexing, graph lifetime."""
import numpy as np
import pytest

import minidl
import minidl.functional as F

from conftest import channels_last, is_channels_last
from float_bounds import assert_within, unit_roundoff


def T(a, grad=True):
    return minidl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---------------------------------------------------------------------------- accumulation
def test_gradients_accumulate_across_uses(rng):
    xv = rng.standard_normal(5)
    x = T(xv)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * xv, rtol=1e-15)

    x = T(xv)
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full(5, 2.0))

    x = T(xv)                       # diamond: a and b both come from x, c joins them
    a, b = x * 2.0, x * 3.0
    (a * b).sum().backward()        # c = 6 x^2
    np.testing.assert_allclose(x.grad, 12 * xv, rtol=1e-14)

    x = T(xv)                       # x used at three depths
    y = x * x
    z = (y * x + y + x).sum()       # x^3 + x^2 + x
    z.backward()
    np.testing.assert_allclose(x.grad, 3 * xv ** 2 + 2 * xv + 1, rtol=1e-13)


def test_gradients_accumulate_across_backward_calls(rng):
    xv = rng.standard_normal(3)
    x = T(xv)
    (x * 2.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2.0 + 2 * xv, rtol=1e-14)
    x.zero_grad()
    assert x.grad is None


def test_leaf_gradients_never_alias_each_other(rng):
    """In-place updates of one .grad must not write through to another tensor (see engine/backward.py)."""
    x, y = T(rng.standard_normal(3)), T(rng.standard_normal(3))
    (x + y).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))
    np.testing.assert_array_equal(y.grad, np.ones(3))
    assert not np.shares_memory(x.grad, y.grad)
    x.grad *= 0.5                                   # e.g. gradient clipping of one parameter
    np.testing.assert_array_equal(y.grad, np.ones(3))


def test_leaf_gradient_does_not_alias_the_callers_gradient(rng):
    x, y = T(rng.standard_normal((2, 2))), T(rng.standard_normal((2, 2)))
    z = x - y
    g = np.ones((2, 2))
    z.backward(g)
    g[...] = 7.0
    np.testing.assert_array_equal(x.grad, np.ones((2, 2)))


def test_leaf_gradient_keeps_the_memory_order_of_its_gradient(rng):
    """A channels-last input's gradient (through an op that keeps the layout) is copied channels-last."""
    x = minidl.tensor(channels_last(rng.standard_normal((2, 3, 4, 5))), requires_grad=True)
    gy = channels_last(rng.standard_normal((2, 3, 4, 5)))
    F.relu(x).backward(gy)
    assert is_channels_last(x.grad) and not np.shares_memory(x.grad, gy)
    np.testing.assert_array_equal(x.grad, gy * (x.data > 0))


# ---------------------------------------------------------------------------- broadcasting
def test_broadcasting_backward_sums_to_the_input_shape(rng):
    av, bv = rng.standard_normal((3, 1)), rng.standard_normal((1, 4))
    a, b = T(av), T(bv)
    gz = rng.standard_normal((3, 4))
    (a + b).backward(gz)
    np.testing.assert_allclose(a.grad, gz.sum(axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(b.grad, gz.sum(axis=0, keepdims=True), rtol=1e-14)
    assert minidl.gradcheck(lambda a, b: a * b - b / (a * a + 1.0), [a, b])

    x = T(rng.standard_normal((2, 3, 4)))
    v = T(rng.standard_normal(4))
    gz = rng.standard_normal((2, 3, 4))
    (x * v).backward(gz)
    np.testing.assert_allclose(v.grad, (gz * x.data).sum(axis=(0, 1)), rtol=1e-13)
    np.testing.assert_allclose(x.grad, gz * v.data, rtol=1e-14)
    assert minidl.gradcheck(lambda x, v: x * v, [x, v])


def test_scalars_combine_with_tensors(rng):
    xv = rng.standard_normal(4) + 3.0
    x = T(xv)
    s = T(2.5)                                       # a 0-d tensor that requires grad
    y = (2.0 + x) * s - 1.0 / x + x / 4.0 - (3.0 - x) + np.float64(2.0) * x
    expected = (2.0 + xv) * 2.5 - 1.0 / xv + xv / 4.0 - (3.0 - xv) + 2.0 * xv
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-14)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2.5 + 1.0 / xv ** 2 + 0.25 + 1.0 + 2.0, rtol=1e-13)
    assert s.grad.shape == () and s.grad == pytest.approx((2.0 + xv).sum(), rel=1e-14)
    assert minidl.gradcheck(lambda x, s: (x + s) * s - s / x, [x, s])


def test_python_scalars_take_the_tensors_dtype():
    x = minidl.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    for y in (x + 1.0, 2.0 * x, x / 3.0, 1.0 - x, x ** 2):
        assert y.dtype == np.float32
    x64 = minidl.tensor(np.ones(3))
    assert (x64 * 0.1).dtype == np.float64


# ---------------------------------------------------------------------------- matmul
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                                   ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_forward_backward(rng, sa, sb):
    av, bv = rng.standard_normal(sa), rng.standard_normal(sb)
    a, b = T(av), T(bv)
    z = a @ b
    np.testing.assert_allclose(z.numpy(), av @ bv, rtol=1e-13)
    assert minidl.gradcheck(lambda a, b: a @ b, [a, b])


def test_matmul_gradient_formulas(rng):
    av, bv, g = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    a, b = T(av), T(bv)
    (a @ b).backward(g)
    np.testing.assert_allclose(a.grad, g @ bv.T, rtol=1e-13)
    np.testing.assert_allclose(b.grad, av.T @ g, rtol=1e-13)
    c = T(rng.standard_normal((4, 2)))
    (av @ c).sum().backward()                       # numpy array @ Tensor goes through __rmatmul__
    np.testing.assert_allclose(c.grad, av.T @ np.ones((3, 2)), rtol=1e-13)


# ---------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("axis,keepdims", [(None, False), (None, True), (0, False), (-1, True), ((0, 2), False),
                                           ((-1, -3), True), ((1,), False), (-2, False)])
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reductions_match_numpy_and_gradcheck(rng, op, axis, keepdims):
    xv = rng.standard_normal((2, 3, 4))
    x = T(xv)
    y = getattr(x, op)(axis=axis, keepdims=keepdims)
    expected = getattr(np, {"sum": "sum", "mean": "mean", "max": "max"}[op])(xv, axis=axis, keepdims=keepdims)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-13)
    assert minidl.gradcheck(lambda x: getattr(F, op)(x, axis=axis, keepdims=keepdims), [x])


def test_mean_gradient_divides_by_the_count(rng):
    x = T(rng.standard_normal((2, 3, 5)))
    x.mean(axis=(0, 2)).sum().backward()
    np.testing.assert_allclose(x.grad, np.full((2, 3, 5), 0.1), rtol=1e-15)


def test_max_splits_ties_evenly():
    x = T([1.0, 3.0, 3.0, 2.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0, 0.5, 0.5, 0])
    m = T([[5.0, 5.0, 5.0], [1.0, 2.0, 2.0]])
    m.max(axis=1).backward(np.array([3.0, 4.0]))
    np.testing.assert_allclose(m.grad, [[1.0, 1.0, 1.0], [0.0, 2.0, 2.0]], rtol=1e-15)
    k = T([[1.0, 4.0], [4.0, 0.0]])
    k.max(axis=(0, 1), keepdims=True).backward(np.ones((1, 1)))
    np.testing.assert_array_equal(k.grad, [[0, 0.5], [0.5, 0]])


def test_reduction_axis_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="sum: axis 3 is out of range for a tensor with 3 dimensions"):
        T(np.zeros((2, 2, 2))).sum(axis=3)
    with pytest.raises(ValueError, match="max: axis -4 is out of range"):
        T(np.zeros((2, 2, 2))).max(axis=-4)


# ---------------------------------------------------------------------------- indexing, shapes
@pytest.mark.parametrize("index", [
    (slice(1, 3), slice(None, None, 2)),
    1,
    (-1, 2),
    (slice(None), [1, 1, 3]),
    ([0, 0, 2, 0],),
    (np.array([2, 0, 2]), np.array([1, 1, 1])),
    (Ellipsis, slice(None, None, -1)),
    (None, slice(0, 2)),
    (slice(None), [True, False, True, True]),
])
def test_getitem_scatters_gradients_and_adds_repeats(rng, index):
    xv = rng.standard_normal((3, 4))
    x = T(xv)
    y = x[index]
    np.testing.assert_array_equal(y.numpy(), xv[index])
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    expected = np.zeros_like(xv)
    np.add.at(expected, index, gy)              # numpy's own unbuffered scatter-add as the reference
    np.testing.assert_allclose(x.grad, expected, rtol=1e-15)
    x.grad = None
    assert minidl.gradcheck(lambda x: F.getitem(x, index), [x])


def test_fancy_index_with_repeats_counts_each_use():
    x = T(np.arange(4.0))
    x[[0, 0, 0, 3, 3]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 0, 2])
    x.grad = None
    idx = minidl.tensor(np.array([1, 1]))
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 2, 0, 0])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(rng, axis):
    parts = [rng.standard_normal(s) for s in ((2, 3), (2, 3), (2, 3))]
    if axis == 0:
        parts[1] = rng.standard_normal((1, 3))
    else:
        parts[1] = rng.standard_normal((2, 1))
    ts = [T(p) for p in parts]
    y = F.concatenate(ts, axis=axis)
    np.testing.assert_array_equal(y.numpy(), np.concatenate(parts, axis=axis))
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    bounds = np.cumsum([p.shape[axis] for p in parts])[:-1]
    for t, g in zip(ts, np.split(gy, bounds, axis=axis)):
        np.testing.assert_array_equal(t.grad, g)
    for t in ts:
        t.grad = None
    assert minidl.gradcheck(lambda *xs: F.concatenate(list(xs), axis=axis) * 2.0, ts)


def test_concatenate_with_a_constant_part(rng):
    a = T(rng.standard_normal((2, 2)))
    y = F.concatenate([a, np.ones((1, 2))], axis=0)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, np.ones((2, 2)))


def test_reshape_transpose_flatten(rng):
    xv = rng.standard_normal((2, 3, 4))
    x = T(xv)
    np.testing.assert_array_equal(x.reshape(4, 6).numpy(), xv.reshape(4, 6))
    np.testing.assert_array_equal(x.reshape((3, -1)).numpy(), xv.reshape(3, -1))
    np.testing.assert_array_equal(x.transpose(2, 0, 1).numpy(), xv.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.transpose((1, -1, 0)).numpy(), xv.transpose(1, 2, 0))
    np.testing.assert_array_equal(x.T.numpy(), xv.T)
    np.testing.assert_array_equal(F.flatten(x).numpy(), xv.reshape(2, 12))
    gy = rng.standard_normal((4, 2, 3))
    x.transpose(2, 0, 1).backward(gy)
    np.testing.assert_array_equal(x.grad, gy.transpose(1, 2, 0))
    assert minidl.gradcheck(lambda x: x.transpose(1, 2, 0).reshape(12, 2) * x.reshape(12, 2), [x])
    assert minidl.gradcheck(lambda x: F.flatten(x.T, 1), [x])


def test_transpose_rejects_axes_that_are_not_a_permutation():
    x = T(np.zeros((2, 3, 4)), grad=False)
    with pytest.raises(ValueError, match="transpose: axes"):
        x.transpose(0, 0, 1)
    with pytest.raises((ValueError, IndexError)):          # numpy: AxisError; axis 3 does not exist for 3-D
        x.transpose(3, 1, 2)
    with pytest.raises((ValueError, IndexError)):
        x.transpose(0, 1, 5)


# ---------------------------------------------------------------------------- elementwise
def test_pow_exp_log_div_gradcheck(rng):
    xv = rng.random((3, 4)) + 0.5
    yv = rng.random((3, 4)) + 0.5
    x, y = T(xv), T(yv)
    np.testing.assert_allclose((x ** 3).numpy(), xv ** 3, rtol=1e-14)
    np.testing.assert_allclose((x ** -1.5).numpy(), xv ** -1.5, rtol=1e-14)
    np.testing.assert_allclose(x.exp().numpy(), np.exp(xv), rtol=1e-15)
    np.testing.assert_allclose(x.log().numpy(), np.log(xv), rtol=1e-15)
    np.testing.assert_allclose((x / y).numpy(), xv / yv, rtol=1e-15)
    for fn in (lambda x, y: x ** 3, lambda x, y: x ** 0.5, lambda x, y: x ** -1.5, lambda x, y: x.exp() * y.log(),
               lambda x, y: x / y, lambda x, y: -x / (y * 2.0), lambda x, y: F.exp(F.log(x) + y), lambda x, y: x - y):
        x.grad = y.grad = None
        assert minidl.gradcheck(fn, [x, y])
    x.grad = None
    (x ** 3).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * xv ** 2, rtol=1e-14)
    with pytest.raises(TypeError, match="pow: the exponent must be a Python number"):
        x ** y


def test_pow_edge_exponents():
    x = T([0.0, 2.0, -3.0])
    (x ** 0).sum().backward()                      # d/dx x^0 = 0 everywhere, also at x = 0
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])
    x = T([0.0, 2.0, -3.0])
    (x ** 1).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 1.0])
    x = T([0.0, 2.0, -3.0])
    (x ** 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 4.0, -6.0])


# ---------------------------------------------------------------------------- graph lifetime
def test_backward_needs_a_scalar_or_a_gradient_of_the_right_shape(rng):
    x = T(rng.standard_normal(3))
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"grad can be implied only for a scalar.*\(3,\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\), expected \(3,\)"):
        y.backward(np.ones(2))
    with pytest.raises(RuntimeError, match="does not require grad"):
        T(np.ones(3), grad=False).sum().backward()
    y.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_second_backward_raises_unless_graph_retained(rng):
    xv = rng.standard_normal(3)
    x = T(xv)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()

    x = T(xv)
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    # the second pass adds its two terms (e^x and x e^x) into x.grad one at a time: fl(fl(first + a) + b)
    # vs 2 first = 2 fl(a + b), within u (3 |first| + |first + a|) (float64, u = 2**-53)
    terms = np.maximum(np.exp(xv), np.abs(xv * np.exp(xv)))
    assert_within(x.grad, 2 * first, 1.01 * unit_roundoff(np.float64) * (4 * np.abs(first) + terms), "accumulated grad")
    np.testing.assert_allclose(first, np.exp(xv) * (1 + xv), rtol=1e-14)


def test_no_grad_builds_no_graph_and_restores(rng):
    x = T(rng.standard_normal(3))
    assert minidl.is_grad_enabled()
    with minidl.no_grad():
        assert not minidl.is_grad_enabled()
        y = x * 2.0 + 1.0
        with minidl.enable_grad():
            z = x * 2.0
        assert not minidl.is_grad_enabled()
    assert minidl.is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    assert z.requires_grad and z.creator is not None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    with pytest.raises(ZeroDivisionError):
        with minidl.no_grad():
            1 / 0
    assert minidl.is_grad_enabled()


def test_detach_cuts_the_graph(rng):
    xv = rng.standard_normal(3)
    x = T(xv)
    d = x.detach()
    assert d.creator is None and not d.requires_grad
    np.testing.assert_array_equal(d.numpy(), xv)
    (x * d).sum().backward()                       # d is a constant: gradient is d, not 2x
    np.testing.assert_allclose(x.grad, xv, rtol=1e-15)
    y = (x * 3.0).detach()
    assert y.is_leaf and not y.requires_grad


def test_dtypes_item_numpy():
    assert minidl.tensor([1.0, 2.0]).dtype == np.float32
    assert minidl.tensor(1.5).dtype == np.float32
    assert minidl.tensor([[1.5]], requires_grad=True).dtype == np.float32
    assert minidl.tensor(np.array([1.0, 2.0])).dtype == np.float64
    assert minidl.tensor(np.zeros(2, np.float16)).dtype == np.float16
    assert minidl.tensor([1, 2]).dtype.kind == "i"
    assert minidl.tensor([1.0], dtype=np.float64).dtype == np.float64
    t = minidl.tensor(np.array([[2.5]]))
    assert t.item() == 2.5 and isinstance(t.item(), float)
    with pytest.raises(ValueError, match="only a one-element tensor"):
        minidl.tensor(np.ones(2)).item()
    a = np.arange(3.0)
    u = minidl.tensor(a)
    a[0] = 99.0                                    # tensor() copies
    assert u.numpy()[0] == 0.0
    assert isinstance(u.numpy(), np.ndarray)
    np.testing.assert_array_equal(u.numpy(), [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="only floating tensors can require grad"):
        minidl.tensor([1, 2], requires_grad=True)
    assert (minidl.tensor([1.0]) + minidl.tensor([2.0])).dtype == np.float32
    assert len(minidl.tensor(np.zeros((4, 2)))) == 4


def test_astype_backward_returns_the_source_dtype(rng):
    x = minidl.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, 2 * x.data)      # 1 * y + 1 * y = 2 y: exact in float64 and back in float32


def test_a_deep_chain_backpropagates_without_recursion_errors():
    x = T(np.array([1.0]))
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 5000], rtol=1e-10)


def test_a_wide_graph_frees_and_works():
    xs = [T(np.array([float(i)])) for i in range(100)]
    total = xs[0]
    for x in xs[1:]:
        total = total + x * x
    total.sum().backward()
    for i, x in enumerate(xs):
        assert x.grad[0] == (1.0 if i == 0 else 2.0 * i)


def test_unused_output_branch_gets_zero_gradient(rng):
    x = T(rng.standard_normal((2, 3)))
    a = x * 2.0
    _ = a * 5.0                                   # a branch that does not reach the loss
    (a.sum() + x[0].sum()).backward()
    np.testing.assert_array_equal(x.grad, [[3.0, 3.0, 3.0], [2.0, 2.0, 2.0]])


def test_leaf_backward_with_explicit_gradient(rng):
    x = T(rng.standard_normal(2))
    x.backward(np.array([2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])


def test_repr_and_properties():
    t = minidl.tensor(np.zeros((2, 3)), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.backend == "numpy" and t.is_leaf
    assert "requires_grad=True" in repr(t) and "float64" in repr(t)


def test_a_deep_chain_of_additions_backpropagates_without_recursion_errors():
    x = T(np.array([0.5, -1.0]))
    c = T(np.array([2.0, 3.0]))
    y = x
    for _ in range(5000):
        y = y + c                                   # both x and c flow through all 5000 Add nodes
    assert y.creator is not None
    y.backward(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])
    np.testing.assert_array_equal(c.grad, [5000.0, 10000.0])
    np.testing.assert_allclose(y.numpy(), [0.5 + 10000.0, -1.0 + 15000.0], rtol=1e-15)


def test_no_grad_result_is_a_leaf_without_creator_even_for_composite_ops(rng):
    x = T(rng.standard_normal((2, 3)))
    with minidl.no_grad():
        outs = [x @ x.T, x.sum(axis=0), x[0], F.concatenate([x, x]), x.reshape(3, 2), x.exp().log(), x ** 2]
    for y in outs:
        assert not y.requires_grad and y.creator is None and y.is_leaf
    assert x.grad is None


def test_float64_numpy_scalar_keeps_float64():
    """A float64 NumPy value (0-d array *or* scalar, e.g. ``a.sum()``) keeps its dtype, as NumPy data should."""
    a = np.arange(3.0)
    assert minidl.tensor(np.array(2.5)).dtype == np.float64
    s = minidl.tensor(a.sum(), requires_grad=True)           # a.sum() is an np.float64 scalar
    assert s.dtype == np.float64
    assert s.item() == 3.0


def test_gradient_of_a_0d_leaf_is_an_array(rng):
    """.grad is an array like .data (0-d here), so it can be edited in place like any other gradient."""
    s = minidl.tensor(np.array(1.5), requires_grad=True)
    v = T(rng.standard_normal(3))
    ((s * s) + (v * s).sum()).backward()
    assert isinstance(s.grad, np.ndarray) and s.grad.shape == ()
    assert float(s.grad) == pytest.approx(3.0 + v.data.sum(), rel=1e-14)
    s.grad[...] = 0.0                                           # e.g. an optimizer zeroing or clipping in place
    assert float(s.grad) == 0.0
