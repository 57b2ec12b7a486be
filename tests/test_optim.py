"""Tests of minidl.optim: SGD, Adam, AdamW and the Optimizer base class.

The update rules are checked three ways: against hand-computed steps, by convergence on a
quadratic, and (when PyTorch is installed) against torch.optim step by step in float64.
"""
import numpy as np
import pytest

import minidl
import minidl.optim as optim
from minidl.backends import to_numpy
from minidl.engine import tensor

SHAPES = [(3, 4), (5,)]


def make_params(seed=0, shapes=SHAPES, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def gradient_sequence(steps, seed=1, shapes=SHAPES):
    """``steps`` lists of gradients, one array per parameter shape."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]


def run_steps(opt, params, grads, schedule=None):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
        if schedule is not None:
            schedule.step()


# -- hand-computed steps -----------------------------------------------------------

def test_plain_sgd_step_is_p_minus_lr_grad():
    p = tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    p.grad = np.array([0.5, 0.5, -1.0])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.05, 3.1], rtol=1e-15)


def test_momentum_steps_by_hand():
    lr, mu, tau, wd = 0.1, 0.9, 0.25, 0.01
    p0 = np.array([1.0, -2.0])
    g1, g2 = np.array([0.3, -0.4]), np.array([-0.1, 0.2])
    p = tensor(p0, requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=mu, dampening=tau, weight_decay=wd)

    p.grad = g1.copy()
    opt.step()
    d1 = g1 + wd * p0                       # first step: the buffer is the (decayed) gradient, undampened
    p1 = p0 - lr * d1
    np.testing.assert_allclose(p.data, p1, rtol=1e-14)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], d1, rtol=1e-14)

    p.grad = g2.copy()
    opt.step()
    buf2 = mu * d1 + (1 - tau) * (g2 + wd * p1)
    np.testing.assert_allclose(p.data, p1 - lr * buf2, rtol=1e-14)


def test_nesterov_step_by_hand():
    lr, mu = 0.1, 0.9
    p0, g1, g2 = np.array([1.0]), np.array([2.0]), np.array([-1.0])
    p = tensor(p0, requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=mu, nesterov=True)
    p.grad = g1.copy()
    opt.step()
    p1 = p0 - lr * (g1 + mu * g1)
    np.testing.assert_allclose(p.data, p1, rtol=1e-15)
    p.grad = g2.copy()
    opt.step()
    buf = mu * g1 + g2
    np.testing.assert_allclose(p.data, p1 - lr * (g2 + mu * buf), rtol=1e-15)


def test_adam_first_step_moves_each_coordinate_by_lr():
    # m_hat = g and v_hat = g^2 after one step, so the update is lr * g / (|g| + eps) ~ lr * sign(g)
    p = tensor(np.array([1.0, 1.0, 1.0]), requires_grad=True)
    p.grad = np.array([1e-3, -5.0, 200.0])
    opt = optim.Adam([p], lr=0.01, eps=1e-8)
    opt.step()
    expected = 1.0 - 0.01 * p.grad / (np.abs(p.grad) + 1e-8)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12)
    assert opt.state[p]["step"] == 1


def test_adamw_decays_weights_directly_and_adam_through_gradient():
    lr, wd = 0.1, 0.5
    p = tensor(np.array([2.0, -4.0]), requires_grad=True)
    p.grad = np.zeros(2)                    # no loss gradient: AdamW only shrinks the weights
    optim.AdamW([p], lr=lr, weight_decay=wd).step()
    np.testing.assert_allclose(p.data, np.array([2.0, -4.0]) * (1 - lr * wd), rtol=1e-15)

    q = tensor(np.array([2.0, -4.0]), requires_grad=True)
    q.grad = np.zeros(2)                    # Adam: the L2 gradient wd*p goes through the adaptive scaling
    optim.Adam([q], lr=lr, weight_decay=wd).step()
    np.testing.assert_allclose(q.data, np.array([2.0, -4.0]) - lr * np.sign([2.0, -4.0]), rtol=1e-7)


def test_amsgrad_divides_by_the_largest_second_moment_so_far():
    lr, beta2 = 0.1, 0.5
    p = tensor(np.array([0.0]), requires_grad=True)
    opt = optim.Adam([p], lr=lr, betas=(0.0, beta2), eps=0.0, amsgrad=True)   # beta1 = 0: m_t = g_t
    p.grad = np.array([4.0])
    opt.step()                                                  # v1 = 0.5 * 16 = 8, v_hat = 16
    p.grad = np.array([1.0])
    opt.step()                                                  # v2 = 0.5 * 8 + 0.5 * 1 = 4.5 < max = 8
    np.testing.assert_allclose(opt.state[p]["max_exp_avg_sq"], [8.0])
    np.testing.assert_allclose(opt.state[p]["exp_avg_sq"], [4.5])
    step2 = lr * 1.0 / np.sqrt(8.0 / (1 - beta2 ** 2))          # plain Adam would divide by sqrt(4.5 / 0.75)
    np.testing.assert_allclose(p.data, [-lr - step2], rtol=1e-14)


# -- convergence and behaviour ---------------------------------------------------

@pytest.mark.parametrize("make_opt, steps", [
    (lambda ps: optim.SGD(ps, lr=0.1), 200),
    (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9), 200),
    (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 200),
    (lambda ps: optim.Adam(ps, lr=0.05), 600),
])
def test_minimizes_a_quadratic(make_opt, steps):
    # f(p) = 0.5 * sum(scale * (p - target)^2), badly conditioned (scales 1 and 10)
    rng = np.random.default_rng(0)
    target, scale = rng.standard_normal(6), np.array([1.0, 10.0] * 3)
    p = tensor(np.zeros(6), requires_grad=True)
    opt = make_opt([p])
    start = np.abs(p.data - target).max()
    for _ in range(steps):
        p.grad = scale * (p.data - target)
        opt.step()
    assert np.abs(p.data - target).max() < 1e-3 * start


def test_updates_in_place_and_keeps_dtype():
    params = make_params(dtype=np.float32)
    arrays = [p.data for p in params]
    for opt in (optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4), optim.Adam(params),
                optim.AdamW(params, amsgrad=True)):
        run_steps(opt, params, gradient_sequence(2))
        for p, a in zip(params, arrays):
            assert p.data is a and p.data.dtype == np.float32
        for buffers in opt.state.values():
            for value in buffers.values():
                if hasattr(value, "dtype"):
                    assert value.dtype == np.float32


def test_gradient_is_not_modified_by_weight_decay():
    p = make_params(shapes=[(4,)])[0]
    grad = np.ones(4)
    p.grad = grad
    optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1).step()
    optim.Adam([p], weight_decay=0.1).step()
    np.testing.assert_array_equal(grad, np.ones(4))


def test_param_groups_with_their_own_lr():
    weight, bias = make_params(shapes=[(2, 2), (2,)])
    w0, b0 = weight.data.copy(), bias.data.copy()
    opt = optim.SGD([{"params": [weight]}, {"params": bias, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9                  # missing keys come from the defaults
    weight.grad, bias.grad = np.ones((2, 2)), np.ones(2)
    opt.step()
    np.testing.assert_allclose(w0 - weight.data, 0.1)
    np.testing.assert_allclose(b0 - bias.data, 0.5)


def test_add_param_group():
    a, b = make_params()
    opt = optim.Adam([a], lr=0.01)
    opt.add_param_group({"params": [b], "lr": 0.02})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_zero_grad_and_params_without_grad_are_skipped():
    a, b = make_params()
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = np.ones(a.shape), np.ones(b.shape)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    b_before = b.data.copy()
    a.grad = np.ones(a.shape)
    opt.step()
    np.testing.assert_array_equal(b.data, b_before)
    assert b not in opt.state or not opt.state[b]
    assert "momentum_buffer" in opt.state[a]


def test_step_returns_closure_loss():
    p = make_params(shapes=[(2,)])[0]
    opt = optim.SGD([p], lr=0.1)

    before = p.data.copy()

    def closure():
        p.grad = 2 * p.data
        return float((p.data ** 2).sum())

    assert opt.step(closure) == pytest.approx(float((before ** 2).sum()))
    np.testing.assert_allclose(p.data, 0.8 * before)


def test_buffers_live_on_the_parameters_backend(xp):
    """On each backend (CuPy only with a GPU): buffers stay there, the state_dict is NumPy, loading moves back."""
    params = [tensor(np.ones((2, 3), np.float32), requires_grad=True)]
    assert type(params[0].data) is type(xp.zeros(1))
    for opt in (optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
                optim.AdamW(params, amsgrad=True)):
        params[0].grad = xp.full((2, 3), 0.5, dtype=xp.float32)
        opt.step()
        opt.step()
        buffers = [v for v in opt.state[params[0]].values() if hasattr(v, "shape")]
        assert buffers and all(type(b) is type(params[0].data) for b in buffers)
        saved = opt.state_dict()
        assert all(isinstance(v, (np.ndarray, int)) for v in saved["state"][0].values())
        fresh = type(opt)(params, lr=0.1)
        fresh.load_state_dict(saved)
        for name, value in fresh.state[params[0]].items():
            if hasattr(value, "shape"):
                assert type(value) is type(params[0].data)
                np.testing.assert_array_equal(to_numpy(value), to_numpy(opt.state[params[0]][name]))


SGD_VARIANTS = [dict(momentum=0.9), dict(momentum=0.9, nesterov=True, weight_decay=1e-2),
                dict(momentum=0.5, dampening=0.3, weight_decay=1e-2), dict(momentum=0.0, weight_decay=1e-2)]


@pytest.mark.gpu
@pytest.mark.parametrize("kwargs", SGD_VARIANTS, ids=["momentum", "nesterov_wd", "dampening_wd", "plain_wd"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_on_cupy_matches_numpy(cupy_backend, kwargs, dtype):
    """The fused CUDA step (momentum > 0) and the array-op step give the NumPy numbers, first step included."""
    grads = gradient_sequence(4)
    results = []
    for to_device in (np.asarray, cupy_backend.asarray):              # NumPy reference first, then CuPy
        params = make_params(dtype=dtype)
        for p in params:
            p.data = to_device(to_numpy(p.data))
        opt = optim.SGD(params, lr=0.1, **kwargs)
        run_steps(opt, params, [[to_device(g.astype(dtype)) for g in step] for step in grads])
        results.append([to_numpy(p.data) for p in params])
    # 4 steps of a few roundings each (momentum, weight decay, dampening, the update; a CUDA kernel may fuse
    # them with FMA): at most ~20 u of the values' size per run, 1e-5 = 168 u in float32, 1e-12 = 4500 u in float64
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for got, ref in zip(results[1], results[0]):
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol)


# -- state_dict ----------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1, momentum=0.9,
                                nesterov=True, weight_decay=1e-3),
    "adam": lambda ps: optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "betas": (0.8, 0.9)}], lr=0.01,
                                  weight_decay=1e-3),
    "adamw": lambda ps: optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "weight_decay": 0.0}], lr=0.01),
    "adam-amsgrad": lambda ps: optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "amsgrad": False}], lr=0.01,
                                          amsgrad=True),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_continues_identically(name, tmp_path):
    """10 steps straight == 5 steps, save (minidl.save: the checkpoint format), load into fresh objects, 5 more."""
    grads = gradient_sequence(10)
    straight = make_params()
    opt = OPTIMIZERS[name](straight)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.05], total_steps=10)
    run_steps(opt, straight, grads, sched)

    first = make_params()
    opt1 = OPTIMIZERS[name](first)
    sched1 = optim.lr_scheduler.OneCycleLR(opt1, max_lr=[0.1, 0.05], total_steps=10)
    run_steps(opt1, first, grads[:5], sched1)
    minidl.save({"params": [p.data for p in first], "opt": opt1.state_dict(), "sched": sched1.state_dict()},
                tmp_path / "state.safetensors")
    checkpoint = minidl.load(tmp_path / "state.safetensors")

    resumed = [tensor(a, requires_grad=True) for a in checkpoint["params"]]
    opt2 = OPTIMIZERS[name](resumed)
    sched2 = optim.lr_scheduler.OneCycleLR(opt2, max_lr=[0.1, 0.05], total_steps=10)
    opt2.load_state_dict(checkpoint["opt"])
    sched2.load_state_dict(checkpoint["sched"])
    run_steps(opt2, resumed, grads[5:], sched2)

    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    assert sched2.last_epoch == 10


def test_state_dict_round_trip_lrs_match():
    grads = gradient_sequence(10)
    straight = make_params()
    opt = optim.SGD(straight, lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    run_steps(opt, straight, grads, sched)

    half = make_params()
    opt1 = optim.SGD(half, lr=0.1, momentum=0.9)
    sched1 = optim.lr_scheduler.CosineAnnealingLR(opt1, T_max=10)
    run_steps(opt1, half, grads[:5], sched1)
    opt2 = optim.SGD(half, lr=0.1, momentum=0.9)
    sched2 = optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=10)
    opt2.load_state_dict(opt1.state_dict())
    sched2.load_state_dict(sched1.state_dict())
    run_steps(opt2, half, grads[5:], sched2)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for a, b in zip(straight, half):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_portable_and_load_copies():
    params = make_params()
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}])
    run_steps(opt, params, gradient_sequence(2))
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sd["state"][0]["step"] == 2 and isinstance(sd["state"][0]["exp_avg"], np.ndarray)
    assert sd["state"][0]["exp_avg"] is not opt.state[params[0]]["exp_avg"]

    opt2 = optim.Adam([{"params": params[:1]}, {"params": params[1:]}])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.5
    sd["state"][0]["exp_avg"][...] = 123.0                        # must not reach the loaded optimizer
    assert not np.any(opt2.state[params[0]]["exp_avg"] == 123.0)
    np.testing.assert_array_equal(opt2.state[params[0]]["exp_avg_sq"], opt.state[params[0]]["exp_avg_sq"])


def test_load_state_dict_casts_to_parameter_dtype():
    p64 = make_params(shapes=[(3,)])[0]
    opt = optim.SGD([p64], lr=0.1, momentum=0.9)
    p64.grad = np.ones(3)
    opt.step()
    p32 = make_params(shapes=[(3,)], dtype=np.float32)[0]
    opt32 = optim.SGD([p32], lr=0.1, momentum=0.9)
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[p32]["momentum_buffer"].dtype == np.float32


def test_load_state_dict_errors():
    params = make_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    run_steps(opt, params, gradient_sequence(1))
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="SGD.load_state_dict: the state has 1 parameter groups, this optimizer 2"):
        optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state, 1 in this optimizer"):
        optim.SGD(params[:1], lr=0.1).load_state_dict(sd)
    swapped = [params[1], params[0]]                             # same count, wrong shapes
    with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 0 has shape \(3, 4\).*\(5,\)"):
        optim.SGD(swapped, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="keys 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


# -- errors ------------------------------------------------------------------------

def test_constructor_errors():
    p, q = make_params()
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="Adam: params must be an iterable.*single Tensor"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [q, p]}], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="SGD: lr must be >= 0, got -0.1"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="AdamW: lr must be >= 0, got -1"):
        optim.AdamW([{"params": [p], "lr": -1}])
    with pytest.raises(TypeError, match="floating-point tensors.*int64"):
        optim.SGD([tensor(np.arange(3, dtype=np.int64))], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, got ndarray"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="SGD: params must be an ordered iterable.*got a set"):
        optim.SGD({p, q}, lr=0.1)
    with pytest.raises(TypeError, match="Adam: a parameter group's 'params' must be an ordered iterable"):
        optim.Adam([{"params": {p, q}}])
    with pytest.raises(TypeError, match="SGD: params mixes 1 parameter groups .dicts. with 1 other items"):
        optim.SGD([p, {"params": [q]}], lr=0.1)
    with pytest.raises(ValueError, match="SGD: lr must be >= 0, got nan"):
        optim.SGD([p], lr=float("nan"))
    with pytest.raises(ValueError, match="SGD: weight_decay must be >= 0, got -0.01"):
        optim.SGD([p], lr=0.1, weight_decay=-0.01)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0 and dampening 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="nesterov=True needs.*dampening=0.1"):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="SGD: momentum must be >= 0, got -0.5"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match=r"Adam: betas must be two numbers in \[0, 1\), got \(0.9, 1.0\)"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="AdamW: eps must be >= 0"):
        optim.AdamW([p], eps=-1e-8)


# -- against PyTorch -------------------------------------------------------------------

def _torch_run(torch_cls, groups_spec, kwargs, grads):
    """Run torch_cls on float64 copies of make_params(); groups_spec: list of (param indices, overrides)."""
    torch = pytest.importorskip("torch")
    params = [torch.tensor(p.data.copy(), requires_grad=True) for p in make_params()]
    groups = [{"params": [params[i] for i in idx], **over} for idx, over in groups_spec]
    opt = torch_cls(groups, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g.copy())
        opt.step()
    return [p.detach().numpy() for p in params]


def _minidl_run(cls, groups_spec, kwargs, grads):
    params = make_params()
    groups = [{"params": [params[i] for i in idx], **over} for idx, over in groups_spec]
    opt = cls(groups, **kwargs)
    run_steps(opt, params, grads)
    return [p.data for p in params]


ONE_GROUP = [([0, 1], {})]
TWO_GROUPS = [([0], {}), ([1], {"lr": 0.03, "weight_decay": 0.2})]

TORCH_CASES = [
    ("SGD", ONE_GROUP, dict(lr=0.1)),
    ("SGD", ONE_GROUP, dict(lr=0.1, momentum=0.9)),
    ("SGD", ONE_GROUP, dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", ONE_GROUP, dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", ONE_GROUP, dict(lr=0.1, weight_decay=0.05)),
    ("SGD", TWO_GROUPS, dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=5e-4)),
    ("Adam", ONE_GROUP, dict(lr=0.01)),
    ("Adam", ONE_GROUP, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", TWO_GROUPS, dict(lr=0.01, weight_decay=0.01)),
    ("AdamW", ONE_GROUP, dict(lr=0.01)),
    ("AdamW", ONE_GROUP, dict(lr=0.01, weight_decay=0.0)),
    ("AdamW", TWO_GROUPS, dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.1)),
    ("Adam", ONE_GROUP, dict(lr=0.01, betas=(0.5, 0.6), weight_decay=0.05, amsgrad=True)),
    ("AdamW", TWO_GROUPS, dict(lr=0.02, betas=(0.5, 0.6), amsgrad=True)),
]


@pytest.mark.parametrize("cls_name, groups_spec, kwargs", TORCH_CASES,
                         ids=[f"{c}-{len(g)}groups-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for c, g, kw in TORCH_CASES])
def test_matches_torch(cls_name, groups_spec, kwargs):
    torch = pytest.importorskip("torch")
    grads = gradient_sequence(7)
    expected = _torch_run(getattr(torch.optim, cls_name), groups_spec, kwargs, grads)
    got = _minidl_run(getattr(optim, cls_name), groups_spec, kwargs, grads)
    start = [p.data for p in make_params()]
    for e, g, s in zip(expected, got, start):
        assert not np.allclose(e, s)                              # the parameters did move
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)


def test_state_dict_names_match_torch():
    torch = pytest.importorskip("torch")
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.ones(3)
    topt = torch.optim.Adam([p])
    topt.step()
    ours = optim.Adam([make_params(shapes=[(3,)])[0]])
    ours.param_groups[0]["params"][0].grad = np.ones(3)
    ours.step()
    assert set(ours.state_dict()["state"][0]) == set(topt.state_dict()["state"][0])
    assert set(ours.state_dict()["param_groups"][0]) <= set(topt.state_dict()["param_groups"][0])
