"""Robust download, checksum verification and safe archive extraction, shared by every dataset.

Why this module exists: dataset files are large, mirrors are flaky and archives come from third
parties. A download is streamed to ``<dest>.part``, resumed with an HTTP ``Range`` request after an
interruption, verified, and only then renamed onto ``dest``; so a file at ``dest`` is always complete.
Archives are extracted into a temporary folder beside the destination, member by member, refusing any
member that would write outside it, and the folder is renamed into place only when everything succeeded.

Only the standard library is used (``urllib``), so ``http(s)://`` and ``file://`` URLs both work.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import lzma
import os
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from stages.errors import DataError

__all__ = ["download", "verify_checksum", "safe_extract", "file_digest"]

CHUNK = 1 << 20
USER_AGENT = "weakgen-fetch/1.0 (python urllib)"
# HTTP statuses worth retrying: the server or a proxy is temporarily unable to answer.
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Transient(Exception):
    """A network failure after which retrying (and resuming) makes sense."""


# --------------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------------

def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB chunks (never the whole file in memory)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _mismatches(path: Path, sha256: str | None, md5: str | None) -> list[tuple[str, str, str]]:
    """(algorithm, expected, actual) for every given checksum that does not match."""
    bad = []
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_digest(path, algo)
            if actual.lower() != expected.lower():
                bad.append((algo, expected.lower(), actual))
    return bad


def _describe(bad: list[tuple[str, str, str]]) -> str:
    return "; ".join(f"{algo} expected {exp}, got {act}" for algo, exp, act in bad)


def verify_checksum(path: str | os.PathLike, *, sha256: str | None = None, md5: str | None = None) -> None:
    """Raise DataError unless ``path`` exists and matches every given checksum (streamed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; download it again (re-run the download stage).")
    bad = _mismatches(path, sha256, md5)
    if bad:
        raise DataError(
            f"{path}: checksum mismatch ({_describe(bad)}). The file is corrupt or is not the expected "
            f"release: delete it and re-run the download stage, or check the mirror it came from."
        )


# --------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------

def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: bool = True,
    retries: int = 4,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest``, resumably, verified, atomically; return ``dest``.

    - An existing ``dest`` is kept if it passes the checksum(s) (a mismatch raises DataError, the file
      is left for the user to inspect and delete).
    - Bytes go to ``dest.part``; an existing ``.part`` is resumed with ``Range: bytes=<len>-``. A server
      that ignores Range (status 200) restarts the download from zero.
    - Transient errors (connection reset/timeout, truncated body, HTTP 5xx/429/408) are retried
      ``retries`` times with exponential backoff, each retry resuming the ``.part``.
    - A checksum or size mismatch deletes the ``.part`` and raises DataError (expected vs actual).
    """
    dest = Path(dest)
    if dest.exists():
        if size is not None and dest.stat().st_size != size:
            raise DataError(f"{dest}: has {dest.stat().st_size} bytes, expected {size}; delete it and re-run.")
        verify_checksum(dest, sha256=sha256, md5=md5)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, size=size, progress=progress, timeout=timeout, desc=dest.name)
            break
        except _Transient as exc:
            if attempt == retries:
                raise DataError(
                    f"{dest.name}: download from {url} failed after {retries + 1} attempts ({exc}). "
                    f"Partial data is kept in {part} and resumed on the next run; re-run later or use another mirror."
                ) from exc
            time.sleep(backoff * 2 ** attempt)

    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink(missing_ok=True)
        raise DataError(
            f"{dest.name}: downloaded {got} bytes from {url}, expected {size}. The partial file was deleted; "
            f"re-run to download again, or check the mirror."
        )
    bad = _mismatches(part, sha256, md5)
    if bad:
        part.unlink(missing_ok=True)
        raise DataError(
            f"{dest.name}: checksum mismatch for the file downloaded from {url} ({_describe(bad)}). "
            f"The partial file was deleted; re-run to download it again, or check the mirror (it may serve "
            f"a different or corrupted release)."
        )
    os.replace(part, dest)
    return dest


def _fetch_into(url: str, part: Path, *, size: int | None, progress: bool, timeout: float, desc: str) -> None:
    """One attempt: stream ``url`` into ``part``, appending when the server honours the Range request."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:  # not a prefix of the expected file
        part.unlink()
        offset = 0
    if size is not None and offset == size:
        return  # complete from an earlier attempt; the caller verifies it
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Range not satisfiable: the .part is already the whole file, or it is garbage.
            total = _total_from_content_range(exc.headers.get("Content-Range"))
            if total is not None and total == offset:
                return
            part.unlink(missing_ok=True)
            raise _Transient("HTTP 416 for a resumed download; restarting from zero") from exc
        if exc.code in _TRANSIENT_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise DataError(
            f"{part.name[:-5]}: {url} answered HTTP {exc.code} ({exc.reason}). Check the URL / mirror, "
            f"or place the file by hand."
        ) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError) or url.startswith("file:"):
            raise DataError(f"{part.name[:-5]}: cannot open {url} ({exc.reason}); check the path.") from exc
        raise _Transient(f"{exc.reason}") from exc
    except (ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException) as exc:
        raise _Transient(repr(exc)) from exc

    with response:
        status = getattr(response, "status", None)
        if offset and status == 206:
            if _start_from_content_range(response.headers.get("Content-Range")) != offset:
                part.unlink(missing_ok=True)  # the server answered another range than asked: restart
                raise _Transient("unexpected Content-Range in a resumed download; restarting from zero")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # fresh download, or the server ignored Range (200): restart
        length = response.headers.get("Content-Length")
        expected = offset + int(length) if length is not None and length.isdigit() else size
        received = offset
        with open(part, mode) as f, tqdm(total=expected, initial=offset, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=desc, disable=not progress, leave=False) as bar:
            while True:
                try:
                    block = response.read(CHUNK)
                except (ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException) as exc:
                    raise _Transient(f"connection lost after {received} bytes ({exc!r})") from exc
                if not block:
                    break
                f.write(block)
                received += len(block)
                bar.update(len(block))
    if expected is not None and received < expected:
        raise _Transient(f"connection closed after {received} of {expected} bytes")


