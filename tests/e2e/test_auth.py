"""Bearer tokens and tenants on the management API (issue 6, item 2), with
independent clients: http.client, curl through upstream's scripts, and the
CLI. Without a token file the API stays on loopback."""

import json
import os
import subprocess
import time

import pytest

from conftest import (BIN, REPO, START_DEADLINE, Daemon, fn_dir, http_request, listening_ports, wait_until,
                      zip_folder_b64)
from test_logs_follow import Reader

ADMIN = "adm1n-0123456789-token"
ALICE = "al1ce-0123456789-token"
BOB = "b0b-0123456789-token-x"

TOKEN_FILE = f"""# tenants of this node
{ADMIN} ops admin

{ALICE}\talice tenant
{BOB} bob   tenant
"""


class AuthDaemon(Daemon):
    """A daemon with --token-file. Its management helpers (deploy,
    list_names) act as the admin unless told otherwise."""

    token = ADMIN

    def _wait_ready(self):
        # GET /list without a token is a 401 once the API is up.
        end = time.monotonic() + START_DEADLINE
        while True:
            assert self.proc.poll() is None, f"tinyfaas exited during start-up\n{self.log_tail()}"
            try:
                if http_request(self.mport, "GET", "/list", timeout=2).status == 401:
                    return
            except OSError:
                pass
            assert time.monotonic() < end, f"no answer within {START_DEADLINE}s\n{self.log_tail()}"
            time.sleep(0.05)

    def mgmt(self, method, path, body=None, timeout=30.0, headers=None, token="default"):
        headers = dict(headers or {})
        token = self.token if token == "default" else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return super().mgmt(method, path, body, timeout=timeout, headers=headers)

    def upload_as(self, token, key, name):
        payload = {"name": name, "env": "python3", "threads": 1, "zip": zip_folder_b64(fn_dir(key))}
        return self.mgmt("POST", "/upload", payload, timeout=300, token=token)


@pytest.fixture(scope="module")
def tokens_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("auth") / "tokens"
    p.write_text(TOKEN_FILE)
    os.chmod(p, 0o600)
    return str(p)


@pytest.fixture(scope="module")
def daemon(tokens_path):
    d = AuthDaemon(extra_args=["--token-file", tokens_path])
    yield d
    try:
        d.stop()
        log = d.log_text() or ""
        for token in (ADMIN, ALICE, BOB):
            assert token not in log, "a token appears in the daemon's log"
    finally:
        d.cleanup()


def names(d, token):
    r = d.mgmt("GET", "/list", token=token)
    assert r.status == 200, (r.status, r.text)
    return sorted(r.text.split())


def test_missing_or_wrong_token_is_401_with_a_challenge(daemon):
    for path, method, body in (("/list", "GET", None), ("/logs", "GET", None), ("/wipe", "POST", None),
                               ("/delete", "POST", {"name": "x"}), ("/upload", "POST", {"name": "x"})):
        missing = daemon.mgmt(method, path, body, token=None)
        assert missing.status == 401, (path, missing.status, missing.text)
        assert missing.headers["www-authenticate"] == 'Bearer realm="tinyfaas"'
        wrong = daemon.mgmt(method, path, body, token=ALICE + "x")
        assert wrong.status == 401, (path, wrong.status)
        assert "invalid_token" in wrong.headers["www-authenticate"]
    basic = daemon.mgmt("GET", "/list", token=None, headers={"Authorization": "Basic " + ADMIN})
    assert basic.status == 401


