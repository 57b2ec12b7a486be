"""Bad input gets a clear error naming the op and the shapes or values involved."""
import re

import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import backends, nn


def t(*shape, dtype=np.float32):
    return minidl.tensor(np.zeros(shape, dtype=dtype))


# ---------------------------------------------------------------------------- conv2d
def test_conv2d_mismatched_channels():
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but weight expects 4.*\(2, 3, 8, 8\).*\(5, 4, 3, 3\)"):
        F.conv2d(t(2, 3, 8, 8), t(5, 4, 3, 3))


def test_conv2d_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"conv2d: kernel 5x5 is larger than the padded input 4x4"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: kernel 3x6 is larger than the padded input 7x5.*\(1, 2, 5, 3\)"):
        F.conv2d(t(1, 2, 5, 3), t(1, 2, 3, 6), padding=(1, 1))
    F.conv2d(t(1, 2, 5, 3), t(1, 2, 3, 5), padding=(1, 1))       # exactly the padded size is fine


def test_conv2d_wrong_bias_shape():
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(5,\) for 5 output channels, got \(4\)"):
        F.conv2d(t(1, 3, 8, 8), t(5, 3, 3, 3), t(4))
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(5,\)"):
        F.conv2d(t(1, 3, 8, 8), t(5, 3, 3, 3), t(5, 1))


def test_conv2d_non_4d_input_or_weight():
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape \(N, C, H, W\), got \(3, 8, 8\)"):
        F.conv2d(t(3, 8, 8), t(5, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: expected weight of shape \(O, C, kh, kw\), got \(5, 3, 3\)"):
        F.conv2d(t(1, 3, 8, 8), t(5, 3, 3))


def test_conv2d_bad_stride_padding_and_dtypes():
    with pytest.raises(ValueError, match="conv2d: stride must be >= 1"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match="conv2d: padding must be >= 0"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), padding=(0, -1))
    with pytest.raises(ValueError, match="conv2d: stride must be an int or a pair of ints"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), stride=(1, 1, 1))
    with pytest.raises(TypeError, match="conv2d: input dtype float32 differs from weight dtype float64"):
        F.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3, dtype=np.float64))


