"""Forward (and backward) results against independent references: SciPy, naive loops, PyTorch if installed."""
import numpy as np
import pytest
from scipy import signal

import minidl
import minidl.functional as F

from conftest import channels_last
from float_bounds import gamma


def conv_reference(x, w, b, stride, padding):
    """Cross-correlation by scipy.signal.correlate, one (image, out channel, in channel) at a time."""
    (sh, sw), (ph, pw) = stride, padding
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, o = x.shape[0], w.shape[0]
    full = np.stack([np.stack([sum(signal.correlate(xpad[i, c], w[k, c], mode="valid") for c in range(x.shape[1]))
                               for k in range(o)]) for i in range(n)])
    return full[:, :, ::sh, ::sw] + b[None, :, None, None]


def pool_reference(x, k, s, p, op):
    kh, kw = k
    (sh, sw), (ph, pw) = s, p
    fill = -np.inf if op == "max" else 0.0
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow = (x.shape[3] + 2 * pw - kw) // sw + 1
    out = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = window.max(axis=(2, 3)) if op == "max" else window.mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", [
    ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 2)), ((1, 5, 8, 8), (3, 5, 1, 1), (1, 1), (0, 0)),
    ((2, 2, 9, 7), (3, 2, 5, 5), (2, 2), (2, 2))])
def test_conv2d_matches_scipy(xp, rng, x_shape, w_shape, stride, padding):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    expected = conv_reference(x, w, b, stride, padding)
    for layout in (x, channels_last(x)):
        got = F.conv2d(minidl.tensor(xp.asarray(layout)), minidl.tensor(xp.asarray(w)), minidl.tensor(xp.asarray(b)),
                       stride, padding)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_pointwise_conv_is_a_per_pixel_fully_connected_layer(rng):
    x, w, b = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((4, 6, 1, 1)), rng.standard_normal(4)
    conv = F.conv2d(minidl.tensor(x), minidl.tensor(w), minidl.tensor(b)).numpy()
    pixels = x.transpose(0, 2, 3, 1).reshape(-1, 6)                      # every pixel's channel vector
    fc = F.linear(minidl.tensor(pixels), minidl.tensor(w.reshape(4, 6)), minidl.tensor(b)).numpy()
    np.testing.assert_allclose(conv, fc.reshape(2, 5, 3, 4).transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,k,s,p", [((2, 3, 7, 5), (3, 3), (2, 2), (1, 1)), ((1, 2, 6, 6), (2, 2), (2, 2), (0, 0)),
                                         ((2, 1, 5, 8), (3, 2), (1, 3), (1, 1))])
@pytest.mark.parametrize("op", ["max", "avg"])
def test_pooling_matches_naive_loops(xp, rng, shape, k, s, p, op):
    x = rng.standard_normal(shape)
    fn = F.max_pool2d if op == "max" else F.avg_pool2d
    got = fn(minidl.tensor(xp.asarray(channels_last(x))), k, s, p).numpy()
    # max: one of the inputs, exact; avg: each side's float64 mean of kh*kw values (then a division) is within
    # gamma_(kh*kw+1) max|x| of the exact mean, however it cancels (an rtol alone could not bound that)
    bound = 0.0 if op == "max" else 2 * gamma(k[0] * k[1] + 1, np.float64) * np.abs(x).max()
    np.testing.assert_allclose(got, pool_reference(x, k, s, p, op), rtol=0, atol=bound)


def test_padded_cells_never_win_a_max():
    x = -1.0 - np.arange(2 * 5 * 5, dtype=np.float64).reshape(1, 2, 5, 5)     # all negative
    got = F.max_pool2d(minidl.tensor(x), 3, 2, 1).numpy()
    assert np.isfinite(got).all() and (got < 0).all()
    np.testing.assert_array_equal(got, pool_reference(x, (3, 3), (2, 2), (1, 1), "max"))


def test_overlapping_max_pool_gradient_sums_where_a_cell_wins_twice():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 5.0                       # the centre wins all four 3x3 stride-2 windows around it
    t = minidl.tensor(x, requires_grad=True)
    F.max_pool2d(t, 3, 2, 0).sum().backward()
    expected = np.zeros_like(x)
    expected[0, 0, 2, 2] = 4.0
    np.testing.assert_array_equal(t.grad, expected)


