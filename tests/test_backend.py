"""The backend switch (environment, set_backend, context), and NumPy vs CuPy where a GPU is present."""
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import backends
from minidl.models import NIN

from conftest import CUPY_SKIP_REASON, channels_last, host, is_channels_last, make_tensor


@pytest.fixture
def fresh_backend(monkeypatch):
    """Forget the cached active backend, so that MINIDL_BACKEND is read again; restored afterwards."""
    monkeypatch.setattr(backends, "_active", None)
    return monkeypatch


def test_default_is_numpy_without_environment(fresh_backend):
    fresh_backend.delenv("MINIDL_BACKEND", raising=False)
    assert minidl.get_backend() == "numpy"
    assert backends._active == "numpy"
    assert minidl.tensor([1.0]).backend == "numpy"


@pytest.mark.parametrize("value", ["numpy", "NumPy", " numpy ", "auto"])
def test_environment_variable_selects_the_backend(fresh_backend, value):
    fresh_backend.setenv("MINIDL_BACKEND", value)
    expected = "cupy" if value == "auto" and minidl.cupy_available() else "numpy"
    assert minidl.get_backend() == expected


def test_environment_variable_is_read_once_then_cached(fresh_backend):
    fresh_backend.setenv("MINIDL_BACKEND", "numpy")
    assert minidl.get_backend() == "numpy"
    fresh_backend.setenv("MINIDL_BACKEND", "tpu")
    assert minidl.get_backend() == "numpy"        # cached: the variable is not read again


def test_bad_environment_variable_is_an_error(fresh_backend):
    fresh_backend.setenv("MINIDL_BACKEND", "tpu")
    with pytest.raises(minidl.BackendError, match="unknown backend 'tpu'; expected one of 'numpy', 'cupy', 'auto'"):
        minidl.get_backend()


def test_environment_cupy_without_gpu_is_an_error(fresh_backend):
    if minidl.cupy_available():
        pytest.skip("a GPU is present here")
    fresh_backend.setenv("MINIDL_BACKEND", "cupy")
    with pytest.raises(minidl.BackendError, match="CuPy"):
        minidl.get_backend()


def test_set_backend_and_context_restore(fresh_backend):
    fresh_backend.delenv("MINIDL_BACKEND", raising=False)
    assert minidl.set_backend("NUMPY") == "numpy"
    assert minidl.get_backend() == "numpy"
    assert minidl.set_backend("auto") == ("cupy" if minidl.cupy_available() else "numpy")
    minidl.set_backend("numpy")
    with minidl.backend("numpy") as name:
        assert name == "numpy" and minidl.get_backend() == "numpy"
    assert minidl.get_backend() == "numpy"
    with pytest.raises(RuntimeError):
        with minidl.backend("numpy"):
            raise RuntimeError("inside")
    assert minidl.get_backend() == "numpy"


def test_context_restores_the_previous_backend_even_if_it_differs(fresh_backend):
    """Simulate a different previous choice through the cache, as set_backend('cupy') would leave it."""
    fresh_backend.setattr(backends, "_active", "cupy")
    with minidl.backend("numpy"):
        assert minidl.get_backend() == "numpy"
    assert backends._active == "cupy"


def test_unknown_backend_names(fresh_backend):
    with pytest.raises(minidl.BackendError, match="unknown backend 'tpu'"):
        minidl.set_backend("tpu")
    with pytest.raises(minidl.BackendError, match="unknown backend 'torch'"):
        with minidl.backend("torch"):
            pass
    with pytest.raises(minidl.BackendError, match="unknown backend"):
        backends.resolve("")
    assert minidl.get_backend() == "numpy"


def test_resolve_and_array_helpers():
    assert backends.resolve("auto") == ("cupy" if minidl.cupy_available() else "numpy")
    if not minidl.cupy_available():
        assert backends.resolve("auto") == "numpy"
    assert backends.resolve("numpy") == backends.resolve(" NumPy ") == "numpy"
    assert backends.get_array_module(np.zeros(2)) is np
    assert backends.get_array_module() is np
    assert backends.get_array_module(np.zeros(1), 3.0) is np
    assert minidl.get_array_module(np.zeros(1)) is np
    assert backends.backend_of(np.zeros(1)) == "numpy"
    assert not backends.is_cupy_array(np.zeros(1))
    assert isinstance(backends.to_numpy([1, 2]), np.ndarray)
    a = np.arange(3.0)
    assert backends.to_backend(a, "numpy") is a
    t = minidl.tensor(a, requires_grad=True)
    assert t.to("numpy") is t
    backends.synchronize("numpy")               # a no-op on numpy


