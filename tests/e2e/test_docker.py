"""The docker backend against the real Docker engine: every sample function
over HTTP and CoAP, environment variables, dependencies, redeploys under
load, restarts of killed containers, isolation (network, other functions'
code, writes outside /tmp, user, capabilities, memory limit) and the removal
of what a killed daemon left behind.

The engine is reached the way the daemon does, through its Unix socket
(python's http.client, no docker CLI). Skipped, with the reason, only when no
engine answers and none can be started (scripts/start-dockerd.sh).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import conftest
from conftest import (
    REPO,
    SIEVE_ANSWER,
    Daemon,
    fn_dir,
    http_request,
    wait_until,
    zip_folder_b64,
)

DOCKER_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
RECOVERY_DEADLINE = 20.0

# Test-only functions of this module (tests/functions/docker*).
conftest.FUNCTIONS.setdefault("dockerprobe", ("tests/functions/dockerprobe", "python3"))
conftest.FUNCTIONS.setdefault("dockermem", ("tests/functions/dockermem", "python3"))


# --------------------------------------------------------------------------
# the engine, over its Unix socket


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def engine(method: str, path: str, body=None, timeout: float = 30.0):
    """One Engine API call; returns (status, parsed JSON or raw bytes)."""
    conn = _UnixConnection(DOCKER_SOCKET, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, "/v1.41" + path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, (json.loads(raw) if raw else None)
        except ValueError:
            return r.status, raw
    finally:
        conn.close()


def engine_answers() -> bool:
    try:
        return engine("GET", "/_ping", timeout=2)[0] == 200
    except OSError:
        return False


def label_filter(label: str) -> str:
    from urllib.parse import quote

    return quote(json.dumps({"label": [label]}))


def node_id(d: Daemon) -> str:
    return Path(d.state_dir, "node-id").read_text().strip()


def containers(node: str, function: str | None = None, all_: bool = True) -> list[dict]:
    label = f"tinyfaas.node={node}"
    status, listed = engine("GET", f"/containers/json?all={int(all_)}&filters={label_filter(label)}")
    assert status == 200, listed
    if function is not None:
        listed = [c for c in listed if c["Labels"].get("tinyfaas.function") == function]
    return listed


def networks(node: str) -> list[dict]:
    status, listed = engine("GET", f"/networks?filters={label_filter(f'tinyfaas.node={node}')}")
    assert status == 200, listed
    return listed


def inspect(container_id: str) -> dict:
    status, body = engine("GET", f"/containers/{container_id}/json")
    assert status == 200, body
    return body


@pytest.fixture(scope="module")
def docker_engine():
    if not engine_answers():
        script = REPO / "scripts" / "start-dockerd.sh"
        if script.exists():
            subprocess.run([str(script)], capture_output=True, timeout=60)
    if not engine_answers():
        pytest.skip(f"no Docker engine answers on {DOCKER_SOCKET} and none could be started "
                    "(apt-get install docker.io; scripts/start-dockerd.sh)")


# Node ids of every daemon this module started: a daemon that crashes leaves
# its containers behind, and conftest removes its state dir (and node id).
_nodes: set[str] = set()


def remember(d: Daemon) -> Daemon:
    try:
        _nodes.add(node_id(d))
    except OSError:
        pass
    return d


@pytest.fixture(scope="module", autouse=True)
def _remove_what_crashed_daemons_left():
    yield
    for node in _nodes:
        try:
            for c in containers(node):
                engine("DELETE", f"/containers/{c['Id']}?force=1&v=1")
            for n in networks(node):
                engine("DELETE", f"/networks/{n['Id']}")
        except (OSError, AssertionError):
            pass


@pytest.fixture(autouse=True)
def _remember_the_module_daemon(request):
    yield
    d = request.node.funcargs.get("daemon")
    if isinstance(d, Daemon):
        remember(d)


@pytest.fixture(scope="module")
def daemon(docker_engine):
    """A docker-backend daemon shared by this module's tests (named `daemon`
    so that conftest replaces it if it dies)."""
    d = remember(Daemon(extra_args=("--backend", "docker")))
    yield d
    node = node_id(d)
    try:
        d.stop()
    finally:
        d.cleanup()
    left = containers(node) + networks(node)
    assert not left, f"the daemon's SIGTERM left containers or networks behind: {[x.get('Names') or x.get('Name') for x in left]}"


def docker_daemon(make_daemon, **kw) -> Daemon:
    return remember(make_daemon(extra_args=("--backend", "docker") + tuple(kw.pop("extra_args", ())), **kw))


def upload(d: Daemon, key: str, name: str, **fields) -> None:
    payload = {"name": name, "env": conftest.FUNCTIONS[key][1], "threads": fields.pop("threads", 1),
               "zip": zip_folder_b64(fn_dir(key))}
    payload.update(fields)
    r = d.upload_raw(payload)
    assert r.status == 200, f"upload of {key} as {name}: {r.status} {r.text!r}"
    d.deployed[name] = (key, payload["threads"], ())


def answers(d: Daemon, name: str, body: bytes, expected: bytes | None = None) -> bool:
    try:
        r = d.call(name, body, timeout=5)
    except OSError:
        return False
    return r.status == 200 and r.body == (body if expected is None else expected)


# --------------------------------------------------------------------------
# the samples, env vars, dependencies


ECHOS = [("echo", "echo"), ("echo-js", "echojs"), ("echo-binary", "echobinary")]


@pytest.mark.parametrize("key,name", ECHOS, ids=[k for k, _ in ECHOS])
def test_echo_samples_over_http_and_coap(daemon, key, name):
    daemon.ensure(key, name)
    text = 'line one\nline "two"\ttabbed \u00e9 \u2603 end'.encode()
    for method in ("POST", "GET"):
        r = daemon.call(name, text, method=method)
        assert (r.status, r.body) == (200, text), (method, r.status, r.text)
    c = daemon.coap(name, b"Hello CoAP", method="post")
    assert (c.code, c.payload) == ("2.05", b"Hello CoAP"), c.log[-800:]


def test_sieve_over_http_and_coap(daemon):
    daemon.ensure("sieve")
    r = daemon.call("sieve", method="GET")
    assert (r.status, r.body) == (200, SIEVE_ANSWER), r.text
    c = daemon.coap("sieve")
    assert (c.code, c.payload) == ("2.05", SIEVE_ANSWER), c.log[-800:]


def test_show_headers_samples(daemon):
    daemon.ensure("show-headers", "showheaders")
    daemon.ensure("show-headers-js", "showheadersjs")
    sent = {"Lab": "x", "User-Agent": "tinyfaas-e2e/1"}
    r = daemon.call("showheaders", method="GET", headers=sent)
    assert r.status == 200, r.text
    got = json.loads(r.body)
    assert (got.get("Lab"), got.get("User-Agent")) == ("x", "tinyfaas-e2e/1"), got
    r = daemon.call("showheadersjs", method="GET", headers=sent)
    assert r.status == 200, r.text
    got = json.loads(r.body)
    assert (got.get("lab"), got.get("user-agent")) == ("x", "tinyfaas-e2e/1"), got
    # CoAP carries no client headers (what the handler's own transport adds,
    # such as Host, is the same on every backend).
    for name in ("showheaders", "showheadersjs"):
        c = daemon.coap(name)
        assert c.code == "2.05", c.log[-800:]
        got = {k.lower() for k in json.loads(c.payload)}
        assert not got & {"lab", "user-agent"}, got


ENVS = ["GREETING=hello world", "WITH_EQUALS=a=b=c", "EMPTY="]


@pytest.mark.parametrize("key,runtime", [("env", "python3"), ("envjs", "nodejs"), ("envbinary", "binary")])
def test_env_vars_reach_the_container(daemon, key, runtime):
    daemon.ensure(key, envs=ENVS)
    newline = b"\n" if runtime == "binary" else b""  # printenv ends its output with one
    for var, value in {b"GREETING": b"hello world", b"WITH_EQUALS": b"a=b=c", b"TINYFAAS_FUNCTION": key.encode(),
                       b"HOME": b"/tmp"}.items():
        r = daemon.call(key, var)
        assert (r.status, r.body) == (200, value + newline), (var, r.status, r.text)
    c = daemon.coap(key, b"GREETING", method="post")
    assert (c.code, c.payload) == ("2.05", b"hello world" + newline), c.log[-800:]


def test_python_requirements_work_in_the_container(daemon):
    daemon.ensure("deps")
    r = daemon.call("deps")
    assert (r.status, r.body) == (200, b"1.16.0"), r.text
    c = daemon.coap("deps")
    assert (c.code, c.payload) == ("2.05", b"1.16.0"), c.log[-800:]


def test_nodejs_dependencies_work_in_the_container(daemon):
    daemon.ensure("depsjs")
    r = daemon.call("depsjs")
    assert (r.status, r.body) == (200, b"true"), r.text
    c = daemon.coap("depsjs")
    assert (c.code, c.payload) == ("2.05", b"true"), c.log[-800:]


# --------------------------------------------------------------------------
# what the containers are


def test_containers_are_hardened_and_labelled(daemon):
    daemon.ensure("echo", "hardened", threads=2)
    node = node_id(daemon)
    listed = containers(node, "hardened", all_=False)
    assert len(listed) == 2, listed
    for summary in listed:
        c = inspect(summary["Id"])
        host, config = c["HostConfig"], c["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["PidsLimit"] == 256
        assert host["Memory"] == 256 << 20 and host["MemorySwap"] == host["Memory"], "default 256 MiB, no swap"
        assert host["NanoCpus"] == 1_000_000_000
        assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=67108864,mode=1777"}
        assert config["User"] == "10001:10001"
        labels = config["Labels"]
        assert labels["tinyfaas.node"] == node and labels["tinyfaas.function"] == "hardened"
        assert re.fullmatch(r"hardened\.\d+", labels["tinyfaas.instance"]), labels
        assert re.fullmatch(r"tinyfaas-runtime-python3:[0-9a-f]{12}", config["Image"]), config["Image"]
        mounts = {m["Destination"]: m for m in c["Mounts"]}
        code = config["WorkingDir"]
        assert code.startswith(daemon.state_dir) and mounts[code]["RW"] is False, mounts
        socket_dir = os.path.dirname(config["Cmd"][-1])
        assert socket_dir.startswith(os.path.join(daemon.state_dir, "run")), config["Cmd"]
        assert mounts[socket_dir]["RW"] is True, mounts
        assert set(mounts) == {code, socket_dir}, "nothing else of the host is mounted"
    status, images = engine("GET", f"/images/json?filters={label_filter('tinyfaas.runtime')}")
    assert status == 200
    tags = {t for i in images for t in i.get("RepoTags") or []}
    for runtime in ("nodejs", "python3", "binary"):
        assert any(re.fullmatch(rf"tinyfaas-runtime-{runtime}:[0-9a-f]{{12}}", t) for t in tags), tags


def test_logs_come_from_the_container(daemon):
    daemon.ensure("dockerprobe", "logprobe")
    r = daemon.call("logprobe", json.dumps({"port": daemon.mport}).encode())
    assert r.status == 200, r.text
    wait_until(lambda: "probe: checking the sandbox" in daemon.mgmt("GET", "/logs?name=logprobe").text, 10,
               what="the function's output in /logs")


# --------------------------------------------------------------------------
# isolation


def test_function_is_isolated(daemon):
    daemon.ensure("echo", "victim")
    victim = inspect(containers(node_id(daemon), "victim", all_=False)[0]["Id"])["Config"]["WorkingDir"]
    assert os.path.exists(os.path.join(victim, "fn.py")), "the host path of the other function's code"
    daemon.ensure("dockerprobe", "probe")
    r = daemon.call("probe", json.dumps({"port": daemon.mport, "other": victim}).encode())
    assert r.status == 200, r.text
    got = json.loads(r.body)
    assert got == {
        "uid": 10001,
        "euid": 10001,
        "cap_eff": "0000000000000000",
        "no_new_privs": "1",
        "interfaces": ["lo"],
        "management_api": "ConnectionRefusedError",
        "outside": "OSError",
        "other_code_exists": False,
        "other_code_read": False,
        "writable": [],
        "tmp_writable": True,
    }, f"sandbox leaks: {got}"


def test_memory_limit_kills_only_the_greedy_instance(daemon):
    daemon.ensure("echo", "bystander")
    upload(daemon, "dockermem", "greedy", memory_mb=64)
    node = node_id(daemon)
    first = containers(node, "greedy", all_=False)
    assert len(first) == 1 and inspect(first[0]["Id"])["HostConfig"]["Memory"] == 64 << 20
    assert answers(daemon, "greedy", b"x", b"ok")

    stop = threading.Event()
    bystander: list = []

    def keep_calling():
        for i in range(2000):
            if stop.is_set():
                return
            body = f"bystander{i}".encode()
            bystander.append(answers(daemon, "bystander", body))
            time.sleep(0.01)

    t = threading.Thread(target=keep_calling, daemon=True)
    t.start()
    try:
        r = daemon.call("greedy", b"alloc", timeout=30)
        assert r.status >= 500, f"allocating past the limit answered {r.status} {r.text!r}"
        assert r.text.strip(), "the failed call has no reason"
        wait_until(lambda: answers(daemon, "greedy", b"x", b"ok"), RECOVERY_DEADLINE, interval=0.1,
                   what="the greedy function's instance to be replaced")
    finally:
        stop.set()
        t.join(timeout=30)
    assert bystander and all(bystander), f"{bystander.count(False)} of {len(bystander)} calls to another function failed"
    now = containers(node, "greedy", all_=False)
    assert len(now) == 1 and now[0]["Id"] != first[0]["Id"], "the killed instance was replaced by a new container"
    logs = daemon.mgmt("GET", "/logs?name=greedy").text
    assert "out of memory" in logs, logs[-1000:]


def test_egress_gets_a_network_of_its_own(daemon):
    # Only the network's existence is checked: no traffic leaves the host.
    upload(daemon, "echo", "talker", egress=True)
    node = node_id(daemon)
    name = f"tinyfaas-{node}-talker"
    nets = {n["Name"]: n for n in networks(node)}
    assert name in nets, nets.keys()
    assert nets[name]["Labels"].get("tinyfaas.function") == "talker"
    c = inspect(containers(node, "talker", all_=False)[0]["Id"])
    assert c["HostConfig"]["NetworkMode"] == name
    assert answers(daemon, "talker", b"hi")
    assert daemon.mgmt("POST", "/delete", {"name": "talker"}).status == 200
    assert name not in {n["Name"] for n in networks(node)}, "the network outlived its function"
    assert not containers(node, "talker")


# --------------------------------------------------------------------------
# lifecycle


def test_killed_container_is_restarted(daemon):
    daemon.ensure("echo", "killme")
    node = node_id(daemon)
    [old] = containers(node, "killme", all_=False)
    status, body = engine("POST", f"/containers/{old['Id']}/kill?signal=SIGKILL")
    assert status == 204, body
    wait_until(lambda: answers(daemon, "killme", b"after kill"), RECOVERY_DEADLINE, interval=0.1,
               what="the killed container to be replaced and answer")
    [new] = containers(node, "killme", all_=False)
    assert new["Id"] != old["Id"]
    assert engine("GET", f"/containers/{old['Id']}/json")[0] == 404, "the dead container was not removed"
    c = daemon.coap("killme", b"coap after restart", method="post")
    assert (c.code, c.payload) == ("2.05", b"coap after restart")


def test_instance_that_exits_is_restarted(daemon):
    daemon.ensure("crash", "crashy")
    assert answers(daemon, "crashy", b"hello", b"alive")
    r = daemon.call("crashy", b"crash", timeout=10)
    assert r.status >= 500, (r.status, r.text)
    wait_until(lambda: answers(daemon, "crashy", b"again", b"alive"), RECOVERY_DEADLINE, interval=0.1,
               what="the crashed instance to be restarted")
    assert "exited with status 3" in daemon.mgmt("GET", "/logs?name=crashy").text


def test_redeploy_under_load_fails_no_call(daemon):
    daemon.deploy("echo", "rolling", threads=2)
    stop = threading.Event()
    failures: list = []
    count = [0, 0]

    def client(idx: int):
        for i in range(3000):
            if stop.is_set():
                return
            body = f"c{idx}-{i}".encode()
            try:
                r = http_request(daemon.hport, "POST", "/rolling", body=body, timeout=10)
                ok, detail = r.status == 200 and r.body == body, (r.status, r.body[:100])
            except Exception as e:  # noqa: BLE001 - any error is a failed call
                ok, detail = False, repr(e)
            count[idx] += 1
            if not ok:
                failures.append(detail)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            daemon.deploy("echo", "rolling", threads=2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, f"{len(failures)} of {sum(count)} calls failed during redeploys: {failures[:5]}"
    assert sum(count) >= 50, f"only {sum(count)} calls: too little load to mean anything"
    wait_until(lambda: len(containers(node_id(daemon), "rolling")) == 2, 30,
               what="the replaced containers to be removed")


def test_leftovers_of_a_killed_daemon_are_removed(make_daemon, docker_engine):
    first = docker_daemon(make_daemon)
    first.deploy("echo", "left", threads=2)
    upload(first, "echo", "leftnet", egress=True)
    node = node_id(first)
    assert len(containers(node, all_=False)) == 3 and len(networks(node)) == 1
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(timeout=10)
    first.stopped = True  # killed on purpose; make_daemon must not expect a clean exit
    first._close_files()
    # The engine keeps running what the dead daemon started.
    assert len(containers(node, all_=False)) == 3

    second = docker_daemon(make_daemon, state_dir=first.state_dir)
    assert node_id(second) == node, "the node id is kept in the state dir"
    left = containers(node) + networks(node)
    assert not left, f"left behind: {[x.get('Names') or x.get('Name') for x in left]}"
    assert "left behind" in second.log_text()
    second.deploy("echo", "fresh")
    assert answers(second, "fresh", b"works")


def test_backend_auto_picks_docker(make_daemon, docker_engine):
    d = remember(make_daemon(extra_args=("--backend", "auto")))
    text = d.log_text()
    assert "using the docker backend" in text and "backend: docker" in text, text[-2000:]
