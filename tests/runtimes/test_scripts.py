"""Tests of the upstream-compatible scripts in scripts/ against a stand-in
management API (a small HTTP server on 127.0.0.1 that records requests).

They check what the scripts send and how they report the answer; the real
daemon's handling of these requests is covered by the end-to-end tests.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("bash", "curl", "zip", "base64")),
    reason="the scripts need bash, curl, zip and base64",
)


class FakeManagement:
    def __init__(self) -> None:
        self.requests: List[Dict[str, object]] = []
        # path -> (status, body)
        self.replies: Dict[str, Tuple[int, bytes]] = {}
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                fake.requests.append(
                    {"method": self.command, "path": self.path, "body": body, "headers": dict(self.headers)}
                )
                route = self.path.split("?")[0]
                status, reply = fake.replies.get(route, (200, b"ok\n"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = _handle
            do_POST = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeManagement]:
    f = FakeManagement()
    yield f
    f.close()


def run(fake: FakeManagement, script: str, *args: str, cwd: Path = SCRIPTS) -> subprocess.CompletedProcess:
    env = dict(os.environ, TINYFAAS_MANAGEMENT_URL=fake.url)
    return subprocess.run(
        [str(SCRIPTS / script), *args], cwd=cwd, env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_upload_sends_upstream_json_with_zip(fake: FakeManagement, tmp_path: Path) -> None:
    fake.replies["/upload"] = (200, b"http://localhost:8000/echo\ncoap://localhost:5683/echo\n")
    # upstream's test suite calls the script from scripts/ with an absolute folder
    r = run(fake, "upload.sh", str(REPO / "functions" / "echo"), "echo", "python3", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"http://localhost:8000/echo\ncoap://localhost:5683/echo\n"
    [req] = fake.requests
    assert req["method"] == "POST" and req["path"] == "/upload"
    doc = json.loads(req["body"])  # type: ignore[arg-type]
    assert doc["name"] == "echo"
    assert doc["env"] == "python3"
    assert doc["threads"] == 1
    assert doc["envs"] == []
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(doc["zip"]))) as z:
        assert z.read("fn.py") == (REPO / "functions" / "echo" / "fn.py").read_bytes()


def test_upload_relative_folder_and_envs(fake: FakeManagement) -> None:
    r = run(fake, "upload.sh", "../functions/sieve", "sieve", "nodejs", "2", "A=1", 'B=say "hi"', cwd=SCRIPTS)
    assert r.returncode == 0, r.stderr
    doc = json.loads(fake.requests[0]["body"])  # type: ignore[arg-type]
    assert doc["threads"] == 2
    assert doc["envs"] == ["A=1", 'B=say "hi"']
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(doc["zip"]))) as z:
        assert sorted(n.lstrip("./") for n in z.namelist()) == ["index.js", "package.json"]


def test_upload_big_folder_does_not_hit_arg_max(fake: FakeManagement, tmp_path: Path) -> None:
    code = tmp_path / "big"
    code.mkdir()
    (code / "fn.py").write_text("def fn(i, h):\n    return i\n")
    # incompressible, so the base64 text is ~4 MiB: far over one argument's limit
    (code / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    r = run(fake, "upload.sh", str(code), "big", "python3", "1")
    assert r.returncode == 0, r.stderr
    doc = json.loads(fake.requests[0]["body"])  # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(doc["zip"]))) as z:
        assert len(z.read("blob.bin")) == 3 * 1024 * 1024


def test_upload_error_shows_reason_and_fails(fake: FakeManagement) -> None:
    fake.replies["/upload"] = (400, b"invalid function name\n")
    r = run(fake, "upload.sh", str(REPO / "functions" / "echo"), "bad-name", "python3", "1")
    assert r.returncode != 0
    assert b"invalid function name" in r.stderr
    assert b"400" in r.stderr


def test_upload_usage_errors(fake: FakeManagement) -> None:
    r = run(fake, "upload.sh", str(REPO / "functions" / "echo"), "echo", "python3")
    assert r.returncode == 1 and b"usage" in r.stderr
    r = run(fake, "upload.sh", str(REPO / "functions" / "echo"), "echo", "python3", "many")
    assert r.returncode == 1 and b"THREADS" in r.stderr
    assert fake.requests == []


def test_upload_unreachable_daemon_fails() -> None:
    env = dict(os.environ, TINYFAAS_MANAGEMENT_URL="http://127.0.0.1:9")
    r = subprocess.run(
        [str(SCRIPTS / "upload.sh"), str(REPO / "functions" / "echo"), "echo", "python3", "1"],
        env=env, capture_output=True, timeout=60,
    )
    assert r.returncode != 0
    assert r.stderr


def test_upload_url(fake: FakeManagement) -> None:
    r = run(fake, "uploadURL.sh", "https://example.org/repo.zip", "repo-main/fns/echo", "echo", "python3", "3")
    assert r.returncode == 0, r.stderr
    [req] = fake.requests
    assert req["path"] == "/uploadURL"
    assert json.loads(req["body"]) == {  # type: ignore[arg-type]
        "name": "echo",
        "env": "python3",
        "threads": 3,
        "url": "https://example.org/repo.zip",
        "subfolder_path": "repo-main/fns/echo",
        "envs": [],
    }


def test_list(fake: FakeManagement) -> None:
    fake.replies["/list"] = (200, b"echo\nsieve\n")
    r = run(fake, "list.sh")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"echo\nsieve\n"
    assert fake.requests[0]["method"] == "GET"


def test_delete(fake: FakeManagement) -> None:
    r = run(fake, "delete.sh", "echo")
    assert r.returncode == 0, r.stderr
    [req] = fake.requests
    assert (req["method"], req["path"]) == ("POST", "/delete")
    assert json.loads(req["body"]) == {"name": "echo"}  # type: ignore[arg-type]


def test_delete_unknown_fails(fake: FakeManagement) -> None:
    fake.replies["/delete"] = (404, b"no function named nope\n")
    r = run(fake, "delete.sh", "nope")
    assert r.returncode == 1
    assert b"no function named nope" in r.stderr


def test_logs_all_and_one(fake: FakeManagement) -> None:
    fake.replies["/logs"] = (200, b"echo: hello\n")
    r = run(fake, "logs.sh")
    assert r.returncode == 0 and r.stdout == b"echo: hello\n"
    r = run(fake, "logs.sh", "echo")
    assert r.returncode == 0
    r = run(fake, "get_logs.sh", "sieve")
    assert r.returncode == 0 and r.stdout == b"echo: hello\n"
    assert [q["path"] for q in fake.requests] == ["/logs", "/logs?name=echo", "/logs?name=sieve"]
    assert all(q["method"] == "GET" for q in fake.requests)


def test_wipe(fake: FakeManagement) -> None:
    r = run(fake, "wipe-functions.sh")
    assert r.returncode == 0, r.stderr
    [req] = fake.requests
    assert (req["method"], req["path"]) == ("POST", "/wipe")


def test_scripts_are_executable() -> None:
    for name in ("upload.sh", "uploadURL.sh", "list.sh", "delete.sh", "logs.sh", "get_logs.sh", "wipe-functions.sh"):
        assert os.access(SCRIPTS / name, os.X_OK), name
