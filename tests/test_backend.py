"""The backend switch, and the same computation on CuPy where a GPU is present."""
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import backends
from minidl.models import NIN


def test_switch_context_and_environment(monkeypatch):
    assert minidl.get_backend() == "numpy"
    with minidl.backend("numpy"):
        assert minidl.get_backend() == "numpy"
    assert backends.resolve("auto") in ("numpy", "cupy")
    assert backends.resolve("NumPy") == "numpy"
    with pytest.raises(minidl.BackendError, match="unknown backend 'tpu'"):
        minidl.set_backend("tpu")
    monkeypatch.setattr(backends, "_active", None)
    monkeypatch.setenv("MINIDL_BACKEND", "numpy")
    assert minidl.get_backend() == "numpy"
    assert backends.get_array_module(np.zeros(2)) is np


@pytest.mark.gpu
def test_nin_step_on_cupy_matches_numpy():
    if not minidl.cupy_available():
        pytest.skip("CuPy with a usable GPU is not available")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    grads = {}
    losses = {}
    for name in ("numpy", "cupy"):
        with minidl.backend(name):
            minidl.manual_seed(0)
            model = NIN(width=0.25, dropout=0.0)
            loss = F.softmax_cross_entropy(model(minidl.tensor(x)), backends.to_backend(y))
            loss.backward()
            losses[name] = loss.item()
            grads[name] = {k: backends.to_numpy(p.grad) for k, p in model.named_parameters()}
    assert losses["cupy"] == pytest.approx(losses["numpy"], rel=1e-4)
    for k in grads["numpy"]:
        np.testing.assert_allclose(grads["cupy"][k], grads["numpy"][k], rtol=2e-3, atol=2e-5, err_msg=k)


@pytest.mark.gpu
def test_tensor_and_module_move_between_backends():
    if not minidl.cupy_available():
        pytest.skip("CuPy with a usable GPU is not available")
    t = minidl.tensor(np.arange(3.0), requires_grad=True)
    g = t.to("cupy")
    assert g.backend == "cupy" and g.requires_grad
    np.testing.assert_array_equal(g.to("numpy").numpy(), t.numpy())
    model = NIN(width=0.1).to("cupy")
    assert all(p.backend == "cupy" for p in model.parameters())
