"""minidl.functional: linear, relu, dropout and the functional forms of the tensor ops."""
import numpy as np
import pytest

import minidl
import minidl.functional as F

from conftest import channels_last, host, is_channels_last, layouts, make_tensor


# ---------------------------------------------------------------------------- linear
@pytest.mark.parametrize("n,i,o", [(1, 3, 2), (4, 5, 3), (3, 1, 1)])
def test_linear_matches_numpy_and_gradchecks(xp_backend, rng, n, i, o):
    xv, wv, bv = rng.standard_normal((n, i)), rng.standard_normal((o, i)), rng.standard_normal(o)
    gy = rng.standard_normal((n, o))
    x, w, b = (minidl.tensor(xp_backend.asarray(a), requires_grad=True) for a in (xv, wv, bv))
    y = F.linear(x, w, b)
    np.testing.assert_allclose(y.numpy(), xv @ wv.T + bv, rtol=1e-13, atol=1e-14)
    y.backward(xp_backend.asarray(gy))
    np.testing.assert_allclose(host(x.grad), gy @ wv, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(host(w.grad), gy.T @ xv, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(host(b.grad), gy.sum(axis=0), rtol=1e-13, atol=1e-14)
    x.grad = w.grad = b.grad = None
    assert minidl.gradcheck(F.linear, [x, w, b])
    assert minidl.gradcheck(lambda x, w: F.linear(x, w), [x, w])
    np.testing.assert_allclose(F.linear(x, w).numpy(), xv @ wv.T, rtol=1e-13, atol=1e-14)


def test_linear_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    xv, wv, bv = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xv, wv, bv))
    ty = torch.nn.functional.linear(tx, tw, tb)
    gy = rng.standard_normal((3, 2))
    ty.backward(torch.tensor(gy))
    x, w, b = (minidl.tensor(a, requires_grad=True) for a in (xv, wv, bv))
    F.linear(x, w, b).backward(gy)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-13, atol=1e-14)


def test_linear_only_weight_requires_grad(rng):
    x = minidl.tensor(rng.standard_normal((3, 2)))
    w = minidl.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    F.linear(x, w).sum().backward()
    np.testing.assert_allclose(w.grad, np.ones((4, 3)) @ x.data, rtol=1e-14)
    assert x.grad is None


# ---------------------------------------------------------------------------- relu
def test_relu(xp_backend, rng):
    xv = rng.standard_normal((2, 3, 4, 5))
    xv[np.abs(xv) < 1e-3] = 0.5          # keep finite differences off the kink
    for layout in layouts(xv):
        x = make_tensor(layout, xp_backend, requires_grad=True)
        y = F.relu(x)
        np.testing.assert_array_equal(y.numpy(), np.maximum(xv, 0))
        assert is_channels_last(y.data) == is_channels_last(x.data)   # the layout is kept
        gy = rng.standard_normal(xv.shape)
        y.backward(xp_backend.asarray(gy))
        np.testing.assert_array_equal(host(x.grad), gy * (xv > 0))
        x.grad = None
        assert minidl.gradcheck(F.relu, [x])
        assert minidl.gradcheck(lambda x: x.relu() * x, [x])


def test_relu_gradient_at_zero_is_zero():
    x = minidl.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


# ---------------------------------------------------------------------------- dropout
def test_dropout_zeroes_about_p_and_scales_survivors(rng):
    x = minidl.tensor(rng.random((200, 250)) + 1.0)      # strictly positive: a zero is a dropped element
    for p in (0.2, 0.5, 0.8):
        y = F.dropout(x, p, training=True).numpy()
        dropped = (y == 0).mean()
        assert abs(dropped - p) < 0.01               # 50,000 draws: std of the rate ~0.002
        kept = y != 0
        np.testing.assert_allclose(y[kept], x.data[kept] / (1 - p), rtol=1e-14)
    x32 = minidl.tensor(np.ones((100, 100), np.float32))
    y32 = F.dropout(x32, 0.5)
    assert y32.dtype == np.float32
    assert set(np.unique(y32.numpy())) <= {0.0, 2.0}


def test_dropout_identity_in_eval_or_with_p_zero(rng):
    x = minidl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    for y in (F.dropout(x, 0.5, training=False), F.dropout(x, 0.0, training=True)):
        np.testing.assert_array_equal(y.numpy(), x.numpy())
    F.dropout(x, 0.7, training=False).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((3, 4)))


def test_dropout_same_seed_same_mask(rng):
    x = minidl.tensor(rng.standard_normal((10, 20)))
    minidl.manual_seed(42)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    minidl.manual_seed(42)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a == 0, b == 0)        # the next draw is a new mask


