"""conv2d(..., activation="relu") and batch_norm2d(..., activation="relu"): the ReLU fused into the op's
blocks gives what the op then relu give.

y, dx and dW come out of the same arithmetic on the same values (the mask only moves from ReLU's backward
into the convolution's blocks), so they are compared for exact equality. db is a column sum of the masked
dL/dy, taken block by block instead of over the whole array: the same terms in another order, so within
twice the float64 bound of a sum of that many terms. Batch norm's sums already ran block by block on the
masked dL/dy, so all four of its results are compared for exact equality. (Batch norm's gradchecks, with
and without its ReLU: tests/test_cpu_fast_paths.py.)
"""
import numpy as np
import pytest

import minidl
import minidl.functional as F
import minidl.functional.conv as conv_module
from minidl import nn
from minidl.kernels import threads

from conftest import channels_last, make_tensor
from float_bounds import assert_within, gamma

# (x shape, w shape, stride, padding, algorithm): im2col with stride and padding, Winograd, the 1x1 path
CASES = [
    ((3, 2, 7, 6), (4, 2, 3, 2), (2, 1), 1, "im2col"),
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1, "winograd"),
    ((2, 3, 6, 5), (2, 3, 5, 5), 1, 2, "winograd"),
    ((2, 5, 4, 3), (3, 5, 1, 1), 1, 0, "im2col"),
]


def run(x, w, b, gy, stride, padding, algorithm, fused: bool):
    xt = make_tensor(channels_last(x), requires_grad=True)
    wt = minidl.tensor(w, requires_grad=True)
    bt = None if b is None else minidl.tensor(b, requires_grad=True)
    if fused:
        y = F.conv2d(xt, wt, bt, stride, padding, algorithm=algorithm, activation="relu")
    else:
        y = F.relu(F.conv2d(xt, wt, bt, stride, padding, algorithm=algorithm))
    y.backward(gy)
    return y.numpy(), xt.grad, wt.grad, None if bt is None else bt.grad


def bias_grad_bound(gy):
    """Twice gamma_M (float64) times sum |dL/dy| over the M = N*Ho*Wo pixels of each channel."""
    m = gy.shape[0] * gy.shape[2] * gy.shape[3]
    return 2 * gamma(m, np.float64) * np.abs(gy).sum(axis=(0, 2, 3))


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, algorithm", CASES)
def test_fused_relu_equals_conv_then_relu(rng, x_shape, w_shape, stride, padding, algorithm, with_bias):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0]) if with_bias else None
    shape = conv_module.Conv2d(conv_module.pair(stride, "stride", "t"),
                               conv_module.pair(padding, "padding", "t")).forward(x, w).shape
    gy = rng.standard_normal(shape)
    fused = run(x, w, b, gy, stride, padding, algorithm, True)
    plain = run(x, w, b, gy, stride, padding, algorithm, False)
    assert (fused[0] == 0).any() and (fused[0] > 0).any()             # the mask does something
    for got, want in zip(fused[:3], plain[:3]):
        np.testing.assert_array_equal(got, want)
    if with_bias:
        assert_within(fused[3], plain[3], bias_grad_bound(gy * (plain[0] > 0)), "db")


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, algorithm", CASES)
def test_fused_relu_gradcheck(rng, x_shape, w_shape, stride, padding, algorithm):
    x = make_tensor(channels_last(rng.standard_normal(x_shape)), requires_grad=True)
    w = minidl.tensor(rng.standard_normal(w_shape), requires_grad=True)
    b = minidl.tensor(rng.standard_normal(w_shape[0]), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, algorithm=algorithm,
                                                     activation="relu"), [x, w, b])


