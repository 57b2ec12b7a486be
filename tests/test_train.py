"""The training loop: atomic checkpoints, exact resume (between and inside epochs), NaN stop, reports."""
import json
import os
import signal

import numpy as np
import pytest

import minidl
from minidl import data as mdata
from minidl import optim
from minidl.models import NIN
from minidl.train import checkpoint as ckpt_mod
from minidl.train import fit, load_checkpoint, save_checkpoint
from minidl.train.loop import Interrupted, RunExistsError, TrainingDiverged, checkpoint_path, existing_run_files


def tiny_datasets(n_train=48, n_test=16, size=8, seed=0):
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]

    def make(n):
        labels = rng.integers(0, 3, n).astype(np.int64)
        images = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
        images[..., 0] = np.where(labels[:, None, None] == 0, 250, images[..., 0])   # something learnable
        return mdata.ArrayDataset(images, labels, classes)
    return make(n_train), make(n_test)


def build(seed=0, lr=0.05):
    minidl.manual_seed(seed)
    train, test = tiny_datasets()
    prep = mdata.Standardize().fit(mdata.to_float(train.images))
    train_loader = mdata.DataLoader(train, 8, shuffle=True, transform=prep, augment=mdata.Augment(pad=1, flip=True))
    test_loader = mdata.DataLoader(test, 16, shuffle=False, transform=prep)
    model = NIN(num_classes=3, width=0.05, dropout=0.5)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=4 * len(train_loader))
    return model, opt, sched, train_loader, test_loader


CONFIG = {"width": 0.05, "seed": 0}


def run_fit(out, epochs, resume=False, model_parts=None):
    model, opt, sched, tr, te = model_parts or build()
    summary = fit(model, opt, tr, te, epochs, str(out), dict(CONFIG), batch_schedule=sched, resume=resume,
                  show_progress=False, log=lambda *a: None)
    return model, summary


def weights(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_resume_between_epochs_gives_identical_weights(tmp_path):
    straight, _ = run_fit(tmp_path / "straight", 4)
    run_fit(tmp_path / "split", 2)
    resumed, summary = run_fit(tmp_path / "split", 4, resume=True)
    assert summary["epochs"] == 4
    assert_same_weights(weights(straight), weights(resumed))
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2, 3, 4]


def test_interrupt_mid_epoch_saves_and_resumes_exactly(tmp_path, monkeypatch):
    straight, _ = run_fit(tmp_path / "straight", 2)

    parts = build()
    opt = parts[1]
    calls = {"n": 0}
    real_step = opt.step

    def step_then_interrupt():
        real_step()
        calls["n"] += 1
        if calls["n"] == 9:            # epoch 2 (6 batches per epoch), third batch
            os.kill(os.getpid(), signal.SIGINT)    # Ctrl-C in the middle of a step
    monkeypatch.setattr(opt, "step", step_then_interrupt)
    with pytest.raises(Interrupted):
        run_fit(tmp_path / "split", 2, model_parts=parts)
    state = load_checkpoint(tmp_path / "split" / "checkpoint.safetensors")
    assert state["epochs_done"] == 1 and state["epoch_state"]["batches_done"] == 3
    resumed, _ = run_fit(tmp_path / "split", 2, resume=True)
    assert_same_weights(weights(straight), weights(resumed))


def test_outputs_written(tmp_path):
    _, summary = run_fit(tmp_path, 2)
    for name in ("checkpoint.safetensors", "metrics.jsonl", "summary.json", "curves.png"):
        assert (tmp_path / name).exists(), name
    saved = json.loads((tmp_path / "summary.json").read_text())
    for key in ("test_accuracy", "epochs", "train_seconds", "images_per_second", "backend", "config"):
        assert key in saved
    assert saved["epochs"] == 2 and saved["backend"] == "numpy"
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def poison_after(loader, batches):
    """Make ``loader`` hand out NaN images after its first ``batches`` batches (a diverging run)."""
    clean, calls = loader.transform, [0]

    def transform(x):
        calls[0] += 1
        x = clean(x)
        return x * np.float32("nan") if calls[0] > batches else x
    loader.transform = transform


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    model, opt, sched, tr, te = build()
    poison_after(tr, len(tr) + 2)                            # epoch 1 is clean, epoch 2 turns NaN
    with pytest.raises(TrainingDiverged, match=r"nan in epoch 2.*last good checkpoint \(.*, end of epoch 1\) is kept"):
        fit(model, opt, tr, te, 3, str(tmp_path), dict(CONFIG), batch_schedule=sched, show_progress=False,
            log=lambda *a: None)
    kept = load_checkpoint(checkpoint_path(tmp_path))
    assert kept["epochs_done"] == 1 and kept["epoch_state"] is None
    assert all(np.isfinite(v).all() for v in kept["model"].values())


