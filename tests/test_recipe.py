"""The example scripts end to end, on small data the test makes (image folders, idx files)."""
import importlib.util
import io
import json
import os
import sys
import tarfile

import numpy as np
import pytest

from minidl.data import write_idx
from minidl.models import NIN
from minidl.train.checkpoint import load_checkpoint
from minidl.train.recipe import parse_config, run

from float_bounds import assert_within, gamma, gcn_zca_error_bound, unit_roundoff

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


def record_loaders(monkeypatch) -> list:
    """Let the recipe's fit() run as usual, recording its (train_loader, test_loader) in the returned list."""
    import minidl.train.recipe as recipe
    loaders, real_fit = [], recipe.fit

    def spying_fit(model, optimizer, train_loader, test_loader, *args, **kwargs):
        loaders.append((train_loader, test_loader))
        return real_fit(model, optimizer, train_loader, test_loader, *args, **kwargs)
    monkeypatch.setattr(recipe, "fit", spying_fit)
    return loaders


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
    assert (out / "curves.png").exists() and (out / "checkpoint.safetensors").exists()


def test_resume_refuses_a_longer_one_cycle_schedule(tmp_path, cache, capsys):
    task = load_script("train_nin_cifar10").CIFAR10
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, per_class=3)
    args = ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--batch-size", "6",
            "--out", str(tmp_path / "run"), "--quiet", "--epochs"]
    run(task, args + ["1"])
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    with pytest.raises(SystemExit) as stopped:
        run(task, args + ["2", "--resume"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("error: --resume: the run was planned for 1 epochs, and --schedule onecycle spreads its learning rate "
            "over exactly that many, so it cannot become a run of 2") in err
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before


def test_mnist_script_on_idx_files(tmp_path, cache):
    task = load_script("train_nin_mnist").MNIST
    rng = np.random.default_rng(1)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 30), ("t10k", 12)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    summary = run(task, ["--data", str(folder), "--backend", "numpy", "--width", "0.1", "--batch-size", "10",
                         "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet", "--init", "0.05",
                         "--lr", "1e-6"])
    assert summary["epochs"] == 1 and summary["parameters"] > 0
    weights = [w for w in load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")["model"].values() if w.ndim == 4]
    stds = [float(w.std()) for w in weights if w.size >= 200]
    assert stds and all(0.04 < s < 0.06 for s in stds), f"--init 0.05 should set every conv's std: {stds}"


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
        parse_config(task, ["--init", "0"])
    assert "argument --init: must be one of he, uniform or a positive Gaussian std, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(task, ["--init", "xavier"])
    assert "got 'xavier'" in capsys.readouterr().err
    assert parse_config(task, ["--init", "uniform"])["init"] == "uniform"
    assert parse_config(task, ["--init", "0.01"])["init"] == 0.01


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
    assert "--data PATH" in capsys.readouterr().err


def test_watch_dead_logits_example_reports_each_step(tmp_path, cache, capsys):
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, per_class=4, classes=[f"c{k}" for k in range(10)])
    load_script("watch_dead_logits").main(["--data", str(data), "--backend", "numpy", "--steps", "3",
                                           "--batch-size", "4", "--every", "1", "--init", "0.05"])
    lines = capsys.readouterr().out.splitlines()
    assert "Gaussian std 0.05" in lines[0]
    rows = [line.split() for line in lines[2:-1]]
    assert [int(r[0]) for r in rows] == [0, 1, 2]
    assert all(np.isfinite(float(r[1])) and r[3].endswith("%") for r in rows)


def test_gcn_zca_is_applied_once_and_resume_stays_exact(tmp_path, cache, monkeypatch, capsys):
    """--preprocess gcn-zca whitens both splits once (float32 data sets, loaders without transform);
    --quiet silences its bars; a run resumed after epoch 1 ends with the weights of a straight run."""
    import minidl.train.recipe as recipe
    from minidl import data as mdata
    task = load_script("train_nin_cifar10").CIFAR10
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, size=8, per_class=4)                 # 8x8x3: a 192x192 whitening matrix
    loaders = record_loaders(monkeypatch)
    args = ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--batch-size", "4",
            "--preprocess", "gcn-zca", "--schedule", "plateau"]
    straight = run(task, args + ["--epochs", "2", "--out", str(tmp_path / "straight"), "--quiet"])
    printed = capsys.readouterr()
    assert "GCN + ZCA" not in printed.err + printed.out, "--quiet must silence the whitening's progress bars"
    assert straight["epochs"] == 2 and np.isfinite(straight["test_loss"])

    train, test = mdata.load_image_folder(str(data), progress=False)           # the decoded uint8 images (cached)
    prep = recipe.build_preprocess("gcn-zca", train.images, progress=False)
    train_loader, test_loader = loaders[0]
    assert train_loader.augment is not None
    for loader, split in ((train_loader, train), (test_loader, test)):
        assert loader.transform is None, "the whitening must not run again on every batch"
        assert loader.dataset.images.dtype == np.float32
        expected = prep(mdata.to_float(split.images))
        # two float32 runs (chunk by chunk vs all at once), each within the derived bound of the exact result
        assert_within(loader.dataset.images, expected, 2 * gcn_zca_error_bound(prep, mdata.to_float(split.images)),
                      "GCN + ZCA applied once")
        np.testing.assert_array_equal(loader.dataset.labels, split.labels)

    run(task, args + ["--epochs", "1", "--out", str(tmp_path / "split"), "--quiet"])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)     # bars show on a terminal only
    resumed = run(task, args + ["--epochs", "2", "--out", str(tmp_path / "split"), "--resume"])   # bars on
    assert "GCN + ZCA: training images" in capsys.readouterr().err
    assert resumed["epochs"] == 2 and resumed["test_loss"] == straight["test_loss"]
    final = [load_checkpoint(tmp_path / out / "checkpoint.safetensors")["model"] for out in ("straight", "split")]
    assert final[0].keys() == final[1].keys()
    for name in final[0]:
        np.testing.assert_array_equal(final[1][name], final[0][name], err_msg=name)


