"""Progress bars: a live tqdm bar on a terminal, nothing in a log file.

A tqdm bar redraws itself with carriage returns. On a terminal that is one line
updating in place; written to a file (``python train.py 2>&1 | tee log``, a batch
job's output), every redraw stays in the file. So every bar in minidl is made
here, and shows only when it is wanted *and* stderr is a terminal (tqdm's
``disable=None``). The training loop prints one line per epoch either way.
"""
from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable=None, *, enabled: bool = True, **options) -> tqdm:
    """``tqdm(iterable, **options)``, shown when ``enabled`` and stderr is a terminal.

    A disabled bar is still a working object (``update``, ``set_postfix``, ``close``), so callers
    need no ``if`` around it.
    """
    return tqdm(iterable, disable=None if enabled else True, **options)
