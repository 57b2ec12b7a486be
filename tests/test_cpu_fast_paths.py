"""The CPU fast paths of issue 14: cache blocking, winners by equality, no bookkeeping without a graph.

Each fast path must give what the plain computation gives: exactly where the arithmetic is the same
(blocking only changes how the work is cut), and gradient checks in float64 where it runs through
several blocks. ``tiny_blocks`` shrinks the cache budget so that small test arrays go through many
blocks of uneven size, the way NIN's activations do at full size.
"""
import os
import threading
import time

import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl.kernels import blocking, threads, tiles
from minidl.functional import conv as conv_module
from minidl.kernels.im2col import col2im, im2col, window

from conftest import channels_last, layouts, make_tensor
from float_bounds import assert_within, gamma
from test_pooling import naive_pool


def test_batch_blocks_cover_the_range_once_in_order():
    for n, item, budget in [(10, 3, 7), (1, 100, 10), (7, 1, 100), (128, 393216, 1 << 20)]:
        blocks = blocking.batch_blocks(np, n, item, budget)
        covered = [i for b in blocks for i in range(b.start, b.stop)]
        assert covered == list(range(n))
        assert all(b.stop - b.start >= 1 for b in blocks)
        assert all((b.stop - b.start) * item <= max(budget, item) for b in blocks)


def test_batch_blocks_hold_a_multiple_of_the_tile_rows_but_the_last():
    for n, item, budget, multiple in [(100, 3, 30, 4), (100, 3, 5, 4), (7, 1, 100, 3), (9, 2, 8, 1), (5, 1, 1, 8)]:
        blocks = blocking.batch_blocks(np, n, item, budget, multiple=multiple)
        covered = [i for b in blocks for i in range(b.start, b.stop)]
        assert covered == list(range(n))
        assert all((b.stop - b.start) % multiple == 0 for b in blocks[:-1])
        assert all(b.stop - b.start >= 1 for b in blocks)
    assert [b.stop - b.start for b in blocking.batch_blocks(np, 100, 3, 30, multiple=4)] == [8] * 12 + [4]
    assert [b.stop - b.start for b in blocking.batch_blocks(np, 10, 3, 5, multiple=4)] == [4, 4, 2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tile_values,channels,rows", [(8, 3, 11), (8, 5, 7), (64, 7, 40), (12288, 192, 70),
                                                       (8, 1, 13), (12288, 1, 5000)])