def test_nan_loss_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    model, opt, sched, tr, te = build()
    poison_after(tr, 1)
    with pytest.raises(TrainingDiverged, match="No checkpoint was written: it diverged before the end of the first epoch"):
        fit(model, opt, tr, te, 3, str(tmp_path), dict(CONFIG), show_progress=False, log=lambda *a: None)
    assert not os.path.exists(checkpoint_path(tmp_path))


def test_an_existing_run_is_never_replaced_silently(tmp_path):
    _, first = run_fit(tmp_path, 1)
    before = {name: (tmp_path / name).read_bytes() for name in existing_run_files(tmp_path)}
    assert len(before) == 4                                  # checkpoint, metrics, summary, curves
    with pytest.raises(RunExistsError, match="already holds a run .*resume=True.*overwrite=True"):
        run_fit(tmp_path, 1)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before    # untouched
    model, opt, sched, tr, te = build(seed=1)
    fit(model, opt, tr, te, 1, str(tmp_path), dict(CONFIG), overwrite=True, show_progress=False, log=lambda *a: None)
    assert load_checkpoint(checkpoint_path(tmp_path))["model"].keys() == weights(model).keys()
    assert_same_weights(load_checkpoint(checkpoint_path(tmp_path))["model"], weights(model))   # the new run's


def test_resume_with_other_settings_is_refused(tmp_path):
    run_fit(tmp_path, 1)
    model, opt, sched, tr, te = build()
    with pytest.raises(ValueError, match="width"):
        fit(model, opt, tr, te, 2, str(tmp_path), {"width": 0.5, "seed": 0}, resume=True, show_progress=False,
            log=lambda *a: None)


def test_checkpoint_from_before_init_schemes_still_resumes(tmp_path):
    """Checkpoints written before 2026-11-24 hold ``init_std`` (None = He normal) instead of ``init``,
    and none of the options added since (which then take the value of the old behaviour)."""
    from minidl.train.loop import check_same_config
    from minidl.train.loop import ADDED_OPTIONS
    now = {"width": 1.0, **ADDED_OPTIONS}
    check_same_config({"width": 1.0, "init_std": None}, {**now, "init": "he"})
    check_same_config({"width": 1.0, "init_std": 0.05}, {**now, "init": 0.05})
    with pytest.raises(ValueError, match="init: checkpoint 'he' vs now 'uniform'"):
        check_same_config({"width": 1.0, "init_std": None}, {**now, "init": "uniform"})
    with pytest.raises(ValueError, match="bias_lr_mult: checkpoint 1.0 vs now 2.0"):
        check_same_config({"width": 1.0, "init_std": None}, {**now, "init": "he", "bias_lr_mult": 2.0})
    with pytest.raises(ValueError, match="warmup: checkpoint 0.15 vs now 0.3"):
        check_same_config({"width": 1.0, "init": "he"}, {**now, "init": "he", "warmup": 0.3})


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    import safetensors.numpy
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"x": np.arange(3)})
    real_save_file = safetensors.numpy.save_file

    def broken_save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError("disk full")
    monkeypatch.setattr(safetensors.numpy, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"x": np.arange(5)})
    monkeypatch.setattr(safetensors.numpy, "save_file", real_save_file)
    np.testing.assert_array_equal(load_checkpoint(path)["x"], np.arange(3))
    assert sorted(os.listdir(tmp_path)) == ["c.safetensors"]          # no temporary file left behind


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable minidl checkpoint"):
        load_checkpoint(bad)


def test_curves_of_a_one_epoch_run_show_their_points():
    from minidl.train.report import draw_curves, pyplot
    record = {"epoch": 1, "train_loss": 2.0, "test_loss": 1.9, "train_accuracy": 0.3, "test_accuracy": 0.35}
    fig = draw_curves([record])
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 4 and all(line.get_marker() == "o" for line in lines)     # a lone point is visible
    loss_axis, accuracy_axis = fig.axes
    assert [line.get_ydata()[0] for line in accuracy_axis.get_lines()] == [30.0, 35.0]
    assert loss_axis.get_xlim()[0] < 1 < loss_axis.get_xlim()[1]
    pyplot().close(fig)
