"""The paper's other data sets: CIFAR-100 and SVHN readers, local contrast normalization, the task table.

As in test_data.py, the official formats are written here independently of minidl's writers
(plain pickles in a tar, scipy.io.savemat), so a reader and a writer cannot agree on a mistake.
"""
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from minidl import data as mdata
from minidl.data import cifar100 as cifar100_module
from test_data import serve_body

scipy_io = pytest.importorskip("scipy.io")


# ---------------------------------------------------------------------------------------------- CIFAR-100

def fake_cifar100_files(rng, train_per_class=2, test_per_class=1, fine_names=None):
    """{file name: dict} of a cifar-100-python/ folder: images as rows of R, G, B planes, both label lists."""
    fine_names = fine_names or [f"fine{k:02d}" for k in range(100)]
    files, arrays = {}, {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        fine = np.repeat(np.arange(100), per_class)
        rng.shuffle(fine)
        coarse = rng.integers(0, 20, len(fine))
        images = rng.integers(0, 256, (len(fine), 32, 32, 3)).astype(np.uint8)
        rows = np.empty((len(fine), 3072), dtype=np.uint8)
        for n in range(len(fine)):                          # the official layout, written out pixel by pixel
            for c in range(3):
                rows[n, c * 1024:(c + 1) * 1024] = images[n, :, :, c].reshape(-1)
        files[split] = {b"batch_label": f"{split} batch".encode(), b"filenames": [b"x.png"] * len(fine),
                        b"data": rows, b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist()}
        arrays[split] = (images, fine, coarse)
    files["meta"] = {b"fine_label_names": [name.encode() for name in fine_names],
                     b"coarse_label_names": [f"coarse{k:02d}".encode() for k in range(20)]}
    return files, arrays


def write_tar(path, files, folder="cifar-100-python"):
    with tarfile.open(path, "w:gz") as tar:
        for name, contents in files.items():
            raw = pickle.dumps(contents)
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


@pytest.fixture
def fake_cifar100(tmp_path):
    files, arrays = fake_cifar100_files(np.random.default_rng(0))
    path = tmp_path / "cifar-100-python.tar.gz"
    write_tar(path, files)
    return path, files, arrays


def test_cifar100_reads_fine_and_coarse_labels_exactly(fake_cifar100, tmp_path):
    path, files, arrays = fake_cifar100
    fine_train, fine_test = mdata.load_cifar100(path, download=False)
    coarse_train, coarse_test = mdata.load_cifar100(path, labels="coarse", download=False)
    for fine, coarse, split in ((fine_train, coarse_train, "train"), (fine_test, coarse_test, "test")):
        images, fine_labels, coarse_labels = arrays[split]
        np.testing.assert_array_equal(fine.images, images)
        np.testing.assert_array_equal(coarse.images, images)
        np.testing.assert_array_equal(fine.labels, fine_labels)
        np.testing.assert_array_equal(coarse.labels, coarse_labels)
    assert fine_train.classes == [f"fine{k:02d}" for k in range(100)] and len(fine_train) == 200
    assert coarse_train.classes == [f"coarse{k:02d}" for k in range(20)] and len(coarse_test) == 100
    with tarfile.open(path) as tar:                                    # the extracted folder, or a folder above it
        tar.extractall(tmp_path / "extracted", filter="data")
    for root in (tmp_path / "extracted", tmp_path / "extracted" / "cifar-100-python"):
        again, _ = mdata.load_cifar100(root, download=False)
        np.testing.assert_array_equal(again.images, fine_train.images)
        assert mdata.looks_like_cifar100(root) and not mdata.looks_like_cifar10(root)
    assert mdata.looks_like_cifar100(path) and not mdata.looks_like_cifar10(path)
    with pytest.raises(ValueError, match="labels must be 'fine' or 'coarse', got 'super'"):
        mdata.load_cifar100(path, labels="super", download=False)


def test_cifar100_superclass_table_and_relabelling():
    table = cifar100_module.SUPERCLASSES
    assert len(table) == 20 and all(len(members) == 5 for members in table.values())
    assert len(cifar100_module.FINE_CLASSES) == 100 == len(set(cifar100_module.FINE_CLASSES))
    assert cifar100_module.FINE_CLASSES[:3] == ["apple", "aquarium_fish", "baby"]
    assert cifar100_module.FINE_CLASSES[-1] == "worm" and cifar100_module.COARSE_CLASSES[-1] == "vehicles_2"
    # an image folder's classes come in its own order; the relabelling goes by name
    names = ["worm", "apple", "maple_tree"] + [n for n in cifar100_module.FINE_CLASSES
                                               if n not in ("worm", "apple", "maple_tree")]
    data = mdata.ArrayDataset(np.zeros((3, 32, 32, 3), np.uint8), [0, 1, 2], names)
    coarse = mdata.cifar100_coarse(data)
    assert [coarse.classes[k] for k in coarse.labels] == ["non-insect_invertebrates", "fruit_and_vegetables", "trees"]
    with pytest.raises(ValueError, match=r"expected the 100 CIFAR-100 fine class names, got 3 classes"):
        mdata.cifar100_coarse(mdata.ArrayDataset(np.zeros((1, 32, 32, 3), np.uint8), [0], ["a", "b", "c"]))


def test_cifar100_writer_output_loads_back(tmp_path):
    rng = np.random.default_rng(3)
    classes = cifar100_module.FINE_CLASSES
    train = mdata.ArrayDataset(rng.integers(0, 256, (7, 32, 32, 3)).astype(np.uint8), rng.integers(0, 100, 7), classes)
    test = mdata.ArrayDataset(rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8), rng.integers(0, 100, 4), classes)
    mdata.write_cifar100_archive(tmp_path / "c.tar.gz", train, test)
    got_train, got_test = mdata.load_cifar100(tmp_path / "c.tar.gz", download=False)
    np.testing.assert_array_equal(got_train.images, train.images)
    np.testing.assert_array_equal(got_test.labels, test.labels)
    coarse_train, _ = mdata.load_cifar100(tmp_path / "c.tar.gz", labels="coarse", download=False)
    np.testing.assert_array_equal(coarse_train.labels, mdata.cifar100_coarse(train).labels)


