"""User-facing errors and atomic file writing shared by every stage.

A stage never leaves a file that looks finished when it failed: outputs are written under a
temporary name in the destination folder and renamed into place only once complete.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator


class WeakgenError(Exception):
    """An error caused by the user's inputs or environment, with the fix in its message.

    Stage CLIs catch it, print ``error: <message>`` to stderr and exit with status 2, without a traceback.
    """


class DataError(WeakgenError):
    """A raw or processed data file is missing, corrupt, truncated or fails its checksum."""


class ConfigError(WeakgenError):
    """params.yaml (or a CLI argument) is malformed."""


class DiskFull(WeakgenError):
    """No space left on the device that holds an output."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(final: Path) -> None:
    """Temporary files a killed writer of ``final`` left behind (kill -9 gives no chance to clean up)."""
    for stale in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds.

    The file gets the user's umask (mkstemp alone would leave it 0600, unreadable to a team on a shared
    cluster), stale temporaries of the same output are removed first, and a full disk becomes a DiskFull
    error naming the file."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with disk_full_is_an_error(final):
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~_umask())
            os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def disk_full_is_an_error(target: Path, needed_bytes: int | None = None) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT (and h5py's wrapped form of them) into a DiskFull error naming ``target``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left" not in str(exc):
            raise
        raise DiskFull(_disk_full_message(target, needed_bytes)) from exc


def _disk_full_message(target: Path, needed_bytes: int | None) -> str:
    free = shutil.disk_usage(target.parent if target.parent.exists() else Path.cwd()).free
    need = f"; about {needed_bytes / 2**20:.0f} MiB are needed" if needed_bytes else ""
    return (f"no space left on the device while writing {target} ({free / 2**20:.0f} MiB free{need}): free some "
            f"space (or point the folder to a larger disk) and rerun; nothing partial was kept.")


def require_free_space(target: str | os.PathLike, needed_bytes: int) -> None:
    """Stop before writing ``needed_bytes`` into ``target``'s folder when they cannot fit (some libraries,
    HDF5 among them, can crash rather than raise when the disk fills up)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free < needed_bytes:
        raise DiskFull(_disk_full_message(target, needed_bytes))


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a stage's ``main`` and turn WeakgenError into a clear message and exit status 2.

    Run from the command line (``argv`` None), the process then ends through :func:`exit_process`, which
    skips the interpreter's teardown; called with ``argv`` (tests), it raises SystemExit as usual.
    """
    leave = exit_process if argv is None else sys.exit
    try:
        code = main(argv)
    except WeakgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        leave(2)
    except OSError as exc:  # a write outside atomic_path (a log line, a library's own file) hit a full disk
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"error: {_disk_full_message(Path(exc.filename or 'the output'), None)}", file=sys.stderr)
        leave(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    if not code:
        from stages.usage import record_usage

        record_usage()
    leave(code or 0)


def exit_process(code: int) -> None:
    """End the process as a normal exit would, without freeing what the OS frees anyway.

    A normal exit tears every module down; with torch loaded that costs ~1 CPU-second per process (measured:
    `python -c "import torch"` 3.3-4.3 CPU-s, 2.6-3.0 with the teardown skipped), over a hundred stage
    processes in the smoke report. Everything a normal exit does that has effects outside the process still
    happens first: other non-daemon threads are waited for (if any is alive, the normal exit is taken),
    atexit handlers run (logging, multiprocessing children, temporary files), stdout and stderr are flushed.
    """
    import atexit
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to deliver
            pass
    os._exit(code)
