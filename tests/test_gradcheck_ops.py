"""Float64 gradient checks (central differences) of every differentiable op, on awkward shapes."""
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl.functional import conv as conv_module

from conftest import channels_last


def T(xp, a, grad=True):
    return minidl.Tensor(xp.asarray(a), requires_grad=grad)


CONV_CASES = [
    # (x shape, weight shape, stride, padding)
    ((1, 3, 7, 5), (4, 3, 3, 3), 1, 1),            # batch 1, odd sizes
    ((2, 2, 7, 6), (3, 2, 3, 2), 2, 1),            # non-square kernel, stride 2
    ((2, 3, 6, 7), (2, 3, 2, 3), (2, 1), (0, 2)),  # stride and padding pairs
    ((2, 4, 5, 5), (3, 4, 1, 1), 1, 0),            # 1x1: the pointwise fast path
    ((1, 2, 5, 4), (3, 2, 1, 1), 2, 1),            # 1x1 with stride/padding: the general path
    ((2, 2, 3, 3), (2, 2, 5, 5), 1, 1),            # kernel as large as the padded input
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_conv2d_gradcheck(xp, rng, x_shape, w_shape, stride, padding, layout):
    x = rng.standard_normal(x_shape)
    x = channels_last(x) if layout == "channels_last" else x
    args = [T(xp, x), T(xp, rng.standard_normal(w_shape)), T(xp, rng.standard_normal(w_shape[0]))]
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), args)


def test_conv2d_gradcheck_without_bias_and_in_several_chunks(xp, rng, monkeypatch):
    monkeypatch.setitem(conv_module.COLUMN_BUFFER_BYTES, minidl.get_backend(), 1500)   # forces ~1 image per chunk
    args = [T(xp, rng.standard_normal((3, 2, 5, 6))), T(xp, rng.standard_normal((3, 2, 3, 3)))]
    assert minidl.gradcheck(lambda x, w: F.conv2d(x, w, None, 2, 1), args)


POOL_CASES = [((1, 2, 7, 5), 3, 2, 1), ((2, 3, 6, 6), 2, 2, 0), ((2, 2, 5, 7), (3, 2), (1, 2), (1, 1)),
              ((1, 1, 4, 4), 4, 1, 2), ((2, 2, 9, 9), 3, 2, 1)]


@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
@pytest.mark.parametrize("op", ["max", "avg"])
def test_pool_gradcheck(xp, rng, shape, k, s, p, op):
    fn = F.max_pool2d if op == "max" else F.avg_pool2d
    x = T(xp, channels_last(rng.standard_normal(shape)))
    assert minidl.gradcheck(lambda x: fn(x, k, s, p), [x])


def test_global_avg_pool_relu_dropout_gradcheck(xp, rng):
    x = T(xp, rng.standard_normal((2, 3, 5, 3)))
    assert minidl.gradcheck(lambda x: F.global_avg_pool2d(x), [x])
    assert minidl.gradcheck(lambda x: F.relu(x), [x])

    def fixed_dropout(x):
        minidl.manual_seed(7)                 # the same mask at every evaluation
        return F.dropout(x, 0.3, training=True)
    assert minidl.gradcheck(fixed_dropout, [x])


def test_linear_softmax_losses_gradcheck(xp, rng):
    x, w, b = T(xp, rng.standard_normal((5, 4))), T(xp, rng.standard_normal((3, 4))), T(xp, rng.standard_normal(3))
    assert minidl.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])
    logits = T(xp, rng.standard_normal((5, 7)))
    labels = xp.asarray(np.array([0, 6, 3, 3, 1]))
    assert minidl.gradcheck(lambda z: F.softmax_cross_entropy(z, labels), [logits])
    one = T(xp, rng.standard_normal((1, 3)))
    assert minidl.gradcheck(lambda z: F.softmax_cross_entropy(z, xp.asarray(np.array([2]))), [one])
    assert minidl.gradcheck(lambda z: F.log_softmax(z, axis=1), [logits])
    assert minidl.gradcheck(lambda z: F.softmax(z, axis=0), [logits])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(xp, rng, training):
    x = T(xp, channels_last(rng.standard_normal((3, 2, 3, 5))))
    g, b = T(xp, rng.standard_normal(2) + 2), T(xp, rng.standard_normal(2))
    rm, rv = xp.asarray(rng.standard_normal(2)), xp.asarray(rng.random(2) + 0.5)
    assert minidl.gradcheck(lambda x, g, b: F.batch_norm2d(x, rm.copy(), rv.copy(), g, b, training=training), [x, g, b])


def test_elementwise_and_reduction_gradchecks(xp, rng):
    a, b = T(xp, rng.standard_normal((3, 1))), T(xp, rng.standard_normal((1, 4)))
    pos = T(xp, rng.random((2, 3)) + 0.5)
    c = T(xp, rng.standard_normal((2, 3, 4)))
    checks = [
        (lambda a, b: a + b, [a, b]), (lambda a, b: a - b, [a, b]), (lambda a, b: a * b, [a, b]),
        (lambda a, b: a / (b * b + 1), [a, b]), (lambda a: -a * 3 + 1, [a]), (lambda p: p ** 3.5, [pos]),
        (lambda p: p.exp(), [pos]), (lambda p: p.log(), [pos]), (lambda p: 2 / p, [pos]),
        (lambda c: c.sum(axis=(0, 2)), [c]), (lambda c: c.mean(axis=-1, keepdims=True), [c]),
        (lambda c: c.max(axis=1), [c]), (lambda c: c.max(), [c]),
        (lambda c: c.reshape(4, 6).transpose(), [c]), (lambda c: c.transpose(2, 0, 1)[1:, :, ::2], [c]),
        (lambda c: c[xp.asarray(np.array([0, 1, 1])), 2], [c]),
        (lambda a, b: F.concatenate([a.reshape(1, 3), b], axis=1), [a, b]),
        (lambda c: F.flatten(c), [c]),
    ]
    for fn, args in checks:
        assert minidl.gradcheck(fn, args)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((2, 3), (3,)),
                                    ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_gradcheck(xp, rng, shapes):
    a, b = T(xp, rng.standard_normal(shapes[0])), T(xp, rng.standard_normal(shapes[1]))
    assert minidl.gradcheck(lambda a, b: a @ b, [a, b])


def test_gradcheck_catches_a_wrong_backward(rng):
    class WrongSquare(minidl.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, gy):
            return gy * self.x          # should be 2 * x * gy
    x = minidl.tensor(rng.standard_normal(4), requires_grad=True)
    with pytest.raises(minidl.GradcheckError, match="input 0"):
        minidl.gradcheck(lambda x: WrongSquare()(x), [x])
