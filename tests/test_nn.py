"""Layers and the NIN model: registration, modes, state dicts, structure, layer table, gradient checks."""
import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import nn
from minidl.models import NIN, layer_table

from float_bounds import assert_within, matmul_error_bound, unit_roundoff

# The architecture table of the paper (CIFAR-10): (in, out, kernel, output size) of every convolution
NIN_CONVS = [(3, 192, 5, 32), (192, 160, 1, 32), (160, 96, 1, 32),
             (96, 192, 5, 16), (192, 192, 1, 16), (192, 192, 1, 16),
             (192, 192, 3, 8), (192, 192, 1, 8), (192, 10, 1, 8)]


def to_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    for m in module.modules():
        for name, b in list(m._buffers.items()):
            m.set_buffer(name, b.astype(np.float64))
    return module


# ---------------------------------------------------------------------------- Module basics
class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 2, bias=False)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.register_buffer("steps", np.zeros(1))
        self.note = "not registered"

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_registration_order_and_names():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == ["scale", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert [n for n, _ in m.named_buffers()] == ["steps"]
    assert list(m.state_dict()) == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "steps"]
    assert m.num_parameters() == 1 + 4 * 8 + 8 + 8 * 2
    assert m.fc2.bias is None and m.note == "not registered"
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert [type(c).__name__ for c in m.children()] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(AttributeError, match="TwoLayer has no attribute 'missing'"):
        m.missing


def test_reassigning_an_attribute_moves_it_between_registries():
    m = TwoLayer()
    m.fc2 = nn.Linear(8, 3)                       # replace a sub-module
    assert m.fc2.out_features == 3
    m.act = None                                  # a module becomes a plain attribute
    assert "act" not in dict(m.named_children()) and m.act is None
    m.act = nn.ReLU()                             # and back: registered and visible again
    assert "act" in dict(m.named_children())
    assert isinstance(m.act, nn.ReLU)


def test_adding_a_bias_to_a_conv_built_without_one(rng):
    conv = nn.Conv2d(2, 3, 1, bias=False)
    conv.bias = nn.Parameter(np.full(3, 5.0, np.float32))
    assert [n for n, _ in conv.named_parameters()] == ["weight", "bias"]
    assert conv.bias is not None                  # the registered Parameter, not the stale None
    x = minidl.tensor(rng.standard_normal((1, 2, 2, 2)).astype(np.float32))
    expected = F.conv2d(x, conv.weight).numpy() + 5.0
    # two float32 sums of 2 products and the bias: each within gamma_3 (|x| . |w| + |b|) of the exact value
    x_rows = x.data.transpose(0, 2, 3, 1).reshape(-1, 2)
    bound = 2 * matmul_error_bound(x_rows, conv.weight.data[:, :, 0, 0].T, conv.bias.data)
    assert_within(conv(x).numpy().transpose(0, 2, 3, 1).reshape(-1, 3), expected.transpose(0, 2, 3, 1).reshape(-1, 3),
                  bound, "conv with the added bias")


