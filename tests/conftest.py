"""Shared fixtures: the backend parameter (CuPy runs only where a GPU is usable), seeds, layouts."""
import numpy as np
import pytest

import minidl

CUPY_SKIP_REASON = "CuPy with a usable CUDA GPU is not available (minidl.cupy_available() is False)"


def pytest_report_header(config):
    return f"minidl backends: numpy{' + cupy' if minidl.cupy_available() else ' (cupy: not available, GPU tests skip)'}"


def _backend_param(request):
    if request.param == "cupy" and not minidl.cupy_available():
        pytest.skip(CUPY_SKIP_REASON)
    with minidl.backend(request.param):
        yield minidl.backends.array_module(request.param)


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module of each backend; CuPy cases skip cleanly without CuPy and a GPU."""
    yield from _backend_param(request)


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp_backend(request):
    """Like ``xp``: numpy, and cupy where a GPU is usable (skipped with a reason otherwise).

    Inside the test the parametrized backend is active, so ``minidl.tensor(...)`` lands on it.
    """
    yield from _backend_param(request)


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """The backend *name* ('numpy', 'cupy'), active inside the test; cupy skips with a reason without a GPU."""
    for _ in _backend_param(request):
        yield request.param


@pytest.fixture
def require_cupy():
    if not minidl.cupy_available():
        pytest.skip(CUPY_SKIP_REASON)


@pytest.fixture
def cupy_backend(require_cupy):
    """The cupy module, with the 'cupy' backend active inside the test (skips cleanly without CuPy and a GPU)."""
    with minidl.backend("cupy"):
        yield minidl.backends.array_module("cupy")


@pytest.fixture(autouse=True)
def _seed():
    minidl.manual_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def channels_last(a):
    """The same (N, C, H, W) values, stored NHWC in memory (minidl's inside layout)."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def is_channels_last(a) -> bool:
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous


def layouts(a):
    """[C-contiguous NCHW copy, channels-last view] of the same values."""
    return [np.ascontiguousarray(a), channels_last(a)]


def on(xp, a):
    """Array ``a`` on the backend of module ``xp``."""
    return xp.asarray(a)


def host(a):
    return minidl.backends.to_numpy(a)


def make_tensor(a, xp=np, requires_grad=False):
    """A leaf Tensor holding a copy of ``a`` *with a's memory layout* on the backend of module ``xp``.

    (``minidl.tensor`` copies in C order, which would turn a channels-last view into a plain NCHW array.)
    """
    a = np.asarray(a)
    if a.ndim == 4 and is_channels_last(a) and not a.flags.c_contiguous:
        data = xp.ascontiguousarray(xp.asarray(np.ascontiguousarray(a.transpose(0, 2, 3, 1)))).transpose(0, 3, 1, 2)
        assert is_channels_last(data)
    else:
        data = xp.array(a)
    return minidl.Tensor(data, requires_grad=requires_grad)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """A cache budget of 700 bytes (minidl/kernels/blocking.py): one to a few images (or rows) per block,
    the last block shorter; and tiles of 8 values (minidl/kernels/tiles.py): two rows of 3 or 4
    channels, one of more, so that blocks hold several tiles and a rest."""
    from minidl.kernels import blocking, tiles
    monkeypatch.setattr(blocking, "CACHE_BLOCK_BYTES", 700)
    monkeypatch.setattr(tiles, "TILE_VALUES", 8)


@pytest.fixture
def restore_threads():
    """The thread count (minidl.kernels.threads) as it was before the test, whatever the test set."""
    from minidl.kernels import threads
    before = threads.get_num_threads()
    yield
    threads.set_num_threads(before)
