"""conv2d: gradchecks on awkward shapes, references (scipy loops, PyTorch), layouts, chunking, 1x1 path."""
import numpy as np
import pytest
from scipy import signal

import minidl
import minidl.functional as F
import minidl.functional.conv as conv_module

from conftest import channels_last, host, is_channels_last, layouts, make_tensor
from float_bounds import assert_within, gamma


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_reference(x, w, b=None, stride=1, padding=0):
    """Cross-correlation by scipy, looping over n, o, c; explicit zero padding, stride by slicing."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    xp_ = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c = x.shape[:2]
    o = w.shape[0]
    rows = []
    for i in range(n):
        maps = []
        for k in range(o):
            acc = sum(signal.correlate(xp_[i, j], w[k, j], mode="valid") for j in range(c))
            acc = acc[::sh, ::sw]
            maps.append(acc + (0.0 if b is None else b[k]))
        rows.append(maps)
    return np.array(rows)


def conv_term_magnitudes(x, w, gy, stride=1, padding=0):
    """(|y|, |dx|, |dW|) of the magnitudes: the sums of |terms| behind y = conv(x, w) and its gradients
    against gy, which scale their rounding errors (float_bounds: |fl(sum) - sum| <= gamma_n sum|terms|).

    y[n,o,i,j] = sum_{c,p,q} x_pad[n,c,i sh+p,j sw+q] w[o,c,p,q]; dx and dW sum the same products with gy.
    """
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    x_pad = np.pad(np.abs(x), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    w_abs, gy_abs = np.abs(w), np.abs(gy)
    kh, kw = w.shape[2:]
    out_h, out_w = gy.shape[2:]
    y, gx_pad, gw = np.zeros(gy.shape), np.zeros(x_pad.shape), np.zeros(w.shape)
    for p in range(kh):
        for q in range(kw):
            window = (slice(None), slice(None), slice(p, p + sh * (out_h - 1) + 1, sh), slice(q, q + sw * (out_w - 1) + 1, sw))
            y += np.einsum("nchw,oc->nohw", x_pad[window], w_abs[:, :, p, q])
            gw[:, :, p, q] = np.einsum("nohw,nchw->oc", gy_abs, x_pad[window])
            gx_pad[window] += np.einsum("nohw,oc->nchw", gy_abs, w_abs[:, :, p, q])
    return y, gx_pad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]], gw


# (x shape, w shape, stride, padding): batch 1, odd H/W, non-square kernels, stride 2, padding, pairs,
# 1x1 (the fast path and its non-fast variants), kernel equal to the padded input, stride > kernel
CASES = [
    ((1, 2, 5, 7), (3, 2, 3, 2), 1, 0),
    ((2, 3, 7, 5), (2, 3, 3, 3), 2, 1),
    ((2, 2, 6, 5), (3, 2, 3, 2), (2, 1), (1, 0)),
    ((1, 2, 5, 4), (2, 2, 2, 3), (1, 2), (0, 1)),
    ((2, 3, 4, 5), (4, 3, 1, 1), 1, 0),
    ((2, 3, 5, 4), (2, 3, 1, 1), 2, 0),
    ((1, 2, 4, 3), (2, 2, 1, 1), 1, 1),
    ((2, 2, 3, 4), (3, 2, 5, 6), 1, 1),
    ((1, 1, 5, 5), (2, 1, 5, 5), 1, 0),
    ((1, 2, 7, 7), (2, 2, 2, 2), 3, 0),
    ((3, 1, 6, 6), (2, 1, 3, 3), 2, 2),
]
IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}" for c in CASES]


def out_size(h, k, s, p):
    return (h + 2 * p - k) // s + 1


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CASES, ids=IDS)
def test_conv2d_forward_matches_scipy_loops(xp_backend, rng, x_shape, w_shape, stride, padding):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    expected = conv_reference(x, w, b, stride, padding)
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    assert expected.shape == (x_shape[0], w_shape[0], out_size(x_shape[2], w_shape[2], sh, ph),
                              out_size(x_shape[3], w_shape[3], sw, pw))
    results = []
    for layout in layouts(x):
        y = F.conv2d(make_tensor(layout, xp_backend), minidl.tensor(xp_backend.asarray(w)),
                     minidl.tensor(xp_backend.asarray(b)), stride=stride, padding=padding)
        assert y.shape == expected.shape and y.dtype == np.float64
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)
        results.append(y.numpy())
    np.testing.assert_array_equal(results[0], results[1])   # layout never changes the numbers
    no_bias = F.conv2d(minidl.tensor(xp_backend.asarray(x)), minidl.tensor(xp_backend.asarray(w)),
                       stride=stride, padding=padding)
    np.testing.assert_allclose(no_bias.numpy(), conv_reference(x, w, None, stride, padding), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CASES, ids=IDS)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_conv2d_gradcheck(xp_backend, rng, x_shape, w_shape, stride, padding, layout):
    x = rng.standard_normal(x_shape)
    x = channels_last(x) if layout == "channels_last" else x
    xt = make_tensor(x, xp_backend, requires_grad=True)
    assert is_channels_last(xt.data) == (layout == "channels_last") or x_shape[1] == 1   # C=1: both layouts coincide
    wt = minidl.tensor(xp_backend.asarray(rng.standard_normal(w_shape)), requires_grad=True)
    bt = minidl.tensor(xp_backend.asarray(rng.standard_normal(w_shape[0])), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), [xt, wt, bt])
    assert minidl.gradcheck(lambda x, w: F.conv2d(x, w, None, stride, padding), [xt, wt])


@pytest.mark.parametrize("which", ["x", "w", "b"])
def test_conv2d_gradcheck_when_only_one_input_requires_grad(rng, which):
    x = minidl.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=which == "x")
    w = minidl.tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=which == "w")
    b = minidl.tensor(rng.standard_normal(3), requires_grad=which == "b")
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, 2, 1), [x, w, b])
    for t, name in ((x, "x"), (w, "w"), (b, "b")):
        assert (t.grad is not None) == (name == which)


def _spy_chunks(monkeypatch):
    sizes = []
    real = conv_module._image_chunks

    def spy(n, bytes_per_image, backend):
        for start, stop in real(n, bytes_per_image, backend):
            sizes.append(stop - start)
            yield start, stop

    monkeypatch.setattr(conv_module, "_image_chunks", spy)
    return sizes


@pytest.mark.parametrize("n_images, per_block", [(64, 13), (128, 13), (5, 2), (3, 1), (7, 7), (9, 100), (1, 1)])
def test_conv_blocks_cover_the_batch_in_equal_shares(n_images, per_block):
    """Blocks within one image of each other, a multiple of BLOCK_COUNT_MULTIPLE of them (one image a block
    when there are fewer images), each within the budget, even where one block would hold the batch (so
    that every core gets a share); on CuPy just the budget's blocks."""
    def blocks(backend):
        return list(conv_module._image_chunks(n_images, conv_module.COLUMN_BUFFER_BYTES[backend] // per_block,
                                              backend))
    for backend in ("numpy", "cupy"):
        found = blocks(backend)
        assert found[0][0] == 0 and found[-1][1] == n_images
        assert all(stop == start for (_, stop), (start, _) in zip(found, found[1:]))
        sizes = [stop - start for start, stop in found]
        assert max(sizes) <= per_block and max(sizes) - min(sizes) <= 1
        needed = -(-n_images // per_block)
        if backend == "cupy":
            assert len(found) == needed
        else:
            multiple = conv_module.BLOCK_COUNT_MULTIPLE
            assert len(found) == min(n_images, -(-needed // multiple) * multiple)


@pytest.mark.parametrize("budget", [2000, 1, None])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, True)])
def test_conv2d_in_chunks_gives_identical_results(monkeypatch, rng, budget, needs):
    x = rng.standard_normal((5, 2, 5, 4))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    gy = rng.standard_normal((5, 3, 3, 5))            # Ho = (5+2-3)//2+1, Wo = (4+2-2)//1+1

    def run():
        xt, wt, bt = (minidl.tensor(a, requires_grad=r) for a, r in zip((x, w, b), needs))
        y = F.conv2d(xt, wt, bt, stride=(2, 1), padding=1)
        y.backward(gy)
        return y.numpy(), xt.grad, wt.grad, bt.grad

    whole = run()
    per_image = 3 * 5 * 3 * 2 * 2 * 8                      # Ho*Wo*kh*kw*C*itemsize bytes of columns per image
    if budget is None:
        budget = 2 * per_image                             # at most 2 images a chunk: 3 chunks, rounded up to 4
    monkeypatch.setitem(conv_module.COLUMN_BUFFER_BYTES, "numpy", budget)
    sizes = _spy_chunks(monkeypatch)
    chunked = run()
    expected_per_chunk = max(1, budget // per_image)
    assert sizes and all(s <= expected_per_chunk for s in sizes)
    assert len(sizes) >= 5 // expected_per_chunk and len(sizes) > 1
    # y, dx and dW come from matrix products of other shapes chunk by chunk (and dW from chunk sums):
    # a BLAS kernel may block, and so sum, them differently (OpenBLAS's Nehalem kernel does, in the last
    # bits), so each run is within the float64 bound gamma_n sum|terms| of the exact value (n: the terms
    # of each sum, + 1 for the bias), and the two are within twice it
    o, c, kh, kw = w.shape
    y_terms, gx_terms, gw_terms = conv_term_magnitudes(x, w, gy, (2, 1), 1)
    # dB too: on NumPy it is the last column of dW's product (the bias's column of ones, conv.py)
    pixels = gy.shape[0] * gy.shape[2] * gy.shape[3]
    bounds = {"y": 2 * gamma(c * kh * kw + 1, np.float64) * (y_terms + np.abs(b)[:, None, None]),
              "x": 2 * gamma(o * kh * kw, np.float64) * gx_terms,
              "w": 2 * gamma(pixels, np.float64) * gw_terms,
              "b": 2 * gamma(pixels, np.float64) * np.abs(gy).sum(axis=(0, 2, 3))}
    assert_within(chunked[0], whole[0], bounds["y"], "y")
    for name, got, ref in zip(("x", "w", "b"), chunked[1:], whole[1:]):
        assert (got is None) == (ref is None)
        if ref is not None:
            assert_within(got, ref, bounds[name], f"d{name}")
    # and against the reference, to be sure both are right
    np.testing.assert_allclose(chunked[0], conv_reference(x, w, b, (2, 1), 1), rtol=1e-10, atol=1e-10)


def test_conv2d_gradcheck_in_several_chunks(monkeypatch, rng):
    monkeypatch.setitem(conv_module.COLUMN_BUFFER_BYTES, "numpy", 2000)
    sizes = _spy_chunks(monkeypatch)
    x = make_tensor(channels_last(rng.standard_normal((3, 2, 5, 5))), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(2), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, 1, 1), [x, w, b])
    assert max(sizes) == 1