def test_show_class_maps_draws_what_gap_averages(tmp_path, cache, capsys):
    from PIL import Image

    import minidl
    from minidl.train.recipe import restore_run
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, per_class=4, classes=[f"c{k}" for k in range(10)])
    task = load_script("train_nin_cifar10").CIFAR10
    run(task, ["--data", str(data), "--backend", "numpy", "--width", "0.1", "--epochs", "1", "--batch-size", "8",
               "--out", str(tmp_path / "run"), "--quiet"])
    capsys.readouterr()
    shown = load_script("show_class_maps").main(["--run", str(tmp_path / "run"), "--images", "3", "--backend", "numpy",
                                              "--quiet"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 3 + 1 and lines[-1].endswith(f"picture: {shown['out']}")
    with Image.open(shown["out"]) as picture:
        assert picture.size[0] > picture.size[1] > 100          # 3 rows of 11 panels
    maps, probabilities = shown["maps"], shown["probabilities"]
    assert maps.shape == (3, 10, 8, 8) and maps.min() >= 0       # the last ReLU's maps, 8x8 for 32x32 images
    # the probabilities are softmax(GAP(maps)), and GAP(maps) is what the trained model outputs
    restored = restore_run(task, tmp_path / "run", progress=False)
    test = restored["test"]
    x = restored["preprocess"](minidl.data.to_float(test.images[shown["indices"]]))
    with minidl.no_grad():
        logits = restored["model"](minidl.tensor(x.transpose(0, 3, 1, 2))).numpy()
    # GAP: float32 means of 8 * 8 maps >= 0 (after a ReLU), so within gamma_64 of the exact means (in float64)
    means = maps.astype(np.float64).mean(axis=(2, 3))
    assert_within(logits, means, (gamma(64) + gamma(64, np.float64)) * means, "GAP(maps) vs the model's logits")
    # softmax(x) in float32 as exp(z - log(sum exp z)), z = x - max x, with the logits x off by at most
    # delta (the GAP bound), exp and log within eps = 4 ulp (8u, NumPy's float32 SIMD exp/log), K = 10:
    # relative error of p_k <= 2 delta + u |z_k| + (gamma_(K-1) + eps + u max|z|) + eps |log S| + u |log p_k| + eps
    u, eps, delta = unit_roundoff(), 8 * unit_roundoff(), ((gamma(64) + gamma(64, np.float64)) * means).max()
    z = means - means.max(axis=1, keepdims=True)
    log_s = np.log(np.exp(z).sum(axis=1, keepdims=True))
    exact = np.exp(z - log_s)
    relative = (2 * delta + u * np.abs(z) + gamma(9) + eps + u * np.abs(z).max(axis=1, keepdims=True)
                + eps * np.abs(log_s) + u * np.abs(z - log_s) + eps)
    assert_within(probabilities, exact, 1.01 * relative * exact, "softmax(GAP(maps))")   # 1.01: second-order terms


def test_restore_run_refits_the_preprocessing_of_an_older_checkpoint(tmp_path, cache):
    from minidl.train.checkpoint import save_checkpoint
    from minidl.train.recipe import restore_run
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, per_class=5)
    task = load_script("train_nin_cifar10").CIFAR10
    run(task, ["--data", str(data), "--backend", "numpy", "--width", "0.1", "--epochs", "1", "--subset", "9",
               "--out", str(tmp_path / "run"), "--quiet"])
    stored = restore_run(task, tmp_path / "run", progress=False)["preprocess"].state_dict()
    path = tmp_path / "run" / "checkpoint.safetensors"
    checkpoint = load_checkpoint(path)
    assert set(checkpoint["extra"]) == {"preprocess", "classes", "image_shape"}
    del checkpoint["extra"]["preprocess"]                       # as written before 2026-11-24
    save_checkpoint(path, checkpoint)
    refitted = restore_run(task, tmp_path / "run", progress=False)
    for key, value in stored.items():                           # same subset, same statistics
        np.testing.assert_array_equal(refitted["preprocess"].state_dict()[key], value)
    assert len(refitted["train"]) == 9
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        restore_run(task, tmp_path / "nowhere", progress=False)


def test_caffe_bias_options_make_two_parameter_groups(tmp_path, cache, capsys):
    from minidl.train.recipe import build_optimizer, build_schedules
    task = load_script("train_nin_cifar10").CIFAR10
    model = NIN(width=0.1)
    plain = build_optimizer(model, parse_config(task, []))
    assert len(plain.param_groups) == 1 and plain.param_groups[0]["weight_decay"] == 5e-4
    config = parse_config(task, ["--bias-lr-mult", "2", "--no-bias-decay", "--lr", "0.04"])
    opt = build_optimizer(model, config)
    weights, biases = opt.param_groups
    assert all(p.ndim == 4 for p in weights["params"]) and all(p.ndim == 1 for p in biases["params"])
    assert len(weights["params"]) + len(biases["params"]) == len(list(model.parameters()))
    assert (weights["lr"], weights["weight_decay"]) == (0.04, 5e-4)
    assert (biases["lr"], biases["weight_decay"]) == (0.08, 0.0)
    one_cycle, _, _ = build_schedules(opt, config, steps_per_epoch=10)
    for _ in range(150):                                       # into the peak: the biases at twice the rate
        one_cycle.step()
    assert biases["lr"] == pytest.approx(2 * weights["lr"]) and weights["lr"] == pytest.approx(0.04, rel=0.01)
    with pytest.raises(SystemExit):
        parse_config(task, ["--bias-lr-mult", "0"])
    assert "--bias-lr-mult must be a positive finite number, got 0.0" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--warmup", "1.5"], "--warmup must be a fraction in [0, 1], got 1.5"),
    (["--momentum", "-0.1"], "--momentum must be in [0, 1) (1 or more makes SGD diverge), got -0.1"),
    (["--schedule", "cosine", "--warmup", "0.3"], "--warmup belongs to --schedule onecycle, not --schedule cosine"),
    (["--schedule", "step", "--warmup=0.3"], "--warmup belongs to --schedule onecycle, not --schedule step"),
    (["--schedule", "plateau", "--cycle-momentum"],
     "--cycle-momentum belongs to --schedule onecycle, not --schedule plateau"),
    (["--warm", "0.3"], "unrecognized arguments: --warm 0.3")])       # no abbreviations: see parse_config
