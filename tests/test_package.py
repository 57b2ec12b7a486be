"""The package's surface: what ``import minidl`` alone makes reachable."""
import subprocess
import sys

import pytest

import minidl


@pytest.mark.parametrize("path", ["nn.Conv2d", "optim.SGD", "data.DataLoader", "models.NIN", "train.fit"])
def test_subpackages_are_attributes_after_a_plain_import(path):
    """``import minidl`` then ``minidl.optim.SGD`` works in a fresh interpreter (nothing imported before)."""
    code = f"import minidl; print(minidl.{path}.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == path.split(".")[-1]


def test_an_unknown_attribute_still_raises_attribute_error():
    with pytest.raises(AttributeError, match="module 'minidl' has no attribute 'optimizers'"):
        minidl.optimizers
    assert {"nn", "optim", "train"} <= set(dir(minidl))
