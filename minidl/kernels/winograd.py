"""Winograd's minimal filtering: a stride-1 convolution with fewer multiplications than im2col.

One dimension first. Correlating a tile d of a = m + r - 1 inputs with a filter g of r taps
gives m outputs, y[i] = sum_k g[k] d[i + k]: m*r multiplications done directly. Winograd
(and Toom and Cook before him) computes the same m outputs with a multiplications only:

    y = A^T [ (G g) * (B^T d) ]          (* elementwise; A^T (m, a), G (a, r), B^T (a, a))

In 2-D the transforms act on both axes of a tile: the a x a tile d and the r x r filter g give
the m x m outputs ``A^T [(G g G^T) * (B^T d B)] A``. For NIN's 5x5 layer with tiles of 8 x 8
(m = 4), that is 64 multiplications for 16 outputs instead of 16 * 25 = 400; for the 3x3 layer
with tiles of 6 x 6 (m = 4), 36 for 16 instead of 144.

Where the matrices come from (all computed here, exactly, from a list of points):
multiplying two polynomials of degrees r - 1 and m - 1 is the *linear* convolution of their
coefficients. Evaluate both at a points (for a = 6: 0, 1, -1, 2, -2, and "infinity", which
picks the leading coefficient; a = 8 adds 1/2 and -1/2), multiply the a values, and interpolate
the product back: a multiplications. With V the Vandermonde matrix of the points and G, H its first r and m
columns, the convolution matrix of g is ``C_g = V^-1 diag(G g) H``. A correlation is the
*transpose* of a linear convolution (each output gathers what each input scatters), so
``y = C_g^T d = H^T diag(G g) V^-T d``: A^T = H^T and B^T = V^-T.

A convolution layer sums over C input channels, and the sum moves inside the transforms:
for every one of the a*a tile positions (xi, nu), the transformed tiles of all images and
channels (T tiles, C) times the transformed filters (C, O) is one matrix product. So the
layer is a*a matrix products of (T, C) @ (C, O), in all (r*m/a)^2 times fewer multiplications
than the (T*m*m, r*r*C) @ (r*r*C, O) of im2col, plus the transforms, which are small
matrix products themselves: ``B^T d B`` on the tiles and ``A^T p A`` on the products, each
applied one axis at a time (:func:`transform_tile_axes`: a product with the left matrix along
the rows of every tile, then one along the columns), 2a multiplications per number where the
single matrix ``kron(B^T, B^T)`` on a flattened tile would take a*a.

The backward pass is the same algebra transposed: dL/d(products) = A dL/dY A^T;
the transformed filters' gradient is (tiles)^T @ that, for every position; the tiles'
gradient goes back through B on each axis and is added into place (tiles overlap by r - 1, as
patches do in col2im); the filters' gradient is the weight transform transposed.

Which tile: larger tiles save more multiplications (a*a per m*m outputs) but waste more where
they stick out over the output's edge, and round more. :func:`choose_tile` takes, of
:data:`TILES`, the one with the fewest multiplications for the layer's output size: 8 x 8 for
NIN's 5x5 layer on 16 x 16 outputs (16 tiles of 64 against 64 tiles of 36 per image and channel
pair: 2.25x fewer), 6 x 6 for its 3x3 layer on 8 x 8 outputs (4 tiles of 36 against 4 of 64).

The price is rounding: the transforms add and scale numbers of mixed sign, so the float32
error is a few times that of im2col (tests/test_winograd.py bounds it, for both tiles). The
points 0, +-1, +-2 keep it small for a = 6; a = 8 needs +-1/2 as well, and its transforms'
larger and smaller entries (5.25, 1/90) about double the error again (measured on NIN's 5x5
layer, outputs of rms 2.3: largest error 5.8e-5 with a = 6, 9.8e-5 with a = 8, 5.3e-6 for im2col;
benchmarks/results/2026-12-04-zen4/probes/tile_errors.log).

Shapes here are channels-last: x (N, H, W, C), weight (O, C, kh, kw), y (N, Ho, Wo, O).
"""
from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

#: the tile sizes a = m + r - 1 (along each axis) that a layer can use; :func:`choose_tile` picks
TILES = (6, 8)
#: the points of the polynomial evaluations (and infinity): a tile of a uses the first a - 1
POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))
#: kernel sizes that have a transform here (an axis of size 1 needs none: im2col is then cheaper)
KERNEL_SIZES = (2, 3, 4, 5)