def test_cifar100_bad_files_get_clear_errors(fake_cifar100, tmp_path):
    path, files, _ = fake_cifar100
    raw = path.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r"load_cifar100: .*cut.tar.gz is not a readable tar archive"):
        mdata.load_cifar100(tmp_path / "cut.tar.gz", download=False)
    write_tar(tmp_path / "nometa.tar.gz", {name: files[name] for name in ("train", "test")})
    with pytest.raises(ValueError, match="lacks meta"):
        mdata.load_cifar100(tmp_path / "nometa.tar.gz", download=False)
    bad = dict(files, test={**files["test"], b"fine_labels": [100] + files["test"][b"fine_labels"][1:]})
    write_tar(tmp_path / "range.tar.gz", bad)
    with pytest.raises(ValueError, match=r"batch test has fine_labels from 0 to 100, expected them in \[0, 99\]"):
        mdata.load_cifar100(tmp_path / "range.tar.gz", download=False)
    no_coarse = dict(files, train={k: v for k, v in files["train"].items() if k != b"coarse_labels"})
    write_tar(tmp_path / "keys.tar.gz", no_coarse)
    with pytest.raises(ValueError, match=r"batch train has keys .*expected b'data' and b'coarse_labels'"):
        mdata.load_cifar100(tmp_path / "keys.tar.gz", labels="coarse", download=False)
    with pytest.raises(FileNotFoundError, match="no CIFAR-100 copy"):
        mdata.load_cifar100(tmp_path / "nowhere", download=False)


