"""2-D convolution (cross-correlation, as in every deep learning library).

    y[n, o, h, w] = b[o] + sum_{c,i,j} W[o, c, i, j] * x_pad[n, c, h*s + i, w*s + j]

Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, Ho, Wo)
with Ho = floor((H + 2p - kh) / s) + 1.

How it is computed (channels-last inside, see minidl/kernels/layout.py):

* general kernel: im2col turns x into cols (N*Ho*Wo, kh*kw*C); then
  ``y = cols @ W_mat.T`` is one matrix product, with W_mat (O, kh*kw*C).
  Backward: ``dW_mat = dy.T @ cols``, ``dcols = dy @ W_mat``, then col2im.
  The bias rides in the same products (NumPy): cols gets one more column, of
  ones, and W_mat one more column, b, so ``[cols | 1] @ [W_mat | b].T`` is
  ``cols @ W_mat.T + b``, and ``dy.T @ [cols | 1]`` is ``[dW_mat | dB]``, dB
  being the column sums of dy. No pass of its own over y or dy for the bias
  (NIN's first layer, forward + backward at batch 64 on a 2-core Intel
  machine: 40.7 -> 28.3 ms; benchmarks/results/2026-12-05-intel/probes/
  conv1_bias_column.log). CuPy adds the bias with a kernel of its own.
* 1x1 kernel, stride 1, no padding ("cross-channel parametric pooling" in
  NIN): every pixel's channel vector goes through the same fully connected
  layer, so ``y = x_mat @ W.T`` with x_mat (N*H*W, C), no im2col at all.

The column matrix is kh*kw times larger than the input (315 MB for NIN's
second layer at batch 128), so it is never built whole: the batch is cut into
blocks of images whose columns fit in :data:`COLUMN_BUFFER_BYTES`, and each
block goes through the whole chain (im2col, product, bias) before the next:
its columns are read by the product while they are still in the cache, and
backward rebuilds each block's columns instead of keeping them from the
forward pass. On NumPy the blocks are shared between the cores
(minidl/kernels/threads.py), each thread running a single-threaded BLAS on
its own blocks, so that a copy on one core never waits for a product on both.
The weight gradient is a sum over all blocks: each of a fixed number of groups
of blocks (:data:`WEIGHT_GRAD_GROUPS`) adds up its own partial sum, and the
partial sums are added in order, so the result does not depend on the number
of threads.

* stride-1 kernels of 2 to 5 taps, on NumPy, many input channels: Winograd's
  minimal filtering (minidl/kernels/winograd.py) computes the same outputs in
  a x a tiles (a = 6 or 8, whichever needs fewer multiplications for the
  layer) with a*a matrix products of (tiles, C) @ (C, O): 6.25x fewer
  multiplications than im2col for NIN's 5x5 layer (tiles of 8), 4x for its
  3x3 layer (tiles of 6), at the price of a few times im2col's float32
  rounding. ``algorithm`` picks: "auto" (Winograd where it pays, see
  :func:`choose_algorithm`), "im2col" or "winograd".

``activation="relu"`` fuses the ReLU that follows a convolution in NIN into
it: each block's outputs are clipped at zero while still in the cache, and in
the backward pass each block's dL/dy is masked (y > 0) just before its
products use it. ReLU's own two passes over memory (tens of megabytes per
layer) disappear; the values are the same as conv2d then relu. MLPConv asks
for it (minidl/nn/mlpconv.py), and :func:`minidl.functional.relu` of such an
output returns it as it is (relu(relu(z)) = relu(z)).
"""
from __future__ import annotations

import functools

import numpy as np

from ..backends import get_array_module, is_cupy_array
from ..engine.function import Function
from ..kernels.blocking import batch_blocks, scratch_array, scratch_buffer
from ..kernels.columns import blocked_column_sums, column_sums
from ..kernels.im2col import col2im, conv_output_size, im2col
from ..kernels.layout import from_nhwc, to_nhwc
from ..kernels.relu import relu_grad_into, relu_into
from ..kernels import winograd
from ..kernels.threads import run_blocks, single_threaded_blas
from ..kernels.winograd import WinogradPlan
from ._utils import pair, shape_str