def test_cupy_available_is_false_without_cupy():
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert minidl.cupy_available() is False
    else:
        pytest.skip("CuPy is installed")


# ---------------------------------------------------------------------------- GPU section (skips without CuPy)
# Everything below runs only where minidl.cupy_available() is True; elsewhere each test reports
# CUPY_SKIP_REASON. The same checks as on NumPy: float32 forward/backward of the key ops equal to the
# NumPy results, float64 gradchecks on the device, and a whole NIN step.

def _close32(got, ref, what):
    """float32 agreement: rtol 1e-4, atol 1e-5 scaled to the magnitude of the reference.

    Chosen by hand, not derived (these cases need a GPU to check; to do): the worst-case float32 bound
    gamma_K sum|terms| (K up to 75, the 5x5 conv over 3 channels) can exceed it where outputs cancel.
    The NumPy float32 side of these cases measured at most 1.2% of it under the OpenBLAS SkylakeX,
    Haswell, Nehalem and Katmai kernels (2026-12-02)."""
    scale = max(1.0, float(np.abs(ref).max())) if np.size(ref) else 1.0
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


def _labels_like(x, labels):
    return minidl.get_array_module(x.data).asarray(labels)


# name -> (input shapes, function of the input tensors); every input is float and gets a gradient
GPU_CASES = {
    "conv2d": ([(2, 3, 9, 7), (4, 3, 3, 2), (4,)], lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0))),
    "conv2d_1x1": ([(2, 5, 4, 3), (6, 5, 1, 1), (6,)], lambda x, w, b: F.conv2d(x, w, b)),
    "conv2d_5x5_pad2": ([(1, 3, 8, 8), (4, 3, 5, 5), (4,)], lambda x, w, b: F.conv2d(x, w, b, 1, 2)),
    "max_pool2d": ([(2, 3, 9, 7)], lambda x: F.max_pool2d(x, 3, 2, 1)),
    "max_pool2d_rect": ([(2, 2, 7, 8)], lambda x: F.max_pool2d(x, (3, 2), (1, 2), (1, 1))),
    "avg_pool2d": ([(2, 3, 9, 7)], lambda x: F.avg_pool2d(x, 3, 2, 1)),
    "global_avg_pool2d": ([(2, 3, 5, 7)], F.global_avg_pool2d),
    "batch_norm2d_train": ([(3, 4, 5, 3), (4,), (4,)], lambda x, g, b: F.batch_norm2d(x, None, None, g, b, training=True)),
    "relu": ([(2, 3, 4, 5)], F.relu),
    "linear": ([(5, 7), (3, 7), (3,)], F.linear),
    "cross_entropy": ([(6, 10)], lambda z: F.softmax_cross_entropy(z, _labels_like(z, [0, 9, 3, 3, 7, 1]))),
    "log_softmax": ([(4, 6)], lambda z: F.log_softmax(z, axis=1)),
}


GPU_CASE_LAYOUTS = [(name, layout) for name in sorted(GPU_CASES) for layout in ("nchw", "channels_last")
                    if layout == "nchw" or len(GPU_CASES[name][0][0]) == 4]


@pytest.mark.gpu
@pytest.mark.parametrize("name,layout", GPU_CASE_LAYOUTS)
def test_cupy_forward_and_backward_match_numpy_float32(cupy_backend, name, layout):
    rng = np.random.default_rng(sum(map(ord, name)))
    shapes, fn = GPU_CASES[name]
    arrays = [(rng.standard_normal(s) * 2).astype(np.float32) for s in shapes]
    if layout == "channels_last":
        arrays[0] = channels_last(arrays[0])
    results = {}
    for label, xp_mod, dtype in (("numpy64", np, np.float64), ("numpy32", np, np.float32),
                                 ("cupy32", cupy_backend, np.float32)):
        ts = [make_tensor(a.astype(dtype) if a.ndim != 4 else _astype_keep_layout(a, dtype), xp_mod, requires_grad=True)
              for a in arrays]
        y = fn(*ts)
        assert y.dtype == dtype and y.backend == ("cupy" if xp_mod is cupy_backend else "numpy")
        probe = np.random.default_rng(5).standard_normal(y.shape)
        y.backward(xp_mod.asarray(probe.astype(dtype)))
        results[label] = (host(y.data), [host(t.grad) for t in ts])
        if layout == "channels_last" and y.ndim == 4:
            assert is_channels_last(y.data)                       # outputs stay channels-last on both backends
    y64, g64 = results["numpy64"]
    for label in ("numpy32", "cupy32"):
        y, grads = results[label]
        assert y.shape == y64.shape
        _close32(y, y64, f"{name} forward on {label}")
        for i, (g, ref) in enumerate(zip(grads, g64)):
            _close32(g, ref, f"{name} gradient of input {i} on {label}")
    _close32(results["cupy32"][0], results["numpy32"][0], f"{name}: cupy vs numpy forward")


