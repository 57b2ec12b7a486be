"""Winograd convolution (minidl/kernels/winograd.py): the transforms, the layer against im2col and scipy,
gradient checks on awkward shapes, rounding within a bound derived from the algorithm, blocks and threads.

Every layer test runs once for each tile size of winograd.TILES (the ``tile`` fixture makes it the only one).

The rounding bound: every stage of the algorithm is a sum (the weight transform over kh*kw taps, the
input transform over a*a tile positions, the products over C channels, the output transform over a*a
positions; backward alike), and the entries of the transforms (1/4, 1/6, 1/24...) are themselves
rounded once. Running the same algorithm on the absolute values of the data *and* of the transforms
gives, elementwise, the sum of the magnitudes of every term that reaches a result; the float error is
at most gamma_n times that, n the sum of the lengths of the chained sums plus one per rounded matrix
(Higham, ch. 3: |fl(A B C) - A B C| <= gamma_(k1+k2) |A| |B| |C|).
"""
import numpy as np
import pytest

import minidl
import minidl.functional as F
import minidl.functional.conv as conv_module
from minidl.kernels import threads, winograd
from minidl.kernels.winograd import WinogradPlan

from conftest import channels_last, make_tensor
from float_bounds import assert_within, gamma
from test_conv import conv_reference, pair

# (x shape, w shape, padding): output sides that are not multiples of the tile's m, rectangular kernels,
# every kernel size 2..5, one channel, batch 1, padding on one axis only, outputs smaller than a tile,
# and outputs that the tiles cover exactly (one strided copy in and out, minidl/kernels/winograd.py)
CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), 1),
    ((1, 2, 6, 5), (3, 2, 5, 5), 2),
    ((3, 4, 9, 8), (2, 4, 3, 5), (1, 0)),
    ((2, 1, 5, 6), (3, 1, 2, 4), 0),
    ((1, 5, 4, 4), (2, 5, 4, 2), (2, 1)),
    ((2, 3, 3, 3), (2, 3, 3, 3), 0),
    ((2, 3, 8, 4), (4, 3, 3, 3), 1),              # outputs 8 x 4: the 4 x 4 output tiles fit exactly
    ((2, 3, 6, 4), (3, 3, 5, 5), 2),              # outputs 6 x 4: the 2 x 2 output tiles fit exactly
]
N_MATRICES = 5         # k_weight, B^T twice (one per axis), A^T twice: each entry rounded once to the working dtype


@pytest.fixture(params=winograd.TILES)
def tile(request, monkeypatch):
    """Each tile size in turn, as the only one that choose_tile may pick."""
    monkeypatch.setattr(winograd, "TILES", (request.param,))
    return request.param


class AbsolutePlan(WinogradPlan):
    """The transforms with every entry replaced by its absolute value."""

    def __init__(self, *args):
        super().__init__(*args)
        self.in_transform = tuple(abs(m) for m in self.in_transform)
        self.out_transform = tuple(abs(m) for m in self.out_transform)
        self.k_weight = abs(self.k_weight)


