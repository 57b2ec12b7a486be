"""minidl.data, part 1: data sets and file formats, on small files the tests write themselves.

The official formats are written here *independently* of minidl's own writers (explicit loops
and struct.pack), so a reader and a writer cannot agree on the same mistake.
Preprocessing, augmentation and the loader are tested in test_data_pipeline.py.
"""
import gzip
import importlib
import io
import os
import pickle
import re
import struct
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

import minidl
from minidl import data as mdata

download_module = importlib.import_module("minidl.data.download")       # minidl.data.download is the function
image_folder_module = importlib.import_module("minidl.data.image_folder")

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_CIFAR_JPEG = next((p for p in (os.path.join(HERE, "..", "..", "shared", "datasets", "cifar10-jpeg.tar.gz"),
                                      "/work/shared/datasets/cifar10-jpeg.tar.gz") if os.path.exists(p)), None)


@pytest.fixture
def offline(monkeypatch):
    """Every urlopen fails as it does without a network; the tests never reach the internet."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


class FakeResponse(io.BytesIO):
    """Stands in for urlopen's response: a body, headers, and a context manager."""

    def __init__(self, body: bytes, length=None):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body) if length is None else length)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def serve_body(monkeypatch, body: bytes) -> list:
    """Make every urlopen answer ``body``; returns the list of URLs asked for, filled as they come."""
    requested = []

    def serve(url, *args, **kwargs):
        requested.append(url)
        return FakeResponse(body)
    monkeypatch.setattr(urllib.request, "urlopen", serve)
    return requested


# ---------------------------------------------------------------------------------------------- ArrayDataset

