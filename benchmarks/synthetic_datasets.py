#!/usr/bin/env python
"""Write full-sized SVHN and MNIST files of synthetic images, to time the data path and ``--quick`` here.

    python benchmarks/synthetic_datasets.py /tmp/synthetic            # SVHN (train, test) and MNIST
    python benchmarks/synthetic_datasets.py /tmp/synthetic --extra    # SVHN's extra_32x32.mat too (1.6 GB)
    python examples/train_nin.py --dataset svhn --quick --data /tmp/synthetic/svhn
    python examples/train_nin.py --dataset mnist --quick --data /tmp/synthetic/mnist

Neither data set can be downloaded on this project's development machine, so its timings run on these
files: the official names, layouts and sizes (SVHN format 2: ``X`` uint8 (32, 32, 3, N), ``y`` (N, 1)
with 10 for the digit 0; MNIST: the four idx files, 60,000 + 10,000 images of 28x28), written with
``scipy.io.savemat`` and ``minidl.data.mnist.write_idx``. Each image is its class's fixed random
pattern plus as much noise, so a network can learn them: a run's accuracy shows that the whole path
works, and says nothing about the real data sets. The MD5s are not the official ones, so pass the
folder with ``--data``; nothing is written into the download cache.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl.data.mnist import FILES as MNIST_FILES, write_idx  # noqa: E402
from minidl.data.svhn import FILES as SVHN_FILES  # noqa: E402

SVHN_SIZES = {"train": 73_257, "test": 26_032, "extra": 531_131}
MNIST_SIZES = {"train": 60_000, "test": 10_000}


def pattern_images(rng, count: int, patterns) -> tuple:
    """(uint8 images (count, *shape), labels): each image half its class's pattern (patterns[label]), half noise."""
    shape = patterns.shape[1:]
    labels = rng.integers(0, len(patterns), count)
    images = np.empty((count, *shape), np.uint8)
    for start in range(0, count, 10_000):                 # in slices: extra would need 4 GB at once
        part = slice(start, min(count, start + 10_000))
        noise = rng.integers(0, 256, images[part].shape, dtype=np.uint16)
        images[part] = (patterns[labels[part]].astype(np.uint16) + noise) // 2
    return images, labels


def write_svhn(folder: str, rng, extra: bool) -> None:
    from scipy.io import savemat
    os.makedirs(folder, exist_ok=True)
    patterns = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)          # the same classes in every split
    for split in ("train", "test", "extra") if extra else ("train", "test"):
        images, labels = pattern_images(rng, SVHN_SIZES[split], patterns)
        labels = np.where(labels == 0, 10, labels).reshape(-1, 1).astype(np.uint8)   # 10 stands for the digit 0
        path = os.path.join(folder, SVHN_FILES[split][0])
        savemat(path, {"X": images.transpose(1, 2, 3, 0), "y": labels}, do_compression=False)
        print(f"{path}: {len(labels)} images, {os.path.getsize(path) / 1e6:.0f} MB")


def write_mnist(folder: str, rng) -> None:
    os.makedirs(folder, exist_ok=True)
    patterns = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    for split, prefix in (("train", "train"), ("test", "test")):
        images, labels = pattern_images(rng, MNIST_SIZES[split], patterns)
        for kind, array in (("images", images), ("labels", labels)):
            path = os.path.join(folder, MNIST_FILES[f"{prefix}_{kind}"][0])
            write_idx(path, array)
            print(f"{path}: {len(array)} {kind}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="writes FOLDER/svhn and FOLDER/mnist")
    parser.add_argument("--extra", action="store_true", help="also SVHN's extra_32x32.mat (531,131 images)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    write_svhn(os.path.join(args.folder, "svhn"), rng, args.extra)
    write_mnist(os.path.join(args.folder, "mnist"), rng)


if __name__ == "__main__":
    main()