def magnitudes(x, w, gy, padding):
    """(|y|, |dx|, |dW|): the Winograd algorithm run in float64 on |x|, |w|, |gy| and the |transforms|."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_module, "WinogradPlan", AbsolutePlan)
        xt, wt = (minidl.tensor(np.abs(np.asarray(a, dtype=np.float64)), requires_grad=True) for a in (x, w))
        y = F.conv2d(xt, wt, padding=padding, algorithm="winograd")
        y.backward(np.abs(gy))
    return y.numpy(), xt.grad, wt.grad


def rounding_lengths(x_shape, w_shape, y_shape, tile):
    """n of gamma_n for y, dx and dW: the chained sums of each, plus one rounding per transform matrix."""
    n, c, _, _ = x_shape
    o, _, kh, kw = w_shape
    tiles = n * -(-y_shape[2] // (tile - kh + 1)) * -(-y_shape[3] // (tile - kw + 1))
    m_area = (tile - kh + 1) * (tile - kw + 1)
    a_area = tile * tile
    y = kh * kw + a_area + c + a_area + N_MATRICES + 1                  # + 1: the bias
    dx = kh * kw + m_area + o + a_area + a_area + N_MATRICES            # + a_area: the overlapping tiles' adds
    dw = m_area + a_area + tiles + conv_module.WEIGHT_GRAD_GROUPS + a_area + N_MATRICES
    return y, dx, dw


@pytest.mark.parametrize("a", winograd.TILES)
@pytest.mark.parametrize("r", winograd.KERNEL_SIZES)
def test_one_dimensional_transforms_compute_a_correlation(rng, r, a):
    """A^T [(G g) * (B^T d)] = correlation of d (a values) with g (r taps), a multiplications for m outputs."""
    a_t, g_mat, b_t = winograd.transform_matrices(r, a)
    m = a - r + 1
    assert a_t.shape == (m, a) and g_mat.shape == (a, r) and b_t.shape == (a, a)
    for _ in range(5):
        d, g = rng.standard_normal(a), rng.standard_normal(r)
        got = a_t @ ((g_mat @ g) * (b_t @ d))
        want = np.array([np.dot(g, d[i:i + r]) for i in range(m)])
        bound = gamma(r + a + a + N_MATRICES, np.float64) * (np.abs(a_t) @ ((np.abs(g_mat) @ np.abs(g))
                                                                           * (np.abs(b_t) @ np.abs(d))))
        assert_within(got, want, bound, f"F({m},{r})")


@pytest.mark.parametrize("a", winograd.TILES)
def test_transforms_are_exact_fractions_of_the_points(a):
    """B^T is V^-T for the tile's points (0, 1, -1, 2, -2, [1/2, -1/2,] infinity): B^T V^T = I."""
    _, _, b_t = winograd.transform_matrices(3, a)
    points = [float(p) for p in winograd.POINTS[:a - 1]]
    v = np.array([[p ** k for k in range(a)] for p in points] + [[0] * (a - 1) + [1]], float)
    np.testing.assert_allclose(b_t @ v.T, np.eye(a), atol=1e-13)
    with pytest.raises(ValueError, match="winograd: no transform for a kernel of 7 taps"):
        winograd.transform_matrices(7, a)
    with pytest.raises(ValueError, match=r"winograd: no tile of 7 \(have \(6, 8\)\)"):
        winograd.transform_matrices(3, 7)


def test_transform_tile_axes_is_the_kronecker_product_on_a_flattened_tile(rng):
    """left along the first axis, right along the second: kron(left, right) @ tile.reshape(a*b), for every tile."""
    left, right = rng.standard_normal((4, 6)), rng.standard_normal((3, 5))
    tiles = rng.standard_normal((6, 5, 7, 2))
    out = np.empty((4, 3, 7, 2))
    scratch = lambda name, shape, dtype: np.empty(shape, dtype)                        # noqa: E731
    winograd.transform_tile_axes(np, left, right, tiles, out, scratch)
    want = (np.kron(left, right) @ tiles.reshape(30, -1)).reshape(4, 3, 7, 2)
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)


def test_choose_tile_takes_the_fewest_multiplications():
    """NIN's 5x5 layer (16 x 16 outputs): 16 tiles of 8 x 8 (1024 products a channel pair) beat 64 tiles of
    6 x 6 (2304); its 3x3 layer (8 x 8 outputs): 4 tiles of 6 x 6 (144) beat 4 of 8 x 8 (256); a tie goes
    to the smaller tile, which rounds less."""
    assert winograd.choose_tile((16, 16), (5, 5)) == 8
    assert winograd.choose_tile((8, 8), (3, 3)) == 6
    assert winograd.choose_tile((32, 32), (5, 5)) == 8
    assert winograd.choose_tile((2, 2), (5, 5)) == 6          # one tile of either: 36 against 64
    assert winograd.tile_counts((16, 16), (5, 5), 8) == (4, 4)
    assert winograd.tile_counts((16, 16), (5, 5), 6) == (8, 8)
    plan = WinogradPlan((16, 16), (4, 3, 5, 5), (2, 2), np, np.float32)
    assert (plan.tile, plan.m, plan.tiles) == (8, (4, 4), (4, 4))