#: byte budget of one block's column matrix, per backend (for a 1x1 convolution: of its rows of x)
COLUMN_BUFFER_BYTES = {"numpy": 4 * 2**20, "cupy": 1024 * 2**20}
#: NumPy: the number of blocks of a convolution is a multiple of this (see _image_chunks)
BLOCK_COUNT_MULTIPLE = 4
#: the weight gradient is summed in this many partial sums (at most), whatever the number of threads
WEIGHT_GRAD_GROUPS = 12
#: byte budget of one block's Winograd tiles (transformed inputs and products), NumPy
WINOGRAD_BUFFER_BYTES = 16 * 2**20
#: "auto" uses Winograd for layers with at least this many input channels: with few, the products
#: (T, C) @ (C, O) are too thin for the BLAS to run fast, and im2col's (r*r*C) columns win
WINOGRAD_MIN_CHANNELS = 64
#: ... and for batches of at least this many images: one image's tiles run on one core, while
#: im2col's single product uses them all
WINOGRAD_MIN_IMAGES = 2
ALGORITHMS = ("auto", "im2col", "winograd")


def choose_algorithm(algorithm: str, backend: str, channels: int, kernel, stride, images: int = 2) -> str:
    """"im2col" or "winograd" for a layer: ``algorithm`` as asked, "auto" resolved.

    "auto" picks Winograd on NumPy for a stride-1 kernel it has a transform for, at least
    :data:`WINOGRAD_MIN_CHANNELS` input channels and a batch of :data:`WINOGRAD_MIN_IMAGES` or
    more; on CuPy the GPU's matrix products are fast enough that im2col stays. "winograd" for a
    layer it does not apply to is an error.
    """
    (kh, kw), (sh, sw) = kernel, stride
    fits = winograd.applies(kh, kw, sh, sw)
    if algorithm == "winograd" and not fits:
        raise ValueError(f"conv2d: algorithm 'winograd' needs stride 1 and kernel sides in {winograd.KERNEL_SIZES}, "
                         f"got kernel {kh}x{kw}, stride {sh}x{sw}")
    if algorithm == "auto":
        wide = channels >= WINOGRAD_MIN_CHANNELS and images >= WINOGRAD_MIN_IMAGES
        return "winograd" if fits and backend == "numpy" and wide else "im2col"
    return algorithm


