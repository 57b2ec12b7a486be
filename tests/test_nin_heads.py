"""NIN's classifiers: global average pooling (the paper's) and the fully connected heads it is compared with."""
import json

import numpy as np
import pytest

import minidl
import minidl.functional as F
from minidl import nn
from minidl.models import NIN
from minidl.models.nin import HEADS, pooled_size

from test_nn import to_float64
from test_recipe import load_script, make_png_tar


def test_pooled_size_follows_the_pooling_layers():
    for side in (32, 28, 17, 8, 1):
        x = minidl.tensor(np.zeros((1, 1, side, side), np.float32))
        assert nn.MaxPool2d(3, 2, 1)(x).shape[2] == pooled_size(side)
    assert (pooled_size(32), pooled_size(pooled_size(32))) == (16, 8)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("size", [32, (24, 20)])
def test_every_head_gives_logits(head, size):
    minidl.manual_seed(0)
    model = NIN(width=0.1, num_classes=7, head=head, image_size=size)
    h, w = (size, size) if isinstance(size, int) else size
    logits = model(minidl.tensor(np.random.default_rng(0).standard_normal((3, 3, h, w)).astype(np.float32)))
    assert logits.shape == (3, 7)
    assert model.config["head"] == head


def test_parameter_counts_differ_by_the_classifier_only():
    gap, fc, fcd = (NIN(head=h) for h in HEADS)
    assert gap.num_parameters() == 966_986                # the paper's table (README, test_nn)
    linear = 10 * 8 * 8 * 10 + 10                          # 640 inputs (10 maps of 8x8) -> 10 scores
    assert fc.num_parameters() == fcd.num_parameters() == gap.num_parameters() + linear
    assert fc.classifier[-1].weight.shape == (10, 640)
    assert [type(m) for m in fcd.classifier] == [nn.Flatten, nn.Dropout, nn.Linear]
    assert fcd.classifier[1].p == 0.5
    assert [type(m) for m in fc.classifier] == [nn.Flatten, nn.Linear]
    rows = fc.summary().splitlines()
    assert any(r.startswith("classifier.1") and "6,410" in r for r in rows), "summary() lists the Linear"


def test_default_head_keeps_the_state_dict_of_earlier_nins():
    """Checkpoints written before heads existed hold features.* only; they must load into NIN()."""
    minidl.manual_seed(3)
    model = NIN(width=0.1)
    keys = list(model.state_dict())
    assert all(k.startswith("features.") for k in keys)
    assert len(keys) == 18                                  # 9 convolutions, weight and bias each
    old = {k: np.asarray(v).copy() for k, v in model.state_dict().items()}
    minidl.manual_seed(4)
    fresh = NIN(width=0.1)
    fresh.load_state_dict(old)                              # strict: no missing or unexpected keys
    x = minidl.tensor(np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
    model.eval(), fresh.eval()
    assert np.array_equal(model(x).data, fresh(x).data)
    with pytest.raises(ValueError, match="missing keys: classifier.1.weight, classifier.1.bias"):
        NIN(width=0.1, head="fc").load_state_dict(old)


@pytest.mark.parametrize("head", ["fc", "fc-dropout"])
def test_fc_head_gradcheck_reaches_classifier_and_features(head, rng):
    minidl.manual_seed(5)
    model = to_float64(NIN(num_classes=3, width=0.05, dropout=0.0, head=head, image_size=8))
    model.eval()                                            # dropout off: the function gradcheck sees is fixed
    x = minidl.tensor(rng.standard_normal((2, 3, 8, 8)))
    labels = np.array([2, 0])
    linear = model.classifier[-1]
    assert linear.weight.shape == (3, 3 * 2 * 2)            # 3 maps of 2x2 (8 -> 4 -> 2)
    assert minidl.gradcheck(lambda *ps: F.softmax_cross_entropy(model(x), labels),
                            [linear.weight, linear.bias, model.features[0][0].bias, model.features[6][4].weight])


def test_fc_dropout_drops_in_training_only(rng):
    minidl.manual_seed(6)
    model = NIN(width=0.1, dropout=0.0, head="fc-dropout")
    x = minidl.tensor(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    model.eval()
    assert np.array_equal(model(x).data, model(x).data)
    model.train()
    seen = [model.classifier[:2](model.features(x)).data for _ in range(2)]
    assert (seen[0] == 0).mean() > 0.3 and not np.array_equal(seen[0], seen[1])


def test_bad_head_and_wrong_image_size_are_clear_errors():
    with pytest.raises(ValueError, match=r"NIN: head must be one of 'gap', 'fc', 'fc-dropout', got 'mlp'"):
        NIN(head="mlp")
    with pytest.raises(ValueError, match="NIN: image_size must be positive"):
        NIN(head="fc", image_size=0)
    model = NIN(width=0.1, head="fc")
    with pytest.raises(ValueError, match=r"NIN: head 'fc' was built for 32x32 images .* \(1, 3, 28, 28\)"):
        model(minidl.tensor(np.zeros((1, 3, 28, 28), np.float32)))


def test_recipe_head_option_reaches_the_model_and_resume_of_old_configs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))
    from minidl.train.loop import upgrade_config
    from minidl.train.recipe import build_model, parse_config, restore_run, run
    task = load_script("train_nin_cifar10").CIFAR10
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, size=16)
    out = tmp_path / "run"
    summary = run(task, ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--batch-size", "6",
                         "--epochs", "1", "--head", "fc-dropout", "--out", str(out), "--quiet"])
    assert summary["config"]["head"] == "fc-dropout"
    restored = restore_run(task, out)
    assert restored["model"].head == "fc-dropout"
    assert restored["model"].classifier[-1].weight.shape == (3, 3 * 4 * 4)    # 3 classes, 16 -> 8 -> 4
    assert parse_config(task, [])["head"] == "gap"
    old = {k: v for k, v in parse_config(task, []).items() if k != "head"}      # a checkpoint from before --head
    assert upgrade_config(old)["head"] == "gap"
    with pytest.raises(SystemExit):
        parse_config(task, ["--head", "fully-connected"])
    assert "--head: invalid choice" in capsys.readouterr().err
    assert isinstance(build_model(task, parse_config(task, []), restored["train"]).gap, nn.GlobalAvgPool2d)