def test_tile_applies_the_vector_to_every_row_as_broadcasting_does(monkeypatch, rng, dtype, tile_values,
                                                                   channels, rows):
    """Whole tiles and a rest, in place or not, four ufuncs, a strided block: bit for bit the broadcast."""
    from minidl.kernels import tiles
    monkeypatch.setattr(tiles, "TILE_VALUES", tile_values)
    vector = rng.standard_normal(channels).astype(dtype)
    tile = tiles.Tile(vector)
    assert tile.rows == max(1, tile_values // channels) and tile.row.shape == (1, tile.rows * channels)
    a = rng.standard_normal((rows, channels)).astype(dtype)
    a[::3] = np.nan                                                 # NaNs go through as in NumPy
    for ufunc in (np.subtract, np.multiply, np.add, np.maximum):
        expected = ufunc(a, vector)
        out = np.empty_like(a)
        tile.apply(ufunc, a, out)
        np.testing.assert_array_equal(out, expected)
        inplace = a.copy()
        tile.apply(ufunc, inplace, inplace)
        np.testing.assert_array_equal(inplace, expected)
        strided = np.empty((2 * rows, channels), dtype)[::2]      # not contiguous: the broadcast itself
        tile.apply(ufunc, a, strided)
        np.testing.assert_array_equal(strided, expected)
    np.testing.assert_array_equal(tile.row, np.tile(vector, tile.rows)[None, :])   # the tile is never written


def test_tile_says_which_block_it_cannot_take(rng):
    from minidl.kernels.tiles import Tile
    with pytest.raises(ValueError, match=r"Tile.apply: a block with 5 values in its last axis expected, got shape \(4, 3\)"):
        Tile(np.ones(5)).apply(np.add, np.ones((4, 3)), np.empty((4, 3)))


def test_batch_blocks_default_budget_is_read_at_call_time(tiny_blocks):
    assert len(blocking.batch_blocks(np, 8, 350)) == 4          # 700 bytes: two items of 350 per block


def _max_pool_both(x, k, s, p, gy):
    t = make_tensor(x, requires_grad=True)
    y = F.max_pool2d(t, k, s, p)
    y.backward(gy)
    return y.numpy(), t.grad


@pytest.mark.parametrize("shape,k,s,p", [((5, 3, 7, 6), 3, 2, 1), ((4, 2, 6, 5), (3, 2), (1, 2), (1, 0)),
                                         ((3, 2, 9, 9), 2, 3, 1)])
def test_max_pool_in_blocks_matches_one_block_exactly_and_the_naive_loops(monkeypatch, rng, shape, k, s, p):
    x = rng.standard_normal(shape)
    x[x > 1.0] = 1.0                                                # many ties: the first max must win in every block
    expected, backward = naive_pool(x, k, s, p, "max")
    gy = rng.standard_normal(expected.shape)
    results = []
    for budget in (1, 700, 1 << 30):                                # one image per block, a few, all at once
        monkeypatch.setattr(blocking, "CACHE_BLOCK_BYTES", budget)
        for layout in layouts(x):
            results.append(_max_pool_both(layout, k, s, p, gy))
    for y, gx in results:
        np.testing.assert_array_equal(y, expected)
        np.testing.assert_array_equal(gx, results[0][1])
    np.testing.assert_allclose(results[0][1], backward(gy), rtol=1e-12, atol=1e-12)


#: pooling windows (kh, kw, sh, sw, ph, pw) and input sides (h, w): NIN's, stride 1, stride past the
#: kernel (cells no window reads), rectangular and lopsided ones, a window as large as the input
POOL_WINDOWS = [((3, 3, 2, 2, 1, 1), (9, 8)), ((3, 3, 1, 1, 1, 1), (5, 6)), ((2, 2, 3, 3, 1, 1), (10, 7)),
                ((3, 2, 1, 2, 1, 0), (6, 9)), ((1, 1, 2, 2, 0, 0), (5, 5)), ((4, 3, 3, 2, 2, 1), (11, 9)),
                ((5, 5, 5, 5, 0, 0), (5, 5)), ((2, 4, 2, 3, 0, 2), (4, 13))]


def test_stride_class_plan_sends_every_offset_to_its_input_cell():
    """Offset i of output o reads padded class cell o + shift[i] of class residue[i]: the input cell
    o*s + i - p itself, or a border cell where that lies in the padding."""
    from minidl.kernels import pooling
    from minidl.kernels.im2col import conv_output_size
    for k, s, p, size in [(3, 2, 1, 9), (3, 2, 1, 8), (3, 1, 1, 5), (2, 3, 1, 10), (2, 3, 0, 4), (1, 2, 0, 5),
                          (4, 3, 2, 11), (5, 5, 0, 5), (4, 3, 2, 4), (7, 2, 3, 7)]:
        out_size = conv_output_size(size, k, s, p)
        plan = pooling.axis_plan(k, s, p, size, out_size)
        for o in range(out_size):
            for i in range(k):
                r, padded_cell = plan.residue[i], o + plan.shift[i]
                assert 0 <= padded_cell < plan.padded
                t, cell = padded_cell - plan.lead, o * s + i - p
                if 0 <= cell < size:
                    assert t * s + r == cell and 0 <= t < plan.count[r]
                else:                                              # padding: a border cell of the class
                    assert t < 0 or t >= plan.count[r]


def _pool_data(rng, shape, dtype):
    """Values from a small set, many of them 0 as after a ReLU: ties in most windows."""
    return np.maximum(rng.integers(-3, 4, shape), 0).astype(dtype) * dtype(0.5) + \
        (rng.random(shape) < 0.1) * rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window,sides", POOL_WINDOWS, ids=[str(w) for w, _ in POOL_WINDOWS])
def test_max_pool_on_stride_classes_matches_the_plain_path_exactly(rng, window, sides, dtype):
    """The fast kernels against the plain ones, offset by offset: the same maxima and winners, bit for bit,
    ties included; the same gradient exactly (gy holds small integers, so any order of adding is exact)."""
    from minidl.kernels import pooling
    from minidl.kernels.im2col import conv_output_size
    kh, kw, sh, sw, ph, pw = window
    n, c = 3, 5
    x = _pool_data(rng, (n, *sides, c), dtype)
    out_shape = (n, conv_output_size(sides[0], kh, sh, ph), conv_output_size(sides[1], kw, sw, pw), c)
    results = []
    for block, grad_block in [(pooling._max_pool_block, pooling._max_pool_grad_block),
                              (pooling._max_pool_block_by_offsets, pooling._max_pool_grad_block_by_offsets)]:
        out, argmax = np.empty(out_shape, dtype), np.empty(out_shape, np.int8)
        block(x, out, argmax, window)
        maxima_only = np.empty(out_shape, dtype)
        block(x, maxima_only, None, window)
        gy = rng.integers(-8, 9, out_shape).astype(dtype) if not results else results[0][3]
        gx = np.full(x.shape, np.nan, dtype)                       # every cell must be written
        grad_block(gy, argmax, gx, window)
        results.append((out, argmax, maxima_only, gy, gx))
    (out, argmax, maxima_only, _, gx), (plain_out, plain_argmax, _, _, plain_gx) = results
    np.testing.assert_array_equal(out, plain_out)
    np.testing.assert_array_equal(maxima_only, plain_out)
    np.testing.assert_array_equal(argmax, plain_argmax)
    np.testing.assert_array_equal(gx, plain_gx)


@pytest.mark.parametrize("window,sides", POOL_WINDOWS[:4], ids=[str(w) for w, _ in POOL_WINDOWS[:4]])
def test_max_pool_on_stride_classes_hands_nan_and_minus_inf_windows_to_the_plain_path(rng, window, sides):
    from minidl.kernels import pooling
    from minidl.kernels.im2col import conv_output_size
    kh, kw, sh, sw, ph, pw = window
    x = rng.standard_normal((3, *sides, 3))
    x[0, 1, :, 1] = -np.inf                                       # a row of -inf in windows of finite maxima
    x[1, :2, :2, 0] = -np.inf                                     # a corner of -inf: a window of -inf
    x[2, 2, 1, 2] = x[2, 1, 2, 2] = np.nan                        # two NaNs, maybe in one window
    out_shape = (1, conv_output_size(sides[0], kh, sh, ph), conv_output_size(sides[1], kw, sw, pw), 3)
    for image in x:                                                # one block each: the first stays on the fast path
        fast = np.empty(out_shape), np.empty(out_shape, np.int8)
        plain = np.empty(out_shape), np.empty(out_shape, np.int8)
        pooling._max_pool_block(image[None], *fast, window)
        pooling._max_pool_block_by_offsets(image[None], *plain, window)
        np.testing.assert_array_equal(fast[0], plain[0])
        np.testing.assert_array_equal(fast[1], plain[1])


def test_max_pool_in_blocks_gradcheck(tiny_blocks, rng):
    x = make_tensor(channels_last(rng.standard_normal((5, 3, 7, 6))), requires_grad=True)
    assert minidl.gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1), [x])