def test_module_needs_super_init():
    class Bad(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(RuntimeError, match=r"Bad: call super\(\).__init__\(\) before assigning attributes"):
        Bad()


def test_train_eval_propagate_and_change_behaviour(rng):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Dropout(0.5),
                          nn.Sequential(nn.Dropout(0.3)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    x = minidl.tensor(rng.standard_normal((2, 2, 4, 4)).astype(np.float32))
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())      # no dropout noise in eval
    model.train()
    assert all(m.training for m in model.modules())
    model[4].train(False)
    assert not model[4][0].training and model[3].training


def test_zero_grad_and_to_numpy(rng):
    m = TwoLayer()
    out = m(minidl.tensor(rng.standard_normal((3, 4)).astype(np.float32))).sum()
    out.backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.to("numpy") is m


# ---------------------------------------------------------------------------- state dicts
def test_state_dict_round_trip(rng):
    a, b = NIN(width=0.1, batch_norm=True), NIN(width=0.1, batch_norm=True)
    a.train()
    a(minidl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32)))     # move a's running statistics
    state = a.state_dict()
    assert "features.0.1.running_mean" in state and "features.0.1.running_var" in state
    b.load_state_dict(state)
    for (k, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == kb
        np.testing.assert_array_equal(va, vb, err_msg=k)
    state["features.0.0.weight"][...] = 123.0      # b holds copies, not the checkpoint's arrays
    assert not (b.features[0][0].weight.data == 123.0).any()
    a.eval()
    b.eval()
    x = minidl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    a.load_state_dict(b.state_dict())
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_strict_load_names_missing_unexpected_and_mismatched_keys_together():
    a, b = NIN(width=0.1, batch_norm=True), NIN(width=0.1, batch_norm=True)
    state = dict(a.state_dict())
    del state["features.0.0.weight"]
    state["extra.weight"] = np.zeros(3)
    state["features.0.1.weight"] = np.zeros(7)
    before = {k: v.copy() for k, v in b.state_dict().items()}
    with pytest.raises(ValueError) as err:
        b.load_state_dict(state)
    message = str(err.value)
    assert "load_state_dict for NIN" in message
    assert "missing keys: features.0.0.weight" in message
    assert "unexpected keys: extra.weight" in message
    n1 = a.features[0][1].num_features
    assert f"features.0.1.weight: checkpoint (7,) vs model ({n1},)" in message
    for k, v in b.state_dict().items():            # nothing was loaded
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    with pytest.raises(ValueError, match="shape mismatch") as err2:
        b.load_state_dict(state, strict=False)     # a wrong shape is an error even when not strict
    assert "missing keys" not in str(err2.value)
    del state["features.0.1.weight"]
    missing, unexpected = b.load_state_dict(state, strict=False)
    assert missing == ["features.0.0.weight", "features.0.1.weight"] and unexpected == ["extra.weight"]


# ---------------------------------------------------------------------------- layers
def test_sequential(rng):
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = minidl.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    expected = np.maximum(x.data @ seq[0].weight.data.T + seq[0].bias.data, 0) @ seq[2].weight.data.T + seq[2].bias.data
    # two float32 runs: the hidden layer is within e1 = gamma_4 (|x| |W1|^T + |b1|) of the exact one (ReLU does
    # not enlarge it), the output within |W2| e1 + gamma_5 (|h| |W2|^T + |b2|); twice that between the two runs
    (w1, b1), (w2, b2) = ((seq[i].weight.data.astype(np.float64), seq[i].bias.data) for i in (0, 2))
    hidden = np.maximum(x.data.astype(np.float64) @ w1.T + b1, 0)
    e1 = matmul_error_bound(x.data, w1.T, b1)
    bound = 2 * ((e1 @ np.abs(w2.T)) + matmul_error_bound(np.abs(hidden) + e1, w2.T, b2))
    assert_within(seq(x).numpy(), expected, bound, "Sequential")
    with pytest.raises(TypeError, match="Sequential: item 1 is a function, not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    assert nn.Sequential()(x) is x


def test_layers_match_functional(rng):
    x = minidl.tensor(rng.standard_normal((2, 3, 6, 5)).astype(np.float32))
    conv = nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=1)
    assert conv.weight.shape == (4, 3, 3, 2) and conv.bias.shape == (4,)
    np.testing.assert_array_equal(conv.bias.data, np.zeros(4))
    np.testing.assert_array_equal(conv(x).numpy(), F.conv2d(x, conv.weight, conv.bias, (2, 1), 1).numpy())
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1)(x).numpy(), F.max_pool2d(x, 3, 2, 1).numpy())
    np.testing.assert_array_equal(nn.AvgPool2d(2)(x).numpy(), F.avg_pool2d(x, 2).numpy())
    np.testing.assert_array_equal(nn.GlobalAvgPool2d()(x).numpy(), F.global_avg_pool2d(x).numpy())
    np.testing.assert_array_equal(nn.Flatten()(x).numpy(), x.data.reshape(2, -1))
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), np.maximum(x.data, 0))
    lin = nn.Linear(5, 3)
    v = minidl.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    np.testing.assert_allclose(lin(v).numpy(), v.data @ lin.weight.data.T + lin.bias.data, rtol=0,   # two float32 runs
                               atol=2 * matmul_error_bound(v.data, lin.weight.data.T, lin.bias.data).max())
    drop = nn.Dropout(0.5)
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="Dropout: p must be in"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="Conv2d: channels and kernel size must be >= 1"):
        nn.Conv2d(0, 3, 3)


