"""The backend switch (environment, set_backend, context), and NumPy vs CuPy where a GPU is present."""
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import backends
from minidl.models import NIN

from conftest import CUPY_SKIP_REASON


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
@pytest.mark.gpu
def test_nin_forward_backward_on_cupy_matches_numpy(require_cupy):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 16, 16))
    y = rng.integers(0, 10, 3)
    minidl.manual_seed(0)
    reference = NIN(width=0.1, dropout=0.0)
    weights = {k: v.astype(np.float64) for k, v in reference.state_dict().items()}
    results = {}
    for name in ("numpy", "cupy"):
        with minidl.backend(name):
            model = NIN(width=0.1, dropout=0.0)
            for p in model.parameters():
                p.data = p.data.astype(np.float64)
            model.load_state_dict(weights)
            assert all(p.backend == name for p in model.parameters())
            logits = model(minidl.tensor(x))
            loss = F.softmax_cross_entropy(logits, backends.to_backend(y))
            loss.backward()
            results[name] = (logits.numpy(), loss.item(),
                             {k: backends.to_numpy(p.grad) for k, p in model.named_parameters()})
    np.testing.assert_allclose(results["cupy"][0], results["numpy"][0], rtol=1e-9, atol=1e-11)
    assert results["cupy"][1] == pytest.approx(results["numpy"][1], rel=1e-9)
    for k, g in results["numpy"][2].items():
        np.testing.assert_allclose(results["cupy"][2][k], g, rtol=1e-8, atol=1e-11, err_msg=k)


@pytest.mark.gpu
def test_tensor_and_module_move_between_backends(require_cupy):
    t = minidl.tensor(np.arange(3.0), requires_grad=True)
    g = t.to("cupy")
    assert g.backend == "cupy" and g.requires_grad and g.is_leaf
    np.testing.assert_array_equal(g.to("numpy").numpy(), t.numpy())
    model = NIN(width=0.1).to("cupy")
    assert all(p.backend == "cupy" for p in model.parameters())
    assert all(backends.is_cupy_array(b) for _, b in model.named_buffers())


@pytest.mark.gpu
def test_cupy_dropout_is_seeded(require_cupy):
    with minidl.backend("cupy"):
        x = minidl.tensor(np.ones((20, 30)))
        minidl.manual_seed(3)
        a = F.dropout(x, 0.5).numpy()
        minidl.manual_seed(3)
        b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)


def test_gpu_tests_skip_with_a_reason_here(xp_backend):
    """The parametrized backend fixture: numpy always runs; cupy runs on a GPU, else skips with a reason."""
    assert minidl.get_backend() in ("numpy", "cupy")
    assert xp_backend is backends.array_module(minidl.get_backend())
    assert CUPY_SKIP_REASON