def test_max_pool_nan_and_minus_inf_windows_in_blocks(tiny_blocks, rng):
    x = rng.standard_normal((4, 2, 7, 6))
    x[1, 0, :2, :2] = -np.inf                       # a corner window of -inf in the second block
    x[3, 1, 0, 1] = x[3, 1, 1, 0] = np.nan          # two NaNs in the corner window of the last image
    expected, backward = naive_pool(x, 3, 2, 1, "max")
    gy = rng.standard_normal(expected.shape)
    y, gx = _max_pool_both(channels_last(x), 3, 2, 1, gy)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_allclose(gx, backward(gy), rtol=1e-12, atol=1e-12)


def test_max_pool_without_a_graph_gives_the_same_values_and_keeps_no_winners(rng):
    x = make_tensor(channels_last(rng.standard_normal((3, 4, 9, 8)).astype(np.float32)), requires_grad=True)
    with_graph = F.max_pool2d(x, 3, 2, 1)
    with minidl.no_grad():
        without = F.max_pool2d(x, 3, 2, 1)
    np.testing.assert_array_equal(without.numpy(), with_graph.numpy())
    assert without.creator is None and with_graph.creator.argmax is not None
    fn = F.pooling.MaxPool2d((3, 3), (2, 2), (1, 1))
    with minidl.no_grad():
        fn(x)
    assert fn.requires_grad is False and fn.argmax is None


def test_function_requires_grad_is_known_before_forward():
    seen = []

    class Probe(minidl.Function):
        def forward(self, x):
            seen.append(self.requires_grad)
            return x * 2

        def backward(self, gy):
            return gy * 2

    a = minidl.tensor(np.ones(3), requires_grad=True)
    Probe()(a)
    with minidl.no_grad():
        Probe()(a)
    Probe()(minidl.tensor(np.ones(3)))
    assert seen == [True, False, False]


def _col2im_plain(cols, input_shape, sh, sw, ph, pw):
    """The textbook adjoint of im2col: add every offset's block into one padded array."""
    n, h, w, c = input_shape
    _, out_h, out_w, kh, kw, _ = cols.shape
    padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c))
    for i in range(kh):
        for j in range(kw):
            window(padded, i, j, out_h, out_w, sh, sw)[...] += cols[:, :, :, i, j, :]
    return padded[:, ph:ph + h, pw:pw + w, :]