def test_batchnorm_module_train_and_eval(rng):
    bn = to_float64(nn.BatchNorm2d(3))
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    np.testing.assert_array_equal(bn.weight.data, np.ones(3))
    x = rng.standard_normal((4, 3, 2, 2)) * 3 + 2
    bn(minidl.tensor(x))
    m = 16
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-12)
    bn.eval()
    y = bn(minidl.tensor(x)).numpy()
    expected = (x - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-10)


def test_init_statistics_and_seeding():
    minidl.manual_seed(5)
    conv = nn.Conv2d(64, 256, 3)
    std = np.sqrt(2.0 / (64 * 9))                 # He normal: gain sqrt(2) / sqrt(fan_in)
    assert conv.weight.data.std() == pytest.approx(std, rel=0.02)
    assert abs(conv.weight.data.mean()) < 0.02 * std * 10
    assert conv.weight.dtype == np.float32
    np.testing.assert_array_equal(conv.bias.data, 0)
    fixed = nn.Conv2d(64, 64, 3, init=0.05)
    assert fixed.weight.data.std() == pytest.approx(0.05, rel=0.03)
    np.testing.assert_array_equal(fixed.bias.data, 0)
    # PyTorch's layer default: weight and bias uniform in +-1/sqrt(fan_in), so std = 1/sqrt(3 fan_in)
    bound = 1 / np.sqrt(64 * 9)
    for layer in (nn.Conv2d(64, 256, 3, init="uniform"), nn.Linear(576, 4096, init="uniform")):
        w, b = layer.weight.data, layer.bias.data
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
        assert np.abs(b).max() <= bound and np.unique(b).size == b.size
    for bad in ("xavier", 0, -0.1, float("nan"), True):
        with pytest.raises(ValueError, match=r"Conv2d: init must be one of 'he', 'uniform' or a positive Gaussian std"):
            nn.Conv2d(2, 2, 3, init=bad)
    minidl.manual_seed(5)
    again = nn.Conv2d(64, 256, 3)
    np.testing.assert_array_equal(again.weight.data, conv.weight.data)
    assert nn.init.fan_in_and_out((8, 4, 3, 2)) == (24, 48)


# ---------------------------------------------------------------------------- MLPConv
def test_mlpconv_structure():
    block = nn.MLPConv(3, [8, 6, 4], kernel_size=5, padding=2)
    assert [type(m).__name__ for m in block] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU"]
    convs = [m for m in block if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(5, 5), (1, 1), (1, 1)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 8), (8, 6), (6, 4)]
    assert [n for n, _ in block.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    bn = nn.MLPConv(3, [8, 4], kernel_size=3, padding=1, batch_norm=True)
    assert [type(m).__name__ for m in bn] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]
    assert all(m.bias is None for m in bn if isinstance(m, nn.Conv2d))
    x = minidl.tensor(np.zeros((2, 3, 7, 5), np.float32))
    assert block(x).shape == (2, 4, 7, 5)
    with pytest.raises(ValueError, match="MLPConv: channels must list at least one"):
        nn.MLPConv(3, [], 3)