@pytest.mark.parametrize("x_shape, w_shape, padding", CASES)
def test_winograd_matches_scipy_and_im2col_in_float64(rng, x_shape, w_shape, padding, tile):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = F.conv2d(minidl.tensor(x), minidl.tensor(w), minidl.tensor(b), padding=padding, algorithm="winograd")
    gy = rng.standard_normal(y.shape)
    y_mag, _, _ = magnitudes(x, w, gy, padding)
    n_y, _, _ = rounding_lengths(x_shape, w_shape, y.shape, tile)
    bound = gamma(n_y, np.float64) * (y_mag + np.abs(b)[:, None, None]) + 1e-13    # + the reference's rounding
    assert_within(y.numpy(), conv_reference(x, w, b, 1, padding), bound, "winograd conv2d")


@pytest.mark.parametrize("x_shape, w_shape, padding", CASES)
def test_winograd_gradients_match_im2col_within_the_rounding_bound(rng, x_shape, w_shape, padding, tile):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])

    def run(algorithm):
        xt, wt, bt = (minidl.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(xt, wt, bt, padding=padding, algorithm=algorithm)
        y.backward(gy)
        return y.numpy(), xt.grad, wt.grad, bt.grad

    gy = rng.standard_normal(conv_module.Conv2d((1, 1), pair(padding)).forward(x, w).shape)
    _, gx_mag, gw_mag = magnitudes(x, w, gy, padding)
    _, n_dx, n_dw = rounding_lengths(x_shape, w_shape, gy.shape, tile)
    _, gx, gw, gb = run("winograd")
    _, gx_ref, gw_ref, gb_ref = run("im2col")
    # the im2col gradients carry their own float64 rounding, far below these bounds (tests/test_conv.py)
    assert_within(gx, gx_ref, gamma(n_dx, np.float64) * gx_mag + 1e-13, "winograd dx")
    assert_within(gw, gw_ref, gamma(n_dw, np.float64) * gw_mag + 1e-13, "winograd dW")
    # dB: column sums of gy (Winograd) against the last column of dW's product (im2col, conv.py): each within
    # gamma_n sum|gy| of the exact sum, n = N*Ho*Wo, so within twice that of each other
    pixels = gy.shape[0] * gy.shape[2] * gy.shape[3]
    assert_within(gb, gb_ref, 2 * gamma(pixels, np.float64) * np.abs(gy).sum(axis=(0, 2, 3)), "winograd dB")


@pytest.mark.parametrize("x_shape, w_shape, padding", CASES[:4])
def test_winograd_gradcheck(rng, x_shape, w_shape, padding, tile):
    x = make_tensor(channels_last(rng.standard_normal(x_shape)), requires_grad=True)
    w = minidl.tensor(rng.standard_normal(w_shape), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(w_shape[0]), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding, algorithm="winograd"), [x, w, b])


@pytest.mark.parametrize("which", [0, 1])
def test_winograd_gradcheck_when_only_one_input_requires_grad(rng, which, tile):
    arrays = [rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((2, 3, 5, 3))]
    tensors = [minidl.tensor(a, requires_grad=(i == which)) for i, a in enumerate(arrays)]
    assert minidl.gradcheck(lambda x, w: F.conv2d(x, w, padding=(2, 1), algorithm="winograd"), tensors)


def test_winograd_float32_within_its_rounding_bound(rng, tile):
    """NIN's 5x5 layer shape, shrunk: float32 against the exact (float64) convolution."""
    x = rng.standard_normal((2, 48, 11, 10)).astype(np.float32)
    w = (rng.standard_normal((16, 48, 5, 5)) / 35).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    y = F.conv2d(minidl.tensor(x), minidl.tensor(w), minidl.tensor(b), padding=2, algorithm="winograd")
    assert y.dtype == np.float32
    y_mag, _, _ = magnitudes(x.astype(np.float64), w.astype(np.float64), np.zeros(y.shape), 2)
    n_y, _, _ = rounding_lengths(x.shape, w.shape, y.shape, tile)
    exact = conv_reference(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 2)
    assert_within(y.numpy(), exact, gamma(n_y) * (y_mag + np.abs(b)[:, None, None]) + 1e-12, "float32 winograd")