def test_array_dataset_holds_and_checks_its_arrays():
    images = np.zeros((3, 4, 5, 1), np.uint8)
    ds = mdata.ArrayDataset(images, np.array([0, 1, 1], np.int32), ["a", "b"])
    assert len(ds) == 3 and ds.image_shape == (4, 5, 1) and ds.num_classes == 2
    assert ds.labels.dtype == np.int64
    with pytest.raises(ValueError, match=r"uint8 array of shape \(N, H, W, C\) \(or float32, .*\), got dtype float64"):
        mdata.ArrayDataset(images.astype(np.float64), [0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="got dtype int16"):
        mdata.ArrayDataset(images.astype(np.int16), [0, 1, 1], ["a", "b"])
    preprocessed = mdata.ArrayDataset(images.astype(np.float32) - 0.5, [0, 1, 1], ["a", "b"])   # float32: taken as is
    assert preprocessed.images.dtype == np.float32 and preprocessed.image_shape == (4, 5, 1)
    assert preprocessed.take([2, 0]).images.dtype == np.float32                 # subsets keep float32 images
    np.testing.assert_array_equal(preprocessed.subset(2).images, np.full((2, 4, 5, 1), -0.5, np.float32))
    with pytest.raises(ValueError, match=r"got dtype uint8 and shape \(3, 4, 5\)"):
        mdata.ArrayDataset(images[..., 0], [0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="got 3 images but 2 labels"):
        mdata.ArrayDataset(images, [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\] for 2 classes, got values from 0 to 2"):
        mdata.ArrayDataset(images, [0, 1, 2], ["a", "b"])
    with pytest.raises(ValueError, match="1-D integer array"):
        mdata.ArrayDataset(images, [0.0, 1.0, 1.0], ["a", "b"])


def sorted_by_class(n_classes=10, per_class=10):
    """A data set sorted by class, as files on disk are: image i holds the value i."""
    n = n_classes * per_class
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1)
    return mdata.ArrayDataset(images, np.repeat(np.arange(n_classes), per_class), [str(k) for k in range(n_classes)])


def test_subset_is_a_seeded_random_sample_not_a_prefix():
    ds = sorted_by_class()
    a = ds.subset(20, np.random.default_rng(0))
    b = ds.subset(20, np.random.default_rng(0))
    c = ds.subset(20, np.random.default_rng(1))
    picked = a.images[:, 0, 0, 0].astype(int)
    assert len(a) == 20 and len(set(picked.tolist())) == 20                   # without replacement
    np.testing.assert_array_equal(a.labels, ds.labels[picked])                # images keep their labels
    np.testing.assert_array_equal(a.images, b.images)                         # same seed, same subset
    assert not np.array_equal(a.images, c.images)                             # another seed, another subset
    assert len(set(a.labels.tolist())) > 2                                    # a prefix of 20 has classes 0, 1 only
    minidl.manual_seed(7)
    d = ds.subset(20)
    minidl.manual_seed(7)
    np.testing.assert_array_equal(d.images, ds.subset(20).images)             # default: minidl's seeded generator
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 100\], got 101"):
        ds.subset(101, np.random.default_rng(0))


def test_split_gives_two_disjoint_random_parts():
    ds = sorted_by_class()
    first, second = ds.split(0.2, np.random.default_rng(3))
    a, b = first.images[:, 0, 0, 0].tolist(), second.images[:, 0, 0, 0].tolist()
    assert len(a) == 20 and len(b) == 80
    assert sorted(a + b) == list(range(100))
    assert len(set(first.labels.tolist())) > 2
    same, _ = ds.split(20, np.random.default_rng(3))
    np.testing.assert_array_equal(same.images, first.images)
    with pytest.raises(ValueError, match="must leave both parts non-empty"):
        ds.split(100, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------- CIFAR-10

def official_rows(images):
    """The official row layout, written out pixel by pixel: 1024 red values, 1024 green, 1024 blue."""
    rows = np.zeros((len(images), 3072), np.uint8)
    for n in range(len(images)):
        for c in range(3):
            for y in range(32):
                for x in range(32):
                    rows[n, c * 1024 + y * 32 + x] = images[n, y, x, c]
    return rows


def write_fake_cifar10(path, train_images, train_labels, test_images, test_labels, classes, skip=()):
    """A cifar-10-python.tar.gz in the official format, with five training batches."""
    members = {}
    cuts = np.array_split(np.arange(len(train_images)), 5)
    for i, part in enumerate(cuts):
        members[f"data_batch_{i + 1}"] = {b"batch_label": b"training batch", b"data": official_rows(train_images[part]),
                                          b"labels": [int(v) for v in train_labels[part]]}
    members["test_batch"] = {b"data": official_rows(test_images), b"labels": [int(v) for v in test_labels]}
    members["batches.meta"] = {b"label_names": [name.encode() for name in classes], b"num_vis": 3072}
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            if name in skip:
                continue
            raw = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


@pytest.fixture
def fake_cifar10(tmp_path):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    train_images[0] = 0
    train_images[0, :, :, 0] = 255                 # image 0: pure red
    train_images[1] = 0
    train_images[1, 3, 5, 2] = 200                 # image 1: one blue pixel at row 3, column 5
    test_images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    train_labels, test_labels = np.array([0, 1, 2, 2, 1, 0, 2]), np.array([2, 0, 1])
    classes = ["cat", "ant", "bee"]                # the official order, not sorted
    path = tmp_path / "cifar-10-python.tar.gz"
    write_fake_cifar10(path, train_images, train_labels, test_images, test_labels, classes)
    return path, (train_images, train_labels, test_images, test_labels, classes)


def test_cifar10_parser_reads_the_official_pickles_exactly(fake_cifar10, tmp_path):
    path, (train_images, train_labels, test_images, test_labels, classes) = fake_cifar10
    train, test = mdata.load_cifar10(path, download=False)
    assert train.images.shape == (7, 32, 32, 3) and test.images.shape == (3, 32, 32, 3)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.images, train_images)
    np.testing.assert_array_equal(test.images, test_images)
    np.testing.assert_array_equal(train.labels, train_labels)
    np.testing.assert_array_equal(test.labels, test_labels)
    assert train.classes == test.classes == classes
    # plane order: red, green, blue
    assert (train.images[0, :, :, 0] == 255).all() and (train.images[0, :, :, 1:] == 0).all()
    assert train.images[1, 3, 5, 2] == 200 and train.images[1].sum() == 200
    # the same from the extracted folder, and from a folder holding the archive
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    for root in (tmp_path / "extracted", tmp_path / "extracted" / "cifar-10-batches-py", tmp_path):
        again, _ = mdata.load_cifar10(root, download=False)
        np.testing.assert_array_equal(again.images, train_images)
        assert mdata.looks_like_cifar10(root)


def test_cifar10_writer_round_trips_and_rows_are_planes():
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(mdata.images_to_rows(images), official_rows(images))
    np.testing.assert_array_equal(mdata.rows_to_images(official_rows(images)), images)


def test_cifar10_writer_output_loads_back(tmp_path):
    rng = np.random.default_rng(5)
    train = mdata.ArrayDataset(rng.integers(0, 256, (11, 32, 32, 3), dtype=np.uint8), rng.integers(0, 2, 11), ["x", "y"])
    test = mdata.ArrayDataset(rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), [1, 0], ["x", "y"])
    mdata.write_cifar10_archive(tmp_path / "c.tar.gz", train, test)
    got_train, got_test = mdata.load_cifar10(tmp_path / "c.tar.gz", download=False)
    np.testing.assert_array_equal(got_train.images, train.images)
    np.testing.assert_array_equal(got_test.labels, test.labels)


