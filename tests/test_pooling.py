"""max_pool2d, avg_pool2d, global_avg_pool2d: naive loops, PyTorch, gradchecks, padding and overlap."""
import numpy as np
import pytest

import minidl
import minidl.functional as F

from conftest import channels_last, host, layouts, make_tensor


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def naive_max(plane, top, left, kh, kw):
    """(max, winner (row, col)) of the window's real cells, as PyTorch's loop: the first real cell starts as
    the winner and a larger value or a NaN replaces it (so ties go to the first max, a NaN max to the last NaN)."""
    best = None
    for r in range(top, top + kh):
        for s in range(left, left + kw):
            if 0 <= r < plane.shape[0] and 0 <= s < plane.shape[1]:
                v = plane[r, s]
                if best is None or v > best or np.isnan(v):
                    best, winner = v, (r, s)
    return best, winner


def naive_pool(x, kernel, stride, padding, op):
    """Plain loops. max: padded cells are skipped (never win, see naive_max); avg: padding counts as zeros,
    divide by kh*kw.

    Returns (y, backward) where backward(gy) routes gradients like the definition: max to the winner
    of each window, avg spread evenly over the kh*kw window cells.
    """
    (kh, kw) = pair(kernel)
    (sh, sw) = pair(kernel if stride is None else stride)
    (ph, pw) = pair(padding)
    n, c, h, w = x.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))          # zero padding (avg)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c, ho, wo))
    winners = {}
    for a in range(n):
        for b in range(c):
            for i in range(ho):
                for j in range(wo):
                    if op == "max":
                        y[a, b, i, j], winners[a, b, i, j] = naive_max(x[a, b], i * sh - ph, j * sw - pw, kh, kw)
                    else:
                        y[a, b, i, j] = xp_[a, b, i * sh:i * sh + kh, j * sw:j * sw + kw].sum() / (kh * kw)

    def backward(gy):
        gpad = np.zeros(xp_.shape)
        gx = np.zeros(x.shape)
        for a in range(n):
            for b in range(c):
                for i in range(ho):
                    for j in range(wo):
                        if op == "max":
                            r, s = winners[a, b, i, j]
                            assert 0 <= r < h and 0 <= s < w, "a padded cell won"
                            gx[a, b, r, s] += gy[a, b, i, j]
                        else:
                            gpad[a, b, i * sh:i * sh + kh, j * sw:j * sw + kw] += gy[a, b, i, j] / (kh * kw)
        return gx if op == "max" else gpad[:, :, ph:ph + h, pw:pw + w]

    return y, backward


