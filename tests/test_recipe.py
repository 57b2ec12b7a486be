"""The example scripts end to end, on small data the test makes (image folders, idx files)."""
import importlib.util
import io
import json
import os
import tarfile

import numpy as np
import pytest

from minidl.data import write_idx
from minidl.train.checkpoint import load_checkpoint
from minidl.train.recipe import parse_config, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_png_tar(path, size=32, per_class=6, classes=("cat", "dog", "ship"), mode="RGB"):
    from PIL import Image
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for k, cls in enumerate(classes):
                for i in range(per_class):
                    shape = (size, size, 3) if mode == "RGB" else (size, size)
                    pixels = rng.integers(0, 256, shape).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(pixels, mode=mode).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"toy/{split}/{cls}/{i:04d}.png")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))


def test_cifar10_script_on_an_image_folder_then_resume(tmp_path, cache, capsys):
    task = load_script("train_nin_cifar10").CIFAR10
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data)
    out = tmp_path / "run"
    args = ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--batch-size", "6", "--out", str(out),
            "--quiet", "--schedule", "plateau", "--epochs", "1"]
    first = run(task, args)
    assert first["epochs"] == 1
    printed = capsys.readouterr()
    assert "decoding" not in printed.err + printed.out, "--quiet must silence the data-loading progress bars too"
    second = run(task, args[:-1] + ["2", "--resume"])
    assert second["epochs"] == 2
    assert second["train_seconds"] > first["train_seconds"], "a resumed run's training time counts both runs"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["width"] == 0.05 and summary["backend"] == "numpy"
    assert (out / "curves.png").exists() and (out / "checkpoint.pkl").exists()


def test_resume_refuses_a_longer_one_cycle_schedule(tmp_path, cache):
    task = load_script("train_nin_cifar10").CIFAR10
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, per_class=3)
    args = ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--batch-size", "6",
            "--out", str(tmp_path / "run"), "--quiet", "--epochs"]
    run(task, args + ["1"])
    with pytest.raises(ValueError, match="epochs: checkpoint 1 vs now 2"):
        run(task, args + ["2", "--resume"])


def test_mnist_script_on_idx_files(tmp_path, cache):
    task = load_script("train_nin_mnist").MNIST
    rng = np.random.default_rng(1)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 30), ("t10k", 12)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    summary = run(task, ["--data", str(folder), "--backend", "numpy", "--width", "0.1", "--batch-size", "10",
                         "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet", "--init-std", "0.05",
                         "--lr", "1e-6"])
    assert summary["epochs"] == 1 and summary["parameters"] > 0
    weights = [w for w in load_checkpoint(tmp_path / "run" / "checkpoint.pkl")["model"].values() if w.ndim == 4]
    stds = [float(w.std()) for w in weights if w.size >= 200]
    assert stds and all(0.04 < s < 0.06 for s in stds), f"--init-std 0.05 should set every conv's std: {stds}"


def test_quick_preset_fills_only_unset_options():
    task = load_script("train_nin_cifar10").CIFAR10
    config = parse_config(task, ["--quick", "--epochs", "5"])
    assert config["epochs"] == 5                           # explicit option wins
    for key, value in task.quick.items():
        if key != "epochs":
            assert config[key] == value
    plain = parse_config(task, [])
    assert plain["width"] == 1.0 and plain["lr"] == 0.05 and plain["epochs"] == 100


def test_bad_options_are_rejected(capsys):
    task = load_script("train_nin_cifar10").CIFAR10
    with pytest.raises(SystemExit):
        parse_config(task, ["--epochs", "0"])
    assert "--epochs must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(task, ["--init-std", "0"])
    assert "--init-std must be positive, got 0.0" in capsys.readouterr().err


def test_offline_without_data_is_a_clean_error(tmp_path, cache, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    task = load_script("train_nin_cifar10").CIFAR10
    with pytest.raises(SystemExit) as exit_info:
        run(task, ["--backend", "numpy", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    assert exit_info.value.code == 2
    assert "--data PATH" in capsys.readouterr().out


def test_watch_dead_logits_example_reports_each_step(tmp_path, cache, capsys):
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, per_class=4, classes=[f"c{k}" for k in range(10)])
    load_script("watch_dead_logits").main(["--data", str(data), "--backend", "numpy", "--steps", "3",
                                           "--batch-size", "4", "--every", "1", "--init-std", "0.05"])
    lines = capsys.readouterr().out.splitlines()
    assert "Gaussian std 0.05" in lines[0]
    rows = [line.split() for line in lines[2:-1]]
    assert [int(r[0]) for r in rows] == [0, 1, 2]
    assert all(np.isfinite(float(r[1])) and r[3].endswith("%") for r in rows)