def _image_chunks(n_images: int, bytes_per_image: int, backend: str, budget: int | None = None):
    """Yield (first image, last image + 1) of each block: blocks that fit the backend's budget, sizes within one.

    On NumPy the number of blocks is rounded up to a multiple of :data:`BLOCK_COUNT_MULTIPLE`
    (or one image a block, for fewer images), so that 2 or 4 threads get equal shares: 5 blocks
    on 2 cores would keep one core idle a fifth of the time, and one block would run on one core
    (NIN's 3x3 layer at batch 64 fits one Winograd block: training on 2 cores took 18 ms forward and
    33 ms backward as one block, 11 and 22 ms as four; benchmarks/results/2026-12-04-zen4/probes/
    conv3_blocks_train.log). The blocks depend on the shapes only, never on the thread
    count, and neither do the results.
    """
    budget = COLUMN_BUFFER_BYTES[backend] if budget is None else budget
    count = -(-n_images // max(1, budget // max(1, bytes_per_image)))
    if backend == "numpy":
        count = min(n_images, -(-count // BLOCK_COUNT_MULTIPLE) * BLOCK_COUNT_MULTIPLE)
    cuts = [n_images * i // count for i in range(count + 1)]
    for start, stop in zip(cuts, cuts[1:]):
        yield start, stop


def _groups(items: list, n_groups: int) -> list:
    """``items`` cut into ``min(n_groups, len(items))`` runs of neighbours, as even as they can be."""
    n = max(1, min(n_groups, len(items)))
    cuts = [len(items) * i // n for i in range(n + 1)]
    return [items[cuts[i]:cuts[i + 1]] for i in range(n)]


def _run(xp, fn, blocks) -> None:
    """NumPy: the blocks shared between the cores. CuPy: one after another, in order, on the GPU's stream."""
    if xp is np:
        run_blocks(fn, blocks)
    else:
        for block in blocks:
            fn(block)


class Conv2d(Function):
    def __init__(self, stride=(1, 1), padding=(0, 0), algorithm="auto", activation=None):
        self.stride, self.padding, self.algorithm, self.activation = stride, padding, algorithm, activation

    @property
    def name(self) -> str:
        return "Conv2d+ReLU" if getattr(self, "activation", None) == "relu" else "Conv2d"

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        self.out_hw = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        self.pointwise = (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)
        self.x_nhwc = to_nhwc(x)
        self.weight = weight
        backend = "cupy" if is_cupy_array(x) else "numpy"
        self.plan, self.bias_column = None, False
        if choose_algorithm(self.algorithm, backend, c, (kh, kw), self.stride, n) == "winograd":
            self.plan = WinogradPlan((h, w), weight.shape, self.padding, xp, x.dtype)
            return self._forward_winograd(xp, bias)
        self.w_mat = weight.transpose(0, 2, 3, 1).reshape(o, kh * kw * c)    # (O, kh*kw*C), (i, j, c) order
        # NumPy, a kernel wider than 1x1: the bias rides in the product as one more column of W, against a
        # column of ones in cols (see the module docstring)
        self.bias_column = bias is not None and xp is np and not self.pointwise
        w_product = xp.concatenate([self.w_mat, bias[:, None]], axis=1) if self.bias_column else self.w_mat

        pixels = self.out_hw[0] * self.out_hw[1]
        y = xp.empty((n * pixels, o), dtype=x.dtype)

        def one_block(images):                       # columns -> product (-> bias), while in the cache
            rows = slice(images.start * pixels, images.stop * pixels)
            xp.matmul(self._columns(xp, images), w_product.T, out=y[rows])
            if bias is not None and not self.bias_column:
                xp.add(y[rows], bias, out=y[rows])
            if self.activation == "relu":
                relu_into(y[rows], out=y[rows])
        _run(xp, one_block, self._blocks())
        self.y_mat = y if self.activation == "relu" else None                # for the backward's mask
        return from_nhwc(y.reshape(n, *self.out_hw, o))

    def _forward_winograd(self, xp, bias):
        """y (N, O, Ho, Wo) by Winograd tiles, a block of images at a time (minidl/kernels/winograd.py)."""
        n = self.x_nhwc.shape[0]
        y = xp.empty((n, *self.out_hw, self.weight.shape[0]), dtype=self.x_nhwc.dtype)

        def one_block(images):
            self.plan.forward(xp, self.x_nhwc[images], self.u, y[images], _scratch(xp))
            if bias is not None:
                xp.add(y[images], bias, out=y[images])
            if self.activation == "relu":
                relu_into(y[images], out=y[images])
        # The BLAS single-threaded throughout, even for one block: the products here are small (a BLAS
        # thread would cost more to wake than it saves) and a second OpenBLAS thread spins on after
        # each call, in the way of the block threads.
        with single_threaded_blas():
            self.u = self.plan.transform_weight(xp, self.weight)            # (a*a, C, O)
            _run(xp, one_block, self._blocks())
        self.y_mat = y.reshape(-1, y.shape[3]) if self.activation == "relu" else None
        return from_nhwc(y)

    def _blocks(self) -> list:
        """The image slices of the blocks (see the module docstring)."""
        n, h, w, c = self.x_nhwc.shape
        _, _, kh, kw = self.weight.shape
        backend = "cupy" if is_cupy_array(self.x_nhwc) else "numpy"
        if self.plan is not None:
            per_image = self.plan.bytes_per_image(self.x_nhwc.itemsize)
            budget = WINOGRAD_BUFFER_BYTES if backend == "numpy" else COLUMN_BUFFER_BYTES[backend]
            return [slice(start, stop) for start, stop in _image_chunks(n, per_image, backend, budget)]
        per_image = self.out_hw[0] * self.out_hw[1] * kh * kw * c * self.x_nhwc.itemsize
        return [slice(start, stop) for start, stop in _image_chunks(n, per_image, backend)]

    def _columns(self, xp, images):
        """cols (rows, kh*kw*C) of these images: a view of x for a 1x1 kernel, else im2col into a scratch buffer;
        where the bias rides in the product (``self.bias_column``), one more column, of ones: (rows, kh*kw*C + 1)."""
        x = self.x_nhwc[images]
        n, _, _, c = x.shape
        if self.pointwise:
            return x.reshape(-1, c)
        _, _, kh, kw = self.weight.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        rows, depth = n * self.out_hw[0] * self.out_hw[1], kh * kw * c
        width = depth + 1 if self.bias_column else depth
        cols = scratch_buffer(xp, "cols", rows * width, x.dtype).reshape(rows, width)
        im2col(x, kh, kw, sh, sw, ph, pw, out=cols)                         # the patches, into the first columns
        if self.bias_column:
            cols[:, depth] = 1
        return cols

    def backward(self, gy):
        xp = get_array_module(gy)
        o = self.weight.shape[0]
        gy_mat = to_nhwc(gy).reshape(-1, o)                                 # (N*Ho*Wo, O)
        need_x, need_w = self.needs_grad[0], self.needs_grad[1]
        need_b = len(self.needs_grad) > 2 and self.needs_grad[2]
        gx = gw = gb = None
        groups = _groups(self._blocks(), WEIGHT_GRAD_GROUPS)
        gb_parts = None
        # dB: the last column of dW's product where cols carry the bias's ones (_backward_im2col), else column sums
        need_b_sums = need_b and not self.bias_column
        if need_b_sums and self.activation is None:
            gb = blocked_column_sums(xp, batch_blocks(xp, gy_mat.shape[0], gy_mat[0].nbytes),
                                     lambda rows: column_sums(gy_mat[rows]), o).astype(gy.dtype, copy=False)
        elif need_b_sums:                            # dL/dy is masked block by block: so are its column sums
            gb_parts = xp.zeros((len(groups), o), dtype=np.float64)
        if self.plan is not None:
            gx, gw = self._backward_winograd(xp, gy_mat, groups, gb_parts, need_x, need_w)
        else:
            gx, gw, gb_column = self._backward_im2col(xp, gy_mat, groups, gb_parts, need_x, need_w,
                                                      need_b and self.bias_column)
            if gb_column is not None:
                gb = gb_column
        if gb_parts is not None:
            gb = gb_parts.sum(axis=0).astype(gy.dtype)
        return (gx, gw, gb)[:len(self.needs_grad)]

    def _block_grad(self, xp, gy_mat, images, gb_part):
        """dL/dy of these images' rows (O columns): masked by y > 0 if a ReLU is fused, its column sums
        added to ``gb_part`` (a float64 row, or None)."""
        pixels = self.out_hw[0] * self.out_hw[1]
        rows = slice(images.start * pixels, images.stop * pixels)
        if self.activation is None:
            return gy_mat[rows]
        masked = scratch_array(xp, "gy_masked", gy_mat[rows].shape, gy_mat.dtype)
        relu_grad_into(gy_mat[rows], self.y_mat[rows], out=masked)          # ReLU's backward, in the cache
        if gb_part is not None:
            gb_part += column_sums(masked)
        return masked

    def _backward_im2col(self, xp, gy_mat, groups, gb_parts, need_x: bool, need_w: bool, need_b: bool):
        """(gx, gw, gb) by the column matrices, block by block (see the module docstring); gb only where cols
        carry the bias's column of ones: the last column of dW's product (else None)."""
        o, c, kh, kw = self.weight.shape
        n, h, w, _ = self.x_nhwc.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        depth = kh * kw * c
        width = depth + 1 if self.bias_column else depth
        need_product = need_w or need_b                                     # dy^T cols
        gw_parts = xp.empty((len(groups), o, width), dtype=gy_mat.dtype) if need_product else None
        gx_nhwc = xp.empty((n, h, w, c), dtype=gy_mat.dtype) if need_x else None

        def one_group(g):                            # this group's share of dW, and dx of its images
            for k, images in enumerate(groups[g]):
                gy_rows = self._block_grad(xp, gy_mat, images, None if gb_parts is None else gb_parts[g])
                if need_product:                                            # dW += dy^T cols
                    if k == 0:
                        xp.matmul(gy_rows.T, self._columns(xp, images), out=gw_parts[g])
                    else:
                        product = scratch_array(xp, "dw", gw_parts[g].shape, gy_mat.dtype)
                        gw_parts[g] += xp.matmul(gy_rows.T, self._columns(xp, images), out=product)
                if need_x:                                                  # dcols = dy W, then col2im
                    if self.pointwise:
                        xp.matmul(gy_rows, self.w_mat, out=gx_nhwc[images].reshape(-1, c))
                        continue
                    gcols = scratch_array(xp, "gcols", (gy_rows.shape[0], kh * kw * c), gy_mat.dtype)
                    xp.matmul(gy_rows, self.w_mat, out=gcols)
                    col2im(gcols.reshape(images.stop - images.start, *self.out_hw, kh, kw, c),
                           (images.stop - images.start, h, w, c), sh, sw, ph, pw, out=gx_nhwc[images])
        _run(xp, one_group, list(range(len(groups))))
        gw = gx = gb = None
        if need_product:
            gw_mat = gw_parts.sum(axis=0) if len(groups) > 1 else gw_parts[0]
            if need_w:
                gw = gw_mat[:, :depth].reshape(o, kh, kw, c).transpose(0, 3, 1, 2).copy()  # (O, C, kh, kw)
            if need_b:
                gb = gw_mat[:, depth].copy()                                # dy^T times the column of ones
        if need_x:
            gx = from_nhwc(gx_nhwc)
        return gx, gw, gb

    def _backward_winograd(self, xp, gy_mat, groups, gb_parts, need_x: bool, need_w: bool):
        """(gx, gw) through the Winograd tiles; dL/dU summed over the blocks as dW is for im2col."""
        plan = self.plan
        gu_parts = xp.empty((len(groups), *self.u.shape), dtype=gy_mat.dtype) if need_w else None
        gx_nhwc = xp.empty(self.x_nhwc.shape, dtype=gy_mat.dtype) if need_x else None

        def one_group(g):
            scratch = _scratch(xp)
            for k, images in enumerate(groups[g]):
                gy_rows = self._block_grad(xp, gy_mat, images, None if gb_parts is None else gb_parts[g])
                gy_block = gy_rows.reshape(images.stop - images.start, *self.out_hw, gy_mat.shape[1])
                g_products = plan.product_grads(xp, gy_block, scratch)            # (a*a, T, O)
                if need_w:                                                         # dU += V^T dL/d(products)
                    v_t = plan.transformed_tiles(xp, self.x_nhwc[images], scratch).transpose(0, 2, 1)
                    if k == 0:
                        xp.matmul(v_t, g_products, out=gu_parts[g])
                    else:
                        gu_parts[g] += xp.matmul(v_t, g_products, out=scratch("wg_du", self.u.shape, gy_mat.dtype))
                if need_x:
                    plan.input_grad(xp, g_products, self.u, gx_nhwc[images], scratch)
        gw = None
        with single_threaded_blas():                                        # as in _forward_winograd
            _run(xp, one_group, list(range(len(groups))))
            if need_w:
                gw = plan.weight_grad(xp, gu_parts.sum(axis=0) if len(groups) > 1 else gu_parts[0])
        return (from_nhwc(gx_nhwc) if need_x else None), gw


def _scratch(xp):
    """scratch(name, shape, dtype): this thread's reusable buffer of that name (minidl/kernels/blocking.py)."""
    return functools.partial(scratch_array, xp)


def conv2d(x, weight, bias=None, stride=1, padding=0, algorithm="auto", activation=None):
    """Convolve x (N, C, H, W) with weight (O, C, kh, kw); see the module docstring.

    ``algorithm``: "auto" (default), "im2col" or "winograd" (stride 1, kernel sides 2 to 5).
    ``activation``: None, or "relu" for relu(conv2d(...)) in one pass.
    """
    stride, padding = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv2d: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if activation not in (None, "relu"):
        raise ValueError(f"conv2d: activation must be None or 'relu', got {activation!r}")
    _check_conv_args(x, weight, bias, stride, padding)
    args = (x, weight) if bias is None else (x, weight, bias)
    y = Conv2d(stride, padding, algorithm, activation)(*args)
    if activation == "relu":
        y.relu_applied = True          # minidl.functional.relu(y) is y: see the module docstring
    return y


def _check_conv_args(x, weight, bias, stride, padding) -> None:
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected input of shape (N, C, H, W), got {shape_str(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected weight of shape (O, C, kh, kw), got {shape_str(weight.shape)}")
    n, c, h, w = x.shape
    o, wc, kh, kw = weight.shape
    if wc != c:
        raise ValueError(
            f"conv2d: input has {c} channels but weight expects {wc}: "
            f"input {shape_str(x.shape)}, weight {shape_str(weight.shape)}"
        )
    if min(stride) < 1:
        raise ValueError(f"conv2d: stride must be >= 1, got {stride}")
    if min(padding) < 0:
        raise ValueError(f"conv2d: padding must be >= 0, got {padding}")
    if kh > h + 2 * padding[0] or kw > w + 2 * padding[1]:
        raise ValueError(
            f"conv2d: kernel {kh}x{kw} is larger than the padded input {h + 2 * padding[0]}x{w + 2 * padding[1]} "
            f"(input {shape_str(x.shape)}, padding {padding})"
        )
    if bias is not None and tuple(bias.shape) != (o,):
        raise ValueError(f"conv2d: bias must have shape ({o},) for {o} output channels, got {shape_str(bias.shape)}")
    if x.dtype != weight.dtype:
        raise TypeError(f"conv2d: input dtype {x.dtype} differs from weight dtype {weight.dtype}")