def test_pointwise_conv_is_a_per_pixel_fully_connected_layer(rng):
    n, c, h, w_, o = 2, 5, 3, 4, 6
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((o, c, 1, 1))
    b = rng.standard_normal(o)
    gy = rng.standard_normal((n, o, h, w_))
    for layout in layouts(x):
        xt, wt, bt = (make_tensor(a, requires_grad=True) for a in (layout, w, b))
        y = F.conv2d(xt, wt, bt)
        y.backward(gy)
        xl, wl, bl = (minidl.tensor(a, requires_grad=True) for a in (x, w.reshape(o, c), b))
        ref = F.linear(xl.transpose(0, 2, 3, 1).reshape(-1, c), wl, bl).reshape(n, h, w_, o).transpose(0, 3, 1, 2)
        ref.backward(gy)
        np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(y.numpy(), np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]) + b[None, :, None, None],
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(xt.grad, xl.grad, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(wt.grad, wl.grad.reshape(o, c, 1, 1), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bt.grad, bl.grad, rtol=1e-12, atol=1e-12)


def test_conv2d_float32_matches_float64_reference(rng):
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = F.conv2d(minidl.tensor(x), minidl.tensor(w), padding=1)
    assert y.dtype == np.float32
    # float32 sums of K = 3 * 3 * 3 products, any order: gamma_K times the sum of their magnitudes
    y_terms = conv_term_magnitudes(x, w, np.zeros(y.shape), 1, 1)[0]
    assert_within(y.numpy(), conv_reference(x.astype(np.float64), w.astype(np.float64), None, 1, 1),
                  gamma(27) * y_terms + 1e-13, "float32 conv2d")   # + 1e-13: the float64 reference's rounding


def test_conv2d_input_gradient_has_the_input_shape_and_no_graph_without_grad(rng):
    x = minidl.tensor(rng.standard_normal((1, 2, 5, 5)))
    w = minidl.tensor(rng.standard_normal((3, 2, 3, 3)))
    y = F.conv2d(x, w, stride=2)
    assert y.creator is None and not y.requires_grad


TORCH_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 0)),
    ((1, 2, 5, 5), (3, 2, 5, 5), 1, 2),
    ((3, 4, 4, 5), (2, 4, 1, 1), 1, 0),
    ((2, 2, 9, 7), (3, 2, 5, 3), 2, (2, 1)),
    ((2, 3, 6, 6), (2, 3, 4, 4), 3, 1),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", TORCH_CASES)
