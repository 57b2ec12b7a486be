"""Downloading data set files: stream, check, then rename.

A download can fail half way (the network drops, the user presses Ctrl-C) and
a server can send something other than the expected file (an error page, a
truncated body). So :func:`download` never writes to the final file name
directly:

1. it streams the response into a temporary file *in the destination folder*,
   showing a progress bar;
2. it checks the file's MD5 digest against the known one (a 128-bit fingerprint
   of the contents: a single changed byte changes it);
3. only then it renames the temporary file to its final name with
   ``os.replace``, which is atomic on one file system: the final path either
   does not exist or holds the complete, verified file.

Machines without internet access are common (clusters, air-gapped labs), so a
failure raises :class:`DownloadError` whose message says which URL failed and
how to use a copy fetched elsewhere (``--data PATH`` in the example scripts).

Downloaded files go to the cache folder: ``$MINIDL_DATA`` if set, otherwise
``~/.cache/minidl`` (:func:`default_cache_dir`).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request

from ..progress import progress_bar

CHUNK_SIZE = 1 << 16   # bytes read from the network at a time


class DownloadError(RuntimeError):
    """A data set file could not be downloaded (offline, moved, or corrupted on the way)."""


def default_cache_dir() -> str:
    """Where data sets are kept: ``$MINIDL_DATA`` if set, otherwise ``~/.cache/minidl``."""
    return os.environ.get("MINIDL_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "minidl")


def md5sum(path, chunk_size: int = 1 << 20) -> str:
    """The MD5 digest of the file at ``path``, as 32 lowercase hex digits (read in chunks)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_size)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def _offline_help(url: str, path: str) -> str:
    return (f"If this machine has no internet access, download {url} on a machine that has, copy it here, "
            f"and pass its location with --data PATH (or put it at {path}, or set $MINIDL_DATA to its folder).")


def _stream_to_file(url: str, out, timeout: float, progress: bool, desc: str) -> tuple:
    """Copy the body of ``url`` into the open binary file ``out``; returns (bytes received, bytes announced or None)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        announced = response.headers.get("Content-Length")
        announced = int(announced) if announced else None
        received = 0
        with progress_bar(total=announced, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                          enabled=progress, leave=False) as bar:
            while True:
                block = response.read(CHUNK_SIZE)
                if not block:
                    break
                out.write(block)
                received += len(block)
                bar.update(len(block))
    return received, announced


def download(url: str, path, md5: str | None = None, timeout: float = 60.0, progress: bool = True) -> str:
    """Download ``url`` to the file ``path`` and return ``path``.

    url:     an http(s) URL
    path:    the destination file; its folder is created if needed
    md5:     the expected MD5 digest (32 hex digits), or None to skip the check
    timeout: seconds to wait for the server before giving up

    A file already at ``path`` whose MD5 matches is kept and nothing is downloaded.
    Raises DownloadError when the server cannot be reached, the body is cut short, or the MD5
    differs; no partial file is ever left behind.
    """
    path = os.fspath(path)
    if md5 is not None:
        md5 = md5.lower()
        if len(md5) != 32 or any(ch not in "0123456789abcdef" for ch in md5):
            raise ValueError(f"download: md5 must be 32 hex digits, got {md5!r}")
    if os.path.isfile(path) and (md5 is None or md5sum(path) == md5):
        return path

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # the temporary file lives in the destination folder, so that os.replace is a rename on one file system
    handle, temporary = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                received, announced = _stream_to_file(url, out, timeout, progress, os.path.basename(path))
            # URLError, HTTPError, timeouts and refused connections are all OSErrors;
            # a connection closed mid-body is an http.client.IncompleteRead; a malformed URL is a ValueError
            except (OSError, http.client.HTTPException, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(f"download: could not fetch {url} ({type(exc).__name__}: {reason}). "
                                    + _offline_help(url, path)) from None
        if announced is not None and received != announced:
            raise DownloadError(f"download: {url} was cut short: received {received} of {announced} bytes. "
                                "Try again. " + _offline_help(url, path))
        if md5 is not None:
            actual = md5sum(temporary)
            if actual != md5:
                raise DownloadError(f"download: the file from {url} has MD5 {actual}, expected {md5} "
                                    "(corrupted on the way, or the server sent something else). Try again. "
                                    + _offline_help(url, path))
        os.chmod(temporary, 0o644)    # mkstemp creates files readable by their owner only
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