def test_dropout_gradient_is_mask_times_scale(rng):
    xv = rng.standard_normal((6, 7)) + 5.0
    x = minidl.tensor(xv, requires_grad=True)
    y = F.dropout(x, 0.3)
    gy = rng.standard_normal((6, 7))
    y.backward(gy)
    mask = y.numpy() != 0
    np.testing.assert_allclose(x.grad, gy * mask / 0.7, rtol=1e-14)
    np.testing.assert_allclose(y.numpy(), xv * mask / 0.7, rtol=1e-14)


def test_dropout_gradcheck_with_a_fixed_mask(rng):
    x = minidl.tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)

    def fn(x):
        minidl.manual_seed(7)          # the same mask at every evaluation
        return F.dropout(x, 0.4)

    assert minidl.gradcheck(fn, [x])


def test_dropout_keeps_the_channels_last_layout(rng):
    xv = rng.standard_normal((2, 3, 4, 5)) + 10.0
    x = make_tensor(channels_last(xv), requires_grad=True)
    assert is_channels_last(x.data)
    y = F.dropout(x, 0.5)
    assert is_channels_last(y.data)
    assert y.data.transpose(0, 2, 3, 1).flags.c_contiguous and not y.data.flags.c_contiguous
    mask = y.numpy() != 0
    np.testing.assert_allclose(y.numpy(), xv * mask * 2.0, rtol=1e-14)
    y.backward(np.ones(xv.shape))
    np.testing.assert_allclose(x.grad, mask * 2.0, rtol=1e-14)


def test_dropout_on_backend(xp_backend, rng):
    x = minidl.tensor(xp_backend.asarray(rng.random((50, 40)) + 1.0), requires_grad=True)
    y = F.dropout(x, 0.25)
    assert y.backend == minidl.get_backend()
    assert abs((y.numpy() == 0).mean() - 0.25) < 0.03


# ---------------------------------------------------------------------------- functional forms
def test_functional_forms_match_the_operators(rng):
    av, bv = rng.random((2, 3)) + 0.5, rng.random((2, 3)) + 0.5
    a, b = minidl.tensor(av), minidl.tensor(bv)
    pairs = [
        (F.add(a, b), av + bv), (F.sub(a, b), av - bv), (F.mul(a, b), av * bv), (F.div(a, b), av / bv),
        (F.neg(a), -av), (F.pow(a, 2.5), av ** 2.5), (F.matmul(a, b.T), av @ bv.T), (F.exp(a), np.exp(av)),
        (F.log(a), np.log(av)), (F.sum(a, axis=1), av.sum(axis=1)), (F.mean(a, axis=0), av.mean(axis=0)),
        (F.max(a, axis=-1, keepdims=True), av.max(axis=-1, keepdims=True)), (F.reshape(a, (3, 2)), av.reshape(3, 2)),
        (F.transpose(a), av.T), (F.transpose(a, (1, 0)), av.T), (F.getitem(a, (1, slice(0, 2))), av[1, 0:2]),
        (F.concatenate([a, b], axis=1), np.concatenate([av, bv], axis=1)),
        (F.flatten(minidl.tensor(av.reshape(1, 2, 3, 1))), av.reshape(1, 6)),
        (F.flatten(minidl.tensor(av.reshape(2, 1, 3)), 0), av.reshape(6)),
        (F.astype(a, np.float32), av.astype(np.float32)),
    ]
    for got, expected in pairs:
        assert got.shape == np.shape(expected)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-14)
    assert F.cross_entropy is F.softmax_cross_entropy


def test_functional_gradchecks_on_backend(xp_backend, rng):
    a = minidl.tensor(xp_backend.asarray(rng.random((2, 3)) + 0.5), requires_grad=True)
    b = minidl.tensor(xp_backend.asarray(rng.random((3,)) + 0.5), requires_grad=True)
    for fn in (F.add, F.sub, F.mul, F.div, lambda a, b: F.pow(a, 3) + F.neg(b), lambda a, b: F.matmul(a, b),
               lambda a, b: F.log(F.exp(a) + b), lambda a, b: F.max(a * b, axis=1) + F.mean(a, 0).sum() * F.sum(b),
               lambda a, b: F.getitem(F.reshape(F.transpose(a), (2, 3)), (slice(None), [2, 0, 2])),
               lambda a, b: F.concatenate([F.flatten(a, 0), b], 0)):
        a.grad = b.grad = None
        assert minidl.gradcheck(fn, [a, b])


def test_dropout_keeps_a_plain_nchw_layout(rng):
    x = minidl.tensor(rng.standard_normal((2, 3, 4, 5)) + 10.0)
    y = F.dropout(x, 0.5)
    assert y.data.flags.c_contiguous
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], x.data[kept] * 2.0, rtol=1e-14)