@pytest.mark.parametrize("input_shape,k,s,p", [((5, 6, 7, 3), (3, 2), (1, 2), (1, 1)), ((3, 5, 5, 2), (5, 5), (1, 1), (2, 2))])
def test_col2im_in_blocks_and_into_out_matches_the_plain_sum_exactly(tiny_blocks, rng, input_shape, k, s, p):
    n, h, w, c = input_shape
    out_h, out_w = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    cols = rng.standard_normal((n, out_h, out_w, *k, c))
    expected = _col2im_plain(cols, input_shape, *s, *p)
    np.testing.assert_array_equal(col2im(cols, input_shape, *s, *p), expected)   # same additions, same order
    target = np.full((n + 2, h, w, c), np.nan)
    returned = col2im(cols, input_shape, *s, *p, out=target[1:-1])
    np.testing.assert_array_equal(target[1:-1], expected)
    assert np.isnan(target[0]).all() and np.isnan(target[-1]).all() and returned.base is target


def test_conv2d_gradcheck_with_col2im_in_blocks(tiny_blocks, rng):
    x = make_tensor(channels_last(rng.standard_normal((4, 3, 6, 5))), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((4, 3, 3, 2)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(4), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1), [x, w, b])


def _pool_relu_conv_results(rng_seed):
    """Forward values and every gradient of conv -> batch norm -> relu -> max pool -> 1x1 conv, in small blocks."""
    rng = np.random.default_rng(rng_seed)
    x = make_tensor(channels_last(rng.standard_normal((7, 3, 9, 8))), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((5, 3, 3, 3)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(5), requires_grad=True)
    gamma = minidl.tensor(rng.standard_normal(5), requires_grad=True)
    beta = minidl.tensor(rng.standard_normal(5), requires_grad=True)
    w2 = minidl.tensor(rng.standard_normal((4, 5, 1, 1)), requires_grad=True)
    b2 = minidl.tensor(rng.standard_normal(4), requires_grad=True)
    rm, rv = np.zeros(5), np.ones(5)
    h = F.batch_norm2d(F.conv2d(x, w, b, padding=1), rm, rv, gamma, beta, training=True)
    y = F.conv2d(F.max_pool2d(F.relu(h), 3, 2, 1), w2, b2)
    y.backward(rng.standard_normal(y.shape))
    return [y.numpy(), rm, rv] + [t.grad for t in (x, w, b, gamma, beta, w2, b2)]


@pytest.mark.parametrize("n_threads", [2, 3])
def test_threads_give_exactly_the_one_thread_results(tiny_blocks, restore_threads, monkeypatch, n_threads):
    monkeypatch.setitem(conv_module.COLUMN_BUFFER_BYTES, "numpy", 3000)     # convolutions in many blocks too
    threads.set_num_threads(1)
    expected = _pool_relu_conv_results(0)
    threads.set_num_threads(n_threads)
    for got, want in zip(_pool_relu_conv_results(0), expected):
        np.testing.assert_array_equal(got, want)


def test_run_blocks_visits_every_block_once_and_raises_a_workers_error(restore_threads):
    threads.set_num_threads(2)
    seen = []
    threads.run_blocks(seen.append, [slice(i, i + 1) for i in range(9)])
    assert sorted(b.start for b in seen) == list(range(9))

    taken = []

    def fail_on_the_worker(block):
        taken.append(block.start)
        if threading.current_thread() is threading.main_thread():
            time.sleep(0.05)                        # the caller is slow: the worker surely takes a block
            return
        raise ValueError(f"block {block.start}")
    with pytest.raises(ValueError, match="block"):
        threads.run_blocks(fail_on_the_worker, [slice(i, i + 1) for i in range(9)])
    assert len(taken) < 9                           # after the error the queue handed out no more blocks


def test_a_late_thread_takes_fewer_blocks(restore_threads):
    """The threads share one queue of blocks: while the worker is held up on its first block, the
    caller takes the rest (cut in advance into two runs, each thread would get 4 or 5 of the 9)."""
    threads.set_num_threads(2)
    by_thread = {}

    def record(block):
        by_thread.setdefault(threading.current_thread() is threading.main_thread(), []).append(block.start)
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)
    threads.run_blocks(record, [slice(i, i + 1) for i in range(9)])
    assert sorted(by_thread[True] + by_thread.get(False, [])) == list(range(9))
    assert len(by_thread[True]) >= 7


def test_relu_in_blocks_on_other_layouts_and_shapes(tiny_blocks, restore_threads, rng):
    threads.set_num_threads(2)
    for a in [rng.standard_normal((40, 30)), rng.standard_normal((6, 5, 4, 3)).transpose(2, 0, 3, 1),
              np.asarray(-1.5), rng.standard_normal(17)]:
        t = minidl.tensor(a, requires_grad=True) if a.ndim != 4 else make_tensor(a, requires_grad=True)
        y = F.relu(t)
        np.testing.assert_array_equal(y.numpy(), np.maximum(a, 0))
        gy = rng.standard_normal(a.shape)
        y.backward(gy)
        np.testing.assert_array_equal(t.grad, gy * (a > 0))
    x = make_tensor(channels_last(rng.standard_normal((5, 2, 3, 4))), requires_grad=True)
    assert minidl.gradcheck(F.relu, [x])


