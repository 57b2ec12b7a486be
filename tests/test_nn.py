"""Layers and the NIN model: registration, modes, state dicts, structure, an end-to-end gradient check."""
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import nn
from minidl.models import NIN, layer_table

# the architecture table of NIN.md: (in, out, kernel, output size)
NIN_CONVS = [(3, 192, 5, 32), (192, 160, 1, 32), (160, 96, 1, 32), (96, 192, 5, 16), (192, 192, 1, 16),
             (192, 192, 1, 16), (192, 192, 3, 8), (192, 192, 1, 8), (192, 10, 1, 8)]


def test_nin_matches_the_paper_table():
    model = NIN()
    expected_params = sum(o * c * k * k + o for c, o, k, _ in NIN_CONVS)
    expected_macs = sum(o * c * k * k * s * s for c, o, k, s in NIN_CONVS)
    assert model.num_parameters() == expected_params == 966_986
    rows = layer_table(model, (3, 32, 32))
    convs = [r for r in rows if r[1] == "Conv2d"]
    assert [r[2] for r in convs] == [(o, s, s) for _, o, _, s in NIN_CONVS]
    assert sum(r[4] for r in rows) == expected_macs
    assert [r[2] for r in rows if r[1] == "MaxPool2d"] == [(96, 16, 16), (192, 8, 8)]
    assert rows[-1][1:3] == ("GlobalAvgPool2d", (10,))
    out = model(minidl.tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert out.shape == (2, 10)
    assert "total" in model.summary() and "966,986" in model.summary()


def test_nin_options():
    small = NIN(width=0.25)
    assert small.num_parameters() < NIN().num_parameters() / 8
    assert any(isinstance(m, nn.AvgPool2d) for m in NIN(pool2="avg").modules())
    bn = NIN(batch_norm=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 9
    assert all(m.bias is None for m in bn.modules() if isinstance(m, nn.Conv2d))
    mnist = minidl.models.nin_mnist()
    assert mnist(minidl.tensor(np.zeros((1, 1, 28, 28), np.float32))).shape == (1, 10)
    with pytest.raises(ValueError, match="pool2"):
        NIN(pool2="min")


def test_module_registration_modes_and_names():
    model = NIN(width=0.1)
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["features.0.0.weight", "features.0.0.bias"]
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_state_dict_round_trip_and_strict_errors():
    a, b = NIN(width=0.1, batch_norm=True), NIN(width=0.1, batch_norm=True)
    b.load_state_dict(a.state_dict())
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
    state = dict(a.state_dict())
    del state["features.0.0.weight"]
    state["extra.weight"] = np.zeros(3)
    state["features.0.1.weight"] = np.zeros(7)
    with pytest.raises(ValueError) as err:
        b.load_state_dict(state)
    message = str(err.value)
    assert "missing keys: features.0.0.weight" in message
    assert "unexpected keys: extra.weight" in message
    assert "features.0.1.weight: checkpoint (7,) vs model" in message


def test_mlpconv_structure_and_gradcheck(rng):
    block = nn.MLPConv(2, [4, 3, 2], kernel_size=3, padding=1)
    kinds = [type(m).__name__ for m in block]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU"]
    assert [m.kernel_size for m in block if isinstance(m, nn.Conv2d)] == [(3, 3), (1, 1), (1, 1)]
    for name, p in block.named_parameters():   # float64, and biases away from 0 so no ReLU sits on its kink
        p.data = p.data.astype(np.float64) if name.endswith("weight") else 0.5 + 0.1 * rng.standard_normal(p.shape)
    params = list(block.parameters())
    x = minidl.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    assert minidl.gradcheck(lambda x, *ps: block(x), [x, *params])


def test_tiny_nin_end_to_end_gradcheck(rng):
    model = NIN(num_classes=3, width=0.03, dropout=0.0)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x = minidl.tensor(rng.standard_normal((2, 3, 8, 8)))
    labels = np.array([0, 2])
    weight, bias = model.features[6][4].weight, model.features[0][0].bias
    assert minidl.gradcheck(lambda w, b: F.softmax_cross_entropy(model(x), labels), [weight, bias])


def test_layers_errors():
    with pytest.raises(ValueError, match="Dropout: p must be in"):
        nn.Dropout(1.0)
    with pytest.raises(TypeError, match="Sequential: item 0"):
        nn.Sequential(lambda x: x)