def test_global_avg_pool_and_cross_entropy_by_hand(rng):
    x = rng.standard_normal((3, 4, 5, 2))
    np.testing.assert_allclose(F.global_avg_pool2d(minidl.tensor(channels_last(x))).numpy(), x.mean(axis=(2, 3)))
    logits, labels = rng.standard_normal((4, 5)) * 3, np.array([0, 4, 2, 2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.log(p[np.arange(4), labels]).mean()
    assert F.softmax_cross_entropy(minidl.tensor(logits), labels).item() == pytest.approx(expected, rel=1e-12)
    huge = minidl.tensor(np.array([[1e4, 0.0, -1e4]]))
    assert np.isfinite(F.softmax_cross_entropy(huge, np.array([1])).item())
    assert F.softmax_cross_entropy(huge, np.array([1])).item() == pytest.approx(1e4)


def test_batch_norm_by_hand(rng):
    x = rng.standard_normal((4, 3, 2, 5))
    g, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm2d(minidl.tensor(x), rm, rv, minidl.tensor(g), minidl.tensor(b), training=True, momentum=0.1).numpy()
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    c = (slice(None), None, None)
    np.testing.assert_allclose(y.transpose(1, 0, 2, 3),
                               ((x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
                                * g[None, :, None, None] + b[None, :, None, None]).transpose(1, 0, 2, 3), atol=1e-12)
    np.testing.assert_allclose(rm, 0.1 * mu)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))
    y_eval = F.batch_norm2d(minidl.tensor(x), rm, rv, minidl.tensor(g), minidl.tensor(b), training=False).numpy()
    np.testing.assert_allclose(y_eval, (x - rm[c]) / np.sqrt(rv[c] + 1e-5) * g[c] + b[c], atol=1e-12)




def test_against_pytorch_forward_and_backward(rng):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x = rng.standard_normal((2, 3, 9, 7))
    w, b = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    gy_shape = tF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=(2, 1), padding=(1, 1)).shape
    gy = rng.standard_normal(tuple(gy_shape))
    # conv2d
    mx, mw, mb = (minidl.tensor(a, requires_grad=True) for a in (channels_last(x), w, b))
    my = F.conv2d(mx, mw, mb, (2, 1), (1, 1))
    my.backward(gy)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = tF.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 1))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for m, t in ((mx, tx), (mw, tw), (mb, tb)):
        np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=1e-10, atol=1e-10)
    # pooling, batch norm, cross-entropy
    for name, mfn, tfn in [
        ("max", lambda a: F.max_pool2d(a, 3, 2, 1), lambda a: tF.max_pool2d(a, 3, 2, 1)),
        ("avg", lambda a: F.avg_pool2d(a, 3, 2, 1), lambda a: tF.avg_pool2d(a, 3, 2, 1)),
        ("bn", lambda a: F.batch_norm2d(a, None, None, training=True), lambda a: tF.batch_norm(a, None, None, training=True)),
    ]:
        mx, tx = minidl.tensor(channels_last(x), requires_grad=True), torch.tensor(x, requires_grad=True)
        my, ty = mfn(mx), tfn(tx)
        g = rng.standard_normal(tuple(ty.shape))
        my.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(mx.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-9, err_msg=name)
    logits, labels = rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    ml, tl = minidl.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    ml_loss, tl_loss = F.softmax_cross_entropy(ml, labels), tF.cross_entropy(tl, torch.tensor(labels))
    ml_loss.backward()
    tl_loss.backward()
    assert ml_loss.item() == pytest.approx(tl_loss.item(), rel=1e-12)
    np.testing.assert_allclose(ml.grad, tl.grad.numpy(), rtol=1e-10, atol=1e-12)


