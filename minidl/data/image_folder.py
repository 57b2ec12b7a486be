"""Image folders: one sub-folder per class, as a directory or a tar archive.

The layout, common for data sets shared as plain image files::

    [top/]train/<class name>/<any name>.png|.jpg|.jpeg
    [top/]test/<class name>/<any name>.png|.jpg|.jpeg

``path`` is that directory, or a ``.tar``, ``.tar.gz`` or ``.tgz`` archive of it
(which may wrap everything in one top folder, e.g. ``cifar10-jpeg/train/...``).
The archive is read in one sequential pass and the images are decoded from
memory, so nothing is extracted to disk.

* Classes are the sub-folder names sorted alphabetically; class k is the k-th
  name. Both splits must have the same classes.
* The first image fixes the colour mode: grayscale images become C = 1
  channel, anything else RGB with C = 3 channels; other images are converted to
  it. It also fixes the size: every image must have the same height and width.
* Within a class, files are taken in sorted name order.

Decoding is the slow part: about 10-20 s for CIFAR-10's 60,000 small JPEGs on
one core. So the decoded arrays are *cached* as an ``.npz`` file in the cache
folder ($MINIDL_DATA or ~/.cache/minidl), named after a fingerprint of the
source (an archive's absolute path, size and modification time; for a directory,
the relative path, size and modification time of every file in it). The next call
with the same, unchanged source loads that file in about a second; changing the
source (adding, editing, removing a file, or moving one to another class folder)
changes the fingerprint, so a stale cache is never used. The cache is written to
a temporary file first and renamed into place, so an interrupted run never
leaves a half-written cache behind.
"""
from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tarfile
import tempfile
import warnings
import zipfile

import numpy as np

from ..progress import progress_bar
from .dataset import ArrayDataset
from .download import default_cache_dir

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")   # Pillow's one-channel modes
CACHE_FORMAT = 1    # bump when the cached arrays change meaning, so old caches are not reused


def _is_image_file(name: str) -> bool:
    """An image by its extension, skipping hidden files and macOS metadata (.DS_Store, ._x.jpg, __MACOSX/)."""
    parts = name.split("/")
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _read_archive(path: str, progress: bool) -> dict:
    """{member name: file bytes} for every image in the tar archive at ``path`` (one sequential pass)."""
    contents = {}
    try:
        with tarfile.open(path, "r|*") as tar, \
                progress_bar(desc=f"reading {os.path.basename(path)}", unit=" files", enabled=progress, leave=False) as bar:
            for member in tar:
                name = posixpath.normpath(member.name).lstrip("/")
                if member.isfile() and _is_image_file(name):
                    contents[name] = tar.extractfile(member).read()
                    bar.update(1)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"load_image_folder: cannot read {path} as a tar archive ({type(exc).__name__}: {exc}); "
                         "expected a directory or a .tar/.tar.gz/.tgz archive of one") from None
    return contents


def _list_directory(path: str) -> list:
    """Relative paths ('/'-separated) of every image file under the directory ``path``."""
    names = []
    for folder, subfolders, files in os.walk(path):
        subfolders.sort()
        relative_folder = os.path.relpath(folder, path).replace(os.sep, "/")
        for file in sorted(files):
            name = file if relative_folder == "." else f"{relative_folder}/{file}"
            if _is_image_file(name):
                names.append(name)
    return names


def _find_split_root(names: list, source: str) -> str:
    """The prefix ('' or 'top/.../') of the folder that holds both train/<class>/ and test/<class>/ images.

    When several folders qualify, the one closest to the top wins.
    """
    folders_with = {split: set() for split in SPLITS}
    for name in names:
        parts = name.split("/")
        if len(parts) >= 3 and parts[-3] in SPLITS:     # .../<split>/<class>/<file>
            folders_with[parts[-3]].add("/".join(parts[:-3]))
    candidates = folders_with["train"] & folders_with["test"]
    if not candidates:
        examples = ", ".join(names[:3]) or "no image files at all"
        raise ValueError(f"load_image_folder: {source} has no folder holding both train/<class>/<image> and "
                         f"test/<class>/<image> files (image extensions {', '.join(IMAGE_EXTENSIONS)}); "
                         f"found {len(names)} images, e.g. {examples}")
    top = min(candidates, key=lambda folder: (folder.count("/") if folder else -1, folder))
    return top + "/" if top else ""


