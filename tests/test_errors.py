"""Bad input gets a clear error naming the op and the shapes or values involved."""
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import backends


def t(*shape):
    return minidl.tensor(np.zeros(shape, dtype=np.float32))


def test_conv2d_errors():
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but weight expects 4.*\(2, 3, 8, 8\).*\(5, 4, 3, 3\)"):
        F.conv2d(t(2, 3, 8, 8), t(5, 4, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: kernel 5x5 is larger than the padded input 4x4"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(5,\)"):
        F.conv2d(t(1, 3, 8, 8), t(5, 3, 3, 3), t(4))
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape \(N, C, H, W\), got \(3, 8, 8\)"):
        F.conv2d(t(3, 8, 8), t(5, 3, 3, 3))


def test_pool_errors():
    with pytest.raises(ValueError, match="max_pool2d: padding .* at most half the kernel size"):
        F.max_pool2d(t(1, 1, 8, 8), 3, 2, 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: expected input of shape \(N, C, H, W\)"):
        F.avg_pool2d(t(8, 8), 2)


def test_cross_entropy_label_errors():
    logits = t(3, 10)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\] for 10 classes, got values in \[0, 10\]"):
        F.softmax_cross_entropy(logits, np.array([0, 10, 3]))
    with pytest.raises(ValueError, match=r"got values in \[-1, 3\]"):
        F.softmax_cross_entropy(logits, np.array([-1, 2, 3]))
    with pytest.raises(TypeError, match="labels must be integers.*float64"):
        F.softmax_cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        F.softmax_cross_entropy(logits, np.array([0, 1]))


def test_shape_errors():
    with pytest.raises(ValueError, match=r"linear: x has 4 features but weight expects 5"):
        F.linear(t(2, 4), t(3, 5))
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: x \(2, 3\) @ y \(4, 5\)"):
        t(2, 3) @ t(4, 5)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\)"):
        t(2, 3).reshape(4, 2)


def test_cupy_backend_without_cupy_or_gpu_is_a_clear_error(monkeypatch):
    if minidl.cupy_available():
        pytest.skip("a GPU is present here")
    with pytest.raises(minidl.BackendError, match="cupy|CuPy"):
        minidl.set_backend("cupy")
    assert minidl.get_backend() == "numpy"


def test_mixing_backends_in_one_op_names_the_op(monkeypatch):
    a, b = t(2, 2), t(2, 2)
    real = backends.backend_of
    monkeypatch.setattr(backends, "backend_of", lambda arr: "cupy" if arr is b.data else real(arr))
    with pytest.raises(TypeError, match=r"Add: inputs live on different backends.*numpy \(2, 2\).*cupy \(2, 2\)"):
        a + b
