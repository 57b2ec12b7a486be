"""Tests of minidl.optim.lr_scheduler: hand-computed rates, resuming, errors, and PyTorch's sequences."""
import json
import math

import numpy as np
import pytest

import minidl.optim as optim
from minidl.engine import tensor
from minidl.optim import lr_scheduler as sch

LRS = [0.1, 0.02]                         # two parameter groups with different rates


def make_optimizer(lrs=LRS, momentum=0.9):
    groups = [{"params": [tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0], momentum=momentum)


def lr_sequence(schedule, steps):
    """Rates of every group after construction and after each of ``steps`` calls of step()."""
    seq = [schedule.get_last_lr()]
    for _ in range(steps):
        schedule.step()
        seq.append(schedule.get_last_lr())
    return seq


# -- hand-computed rates -------------------------------------------------------------

def test_step_lr_by_hand():
    opt = make_optimizer()
    seq = lr_sequence(sch.StepLR(opt, step_size=3, gamma=0.5), 7)
    expected = [[lr * 0.5 ** (t // 3) for lr in LRS] for t in range(8)]
    np.testing.assert_allclose(seq, expected, rtol=1e-15)
    assert [g["lr"] for g in opt.param_groups] == seq[-1]
    assert [g["initial_lr"] for g in opt.param_groups] == LRS


def test_multistep_lr_by_hand():
    seq = lr_sequence(sch.MultiStepLR(make_optimizer(), milestones=[5, 2, 5], gamma=0.1), 6)
    factors = [1, 1, 0.1, 0.1, 0.1, 1e-3, 1e-3]          # milestone 5 listed twice counts twice
    np.testing.assert_allclose(seq, [[lr * f for lr in LRS] for f in factors], rtol=1e-12)


def test_cosine_annealing_by_hand():
    seq = lr_sequence(sch.CosineAnnealingLR(make_optimizer(), T_max=4, eta_min=0.001), 4)
    expected = [[0.001 + (lr - 0.001) * (1 + math.cos(math.pi * t / 4)) / 2 for lr in LRS] for t in range(5)]
    np.testing.assert_allclose(seq, expected, rtol=1e-14)
    assert seq[-1] == pytest.approx([0.001, 0.001])


def test_one_cycle_starts_low_peaks_and_ends_lower():
    opt = make_optimizer()
    schedule = sch.OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=100, pct_start=0.3)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / 25)       # set on construction
    assert opt.param_groups[1]["lr"] == pytest.approx(0.5 / 25)
    seq = np.array(lr_sequence(schedule, 99))
    assert np.argmax(seq[:, 0]) == 29 and seq[29, 0] == pytest.approx(1.0)   # peak at pct_start * total - 1
    assert seq[-1, 0] == pytest.approx(1.0 / 25 / 1e4)
    np.testing.assert_allclose(seq[:, 1], seq[:, 0] / 2, rtol=1e-12)         # groups scale together
    schedule.step()                                                            # step total_steps is allowed
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 101 times, but total_steps is 100"):
        schedule.step()


def test_one_cycle_linear():
    seq = lr_sequence(sch.OneCycleLR(make_optimizer([1.0]), max_lr=1.0, total_steps=11, pct_start=0.5,
                                     div_factor=10, final_div_factor=1, anneal_strategy="linear"), 10)
    # phase 1: steps 0..4.5 from 0.1 to 1.0; phase 2: 4.5..10 from 1.0 back to 0.1
    expected = [0.1 + 0.9 * t / 4.5 if t <= 4.5 else 1.0 - 0.9 * (t - 4.5) / 5.5 for t in range(11)]
    np.testing.assert_allclose([s[0] for s in seq], expected, rtol=1e-12)


def test_linear_warmup_by_hand():
    seq = lr_sequence(sch.LinearLR(make_optimizer(), start_factor=0.25, end_factor=1.0, total_iters=3), 5)
    factors = [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    np.testing.assert_allclose(seq, [[lr * f for lr in LRS] for f in factors], rtol=1e-14)


def test_sequential_warmup_then_step_by_hand():
    opt = make_optimizer()
    warmup = sch.LinearLR(opt, start_factor=0.5, total_iters=2)
    decay = sch.StepLR(opt, step_size=2, gamma=0.1)
    schedule = sch.SequentialLR(opt, [warmup, decay], milestones=[3])
    seq = lr_sequence(schedule, 6)
    factors = [0.5, 0.75, 1.0, 1.0, 1.0, 0.1, 0.1]           # StepLR restarts from its step 0 at milestone 3
    np.testing.assert_allclose(seq, [[lr * f for lr in LRS] for f in factors], rtol=1e-14)
    assert [g["lr"] for g in opt.param_groups] == seq[-1]
    assert decay.last_epoch == 3 and decay.get_last_lr() == seq[-1]


def test_one_cycle_momentum_is_left_alone_by_default_and_cycled_on_request():
    opt = make_optimizer(momentum=0.9)
    lr_sequence(sch.OneCycleLR(opt, max_lr=0.1, total_steps=10), 10)
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]

    opt = make_optimizer(momentum=0.9)
    schedule = sch.OneCycleLR(opt, max_lr=0.1, total_steps=11, pct_start=0.5, anneal_strategy="linear",
                              cycle_momentum=True, base_momentum=0.8, max_momentum=0.95)
    momenta = [opt.param_groups[0]["momentum"]]
    for _ in range(10):
        schedule.step()
        momenta.append(opt.param_groups[0]["momentum"])
    # phase 1 (steps 0..4.5): 0.95 -> 0.8, phase 2 (4.5..10): 0.8 -> 0.95, opposite to the rate
    expected = [0.95 - 0.15 * t / 4.5 if t <= 4.5 else 0.8 + 0.15 * (t - 4.5) / 5.5 for t in range(11)]
    np.testing.assert_allclose(momenta, expected, rtol=1e-12)

    adam = optim.Adam([tensor(np.zeros(2), requires_grad=True)], betas=(0.9, 0.99))
    sch.OneCycleLR(adam, max_lr=0.1, total_steps=10, cycle_momentum=True)
    assert adam.param_groups[0]["betas"] == (0.95, 0.99)


def test_one_cycle_from_epochs_and_steps_per_epoch():
    a = lr_sequence(sch.OneCycleLR(make_optimizer(), max_lr=0.1, epochs=3, steps_per_epoch=4), 12)
    b = lr_sequence(sch.OneCycleLR(make_optimizer(), max_lr=0.1, total_steps=12), 12)
    assert a == b


def test_reduce_on_plateau_by_hand():
    opt = make_optimizer()
    plateau = sch.ReduceLROnPlateau(opt, patience=2)                # mode "max": accuracy
    assert plateau.get_last_lr() == LRS                              # construction changes nothing
    for accuracy in [0.50, 0.60, 0.60, 0.59]:                        # two bad epochs: not more than patience
        plateau.step(accuracy)
    assert plateau.best == 0.60 and plateau.num_bad_epochs == 2 and plateau.get_last_lr() == LRS
    plateau.step(0.60005)                                            # < best * (1 + 1e-4): still no improvement
    # lr * 0.1 (0.1 is inexact: 2u) vs lr / 10 (u): within 3u = 3.3e-16 in float64
    np.testing.assert_allclose(plateau.get_last_lr(), [lr / 10 for lr in LRS], rtol=1e-15)
    assert plateau.num_bad_epochs == 0
    plateau.step(0.7)
    assert plateau.best == 0.7 and plateau.num_bad_epochs == 0


def test_reduce_on_plateau_min_lr_cooldown_and_min_mode():
    opt = make_optimizer([1.0])
    plateau = sch.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0, cooldown=1, min_lr=0.3)
    lrs = []
    for loss in [1.0, 2.0, 2.0, 2.0, 2.0, 2.0]:
        plateau.step(loss)
        lrs.append(plateau.get_last_lr()[0])
    # epoch 2: reduce (cooldown 1); epoch 3: cooldown; epoch 4: reduce to max(0.25, 0.3); then stuck at min_lr
    assert lrs == [1.0, 0.5, 0.5, 0.3, 0.3, 0.3]
    assert plateau.best == 1.0


# -- resuming --------------------------------------------------------------------------

SCHEDULES = {
    "step": lambda opt: sch.StepLR(opt, step_size=3, gamma=0.5),
    "multistep": lambda opt: sch.MultiStepLR(opt, milestones=[2, 7], gamma=0.3),
    "cosine": lambda opt: sch.CosineAnnealingLR(opt, T_max=8, eta_min=1e-3),
    "onecycle": lambda opt: sch.OneCycleLR(opt, max_lr=[0.5, 0.1], total_steps=10),
    "onecycle-momentum": lambda opt: sch.OneCycleLR(opt, max_lr=0.5, total_steps=10, three_phase=True,
                                                    cycle_momentum=True),
    "linear": lambda opt: sch.LinearLR(opt, start_factor=0.1, total_iters=7),
    "sequential": lambda opt: sch.SequentialLR(opt, [sch.LinearLR(opt, start_factor=0.1, total_iters=3),
                                                     sch.CosineAnnealingLR(opt, T_max=5)], milestones=[4]),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_resume_continues_exactly(name):
    """10 steps straight == 5 steps, save (through JSON), load into a fresh optimizer and schedule, 5 more."""
    opt = make_optimizer()
    straight = lr_sequence(SCHEDULES[name](opt), 10)

    opt1 = make_optimizer()
    schedule1 = SCHEDULES[name](opt1)
    first = lr_sequence(schedule1, 5)
    saved_opt, saved_sched = opt1.state_dict(), json.loads(json.dumps(schedule1.state_dict()))

    opt2 = make_optimizer()
    schedule2 = SCHEDULES[name](opt2)
    opt2.load_state_dict(saved_opt)
    schedule2.load_state_dict(saved_sched)
    assert schedule2.get_last_lr() == first[-1]
    rest = lr_sequence(schedule2, 5)[1:]
    assert first + rest == straight
    def hyper(o):
        return [{k: v for k, v in g.items() if k != "params"} for g in o.param_groups]
    assert hyper(opt2) == hyper(opt)                        # rates, momenta, initial_lr: all the same


def test_state_dict_is_plain_and_excludes_optimizer():
    opt = make_optimizer()
    schedule = sch.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    sd = schedule.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 0
    assert json.loads(json.dumps(sd)) == sd                              # plain Python values only
    plateau = sch.ReduceLROnPlateau(opt)
    plateau.step(0.5)
    psd = plateau.state_dict()
    assert "optimizer" not in psd and psd["best"] == 0.5
    fresh = sch.ReduceLROnPlateau(make_optimizer())
    fresh.load_state_dict(psd)
    assert fresh.best == 0.5 and fresh.last_epoch == 1 and fresh.optimizer is not opt


def test_plateau_resume_continues_exactly():
    metrics = [0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7]
    opt = make_optimizer()
    plateau = sch.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    straight = []
    for m in metrics:
        plateau.step(m)
        straight.append(plateau.get_last_lr())

    opt1 = make_optimizer()
    p1 = sch.ReduceLROnPlateau(opt1, patience=1, cooldown=1)
    for m in metrics[:5]:
        p1.step(m)
    opt2 = make_optimizer()
    p2 = sch.ReduceLROnPlateau(opt2, patience=1, cooldown=1)
    opt2.load_state_dict(opt1.state_dict())
    p2.load_state_dict(p1.state_dict())
    resumed = []
    for m in metrics[5:]:
        p2.step(m)
        resumed.append(p2.get_last_lr())
    assert straight[5:] == resumed
    assert straight[-1] != straight[0]                                   # the rate did change


# -- errors ----------------------------------------------------------------------------

def test_errors():
    opt = make_optimizer()
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive int, got 0"):
        sch.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="MultiStepLR: milestones must be non-negative ints"):
        sch.MultiStepLR(opt, milestones=[3, -1])
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be > 0, got 0"):
        sch.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="OneCycleLR: expected 2 values of max_lr.*got 3"):
        sch.OneCycleLR(opt, max_lr=[0.1, 0.2, 0.3], total_steps=10)
    with pytest.raises(ValueError, match="OneCycleLR: pct_start must be a number in \\[0, 1\\], got 1.5"):
        sch.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"):
        sch.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="OneCycleLR: total_steps must be a positive int, got 0"):
        sch.OneCycleLR(opt, max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode must be 'min' or 'max', got 'up'"):
        sch.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor must be in \\[0, 1\\), got 1.0"):
        sch.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(KeyError, match="has no 'initial_lr'"):
        sch.StepLR(make_optimizer(), step_size=2, last_epoch=4)
    with pytest.raises(TypeError, match="StepLR: expected an Optimizer, got list"):
        sch.StepLR([], step_size=2)
    with pytest.raises(ValueError, match="OneCycleLR: give total_steps, or epochs and steps_per_epoch"):
        sch.OneCycleLR(opt, max_lr=0.1, epochs=3)
    with pytest.raises(ValueError, match="OneCycleLR: steps_per_epoch must be a positive int, got 2.5"):
        sch.OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=2.5)
    with pytest.raises(ValueError, match="OneCycleLR: expected 2 values of base_momentum.*got 1"):
        sch.OneCycleLR(opt, max_lr=0.1, total_steps=10, cycle_momentum=True, base_momentum=[0.8])
    with pytest.raises(ValueError, match="ReduceLROnPlateau: expected 2 values of min_lr.*got 3"):
        sch.ReduceLROnPlateau(opt, min_lr=[0, 0, 0])
    with pytest.raises(ValueError, match="LinearLR: start_factor must be in \\(0, 1\\], got 0"):
        sch.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="LinearLR: total_iters must be a positive int, got 0"):
        sch.LinearLR(opt, total_iters=0)
    warmup, step = sch.LinearLR(opt), sch.StepLR(opt, step_size=2)
    with pytest.raises(ValueError, match="SequentialLR: expected 1 milestones for 2 schedulers, got 2"):
        sch.SequentialLR(opt, [warmup, step], milestones=[2, 4])
    with pytest.raises(ValueError, match="SequentialLR: milestones must be increasing positive ints"):
        sch.SequentialLR(opt, [warmup, step, step], milestones=[4, 2])
    with pytest.raises(ValueError, match="SequentialLR: schedulers\\[1\\] \\(StepLR\\) belongs to another"):
        sch.SequentialLR(opt, [warmup, sch.StepLR(make_optimizer(), step_size=2)], milestones=[2])
    with pytest.raises(TypeError, match="SequentialLR: schedulers\\[0\\] must be a step-count schedule.*"
                                        "got ReduceLROnPlateau"):
        sch.SequentialLR(opt, [sch.ReduceLROnPlateau(opt), step], milestones=[2])


