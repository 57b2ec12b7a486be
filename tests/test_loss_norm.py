"""Softmax, log-softmax, softmax cross-entropy and batch norm: by hand, PyTorch, gradchecks."""
import numpy as np
import pytest
from scipy import special

import minidl
import minidl.functional as F

from conftest import channels_last, host, layouts, make_tensor
from float_bounds import assert_within, unit_roundoff


def ce_reference(logits, labels):
    log_p = logits - special.logsumexp(logits, axis=1, keepdims=True)
    return -log_p[np.arange(len(labels)), labels].mean()


def ce_grad_reference(logits, labels):
    p = special.softmax(logits, axis=1)
    p[np.arange(len(labels)), labels] -= 1
    return p / len(labels)


# ---------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("n,k", [(1, 3), (4, 10), (5, 2)])
def test_cross_entropy_by_hand(xp_backend, rng, n, k):
    logits = rng.standard_normal((n, k)) * 3
    labels = rng.integers(0, k, n)
    t = minidl.tensor(xp_backend.asarray(logits), requires_grad=True)
    loss = F.softmax_cross_entropy(t, xp_backend.asarray(labels))
    assert loss.shape == () and loss.dtype == np.float64
    assert loss.item() == pytest.approx(ce_reference(logits, labels), rel=1e-12)
    # independent: -log(exp(z_y) / sum exp(z)) straight from the definition
    direct = -np.mean([np.log(np.exp(logits[i, labels[i]]) / np.exp(logits[i]).sum()) for i in range(n)])
    assert loss.item() == pytest.approx(direct, rel=1e-10)
    loss.backward()
    np.testing.assert_allclose(host(t.grad), ce_grad_reference(logits, labels), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("n,k", [(1, 4), (3, 5)])
def test_cross_entropy_gradcheck(xp_backend, rng, n, k):
    labels = xp_backend.asarray(rng.integers(0, k, n))
    x = minidl.tensor(xp_backend.asarray(rng.standard_normal((n, k))), requires_grad=True)
    assert minidl.gradcheck(lambda z: F.softmax_cross_entropy(z, labels), [x])
    assert minidl.gradcheck(lambda z: F.cross_entropy(z, labels) * 3.0, [x])


def test_cross_entropy_is_finite_for_huge_logits(rng):
    logits = rng.standard_normal((4, 10)) * 1e4
    labels = np.array([0, 3, 9, 5])
    t = minidl.tensor(logits, requires_grad=True)
    loss = F.softmax_cross_entropy(t, labels)
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx(ce_reference(logits, labels), rel=1e-12)
    loss.backward()
    assert np.isfinite(t.grad).all()
    np.testing.assert_allclose(t.grad, ce_grad_reference(logits, labels), atol=1e-12)
    big32 = minidl.tensor(np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4]], dtype=np.float32))
    out = F.softmax_cross_entropy(big32, np.array([1, 2]))
    assert out.dtype == np.float32 and np.isfinite(out.item())
    # float32: the losses 2e4 and log 2 (exact shift, log within 4 ulp: ~3e-11 of the result), their sum
    # and mean round once each (u each)
    assert out.item() == pytest.approx((2e4 + np.log(2)) / 2, rel=3 * unit_roundoff())


@pytest.mark.parametrize("scale", [2.0, 1e4])
def test_cross_entropy_matches_pytorch(rng, scale):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((6, 7)) * scale
    labels = rng.integers(0, 7, 6)
    tx = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(labels))
    tl.backward()
    mx = minidl.tensor(logits, requires_grad=True)
    ml = F.softmax_cross_entropy(mx, labels)
    ml.backward()
    assert np.isfinite(ml.item())
    assert ml.item() == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_cross_entropy_accepts_lists_and_unsigned_labels(rng):
    logits = rng.standard_normal((3, 4))
    expected = ce_reference(logits, np.array([3, 0, 2]))
    for labels in ([3, 0, 2], np.array([3, 0, 2], dtype=np.uint8), minidl.tensor(np.array([3, 0, 2]))):
        assert F.softmax_cross_entropy(minidl.tensor(logits), labels).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_labels_as_list_tuple_numpy_or_backend_array(xp_backend, rng):
    """Host labels (list, tuple, NumPy) move to the logits' backend; with CuPy logits a list used to be refused."""
    logits = rng.standard_normal((4, 5))
    labels = [4, 0, 2, 2]
    expected, grad = ce_reference(logits, np.array(labels)), ce_grad_reference(logits, np.array(labels))
    for given in (labels, tuple(labels), np.array(labels), np.array(labels, dtype=np.int32),
                  xp_backend.asarray(labels), minidl.tensor(xp_backend.asarray(labels))):
        t = minidl.tensor(xp_backend.asarray(logits), requires_grad=True)
        loss = F.softmax_cross_entropy(t, given)
        assert loss.item() == pytest.approx(expected, rel=1e-12)
        loss.backward()
        np.testing.assert_allclose(host(t.grad), grad, rtol=1e-12, atol=1e-15)