def _entries_by_split(names: list, prefix: str) -> dict:
    """{split: [(class name, file name), ...]} sorted by class, then by file name."""
    entries = {split: [] for split in SPLITS}
    for name in names:
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix):].split("/")
        if len(parts) == 3 and parts[0] in SPLITS:
            split, class_name, _ = parts
            entries[split].append((class_name, name))
    for split in SPLITS:
        entries[split].sort()
    return entries


def _keep_first_per_class(entries: list, max_per_class: int) -> list:
    """The first ``max_per_class`` entries of each class (entries are sorted by class, then name)."""
    kept, seen = [], {}
    for class_name, name in entries:
        seen[class_name] = seen.get(class_name, 0) + 1
        if seen[class_name] <= max_per_class:
            kept.append((class_name, name))
    return kept


def decode_image(raw: bytes, mode: str | None, name: str) -> tuple:
    """Decode one image file's bytes -> (uint8 array (H, W, C), mode).

    mode: 'RGB' (C = 3) or 'L' (grayscale, C = 1) to convert the image to, or None to choose
          from this image: 'L' when it is grayscale, 'RGB' otherwise.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as image:
            if mode is None:
                mode = "L" if image.mode in GRAYSCALE_MODES else "RGB"
            pixels = np.asarray(image if image.mode == mode else image.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"load_image_folder: cannot decode {name} ({type(exc).__name__}: {exc})") from None
    if pixels.ndim == 2:                     # grayscale: (H, W) -> (H, W, 1)
        pixels = pixels[:, :, None]
    return pixels, mode


def _source_fingerprint(path: str) -> str:
    """A string that changes whenever the source changes.

    For an archive: its absolute path, size and modification time. For a directory: its absolute
    path and a digest of every file below it, each as (relative path, size, modification time), so
    a file added, removed, edited or moved to another class folder gives another fingerprint.
    """
    path = os.path.abspath(path)
    if os.path.isfile(path):
        stat = os.stat(path)
        return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    listing = hashlib.sha1()
    for folder, subfolders, files in os.walk(path):
        subfolders.sort()                                # a fixed walk order, whatever the file system's
        for file in sorted(files):
            full = os.path.join(folder, file)
            stat = os.stat(full)
            relative = os.path.relpath(full, path).replace(os.sep, "/")
            listing.update(f"{relative}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return f"{path}|{listing.hexdigest()}"


def cache_file_for(path, cache_dir=None, max_per_class: int | None = None) -> str:
    """The .npz file in which the decoded images of ``path`` are (or will be) cached."""
    path = os.fspath(path)
    cache_dir = default_cache_dir() if cache_dir is None else os.fspath(cache_dir)
    key = f"format {CACHE_FORMAT}|{_source_fingerprint(path)}|max_per_class {max_per_class}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    stem = os.path.basename(os.path.normpath(path))
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if stem.lower().endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    return os.path.join(cache_dir, f"imagefolder-{stem}-{digest}.npz")


def _load_cache(cache_file: str):
    """(train, test) from a cache file, or None when it is missing or unreadable."""
    if not os.path.isfile(cache_file):
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as saved:
            classes = [str(name) for name in saved["classes"]]
            return (ArrayDataset(saved["train_images"], saved["train_labels"], classes),
                    ArrayDataset(saved["test_images"], saved["test_labels"], classes))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"load_image_folder: ignoring the unreadable cache {cache_file} ({exc}); decoding again")
        return None


def _save_cache(cache_file: str, train: ArrayDataset, test: ArrayDataset) -> None:
    """Write the cache atomically: a temporary file in the same folder, then os.replace."""
    folder = os.path.dirname(cache_file)
    temporary = None
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".imagefolder-", suffix=".npz.part", dir=folder)
        with os.fdopen(handle, "wb") as f:
            np.savez(f, classes=np.array(train.classes), train_images=train.images, train_labels=train.labels,
                     test_images=test.images, test_labels=test.labels)
        os.chmod(temporary, 0o644)    # mkstemp creates files readable by their owner only
        os.replace(temporary, cache_file)
    except OSError as exc:      # a read-only or full disk must not stop training: the cache is an optimisation
        warnings.warn(f"load_image_folder: could not write the cache {cache_file} ({exc}); "
                      "the next load will decode the images again")
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)


def load_image_folder(path, cache_dir=None, max_per_class: int | None = None, progress: bool = True,
                      log=None) -> tuple:
    """(train, test) ArrayDatasets from an image folder or an archive of one (see the module docstring).

    path:          a directory, or a .tar / .tar.gz / .tgz archive of one
    cache_dir:     where the decoded arrays are cached (default $MINIDL_DATA or ~/.cache/minidl)
    max_per_class: keep only the first k files (by name) of each class in each split, for quick
                   checks; None keeps everything
    progress:      show progress bars while reading and decoding
    log:           a function given one line of text (e.g. ``print``) to say where the images come from
                   (decoded, or read from the cache); None says nothing
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_image_folder: {path} does not exist; expected a directory or a "
                                ".tar/.tar.gz/.tgz archive holding train/<class>/ and test/<class>/ folders")
    if max_per_class is not None and (isinstance(max_per_class, bool) or not isinstance(max_per_class, int)
                                      or max_per_class < 1):
        raise ValueError(f"load_image_folder: max_per_class must be a positive int or None, got {max_per_class!r}")
    cache_file = cache_file_for(path, cache_dir, max_per_class)
    cached = _load_cache(cache_file)
    if cached is not None:
        if log is not None:
            log(f"data: the images of {path} come from the cache {cache_file} "
                "(made from these very files; delete it to read them again)")
        return cached
    if log is not None:
        log(f"data: reading the images of {path} (then cached in {cache_file} for the next run)")

    # 1. list the image files and say how to read one
    if os.path.isdir(path):
        names = _list_directory(path)

        def read(name):
            with open(os.path.join(path, *name.split("/")), "rb") as f:
                return f.read()
    else:
        contents = _read_archive(path, progress)
        names = sorted(contents)
        read = contents.__getitem__

    # 2. find train/ and test/, and the classes
    entries = _entries_by_split(names, _find_split_root(names, path))
    classes = sorted({class_name for class_name, _ in entries["train"]})
    test_classes = sorted({class_name for class_name, _ in entries["test"]})
    if classes != test_classes:
        only_train = sorted(set(classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(classes))
        raise ValueError(f"load_image_folder: train/ and test/ of {path} must have the same class folders; "
                         f"only in train/: {only_train}, only in test/: {only_test}")
    if max_per_class is not None:
        entries = {split: _keep_first_per_class(entries[split], max_per_class) for split in SPLITS}
    class_index = {class_name: k for k, class_name in enumerate(classes)}

    # 3. decode, the first image fixing the mode (RGB or L) and the size of all others
    first_name = entries["train"][0][1]
    first_pixels, mode = decode_image(read(first_name), None, first_name)
    shape = first_pixels.shape
    datasets = {}
    with progress_bar(total=sum(len(entries[split]) for split in SPLITS), desc=f"decoding {os.path.basename(path)}",
                      unit=" images", enabled=progress, leave=False) as bar:
        for split in SPLITS:
            images = np.empty((len(entries[split]), *shape), dtype=np.uint8)
            labels = np.empty(len(entries[split]), dtype=np.int64)
            for i, (class_name, name) in enumerate(entries[split]):
                pixels, _ = decode_image(read(name), mode, name)
                if pixels.shape != shape:
                    raise ValueError(
                        f"load_image_folder: {name} is {pixels.shape[1]}x{pixels.shape[0]} (width x height), "
                        f"but {first_name} is {shape[1]}x{shape[0]}; all images must have the same size"
                    )
                images[i] = pixels
                labels[i] = class_index[class_name]
                bar.update(1)
            datasets[split] = ArrayDataset(images, labels, classes)

    _save_cache(cache_file, datasets["train"], datasets["test"])
    return datasets["train"], datasets["test"]