# -- against PyTorch --------------------------------------------------------------------

def torch_optimizer(torch, lrs=LRS):
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def torch_sequence(schedule, optimizer, steps):
    seq = [schedule.get_last_lr()]
    for _ in range(steps):
        optimizer.step()                 # no grads: a no-op that keeps PyTorch from warning about the order
        schedule.step()
        seq.append(schedule.get_last_lr())
    return seq


TORCH_CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5), 20),
    ("StepLR", dict(step_size=1), 6),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3), 15),
    ("CosineAnnealingLR", dict(T_max=10), 25),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.005), 20),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=40), 40),
    ("OneCycleLR", dict(max_lr=[0.5, 0.05], total_steps=33, pct_start=0.15, div_factor=10,
                        final_div_factor=100), 33),
    ("OneCycleLR", dict(max_lr=[0.5, 0.05], total_steps=25, anneal_strategy="linear"), 25),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=7, pct_start=0.0), 7),
    ("OneCycleLR", dict(max_lr=[0.5, 0.05], total_steps=30, three_phase=True), 30),
    ("OneCycleLR", dict(max_lr=0.3, epochs=4, steps_per_epoch=5, pct_start=0.25), 20),
    ("LinearLR", dict(), 8),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.5, total_iters=10), 14),
]


@pytest.mark.parametrize("cls_name, kwargs, steps", TORCH_CASES,
                         ids=[f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for c, kw, _ in TORCH_CASES])
