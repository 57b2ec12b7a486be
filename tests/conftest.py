"""Shared fixtures: the backend parameter (CuPy runs only where a GPU is usable)."""
import numpy as np
import pytest

import minidl


def pytest_report_header(config):
    return f"minidl backends: numpy{' + cupy' if minidl.cupy_available() else ' (cupy: not available, GPU tests skip)'}"


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """The array module of each backend; CuPy cases skip cleanly without CuPy and a GPU."""
    if request.param == "cupy" and not minidl.cupy_available():
        pytest.skip("CuPy with a usable GPU is not available")
    with minidl.backend(request.param):
        yield minidl.backends.array_module(request.param)


@pytest.fixture(autouse=True)
def _seed():
    minidl.manual_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def channels_last(a):
    """The same (N, C, H, W) values, stored NHWC in memory (minidl's inside layout)."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