def test_cifar10_errors_are_clear(fake_cifar10, tmp_path, offline, monkeypatch):
    _, arrays = fake_cifar10
    broken = tmp_path / "broken.tar.gz"
    write_fake_cifar10(broken, *arrays, skip=("data_batch_3",))
    with pytest.raises(ValueError, match="lacks data_batch_3"):
        mdata.load_cifar10(broken, download=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 copy"):
        mdata.load_cifar10(empty, download=False)
    with pytest.raises(mdata.DownloadError, match="--data") as error:
        mdata.load_cifar10(empty)
    assert "cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in str(error.value)
    assert offline == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert os.listdir(empty) == []                                      # no partial download left
    monkeypatch.setenv("MINIDL_DATA", str(empty))                      # root=None: the cache folder
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        mdata.load_cifar10(download=False)
    assert not mdata.looks_like_cifar10(empty)


# ---------------------------------------------------------------------------------------------- MNIST

def idx_bytes(magic, array):
    """An idx file by hand: big-endian magic, dimensions, then the raw bytes."""
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(1)
    sets = {"train": (rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), rng.integers(0, 10, 6).astype(np.uint8)),
            "t10k": (rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), rng.integers(0, 10, 4).astype(np.uint8))}
    for prefix, (images, labels) in sets.items():
        image_file = tmp_path / f"{prefix}-images-idx3-ubyte"
        label_file = tmp_path / f"{prefix}-labels-idx1-ubyte"
        if prefix == "train":       # the training files gzipped, the test files plain: both are accepted
            (tmp_path / (image_file.name + ".gz")).write_bytes(gzip.compress(idx_bytes(2051, images)))
            (tmp_path / (label_file.name + ".gz")).write_bytes(gzip.compress(idx_bytes(2049, labels)))
        else:
            image_file.write_bytes(idx_bytes(2051, images))
            label_file.write_bytes(idx_bytes(2049, labels))
    return tmp_path, sets


def test_mnist_idx_files_load_exactly(fake_mnist):
    root, sets = fake_mnist
    assert mdata.looks_like_mnist(root)
    train, test = mdata.load_mnist(root, download=False)
    assert train.images.shape == (6, 28, 28, 1) and test.images.shape == (4, 28, 28, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    np.testing.assert_array_equal(train.images[..., 0], sets["train"][0])
    np.testing.assert_array_equal(test.images[..., 0], sets["t10k"][0])
    np.testing.assert_array_equal(train.labels, sets["train"][1])
    np.testing.assert_array_equal(test.labels, sets["t10k"][1])
    assert train.classes == [str(d) for d in range(10)]


def test_idx_parser_checks_magic_numbers_and_sizes(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels").write_bytes(idx_bytes(2049, labels))
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        mdata.read_idx_images(tmp_path / "labels")                    # a label file where images are expected
    images = np.zeros((3, 28, 28), np.uint8)
    (tmp_path / "images").write_bytes(idx_bytes(2051, images))
    with pytest.raises(ValueError, match="magic number 2051, expected 2049"):
        mdata.read_idx_labels(tmp_path / "images")
    (tmp_path / "short").write_bytes(idx_bytes(2051, images)[:-100])
    with pytest.raises(ValueError, match="should hold 3 x 28 x 28 = 2352 bytes after its header, but holds 2252"):
        mdata.read_idx_images(tmp_path / "short")
    wide = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)     # rows != columns: the order matters
    (tmp_path / "wide").write_bytes(idx_bytes(2051, wide))
    np.testing.assert_array_equal(mdata.read_idx_images(tmp_path / "wide"), wide[..., None])
    (tmp_path / "tiny").write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="too few for an idx header"):
        mdata.read_idx_labels(tmp_path / "tiny")