# ---------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_padding_more_than_half_the_kernel(op):
    with pytest.raises(ValueError, match=rf"{op}: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        getattr(F, op)(t(1, 1, 8, 8), 3, 2, 2)
    with pytest.raises(ValueError, match=rf"{op}: padding \(0, 2\) must be at most half the kernel size \(2, 3\)"):
        getattr(F, op)(t(1, 1, 8, 8), (2, 3), 1, (0, 2))
    getattr(F, op)(t(1, 1, 8, 8), 3, 2, 1)                   # exactly half (rounded down) is fine


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_other_argument_errors(op):
    fn = getattr(F, op)
    with pytest.raises(ValueError, match=rf"{op}: expected input of shape \(N, C, H, W\), got \(8, 8\)"):
        fn(t(8, 8), 2)
    with pytest.raises(ValueError, match=rf"{op}: kernel \(5, 5\) is larger than the padded input 4x4"):
        fn(t(1, 1, 4, 4), 5)
    with pytest.raises(ValueError, match=rf"{op}: need kernel_size >= 1, stride >= 1"):
        fn(t(1, 1, 4, 4), 2, 0)
    with pytest.raises(ValueError, match=r"global_avg_pool2d: expected input of shape \(N, C, H, W\), got \(2, 3\)"):
        F.global_avg_pool2d(t(2, 3))


# ---------------------------------------------------------------------------- kernel_size, stride, padding values
NOT_INT_PAIRS = [1.5, 2.0, np.float64(2.0), True, "2", (1, 1.5), (2, False), (2,), (1, 2, 3)]


@pytest.mark.parametrize("bad", NOT_INT_PAIRS, ids=repr)
def test_non_integer_kernel_size_stride_or_padding_names_the_op_and_argument(bad):
    """1.5 used to be truncated to 1 (and True, "2" taken as 1, 2); floats are refused even when whole, as in PyTorch."""
    def message(op, name):
        return rf"^{op}: {name} must be an int or a pair of ints, got {re.escape(repr(bad))}$"

    x, w = t(1, 1, 6, 6), t(1, 1, 3, 3)
    for name in ("stride", "padding"):
        with pytest.raises(ValueError, match=message("conv2d", name)):
            F.conv2d(x, w, **{name: bad})
    for op in ("max_pool2d", "avg_pool2d"):
        for name in ("kernel_size", "stride", "padding"):
            args = {"kernel_size": 3, "stride": 2, "padding": 1, name: bad}
            with pytest.raises(ValueError, match=message(op, name)):
                getattr(F, op)(x, **args)
            with pytest.raises(ValueError, match=message(op, name)):
                getattr(nn, {"max_pool2d": "MaxPool2d", "avg_pool2d": "AvgPool2d"}[op])(**args)(x)
    with pytest.raises(ValueError, match=message("Conv2d", "kernel_size")):
        nn.Conv2d(1, 1, bad)
    with pytest.raises(ValueError, match=message("conv2d", "stride")):
        nn.Conv2d(1, 1, 3, stride=bad)(x)


def test_numpy_integer_kernel_size_stride_and_padding_are_accepted(rng):
    x, w = minidl.tensor(rng.standard_normal((1, 2, 7, 7))), minidl.tensor(rng.standard_normal((3, 2, 3, 3)))
    np.testing.assert_array_equal(F.conv2d(x, w, stride=np.int64(2), padding=(np.int32(1), np.uint8(1))).numpy(),
                                  F.conv2d(x, w, stride=2, padding=1).numpy())
    np.testing.assert_array_equal(F.max_pool2d(x, np.int64(3), [np.int16(2), 2], np.int64(1)).numpy(),
                                  F.max_pool2d(x, 3, 2, 1).numpy())
    assert nn.Conv2d(2, 3, (np.int64(3), 1)).kernel_size == (3, 1)


# ---------------------------------------------------------------------------- cross-entropy
def test_cross_entropy_label_out_of_range():
    logits = t(3, 10)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\] for 10 classes, got values in \[0, 10\]"):
        F.softmax_cross_entropy(logits, np.array([0, 10, 3]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels must lie in \[0, 9\].*got values in \[-1, 3\]"):
        F.softmax_cross_entropy(logits, np.array([-1, 2, 3]))


def test_cross_entropy_float_labels_and_wrong_shapes():
    logits = t(3, 10)
    with pytest.raises(TypeError, match="softmax_cross_entropy: labels must be integers.*float64"):
        F.softmax_cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\) to match logits \(3, 10\), got \(2\)"):
        F.softmax_cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\).*got \(3, 1\)"):
        F.softmax_cross_entropy(logits, np.array([[0], [1], [2]]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: expected logits of shape \(N, K\), got \(3, 10, 1\)"):
        F.softmax_cross_entropy(t(3, 10, 1), np.array([0, 1, 2]))


# ---------------------------------------------------------------------------- linear, matmul, shapes
def test_linear_errors():
    with pytest.raises(ValueError, match=r"linear: x has 4 features but weight expects 5: x \(2, 4\), weight \(3, 5\)"):
        F.linear(t(2, 4), t(3, 5))
    with pytest.raises(ValueError, match=r"linear: expected x \(N, in\) and weight \(out, in\), got x \(2, 4, 1\)"):
        F.linear(t(2, 4, 1), t(3, 4))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(3,\), got \(4\)"):
        F.linear(t(2, 4), t(3, 4), t(4))


def test_matmul_inner_dimensions():
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: x \(2, 3\) @ y \(4, 5\) \(3 vs 4\)"):
        t(2, 3) @ t(4, 5)
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: x \(3,\) @ y \(4,\)"):
        t(3) @ t(4)
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ: x \(2, 2, 3\) @ y \(2, 2, 3\)"):
        F.matmul(t(2, 2, 3), t(2, 2, 3))
    with pytest.raises(ValueError, match="matmul: operands must have at least one dimension"):
        F.matmul(minidl.tensor(np.float32(2.0)), t(3))


def test_reshape_and_concatenate_errors():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"):
        t(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match=r"concatenate: shapes \(2, 3\), \(2, 4\) do not match outside axis 0"):
        F.concatenate([t(2, 3), t(2, 4)], axis=0)
    with pytest.raises(ValueError, match="concatenate: needs at least one tensor"):
        F.concatenate([])


def test_batch_norm_and_dropout_errors():
    with pytest.raises(ValueError, match=r"batch_norm2d: expected input of shape \(N, C, H, W\), got \(2, 3\)"):
        F.batch_norm2d(t(2, 3))
    with pytest.raises(ValueError, match=r"batch_norm2d: running_mean must have shape \(3,\) for 3 channels, got \(4\)"):
        F.batch_norm2d(t(2, 3, 2, 2), np.zeros(4, np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="batch_norm2d: evaluation mode needs running_mean and running_var"):
        F.batch_norm2d(t(2, 3, 2, 2), training=False)
    with pytest.raises(ValueError, match=r"batch_norm2d: training needs more than one value per channel, got input \(1, 3, 1, 1\)"):
        F.batch_norm2d(t(1, 3, 1, 1))
    for p in (1.0, -0.1):
        with pytest.raises(ValueError, match=rf"dropout: p must be in \[0, 1\), got {p}"):
            F.dropout(t(2, 2), p)


# ---------------------------------------------------------------------------- engine
def test_backward_returning_a_wrong_shape_names_the_function():
    class Broken(minidl.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy.sum(axis=0)

    x = minidl.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward returned a gradient of shape \(3,\) for input 0, of shape \(2, 3\)"):
        Broken()(x).sum().backward()


def test_backward_returning_too_few_gradients_names_the_function():
    class TooFew(minidl.Function):
        def forward(self, x, y):
            return x * y

        def backward(self, gy):
            return gy * self.inputs[1].data              # the gradient of y is missing

    x = minidl.tensor(np.ones((2, 3)), requires_grad=True)
    y = minidl.tensor(np.full((2, 3), 2.0), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"TooFew.backward returned 1 gradient\(s\) for 2 input\(s\)"):
        TooFew()(x, y).sum().backward()
    assert y.grad is None


def test_backward_returning_a_tensor_names_the_function():
    class ReturnsTensor(minidl.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return minidl.tensor(gy * 2)

    x = minidl.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(TypeError, match=r"ReturnsTensor.backward returned a Tensor as the gradient of input 0; "
                                        r"expected a NumPy or CuPy array"):
        ReturnsTensor()(x).sum().backward()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_gradcheck_fails_when_backward_gives_nan_or_inf(bad):
    class NotFinite(minidl.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            g = 2 * gy
            g[0, 1] = bad
            return g

    x = minidl.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    with pytest.raises(minidl.GradcheckError,
                       match=r"input 0 of shape \(2, 3\): the analytic gradient is not finite; .* at \(0, 1\)"):
        minidl.gradcheck(lambda x: NotFinite()(x), [x])
    assert minidl.gradcheck(lambda x: NotFinite()(x), [x], raise_exception=False) is False


def test_gradcheck_fails_when_the_function_itself_is_not_finite_nearby():
    x = minidl.tensor(np.array([0.0, 1.0]), requires_grad=True)          # sqrt's slope is infinite at 0
    with pytest.raises(minidl.GradcheckError, match="gradient is not finite"):
        minidl.gradcheck(lambda x: x ** 0.5, [x], eps=1e-6)


def test_gradcheck_catches_a_wrong_backward_and_float32():
    class WrongSquare(minidl.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, gy):
            return gy * self.x                 # should be 2 x

    x = minidl.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(minidl.GradcheckError, match=r"gradcheck: input 0 of shape \(3,\)"):
        minidl.gradcheck(lambda x: WrongSquare()(x), [x])
    assert minidl.gradcheck(lambda x: WrongSquare()(x), [x], raise_exception=False) is False
    with pytest.raises(TypeError, match="gradcheck: input of dtype float32"):
        minidl.gradcheck(lambda x: x * x, [minidl.tensor([1.0], requires_grad=True)])


def test_tensor_needs_an_array():
    with pytest.raises(TypeError, match="Tensor: data must be a numpy or cupy array, got list"):
        minidl.Tensor([1.0, 2.0])


# ---------------------------------------------------------------------------- backends
def test_cupy_backend_without_cupy_or_gpu_is_a_clear_error():
    if minidl.cupy_available():
        pytest.skip("a GPU is present here")
    with pytest.raises(minidl.BackendError, match="cupy.*(not installed|no CUDA GPU|no CUDA)|CuPy"):
        minidl.set_backend("cupy")
    assert minidl.get_backend() == "numpy"
    with pytest.raises(minidl.BackendError, match="CuPy"):
        with minidl.backend("cupy"):
            pass
    assert minidl.get_backend() == "numpy"
    with pytest.raises(minidl.BackendError, match="CuPy"):
        minidl.tensor([1.0], backend="cupy")
    with pytest.raises(minidl.BackendError, match="CuPy"):
        minidl.tensor([1.0]).to("cupy")
    with pytest.raises(minidl.BackendError, match="CuPy"):
        backends.array_module("cupy")
    assert issubclass(minidl.BackendError, RuntimeError)


def _pretend_cupy(monkeypatch, *arrays):
    real = backends.backend_of
    ids = {id(a) for a in arrays}
    monkeypatch.setattr(backends, "backend_of", lambda arr: "cupy" if id(arr) in ids else real(arr))


def test_mixing_backends_in_one_op_names_the_op(monkeypatch):
    a, b = t(2, 2), t(2, 2)
    _pretend_cupy(monkeypatch, b.data)
    with pytest.raises(TypeError, match=r"Add: inputs live on different backends \(input 0: numpy \(2, 2\), input 1: cupy \(2, 2\)\)"):
        a + b
    with pytest.raises(TypeError, match=r"MatMul: inputs live on different backends.*tensor.to\('numpy'\)"):
        a @ b
    with pytest.raises(TypeError, match=r"Mul: inputs live on different backends"):
        b * a


def test_mixing_backends_in_conv_and_linear(monkeypatch):
    x, w, b = t(1, 2, 4, 4), t(3, 2, 3, 3), t(3)
    _pretend_cupy(monkeypatch, w.data, b.data)
    with pytest.raises(TypeError, match=r"Conv2d: inputs live on different backends.*input 1: cupy \(3, 2, 3, 3\)"):
        F.conv2d(x, w, b)
    xl, wl = t(2, 4), t(3, 4)
    _pretend_cupy(monkeypatch, xl.data)
    with pytest.raises(TypeError, match=r"Linear: inputs live on different backends.*input 0: cupy \(2, 4\)"):
        F.linear(xl, wl)


def test_matmul_batch_dimensions_that_do_not_broadcast():
    """Batch dims (2,) vs (3,) cannot broadcast: the error must name matmul and both shapes, not NumPy internals."""
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3, 4\).*\(3, 4, 5\)"):
        F.matmul(t(2, 3, 4), t(3, 4, 5))


# ---------------------------------------------------------------------------- CuPy installed, GPU not usable
class _FakeRuntime:
    def __init__(self, count=None, error=None):
        self.count, self.error = count, error

    def getDeviceCount(self):
        if self.error is not None:
            raise self.error
        return self.count


def _install_fake_cupy(monkeypatch, runtime):
    """Pretend `import cupy` works but the CUDA runtime reports no usable device."""
    import sys
    import types
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=runtime)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backends, "_cupy", None)       # forget any real CuPy found earlier
    monkeypatch.setattr(backends, "_active", "numpy")


@pytest.mark.parametrize("runtime,message", [
    (_FakeRuntime(error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")),
     r"CuPy is installed but no CUDA GPU is usable \(RuntimeError: cudaErrorNoDevice"),
    (_FakeRuntime(count=0), r"CuPy is installed but no CUDA GPU is visible; use the 'numpy' backend"),
])
def test_cupy_installed_but_no_gpu_is_a_clear_backend_error(monkeypatch, runtime, message):
    _install_fake_cupy(monkeypatch, runtime)
    assert minidl.cupy_available() is False
    assert backends.resolve("auto") == "numpy"
    with pytest.raises(minidl.BackendError, match=message):
        minidl.set_backend("cupy")
    assert minidl.get_backend() == "numpy"
    with pytest.raises(minidl.BackendError, match=message):
        minidl.tensor([1.0], backend="cupy")
    with pytest.raises(minidl.BackendError, match=message):
        with minidl.backend("cupy"):
            pass
    assert minidl.get_backend() == "numpy"


def test_cupy_not_installed_is_a_clear_backend_error(monkeypatch):
    """Simulated even where CuPy exists: a failing import names the missing package and how to install it."""
    import sys
    monkeypatch.setitem(sys.modules, "cupy", None)      # `import cupy` raises ImportError
    monkeypatch.setattr(backends, "_cupy", None)
    monkeypatch.setattr(backends, "_active", "numpy")
    assert minidl.cupy_available() is False
    with pytest.raises(minidl.BackendError, match=r"the 'cupy' backend needs CuPy, which is not installed.*pip install"):
        minidl.set_backend("cupy")
    assert minidl.get_backend() == "numpy"


def test_mixing_backends_checked_by_the_function_itself(monkeypatch):
    """Function._check_same_backend is the guard every op goes through; it names the op and each input."""
    a, b, c = t(2, 3), t(3), t(1)
    _pretend_cupy(monkeypatch, c.data)
    from minidl.engine.function import Function
    from minidl.functional.arithmetic import Add
    Function._check_same_backend(Add(), [a, b])          # all numpy: no error
    with pytest.raises(TypeError, match=r"Add: inputs live on different backends \(input 0: numpy \(2, 3\), "
                                        r"input 1: numpy \(3,\), input 2: cupy \(1,\)\)"):
        Add()._check_same_backend([a, b, c])
    with pytest.raises(TypeError, match=r"Concatenate: inputs live on different backends"):
        F.concatenate([t(1), c], axis=0)


def test_concatenate_rank_mismatch_and_bad_axis_name_the_op():
    """(2, 3) with (3,) along axis 1, or axis 2 of 2-D tensors: a ValueError naming concatenate, not a bare IndexError."""
    with pytest.raises(ValueError, match=r"concatenate: .*\(2, 3\), \(3,\)"):
        F.concatenate([t(2, 3), t(3)], axis=1)
    with pytest.raises(ValueError, match=r"concatenate: .*axis 2"):
        F.concatenate([t(2, 3), t(2, 3)], axis=2)