def test_set_num_threads_and_the_environment_variable_reject_bad_values(restore_threads, monkeypatch):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: n must be an integer >= 1"):
            threads.set_num_threads(bad)
    monkeypatch.setattr(threads, "_num_threads", None)
    for bad in ("two", "0", "-2"):
        monkeypatch.setenv("MINIDL_NUM_THREADS", bad)
        with pytest.raises(ValueError, match=f"MINIDL_NUM_THREADS must be a positive integer, got '{bad}'"):
            threads.get_num_threads()
    monkeypatch.setenv("MINIDL_NUM_THREADS", "3")
    assert threads.get_num_threads() == 3


def _batch_norm_by_hand(x, gamma, beta, eps):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    return gamma[None, :, None, None] * (x - mean) / np.sqrt(var + eps) + beta[None, :, None, None]


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_in_blocks_gradcheck(tiny_blocks, rng, training, activation):
    x = make_tensor(channels_last(rng.standard_normal((5, 3, 5, 5))), requires_grad=True)
    g = minidl.tensor(rng.standard_normal(3), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(3), requires_grad=True)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    blocks = blocking.batch_blocks(np, 5 * 5 * 5, 3 * 8, multiple=tiles.tile_rows(3))
    assert len(blocks) > 4 and (blocks[-1].stop - blocks[-1].start) % tiles.tile_rows(3)   # a rest in the last
    assert minidl.gradcheck(lambda x, g, b: F.batch_norm2d(x, rm.copy(), rv.copy(), g, b, training=training,
                                                           activation=activation), [x, g, b])


def test_batch_norm_in_blocks_matches_the_formula_and_updates_running_statistics(tiny_blocks, rng):
    x = 3.0 + 2.0 * rng.standard_normal((5, 4, 5, 7))                # 175 rows: the last block ends in a rest
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = np.zeros(4), np.ones(4)
    y = F.batch_norm2d(make_tensor(channels_last(x)), rm, rv, minidl.tensor(gamma), minidl.tensor(beta),
                       training=True, momentum=0.1, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), _batch_norm_by_hand(x, gamma, beta, 1e-5), rtol=1e-12, atol=1e-12)
    m = 5 * 5 * 7
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-12)


def test_batch_norm_float32_in_blocks_stays_within_float32_rounding(tiny_blocks, rng):
    """Mean 3, std 2: the sums of the blocks are added in float64, so the error is a few float32 roundings."""
    x = 3.0 + 2.0 * rng.standard_normal((6, 5, 7, 5))
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    y = F.batch_norm2d(make_tensor(channels_last(x.astype(np.float32))), None, None,
                       minidl.tensor(gamma.astype(np.float32)), minidl.tensor(beta.astype(np.float32)))
    expected = _batch_norm_by_hand(x.astype(np.float32).astype(np.float64), gamma.astype(np.float32),
                                   beta.astype(np.float32), 1e-5)
    # each output is x * scale + shift, scale = gamma / std, shift = beta - mean * scale: with |x| <= 3 + 4 * 2
    # = 5.5 std here and |mean| = 1.5 std, a handful of float32 roundings of values up to 7 |gamma| + |beta|
    bound = 8 * np.finfo(np.float32).eps * (7 * np.abs(gamma).max() + np.abs(beta).max())
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=bound)


def test_batch_norm_float32_statistics_of_a_large_mean_lose_nothing_to_cancellation(tiny_blocks, rng):
    """Mean 1000, std 1 in float32: E[x^2] - E[x]^2 taken as it is would lose about 1e6 float32 roundings
    (with the shift set to 0, the variance came out 13% off); about the shift k (a sample's mean) the deviations x - k are exact (Sterbenz)
    and their squares are summed in blocks of at most 58 rows, then in float64."""
    x = (1000.0 + rng.standard_normal((6, 3, 9, 7))).astype(np.float32)
    rm, rv = np.zeros(3), np.zeros(3)
    F.batch_norm2d(make_tensor(channels_last(x)), rm, rv, training=True, momentum=1.0)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(rm, x64.mean(axis=(0, 2, 3)), rtol=4 * np.finfo(np.float32).eps)
    np.testing.assert_allclose(rv, x64.var(axis=(0, 2, 3), ddof=1), rtol=64 * np.finfo(np.float32).eps)


