"""Every error a user can cause from the training script's command line: one line on stderr, exit 2.

Each case also shows *when* it is caught: options and the output folder are checked before the data
is loaded (a test's ``load_data`` that fails if called), so no slow work is lost to a typo.
"""
import errno
import os
import subprocess
import sys

import pytest

import minidl
import minidl.train.recipe as recipe
from minidl.train.loop import checkpoint_path
from test_recipe import ROOT, load_script, make_png_tar


@pytest.fixture
def task():
    return load_script("train_nin_cifar10").CIFAR10


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))


@pytest.fixture
def toy_data(tmp_path):
    path = tmp_path / "toy.tar.gz"
    make_png_tar(path, size=8, per_class=3)
    return path


def train_args(data, out, *more):
    return ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--batch-size", "6",
            "--epochs", "1", "--quiet", "--out", str(out), *more]


def one_line_error(capsys, run_it, code=2) -> str:
    """Run ``run_it()``, expect exit ``code`` with exactly one line on stderr and no traceback; return it."""
    with pytest.raises(SystemExit) as stopped:
        run_it()
    assert stopped.value.code == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_data_loading(monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("the data was loaded before the options were checked")
    monkeypatch.setattr(recipe, "load_data", must_not_load)


@pytest.mark.parametrize("argv,message", [
    (["--width", "0"], "--width must be a positive finite number (the factor on every hidden channel count), got 0.0"),
    (["--width", "nan"], "--width must be a positive finite number"),
    (["--dropout", "1.5"], "--dropout must be a probability in [0, 1), got 1.5"),
    (["--dropout", "-0.1"], "--dropout must be a probability in [0, 1), got -0.1"),
    (["--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["--lr", "inf"], "--lr must be a positive finite number, got inf"),
    (["--lr", "-0.1"], "--lr must be a positive finite number, got -0.1"),
    (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0, got -1.0"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number >= 0, got inf"),
    (["--momentum", "5"], "--momentum must be in [0, 1) (1 or more makes SGD diverge), got 5.0"),
    (["--momentum", "nan"], "--momentum must be in [0, 1)"),
    (["--warmup", "nan"], "--warmup must be a fraction in [0, 1], got nan"),
    (["--bias-lr-mult", "inf"], "--bias-lr-mult must be a positive finite number, got inf"),
    (["--seed", "-1"], "--seed must be at least 0, got -1"),
    (["--subset", "0"], "--subset must be at least 1, got 0"),
    (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    (["--init", "nan"], "argument --init: must be one of he, uniform or a positive Gaussian std, got 'nan'"),
    (["--resume", "--overwrite"], "--resume continues the run in --out and --overwrite replaces it"),
])
def test_bad_options_stop_in_one_line_before_any_data(task, tmp_path, capsys, no_data_loading, argv, message):
    line = one_line_error(capsys, lambda: recipe.run(task, ["--out", str(tmp_path / "run"), *argv]))
    assert message in line and line.endswith("(see --help)")


def test_cupy_backend_without_cupy_is_one_line(task, tmp_path, capsys, no_data_loading):
    if minidl.cupy_available():
        pytest.skip("CuPy and a GPU are usable here")
    line = one_line_error(capsys, lambda: recipe.run(task, ["--backend", "cupy", "--out", str(tmp_path / "run")]))
    assert line.startswith("error: minidl: the 'cupy' backend needs") and "--backend numpy" in line


def test_an_out_that_is_a_file_is_refused_before_the_data(task, tmp_path, capsys, no_data_loading):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    line = one_line_error(capsys, lambda: recipe.run(task, train_args("unused", a_file)))
    assert line == f"error: --out {a_file} is a file, not a folder; choose a folder for the run's files"
    line = one_line_error(capsys, lambda: recipe.run(task, train_args("unused", a_file / "run")))
    assert line.startswith(f"error: --out {a_file / 'run'} is not a writable folder")
    assert a_file.read_text() == "mine"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_out_is_refused_before_the_data(task, tmp_path, capsys, no_data_loading):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        line = one_line_error(capsys, lambda: recipe.run(task, train_args("unused", folder)))
    finally:
        folder.chmod(0o755)
    assert line.startswith(f"error: --out {folder} is not a writable folder")


def test_reusing_out_never_destroys_a_run(task, tmp_path, cache, capsys, toy_data):
    out = tmp_path / "run"
    recipe.run(task, train_args(toy_data, out))
    files = {name: (out / name).read_bytes() for name in os.listdir(out)}
    capsys.readouterr()
    line = one_line_error(capsys, lambda: recipe.run(task, train_args(toy_data, out, "--lr", "0.01")))
    assert line.startswith(f"error: --out {out} already holds a run (checkpoint.safetensors, metrics.jsonl, "
                           "summary.json, curves.png, model.safetensors); continue it with --resume")
    assert "--overwrite" in line
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == files        # nothing touched
    replaced = recipe.run(task, train_args(toy_data, out, "--lr", "0.01", "--overwrite"))
    assert replaced["config"]["lr"] == 0.01 and replaced["epochs"] == 1


def test_resume_with_other_options_is_one_line_before_the_data(task, tmp_path, cache, capsys, toy_data, monkeypatch):
    out = tmp_path / "run"
    recipe.run(task, train_args(toy_data, out))
    capsys.readouterr()
    monkeypatch.setattr(recipe, "load_data", lambda *a, **k: pytest.fail("data loaded before the checkpoint check"))
    line = one_line_error(capsys, lambda: recipe.run(task, train_args(toy_data, out, "--resume", "--dropout", "0.2")))
    assert line.startswith("error: --resume: the checkpoint was made with other settings (dropout: checkpoint 0.5 vs now 0.2)")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_resume_on_a_damaged_checkpoint_is_one_line(task, tmp_path, cache, capsys, toy_data, damage):
    out = tmp_path / "run"
    recipe.run(task, train_args(toy_data, out))
    capsys.readouterr()
    path = checkpoint_path(out)
    whole = open(path, "rb").read()
    damaged = {"truncated": whole[:len(whole) // 2], "garbage": b"minidl? no: " + bytes(range(256)), "empty": b""}[damage]
    with open(path, "wb") as f:
        f.write(damaged)
    line = one_line_error(capsys, lambda: recipe.run(task, train_args(toy_data, out, "--resume")))
    assert line.startswith("error: ") and path in line


def test_a_full_disk_during_training_is_one_line(task, tmp_path, cache, capsys, toy_data, monkeypatch):
    import minidl.train.loop as loop

    def disk_full(path, state):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(loop, "save_checkpoint", disk_full)
    line = one_line_error(capsys, lambda: recipe.run(task, train_args(toy_data, tmp_path / "run")))
    assert line.startswith(f"error: could not write the run's files in {tmp_path / 'run'} ([Errno 28] No space left")
    assert "--resume" in line


def test_ctrl_c_while_the_data_loads_exits_130_in_one_line(task, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(recipe, "load_data", interrupted)
    line = one_line_error(capsys, lambda: recipe.run(task, ["--out", str(tmp_path / "run")]), code=130)
    assert line == "interrupted before training began; nothing was trained"


def test_a_subset_larger_than_the_data_is_refused(task, tmp_path, cache, capsys, toy_data):
    line = one_line_error(capsys, lambda: recipe.run(task, train_args(toy_data, tmp_path / "run", "--subset", "100")))
    assert line == ("error: --subset 100 is more than the 9 training images; "
                    "give at most 9, or leave --subset out to train on all of them")


def test_a_finished_plateau_run_grows_on_resume(task, tmp_path, cache, capsys, toy_data):
    """--epochs N --resume extends a finished run where the schedule allows it (plateau, constant)."""
    out = tmp_path / "run"
    args = train_args(toy_data, out, "--schedule", "plateau")
    recipe.run(task, args)
    grown = recipe.run(task, [a if a != "1" else "2" for a in args] + ["--resume"])
    assert grown["epochs"] == 2
    again = recipe.run(task, [a if a != "1" else "2" for a in args] + ["--resume"])
    assert again["epochs"] == 2 and "has already done its 2 epochs; nothing left to train" in capsys.readouterr().out


@pytest.mark.parametrize("script,argv,line", [
    ("train_nin_cifar10", ["--lr", "inf"], "train_nin_cifar10.py: error: --lr must be a positive finite number, got inf (see --help)"),
    ("train_nin_mnist", ["--dropout", "1"], "train_nin_mnist.py: error: --dropout must be a probability in [0, 1), got 1.0 (see --help)"),
    ("watch_dead_logits", ["--data", "{tmp}/nowhere"], "error: load_image_folder: {tmp}/nowhere does not exist;"),
    ("show_class_maps", ["--run", "{tmp}/nowhere"], "error: load_checkpoint: no checkpoint at {tmp}/nowhere/"),
])
def test_each_script_prints_one_line_and_exits_2(tmp_path, script, argv, line):
    """End to end, in a real process: no traceback, one line, exit status 2."""
    argv = [a.format(tmp=tmp_path) for a in argv]
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", f"{script}.py"), *argv,
                             "--backend", "numpy"] + (["--out", str(tmp_path / "run")] if script.startswith("train") else []),
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line.format(tmp=tmp_path)), result.stderr