def test_mnist_count_mismatch_and_writer(fake_mnist):
    root, sets = fake_mnist
    mdata.write_idx(root / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))       # one label short
    with pytest.raises(ValueError, match="holds 4 images but .* holds 3 labels"):
        mdata.load_mnist(root, download=False)
    images = sets["train"][0]
    mdata.write_idx(root / "w.gz", images)
    assert (root / "w.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress((root / "w.gz").read_bytes()) == idx_bytes(2051, images)


def test_mnist_download_tries_every_mirror_then_explains(tmp_path, offline):
    with pytest.raises(mdata.DownloadError, match="--data") as error:
        mdata.load_mnist(tmp_path / "nothing-here")
    assert offline == [mirror + "train-images-idx3-ubyte.gz" for mirror in mdata.mnist.MIRRORS]
    for mirror in mdata.mnist.MIRRORS:
        assert mirror in str(error.value)


# ---------------------------------------------------------------------------------------------- image folders

def save_png(path, pixels):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_image_folder(root, mode="RGB", size=(6, 5), per_class=3, classes=("zebra", "ant", "cat")):
    """root/{train,test}/<class>/<i>.png with random pixels; returns {(split, class, i): pixels (H, W, C)}."""
    rng = np.random.default_rng(2)
    expected = {}
    for split in ("train", "test"):
        for name in classes:
            for i in range(per_class):
                shape = (size[0], size[1], 3) if mode == "RGB" else size
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                save_png(root / split / name / f"{i:03d}.png", pixels)
                expected[(split, name, i)] = pixels.reshape(size[0], size[1], -1)
    return expected


def make_tar(folder, archive, top="toy"):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=top)
    return archive


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("packed", ["directory", "tar.gz"])
def test_image_folder_decodes_exactly(tmp_path, mode, packed):
    expected = make_image_folder(tmp_path / "src", mode)
    source = tmp_path / "src" if packed == "directory" else make_tar(tmp_path / "src", tmp_path / "toy.tar.gz")
    train, test = mdata.load_image_folder(source, cache_dir=tmp_path / "cache", progress=False)
    channels = 3 if mode == "RGB" else 1
    assert train.classes == test.classes == ["ant", "cat", "zebra"]          # sorted by name
    assert train.images.shape == (9, 6, 5, channels) and test.images.shape == (9, 6, 5, channels)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    for split, ds in (("train", train), ("test", test)):
        assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        for k, name in enumerate(["ant", "cat", "zebra"]):
            for i in range(3):
                np.testing.assert_array_equal(ds.images[3 * k + i], expected[(split, name, i)])


def test_image_folder_finds_train_and_test_below_a_top_folder_and_skips_clutter(tmp_path):
    expected = make_image_folder(tmp_path / "a" / "b" / "data", per_class=2, classes=("x", "y"))
    (tmp_path / "a" / "README.txt").write_text("not an image")
    save_png(tmp_path / "a" / "b" / "data" / "train" / "x" / "._000.png", np.zeros((6, 5, 3), np.uint8))
    (tmp_path / "a" / "b" / "data" / "train" / "x" / "notes.txt").write_text("ignored")
    train, test = mdata.load_image_folder(tmp_path / "a", cache_dir=tmp_path / "cache", progress=False)
    assert len(train) == 4 and len(test) == 4
    np.testing.assert_array_equal(train.images[0], expected[("train", "x", 0)])


def test_image_folder_converts_a_stray_mode_to_the_first_images_mode(tmp_path):
    make_image_folder(tmp_path / "src", mode="L", per_class=1, classes=("a", "b"))
    rgb = np.zeros((6, 5, 3), np.uint8)
    rgb[..., 0] = 255                                                        # pure red
    save_png(tmp_path / "src" / "test" / "b" / "001.png", rgb)
    _, test = mdata.load_image_folder(tmp_path / "src", cache_dir=tmp_path / "cache", progress=False)
    assert test.images.shape == (3, 6, 5, 1)
    assert (test.images[2] == 76).all()        # Pillow's luma of red: 255 * 299 / 1000 = 76.2