def test_matches_torch(cls_name, kwargs, steps):
    torch = pytest.importorskip("torch")
    torch_kwargs = dict(kwargs, cycle_momentum=False) if cls_name == "OneCycleLR" else kwargs  # minidl's default
    topt = torch_optimizer(torch)
    expected = torch_sequence(getattr(torch.optim.lr_scheduler, cls_name)(topt, **torch_kwargs), topt, steps)
    opt = make_optimizer()
    got = lr_sequence(getattr(sch, cls_name)(opt, **kwargs), steps)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    assert len({tuple(lrs) for lrs in got}) > 1                           # the schedule did change the rate
    assert [g["initial_lr"] for g in opt.param_groups] == pytest.approx(
        [g["initial_lr"] for g in topt.param_groups], rel=1e-15)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_one_cycle_momentum_matches_torch(optimizer):
    torch = pytest.importorskip("torch")
    kwargs = dict(max_lr=[0.5, 0.05], total_steps=20, cycle_momentum=True, base_momentum=[0.8, 0.7],
                  max_momentum=0.9, three_phase=(optimizer == "Adam"))

    def momenta(opt):
        return [g["betas"][0] if optimizer == "Adam" else g["momentum"] for g in opt.param_groups]

    def groups(make):
        return [{"params": [make()], "lr": lr} for lr in LRS]

    topt = getattr(torch.optim, optimizer)(groups(lambda: torch.zeros(2, requires_grad=True)), lr=LRS[0])
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kwargs)
    opt = getattr(optim, optimizer)(groups(lambda: tensor(np.zeros(2), requires_grad=True)), lr=LRS[0])
    schedule = sch.OneCycleLR(opt, **kwargs)
    expected, got = [momenta(topt)], [momenta(opt)]
    for _ in range(20):
        topt.step()
        tsched.step()
        schedule.step()
        expected.append(momenta(topt))
        got.append(momenta(opt))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert len({tuple(m) for m in got}) > 2