def test_cifar100_download_is_checked_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    served = serve_body(monkeypatch, b"not the archive")
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))
    with pytest.raises(mdata.DownloadError, match="expected eb9058c3a382ffc7106e4002c42a8d85") as error:
        mdata.load_cifar100(progress=False)
    assert served == ["https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"]
    assert "--data PATH" in str(error.value)
    assert os.listdir(tmp_path / "cache") == []                       # the bad body was never renamed into place


# ---------------------------------------------------------------------------------------------- SVHN

def write_mat(path, images, digits, replace=None):
    """An SVHN format-2 file: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0; ``replace``: other variables."""
    contents = {"X": np.ascontiguousarray(images.transpose(1, 2, 3, 0)),
                "y": np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)}
    contents.update(replace or {})
    scipy_io.savemat(path, {k: v for k, v in contents.items() if v is not None})


def svhn_split(rng, count):
    return rng.integers(0, 256, (count, 32, 32, 3)).astype(np.uint8), np.arange(count) % 10


@pytest.fixture
def svhn_folder(tmp_path):
    rng = np.random.default_rng(5)
    splits = {"train": svhn_split(rng, 40), "test": svhn_split(rng, 20), "extra": svhn_split(rng, 30)}
    folder = tmp_path / "svhn"
    folder.mkdir()
    for split, (images, labels) in splits.items():
        write_mat(folder / f"{split}_32x32.mat", images, labels)
    return folder, splits


def test_svhn_reads_the_official_layout(svhn_folder):
    folder, splits = svhn_folder
    assert mdata.looks_like_svhn(folder) and not mdata.looks_like_svhn(folder / "train_32x32.mat")
    one = mdata.read_svhn_mat(folder / "train_32x32.mat")
    images, labels = splits["train"]
    assert one.images.shape == (40, 32, 32, 3) and one.classes == [str(d) for d in range(10)]
    # X[:, :, :, n] is image n: rows, columns, channels
    raw = scipy_io.loadmat(folder / "train_32x32.mat")
    np.testing.assert_array_equal(one.images[7], raw["X"][:, :, :, 7])
    np.testing.assert_array_equal(one.images, images)
    np.testing.assert_array_equal(one.labels, labels)                  # 10 became 0
    assert raw["y"][0, 0] == 10 and one.labels[0] == 0
    train, test = mdata.load_svhn(folder, download=False)
    assert len(train) == 40 and len(test) == 20
    both, _ = mdata.load_svhn(folder, extra=True, download=False)
    np.testing.assert_array_equal(both.images, np.concatenate([splits["train"][0], splits["extra"][0]]))
    np.testing.assert_array_equal(both.labels, np.concatenate([splits["train"][1], splits["extra"][1]]))


def test_svhn_bad_files_get_clear_errors(svhn_folder, tmp_path):
    folder, splits = svhn_folder
    images, labels = splits["test"]
    write_mat(tmp_path / "noy.mat", images, labels, dict(y=None, labels=labels.reshape(-1, 1)))
    with pytest.raises(ValueError, match=r"holds the variables \['X', 'labels'\], expected 'X' .* and 'y'"):
        mdata.read_svhn_mat(tmp_path / "noy.mat")
    write_mat(tmp_path / "range.mat", images, labels, dict(y=np.full((20, 1), 11, np.uint8)))
    with pytest.raises(ValueError, match=r"labels outside 1..10 \(10 stands for the digit 0\), e.g. \[11"):
        mdata.read_svhn_mat(tmp_path / "range.mat")
    write_mat(tmp_path / "zero.mat", images, labels, dict(y=np.zeros((20, 1), np.uint8)))
    with pytest.raises(ValueError, match="labels outside 1..10"):
        mdata.read_svhn_mat(tmp_path / "zero.mat")
    write_mat(tmp_path / "shape.mat", images, labels, dict(X=np.zeros((28, 28, 1, 20), np.uint8)))
    with pytest.raises(ValueError, match=r"X of dtype uint8 and shape \(28, 28, 1, 20\), expected uint8 of shape"):
        mdata.read_svhn_mat(tmp_path / "shape.mat")
    write_mat(tmp_path / "count.mat", images, labels, dict(y=np.ones((19, 1), np.uint8)))
    with pytest.raises(ValueError, match=r"has 20 images but y of shape \(19, 1\)"):
        mdata.read_svhn_mat(tmp_path / "count.mat")
    raw = (folder / "test_32x32.mat").read_bytes()
    (tmp_path / "cut.mat").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="cannot read .*cut.mat as a MATLAB v5 file"):
        mdata.read_svhn_mat(tmp_path / "cut.mat")
    (tmp_path / "text.mat").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(ValueError, match="cannot read .*text.mat as a MATLAB v5 file"):
        mdata.read_svhn_mat(tmp_path / "text.mat")
    (folder / "extra_32x32.mat").unlink()
    with pytest.raises(FileNotFoundError, match="extra_32x32.mat not found"):
        mdata.load_svhn(folder, extra=True, download=False)


