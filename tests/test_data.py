"""Data: official formats (on small archives the tests make), image folders, cache, preprocessing, loader."""
import io
import os
import tarfile
import urllib.request

import numpy as np
import pytest

import minidl
from minidl import data as mdata
from minidl.data import download as download_module
from minidl.data import image_folder as image_folder_module

SHARED_CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "cifar10-jpeg.tar.gz")


def random_dataset(n, size=32, channels=3, classes=("a", "b", "c"), seed=0):
    rng = np.random.default_rng(seed)
    return mdata.ArrayDataset(rng.integers(0, 256, (n, size, size, channels)).astype(np.uint8),
                              rng.integers(0, len(classes), n), list(classes))


def test_cifar10_official_format_round_trip(tmp_path):
    train, test = random_dataset(10, seed=1), random_dataset(4, seed=2)
    archive = tmp_path / "cifar-10-python.tar.gz"
    mdata.write_cifar10_archive(archive, train, test)
    assert mdata.looks_like_cifar10(str(archive)) and mdata.looks_like_cifar10(str(tmp_path))
    got_train, got_test = mdata.load_cifar10(str(archive))
    np.testing.assert_array_equal(got_train.images, train.images)
    np.testing.assert_array_equal(got_test.labels, test.labels)
    assert got_train.classes == ["a", "b", "c"]
    # the row layout: 1024 red values, then 1024 green, then 1024 blue
    with tarfile.open(archive) as tar:
        import pickle
        batch = pickle.loads(tar.extractfile("cifar-10-batches-py/data_batch_1").read(), encoding="bytes")
    row = np.asarray(batch[b"data"][0])
    np.testing.assert_array_equal(row[:1024].reshape(32, 32), train.images[0, :, :, 0])
    np.testing.assert_array_equal(row[2048:].reshape(32, 32), train.images[0, :, :, 2])
    with tarfile.open(archive) as tar:              # and from the extracted folder
        tar.extractall(tmp_path / "x", filter="data")
    assert len(mdata.load_cifar10(str(tmp_path / "x"))[0]) == 10


def test_mnist_idx_round_trip_and_bad_magic(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8), rng.integers(0, 10, 5)
    for prefix in ("train", "t10k"):
        mdata.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        mdata.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels)
    assert mdata.looks_like_mnist(str(tmp_path))
    train, test = mdata.load_mnist(str(tmp_path))
    np.testing.assert_array_equal(train.images[..., 0], images)
    np.testing.assert_array_equal(test.labels, labels)
    mdata.write_idx(tmp_path / "bad", np.zeros(40, np.uint8))     # a label file where images are expected
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        mdata.read_idx_images(str(tmp_path / "bad"))


def write_pngs(root, mode="RGB", size=8, per_class=3, bad=False):
    from PIL import Image
    rng = np.random.default_rng(0)
    expected = {}
    for split in ("train", "test"):
        for cls in ("zebra", "ant"):
            os.makedirs(root / "data" / split / cls)
            for i in range(per_class):
                shape = (size, size, 3) if mode == "RGB" else (size, size)
                s = size + 1 if (bad and i == 1) else size
                pixels = rng.integers(0, 256, shape if s == size else (s, s, 3)[:len(shape)]).astype(np.uint8)
                Image.fromarray(pixels).save(root / "data" / split / cls / f"{i}.png")
                expected[(split, cls, i)] = pixels
    return expected


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("as_tar", [False, True])
def test_image_folder_directory_and_tar(tmp_path, mode, as_tar):
    expected = write_pngs(tmp_path, mode)
    source = tmp_path / "data"
    if as_tar:
        source = tmp_path / "data.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(tmp_path / "data", arcname="toy")
    train, test = mdata.load_image_folder(str(source), cache_dir=str(tmp_path / "cache"), progress=False)
    assert train.classes == ["ant", "zebra"]                     # sorted by name
    assert train.images.shape == (6, 8, 8, 3 if mode == "RGB" else 1)
    first = expected[("train", "ant", 0)]
    np.testing.assert_array_equal(train.images[0].reshape(first.shape), first)
    assert list(test.labels) == [0, 0, 0, 1, 1, 1]


def test_image_folder_cache_is_used_and_sizes_checked(tmp_path, monkeypatch):
    write_pngs(tmp_path)
    cache = str(tmp_path / "cache")
    first = mdata.load_image_folder(str(tmp_path / "data"), cache_dir=cache, progress=False)
    monkeypatch.setattr(image_folder_module, "_decode", lambda *a: pytest.fail("decoded again despite the cache"))
    second = mdata.load_image_folder(str(tmp_path / "data"), cache_dir=cache, progress=False)
    np.testing.assert_array_equal(first[0].images, second[0].images)
    monkeypatch.undo()
    bad_root = tmp_path / "bad"
    write_pngs(bad_root, bad=True)
    with pytest.raises(ValueError, match="1.png is 9x9, but the images before it are 8x8"):
        mdata.load_image_folder(str(bad_root / "data"), cache_dir=cache, progress=False)