def test_tenants_see_and_change_only_their_own_functions(daemon):
    assert daemon.upload_as(ALICE, "echo", "alicefn").status == 200
    assert daemon.upload_as(BOB, "fail", "bobfn").status == 200
    assert daemon.call("bobfn", b"x").status == 500  # bob's function logs a traceback
    wait_until(lambda: "boom" in daemon.mgmt("GET", "/logs?name=bobfn", token=BOB).text, 10,
               what="bob's traceback in his logs")

    assert names(daemon, ALICE) == ["alicefn"]
    assert names(daemon, BOB) == ["bobfn"]
    assert names(daemon, ADMIN) == ["alicefn", "bobfn"]
    # /functions and /metrics too.
    listed = json.loads(daemon.mgmt("GET", "/functions", token=ALICE).text)
    assert [f["name"] for f in listed] == ["alicefn"]
    assert daemon.mgmt("GET", "/functions/bobfn", token=ALICE).status == 404
    assert daemon.mgmt("GET", "/functions/bobfn", token=ADMIN).status == 200
    assert 'function="bobfn"' not in daemon.mgmt("GET", "/metrics", token=ALICE).text
    assert 'function="bobfn"' in daemon.mgmt("GET", "/metrics", token=ADMIN).text

    # /logs: a tenant never sees another's lines; the admin sees all.
    assert "boom" not in daemon.mgmt("GET", "/logs", token=ALICE).text
    assert "boom" in daemon.mgmt("GET", "/logs", token=ADMIN).text
    hidden = daemon.mgmt("GET", "/logs?name=bobfn", token=ALICE)
    unknown = daemon.mgmt("GET", "/logs?name=nosuchfn", token=ALICE)
    assert (hidden.status, unknown.status) == (404, 404)
    assert hidden.text == "function bobfn not found\n"
    assert unknown.text == "function nosuchfn not found\n"

    # delete of another tenant's function: exactly like an unknown one.
    hidden = daemon.mgmt("POST", "/delete", {"name": "bobfn"}, token=ALICE)
    unknown = daemon.mgmt("POST", "/delete", {"name": "nosuchfn"}, token=ALICE)
    assert (hidden.status, unknown.status) == (404, 404)
    assert hidden.text.replace("bobfn", "NAME") == unknown.text.replace("nosuchfn", "NAME")

    # upload over another tenant's name: a refusal that names no owner.
    taken = daemon.upload_as(ALICE, "echo", "bobfn")
    assert taken.status == 409, (taken.status, taken.text)
    assert taken.text == "function name bobfn is taken; choose another name\n"
    assert "bob" not in taken.text.replace("bobfn", "")
    assert daemon.call("bobfn", b"x").status == 500  # still bob's function

    # wipe by a tenant wipes only its own.
    assert daemon.mgmt("POST", "/wipe", token=ALICE).status == 200
    assert names(daemon, ADMIN) == ["bobfn"]

    # The admin changes anyone's function; the owner stays.
    assert daemon.upload_as(ADMIN, "echo", "bobfn").status == 200
    assert names(daemon, BOB) == ["bobfn"]
    assert daemon.mgmt("POST", "/delete", {"name": "bobfn"}, token=ADMIN).status == 200
    assert names(daemon, BOB) == []


def test_owner_survives_a_restart(tokens_path):
    d = AuthDaemon(extra_args=["--token-file", tokens_path])
    try:
        assert d.upload_as(ALICE, "echo", "kept").status == 200
        d.stop()
        d2 = AuthDaemon(extra_args=["--token-file", tokens_path], state_dir=d.state_dir)
        try:
            assert names(d2, ALICE) == ["kept"]
            assert names(d2, BOB) == []
            assert d2.mgmt("POST", "/delete", {"name": "kept"}, token=BOB).status == 404
        finally:
            d2.stop()
            d2.cleanup()
    finally:
        d.kill_hard()
        d.cleanup()


def script(d, name, *args, token=None):
    env = os.environ.copy()
    env["TINYFAAS_MANAGEMENT_URL"] = f"http://127.0.0.1:{d.mport}"
    env.pop("TINYFAAS_TOKEN", None)
    if token:
        env["TINYFAAS_TOKEN"] = token
    return subprocess.run(["./" + name, *map(str, args)], cwd=REPO / "scripts", env=env, capture_output=True,
                          text=True, timeout=300)


def test_scripts_send_TINYFAAS_TOKEN(daemon):
    r = script(daemon, "upload.sh", fn_dir("echo"), "scripted", "python3", 1, token=BOB)
    assert r.returncode == 0, r.stderr
    assert script(daemon, "list.sh", token=BOB).stdout.split() == ["scripted"]
    assert script(daemon, "list.sh", token=ALICE).stdout.split() == []
    denied = script(daemon, "list.sh")
    assert denied.returncode != 0
    assert "HTTP 401" in denied.stderr, denied.stderr
    assert script(daemon, "delete.sh", "scripted", token=ALICE).returncode != 0
    assert script(daemon, "delete.sh", "scripted", token=BOB).returncode == 0
    assert script(daemon, "wipe-functions.sh", token=BOB).returncode == 0