def torch_nin_like(model, torch):
    """The PyTorch network equal to a minidl NIN, layer by layer, with the same weights (float64)."""
    layers = []
    for module in model.features:
        name = type(module).__name__
        if name == "MLPConv":
            for inner in module:
                kind = type(inner).__name__
                if kind == "Conv2d":
                    conv = torch.nn.Conv2d(inner.in_channels, inner.out_channels, inner.kernel_size,
                                           inner.stride, inner.padding, bias=inner.bias is not None).double()
                    conv.weight.data = torch.tensor(np.asarray(inner.weight.data, np.float64))
                    if inner.bias is not None:
                        conv.bias.data = torch.tensor(np.asarray(inner.bias.data, np.float64))
                    layers.append(conv)
                elif kind == "BatchNorm2d":
                    layers.append(torch.nn.BatchNorm2d(inner.weight.shape[0]).double())
                else:
                    layers.append(torch.nn.ReLU())
        elif name == "MaxPool2d":
            layers.append(torch.nn.MaxPool2d(3, 2, 1))
        elif name == "Dropout":
            layers.append(torch.nn.Identity())                 # dropout 0: masks would differ between frameworks
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


@pytest.mark.parametrize("batch_norm,cycle_momentum", [(False, False), (True, False), (False, True)])
def test_nin_training_steps_match_pytorch(rng, batch_norm, cycle_momentum):
    """Eight NIN training steps (SGD, Nesterov momentum, weight decay, one-cycle LR) in float64 land on
    PyTorch's weights: the whole step, not only each op, is the textbook one. With ``cycle_momentum``
    the momentum changes every step (PyTorch's OneCycleLR default) and is the classical kind."""
    torch = pytest.importorskip("torch")
    from minidl import optim
    from minidl.models import NIN
    from test_nn import to_float64

    model = to_float64(NIN(width=0.05, dropout=0.0, batch_norm=batch_norm))
    reference = torch_nin_like(model, torch)
    nesterov = not cycle_momentum
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=5e-4)
    topt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=5e-4)
    schedule = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=8, pct_start=0.25,
                                             cycle_momentum=cycle_momentum)
    tschedule = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=8, pct_start=0.25,
                                                    cycle_momentum=cycle_momentum)
    for step in range(8):
        x, y = rng.standard_normal((5, 3, 17, 15)), rng.integers(0, 10, 5)
        loss = F.softmax_cross_entropy(model(minidl.tensor(channels_last(x))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        tloss = torch.nn.functional.cross_entropy(reference(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        tschedule.step()
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-9), f"step {step}"
    ours = [p.data for p in model.parameters()]
    theirs = [p.detach().numpy() for p in reference.parameters() if p.requires_grad]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("argv,pytorch", [
    ([], dict(sgd=dict(nesterov=True), one_cycle=dict(pct_start=0.15, cycle_momentum=False))),
    (["--warmup", "0.3", "--cycle-momentum", "--no-nesterov"], dict(sgd={}, one_cycle={})),
    (["--bias-lr-mult", "2", "--warmup=0.5"],
     dict(sgd=dict(nesterov=True), one_cycle=dict(pct_start=0.5, cycle_momentum=False)))])
def test_recipe_optimizer_and_one_cycle_follow_pytorch(argv, pytorch):
    """The training script's SGD and one-cycle schedule, set by its options, give every parameter group
    PyTorch's lr, momentum and Nesterov flag at every step; ``--warmup 0.3 --cycle-momentum
    --no-nesterov`` is ``torch.optim.SGD(momentum=0.9)`` with ``OneCycleLR`` at its defaults."""
    torch = pytest.importorskip("torch")
    from minidl.models import NIN
    from minidl.train.recipe import build_optimizer, build_schedules, parse_config
    from test_recipe import load_script

    config = parse_config(load_script("train_nin_cifar10").CIFAR10, ["--epochs", "3", *argv])
    opt = build_optimizer(NIN(width=0.05), config)
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": group["lr"]} for group in opt.param_groups]
    schedule, _, _ = build_schedules(opt, config, steps_per_epoch=7)
    topt = torch.optim.SGD(groups, lr=0.05, momentum=0.9, weight_decay=5e-4, **pytorch["sgd"])
    tschedule = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=[g["lr"] for g in groups], total_steps=21,
                                                    **pytorch["one_cycle"])
    for step in range(21):
        for ours, theirs in zip(opt.param_groups, topt.param_groups, strict=True):
            for key in ("lr", "momentum", "weight_decay"):
                assert ours[key] == pytest.approx(theirs[key], rel=1e-12), f"step {step}: {key}"
            assert ours["nesterov"] == theirs["nesterov"]
        schedule.step()
        topt.step()
        tschedule.step()