def test_pointwise_conv_in_blocks_gradcheck(tiny_blocks, rng):
    x = make_tensor(channels_last(rng.standard_normal((3, 4, 5, 3))), requires_grad=True)
    w = minidl.tensor(rng.standard_normal((6, 4, 1, 1)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(6), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b), [x, w, b])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork is not available on this platform")
def test_a_forked_child_runs_blocks_with_a_pool_of_its_own(restore_threads):
    import os
    threads.set_num_threads(2)
    threads.run_blocks(lambda block: None, [slice(0, 1), slice(1, 2)])      # the parent's pool exists
    pid = os.fork()
    if pid == 0:                                                             # the child: must not hang
        try:
            seen = []
            threads.run_blocks(seen.append, [slice(i, i + 1) for i in range(4)])
            os._exit(0 if len(seen) == 4 else 1)
        except BaseException:
            os._exit(2)
    import signal
    import time
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not done:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done, "the forked child hung in run_blocks (it waited on the parent's worker threads)"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_blocks_run_with_a_single_threaded_blas_and_restore_it(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not controller.lib_controllers:
        pytest.skip("threadpoolctl finds no BLAS library in this NumPy")
    threads.set_num_threads(2)
    before = [lib.num_threads for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers]
    seen = []

    def record(block):
        info = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
        seen.append([lib.num_threads for lib in info])
    threads.run_blocks(record, [slice(i, i + 1) for i in range(4)])
    assert len(seen) == 4 and all(counts == [1] * len(before) for counts in seen)
    after = [lib.num_threads for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers]
    assert after == before


def test_run_blocks_inside_a_block_runs_on_that_thread_without_deadlock(restore_threads):
    import threading
    threads.set_num_threads(2)
    inner = {}

    def outer(block):
        def record(b):
            inner.setdefault(block.start, []).append((b.start, threading.get_ident()))
        threads.run_blocks(record, [slice(i, i + 1) for i in range(3)])
        assert {ident for _, ident in inner[block.start]} == {threading.get_ident()}
    threads.run_blocks(outer, [slice(0, 1), slice(1, 2)])
    assert sorted(inner) == [0, 1] and all([s for s, _ in v] == [0, 1, 2] for v in inner.values())


def test_weight_gradient_groups_cover_the_blocks_once_in_order():
    for n_items, n_groups in [(1, 12), (5, 12), (12, 12), (13, 12), (128, 12), (7, 3)]:
        items = list(range(n_items))
        groups = conv_module._groups(items, n_groups)
        assert len(groups) == min(n_items, n_groups) and all(groups)
        assert [i for g in groups for i in g] == items
        assert max(map(len, groups)) - min(map(len, groups)) <= 1


@pytest.mark.parametrize("pointwise", [False, True])
def test_conv_in_blocks_on_threads_gradcheck_and_scratch_reuse(monkeypatch, restore_threads, rng, pointwise):
    """Many blocks on 2 threads (scratch buffers reused between blocks and between calls of other shapes)."""
    threads.set_num_threads(2)
    monkeypatch.setitem(conv_module.COLUMN_BUFFER_BYTES, "numpy", 1500)
    k, p = (1, 0) if pointwise else (3, 1)
    for shape in [(6, 3, 5, 4), (5, 3, 4, 6)]:
        x = make_tensor(channels_last(rng.standard_normal(shape)), requires_grad=True)
        w = minidl.tensor(rng.standard_normal((4, 3, k, k)), requires_grad=True)
        b = minidl.tensor(rng.standard_normal(4), requires_grad=True)
        assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=p), [x, w, b])


@pytest.mark.parametrize("size", [8, 12288 * 2 + 7])
def test_relu_kernels_give_numpys_values_and_leave_the_zeros_untouched(rng, size):
    """relu_into compares with a tile of zeros instead of the scalar 0: the same values, NaN, -0.0 and
    infinities included, in place or not, whole tiles and a rest, strided arrays; the shared zeros stay
    zeros; relu_grad_into masks where y > 0."""
    from minidl.kernels import relu as relu_kernels
    from minidl.kernels.relu import relu_grad_into, relu_into
    for dtype in (np.float32, np.float64):
        special = np.array([-2.0, -0.0, 0.0, 3.5, np.nan, -np.inf, np.inf, 1e-40], dtype=dtype)
        x = np.concatenate([special, rng.standard_normal(size - 8).astype(dtype)]).reshape(-1, 1) if size > 8 \
            else special.reshape(2, 4)
        out = np.empty_like(x)
        relu_into(x, out=out)
        np.testing.assert_array_equal(out, np.maximum(x, 0))
        assert np.isnan(out.reshape(-1)[4])
        inplace = x.copy()
        relu_into(inplace, out=inplace)
        np.testing.assert_array_equal(inplace, out)
        strided = np.empty((2,) + x.shape, dtype)[:, ::-1][0]
        relu_into(x[::-1], out=strided)
        np.testing.assert_array_equal(strided, np.maximum(x[::-1], 0))
        assert not relu_kernels._zero_tiles[np.dtype(dtype)].row.any()
        x = x.reshape(2, 4) if size == 8 else x[:8].reshape(2, 4)
        out = np.maximum(x, 0)
        gy = np.arange(8, dtype=dtype).reshape(2, 4) + 1
        grad = np.empty_like(gy)
        relu_grad_into(gy, out, out=grad)
        np.testing.assert_array_equal(grad, gy * (out > 0))


