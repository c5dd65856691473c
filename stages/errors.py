"""User-facing errors and atomic file writing shared by every stage.

A stage never leaves a file that looks finished when it failed: outputs are written under a
temporary name in the destination folder and renamed into place only once complete.
"""
from __future__ import annotations

import contextlib
import json
import os
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


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a stage's ``main`` and turn WeakgenError into a clear message and exit status 2."""
    try:
        code = main(argv)
    except WeakgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