def _astype_keep_layout(a, dtype):
    if is_channels_last(a) and not a.flags.c_contiguous:
        return channels_last(np.ascontiguousarray(a).astype(dtype))
    return a.astype(dtype)


@pytest.mark.gpu
def test_cupy_batch_norm_running_statistics_and_eval_match_numpy(cupy_backend):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 3, 5, 5)) * 3 + 2).astype(np.float32)
    gamma, beta = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    stats, outs = {}, {}
    for xp_mod in (np, cupy_backend):
        rm, rv = xp_mod.zeros(3, dtype=np.float32), xp_mod.ones(3, dtype=np.float32)
        xt = make_tensor(channels_last(x), xp_mod)
        g, b = make_tensor(gamma, xp_mod), make_tensor(beta, xp_mod)
        F.batch_norm2d(xt, rm, rv, g, b, training=True, momentum=0.1)
        stats[xp_mod.__name__] = (host(rm), host(rv))
        outs[xp_mod.__name__] = host(F.batch_norm2d(xt, rm, rv, g, b, training=False).data)
    m = 4 * 5 * 5
    expected_rm = 0.1 * x.astype(np.float64).mean(axis=(0, 2, 3))
    expected_rv = 0.9 + 0.1 * x.astype(np.float64).var(axis=(0, 2, 3)) * m / (m - 1)
    for name in ("numpy", "cupy"):
        _close32(stats[name][0], expected_rm, f"running_mean on {name}")
        _close32(stats[name][1], expected_rv, f"running_var on {name}")
    _close32(outs["cupy"], outs["numpy"], "eval-mode batch norm")


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_cupy_float64_gradcheck_conv2d_and_max_pool_stride2_padding(cupy_backend, layout):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 7, 6))
    x = channels_last(x) if layout == "channels_last" else x
    xt = make_tensor(x, cupy_backend, requires_grad=True)
    assert xt.backend == "cupy"
    w = make_tensor(rng.standard_normal((3, 2, 3, 2)), cupy_backend, requires_grad=True)
    b = make_tensor(rng.standard_normal(3), cupy_backend, requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [xt, w, b])
    assert minidl.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0)), [xt, w, b])
    w1 = make_tensor(rng.standard_normal((3, 2, 1, 1)), cupy_backend, requires_grad=True)
    assert minidl.gradcheck(lambda x, w: F.conv2d(x, w), [xt, w1])                          # the 1x1 fast path
    assert minidl.gradcheck(lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [xt])
    assert minidl.gradcheck(lambda x: F.max_pool2d(x, (3, 2), stride=(2, 1), padding=(1, 1)), [xt])
    assert minidl.gradcheck(lambda x: F.avg_pool2d(x, 3, stride=2, padding=1), [xt])
    assert isinstance(xt.grad, cupy_backend.ndarray)


@pytest.mark.gpu
def test_cupy_dropout_statistics_scale_gradient_layout_and_seed(cupy_backend):
    rng = np.random.default_rng(4)
    xv = rng.random((4, 3, 10, 10)) + 1.0                      # strictly positive: a zero means dropped
    x = make_tensor(channels_last(xv), cupy_backend, requires_grad=True)
    minidl.manual_seed(3)
    y = F.dropout(x, 0.3)
    assert y.backend == "cupy" and is_channels_last(y.data)
    assert y.data.transpose(0, 2, 3, 1).flags.c_contiguous
    yh = host(y.data)
    kept = yh != 0
    assert abs((~kept).mean() - 0.3) < 0.06                   # 1200 draws: std of the rate ~0.013
    np.testing.assert_allclose(yh[kept], xv[kept] / 0.7, rtol=1e-12)
    gy = rng.standard_normal(xv.shape)
    y.backward(cupy_backend.asarray(gy))
    np.testing.assert_allclose(host(x.grad), gy * kept / 0.7, rtol=1e-12, atol=1e-15)
    minidl.manual_seed(3)
    again = host(F.dropout(x, 0.3).data)
    np.testing.assert_array_equal(again, yh)                   # same seed, same mask
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x