def _vandermonde(n_columns: int, tile: int) -> list:
    """Rows [p^0, p^1, ..., p^(n-1)] for the tile's points, and [0, ..., 0, 1] for infinity: exact fractions."""
    rows = [[Fraction(p) ** k for k in range(n_columns)] for p in POINTS[:tile - 1]]
    rows.append([Fraction(0)] * (n_columns - 1) + [Fraction(1)])
    return rows


def _inverse(matrix: list) -> list:
    """The inverse of a square matrix of fractions, by Gauss-Jordan elimination (exact)."""
    n = len(matrix)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if rows[i][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for i in range(n):
            if i != col and rows[i][col] != 0:
                factor = rows[i][col]
                rows[i] = [a - factor * b for a, b in zip(rows[i], rows[col])]
    return [row[n:] for row in rows]


@functools.lru_cache(maxsize=None)
def transform_matrices(r: int, tile: int = 6):
    """(A^T (m, a), G (a, r), B^T (a, a)) as float64 arrays for a kernel of r taps, a = tile, m = a - r + 1."""
    if r not in KERNEL_SIZES:
        raise ValueError(f"winograd: no transform for a kernel of {r} taps (have {KERNEL_SIZES})")
    if tile not in TILES:
        raise ValueError(f"winograd: no tile of {tile} (have {TILES})")
    m = tile - r + 1
    vandermonde = _vandermonde(tile, tile)
    g_eval, h_eval = _vandermonde(r, tile), _vandermonde(m, tile)
    b_t = [list(col) for col in zip(*_inverse(vandermonde))]          # V^-T
    a_t = [list(col) for col in zip(*h_eval)]                          # H^T
    as_array = lambda rows: np.array([[float(v) for v in row] for row in rows])
    return as_array(a_t), as_array(g_eval), as_array(b_t)


def transform_tile_axes(xp, left, right, tiles, out, scratch) -> None:
    """out[p, q, ...] = sum_ij left[p, i] right[q, j] tiles[i, j, ...]: a matrix on each of a tile's two axes.

    tiles (a, b, ...) or (a*b, ...) -> out (p, q, ...) or (p*q, ...): first ``left`` along the
    first axis (one product of (p, a) @ (a, b*rest)), then ``right`` along the second (p products
    of (q, b) @ (b, rest)). That is kron(left, right) on the flattened tile, in (a + b)
    multiplications per number instead of a*b.
    """
    (p, a), (q, b) = left.shape, right.shape
    rest = tiles.size // (a * b)
    half = scratch("wg_half", (p, b, rest), tiles.dtype)
    xp.matmul(left, tiles.reshape(a, b * rest), out=half.reshape(p, b * rest))
    xp.matmul(right, half, out=out.reshape(p, q, rest))


def applies(kh: int, kw: int, sh: int, sw: int) -> bool:
    """Whether a kernel kh x kw with strides (sh, sw) has a Winograd transform here."""
    return (sh, sw) == (1, 1) and kh in KERNEL_SIZES and kw in KERNEL_SIZES


def tile_counts(out_hw, kernel, tile: int):
    """(th, tw): how many tiles of ``tile`` cover Ho x Wo outputs, each giving (tile - k + 1) outputs an axis."""
    return tuple(-(-size // (tile - k + 1)) for size, k in zip(out_hw, kernel))


def choose_tile(out_hw, kernel) -> int:
    """The tile of :data:`TILES` with the fewest multiplications (tiles x a*a) for Ho x Wo outputs; on a tie,
    the smaller tile, which rounds less."""
    def multiplications(tile):
        th, tw = tile_counts(out_hw, kernel, tile)
        return th * tw * tile * tile
    return min(TILES, key=lambda tile: (multiplications(tile), tile))


class WinogradPlan:
    """The transforms and tile counts of one convolution layer: x (N, H, W, C), weight (O, C, kh, kw).

    Input tiles are a x a (``tile``: given, or :func:`choose_tile`'s); output tiles m_h x m_w;
    ``tiles`` (th, tw) cover the Ho x Wo outputs (the last row and column of tiles may stick out:
    the input is padded with zeros to match, the extra outputs dropped).
    """

    def __init__(self, input_hw, weight_shape, padding, xp, dtype, tile: int | None = None):
        (h, w), (o, c, kh, kw), (ph, pw) = input_hw, weight_shape, padding
        self.out_hw = (h + 2 * ph - kh + 1, w + 2 * pw - kw + 1)
        self.tile = a = choose_tile(self.out_hw, (kh, kw)) if tile is None else tile
        a_h, g_h, b_h = transform_matrices(kh, a)
        a_w, g_w, b_w = transform_matrices(kw, a)
        self.m = (a_h.shape[0], a_w.shape[0])
        self.tiles = tile_counts(self.out_hw, (kh, kw), a)
        self.padding, self.kernel, self.channels = (ph, pw), (kh, kw), (c, o)
        as_dtype = lambda m: xp.asarray(m, dtype=dtype)                                  # noqa: E731
        self.in_transform = (as_dtype(b_h), as_dtype(b_w))          # B^T (a, a) on each axis: tiles -> transformed
        self.out_transform = (as_dtype(a_h), as_dtype(a_w))         # A^T (m, a) on each axis: products -> outputs
        self.k_weight = xp.asarray(np.kron(g_h, g_w), dtype=dtype)   # (a*a, kh*kw): filters -> transformed filters

    @property
    def tiles_per_image(self) -> int:
        return self.tiles[0] * self.tiles[1]

    def bytes_per_image(self, itemsize: int) -> int:
        """The scratch memory of one image's tiles: transformed inputs and products, a*a positions each."""
        c, o = self.channels
        return self.tile ** 2 * self.tiles_per_image * (c + o) * itemsize

    # -- the filters ----------------------------------------------------------------------------
    def transform_weight(self, xp, weight):
        """U (a*a, C, O) = (G g G^T) for every filter pair (o, c): one product with kron(G, G)."""
        o, c, kh, kw = weight.shape
        w_taps = weight.transpose(2, 3, 1, 0).reshape(kh * kw, c * o)    # (kh*kw, C*O)
        return xp.matmul(self.k_weight, w_taps).reshape(self.tile ** 2, c, o)

    def weight_grad(self, xp, grad_u):
        """dL/dweight (O, C, kh, kw) from dL/dU (a*a, C, O): the weight transform transposed."""
        _, c, o = grad_u.shape
        kh, kw = self.kernel
        g_taps = xp.matmul(self.k_weight.T, grad_u.reshape(self.tile ** 2, c * o))
        return g_taps.reshape(kh, kw, c, o).transpose(3, 2, 0, 1).copy()

    # -- one block of images ----------------------------------------------------------------------
    def _padded(self, xp, x, scratch):
        """x (n, H, W, C) in a zero frame that the tiles cover exactly: (n, th*m_h + kh - 1, tw*m_w + kw - 1, C)."""
        n, h, w, c = x.shape
        (th, tw), (mh, mw), (kh, kw), (ph, pw) = self.tiles, self.m, self.kernel, self.padding
        padded = scratch("wg_padded", (n, th * mh + kh - 1, tw * mw + kw - 1, c), x.dtype)
        padded[...] = 0
        padded[:, ph:ph + h, pw:pw + w] = x
        return padded

    def _tile_views(self, padded):
        """For each tile position (i, j), the (n, th, tw, C) strided view of that position in every tile."""
        (th, tw), (mh, mw) = self.tiles, self.m
        for i in range(self.tile):
            for j in range(self.tile):
                yield i * self.tile + j, padded[:, i:i + mh * (th - 1) + 1:mh, j:j + mw * (tw - 1) + 1:mw]

    def _tiled(self, xp, a, tile_hw):
        """The (tile_h, tile_w, n, th, tw, C) strided view of a (n, H, W, C): every tile of that size, one
        every m_h rows and m_w columns, position inside the tile first. No copy. Input tiles (a x a)
        overlap; output tiles (m_h x m_w) don't."""
        n, _, _, c = a.shape
        (th, tw), (mh, mw) = self.tiles, self.m
        s_n, s_h, s_w, s_c = a.strides
        return xp.lib.stride_tricks.as_strided(a, shape=(*tile_hw, n, th, tw, c),
                                               strides=(s_h, s_w, s_n, s_h * mh, s_w * mw, s_c))

    def transformed_tiles(self, xp, x, scratch):
        """V (a*a, n*th*tw, C) = B^T d B of every tile d of x (n, H, W, C)."""
        n, _, _, c = x.shape
        padded = self._padded(xp, x, scratch)
        tiles = scratch("wg_tiles", (self.tile, self.tile, n, *self.tiles, c), x.dtype)
        tiles[...] = self._tiled(xp, padded, (self.tile, self.tile))    # one copy: fewer calls, less GIL waiting
        v = scratch("wg_v", (self.tile ** 2, n * self.tiles_per_image, c), x.dtype)
        transform_tile_axes(xp, *self.in_transform, tiles, v, scratch)
        return v

    def forward(self, xp, x, u, y, scratch) -> None:
        """y (n, Ho, Wo, O) of the block x (n, H, W, C), with U the transformed filters."""
        n = x.shape[0]
        o = u.shape[2]
        v = self.transformed_tiles(xp, x, scratch)
        products = scratch("wg_products", (self.tile ** 2, v.shape[1], o), x.dtype)
        xp.matmul(v, u, out=products)                                       # a*a products (T, C) @ (C, O)
        mh, mw = self.m
        out_tiles = scratch("wg_out", (mh * mw, n, *self.tiles, o), x.dtype)
        transform_tile_axes(xp, *self.out_transform, products, out_tiles, scratch)
        if self._tiles_fit():
            self._tiled(xp, y, self.m)[...] = out_tiles.reshape(mh, mw, n, *self.tiles, o)     # one copy
        else:
            for a, b, rows, cols in self._output_offsets():
                y[:, a::mh, b::mw] = out_tiles[a * mw + b, :, :rows, :cols]

    def _tiles_fit(self) -> bool:
        """Whether the output tiles cover Ho x Wo exactly (none sticks out)."""
        return all(size % m == 0 for size, m in zip(self.out_hw, self.m))

    def _output_offsets(self):
        """(a, b, rows, cols): output offset (a, b) inside a tile, and how many tiles have it inside Ho x Wo."""
        (mh, mw), (ho, wo) = self.m, self.out_hw
        for a in range(mh):
            for b in range(mw):
                yield a, b, len(range(a, ho, mh)), len(range(b, wo, mw))

    def product_grads(self, xp, gy, scratch):
        """dL/d(products) (a*a, n*th*tw, O) = A (gy cut into m x m tiles) A^T, gy (n, Ho, Wo, O)."""
        n, _, _, o = gy.shape
        (mh, mw), (ho, wo), (th, tw) = self.m, self.out_hw, self.tiles
        gy_tiles = scratch("wg_out", (mh * mw, n, th, tw, o), gy.dtype)
        if self._tiles_fit():
            gy_tiles.reshape(mh, mw, n, th, tw, o)[...] = self._tiled(xp, gy, self.m)     # one copy
        else:
            gy_tiles[...] = 0                          # outputs that stick out have no gradient
            for a, b, rows, cols in self._output_offsets():
                gy_tiles[a * mw + b, :, :rows, :cols] = gy[:, a::mh, b::mw]
        g_products = scratch("wg_products", (self.tile ** 2, n * th * tw, o), gy.dtype)
        a_h, a_w = self.out_transform
        transform_tile_axes(xp, a_h.T, a_w.T, gy_tiles, g_products, scratch)
        return g_products

    def input_grad(self, xp, g_products, u, gx, scratch) -> None:
        """gx (n, H, W, C) of the block: back through the products, B on each tile axis, and the overlapping tiles."""
        n, h, w, c = gx.shape
        g_v = scratch("wg_v", (self.tile ** 2, g_products.shape[1], c), gx.dtype)
        xp.matmul(g_products, u.transpose(0, 2, 1), out=g_v)
        g_tiles = scratch("wg_tiles", (self.tile ** 2, n, *self.tiles, c), gx.dtype)
        b_h, b_w = self.in_transform
        transform_tile_axes(xp, b_h.T, b_w.T, g_v, g_tiles, scratch)
        (th, tw), (mh, mw), (kh, kw), (ph, pw) = self.tiles, self.m, self.kernel, self.padding
        g_padded = scratch("wg_padded", (n, th * mh + kh - 1, tw * mw + kw - 1, c), gx.dtype)
        g_padded[...] = 0
        for k, view in self._tile_views(g_padded):
            view += g_tiles[k]                         # tiles overlap: a pixel gets every tile's share
        gx[...] = g_padded[:, ph:ph + h, pw:pw + w]