def test_svhn_download_checks_each_file(tmp_path, monkeypatch):
    served = serve_body(monkeypatch, b"not a mat file")
    with pytest.raises(mdata.DownloadError, match="expected e26dedcc434d2e4c54c9b2d4a06d8373") as error:
        mdata.load_svhn(tmp_path / "cache", progress=False)
    assert served == ["http://ufldl.stanford.edu/housenumbers/train_32x32.mat"] and "--data PATH" in str(error.value)
    assert os.listdir(tmp_path / "cache") == []


def test_svhn_validation_split_takes_per_class_counts_from_each_source(svhn_folder):
    folder, _ = svhn_folder
    train = mdata.read_svhn_mat(folder / "train_32x32.mat")            # 4 images per class
    extra = mdata.read_svhn_mat(folder / "extra_32x32.mat")            # 3 per class
    training, validation = mdata.svhn_validation_split(train, extra, train_per_class=2, extra_per_class=1,
                                                       rng=np.random.default_rng(0))
    assert np.bincount(validation.labels).tolist() == [3] * 10 and len(training) == 70 - 30
    rows = lambda d: {image.tobytes() for image in d.images}            # noqa: E731  (random images: all distinct)
    assert rows(training) | rows(validation) == rows(train) | rows(extra)
    assert not rows(training) & rows(validation)
    from_extra = rows(validation) & rows(extra)
    assert len(from_extra) == 10                                       # one per class from extra
    again, _ = mdata.svhn_validation_split(train, extra, 2, 1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.images, training.images)       # seeded: the same split
    alone, held = mdata.svhn_validation_split(train, train_per_class=1, rng=np.random.default_rng(1))
    assert len(held) == 10 and len(alone) == 30
    with pytest.raises(ValueError, match="class 0 has 4 images, fewer than the 5"):
        mdata.svhn_validation_split(train, train_per_class=5)


# ---------------------------------------------------------------------------------------------- LCN

def lcn_reference(x, size, sigma, threshold):
    """Local contrast normalization pixel by pixel in float64, with the 2-D window written out."""
    n, height, width, channels = x.shape
    offsets = np.arange(size) - size // 2
    window = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma ** 2))

    def local_mean(z, i, j, c, image):
        total = weight = 0.0
        for a, dy in enumerate(offsets):
            for b, dx in enumerate(offsets):
                if 0 <= i + dy < height and 0 <= j + dx < width:
                    total += window[a, b] * z[image, i + dy, j + dx, c]
                    weight += window[a, b]
        return total / weight

    centered = np.empty_like(x, dtype=np.float64)
    spread = np.empty_like(centered)
    for image, i, j, c in np.ndindex(x.shape):
        centered[image, i, j, c] = x[image, i, j, c] - local_mean(x, i, j, c, image)
    squares = centered ** 2
    for image, i, j, c in np.ndindex(x.shape):
        spread[image, i, j, c] = np.sqrt(local_mean(squares, i, j, c, image))
    out = np.empty_like(centered)
    for image, c in np.ndindex(n, channels):
        floor = spread[image, :, :, c].mean()
        out[image, :, :, c] = centered[image, :, :, c] / np.maximum(np.maximum(spread[image, :, :, c], floor),
                                                                    threshold)
    return out