@pytest.mark.gpu
@pytest.mark.parametrize("batch_norm", [False, True])
def test_nin_forward_backward_on_cupy_matches_numpy(require_cupy, batch_norm):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 16, 16))
    y = rng.integers(0, 10, 3)
    minidl.manual_seed(0)
    reference = NIN(width=0.1, dropout=0.0, batch_norm=batch_norm)
    weights = {k: v.astype(np.float64) for k, v in reference.state_dict().items()}
    results = {}
    for name in ("numpy", "cupy"):
        with minidl.backend(name):
            model = NIN(width=0.1, dropout=0.0, batch_norm=batch_norm)
            for p in model.parameters():
                p.data = p.data.astype(np.float64)
            for m in model.modules():
                for key, buf in list(m._buffers.items()):
                    m.set_buffer(key, buf.astype(np.float64))
            model.load_state_dict(weights)
            assert all(p.backend == name for p in model.parameters())
            logits = model(minidl.tensor(x))
            loss = F.softmax_cross_entropy(logits, backends.to_backend(y))
            loss.backward()
            results[name] = (logits.numpy(), loss.item(),
                             {k: backends.to_numpy(p.grad) for k, p in model.named_parameters()},
                             {k: backends.to_numpy(b) for k, b in model.named_buffers()})
    np.testing.assert_allclose(results["cupy"][0], results["numpy"][0], rtol=1e-9, atol=1e-11)
    assert results["cupy"][1] == pytest.approx(results["numpy"][1], rel=1e-9)
    assert len(results["numpy"][2]) == (27 if batch_norm else 18)
    for k, g in results["numpy"][2].items():
        np.testing.assert_allclose(results["cupy"][2][k], g, rtol=1e-8, atol=1e-11, err_msg=k)
    for k, b in results["numpy"][3].items():                  # batch-norm running statistics moved alike
        np.testing.assert_allclose(results["cupy"][3][k], b, rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.gpu
def test_tensor_and_module_move_between_backends(require_cupy):
    t = minidl.tensor(np.arange(3.0), requires_grad=True)
    g = t.to("cupy")
    assert g.backend == "cupy" and g.requires_grad and g.is_leaf
    np.testing.assert_array_equal(g.to("numpy").numpy(), t.numpy())
    model = NIN(width=0.1).to("cupy")
    assert all(p.backend == "cupy" for p in model.parameters())
    assert all(backends.is_cupy_array(b) for _, b in model.named_buffers())
    assert minidl.get_array_module(g.data) is backends.array_module("cupy")


@pytest.mark.gpu
def test_cupy_backend_fixture_activates_cupy(cupy_backend):
    assert minidl.get_backend() == "cupy"
    assert minidl.tensor([1.0, 2.0]).backend == "cupy"
    assert backends.resolve("auto") == "cupy"


def test_gpu_tests_skip_with_a_reason_here(backend):
    """The parametrized backend fixture: numpy always runs; cupy runs on a GPU, else skips with a reason."""
    assert minidl.get_backend() == backend
    assert minidl.tensor([1.0]).backend == backend
    assert CUPY_SKIP_REASON


def test_cupy_cases_skip_cleanly_without_a_gpu(monkeypatch):
    """Where CuPy or a GPU is missing, the cupy parameter skips (pytest's Skipped) with CUPY_SKIP_REASON."""
    import types
    import conftest
    monkeypatch.setattr(minidl, "cupy_available", lambda: False)
    with pytest.raises(pytest.skip.Exception, match=r"minidl.cupy_available\(\) is False"):
        next(conftest._backend_param(types.SimpleNamespace(param="cupy")))
    assert minidl.get_backend() == "numpy"
    gen = conftest._backend_param(types.SimpleNamespace(param="numpy"))
    assert next(gen) is np


@pytest.mark.gpu
def test_cupy_cross_entropy_takes_list_tuple_and_numpy_labels(cupy_backend):
    """Host labels are copied to the GPU of the CuPy logits; CuPy labels with NumPy logits are refused by name."""
    logits = np.random.default_rng(3).standard_normal((4, 5))
    labels = [4, 0, 2, 2]
    ref = minidl.tensor(logits, requires_grad=True, backend="numpy")
    expected = F.softmax_cross_entropy(ref, labels)
    expected.backward()
    for given in (labels, tuple(labels), np.array(labels), cupy_backend.asarray(labels)):
        t = minidl.tensor(logits, requires_grad=True, backend="cupy")
        loss = F.softmax_cross_entropy(t, given)
        assert loss.backend == "cupy"
        assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
        loss.backward()
        np.testing.assert_allclose(host(t.grad), ref.grad, rtol=1e-12, atol=1e-15)
    with pytest.raises(TypeError, match="softmax_cross_entropy: labels live on cupy but logits on numpy"):
        F.softmax_cross_entropy(ref, cupy_backend.asarray(labels))
