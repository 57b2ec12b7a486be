"""model.safetensors (save_model / load_model), predict(), examples/predict.py, --export, and PyTorch interchange."""
import json
import os

import numpy as np
import pytest

import minidl
from minidl import data as mdata
from minidl.models import NIN, ModelFileError, load_model, save_model
from minidl.models.torch_names import torch_names

from test_recipe import load_script, make_png_tar
from test_serialization import assert_identical

CLASSES = [f"class{k}" for k in range(6)]


def randomize_batch_norm(model, rng):
    """Running statistics and affine parameters away from 0/1, so that eval-mode batch norm does something."""
    for module in model.modules():
        if isinstance(module, minidl.nn.BatchNorm2d):
            c = module.num_features
            module.set_buffer("running_mean", rng.normal(0, 0.2, c).astype(np.float32))
            module.set_buffer("running_var", rng.uniform(0.5, 2.0, c).astype(np.float32))
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.normal(0, 0.1, c)


def small_trained_model(preprocess_kind="gcn-zca", size=8, batch_norm=True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (24, size, size, 3), dtype=np.uint8)
    preprocess = (mdata.Compose([mdata.GlobalContrastNormalize(), mdata.ZCAWhitening(progress=False)])
                  if preprocess_kind == "gcn-zca" else mdata.Standardize())
    preprocess.fit(mdata.to_float(images))
    model = NIN(num_classes=len(CLASSES), width=0.05, batch_norm=batch_norm, init=0.2)
    if batch_norm:
        randomize_batch_norm(model, rng)
    return model, preprocess, images


def manual_probabilities(model, preprocess, images):
    """What predict must compute, step by step: to float, preprocess, NCHW view, forward, softmax."""
    model.eval()
    x = preprocess(mdata.to_float(images))
    with minidl.no_grad():
        logits = model(minidl.tensor(np.ascontiguousarray(x).transpose(0, 3, 1, 2)))
        return minidl.functional.softmax(logits, axis=1).numpy()


def save_png(path, pixels):
    from PIL import Image
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.mark.parametrize("preprocess_kind", ["gcn-zca", "standard"])
def test_model_file_rebuilds_the_model_and_predict_takes_arrays_and_files(tmp_path, preprocess_kind):
    model, preprocess, images = small_trained_model(preprocess_kind)
    save_model(tmp_path / "model.safetensors", model, CLASSES, (8, 8), preprocess)
    loaded = load_model(tmp_path / "model.safetensors")
    assert isinstance(loaded, NIN) and not loaded.training
    assert loaded.classes == CLASSES and loaded.image_size == (8, 8) and loaded.config == model.config
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], array, err_msg=name)
    assert type(loaded.preprocess) is type(preprocess)
    assert_identical(preprocess.state_dict(), loaded.preprocess.state_dict())

    probabilities = loaded.predict(images[:5])
    assert probabilities.shape == (5, len(CLASSES)) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(probabilities, manual_probabilities(model, preprocess, images[:5]))
    files = [save_png(tmp_path / f"{i}.png", images[i]) for i in range(5)]     # PNG is lossless
    np.testing.assert_array_equal(loaded.predict(files), probabilities)
    # in batches of 2, the model runs on images 0-1, 2-3 and 4: exactly those batches' results (the BLAS may
    # round a convolution's sums differently for a different number of rows, so not those of one batch of 5)
    in_twos = np.concatenate([manual_probabilities(model, preprocess, images[i:min(i + 2, 5)]) for i in (0, 2, 4)])
    np.testing.assert_array_equal(loaded.predict(images[:5], batch_size=2), in_twos)
    np.testing.assert_allclose(in_twos, probabilities, rtol=1e-5)          # float32 roundings through 9 layers