def test_winograd_blocks_and_threads_give_identical_results(monkeypatch, restore_threads, rng, tile):
    """Many blocks (a budget of one image), 1, 2 or 3 threads: exactly the same y, dx, dW, db."""
    x, w = rng.standard_normal((7, 4, 6, 7)), rng.standard_normal((3, 4, 3, 3))
    b, gy = rng.standard_normal(3), rng.standard_normal((7, 3, 6, 7))

    def run():
        xt, wt, bt = (minidl.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(xt, wt, bt, padding=1, algorithm="winograd")
        y.backward(gy)
        return [y.numpy(), xt.grad, wt.grad, bt.grad]

    threads.set_num_threads(1)
    whole = run()
    monkeypatch.setattr(conv_module, "WINOGRAD_BUFFER_BYTES", 1)
    threads.set_num_threads(1)
    expected = run()
    for n_threads in (2, 3):
        threads.set_num_threads(n_threads)
        for got, want in zip(run(), expected):
            np.testing.assert_array_equal(got, want)
    # one block or seven: each block's products have another height, which a BLAS may sum in another
    # order (and one block runs it multi-threaded), so the two agree within the rounding bound
    y_mag, gx_mag, gw_mag = magnitudes(x, w, gy, 1)
    n_y, n_dx, n_dw = rounding_lengths(x.shape, w.shape, gy.shape, tile)
    for got, want, mag, n, what in zip(expected, whole, (y_mag + abs(b)[:, None, None], gx_mag, gw_mag),
                                       (n_y, n_dx, n_dw), ("y", "dx", "dW")):
        assert_within(got, want, 2 * gamma(n, np.float64) * mag, f"{what}: 7 blocks against 1")
    np.testing.assert_array_equal(expected[3], whole[3])


def test_auto_picks_winograd_where_it_pays_and_refuses_it_where_it_does_not_apply(rng):
    choose = conv_module.choose_algorithm
    wide = conv_module.WINOGRAD_MIN_CHANNELS
    assert choose("auto", "numpy", wide, (5, 5), (1, 1)) == "winograd"
    assert choose("auto", "numpy", wide, (3, 3), (1, 1)) == "winograd"
    assert choose("auto", "numpy", 3, (5, 5), (1, 1)) == "im2col"           # NIN's first layer: thin products
    assert choose("auto", "cupy", wide, (5, 5), (1, 1)) == "im2col"
    assert choose("auto", "numpy", wide, (3, 3), (2, 2)) == "im2col"
    assert choose("auto", "numpy", wide, (7, 7), (1, 1)) == "im2col"
    assert choose("im2col", "numpy", wide, (5, 5), (1, 1)) == "im2col"
    few = conv_module.WINOGRAD_MIN_IMAGES - 1                                # one image: im2col uses every core
    assert choose("auto", "numpy", wide, (5, 5), (1, 1), images=few) == "im2col"
    assert choose("winograd", "numpy", wide, (5, 5), (1, 1), images=few) == "winograd"
    x, w = minidl.tensor(rng.standard_normal((1, 2, 6, 6))), minidl.tensor(rng.standard_normal((2, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: algorithm 'winograd' needs stride 1 .* got kernel 3x3, stride 2x2"):
        F.conv2d(x, w, stride=2, algorithm="winograd")
    with pytest.raises(ValueError, match=r"conv2d: algorithm must be one of .*got 'fft'"):
        F.conv2d(x, w, algorithm="fft")


def test_auto_gives_winograds_results_on_a_wide_layer(rng):
    """A layer of WINOGRAD_MIN_CHANNELS inputs and a batch of WINOGRAD_MIN_IMAGES goes through Winograd under
    "auto": bit for bit its result."""
    c, n = conv_module.WINOGRAD_MIN_CHANNELS, conv_module.WINOGRAD_MIN_IMAGES
    x, w = minidl.tensor(rng.standard_normal((n, c, 5, 5))), minidl.tensor(rng.standard_normal((2, c, 3, 3)))
    auto = F.conv2d(x, w, padding=1).numpy()
    np.testing.assert_array_equal(auto, F.conv2d(x, w, padding=1, algorithm="winograd").numpy())
    assert not np.array_equal(auto, F.conv2d(x, w, padding=1, algorithm="im2col").numpy())