def test_image_folder_errors_name_the_problem(tmp_path):
    make_image_folder(tmp_path / "sizes", per_class=2, classes=("a",))
    save_png(tmp_path / "sizes" / "test" / "a" / "001.png", np.zeros((7, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=r"test/a/001.png is 5x7 \(width x height\), but .*train/a/000.png is 5x6"):
        mdata.load_image_folder(tmp_path / "sizes", cache_dir=tmp_path / "cache", progress=False)
    make_image_folder(tmp_path / "classes", per_class=1, classes=("a", "b"))
    save_png(tmp_path / "classes" / "test" / "c" / "0.png", np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=r"only in train/: \[\], only in test/: \['c'\]"):
        mdata.load_image_folder(tmp_path / "classes", cache_dir=tmp_path / "cache", progress=False)
    save_png(tmp_path / "no-test" / "train" / "a" / "0.png", np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="no folder holding both train/<class>/<image> and test/<class>/<image>"):
        mdata.load_image_folder(tmp_path / "no-test", cache_dir=tmp_path / "cache", progress=False)
    make_image_folder(tmp_path / "corrupt", per_class=1, classes=("a",))
    (tmp_path / "corrupt" / "test" / "a" / "000.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode .*test/a/000.png"):
        mdata.load_image_folder(tmp_path / "corrupt", cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mdata.load_image_folder(tmp_path / "missing", cache_dir=tmp_path / "cache", progress=False)
    (tmp_path / "fake.tar.gz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read .*fake.tar.gz as a tar archive"):
        mdata.load_image_folder(tmp_path / "fake.tar.gz", cache_dir=tmp_path / "cache", progress=False)


@pytest.mark.parametrize("packed", ["directory", "tar.gz"])
def test_image_folder_second_load_comes_from_the_cache(tmp_path, monkeypatch, packed):
    make_image_folder(tmp_path / "src", per_class=2)
    source = tmp_path / "src" if packed == "directory" else make_tar(tmp_path / "src", tmp_path / "toy.tgz")
    cache = tmp_path / "cache"
    first_train, first_test = mdata.load_image_folder(source, cache_dir=cache, progress=False)
    assert os.listdir(cache) == [os.path.basename(mdata.cache_file_for(source, cache))]   # one file, no temporaries

    def must_not_decode(*args):
        raise AssertionError("decoded again although the cache is valid")
    monkeypatch.setattr(image_folder_module, "decode_image", must_not_decode)
    train, test = mdata.load_image_folder(source, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(train.images, first_train.images)
    np.testing.assert_array_equal(test.labels, first_test.labels)
    assert train.classes == first_train.classes
    # a changed source has another fingerprint: it is decoded again (and our fake decoder is called)
    if packed == "directory":
        save_png(tmp_path / "src" / "train" / "ant" / "new.png", np.zeros((6, 5, 3), np.uint8))
    else:
        os.utime(source, ns=(0, os.stat(source).st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        mdata.load_image_folder(source, cache_dir=cache, progress=False)


def test_image_folder_cache_sees_a_file_moved_to_another_class(tmp_path):
    """Same file count, sizes and times, other labels: the cache must not serve the old labels."""
    make_image_folder(tmp_path / "src", per_class=2)
    cache, lines = tmp_path / "cache", []
    before, _ = mdata.load_image_folder(tmp_path / "src", cache_dir=cache, progress=False, log=lines.append)
    assert lines[-1].startswith("data: reading the images of")
    moved_from = tmp_path / "src" / "train" / "ant" / "000.png"
    os.replace(moved_from, tmp_path / "src" / "train" / "cat" / "009.png")  # a rename keeps size and mtime
    after, _ = mdata.load_image_folder(tmp_path / "src", cache_dir=cache, progress=False, log=lines.append)
    assert lines[-1].startswith("data: reading the images of")            # not the stale cache
    ant, cat = after.classes.index("ant"), after.classes.index("cat")
    assert (np.bincount(before.labels)[[ant, cat]] == [2, 2]).all()
    assert (np.bincount(after.labels)[[ant, cat]] == [1, 3]).all()
    again, _ = mdata.load_image_folder(tmp_path / "src", cache_dir=cache, progress=False, log=lines.append)
    assert "come from the cache" in lines[-1]
    np.testing.assert_array_equal(again.labels, after.labels)


def test_image_folder_cache_follows_minidl_data(tmp_path, monkeypatch):
    make_image_folder(tmp_path / "src", per_class=1, classes=("a",))
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "env-cache"))
    mdata.load_image_folder(tmp_path / "src", progress=False)
    assert [f.endswith(".npz") for f in os.listdir(tmp_path / "env-cache")] == [True]


def test_image_folder_max_per_class(tmp_path):
    make_image_folder(tmp_path / "src", per_class=3, classes=("a", "b"))
    train, test = mdata.load_image_folder(tmp_path / "src", cache_dir=tmp_path / "cache", max_per_class=2,
                                          progress=False)
    assert train.labels.tolist() == [0, 0, 1, 1] and len(test) == 4
    full, _ = mdata.load_image_folder(tmp_path / "src", cache_dir=tmp_path / "cache", progress=False)
    assert len(full) == 6                                  # the limit is part of the cache key


@pytest.mark.skipif(SHARED_CIFAR_JPEG is None, reason="the shared cifar10-jpeg.tar.gz is not available")
def test_real_cifar10_jpeg_archive(tmp_path):
    """The real archive: listing, class order, sizes (5 images per class only, to stay fast)."""
    train, test = mdata.load_image_folder(SHARED_CIFAR_JPEG, cache_dir=tmp_path, max_per_class=5, progress=False)
    assert train.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert train.images.shape == (50, 32, 32, 3) and test.images.shape == (50, 32, 32, 3)
    assert np.bincount(train.labels).tolist() == [5] * 10 and np.bincount(test.labels).tolist() == [5] * 10
    assert 40 < train.images.mean() < 200 and train.images.std() > 20       # real photos, not blank


# ---------------------------------------------------------------------------------------------- download

def test_md5sum_matches_known_digests(tmp_path):
    (tmp_path / "hello").write_bytes(b"hello")
    assert mdata.md5sum(tmp_path / "hello") == "5d41402abc4b2a76b9719d911017c592"
    (tmp_path / "empty").write_bytes(b"")
    assert mdata.md5sum(tmp_path / "empty", chunk_size=3) == "d41d8cd98f00b204e9800998ecf8427e"


def test_download_offline_explains_how_to_use_a_local_copy(tmp_path, offline):
    url = "https://example.invalid/set.tar.gz"
    with pytest.raises(mdata.DownloadError, match="--data") as error:
        mdata.download(url, tmp_path / "set.tar.gz", progress=False)
    assert isinstance(error.value, RuntimeError)
    assert url in str(error.value) and "name resolution" in str(error.value)
    assert os.listdir(tmp_path) == []                                 # no partial file left behind


def test_download_checks_md5_and_renames_atomically(tmp_path, monkeypatch):
    requested = serve_body(monkeypatch, b"hello")
    with pytest.raises(mdata.DownloadError, match="has MD5 5d41402abc4b2a76b9719d911017c592, expected 0{32}"):
        mdata.download("https://example.invalid/x", tmp_path / "x", md5="0" * 32, progress=False)
    assert os.listdir(tmp_path) == []
    path = mdata.download("https://example.invalid/x", tmp_path / "sub" / "x",
                          md5="5D41402ABC4B2A76B9719D911017C592", progress=False)
    assert open(path, "rb").read() == b"hello" and os.listdir(tmp_path / "sub") == ["x"]
    assert len(requested) == 2
    mdata.download("https://example.invalid/x", path, md5="5d41402abc4b2a76b9719d911017c592", progress=False)
    assert len(requested) == 2                                        # already there and verified: no request
    with pytest.raises(ValueError, match="md5 must be 32 hex digits"):
        mdata.download("https://example.invalid/x", path, md5="abc")


def test_download_detects_a_truncated_body(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"hel", length=5))
    with pytest.raises(mdata.DownloadError, match="cut short: received 3 of 5 bytes"):
        mdata.download("https://example.invalid/x", tmp_path / "x", progress=False)
    assert os.listdir(tmp_path) == []


def test_default_cache_dir(monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", "/some/where")
    assert mdata.default_cache_dir() == "/some/where"
    monkeypatch.delenv("MINIDL_DATA")
    assert mdata.default_cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "minidl")
    assert download_module.default_cache_dir is mdata.default_cache_dir