def test_mlpconv_equals_its_layers_by_hand(rng):
    block = to_float64(nn.MLPConv(2, [3, 2], kernel_size=3, padding=1))
    xv = rng.standard_normal((1, 2, 4, 3))
    c0, c1 = block[0], block[2]
    h = F.relu(F.conv2d(minidl.tensor(xv), c0.weight, c0.bias, 1, 1)).numpy()
    expected = np.maximum(np.einsum("nchw,oc->nohw", h, c1.weight.data[:, :, 0, 0]) + c1.bias.data[None, :, None, None], 0)
    np.testing.assert_allclose(block(minidl.tensor(xv)).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_mlpconv_gradcheck(rng):
    block = nn.MLPConv(2, [4, 3, 2], kernel_size=(3, 2), stride=(2, 1), padding=1)
    for name, p in block.named_parameters():       # float64; biases away from 0 keep ReLUs off their kinks
        p.data = p.data.astype(np.float64) if name.endswith("weight") else 0.5 + 0.1 * rng.standard_normal(p.shape)
    params = list(block.parameters())
    x = minidl.tensor(rng.standard_normal((2, 2, 5, 3)), requires_grad=True)
    assert block(x).shape == (2, 2, 3, 4)
    assert minidl.gradcheck(lambda x, *ps: block(x), [x, *params])


# ---------------------------------------------------------------------------- NIN
def test_nin_parameter_count_from_the_architecture_table():
    model = NIN()
    expected = sum(o * c * k * k + o for c, o, k, _ in NIN_CONVS)
    assert expected == 966_986
    assert model.num_parameters() == expected
    names = [n for n, _ in model.named_parameters()]
    assert names[:4] == ["features.0.0.weight", "features.0.0.bias", "features.0.2.weight", "features.0.2.bias"]
    assert names[-2:] == ["features.6.4.weight", "features.6.4.bias"]
    assert len(names) == 18
    shapes = [p.shape for n, p in model.named_parameters() if n.endswith("weight")]
    assert shapes == [(o, c, k, k) for c, o, k, _ in NIN_CONVS]


def test_nin_layer_table_and_multiply_adds():
    model = NIN()
    rows = layer_table(model, (3, 32, 32))
    convs = [r for r in rows if r[1] == "Conv2d"]
    assert [r[2] for r in convs] == [(o, s, s) for _, o, _, s in NIN_CONVS]
    assert convs[0][2] == (192, 32, 32) and convs[-1][2] == (10, 8, 8)
    expected_macs = sum(o * c * k * k * s * s for c, o, k, s in NIN_CONVS)
    assert expected_macs == 222_486_528
    assert sum(r[4] for r in rows) == expected_macs
    assert [r[4] for r in convs] == [o * c * k * k * s * s for c, o, k, s in NIN_CONVS]
    assert sum(r[3] for r in rows) == 966_986
    assert [r[2] for r in rows if r[1] == "MaxPool2d"] == [(96, 16, 16), (192, 8, 8)]
    assert [r[2] for r in rows if r[1] == "Dropout"] == [(96, 16, 16), (192, 8, 8)]
    assert rows[-1][:3] == ("gap", "GlobalAvgPool2d", (10,))
    assert rows[0][0] == "features.0.0"
    assert model.training                                      # layer_table restores the mode
    assert "forward" not in model.features[0][0].__dict__      # and the forward methods
    text = model.summary()
    assert "966,986" in text and "222,486,528" in text


def test_nin_forward_output_shape():
    model = NIN()
    model.eval()
    out = model(minidl.tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert out.shape == (2, 10) and out.dtype == np.float32
    small = NIN(width=0.1, num_classes=7)
    assert small(minidl.tensor(np.zeros((1, 3, 20, 12), np.float32))).shape == (1, 7)
    assert small.class_maps(minidl.tensor(np.zeros((1, 3, 16, 16), np.float32))).shape == (1, 7, 4, 4)


def test_nin_width_shrinks():
    small = NIN(width=0.25)
    widths = [[round(c * 0.25) for c in block] for block in ((192, 160, 96), (192, 192, 192), (192, 192))]
    assert widths == [[48, 40, 24], [48, 48, 48], [48, 48]]
    convs = [(3, 48, 5), (48, 40, 1), (40, 24, 1), (24, 48, 5), (48, 48, 1), (48, 48, 1), (48, 48, 3), (48, 48, 1),
             (48, 10, 1)]
    assert small.num_parameters() == sum(o * c * k * k + o for c, o, k in convs)
    assert small.num_parameters() < NIN().num_parameters() / 8
    with pytest.raises(ValueError, match="NIN: width must be positive"):
        NIN(width=0)


def test_nin_pool2_and_batch_norm_options():
    avg = NIN(pool2="avg")
    assert isinstance(avg.features[4], nn.AvgPool2d) and type(avg.features[1]) is nn.MaxPool2d
    assert type(NIN().features[4]) is nn.MaxPool2d
    assert (avg.features[4].kernel_size, avg.features[4].stride, avg.features[4].padding) == (3, 2, 1)
    with pytest.raises(ValueError, match="pool2 must be 'max' or 'avg'"):
        NIN(pool2="min")
    bn = NIN(batch_norm=True)
    bns = [m for m in bn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 9
    assert [m.num_features for m in bns] == [o for _, o, _, _ in NIN_CONVS]
    assert all(m.bias is None for m in bn.modules() if isinstance(m, nn.Conv2d))
    assert bn.num_parameters() == sum(o * c * k * k + 2 * o for c, o, k, _ in NIN_CONVS)
    assert [type(m).__name__ for m in bn.features[0]] == ["Conv2d", "BatchNorm2d", "ReLU"] * 3
    assert sum(isinstance(m, nn.Dropout) for m in NIN(dropout=0.3).modules()) == 2
    assert all(m.p == 0.3 for m in NIN(dropout=0.3).modules() if isinstance(m, nn.Dropout))


def test_nin_mnist_variant():
    mnist = minidl.models.nin_mnist(width=0.25)
    assert mnist.features[0][0].in_channels == 1
    assert mnist(minidl.tensor(np.zeros((1, 1, 28, 28), np.float32))).shape == (1, 10)


def test_tiny_nin_end_to_end_gradcheck(rng):
    minidl.manual_seed(1)
    model = to_float64(NIN(width=0.1, dropout=0.0))
    x = minidl.tensor(rng.standard_normal((2, 3, 8, 8)))
    labels = np.array([3, 7])
    first_bias = model.features[0][0].bias
    middle_bias = model.features[3][0].bias
    last_weight = model.features[6][4].weight
    assert last_weight.shape == (10, 19, 1, 1)
    assert minidl.gradcheck(lambda *ps: F.softmax_cross_entropy(model(x), labels),
                            [first_bias, middle_bias, last_weight])


def test_tiny_batch_norm_nin_gradcheck(rng):
    minidl.manual_seed(2)
    model = to_float64(NIN(width=0.05, dropout=0.0, batch_norm=True, pool2="avg"))
    x = minidl.tensor(rng.standard_normal((2, 3, 8, 8)))
    labels = np.array([1, 9])
    gamma = model.features[3][1].weight
    w = model.features[6][6].weight
    assert minidl.gradcheck(lambda *ps: F.softmax_cross_entropy(model(x), labels), [gamma, w])


def test_layer_table_of_a_float64_model():
    model = to_float64(NIN(width=0.1))
    rows = layer_table(model, (3, 8, 8))
    assert rows[-1][2] == (10,)
    assert sum(r[3] for r in rows) == model.num_parameters()


def test_float32_model_keeps_float32_everywhere(rng):
    model = NIN(width=0.1, batch_norm=True)
    x = minidl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    loss = F.softmax_cross_entropy(model(x), np.array([1, 2]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())
    assert all(b.dtype == np.float32 for _, b in model.named_buffers())


def test_to_numpy_is_a_no_op_on_numpy(rng):
    model = NIN(width=0.1, batch_norm=True)
    params = {k: p.data for k, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    assert model.to("numpy") is model
    for k, p in model.named_parameters():
        assert p.data is params[k], k                  # the very same arrays: nothing copied or converted
    for k, b in model.named_buffers():
        assert b is buffers[k], k


def test_a_shared_layer_is_listed_once_and_can_be_optimized(rng):
    """Weight sharing (one layer used twice): parameters() must yield each Parameter once, as in PyTorch."""
    from minidl import optim
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    params = list(model.parameters())
    assert len(params) == len({id(p) for p in params}) == 2
    assert model.num_parameters() == 3 * 3 + 3
    opt = optim.SGD(model.parameters(), lr=0.1)           # must not refuse the model's own parameter list
    x = minidl.tensor(rng.standard_normal((2, 3)).astype(np.float32))
    model(x).sum().backward()
    before = shared.weight.data.copy()
    grad = shared.weight.grad.copy()
    opt.step()
    # one update, not two: p - lr g, two float32 roundings (of lr g and of the difference) in each run
    u = unit_roundoff()
    assert_within(shared.weight.data, before - 0.1 * grad, 2 * u * (2 * np.abs(0.1 * grad) + np.abs(before - 0.1 * grad)) * 1.01,
                  "one SGD step")


def test_layer_table_counts_linear_and_conv_multiply_adds():
    model = nn.Sequential(nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 6, 5))
    rows = layer_table(model, (2, 5, 5))
    assert [r[:3] for r in rows] == [("0", "Conv2d", (4, 3, 6)), ("1", "ReLU", (4, 3, 6)), ("2", "Flatten", (72,)),
                                     ("3", "Linear", (5,))]
    assert [r[3] for r in rows] == [4 * 2 * 3 * 2 + 4, 0, 0, 72 * 5 + 5]
    assert [r[4] for r in rows] == [4 * 2 * 3 * 2 * 3 * 6, 0, 0, 72 * 5]


def test_layer_table_of_a_model_that_reuses_a_layer():
    """A layer called twice (weight sharing) gets one row per call, and the model is left as it was."""
    conv = nn.Conv2d(2, 2, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), conv)
    model.train()
    rows = layer_table(model, (2, 4, 4))
    assert [r[1] for r in rows] == ["Conv2d", "ReLU", "Conv2d"]
    assert [r[2] for r in rows] == [(2, 4, 4)] * 3
    assert [r[4] for r in rows] == [2 * 2 * 3 * 3 * 4 * 4, 0, 2 * 2 * 3 * 3 * 4 * 4]
    assert model.training and all(m.training for m in model.modules())
    assert "forward" not in conv.__dict__                        # the temporary hooks are gone
    x = minidl.tensor(np.ones((1, 2, 4, 4), np.float32))
    np.testing.assert_array_equal(model(x).numpy(), conv(F.relu(conv(x))).numpy())


def test_state_dict_of_a_shared_layer_keeps_every_name_and_loads_back():
    shared = nn.Conv2d(2, 2, 3, padding=1)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]      # as PyTorch
    assert len(list(model.parameters())) == 2                                 # but optimized once
    other_shared = nn.Conv2d(2, 2, 3, padding=1)
    other = nn.Sequential(other_shared, nn.ReLU(), other_shared)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other_shared.weight.data, shared.weight.data)


def test_sequential_indexing_and_slicing(rng):
    """seq[i] is a module (i < 0 from the end); seq[a:b] is a Sequential of the same modules, under their names."""
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert seq[-1] is seq[2] and seq[-3] is seq[0] and seq[np.int64(1)] is list(seq)[1]
    tail = seq[1:]
    assert type(tail) is nn.Sequential and len(tail) == 2
    assert list(tail) == [seq[1], seq[2]] and tail[0] is seq[1] and tail[-1] is seq[2]    # shared, not copied
    assert list(tail.state_dict()) == ["2.weight", "2.bias"]                              # original keys, as PyTorch
    x = minidl.tensor(rng.standard_normal((5, 3)).astype(np.float32))
    np.testing.assert_array_equal(tail(seq[0](x)).numpy(), seq(x).numpy())
    assert list(seq[::-1]) == [seq[2], seq[1], seq[0]] and len(seq[5:]) == 0
    assert not seq.eval()[:2].training
    assert type(nn.MLPConv(2, [3, 4], 1)[:2]) is nn.Sequential
    for bad in (3, -4):
        with pytest.raises(IndexError, match=rf"Sequential: index {bad} is out of range for 3 modules"):
            seq[bad]
    with pytest.raises(TypeError, match="Sequential: index must be an int or a slice, got 'a'"):
        seq["a"]
