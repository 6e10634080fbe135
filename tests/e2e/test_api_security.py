"""The management API and the HTTP endpoint against hostile clients (issue 12,
findings 5-8 and the HTTP part of 10): the token is checked before the body,
web pages cannot drive a token-less API (Origin/Host), tenants' /uploadURL
cannot reach the node's own or private addresses and learns nothing from
its errors, log followers and next owners see no foreign lines, idle and
slow connections cannot starve calls and deploys."""

import http.server
import io
import json
import os
import resource
import select
import socket
import stat
import subprocess
import threading
import time
import zipfile

import pytest

import conftest
from conftest import BIN, REPO, Daemon, fn_dir, http_request, one_line_reason, wait_until, zip_entries_b64
from test_auth import ADMIN, ALICE, BOB, AuthDaemon, tokens_path  # noqa: F401 (tokens_path is a fixture)
from test_logs_follow import Reader


@pytest.fixture
def auth_daemon(tokens_path):
    made = []

    def factory(*extra):
        d = AuthDaemon(extra_args=["--token-file", tokens_path, *extra])
        made.append(d)
        return d

    yield factory
    try:
        for d in made:
            d.stop()
    finally:
        for d in made:
            d.cleanup()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_exchange(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, str]:
    """Sends `request` as is and returns the status and body of the answer
    (the server closes or keeps the connection; either is fine)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), body.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# finding 5: the token before the body


def test_80_mib_without_a_token_gets_401_before_the_body_and_rss_stays_flat(auth_daemon):
    d = auth_daemon()
    before = rss_kib(d.proc.pid)
    total = 80 << 20
    chunk = b"x" * (256 << 10)
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", d.mport), timeout=30) as s:
        s.sendall(f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{d.mport}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {total}\r\n\r\n".encode())
        try:
            while sent < total:
                readable, _, _ = select.select([s], [], [], 0.01)
                if readable:
                    break
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed; its answer is still readable
        s.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"missing bearer token" in answer
    assert sent < total // 2, f"the client could send {sent} of {total} bytes before the 401"
    grown = rss_kib(d.proc.pid) - before
    assert grown < 6 * 1024, f"RSS grew by {grown} KiB"
    assert d.mgmt("GET", "/list").status == 200


def test_curl_without_a_token_gets_401_without_sending_a_large_body(auth_daemon, tmp_path):
    d = auth_daemon()
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(20 << 20)
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "--max-time", "30",
                        "-H", "Content-Type: application/json", "--data-binary", f"@{big}",
                        f"http://127.0.0.1:{d.mport}/upload"], capture_output=True, text=True, timeout=60)
    code, uploaded = r.stdout.split()
    assert code == "401", r.stdout + r.stderr
    assert float(uploaded) < (20 << 20), r.stdout


# --------------------------------------------------------------------------
# finding 7: without tokens, only this API's own origin and loopback names


def simple_post(port, path, body, headers):
    return http_request(port, "POST", path, body=json.dumps(body).encode(),
                        headers={"Content-Type": "text/plain", **headers})


def test_a_cross_origin_simple_post_is_refused(daemon):
    d = daemon
    d.ensure("echo", "keepme")
    payload = {"name": "evil", "env": "python3", "threads": 1, "zip": zip_entries_b64([("fn.py", b"x")])}
    for origin in ("http://evil.example", "null", f"http://evil.example:{d.mport}",
                   f"http://127.0.0.1:{d.mport + 1}", f"https://127.0.0.1:{d.mport}", "http://localhost"):
        r = simple_post(d.mport, "/upload", payload, {"Origin": origin})
        assert r.status == 403, (origin, r.status, r.text)
        assert "origin" in one_line_reason(r.body).lower()
        r = simple_post(d.mport, "/wipe", {}, {"Origin": origin})
        assert r.status == 403, (origin, r.status, r.text)
    r = simple_post(d.mport, "/delete", {"name": "keepme"}, {"Sec-Fetch-Site": "cross-site"})
    assert r.status == 403, r.text
    assert sorted(d.list_names()) == ["keepme"]


def test_its_own_origin_and_plain_clients_are_served(daemon):
    d = daemon
    for origin in (f"http://127.0.0.1:{d.mport}", f"http://localhost:{d.mport}", f"HTTP://LocalHost:{d.mport}"):
        r = http_request(d.mport, "GET", "/list", headers={"Origin": origin})
        assert r.status == 200, (origin, r.status, r.text)
    r = http_request(d.mport, "GET", "/list", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status == 200, r.text
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"http://localhost:{d.mport}/list"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "200", r.stdout + r.stderr


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}",
                                  "localhost.evil.example", "10.1.2.3:{port}", "[::2]:{port}", "",
                                  "127.0.0.1:{port}:1", "[::1"])
def test_a_foreign_host_header_is_refused(daemon, host):
    d = daemon
    host = host.format(port=d.mport)
    for request in (f"GET /list HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
                    f"POST /wipe HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"):
        status, body = raw_exchange(d.mport, request.encode())
        assert status == 403, (host, status, body)
        assert "host" in one_line_reason(body.encode()).lower()


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "localhost.:{port}",
                                  "[::1]:{port}", "127.0.0.2", "app.localhost:{port}", None])
def test_loopback_host_headers_are_served(daemon, host):
    d = daemon
    if host is None:  # HTTP/1.0 without Host
        request = "GET /list HTTP/1.0\r\n\r\n"
    else:
        request = f"GET /list HTTP/1.1\r\nHost: {host.format(port=d.mport)}\r\nConnection: close\r\n\r\n"
    status, body = raw_exchange(d.mport, request.encode())
    assert status == 200, (host, status, body)


def test_upstream_scripts_are_not_refused(make_daemon):
    d = make_daemon()
    env = dict(os.environ, TINYFAAS_MANAGEMENT_URL=f"http://localhost:{d.mport}")
    r = subprocess.run(["./upload.sh", str(fn_dir("echo")), "echo", "python3", "1"], cwd=REPO / "scripts", env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["./list.sh"], cwd=REPO / "scripts", env=env, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["echo"], r.stdout + r.stderr


# --------------------------------------------------------------------------
# finding 8: /uploadURL


@pytest.fixture(scope="module")
def zip_server():
    """Serves /top.zip (the echo function) on 127.0.0.1, and on 127.0.0.2
    /hop.zip redirecting to it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(fn_dir("echo").rglob("*")):
            if path.is_file():
                archive.write(path, str(path.relative_to(fn_dir("echo"))))
    top = buffer.getvalue()
    servers = []

    def serve(address, routes):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif isinstance(route, str):
                    self.send_response(302)
                    self.send_header("Location", route)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer((address, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    port = serve("127.0.0.1", {"/top.zip": top})
    hop = serve("127.0.0.2", {"/hop.zip": f"http://127.0.0.1:{port}/top.zip"})
    yield {"top": f"http://127.0.0.1:{port}/top.zip", "missing": f"http://127.0.0.1:{port}/missing.zip",
           "hop": f"http://127.0.0.2:{hop}/hop.zip", "localhost": f"http://localhost:{port}/top.zip",
           "port": port}
    for server in servers:
        server.shutdown()
        server.server_close()


def upload_url(d, token, name, url):
    body = {"name": name, "env": "python3", "threads": 1, "url": url}
    return d.mgmt("POST", "/uploadURL", body, timeout=120, token=token)


def test_a_tenants_upload_url_cannot_reach_the_node_and_learns_nothing(auth_daemon, zip_server):
    d = auth_daemon()
    texts = set()
    for url in (zip_server["top"], zip_server["localhost"], "http://127.0.0.1:9/x.zip", "http://[::1]:9/x.zip",
                "http://169.254.169.254/latest/meta-data", "http://10.255.255.1:81/x.zip", zip_server["hop"]):
        r = upload_url(d, ALICE, "alicefetch", url)
        assert r.status == 400, (url, r.status, r.text)
        texts.add(one_line_reason(r.body))
    assert len(texts) == 1, texts
    assert "alicefetch" not in d.list_names()
    # The admin keeps today's reach, with the detailed reason.
    r = upload_url(d, ADMIN, "adminfetch", zip_server["top"])
    assert r.status == 200, r.text
    assert d.call("adminfetch", b"fetched").body == b"fetched"
    r = upload_url(d, ADMIN, "adminfetch", "http://127.0.0.1:9/x.zip")
    assert r.status == 400 and "cannot download" in r.text, r.text


def test_upload_url_allow_lets_tenants_reach_the_ranges_given(auth_daemon, zip_server):
    d = auth_daemon("--upload-url-allow", "127.0.0.1/32", "--upload-url-allow", "192.0.2.0/24")
    r = upload_url(d, ALICE, "alicefetch", zip_server["top"])
    assert r.status == 200, r.text
    assert d.call("alicefetch", b"allowed").body == b"allowed"
    # Errors inside an allowed range are still the one text, and a redirect
    # from 127.0.0.2 (not allowed) is refused even though its target is.
    missing = upload_url(d, ALICE, "alicemissing", zip_server["missing"])
    refused = upload_url(d, ALICE, "alicemissing", "http://127.0.0.1:9/x.zip")
    hop = upload_url(d, ALICE, "alicemissing", zip_server["hop"])
    assert missing.status == refused.status == hop.status == 400
    assert missing.text == refused.text == hop.text, (missing.text, refused.text, hop.text)


def test_a_redirect_to_a_refused_address_is_refused(auth_daemon, zip_server):
    d = auth_daemon("--upload-url-allow", "127.0.0.2/32")
    r = upload_url(d, BOB, "bobhop", zip_server["hop"])
    assert r.status == 400, r.text
    assert upload_url(d, ADMIN, "adminhop", zip_server["hop"]).status == 200


def test_upload_url_allow_is_checked_at_start(tmp_path):
    for value in ("10.0.0.0/33", "not-a-range", "10.0.0.1/8"):
        r = subprocess.run([str(BIN), "serve", "--print-config", "--upload-url-allow", value],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (value, r.stdout, r.stderr)
        assert "--upload-url-allow" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    config = tmp_path / "c.toml"
    config.write_text('upload-url-allow = ["10.0.0.0/8", "fd00::/8"]\n')
    r = subprocess.run([str(BIN), "serve", "--print-config", "--config", str(config)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert 'upload-url-allow = ["10.0.0.0/8", "fd00::/8"]' in r.stdout


def test_credentials_and_query_of_a_url_never_reach_the_log(auth_daemon, zip_server):
    d = auth_daemon()
    url = zip_server["top"].replace("http://", "http://someone:s3cr3t-pass@") + "?sig=s3cr3t-query"
    assert upload_url(d, ADMIN, "credfetch", url).status == 200
    missing = zip_server["missing"].replace("http://", "http://someone:s3cr3t-pass@") + "?sig=s3cr3t-query"
    assert upload_url(d, ADMIN, "credfetch2", missing).status == 400
    assert upload_url(d, ALICE, "credfetch3", url).status == 400
    log = d.log_text()
    assert "s3cr3t" not in log, [l for l in log.splitlines() if "s3cr3t" in l]
    assert f"127.0.0.1:{zip_server['port']}/top.zip" in log  # the URL is logged, without its secrets


# --------------------------------------------------------------------------
# finding 6: logs


FAILS_AT_START = zip_entries_b64([("fn.py", b"import sys\nsys.stdout.write('alice-secret-line\\n')\n"
                                             b"sys.stdout.flush()\nraise SystemExit(3)\n")])


def test_a_follower_gets_no_lines_of_the_next_owner(auth_daemon):
    d = auth_daemon()
    assert d.upload_as(ALICE, "sleep", "shared").status == 200

    def follow(token, query):
        return Reader(["curl", "-sN", "--max-time", "60", "-H", f"Authorization: Bearer {token}",
                       f"http://127.0.0.1:{d.mport}/logs?{query}"])

    named, every = follow(ALICE, "name=shared&follow=1"), follow(ALICE, "follow=1")
    # The admin's stream is the witness that a line was sent to followers.
    witness = follow(ADMIN, "name=shared&follow=1")
    readers = (named, every, witness)
    try:
        assert d.call("shared", b"0.011").status == 200
        wait_until(lambda: all(any("slept 0.011s" in l for l in r.lines) for r in readers), 10,
                   what="alice's own line in every stream")
        assert d.mgmt("POST", "/delete", {"name": "shared"}, token=ALICE).status == 200
        assert d.upload_as(BOB, "sleep", "shared").status == 200
        assert d.call("shared", b"0.022").status == 200
        wait_until(lambda: any("slept 0.022s" in l for l in witness.lines), 10, what="bob's line in the admin's stream")
        for reader in (named, every):
            assert not any("0.022" in l for l in reader.lines), reader.lines
    finally:
        for reader in readers:
            reader.stop()


def test_the_next_owner_does_not_see_a_failed_deploys_lines(auth_daemon):
    d = auth_daemon()
    r = d.mgmt("POST", "/upload", {"name": "taken", "env": "python3", "threads": 1, "zip": FAILS_AT_START},
               timeout=120, token=ALICE)
    assert r.status == 400, r.text
    assert "alice-secret-line" in r.text  # the uploader is told why
    assert d.upload_as(BOB, "echo", "taken").status == 200
    assert "alice-secret-line" not in d.mgmt("GET", "/logs?name=taken", token=BOB).text
    assert "alice-secret-line" not in d.mgmt("GET", "/logs", token=BOB).text


# --------------------------------------------------------------------------
# finding 10, HTTP: idle and slow connections


def test_3000_idle_connections_under_a_1024_fd_limit_stop_no_call_or_deploy(tmp_path, monkeypatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 3500:
        pytest.skip(f"this test needs 3500 file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wrapper = tmp_path / "tinyfaas-1024"
    wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile=1024:1024 "{BIN}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(conftest, "BIN", wrapper)
    d = Daemon()
    idle = []
    try:
        d.deploy("echo")
        for port in (d.hport, d.mport):
            for _ in range(1500):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                idle.append(s)
        r = d.call("echo", b"still served", timeout=20)
        assert (r.status, r.body) == (200, b"still served")
        d.deploy("sieve")
        assert d.call("sieve", timeout=20).status == 200
        assert "file descriptors: soft limit 1024" in d.log_text()
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            d.stop()
        finally:
            d.cleanup()


@pytest.mark.parametrize("which", ["endpoint", "management"])
def test_a_header_dripped_byte_by_byte_is_cut_off(daemon, which):
    port = daemon.hport if which == "endpoint" else daemon.mport
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /list HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        closed = False
        for _ in range(30):  # at most 15 s of dripping
            try:
                s.sendall(b"X")
                readable, _, _ = select.select([s], [], [], 0.5)
                if readable and not s.recv(4096):
                    closed = True
                    break
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed, "the server still waits for the header after 15 s"
        assert time.monotonic() - start < 12
