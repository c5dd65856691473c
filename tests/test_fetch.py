"""stages.datasets.fetch: resumable verified downloads (local http.server) and safe extraction."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from stages.datasets.fetch import download, safe_extract, verify_checksum
from stages.errors import DataError

PAYLOAD = bytes(range(256)) * 64 + b"tail"  # 16,388 bytes


# --------------------------------------------------------------------------------------------------
# A tiny HTTP server on 127.0.0.1 that can honour Range and drop connections on purpose
# --------------------------------------------------------------------------------------------------

class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.honour_range = True
        self.drop_after: int | None = None  # close the connection after this many body bytes, once
        self.requests: list[dict] = []


class _Handler(http.server.BaseHTTPRequestHandler):
    state: _State

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        st = self.state
        st.requests.append({"path": self.path, "range": self.headers.get("Range")})
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and st.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if st.drop_after is not None:
            cut, st.drop_after = st.drop_after, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    state = _State()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# download / verify_checksum
# --------------------------------------------------------------------------------------------------

def test_download_ok(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD),
                    md5=hashlib.md5(PAYLOAD).hexdigest(), size=len(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()
    # A second call keeps the verified file without any request.
    n = len(server.requests)
    download(f"{server.url}/f.bin", dest, sha256=sha(PAYLOAD), progress=False)
    assert len(server.requests) == n


def test_checksum_mismatch_deletes_everything(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    wrong = "0" * 64
    with pytest.raises(DataError) as err:
        download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=wrong, progress=False)
    msg = str(err.value)
    assert "f.bin" in msg and wrong in msg and sha(PAYLOAD) in msg and "re-run" in msg and "mirror" in msg
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_resume_with_range(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:1000])
    download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == "bytes=1000-"


def test_restart_when_server_ignores_range(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"garbage that is not a prefix")
    download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_retry_resumes_after_dropped_connection(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.drop_after = 3000
    download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False, backoff=0.0)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert [r["range"] for r in server.requests] == [None, "bytes=3000-"]


def test_part_already_complete_gets_416(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256=sha(PAYLOAD), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_http_404_is_a_data_error(server, tmp_path):
    with pytest.raises(DataError, match="404"):
        download(f"{server.url}/missing.bin", tmp_path / "missing.bin", progress=False, retries=0)
    assert not (tmp_path / "missing.bin").exists()


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = download(src.as_uri(), tmp_path / "out" / "copy.bin", md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert dest.read_bytes() == PAYLOAD
    with pytest.raises(DataError, match="nope.bin"):
        download((tmp_path / "nope.bin").as_uri(), tmp_path / "nope.bin", progress=False, retries=0)


def test_verify_checksum(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(PAYLOAD)
    verify_checksum(path, sha256=sha(PAYLOAD))
    with pytest.raises(DataError, match="a.bin.*checksum mismatch"):
        verify_checksum(path, md5="f" * 32)
    with pytest.raises(DataError, match="not found"):
        verify_checksum(tmp_path / "b.bin", md5="f" * 32)


# --------------------------------------------------------------------------------------------------
# safe_extract
# --------------------------------------------------------------------------------------------------

def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tuple):
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
            else:
                tf.addfile(m)
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("mode,suffix", [("w:gz", ".tar.gz"), ("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz"),
                                         ("w", ".tar")])
def test_extract_tar(tmp_path, mode, suffix):
    arc = make_tar(tmp_path / f"a{suffix}", [("top/a.txt", b"A"), ("top/sub/b.txt", b"BB"),
                                              link("top/ln", "sub/b.txt")], mode)
    out = safe_extract(arc, tmp_path / "out")
    assert (out / "top/a.txt").read_bytes() == b"A"
    assert (out / "top/sub/b.txt").read_bytes() == b"BB"
    assert (out / "top/ln").read_bytes() == b"BB"
    assert leftovers(tmp_path) == []


def test_extract_zip(tmp_path):
    arc = tmp_path / "a.zip"
    with zipfile.ZipFile(arc, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/x.txt", "hello")
    out = safe_extract(arc, tmp_path / "out")
    assert (out / "d/x.txt").read_text() == "hello"


def _device() -> tarfile.TarInfo:
    info = tarfile.TarInfo("dev/null")
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize("members,bad", [
    ([("ok.txt", b"x"), ("../evil", b"x")], "../evil"),
    ([("a/../../evil", b"x")], "a/../../evil"),
    ([("/abs/evil", b"x")], "/abs/evil"),
    ([link("ln", "../outside")], "ln"),
    ([link("ln", "/etc/passwd")], "ln"),
    ([link("hl", "../outside", tarfile.LNKTYPE)], "hl"),
    ([_device()], "dev/null"),
    # Each link is lexically inside, but "x" resolves to the parent of the destination once "d" exists.
    ([link("d", "."), link("x", "d/.."), ("x/evil", b"x")], "x"),
])
def test_extract_refuses_escaping_members(tmp_path, members, bad):
    arc = make_tar(tmp_path / "bad.tar.gz", members)
    with pytest.raises(DataError) as err:
        safe_extract(arc, tmp_path / "out")
    assert "bad.tar.gz" in str(err.value) and repr(bad) in str(err.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil").exists()
    assert leftovers(tmp_path) == []


def test_extract_zip_refuses_parent_paths(tmp_path):
    arc = tmp_path / "bad.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("../evil.txt", "x")
    with pytest.raises(DataError, match=r"bad\.zip.*\.\./evil\.txt"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_corrupt_or_truncated_archive(tmp_path, suffix):
    big = os.urandom(200_000)  # incompressible: truncation hits the member data
    if suffix == ".zip":
        full = tmp_path / "full.zip"
        with zipfile.ZipFile(full, "w") as zf:
            zf.writestr("a.bin", big)
            zf.writestr("b.bin", big)
    else:
        full = make_tar(tmp_path / "full.tar.gz", [("a.bin", big), ("b.bin", big)])
    data = full.read_bytes()
    for name, content in [("trunc", data[: len(data) // 2]), ("garbage", b"not an archive at all" * 10)]:
        arc = tmp_path / f"{name}{suffix}"
        arc.write_bytes(content)
        with pytest.raises(DataError) as err:
            safe_extract(arc, tmp_path / f"out_{name}")
        assert arc.name in str(err.value) and "re-download" in str(err.value)
        assert not (tmp_path / f"out_{name}").exists()
    assert leftovers(tmp_path) == []


def test_existing_destination(tmp_path):
    arc = make_tar(tmp_path / "a.tar.gz", [("new.txt", b"new")])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(DataError, match="already exists"):
        safe_extract(arc, tmp_path / "out")
    safe_extract(arc, tmp_path / "out", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.txt"]
    assert leftovers(tmp_path) == []