# (x shape, kernel, stride, padding)
CASES = [
    ((1, 2, 5, 7), (3, 2), None, 0),
    ((2, 2, 7, 5), 3, 2, 1),              # NIN's overlapping 3x3/2 with padding 1
    ((1, 3, 6, 6), 2, None, 0),
    ((2, 1, 5, 6), 3, (1, 2), (1, 0)),
    ((1, 2, 4, 5), (2, 3), (2, 1), (1, 1)),
    ((1, 2, 3, 4), (3, 4), 1, (1, 2)),   # kernel 3x4 on a 5x8 padded input
    ((1, 2, 3, 4), (5, 6), 1, (1, 1)),   # kernel equal to the padded input: one output cell
    ((2, 2, 4, 3), (4, 3), None, 0),     # kernel equal to the input
    ((1, 2, 5, 5), 1, 2, 0),             # 1x1 kernel, stride 2
    ((1, 2, 7, 7), 2, 3, 1),             # stride larger than the kernel: cells that no window sees
]
IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}" for c in CASES]
OPS = {"max": F.max_pool2d, "avg": F.avg_pool2d}


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_pool_forward_and_backward_match_naive_loops(xp_backend, rng, shape, k, s, p, op):
    x = rng.standard_normal(shape)
    expected, backward = naive_pool(x, k, s, p, op)
    gy = rng.standard_normal(expected.shape)
    outs = []
    for layout in layouts(x):
        t = make_tensor(layout, xp_backend, requires_grad=True)
        y = OPS[op](t, k, s, p)
        assert y.shape == expected.shape
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
        y.backward(xp_backend.asarray(gy))
        np.testing.assert_allclose(minidl.backends.to_numpy(t.grad), backward(gy), rtol=1e-12, atol=1e-12)
        outs.append(y.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("shape,k,s,p", CASES, ids=IDS)
def test_pool_gradcheck(xp_backend, rng, shape, k, s, p, op):
    for layout in layouts(rng.standard_normal(shape)):
        x = make_tensor(layout, xp_backend, requires_grad=True)
        assert minidl.gradcheck(lambda x: OPS[op](x, k, s, p), [x])


def test_padded_cells_never_win_a_max():
    x = -1.0 - np.arange(2 * 5 * 5, dtype=np.float64).reshape(1, 2, 5, 5)    # every value < 0 (< the zero padding)
    for layout in layouts(x):
        t = make_tensor(layout, requires_grad=True)
        y = F.max_pool2d(t, 3, 2, 1)
        assert (y.numpy() < 0).all()
        expected, backward = naive_pool(x, 3, 2, 1, "max")
        np.testing.assert_array_equal(y.numpy(), expected)
        y.sum().backward()
        np.testing.assert_array_equal(t.grad, backward(np.ones(expected.shape)))
        assert t.grad.sum() == expected.size       # every window's gradient landed on a real cell


def test_padded_cells_never_win_with_asymmetric_padding_and_float32():
    x = -(np.random.default_rng(0).random((2, 3, 4, 5)) + 0.5).astype(np.float32)
    y = F.max_pool2d(make_tensor(channels_last(x)), (3, 2), (1, 2), (1, 1))
    expected, _ = naive_pool(x.astype(np.float64), (3, 2), (1, 2), (1, 1), "max")
    assert y.dtype == np.float32 and (y.numpy() < 0).all()
    np.testing.assert_array_equal(y.numpy(), expected)      # a max rounds nothing: it is one of the float32 inputs


def test_overlapping_max_pool_gradient_sums_where_a_cell_wins_several_windows(rng):
    x = rng.standard_normal((1, 1, 5, 5))
    x[0, 0, 1, 1] = 10.0          # in the windows of outputs (0,0), (0,1), (1,0), (1,1) of a 3x3/2 pad-1 pool
    x[0, 0, 4, 2] = 9.0           # row 4 is only in output row 2 (rows 3..5), col 2 only in output col 1 (cols 1..3)
    gy = rng.standard_normal((1, 1, 3, 3))
    t = minidl.tensor(x, requires_grad=True)
    y = F.max_pool2d(t, 3, 2, 1)
    y.backward(gy)
    expected, backward = naive_pool(x, 3, 2, 1, "max")
    np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_allclose(t.grad, backward(gy), rtol=1e-12, atol=1e-12)
    assert t.grad[0, 0, 1, 1] == pytest.approx(gy[0, 0, :2, :2].sum(), rel=1e-12)   # the sum of its 4 windows
    assert t.grad[0, 0, 4, 2] == pytest.approx(gy[0, 0, 2, 1], rel=1e-12)


def test_max_pool_ties_send_the_gradient_to_one_cell():
    x = np.zeros((1, 1, 4, 4))
    t = minidl.tensor(x, requires_grad=True)
    F.max_pool2d(t, 2).sum().backward()
    # each 2x2 window sends exactly its gradient once (to one of the tied cells), none is duplicated or lost
    assert t.grad.sum() == 4.0
    for i in range(2):
        for j in range(2):
            assert t.grad[0, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].sum() == 1.0


def test_max_pool_with_a_large_window(rng):
    """A 12x12 window (144 offsets), e.g. global max pooling of a 12x12 map."""
    x = rng.standard_normal((2, 3, 12, 12))
    t = minidl.tensor(x, requires_grad=True)
    y = F.max_pool2d(t, 12)
    np.testing.assert_array_equal(y.numpy(), x.max(axis=(2, 3), keepdims=True))
    y.sum().backward()
    np.testing.assert_array_equal(t.grad, (x == x.max(axis=(2, 3), keepdims=True)).astype(np.float64))


def _minus_inf_windows(rng):
    """(2, 4, 7, 6) values where some 3x3 stride-2 padding-1 border windows hold only -inf in their real cells."""
    x = rng.standard_normal((2, 4, 7, 6))
    x[:, 0, :2, :] = -np.inf        # output row 0 (input rows -1..1): every window all -inf
    x[:, 1, :, :2] = -np.inf        # output column 0
    x[:, 2, :2, :2] = -np.inf       # only the corner window
    x[:, 3] = -np.inf               # every window, border and inside
    return x


def _nan_windows(rng):
    """(2, 3, 7, 6) values with NaNs: two in one window, one shared by four windows, one among -inf."""
    x = rng.standard_normal((2, 3, 7, 6))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan      # corner window (0, 0): the later NaN, (1, 0), wins
    x[1, 1, 3, 3] = np.nan                      # inside windows (1, 1), (1, 2), (2, 1), (2, 2)
    x[1, 2, :2, :2] = -np.inf
    x[1, 2, 1, 1] = np.nan
    return x


@pytest.mark.parametrize("make_x", [_minus_inf_windows, _nan_windows], ids=["minus-inf", "nan"])
def test_max_pool_minus_inf_and_nan_windows_match_naive_loops(xp_backend, rng, make_x):
    """A window of -inf sends its gradient to its first real cell, not to a padded offset; a NaN wins its windows."""
    x = make_x(rng)
    expected, backward = naive_pool(x, 3, 2, 1, "max")
    gy = rng.standard_normal(expected.shape)
    for layout in layouts(x):
        t = make_tensor(layout, xp_backend, requires_grad=True)
        y = F.max_pool2d(t, 3, 2, 1)
        y.backward(xp_backend.asarray(gy))
        np.testing.assert_array_equal(y.numpy(), expected)
        np.testing.assert_allclose(host(t.grad), backward(gy), rtol=1e-12, atol=1e-12)
        assert host(t.grad).sum() == pytest.approx(gy.sum(), rel=1e-12)        # no window's gradient is lost


def test_max_pool_minus_inf_window_gradient_goes_to_its_first_real_cell():
    x = np.full((1, 1, 5, 5), -np.inf)
    t = minidl.tensor(x, requires_grad=True)
    F.max_pool2d(t, 3, 2, 1).sum().backward()
    # each 3x3/2 pad-1 window's first real cell: rows/cols 0 for output 0, 1 for output 1, 3 for output 2
    expected = np.zeros((5, 5))
    expected[np.ix_([0, 1, 3], [0, 1, 3])] = 1.0
    np.testing.assert_array_equal(t.grad[0, 0], expected)


@pytest.mark.parametrize("make_x", [_minus_inf_windows, _nan_windows], ids=["minus-inf", "nan"])
def test_max_pool_minus_inf_and_nan_windows_match_pytorch(rng, make_x):
    torch = pytest.importorskip("torch")
    x = make_x(rng)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, 3, 2, 1)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    for layout in layouts(x):
        mx = make_tensor(layout, requires_grad=True)
        my = F.max_pool2d(mx, 3, 2, 1)
        my.backward(gy)
        np.testing.assert_array_equal(my.numpy(), ty.detach().numpy())
        np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