@pytest.mark.parametrize("shape", [(128, 8, 8, 10), (3, 5, 7, 4), (2, 1, 1, 3)])
def test_global_avg_pool_kernels_against_numpys_mean_and_broadcast(rng, shape):
    """GAP's NumPy path (a product with a row of ones, then / H*W) within the float32 bound of the sum
    of H*W terms from the float64 mean; its backward (np.repeat) exactly the broadcast of gy / (H*W)."""
    from float_bounds import assert_within, gamma
    from minidl.kernels.pooling import global_avg_pool_backward, global_avg_pool_forward
    n, h, w, c = shape
    x = rng.standard_normal(shape).astype(np.float32)
    y = global_avg_pool_forward(x)
    assert y.shape == (n, c) and y.dtype == np.float32
    exact = x.astype(np.float64).mean(axis=(1, 2))
    bound = (gamma(h * w) * np.abs(x.astype(np.float64)).sum(axis=(1, 2)) + np.abs(exact)) / (h * w) \
        + np.abs(exact) * 2 ** -24                                     # the sum's, then one rounding of the division
    assert_within(y, exact, bound, "GAP forward")
    np.testing.assert_array_equal(global_avg_pool_forward(x.astype(np.float64))[0],
                                  np.ones(h * w) @ x.astype(np.float64)[0].reshape(h * w, c) / (h * w))
    gy = rng.standard_normal((n, c)).astype(np.float32)
    gx = global_avg_pool_backward(gy, shape)
    np.testing.assert_array_equal(gx, np.broadcast_to((gy * np.float32(1 / (h * w)))[:, None, None, :], shape))


def test_row_sums_and_maxima_against_numpy():
    """row_maxima is NumPy's max along the rows exactly (NaN and infinities included); row_sums within
    the float32 bound of a sum of C terms."""
    from float_bounds import assert_within, gamma
    from minidl.kernels.columns import row_maxima, row_sums
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((37, 10)) * 50).astype(np.float32)
    a[3, 4], a[5, 0], a[6, 9] = np.nan, np.inf, -np.inf
    np.testing.assert_array_equal(row_maxima(a), a.max(axis=1))
    np.testing.assert_array_equal(row_maxima(a[:, :1]), a[:, 0])
    finite = np.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-2.0)
    exact = finite.astype(np.float64).sum(axis=1)
    assert_within(row_sums(finite), exact, gamma(10) * np.abs(finite.astype(np.float64)).sum(axis=1), "row sums")
    assert row_sums(finite).shape == (37,) and row_sums(finite).dtype == np.float32


def test_softmax_cross_entropy_float32_within_its_bound_of_float64():
    """The loss and its gradient in float32 against the same computation in float64, at NIN's (128, 10)
    with logits spread over +-30: errors of a few roundings of exp, a sum of 10, log and a mean."""
    from float_bounds import gamma
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((128, 10)) * 10).astype(np.float32)
    labels = rng.integers(0, 10, 128)
    results = {}
    for dtype in (np.float32, np.float64):
        x = minidl.Tensor(logits.astype(dtype), requires_grad=True)
        loss = F.softmax_cross_entropy(x, labels)
        loss.backward()
        results[dtype] = loss.item(), x.grad
    z = logits.astype(np.float64) - logits.astype(np.float64).max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    # every log-probability: |z| * u (the shift) + a few u from exp, a sum of 10, log and the subtraction
    term_bound = (np.abs(z) + np.abs(log_p) + 1) * 16 * 2 ** -24
    loss_bound = term_bound[np.arange(128), labels].mean() + gamma(128) * np.abs(log_p[np.arange(128), labels]).mean()
    assert abs(results[np.float32][0] - results[np.float64][0]) <= loss_bound
    p = np.exp(log_p)
    grad_error = np.abs(results[np.float32][1] - results[np.float64][1])
    assert (grad_error <= (p * term_bound + 2 ** -24) / 128).all()
    assert results[np.float32][1].dtype == np.float32


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="placing threads needs Linux's sched_setaffinity and two cores to place them on")
def test_pool_threads_are_placed_off_the_callers_core_and_started_at_once(restore_threads):
    """With 2 threads the pool's thread is started with the pool and placed on one core, not the one the
    caller ran on when it handed out the blocks; after set_num_threads a new pool is placed again."""
    for n in (2, 3):
        threads.set_num_threads(n)
        seen = []
        threads.run_blocks(seen.append, list(range(6)))
        assert sorted(seen) == list(range(6))
        assert len(threads._worker_ids) == n - 1
        caller = threads._placed_for
        assert caller is not None
        for tid in threads._worker_ids:
            placed = os.sched_getaffinity(tid)
            assert len(placed) == 1 and caller not in placed
        if n == 3 and len(os.sched_getaffinity(0)) >= 3:          # two workers, two cores of their own
            assert len({next(iter(os.sched_getaffinity(t))) for t in threads._worker_ids}) == 2