def test_conv2d_forward_and_backward_match_pytorch(rng, x_shape, w_shape, stride, padding):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    for layout in layouts(x):
        mx, mw, mb = (make_tensor(a, requires_grad=True) for a in (layout, w, b))
        my = F.conv2d(mx, mw, mb, stride=stride, padding=padding)
        my.backward(gy)
        np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(mw.grad, tw.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(mb.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_conv2d_output_feeds_the_next_conv(rng):
    """A conv's (channels-last) output into another conv equals the composition of references."""
    x = rng.standard_normal((2, 2, 6, 5))
    w1 = rng.standard_normal((3, 2, 3, 3))
    w2 = rng.standard_normal((2, 3, 2, 3))
    y = F.conv2d(F.conv2d(minidl.tensor(x), minidl.tensor(w1), padding=1), minidl.tensor(w2), stride=2)
    ref = conv_reference(conv_reference(x, w1, None, 1, 1), w2, None, 2, 0)
    np.testing.assert_allclose(host(y.data), ref, rtol=1e-10, atol=1e-10)


def test_conv2d_and_pools_on_strided_views(rng):
    """Inputs that are neither NCHW- nor channels-last-contiguous (slices, flips) work and differentiate."""
    x = minidl.tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((2, 3, 2, 3)), requires_grad=True)
    view = x.data[:, ::-1, 1::2, :]
    assert not view.flags.c_contiguous and not is_channels_last(view)
    np.testing.assert_allclose(F.conv2d(x[:, ::-1, 1::2, :], w, padding=1).numpy(),
                               conv_reference(view, w.data, None, 1, 1), rtol=1e-10, atol=1e-10)
    assert minidl.gradcheck(lambda x, w: F.conv2d(x[:, ::-1, 1::2, :], w, stride=(1, 2), padding=(1, 0)), [x, w])
    assert minidl.gradcheck(lambda x: F.max_pool2d(x[:, 1:, ::2, ::-1], 3, 2, 1), [x])
    assert minidl.gradcheck(lambda x: F.avg_pool2d(x.transpose(0, 1, 3, 2), (2, 3), 1, 1), [x])


def _random_conv_configs(count, seed):
    """Random small configurations (fixed seed): every combination of odd/even sizes, strides, paddings, kernels."""
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        n, c, o = (int(v) for v in r.integers(1, 4, 3))
        h, w = (int(v) for v in r.integers(1, 9, 2))
        kh, kw = (int(v) for v in r.integers(1, 6, 2))
        sh, sw = (int(v) for v in r.integers(1, 4, 2))
        ph, pw = (int(v) for v in r.integers(0, 3, 2))
        if kh <= h + 2 * ph and kw <= w + 2 * pw:
            configs.append(((n, c, h, w), (o, c, kh, kw), (sh, sw), (ph, pw)))
    return configs


@pytest.mark.parametrize("seed", range(4))
def test_conv2d_random_configurations_match_scipy_and_pytorch(rng, seed):
    """30 random configurations per seed, both layouts, forward vs SciPy and forward/backward vs PyTorch."""
    torch = pytest.importorskip("torch")
    for x_shape, w_shape, stride, padding in _random_conv_configs(30, seed):
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
        gy = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(gy))
        expected = conv_reference(x, w, b, stride, padding)
        np.testing.assert_allclose(ty.detach().numpy(), expected, rtol=1e-10, atol=1e-10)   # the two references agree
        what = f"x {x_shape} w {w_shape} stride {stride} padding {padding}"
        for layout in layouts(x):
            mx, mw, mb = (make_tensor(a, requires_grad=True) for a in (layout, w, b))
            my = F.conv2d(mx, mw, mb, stride=stride, padding=padding)
            my.backward(gy)
            np.testing.assert_allclose(my.numpy(), expected, rtol=1e-10, atol=1e-10, err_msg=what)
            np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=what)
            np.testing.assert_allclose(mw.grad, tw.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=what)
            np.testing.assert_allclose(mb.grad, tb.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=what)