TORCH_CASES = [
    ((2, 3, 7, 6), 3, 2, 1),
    ((1, 2, 5, 7), (3, 2), (2, 1), (1, 1)),
    ((2, 2, 8, 8), 2, None, 0),
    ((1, 1, 9, 5), (5, 3), (2, 2), (2, 0)),
]


@pytest.mark.parametrize("shape,k,s,p", TORCH_CASES)
def test_pools_match_pytorch(rng, shape, k, s, p):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = rng.standard_normal(shape)
    for op in ("max", "avg"):
        tx = torch.tensor(x, requires_grad=True)
        if op == "max":
            ty = tf.max_pool2d(tx, k, s, p)
        else:
            ty = tf.avg_pool2d(tx, k, s, p, count_include_pad=True)
        gy = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(gy))
        for layout in layouts(x):
            mx = make_tensor(layout, requires_grad=True)
            my = OPS[op](mx, k, s, p)
            my.backward(gy)
            np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_stride_defaults_to_the_kernel_size(rng):
    x = rng.standard_normal((1, 2, 6, 9))
    for op, fn in OPS.items():
        np.testing.assert_array_equal(fn(minidl.tensor(x), (2, 3)).numpy(), fn(minidl.tensor(x), (2, 3), (2, 3)).numpy())
        assert fn(minidl.tensor(x), (2, 3)).shape == (1, 2, 3, 3)