def test_lcn_matches_the_formula_pixel_by_pixel():
    x = np.random.default_rng(0).random((2, 9, 7, 2))                  # awkward sizes: H != W, borders everywhere
    lcn = mdata.LocalContrastNormalize(size=5, sigma=1.5)
    np.testing.assert_allclose(lcn(x), lcn_reference(x, 5, 1.5, 1e-4), rtol=1e-12, atol=1e-12)
    wide = mdata.LocalContrastNormalize(size=11, sigma=3.0)            # a window larger than the image
    np.testing.assert_allclose(wide(x), lcn_reference(x, 11, 3.0, 1e-4), rtol=1e-12, atol=1e-12)
    got32 = mdata.LocalContrastNormalize()(x.astype(np.float32))
    assert got32.dtype == np.float32
    # float32 rounding: a few ulps of values of order 1, amplified at most by 1 / mean(s) (> 1e-1 here)
    np.testing.assert_allclose(got32, lcn_reference(x, 7, 2.0, 1e-4), atol=1e-4)


def test_lcn_removes_brightness_and_contrast_and_keeps_channels_apart():
    rng = np.random.default_rng(1)
    x = rng.random((3, 12, 12, 3))
    lcn = mdata.LocalContrastNormalize()
    out = lcn(x)
    scaled = x * np.array([2.0, 0.5, 7.0]) + np.array([0.3, -1.0, 4.0])   # per-channel gain and offset
    np.testing.assert_allclose(lcn(scaled), out, rtol=1e-10, atol=1e-10)
    changed = x.copy()
    changed[:, :, :, 1] = rng.random((3, 12, 12))
    np.testing.assert_array_equal(lcn(changed)[..., [0, 2]], out[..., [0, 2]])
    flat = np.full((1, 8, 8, 1), 0.6)
    assert np.abs(lcn(flat)).max() < 1e-10                             # nothing local left: zeros, borders too
    assert lcn.state_dict() == {"size": 7, "sigma": 2.0, "threshold": 1e-4}
    again = mdata.LocalContrastNormalize(size=3)
    again.load_state_dict(lcn.state_dict())
    np.testing.assert_array_equal(again(x), out)
    for bad in (dict(size=4), dict(size=0), dict(sigma=0.0), dict(threshold=-1.0)):
        with pytest.raises(ValueError, match="LocalContrastNormalize"):
            mdata.LocalContrastNormalize(**bad)


# ---------------------------------------------------------------------------------------------- one entry point

def test_every_data_set_has_one_row_in_the_task_table():
    from minidl.models import CIFAR10_CHANNELS, MNIST_CHANNELS
    from minidl.train.recipe import parse_config
    from minidl.train.tasks import TASKS
    assert list(TASKS) == ["cifar10", "cifar100", "svhn", "mnist"]
    assert [TASKS[name].channels for name in TASKS] == [CIFAR10_CHANNELS] * 3 + [MNIST_CHANNELS]
    assert [TASKS[name].input_shape for name in TASKS] == [(3, 32, 32)] * 3 + [(1, 28, 28)]
    assert TASKS["cifar10"].augment_flip and not TASKS["svhn"].augment_flip and not TASKS["mnist"].augment_flip
    for name, task in TASKS.items():
        config = parse_config(None, ["--dataset", name, "--quick"])
        assert config["dataset"] == name and config["out"] == f"runs/nin-{name}-quick"
        assert all(config[key] == value for key, value in task.quick.items())
        plain = parse_config(name, [])
        assert all(plain[key] == value for key, value in task.defaults.items())
        assert plain["preprocess"] == ("lcn" if name == "svhn" else "standard")