def test_cross_entropy_with_labels_checked_on_the_device(xp_backend, rng):
    """GPU labels are range-checked on the device, with no wait for the GPU: a bad label makes the loss NaN.

    The same code runs on NumPy arrays here, so the logic is tested on every machine.
    """
    from minidl.functional.loss import SoftmaxCrossEntropy
    logits = rng.standard_normal((4, 5))
    good = np.array([4, 0, 2, 2])
    t = minidl.tensor(xp_backend.asarray(logits), requires_grad=True)
    loss = SoftmaxCrossEntropy(xp_backend.asarray(good), labels_checked=False)(t)
    assert loss.item() == pytest.approx(ce_reference(logits, good), rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(host(t.grad), ce_grad_reference(logits, good), rtol=1e-12, atol=1e-15)
    for bad in ([4, 0, 5, 2], [-1, 0, 2, 2]):
        loss = SoftmaxCrossEntropy(xp_backend.asarray(np.array(bad)), labels_checked=False)(minidl.tensor(xp_backend.asarray(logits)))
        assert np.isnan(loss.item()), bad


def test_cross_entropy_gpu_labels_out_of_range_give_nan_not_an_error(cupy_backend, rng):
    logits = minidl.tensor(cupy_backend.asarray(rng.standard_normal((3, 4))))
    loss = F.softmax_cross_entropy(logits, cupy_backend.asarray([0, 4, 1]))
    assert np.isnan(loss.item())
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):   # host labels are still checked on the host
        F.softmax_cross_entropy(logits, [0, 4, 1])


# ---------------------------------------------------------------------------- softmax / log-softmax
@pytest.mark.parametrize("shape,axis", [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((1, 1), -1)])
def test_softmax_and_log_softmax(xp_backend, rng, shape, axis):
    x = rng.standard_normal(shape) * 2
    t = minidl.tensor(xp_backend.asarray(x), requires_grad=True)
    np.testing.assert_allclose(F.softmax(t, axis).numpy(), special.softmax(x, axis=axis), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(F.log_softmax(t, axis).numpy(), special.log_softmax(x, axis=axis), rtol=1e-12, atol=1e-12)
    assert minidl.gradcheck(lambda z: F.softmax(z, axis), [t])
    assert minidl.gradcheck(lambda z: F.log_softmax(z, axis), [t])


def test_softmax_against_pytorch_and_huge_inputs(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 6)) * 1e3
    gy = rng.standard_normal((4, 6))
    for name in ("softmax", "log_softmax"):
        tx = torch.tensor(x, requires_grad=True)
        ty = getattr(torch.nn.functional, name)(tx, dim=1)
        ty.backward(torch.tensor(gy))
        mx = minidl.tensor(x, requires_grad=True)
        my = getattr(F, name)(mx, axis=1)
        my.backward(gy)
        assert np.isfinite(my.numpy()).all()
        np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------- batch norm
def bn_reference(x, gamma, beta, eps):
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    return gamma[None, :, None, None] * (x - mu) / np.sqrt(var + eps) + beta[None, :, None, None]


