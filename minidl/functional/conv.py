"""2-D convolution (cross-correlation, as in every deep learning library).

    y[n, o, h, w] = b[o] + sum_{c,i,j} W[o, c, i, j] * x_pad[n, c, h*s + i, w*s + j]

Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, Ho, Wo)
with Ho = floor((H + 2p - kh) / s) + 1.

How it is computed (channels-last inside, see minidl/kernels/layout.py):

* general kernel: im2col turns x into cols (N*Ho*Wo, kh*kw*C); then
  ``y = cols @ W_mat.T`` is one matrix product, with W_mat (O, kh*kw*C).
  Backward: ``dW_mat = dy.T @ cols``, ``dcols = dy @ W_mat``, then col2im.
* 1x1 kernel, stride 1, no padding ("cross-channel parametric pooling" in
  NIN): every pixel's channel vector goes through the same fully connected
  layer, so ``y = x_mat @ W.T`` with x_mat (N*H*W, C), no im2col at all.

The column matrix is kh*kw times larger than the input (315 MB for NIN's
second layer at batch 128), so it is never built whole: the batch is cut into
chunks of images whose columns fit in :data:`COLUMN_BUFFER_BYTES`, one buffer
is reused for every chunk, and backward rebuilds each chunk's columns instead
of keeping them from the forward pass. Same arithmetic, far less memory
traffic; on a CPU the buffer stays in cache-friendly sizes. On NumPy the
copies into the columns, the bias and its gradient run in blocks shared between
the cores (minidl/kernels/threads.py); the products use OpenBLAS's own threads.
"""
from __future__ import annotations

from ..backends import get_array_module, is_cupy_array
from ..engine.function import Function
from ..kernels.blocking import batch_blocks
from ..kernels.columns import blocked_column_sums, column_sums
from ..kernels.im2col import col2im, conv_output_size, im2col
from ..kernels.layout import from_nhwc, to_nhwc
from ..kernels.threads import run_blocks
from ._utils import pair, shape_str

#: byte budget of one chunk's column matrix, per backend
COLUMN_BUFFER_BYTES = {"numpy": 32 * 2**20, "cupy": 1024 * 2**20}


def _image_chunks(n_images: int, bytes_per_image: int, backend: str):
    per_chunk = max(1, COLUMN_BUFFER_BYTES[backend] // max(1, bytes_per_image))
    for start in range(0, n_images, per_chunk):
        yield start, min(n_images, start + per_chunk)


class Conv2d(Function):
    def __init__(self, stride=(1, 1), padding=(0, 0)):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        self.pointwise = (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)
        self.x_nhwc = to_nhwc(x)
        self.weight = weight
        self.w_mat = weight.transpose(0, 2, 3, 1).reshape(o, kh * kw * c)    # (O, kh*kw*C), (i, j, c) order

        if self.pointwise:                                                  # one product, no copy of x
            y = self.x_nhwc.reshape(n * h * w, c) @ self.w_mat.T
        else:
            y = xp.empty((n * out_h * out_w, o), dtype=x.dtype)
            for start, stop, cols in self._columns(xp):
                rows = slice(start * out_h * out_w, stop * out_h * out_w)
                xp.matmul(cols, self.w_mat.T, out=y[rows])
        if bias is not None:
            run_blocks(lambda rows: xp.add(y[rows], bias, out=y[rows]), batch_blocks(xp, y.shape[0], y[0].nbytes))
        return from_nhwc(y.reshape(n, out_h, out_w, o))

    def _chunks(self):
        """(first image, last image + 1) of each chunk, and the column elements per image."""
        n, h, w, c = self.x_nhwc.shape
        o, _, kh, kw = self.weight.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        per_image = conv_output_size(h, kh, sh, ph) * conv_output_size(w, kw, sw, pw) * kh * kw * c
        backend = "cupy" if is_cupy_array(self.x_nhwc) else "numpy"
        return list(_image_chunks(n, per_image * self.x_nhwc.itemsize, backend)), per_image

    def _columns(self, xp):
        """Yield (first image, last image + 1, cols of those images as (rows, kh*kw*C)), one buffer reused."""
        _, _, kh, kw = self.weight.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        chunks, per_image = self._chunks()
        buffer = None
        for start, stop in chunks:
            if buffer is None:
                buffer = xp.empty((stop - start) * per_image, dtype=self.x_nhwc.dtype)
            cols = im2col(self.x_nhwc[start:stop], kh, kw, sh, sw, ph, pw, out=buffer)
            yield start, stop, cols.reshape(-1, kh * kw * self.x_nhwc.shape[3])

    def backward(self, gy):
        xp = get_array_module(gy)
        o, c, kh, kw = self.weight.shape
        n, h, w, _ = self.x_nhwc.shape
        gy_nhwc = to_nhwc(gy)
        out_h, out_w = gy_nhwc.shape[1:3]
        gy_mat = gy_nhwc.reshape(-1, o)                                     # (N*Ho*Wo, O)
        need_x, need_w = self.needs_grad[0], self.needs_grad[1]
        need_b = len(self.needs_grad) > 2 and self.needs_grad[2]
        gx = gw = gb = None
        if need_b:
            gb = blocked_column_sums(xp, batch_blocks(xp, gy_mat.shape[0], gy_mat[0].nbytes),
                                     lambda rows: column_sums(gy_mat[rows]), o).astype(gy.dtype, copy=False)
        if self.pointwise:
            x_mat = self.x_nhwc.reshape(n * h * w, c)
            if need_w:
                gw = (gy_mat.T @ x_mat).reshape(o, c, 1, 1)
            if need_x:
                gx = from_nhwc((gy_mat @ self.w_mat).reshape(n, h, w, c))
            return (gx, gw, gb)[:len(self.needs_grad)]

        (sh, sw), (ph, pw) = self.stride, self.padding
        gw_mat = xp.zeros((o, kh * kw * c), dtype=gy.dtype) if need_w else None
        gx_nhwc = xp.empty((n, h, w, c), dtype=gy.dtype) if need_x else None
        gcols_buffer = None
        chunks = self._columns(xp) if need_w else ((start, stop, None) for start, stop in self._chunks()[0])
        for start, stop, cols in chunks:
            gy_rows = gy_mat[start * out_h * out_w: stop * out_h * out_w]
            if need_w:
                gw_mat += gy_rows.T @ cols                                  # dW += dy^T cols
            if need_x:
                if gcols_buffer is None:
                    gcols_buffer = xp.empty((gy_rows.shape[0], kh * kw * c), dtype=gy.dtype)
                gcols = xp.matmul(gy_rows, self.w_mat, out=gcols_buffer[:gy_rows.shape[0]])
                col2im(gcols.reshape(stop - start, out_h, out_w, kh, kw, c), (stop - start, h, w, c),
                       sh, sw, ph, pw, out=gx_nhwc[start:stop])
        if need_w:
            gw = gw_mat.reshape(o, kh, kw, c).transpose(0, 3, 1, 2).copy()  # back to (O, C, kh, kw)
        if need_x:
            gx = from_nhwc(gx_nhwc)
        return (gx, gw, gb)[:len(self.needs_grad)]


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Convolve x (N, C, H, W) with weight (O, C, kh, kw); see the module docstring."""
    stride, padding = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    _check_conv_args(x, weight, bias, stride, padding)
    args = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d(stride, padding)(*args)


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