def test_the_old_scripts_are_aliases_of_the_entry_point(capsys):
    from minidl.train.recipe import parse_config
    from minidl.train.tasks import TASKS
    from test_recipe import load_script
    assert load_script("train_nin_cifar10").CIFAR10 is TASKS["cifar10"]
    assert load_script("train_nin_mnist").MNIST is TASKS["mnist"]
    with pytest.raises(SystemExit):
        parse_config("cifar10", ["--dataset", "mnist"])
    assert "this script trains cifar10; run examples/train_nin.py --dataset mnist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(None, ["--dataset", "imagenet"])
    assert "argument --dataset: invalid choice: 'imagenet'" in capsys.readouterr().err
    for argv, message in ((["--labels", "coarse"], "--labels belongs to --dataset cifar100, not --dataset cifar10"),
                          (["--dataset", "cifar100", "--extra"], "--extra belongs to --dataset svhn, not --dataset "
                                                                 "cifar100")):
        with pytest.raises(SystemExit):
            parse_config(None, argv)
        assert message in capsys.readouterr().err
    assert parse_config(None, ["--dataset=cifar100", "--labels", "coarse"])["labels"] == "coarse"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "cache"))


TINY = ["--backend", "numpy", "--width", "0.05", "--epochs", "1", "--batch-size", "50", "--quiet"]


def test_train_nin_on_cifar100_fine_and_coarse(tmp_path, cache):
    from minidl.train.checkpoint import load_checkpoint
    from minidl.train.recipe import load_data, parse_config
    from test_recipe import load_script
    files, arrays = fake_cifar100_files(np.random.default_rng(2), train_per_class=1, test_per_class=1)
    write_tar(tmp_path / "cifar-100-python.tar.gz", files)
    fine_train, _ = load_data("cifar100", str(tmp_path), False, config=parse_config(None, ["--dataset", "cifar100"]))
    np.testing.assert_array_equal(fine_train.labels, arrays["train"][1])
    out = tmp_path / "run"
    summary = load_script("train_nin").main(["--dataset", "cifar100", "--data", str(tmp_path), "--labels", "coarse",
                                             "--out", str(out), *TINY])
    assert summary["config"]["dataset"] == "cifar100" and summary["config"]["labels"] == "coarse"
    weights = load_checkpoint(out / "checkpoint.safetensors")["model"]
    last = [w for w in weights.values() if w.ndim == 4][-1]
    assert last.shape[0] == 20                                         # the last 1x1 conv makes one map per superclass


def test_train_nin_on_svhn_applies_lcn_once(tmp_path, cache, svhn_folder, monkeypatch):
    from minidl.train.recipe import restore_run
    from test_recipe import load_script, record_loaders
    folder, splits = svhn_folder
    loaders = record_loaders(monkeypatch)
    summary = load_script("train_nin").main(["--dataset", "svhn", "--data", str(folder), "--extra",
                                             "--out", str(tmp_path / "run"), *TINY])
    train_loader, test_loader = loaders[0]
    assert len(train_loader.dataset) == 70 and train_loader.augment is None       # train + extra; no augmentation
    expected = mdata.LocalContrastNormalize()(mdata.to_float(splits["test"][0]))
    assert test_loader.transform is None
    np.testing.assert_allclose(test_loader.dataset.images, expected, atol=1e-5)
    assert summary["config"]["preprocess"] == "lcn" and summary["config"]["extra"]
    restored = restore_run(None, tmp_path / "run", progress=False)              # the task comes from the run
    assert isinstance(restored["preprocess"], mdata.LocalContrastNormalize) and len(restored["train"]) == 70


def test_an_svhn_model_file_keeps_its_lcn(tmp_path, cache, svhn_folder):
    from minidl.models import load_model
    from test_recipe import load_script
    folder, splits = svhn_folder
    load_script("train_nin").main(["--dataset", "svhn", "--data", str(folder), "--out", str(tmp_path / "run"), *TINY])
    model = load_model(tmp_path / "run" / "model.safetensors")
    lcn = model.preprocess
    assert isinstance(lcn, mdata.LocalContrastNormalize) and lcn.state_dict() == {"size": 7, "sigma": 2.0,
                                                                                 "threshold": 1e-4}