@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
def test_fused_relu_in_many_blocks_is_exact_for_any_thread_count(monkeypatch, restore_threads, rng, algorithm):
    monkeypatch.setitem(conv_module.COLUMN_BUFFER_BYTES, "numpy", 1)
    monkeypatch.setattr(conv_module, "WINOGRAD_BUFFER_BYTES", 1)               # one image a block
    x, w, b = rng.standard_normal((7, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gy = rng.standard_normal((7, 4, 6, 5))
    threads.set_num_threads(1)
    expected = run(x, w, b, gy, 1, 1, algorithm, True)
    for n_threads in (2, 3):
        threads.set_num_threads(n_threads)
        for got, want in zip(run(x, w, b, gy, 1, 1, algorithm, True), expected):
            np.testing.assert_array_equal(got, want)
    plain = run(x, w, b, gy, 1, 1, algorithm, False)
    for got, want in zip(expected[:3], plain[:3]):
        np.testing.assert_array_equal(got, want)
    assert_within(expected[3], plain[3], bias_grad_bound(gy * (plain[0] > 0)), "db in blocks")


def test_relu_of_a_fused_output_is_that_output(rng):
    x = minidl.tensor(rng.standard_normal((1, 2, 4, 4)))
    w = minidl.tensor(rng.standard_normal((3, 2, 3, 3)))
    y = F.conv2d(x, w, padding=1, activation="relu")
    assert F.relu(y) is y
    plain = F.conv2d(x, w, padding=1)
    assert F.relu(plain) is not plain
    with pytest.raises(ValueError, match=r"conv2d: activation must be None or 'relu', got 'tanh'"):
        F.conv2d(x, w, activation="tanh")


def float64_block(batch_norm: bool):
    minidl.manual_seed(0)
    block = nn.MLPConv(3, [6, 5, 4], kernel_size=3, padding=1, batch_norm=batch_norm)
    for p in block.parameters():
        p.data = p.data.astype(np.float64)
    return block


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlpconv_gives_what_its_layers_give_one_after_the_other(rng, batch_norm):
    """MLPConv fuses each Conv2d -> ReLU pair (with batch norm, each BatchNorm2d -> ReLU pair); the same
    modules in a plain Sequential do not. (The biases' gradients: test_mlpconv_gradcheck_with_its_fused_relus.)"""
    block = float64_block(batch_norm)
    x, gy = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 4, 6, 6))

    def outputs_and_grads(model):
        for p in block.parameters():
            p.grad = None
        xt = make_tensor(channels_last(x), requires_grad=True)
        y = model(xt)
        y.backward(gy)
        return [y.numpy(), xt.grad] + [p.grad for name, p in block.named_parameters() if not name.endswith("bias")]

    fused, plain = outputs_and_grads(block), outputs_and_grads(nn.Sequential(*block))
    for got, want in zip(fused, plain):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlpconv_gradcheck_with_its_fused_relus(rng, batch_norm):
    """Every parameter of the fused block, the biases included, against finite differences."""
    block = float64_block(batch_norm)
    x = make_tensor(channels_last(rng.standard_normal((2, 3, 5, 4))), requires_grad=True)
    assert minidl.gradcheck(lambda x, *params: block(x), [x, *block.parameters()])


# -- batch norm + ReLU -------------------------------------------------------------------------------

def run_batch_norm(x, gamma, beta, gy, training: bool, fused: bool):
    """(y, dx, dgamma, dbeta, running mean, running var) of batch norm and its ReLU, fused or one after the other."""
    xt = make_tensor(channels_last(x), requires_grad=True)
    gt, bt = minidl.tensor(gamma, requires_grad=True), minidl.tensor(beta, requires_grad=True)
    rm, rv = np.linspace(-0.5, 0.5, x.shape[1]), np.linspace(0.5, 2.0, x.shape[1])
    if fused:
        y = F.batch_norm2d(xt, rm, rv, gt, bt, training=training, activation="relu")
    else:
        y = F.relu(F.batch_norm2d(xt, rm, rv, gt, bt, training=training))
    y.backward(gy)
    return y.numpy(), xt.grad, gt.grad, bt.grad, rm, rv


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_batch_norm_relu_equals_batch_norm_then_relu(tiny_blocks, restore_threads, rng, training, n_threads):
    threads.set_num_threads(n_threads)
    x = 0.5 + 2.0 * rng.standard_normal((3, 4, 5, 6))
    gamma, beta, gy = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal((3, 4, 5, 6))
    fused = run_batch_norm(x, gamma, beta, gy, training, True)
    plain = run_batch_norm(x, gamma, beta, gy, training, False)
    assert (fused[0] == 0).any() and (fused[0] > 0).any()             # the mask does something
    for got, want in zip(fused, plain):
        np.testing.assert_array_equal(got, want)


def test_relu_of_a_fused_batch_norm_is_that_output_and_mlpconv_fuses_it(rng):
    x = minidl.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    y = F.batch_norm2d(x, activation="relu")
    assert F.relu(y) is y and y.creator.name == "BatchNorm2d+ReLU"
    with pytest.raises(ValueError, match=r"batch_norm2d: activation must be None or 'relu', got 'tanh'"):
        F.batch_norm2d(x, activation="tanh")
    block = float64_block(batch_norm=True)
    out = block(minidl.tensor(rng.standard_normal((2, 3, 5, 5))))
    assert out.creator.name == "BatchNorm2d+ReLU"