def test_ablation_script_trains_each_head_and_writes_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))
    ablation = load_script("ablation_gap_vs_fc")
    data = tmp_path / "toy.tar.gz"
    make_png_tar(data, size=16, per_class=4)
    out = tmp_path / "ablation"
    argv = ["--seeds", "0", "1", "--out", str(out), "--", "--data", str(data), "--backend", "numpy",
            "--width", "0.05", "--batch-size", "6", "--epochs", "1", "--quiet"]
    ablation.main(argv)
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert set(results["runs"]) == set(HEADS) and all(len(r) == 2 for r in results["runs"].values())
    table = (out / "table.md").read_text()
    assert table.strip() in printed
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert set(rows) == {"`gap`", "`fc`", "`fc-dropout`"}
    for head, runs in results["runs"].items():
        errors = [f"{100 * (1 - r['test_accuracy']):.2f}%" for r in runs]
        assert all(e in rows[f"`{head}`"] for e in errors)
        assert f"{ablation.PAPER_TEST_ERROR[head]:.2f}%" in rows[f"`{head}`"]
    assert (out / "gap-seed1" / "checkpoint.safetensors").exists()
    before = (out / "fc-seed0" / "metrics.jsonl").read_text()
    ablation.main(argv)                                      # a finished ablation is read back, not retrained
    assert (out / "fc-seed0" / "metrics.jsonl").read_text() == before
    assert (out / "table.md").read_text() == table
    (out / "gap-seed1" / "summary.json").unlink()           # as if that run had not finished yet
    ablation.main(["--table-only", "--seeds", "0", "1", "--out", str(out)])
    partial = (out / "table.md").read_text()
    assert partial.splitlines()[0] == table.splitlines()[0]
    gap_row = [line for line in partial.splitlines() if line.startswith("| `gap`")][0]
    assert gap_row.split(" | ")[4] == "" and "±" not in gap_row   # seed 1 blank, a mean of one seed
    assert json.loads((out / "results.json").read_text())["seeds_run"]["gap"] == [0]
    with pytest.raises(SystemExit) as stop:
        ablation.main(["--table-only", "--out", str(tmp_path / "empty")])
    assert stop.value.code == 2 and "no finished run" in capsys.readouterr().err


def test_ablation_script_rejects_options_it_sets(tmp_path, capsys):
    ablation = load_script("ablation_gap_vs_fc")
    with pytest.raises(SystemExit) as stop:
        ablation.main(["--out", str(tmp_path), "--", "--seed", "3"])
    assert stop.value.code == 2
    assert "--seed is set by the ablation" in capsys.readouterr().err
