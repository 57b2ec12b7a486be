"""Downloading data sets: a progress bar, an MD5 check, and an atomic rename."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request


class DownloadError(RuntimeError):
    """A data set could not be downloaded (offline, moved, or corrupted)."""


def default_cache_dir() -> str:
    """$MINIDL_DATA, or ~/.cache/minidl."""
    return os.environ.get("MINIDL_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "minidl")


def md5sum(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, path, md5: str | None = None) -> str:
    """Fetch ``url`` into ``path`` (kept if already there with the right MD5); returns the path."""
    path = os.fspath(path)
    if os.path.exists(path) and (md5 is None or md5sum(path) == md5):
        return path
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=folder)
    try:
        try:
            with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                from tqdm.auto import tqdm
                with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(path), leave=False) as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        bar.update(len(block))
        except OSError as exc:       # URLError, timeouts and HTTP errors are all OSErrors
            raise DownloadError(
                f"could not download {url} ({exc}). Without internet access, download it elsewhere and "
                f"pass its location with --data PATH (or place it at {path})."
            ) from None
        if md5 is not None and md5sum(tmp) != md5:
            raise DownloadError(f"{url} downloaded, but its MD5 is {md5sum(tmp)}, expected {md5}; try again")
        os.replace(tmp, path)
        return path
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
