"""Failures in a job of many processes: one rank's error must end them all.

When one rank raises and exits, the others wait in their next collective for a partner that
will never come: the job hangs until someone kills it (the failure users of ChainerMN, Horovod
and PyTorch report most). The cure is the one ``python -m mpi4py`` applies: on an uncaught
exception, print it, with the rank, then *abort the world* (``MPI_Abort``): the launcher kills
every process within a second or so, and the job's exit status says it failed.

* :func:`install_excepthook`: ``sys.excepthook`` prints the traceback prefixed by the rank,
  then aborts (installed by :func:`minidl.distributed.init` in a world of more than one);
* :func:`abort_on_error`: a ``with`` block that does the same for exceptions and for
  ``sys.exit(code != 0)`` raised inside it (a ``SystemExit`` never reaches ``sys.excepthook``).
  Ctrl-C's ``Interrupted`` is not a failure: every rank agrees to stop at the same step and
  exits by itself.
"""
from __future__ import annotations

import contextlib
import sys
import time
import traceback


def _report(rank: int, size: int, exc_type, exc, tb) -> None:
    lines = traceback.format_exception(exc_type, exc, tb)
    text = "".join(f"[rank {rank}/{size}] {line}" for chunk in lines for line in chunk.splitlines(True))
    text = (text if text.endswith("\n") else text + "\n") + \
        f"[rank {rank}/{size}] aborting the whole job (MPI_Abort) so that no rank waits forever\n"
    sys.stderr.write(text)
    sys.stderr.flush()
    time.sleep(0.2)          # let the launcher forward this message before it tears the job down


def install_excepthook(communicator) -> None:
    """Make an uncaught exception on this rank print itself and abort every rank."""
    previous = sys.excepthook

    def abort_the_world(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            communicator.abort(130)
            return
        _report(communicator.rank, communicator.size, exc_type, exc, tb)
        communicator.abort(1)
    sys.excepthook = abort_the_world


@contextlib.contextmanager
def abort_on_error(communicator, keep=(KeyboardInterrupt,), agreed_exit_codes=(130,)):
    """Abort every rank if the block raises (or calls ``sys.exit`` with a non-zero code) on this one.

    ``keep``: exception types let through as they are; ``agreed_exit_codes``: ``sys.exit`` codes every
    rank reaches together (130: the ranks agreed to stop after a Ctrl-C or SIGTERM, rank 0 saved).
    A world of one process is left alone: its errors behave as usual.
    """
    if communicator.size == 1:
        yield
        return
    try:
        yield
    except keep:
        raise
    except SystemExit as exc:
        if exc.code in (None, 0) or exc.code in agreed_exit_codes:
            raise
        code = exc.code if isinstance(exc.code, int) else 1
        if not isinstance(exc.code, int):
            sys.stderr.write(f"[rank {communicator.rank}/{communicator.size}] {exc.code}\n")
        sys.stderr.write(f"[rank {communicator.rank}/{communicator.size}] exit status {code}: "
                         "aborting the whole job (MPI_Abort)\n")
        sys.stderr.flush()
        time.sleep(0.2)
        communicator.abort(code)
    except BaseException:
        _report(communicator.rank, communicator.size, *sys.exc_info())
        communicator.abort(1)