SEQUENTIAL_CASES = {
    "warmup-cosine": (lambda s, o: [s.LinearLR(o, start_factor=0.1, total_iters=4), s.CosineAnnealingLR(o, T_max=10)],
                      [4], 20),
    "three": (lambda s, o: [s.LinearLR(o, start_factor=0.5, total_iters=2), s.StepLR(o, step_size=2, gamma=0.5),
                            s.MultiStepLR(o, milestones=[1, 3], gamma=0.1)], [3, 8], 14),
}


@pytest.mark.parametrize("name", SEQUENTIAL_CASES)
def test_sequential_matches_torch(name):
    torch = pytest.importorskip("torch")
    make_children, milestones, steps = SEQUENTIAL_CASES[name]
    topt = torch_optimizer(torch)
    tsched = torch.optim.lr_scheduler.SequentialLR(topt, make_children(torch.optim.lr_scheduler, topt), milestones)
    expected = torch_sequence(tsched, topt, steps)
    opt = make_optimizer()
    got = lr_sequence(sch.SequentialLR(opt, make_children(sch, opt), milestones), steps)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
    assert len({tuple(lrs) for lrs in got}) > 3


def test_one_cycle_past_the_end_raises_like_torch():
    torch = pytest.importorskip("torch")
    topt = torch_optimizer(torch)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.1, total_steps=3, cycle_momentum=False)
    ours = sch.OneCycleLR(make_optimizer(), max_lr=0.1, total_steps=3)
    for _ in range(3):
        topt.step()
        tsched.step()
        ours.step()
    with pytest.raises(ValueError):
        tsched.step()
    with pytest.raises(ValueError, match="tried to step 4 times"):
        ours.step()


PLATEAU_CASES = [
    dict(mode="max", patience=2),
    dict(mode="min", factor=0.5, patience=1, cooldown=2, min_lr=[0.01, 0.004]),
    dict(mode="max", threshold=0.05, threshold_mode="abs", patience=0),
    dict(mode="min", threshold=0.1, threshold_mode="rel", patience=1, min_lr=0.005),
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES, ids=[str(k) for k in PLATEAU_CASES])
def test_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(-1, 1, 6), 1 + 0.03 * rng.standard_normal(20),
                              np.linspace(1, 0.5, 6), -0.5 + 0.01 * rng.standard_normal(10)])
    topt = torch_optimizer(torch)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    ours = sch.ReduceLROnPlateau(make_optimizer(), **kwargs)
    expected, got = [], []
    for m in metrics:
        tsched.step(float(m))
        ours.step(np.float64(m))
        expected.append([g["lr"] for g in topt.param_groups] + [tsched.num_bad_epochs, tsched.best])
        got.append(ours.get_last_lr() + [ours.num_bad_epochs, ours.best])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[-1][:2] != LRS                                             # some reduction happened
