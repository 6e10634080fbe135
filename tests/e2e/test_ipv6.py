"""Endpoints listen dual-stack with `--address ::`, the default (issue 14,
item 9): IPv6 and IPv4 clients reach the same sockets. curl -g to [::1] on
HTTP and the management port, coap-client to coap://[::1]/NAME, and the
same over 127.0.0.1."""

import os
import subprocess

import pytest

from conftest import coap_client_binary
from test_auth import ADMIN, AuthDaemon
from test_health import token_file
from test_grpc import grpc_calls


def has_ipv6_loopback() -> bool:
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not has_ipv6_loopback(), reason="this host has no IPv6 loopback (::1)")


def curl(url, *extra):
    r = subprocess.run(["curl", "-g", "-sS", "--max-time", "30", "-w", "\n%{http_code}", *extra, url],
                       capture_output=True, text=True, timeout=60)
    body, _, status = r.stdout.rpartition("\n")
    return status, body


def coap(url, payload, workdir):
    inp = os.path.join(workdir, "in")
    out = os.path.join(workdir, "out")
    with open(inp, "wb") as f:
        f.write(payload)
    if os.path.exists(out):
        os.remove(out)
    r = subprocess.run([coap_client_binary(), "-B", "10", "-m", "post", "-f", inp, "-o", out, url],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as f:
        return f.read()


def test_every_endpoint_answers_over_ipv6_and_ipv4(tmp_path, workdir):
    tokens = token_file(tmp_path)
    # --address :: as a user would leave it (conftest passes 127.0.0.1
    # unless told), and the management API on :: too, behind tokens.
    d = AuthDaemon(extra_args=["--address", "::", "--management-address", "::", "--token-file", str(tokens)],
                   grpc_port=0)
    try:
        assert f"HTTP endpoint on [::]:{d.hport}" in d.log_text()
        auth = ("-H", f"Authorization: Bearer {ADMIN}")
        for host in ("[::1]", "127.0.0.1"):
            assert curl(f"http://{host}:{d.mport}/list", *auth)[0] == "200", host
        zip_path = tmp_path / "echo.json"
        from conftest import fn_dir, zip_folder_b64
        import json
        zip_path.write_text(json.dumps({"name": "echo", "env": "python3", "threads": 1,
                                        "zip": zip_folder_b64(fn_dir("echo"))}))
        status, body = curl(f"http://[::1]:{d.mport}/upload", *auth, "--data-binary", f"@{zip_path}")
        assert status == "200", body
        # The upload reply names the host the operator used.
        assert f"http://[::1]:{d.hport}/echo" in body.splitlines()
        for host in ("[::1]", "127.0.0.1"):
            assert curl(f"http://{host}:{d.hport}/echo", "--data-binary", f"over {host}") == ("200", f"over {host}")
            assert coap(f"coap://{host}:{d.cport}/echo", f"coap {host}".encode(), workdir) == f"coap {host}".encode()
        for target in (f"[::1]:{d.gport}", f"127.0.0.1:{d.gport}"):
            g = grpc_calls(d.gport, [{"name": "echo", "data": b"grpc", "timeout": 30}], target=target)[0]
            assert (g.code, g.response) == ("OK", b"grpc"), (target, g)
    finally:
        d.stop()
        d.cleanup()


def test_ipv4_only_is_still_possible(make_daemon):
    d = make_daemon(extra_args=["--address", "0.0.0.0"])
    d.deploy("echo")
    assert curl(f"http://127.0.0.1:{d.hport}/echo", "--data-binary", "v4") == ("200", "v4")
    status, _ = curl(f"http://[::1]:{d.hport}/echo", "--data-binary", "v6")
    assert status == "000", "an IPv4-only endpoint answered on ::1"


def test_the_management_api_listens_on_both_loopback_addresses(make_daemon):
    d = make_daemon()  # no --management-address: localhost
    assert f"management API on localhost:{d.mport}" in d.log_text()
    for host in ("[::1]", "127.0.0.1", "localhost"):
        assert curl(f"http://{host}:{d.mport}/list")[0] == "200", host
    assert curl(f"http://[::1]:{d.mport}/healthz") == ("200", "ok\n")