@pytest.mark.parametrize("shape", [(2, 3, 3, 5), (1, 2, 3, 3), (5, 1, 1, 1)])
def test_batch_norm_train_by_hand(xp_backend, rng, shape):
    c = shape[1]
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(c), rng.standard_normal(c)
    rm0, rv0 = rng.standard_normal(c), rng.random(c) + 0.5
    m = shape[0] * shape[2] * shape[3]
    outs = []
    for layout in layouts(x):
        rm, rv = xp_backend.asarray(rm0.copy()), xp_backend.asarray(rv0.copy())
        y = F.batch_norm2d(make_tensor(layout, xp_backend), rm, rv, minidl.tensor(xp_backend.asarray(gamma)),
                           minidl.tensor(xp_backend.asarray(beta)), training=True, momentum=0.1, eps=1e-5)
        np.testing.assert_allclose(y.numpy(), bn_reference(x, gamma, beta, 1e-5), rtol=1e-10, atol=1e-12)
        batch_mean = x.mean(axis=(0, 2, 3))
        unbiased = x.var(axis=(0, 2, 3)) * m / (m - 1)
        np.testing.assert_allclose(host(rm), 0.9 * rm0 + 0.1 * batch_mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(host(rv), 0.9 * rv0 + 0.1 * unbiased, rtol=1e-12, atol=1e-14)
        outs.append(y.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


def test_batch_norm_eval_uses_running_statistics(xp_backend, rng):
    x = rng.standard_normal((2, 3, 4, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    rm_d, rv_d = xp_backend.asarray(rm.copy()), xp_backend.asarray(rv.copy())
    for layout in layouts(x):
        y = F.batch_norm2d(make_tensor(layout, xp_backend), rm_d, rv_d, minidl.tensor(xp_backend.asarray(gamma)),
                           minidl.tensor(xp_backend.asarray(beta)), training=False, eps=1e-3)
        expected = (gamma[None, :, None, None] * (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-3)
                    + beta[None, :, None, None])
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(host(rm_d), rm)      # eval never moves the running statistics
    np.testing.assert_array_equal(host(rv_d), rv)


def test_batch_norm_eval_keeps_a_float32_input_dtype_with_float64_running_statistics(xp_backend, rng):
    """float64 statistics (e.g. from np.zeros(C)) are cast to x's dtype: y and dL/dx stay float32."""
    from minidl import nn
    x = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    rm_d, rv_d = xp_backend.asarray(rm.copy()), xp_backend.asarray(rv.copy())
    expected = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-3)
    for layout in layouts(x):
        t = make_tensor(layout, xp_backend, requires_grad=True)
        y = F.batch_norm2d(t, rm_d, rv_d, training=False, eps=1e-3)
        assert y.dtype == np.float32
        # float32: the statistics cast (u each), x - mean (u), var + eps, its sqrt and 1 / it (3u more on 1/std),
        # the product (u): |y32 - y| <= u (|mean| + |x - mean|) / std + 4u |y| (first order; 1.01 for the rest)
        u, std = unit_roundoff(), np.sqrt(rv[None, :, None, None] + 1e-3)
        bound = 1.01 * (u * (np.abs(rm[None, :, None, None]) + np.abs(x - rm[None, :, None, None])) / std + 4 * u * np.abs(expected))
        assert_within(y.numpy(), expected, bound, "float32 eval batch norm")
        y.sum().backward()
        assert t.grad.dtype == np.float32
    assert rm_d.dtype == rv_d.dtype == np.float64                 # the buffers themselves are left as they are
    bn = nn.BatchNorm2d(3).eval()
    bn.set_buffer("running_mean", xp_backend.asarray(rm))
    bn.set_buffer("running_var", xp_backend.asarray(rv))
    assert bn(make_tensor(x, xp_backend)).dtype == np.float32


def test_batch_norm_without_affine_or_running_stats(rng):
    x = rng.standard_normal((3, 2, 2, 3))
    y = F.batch_norm2d(minidl.tensor(x), training=True, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), bn_reference(x, np.ones(2), np.zeros(2), 1e-5), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 3, 5), (1, 2, 3, 3), (4, 2, 1, 1)])
def test_batch_norm_gradcheck(xp_backend, rng, training, shape):
    c = shape[1]
    for layout in layouts(rng.standard_normal(shape)):
        x = make_tensor(layout, xp_backend, requires_grad=True)
        g = minidl.tensor(xp_backend.asarray(rng.standard_normal(c)), requires_grad=True)
        b = minidl.tensor(xp_backend.asarray(rng.standard_normal(c)), requires_grad=True)
        rm, rv = xp_backend.asarray(rng.standard_normal(c)), xp_backend.asarray(rng.random(c) + 0.5)
        assert minidl.gradcheck(lambda x, g, b: F.batch_norm2d(x, rm, rv, g, b, training=training), [x, g, b])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_pytorch(rng, training):
    torch = pytest.importorskip("torch")
    shape = (3, 4, 5, 3)
    x = rng.standard_normal(shape) * 1.5 - 0.5
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    rm0, rv0 = rng.standard_normal(4), rng.random(4) + 0.5
    gy = rng.standard_normal(shape)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    trm, trv = torch.tensor(rm0.copy()), torch.tensor(rv0.copy())
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=training, momentum=0.1, eps=1e-5)
    ty.backward(torch.tensor(gy))
    for layout in layouts(x):
        mx, mg, mb = (make_tensor(a, requires_grad=True) for a in (layout, gamma, beta))
        rm, rv = rm0.copy(), rv0.copy()
        my = F.batch_norm2d(mx, rm, rv, mg, mb, training=training, momentum=0.1, eps=1e-5)
        my.backward(gy)
        np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(mg.grad, tg.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mb.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_module_running_stats_follow_pytorch_over_steps(rng):
    torch = pytest.importorskip("torch")
    from minidl import nn
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3).double()
    for p in ours.parameters():
        p.data = p.data.astype(np.float64)
    ours.set_buffer("running_mean", ours.running_mean.astype(np.float64))
    ours.set_buffer("running_var", ours.running_var.astype(np.float64))
    for _ in range(3):
        x = rng.standard_normal((4, 3, 2, 3)) * 2 + 3
        ours(minidl.tensor(x))
        theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(ours(make_tensor(channels_last(x))).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