def test_download_errors_point_at_data_option(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(mdata.DownloadError, match="--data"):
        mdata.download("https://example.invalid/x.tar.gz", tmp_path / "x.tar.gz")
    assert os.listdir(tmp_path) == []                            # no partial file left

    class Response(io.BytesIO):
        headers = {"Content-Length": "5"}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(b"hello"))
    with pytest.raises(mdata.DownloadError, match="MD5"):
        mdata.download("https://example.invalid/x", tmp_path / "x", md5="0" * 32)
    path = mdata.download("https://example.invalid/x", tmp_path / "x", md5="5d41402abc4b2a76b9719d911017c592")
    assert open(path, "rb").read() == b"hello"


def test_preprocessing(rng):
    x = rng.random((200, 4, 4, 3)).astype(np.float32) * np.array([1.0, 2.0, 3.0], np.float32)
    std = mdata.Standardize().fit(x)
    y = std(x)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1, atol=1e-4)
    gcn = mdata.GlobalContrastNormalize(scale=1.0)(x)
    np.testing.assert_allclose(gcn.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(gcn.std(axis=(1, 2, 3)), 1, atol=1e-4)
    zca = mdata.ZCAWhitening(eps=1e-6).fit(x)
    white = zca(x).reshape(len(x), -1).astype(np.float64)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(48), atol=2e-2)
    again = mdata.ZCAWhitening()
    again.load_state_dict(zca.state_dict())
    np.testing.assert_array_equal(again(x), zca(x))
    with pytest.raises(RuntimeError, match="call fit"):
        mdata.Standardize()(x)


def test_augmentation_matches_an_explicit_reference():
    x = np.arange(2 * 5 * 5 * 1, dtype=np.float32).reshape(2, 5, 5, 1) + 1
    rng = np.random.default_rng(5)
    shifts = np.random.default_rng(5).integers(-2, 3, size=(2, 2))
    got = mdata.random_translate(x, 2, rng)
    for i, (dy, dx) in enumerate(shifts):
        ref = np.zeros((5, 5, 1), np.float32)
        for r in range(5):
            for c in range(5):
                if 0 <= r - dy < 5 and 0 <= c - dx < 5:
                    ref[r, c] = x[i, r - dy, c - dx]
        np.testing.assert_array_equal(got[i], ref)
    flips = np.random.default_rng(9).random(2) < 0.5
    flipped = mdata.random_hflip(x, np.random.default_rng(9))
    for i in range(2):
        np.testing.assert_array_equal(flipped[i], x[i, :, ::-1] if flips[i] else x[i])


def test_loader_covers_every_sample_once_seeded_and_channels_last():
    ds = random_dataset(23, size=4)
    loader = mdata.DataLoader(ds, 5, shuffle=True, augment=mdata.Augment(pad=1))
    minidl.manual_seed(1)
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    x, y = batches[0]
    assert x.shape == (5, 3, 4, 4) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.transpose(0, 2, 3, 1).flags.c_contiguous
    minidl.manual_seed(1)
    order = loader.shuffled_order()
    assert sorted(order) == list(range(23)) and list(order) != list(range(23))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), ds.labels[order])
    assert len(mdata.DataLoader(ds, 5, drop_last=True)) == 4


def test_subset_is_random_and_seeded():
    ds = mdata.ArrayDataset(np.zeros((100, 2, 2, 1), np.uint8), np.repeat(np.arange(10), 10), [str(i) for i in range(10)])
    a = ds.subset(20, np.random.default_rng(0))
    b = ds.subset(20, np.random.default_rng(0))
    np.testing.assert_array_equal(a.labels, b.labels)
    assert len(set(a.labels.tolist())) > 2                       # a prefix would be classes 0 and 1 only
    with pytest.raises(ValueError, match="n must lie in"):
        ds.subset(101, np.random.default_rng(0))


@pytest.mark.skipif(not os.path.exists(SHARED_CIFAR), reason="the shared CIFAR-10 JPEG copy is not beside the checkout")
def test_real_cifar10_jpeg_copy(tmp_path):
    train, test = mdata.load_image_folder(SHARED_CIFAR, cache_dir=str(tmp_path), max_per_class=3, progress=False)
    assert train.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert train.images.shape == (30, 32, 32, 3) and test.images.shape == (30, 32, 32, 3)
    assert list(np.bincount(train.labels)) == [3] * 10
