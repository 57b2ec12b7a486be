"""Image folders: ``root/{train,test}/<class>/*.png|jpg``, as a directory or a tar(.gz) archive.

Classes are the sub-folder names in sorted order. Decoding tens of thousands
of small images takes a while (about 20 s for CIFAR-10's 60,000 JPEGs on one
core), so the decoded arrays are cached as an .npz file keyed by the
source's path, size and modification time: the second run starts in seconds.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile

import numpy as np

from .dataset import ArrayDataset
from .download import default_cache_dir

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "test")


def _listing_from_dir(root):
    """{split: [(class, relative path)]} and a reader for a directory source."""
    base = _find_base([os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs])
    entries = {}
    for split in SPLITS:
        folder = os.path.join(root, base, split)
        entries[split] = [(cls, os.path.join(base, split, cls, f))
                          for cls in sorted(os.listdir(folder)) if os.path.isdir(os.path.join(folder, cls))
                          for f in sorted(os.listdir(os.path.join(folder, cls))) if f.lower().endswith(EXTENSIONS)]

    def read(rel):
        with open(os.path.join(root, rel), "rb") as f:
            return f.read()
    return entries, read, None


def _listing_from_tar(path):
    tar = tarfile.open(path)
    members = {m.name: m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(EXTENSIONS)}
    base = _find_base(list(members))
    entries = {split: [] for split in SPLITS}
    prefix = base + "/" if base else ""
    for name in sorted(members):
        parts = name[len(prefix):].split("/") if name.startswith(prefix) else []
        if len(parts) == 3 and parts[0] in SPLITS:
            entries[parts[0]].append((parts[1], name))
    for split in SPLITS:
        entries[split].sort(key=lambda e: (e[0], e[1]))
    return entries, (lambda name: tar.extractfile(members[name]).read()), tar


def _find_base(paths) -> str:
    """The folder (relative, '' for the top) that directly contains train/ and test/."""
    candidates = set()
    for p in paths:
        parts = p.replace(os.sep, "/").split("/")
        for i, part in enumerate(parts[:-2]):
            if part == "train":
                candidates.add("/".join(parts[:i]))
    for base in sorted(candidates, key=len):
        prefix = base + "/" if base else ""
        if any(p.replace(os.sep, "/").startswith(prefix + "test/") for p in paths):
            return base
    raise ValueError("load_image_folder: found no folder holding both train/<class>/ and test/<class>/ images")


def _decode(raw: bytes, mode: str | None, name: str):
    from PIL import Image
    with Image.open(io.BytesIO(raw)) as img:
        if mode is None:
            mode = "L" if img.mode in ("L", "1", "I;16", "I", "F") else "RGB"
        array = np.asarray(img.convert(mode), dtype=np.uint8)
    return (array[:, :, None] if array.ndim == 2 else array), mode


def _cache_path(source, cache_dir, max_per_class):
    stat = os.stat(source)
    key = f"{os.path.abspath(source)}|{stat.st_size}|{stat.st_mtime_ns}|{max_per_class}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"imagefolder-{os.path.basename(os.path.normpath(source))}-{digest}.npz")


def load_image_folder(path, cache_dir=None, max_per_class: int | None = None, progress: bool = True):
    """(train, test) ArrayDatasets from an image folder (directory or .tar/.tar.gz); see module docstring.

    max_per_class: keep only the first k files of every class (sorted by name); meant for quick tests.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_image_folder: {path} does not exist")
    cache_dir = default_cache_dir() if cache_dir is None else os.fspath(cache_dir)
    cache = _cache_path(path, cache_dir, max_per_class)
    if os.path.exists(cache):
        with np.load(cache) as saved:
            classes = [str(c) for c in saved["classes"]]
            return (ArrayDataset(saved["train_images"], saved["train_labels"], classes),
                    ArrayDataset(saved["test_images"], saved["test_labels"], classes))

    entries, read, handle = _listing_from_tar(path) if os.path.isfile(path) else _listing_from_dir(path)
    try:
        classes = sorted({cls for cls, _ in entries["train"]})
        test_classes = sorted({cls for cls, _ in entries["test"]})
        if classes != test_classes:
            raise ValueError(f"load_image_folder: train classes {classes} differ from test classes {test_classes}")
        if not classes:
            raise ValueError(f"load_image_folder: no images found in {path}")
        if max_per_class is not None:
            for split in SPLITS:
                kept, counts = [], {}
                for cls, name in entries[split]:
                    counts[cls] = counts.get(cls, 0) + 1
                    if counts[cls] <= max_per_class:
                        kept.append((cls, name))
                entries[split] = kept
        index = {cls: i for i, cls in enumerate(classes)}
        total = sum(len(entries[s]) for s in SPLITS)
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc=f"decoding {os.path.basename(path)}", unit="img", disable=not progress, leave=False)
        out, mode, shape = {}, None, None
        for split in SPLITS:
            images, labels = None, np.empty(len(entries[split]), dtype=np.int64)
            for k, (cls, name) in enumerate(entries[split]):
                array, mode = _decode(read(name), mode, name)
                if shape is None:
                    shape = array.shape
                if array.shape != shape:
                    raise ValueError(f"load_image_folder: {name} is {array.shape[1]}x{array.shape[0]}, "
                                     f"but the images before it are {shape[1]}x{shape[0]}")
                if images is None:
                    images = np.empty((len(entries[split]), *shape), dtype=np.uint8)
                images[k], labels[k] = array, index[cls]
                bar.update(1)
            out[split] = ArrayDataset(images if images is not None else np.empty((0, *shape), np.uint8), labels, classes)
        bar.close()
    finally:
        if handle is not None:
            handle.close()

    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".imagefolder-", suffix=".npz", dir=cache_dir)
    with os.fdopen(fd, "wb") as f:
        np.savez(f, classes=np.array(classes), train_images=out["train"].images, train_labels=out["train"].labels,
                 test_images=out["test"].images, test_labels=out["test"].labels)
    os.replace(tmp, cache)
    return out["train"], out["test"]