def test_predict_resizes_and_converts_images_as_pillow_does(tmp_path):
    from PIL import Image
    model, preprocess, _ = small_trained_model("standard")
    save_model(tmp_path / "m.safetensors", model, CLASSES, (8, 8), preprocess)
    loaded = load_model(tmp_path / "m.safetensors")
    big = np.random.default_rng(1).integers(0, 256, (20, 12, 3), dtype=np.uint8)       # another size and shape
    resized = np.asarray(Image.fromarray(big).resize((8, 8), Image.Resampling.BICUBIC))
    expected = loaded.predict(resized[None])
    np.testing.assert_array_equal(loaded.predict([big]), expected)
    np.testing.assert_array_equal(loaded.predict([save_png(tmp_path / "big.png", big)]), expected)
    rgba = np.concatenate([big, np.full((20, 12, 1), 77, np.uint8)], axis=2)           # alpha is dropped
    np.testing.assert_array_equal(loaded.predict([save_png(tmp_path / "rgba.png", rgba)]), expected)
    gray = big[:, :, 0]
    gray_rgb = np.asarray(Image.fromarray(gray).convert("RGB").resize((8, 8), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(loaded.predict([save_png(tmp_path / "gray.png", gray)]), loaded.predict(gray_rgb[None]))
    with pytest.raises(ValueError, match=r"expected uint8 images.*float32"):
        loaded.predict(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="no image file at"):
        loaded.predict([str(tmp_path / "missing.png")])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="is not an image Pillow can read"):
        loaded.predict([str(tmp_path / "text.png")])


def test_load_model_refuses_other_files(tmp_path):
    from minidl.train.checkpoint import save_checkpoint
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_model(tmp_path / "missing.safetensors")
    save_checkpoint(tmp_path / "checkpoint.safetensors", {"model": {}, "optimizer": {}})
    with pytest.raises(ModelFileError, match="a training checkpoint, not a minidl model file.*--export"):
        load_model(tmp_path / "checkpoint.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk" * 10)
    with pytest.raises(ModelFileError, match="not a minidl model file"):
        load_model(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="the model has 6 classes, got 2 class names"):
        save_model(tmp_path / "m.safetensors", small_trained_model()[0], ["a", "b"], (8, 8))


# -- a training run, its model file, --export and examples/predict.py ---------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    os.environ["MINIDL_DATA"] = str(tmp / "cache")
    try:
        data = tmp / "toy.tar.gz"
        make_png_tar(data, per_class=2, classes=[f"c{k}" for k in range(7)])
        task = load_script("train_nin_cifar10").CIFAR10
        from minidl.train.recipe import run
        run(task, ["--data", str(data), "--backend", "numpy", "--width", "0.05", "--epochs", "1", "--batch-size", "7",
                   "--batch-norm", "--out", str(tmp / "run"), "--quiet"])
    finally:
        os.environ.pop("MINIDL_DATA", None)
    return task, tmp / "run", data


def test_training_writes_the_model_file_and_export_writes_it_again(trained_run, tmp_path, capsys):
    from minidl.train.recipe import restore_run, run
    task, run_dir, data = trained_run
    model = load_model(run_dir / "model.safetensors")
    restored = restore_run(task, run_dir, progress=False)
    test = restored["test"]
    assert model.classes == test.classes and model.image_size == (32, 32)
    np.testing.assert_array_equal(model.predict(test.images),
                                  manual_probabilities(restored["model"], restored["preprocess"], test.images))
    first = (run_dir / "model.safetensors").read_bytes()
    os.remove(run_dir / "model.safetensors")
    capsys.readouterr()
    result = run(task, ["--out", str(run_dir), "--export"])
    assert os.path.join(str(run_dir), "model.safetensors") in result["exported"]
    assert (run_dir / "model.safetensors").read_bytes() == first
    # a checkpoint from before the model file existed lacks the class names: the data set is read again
    from minidl.train.checkpoint import load_checkpoint, save_checkpoint
    checkpoint = load_checkpoint(run_dir / "checkpoint.safetensors")
    old = {**checkpoint, "extra": {"preprocess": checkpoint["extra"]["preprocess"]}}
    save_checkpoint(tmp_path / "old" / "checkpoint.safetensors", old)
    os.environ["MINIDL_DATA"] = str(run_dir.parent / "cache")
    try:
        run(task, ["--out", str(tmp_path / "old"), "--export", "--quiet"])
    finally:
        os.environ.pop("MINIDL_DATA", None)
    assert (tmp_path / "old" / "model.safetensors").read_bytes() == first
    with pytest.raises(SystemExit) as exit_:
        run(task, ["--out", str(tmp_path / "no-run"), "--export"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --export: load_checkpoint: no checkpoint at"), err


def test_predict_script_table_json_show_and_errors(trained_run, tmp_path, capsys):
    task, run_dir, data = trained_run
    predict = load_script("predict")
    import tarfile
    with tarfile.open(data) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "toy" / "test" / "c3"
    single = tmp_path / "toy" / "test" / "c1" / "0000.png"
    model = str(run_dir / "model.safetensors")
    results = predict.main(["--model", model, str(folder), str(single), "--show", str(tmp_path / "maps.png")])
    out = capsys.readouterr().out.splitlines()
    assert [r["file"] for r in results] == sorted(str(p) for p in folder.iterdir()) + [str(single)]
    assert out[0] == results[0]["file"] and len(out) == 3 * 6 + 1 and out[-1].startswith("picture:")
    assert (tmp_path / "maps.png").read_bytes()[:4] == b"\x89PNG"
    probabilities = load_model(model).predict([r["file"] for r in results])
    for result, row in zip(results, probabilities):
        assert [name for name, _ in result["top"]] == [load_model(model).classes[i] for i in np.argsort(-row)[:5]]
        np.testing.assert_allclose([p for _, p in result["top"]], np.sort(row)[::-1][:5], rtol=1e-6)
    predict.main(["--model", model, str(single), "--json", "--top", "3"])
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["file"] == str(single) and len(printed[0]["top"]) == 3
    assert set(printed[0]["top"][0]) == {"class", "probability"}

    (tmp_path / "notes.png").write_text("not an image")
    for argv, message in [([str(tmp_path / "nothing.png")], "no such file or folder"),
                          ([str(tmp_path / "notes.png")], "is not an image Pillow can read"),
                          ([str(single), "--model", str(run_dir / "checkpoint.safetensors")], "a training checkpoint"),
                          ([str(single), "--model", str(run_dir / "summary.json")], "not a minidl model file")]:
        with pytest.raises(SystemExit) as exit_:
            predict.main(["--model", model] + argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], (argv, err)


def test_predict_script_gives_the_same_table_through_onnxruntime(trained_run, capsys):
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from minidl.train.recipe import run
    task, run_dir, data = trained_run
    run(task, ["--out", str(run_dir), "--export"])
    predict = load_script("predict")
    images = [str(run_dir / "curves.png")]                # any image: a 32x32 resize of the training curves
    with_minidl = predict.main(["--model", str(run_dir / "model.safetensors")] + images)
    with_onnx = predict.main(["--model", str(run_dir / "model.onnx")] + images)
    tables = capsys.readouterr().out
    assert [[c for c, _ in r["top"]] for r in with_minidl] == [[c for c, _ in r["top"]] for r in with_onnx]
    for a, b in zip(with_minidl, with_onnx):
        np.testing.assert_allclose([p for _, p in a["top"]], [p for _, p in b["top"]], rtol=1e-4, atol=1e-6)

    # --show through onnxruntime: the file's "class_maps" output are minidl's maps, and the picture is drawn
    pixels = predict.load_images(images, (32, 32), 3)
    ours = predict.MinidlPredictor(str(run_dir / "model.safetensors")).class_maps(pixels)
    theirs = predict.OnnxPredictor(str(run_dir / "model.onnx")).class_maps(pixels)
    classes = len(load_model(str(run_dir / "model.safetensors")).classes)
    assert theirs.shape == ours.shape and ours.ndim == 4 and ours.shape[1] == classes
    np.testing.assert_allclose(theirs, ours, **logit_tolerance(ours))
    picture = run_dir / "onnx_maps.png"
    predict.main(["--model", str(run_dir / "model.onnx"), "--show", str(picture)] + images)
    assert picture.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()

    # a file without that output (another head, or an older export) is refused in one line
    import onnx
    proto = onnx.load(str(run_dir / "model.onnx"))
    kept = [o for o in proto.graph.output if o.name != "class_maps"]
    assert len(kept) == len(proto.graph.output) - 1
    del proto.graph.output[:]
    proto.graph.output.extend(kept)
    onnx.save(proto, str(run_dir / "no_maps.onnx"))
    with pytest.raises(SystemExit) as exit_:
        predict.main(["--model", str(run_dir / "no_maps.onnx"), "--show", "x.png"] + images)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--show draws the class maps" in err[0] and "no 'class_maps' output" in err[0], err


# -- PyTorch -------------------------------------------------------------------------------------------
def logit_tolerance(reference):
    """float32 forward passes of the same NIN in two libraries differ by rounding only: the longest sum is
    192 * 25 = 4,800 products, whose float32 rounding error grows like sqrt(4800) * 2^-24 ~ 4e-6 of the sum of
    |terms| per layer; over 9 layers that stays under 1e-4 of the logits' scale (observed: ~1e-6)."""
    return dict(rtol=1e-4, atol=1e-4 * float(np.abs(reference).max()))


@pytest.mark.parametrize("batch_norm, head", [(False, "gap"), (True, "gap"), (True, "fc-dropout")])
def test_model_file_loads_into_a_pytorch_nin_and_back(tmp_path, batch_norm, head):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import load_file
    from minidl.models.torch_names import torch_sequential
    rng = np.random.default_rng(3)
    model = NIN(num_classes=10, width=0.25, batch_norm=batch_norm, head=head)
    if batch_norm:
        randomize_batch_norm(model, rng)
    save_model(tmp_path / "model.safetensors", model, [str(k) for k in range(10)], (32, 32))
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    model.eval()
    with minidl.no_grad():
        ours = model(minidl.tensor(x)).numpy()

    names = torch_names(model)
    net = torch_sequential(model).eval()
    weights = load_file(str(tmp_path / "model.safetensors"))
    missing, unexpected = net.load_state_dict(
        {names[k[len("model."):]]: v for k, v in weights.items() if k.startswith("model.")}, strict=False)
    assert not unexpected and all(name.endswith("num_batches_tracked") for name in missing)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(theirs, ours, **logit_tolerance(ours))

    # the reverse: PyTorch's own initialization (and statistics) into a minidl NIN
    torch.manual_seed(0)
    trained_in_torch = torch_sequential(model).eval()
    for layer in trained_in_torch:
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.2, 0.2)
            layer.running_var.uniform_(0.5, 2.0)
    torch_state = {k: v.numpy() for k, v in trained_in_torch.state_dict().items()}
    fresh = NIN(num_classes=10, width=0.25, batch_norm=batch_norm, head=head)
    fresh.load_state_dict({ours_name: torch_state[theirs_name] for ours_name, theirs_name in names.items()})
    fresh.eval()
    with minidl.no_grad():
        ours = fresh(minidl.tensor(x)).numpy()
    with torch.no_grad():
        theirs = trained_in_torch(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, **logit_tolerance(theirs))