def test_avg_pool_counts_padded_zeros():
    x = np.ones((1, 1, 2, 2))
    y = F.avg_pool2d(minidl.tensor(x), 3, 1, 1).numpy()
    # every 3x3 window of the padded 4x4 sees the four ones, so each mean is 4/9
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 4 / 9), rtol=1e-15)


def test_global_avg_pool(xp_backend, rng):
    x = rng.standard_normal((2, 3, 5, 3))
    gy = rng.standard_normal((2, 3))
    for layout in layouts(x):
        t = make_tensor(layout, xp_backend, requires_grad=True)
        y = F.global_avg_pool2d(t)
        assert y.shape == (2, 3)
        np.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3)), rtol=1e-12, atol=1e-12)
        y.backward(xp_backend.asarray(gy))
        np.testing.assert_allclose(minidl.backends.to_numpy(t.grad), np.broadcast_to(gy[:, :, None, None] / 15, x.shape),
                                   rtol=1e-12, atol=1e-14)
        t.grad = None
        assert minidl.gradcheck(F.global_avg_pool2d, [t])
    one = rng.standard_normal((1, 4, 1, 1))
    np.testing.assert_array_equal(F.global_avg_pool2d(minidl.tensor(one)).numpy(), one[:, :, 0, 0])


def _random_pool_configs(count, seed):
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        n, c = (int(v) for v in r.integers(1, 3, 2))
        h, w = (int(v) for v in r.integers(1, 9, 2))
        kh, kw = (int(v) for v in r.integers(1, 6, 2))
        sh, sw = (int(v) for v in r.integers(1, 4, 2))
        ph, pw = int(r.integers(0, kh // 2 + 1)), int(r.integers(0, kw // 2 + 1))
        if kh <= h + 2 * ph and kw <= w + 2 * pw:
            configs.append(((n, c, h, w), (kh, kw), (sh, sw), (ph, pw)))
    return configs


@pytest.mark.parametrize("seed", range(3))
def test_pools_random_configurations_match_naive_loops_and_pytorch(rng, seed):
    """25 random configurations per seed (padding up to half the kernel), both layouts, max and avg."""
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    for shape, k, s, p in _random_pool_configs(25, seed):
        x = rng.standard_normal(shape)
        what = f"x {shape} kernel {k} stride {s} padding {p}"
        for op in ("max", "avg"):
            expected, backward = naive_pool(x, k, s, p, op)
            tx = torch.tensor(x, requires_grad=True)
            ty = tf.max_pool2d(tx, k, s, p) if op == "max" else tf.avg_pool2d(tx, k, s, p, count_include_pad=True)
            gy = rng.standard_normal(expected.shape)
            ty.backward(torch.tensor(gy))
            np.testing.assert_allclose(ty.detach().numpy(), expected, rtol=1e-12, atol=1e-12)   # references agree
            np.testing.assert_allclose(tx.grad.numpy(), backward(gy), rtol=1e-12, atol=1e-12)
            for layout in layouts(x):
                mx = make_tensor(layout, requires_grad=True)
                my = OPS[op](mx, k, s, p)
                my.backward(gy)
                np.testing.assert_allclose(my.numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=f"{op} {what}")
                np.testing.assert_allclose(mx.grad, backward(gy), rtol=1e-12, atol=1e-12, err_msg=f"{op} {what}")