def test_schedule_options_are_checked(argv, message, capsys):
    task = load_script("train_nin_cifar10").CIFAR10
    with pytest.raises(SystemExit):
        parse_config(task, argv)
    assert message in capsys.readouterr().err


def test_schedule_options_reach_the_optimizer_and_schedule():
    from minidl.train.recipe import build_optimizer, build_schedules
    task = load_script("train_nin_cifar10").CIFAR10
    assert parse_config(task, ["--schedule", "cosine"])["warmup"] == 0.15          # the default is not "given"
    config = parse_config(task, ["--warmup", "0.5", "--cycle-momentum", "--epochs", "2"])
    opt = build_optimizer(NIN(width=0.1), config)
    one_cycle, _, _ = build_schedules(opt, config, steps_per_epoch=5)
    lrs, momenta = [], []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
        one_cycle.step()
    assert int(np.argmax(lrs)) == 4 and int(np.argmin(momenta)) == 4             # the peak at half of 10 steps
    assert momenta[0] == pytest.approx(0.95) and momenta[4] == pytest.approx(0.85)
    assert opt.param_groups[0]["nesterov"]
    plain = build_optimizer(NIN(width=0.1), parse_config(task, ["--no-nesterov"]))
    assert not plain.param_groups[0]["nesterov"] and plain.param_groups[0]["momentum"] == 0.9
    no_momentum = build_optimizer(NIN(width=0.1), parse_config(task, ["--momentum", "0"]))
    assert not no_momentum.param_groups[0]["nesterov"]                               # Nesterov needs momentum