def cli(*args, token_env=None):
    env = os.environ.copy()
    env.pop("TINYFAAS_MANAGEMENT_URL", None)
    env.pop("TINYFAAS_TOKEN", None)
    if token_env:
        env["TINYFAAS_TOKEN"] = token_env
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_cli_takes_a_token_flag_or_TINYFAAS_TOKEN(daemon):
    url = f"http://127.0.0.1:{daemon.mport}"
    r = cli("deploy", fn_dir("echo"), "--name", "clifn", "--runtime", "python3", "--threads", 1, "--url", url,
            "--token", ALICE)
    assert r.returncode == 0, r.stderr
    assert cli("list", "-q", "--url", url, token_env=ALICE).stdout.split() == ["clifn"]
    assert cli("list", "-q", "--url", url, "--token", BOB).stdout.split() == []
    # The table comes from /functions: a tenant's holds its own functions only.
    table = cli("list", "--url", url, "--token", ALICE)
    assert table.returncode == 0, table.stderr
    assert "clifn" in table.stdout
    assert "clifn" not in cli("list", "--url", url, "--token", BOB).stdout
    denied = cli("list", "-q", "--url", url)
    assert denied.returncode == 1
    assert "401" in denied.stderr, denied.stderr
    assert ALICE not in denied.stderr
    assert cli("delete", "clifn", "--url", url, "--token", ALICE).returncode == 0


# --------------------------------------------------------------------------
# start-up: the token file's errors, and loopback only without one


def start_expecting_failure(tmp_path, *args):
    r = subprocess.run([str(BIN), "serve", "--backend", "process", "--state-dir", str(tmp_path / "state"),
                        "--management-port", "0", "--http-port", "-1", "--coap-port", "-1", "--grpc-port", "-1",
                        *args], capture_output=True, text=True, timeout=30)
    return r


def test_bad_token_file_line_stops_the_start_naming_the_line(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# ok\n{ALICE} alice tenant\n{BOB} bob superuser\n")
    r = start_expecting_failure(tmp_path, "--token-file", str(path))
    assert r.returncode == 2, r.stderr
    assert f"{path} line 3: role must be admin or tenant" in r.stderr, r.stderr
    assert BOB not in r.stderr and ALICE not in r.stderr
    missing = start_expecting_failure(tmp_path, "--token-file", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "cannot read token file" in missing.stderr, missing.stderr


def test_without_a_token_file_management_stays_on_loopback(tmp_path, make_daemon):
    r = start_expecting_failure(tmp_path, "--management-address", "0.0.0.0")
    assert r.returncode == 2, r.stderr
    assert "--management-address 0.0.0.0 is not a loopback address" in r.stderr, r.stderr
    assert "--token-file" in r.stderr

    d = make_daemon()
    assert "no --token-file, so no authentication: listening on loopback only" in d.log_text()
    assert d.mport in listening_ports(d.proc.pid)["tcp"]
    # /proc/net/tcp: the management port is bound to 127.0.0.1 only.
    local = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            addr, port = cols[1].split(":")
            if int(port, 16) == d.mport and cols[3] == "0A":
                local.append(addr)
    assert local == ["0100007F"], local
    assert d.mgmt("GET", "/list").status == 200  # no token needed


def test_with_a_token_file_management_may_listen_everywhere(tokens_path, tmp_path):
    readable = tmp_path / "tokens"
    readable.write_text(TOKEN_FILE)
    os.chmod(readable, 0o644)
    d = AuthDaemon(extra_args=["--token-file", str(readable), "--management-address", "0.0.0.0"])
    try:
        log = d.log_text()
        assert "bearer tokens required (3 in" in log
        assert f"token file {readable} can be read by other users; chmod 600 it" in log
        assert names(d, ADMIN) == []
    finally:
        d.stop()
        d.cleanup()


def test_a_tenant_following_all_logs_gets_only_its_own_lines(daemon):
    assert daemon.upload_as(ALICE, "sleep", "alicesleep").status == 200
    assert daemon.upload_as(BOB, "fail", "bobfail").status == 200
    follower = Reader(["curl", "-sN", "--max-time", "60", "-H", f"Authorization: Bearer {ALICE}",
                       f"http://127.0.0.1:{daemon.mport}/logs?follow=1"])
    try:
        time.sleep(0.5)  # connected; lines from before it would be sent too, so this only orders the test
        assert daemon.call("bobfail", b"x").status == 500
        wait_until(lambda: "boom" in daemon.mgmt("GET", "/logs?name=bobfail", token=BOB).text, 10,
                   what="bob's traceback in the log store")
        assert daemon.call("alicesleep", b"0").status == 200
        wait_until(lambda: any(l.endswith("slept 0.0s") for l in follower.lines), 10,
                   what="alice's new line in her stream")
        assert not any("bobfail" in l or "boom" in l for l in follower.lines), follower.lines
    finally:
        follower.stop()