def _start_from_content_range(value: str | None) -> int | None:
    """Start byte of ``Content-Range: bytes <start>-<end>/<total>``."""
    try:
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _total_from_content_range(value: str | None) -> int | None:
    try:
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


# --------------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------------

def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Extract a tar (plain/gz/bz2/xz) or zip archive into the folder ``dest``; return ``dest``.

    Refuses (DataError naming the archive and the member) any member with an absolute path, a ``..``
    that leaves ``dest``, a symlink or hard link pointing outside ``dest``, or a device/FIFO. A corrupt
    or truncated archive raises DataError with the fix (delete and re-download). Extraction happens in
    a temporary folder beside ``dest`` that is renamed onto ``dest`` only on success, so nothing partial
    is ever left. ``dest`` must not exist unless ``overwrite`` (then it is replaced as a whole).
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found; download it first (re-run the download stage).")
    if dest.exists() and not overwrite:
        raise DataError(f"{dest}: already exists; delete it (or pass overwrite=True) to extract {archive.name} again.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        if archive.name.lower().endswith(".zip") or zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        else:
            _extract_tar(archive, tmp)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _corrupt(archive: Path, exc: BaseException) -> DataError:
    return DataError(
        f"{archive}: corrupt or truncated archive ({exc.__class__.__name__}: {exc}). "
        f"Delete it and re-download it (re-run the download stage)."
    )


def _is_decoding_error(exc: BaseException) -> bool:
    """Decompression failures; an OSError with an errno (disk full, permissions) is not one."""
    if isinstance(exc, (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile,
                        zipfile.BadZipFile)):
        return True
    return isinstance(exc, OSError) and exc.errno is None


def _check_name(archive: Path, name: str) -> None:
    """Refuse absolute names and names whose ``..`` components leave the extraction folder."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise DataError(f"{archive}: refusing member {name!r} with an absolute path; the archive is unsafe.")
    depth = 0
    for part in PurePosixPath(posix).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise DataError(f"{archive}: refusing member {name!r} that escapes the destination ('..').")


def _check_link_target(archive: Path, name: str, target: str, *, relative_to_member: bool) -> None:
    """Refuse a link whose target (lexically) lies outside the extraction folder."""
    posix = target.replace("\\", "/")
    if posix.startswith("/"):
        raise DataError(f"{archive}: refusing link {name!r} -> {target!r} (absolute target outside the destination).")
    base = PurePosixPath(name.replace("\\", "/")).parent.parts if relative_to_member else ()
    depth = len([p for p in base if p not in (".", "")])
    for part in PurePosixPath(posix).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise DataError(f"{archive}: refusing link {name!r} -> {target!r} pointing outside the destination.")


def _extract_tar(archive: Path, tmp: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()  # reads the whole index: detects truncation before writing anything
            for m in members:
                _check_name(archive, m.name)
                if m.ischr() or m.isblk() or m.isfifo() or not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                    raise DataError(f"{archive}: refusing member {m.name!r}: device, FIFO or special file.")
                if m.issym():
                    _check_link_target(archive, m.name, m.linkname, relative_to_member=True)
                elif m.islnk():
                    _check_link_target(archive, m.name, m.linkname, relative_to_member=False)
            # The "data" filter re-checks every member against the real (symlink-resolved) paths at
            # extraction time, catching link chains that only escape once earlier links exist.
            tf.extractall(tmp, members=members, filter="data")
    except DataError:
        raise
    except tarfile.FilterError as exc:
        member = getattr(getattr(exc, "tarinfo", None), "name", "?")
        raise DataError(f"{archive}: refusing member {member!r}: {exc}; the archive is unsafe.") from exc
    except BaseException as exc:
        if _is_decoding_error(exc):
            raise _corrupt(archive, exc) from exc
        raise


def _extract_zip(archive: Path, tmp: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_name(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    # zipfile writes links as small files holding the target; still refuse escaping ones.
                    _check_link_target(archive, info.filename, zf.read(info).decode("utf-8", "replace"),
                                       relative_to_member=True)
                elif mode and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
                    raise DataError(f"{archive}: refusing member {info.filename!r}: device or FIFO.")
            for info in infos:
                zf.extract(info, tmp)  # CRC is checked while reading: corruption raises BadZipFile
    except DataError:
        raise
    except BaseException as exc:
        if _is_decoding_error(exc):
            raise _corrupt(archive, exc) from exc
        raise