def test_place_workers_does_nothing_where_the_core_cannot_be_asked(restore_threads, monkeypatch):
    """Without sched_getcpu (not Linux) the blocks still run, on threads left where they are."""
    threads.set_num_threads(2)
    monkeypatch.setattr(threads, "_current_cpu", lambda: None)
    seen = []
    threads.run_blocks(seen.append, list(range(4)))
    assert sorted(seen) == list(range(4)) and threads._placed_for is None


def test_im2col_into_the_leading_columns_of_a_wider_matrix(rng):
    """The patches land in the first kh*kw*C columns, exactly as im2col's own array; the rest is left alone."""
    x = rng.standard_normal((3, 5, 4, 2))                                  # (N, H, W, C)
    expected = im2col(x, 3, 2, 2, 1, 1, 0).reshape(-1, 3 * 2 * 2)         # Ho = 3, Wo = 3
    wide = np.full((expected.shape[0], expected.shape[1] + 2), 7.0)
    im2col(x, 3, 2, 2, 1, 1, 0, out=wide)
    np.testing.assert_array_equal(wide[:, :-2], expected)
    assert (wide[:, -2:] == 7.0).all()
    for bad in (np.zeros((expected.shape[0] + 1, 20)), np.zeros((expected.shape[0], 11)),
                np.zeros((expected.shape[0], 30))[:, ::2]):
        with pytest.raises(ValueError, match=r"im2col: out must be a row-major matrix of 27 rows"):
            im2col(x, 3, 2, 2, 1, 1, 0, out=bad)


@pytest.mark.parametrize("activation", [None, "relu"])
def test_conv_bias_in_the_product_equals_the_bias_added_and_the_summed_gradient(tiny_blocks, rng, activation):
    """An im2col convolution carries its bias as one more column of the product (a column of ones in cols):
    y is conv-without-bias + b, and dB the column sums of dL/dy (masked where the ReLU cut), each within
    the float64 rounding bound of its sum, over many blocks; dx and dW as without the bias."""
    x = channels_last(rng.standard_normal((6, 3, 7, 5)))
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gy = channels_last(rng.standard_normal((6, 4, 7, 5)))
    results = {}
    for with_bias in (True, False):
        xt, wt = make_tensor(x, requires_grad=True), minidl.tensor(w, requires_grad=True)
        bt = minidl.tensor(b, requires_grad=True) if with_bias else None
        y = F.conv2d(xt, wt, bt, padding=1, algorithm="im2col", activation=activation)
        if not with_bias:                                                   # add b, then the ReLU, the plain way
            y = F.conv2d(xt, wt, None, padding=1, algorithm="im2col") + minidl.tensor(b.reshape(1, 4, 1, 1))
            y = F.relu(y) if activation == "relu" else y
        y.backward(gy)
        results[with_bias] = (y.numpy(), xt.grad, wt.grad, None if bt is None else bt.grad)
    (y, gx, gw, gb), (y_ref, gx_ref, gw_ref, _) = results[True], results[False]
    # each y is a sum of 27 products and b, in either order: both within gamma_28 sum|terms| of the exact one
    magnitudes = F.conv2d(make_tensor(np.abs(x)), minidl.tensor(np.abs(w)), minidl.tensor(np.abs(b)), padding=1)
    assert_within(y, y_ref, 2 * gamma(3 * 3 * 3 + 1, np.float64) * magnitudes.numpy(), "y")
    masked = gy * (y_ref > 0) if activation == "relu" else gy
    pixels = gy.shape[0] * gy.shape[2] * gy.shape[3]
    assert_within(gb, masked.sum(axis=(0, 2, 3)), gamma(pixels, np.float64) * np.abs(masked).sum(axis=(0, 2, 3)), "dB")
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-12, atol=1e-12)
