"""What only the docker backend does, against the real Docker engine:
hardened and labelled containers, logs read through the API, isolation
(network, other functions' code, writes outside /tmp, user, capabilities,
memory limit), egress networks, replacement of killed containers and the
removal of what a killed daemon left behind. The samples, runtimes,
redeploys and restarts are covered by the modules marked "e2e: both
backends", which ctest also runs with TINYFAAS_E2E_BACKEND=docker.

The engine is reached the way the daemon does, through its Unix socket
(python's http.client, no docker CLI). Skipped, with the reason, only when no
engine answers and none can be started (scripts/start-dockerd.sh).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import threading
import time
import uuid

import pytest

import conftest
import docker_engine as docker_engine_api
from docker_engine import containers, engine, inspect, label_filter, networks
from conftest import (
    REPO,
    Daemon,
    fn_dir,
    wait_until,
    zip_folder_b64,
)

# Containers run as the sandbox user (README "Security model"), as
# process-backend handlers do; nobody where it was not created.
try:
    _sandbox = pwd.getpwnam("tinyfaas-sandbox")
except KeyError:
    _sandbox = pwd.getpwnam("nobody")
SANDBOX_UID, SANDBOX_GID = _sandbox.pw_uid, _sandbox.pw_gid

RECOVERY_DEADLINE = 20.0

# Test-only functions of this module (tests/functions/docker*).
conftest.FUNCTIONS.setdefault("dockerprobe", ("tests/functions/dockerprobe", "python3"))
conftest.FUNCTIONS.setdefault("dockermem", ("tests/functions/dockermem", "python3"))


def node_id(d: Daemon) -> str:
    return docker_engine_api.node_id(d.state_dir)


@pytest.fixture(scope="module")
def docker_engine():
    why_not = docker_engine_api.ensure_engine(REPO)
    if why_not:
        pytest.skip(why_not)


@pytest.fixture(scope="module")
def daemon(docker_engine):
    """A docker-backend daemon shared by this module's tests (named `daemon`
    so that conftest replaces it if it dies). Its stop() asserts that no
    container or network of it is left."""
    d = Daemon(extra_args=("--backend", "docker"))
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def docker_daemon(make_daemon, **kw) -> Daemon:
    return make_daemon(extra_args=("--backend", "docker") + tuple(kw.pop("extra_args", ())), **kw)


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
# containers


def test_containers_are_hardened_and_labelled(daemon):
    daemon.ensure("echo", "hardened", threads=2)
    node = node_id(daemon)
    listed = daemon.instances("hardened")
    assert len(listed) == 2, listed
    for container_id in listed:
        c = inspect(container_id)
        host, config = c["HostConfig"], c["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        # no_new_privs, and the sandbox's seccomp deny table as a profile.
        assert host["SecurityOpt"][0] == "no-new-privileges"
        assert len(host["SecurityOpt"]) == 2 and host["SecurityOpt"][1].startswith("seccomp=")
        profile = json.loads(host["SecurityOpt"][1][len("seccomp="):])
        denied = {name for rule in profile["syscalls"] for name in rule["names"]}
        assert {"mount", "ptrace", "bpf", "unshare", "keyctl"} <= denied
        assert host["PidsLimit"] == 256
        assert host["Memory"] == 256 << 20 and host["MemorySwap"] == host["Memory"], "default 256 MiB, no swap"
        assert host["NanoCpus"] == 1_000_000_000
        assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=67108864,mode=1777"}
        assert config["User"] == f"{SANDBOX_UID}:{SANDBOX_GID}", "the sandbox user, numeric"
        labels = config["Labels"]
        # An instance that took over a standby keeps the standby's labels.
        assert labels["tinyfaas.node"] == node and labels["tinyfaas.function"] in ("hardened", "")
        assert re.fullmatch(r"hardened\.\d+|standby-\d+", labels["tinyfaas.instance"]), labels
        # The image by this node's own tag (content digest, node id).
        assert re.fullmatch(rf"tinyfaas-runtime-python3:[0-9a-f]{{12}}-{node}", config["Image"]), config["Image"]
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


def test_functions_report_what_the_container_measurably_uses(daemon):
    upload(daemon, "echo-js", "dmeasured")
    deadline = time.monotonic() + 30
    used = None
    while used is None and time.monotonic() < deadline:
        r = daemon.mgmt("GET", "/functions/dmeasured")
        assert r.status == 200, r.text
        used = json.loads(r.body)["instances"]["memory_bytes"]
        if used is None:
            time.sleep(0.2)
    # The container's processes as the host sees them (PSS).
    assert used is not None and 4 << 20 < used < 256 << 20, used


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
    victim = next(root for root, _, files in os.walk(os.path.join(daemon.state_dir, "functions", "victim"))
                  if "fn.py" in files)
    assert os.path.exists(os.path.join(victim, "fn.py")), "the host path of the other function's code"
    daemon.ensure("dockerprobe", "probe")
    r = daemon.call("probe", json.dumps({"port": daemon.mport, "other": victim}).encode())
    assert r.status == 200, r.text
    got = json.loads(r.body)
    assert got == {
        "uid": SANDBOX_UID,
        "euid": SANDBOX_UID,
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
    first = daemon.instances("greedy")
    assert len(first) == 1 and inspect(next(iter(first)))["HostConfig"]["Memory"] == 64 << 20
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
    now = daemon.instances("greedy")
    assert len(now) == 1 and now != first, "the killed instance was replaced by a new container"
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
    [old] = daemon.instances("killme")
    status, body = engine("POST", f"/containers/{old}/kill?signal=SIGKILL")
    assert status == 204, body
    wait_until(lambda: answers(daemon, "killme", b"after kill"), RECOVERY_DEADLINE, interval=0.1,
               what="the killed container to be replaced and answer")
    [new] = daemon.instances("killme")
    assert new != old
    assert engine("GET", f"/containers/{old}/json")[0] == 404, "the dead container was not removed"
    c = daemon.coap("killme", b"coap after restart", method="post")
    assert (c.code, c.payload) == ("2.05", b"coap after restart")


def test_leftovers_of_a_killed_daemon_are_removed(make_daemon, docker_engine):
    first = docker_daemon(make_daemon)
    first.deploy("echo", "left", threads=2)
    upload(first, "echo", "leftnet", egress=True)
    node = node_id(first)
    # Three instances and a python standby waiting: the sweep takes it too.
    wait_until(lambda: 'tinyfaas_standby_handlers{runtime="python3"} 1' in first.mgmt("GET", "/metrics").text, 30,
               what="a standby container")
    assert len(containers(node, all_=False)) == 4 and len(networks(node)) == 1
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(timeout=10)
    first.stopped = True  # killed on purpose; make_daemon must not expect a clean exit
    first._close_files()
    # The engine keeps running what the dead daemon started.
    assert len(containers(node, all_=False)) == 4

    second = docker_daemon(make_daemon, state_dir=first.state_dir)
    assert node_id(second) == node, "the node id is kept in the state dir"
    left = containers(node) + networks(node)
    assert not left, f"left behind: {[x.get('Names') or x.get('Name') for x in left]}"
    assert "left behind" in second.log_text()
    second.deploy("echo", "fresh")
    assert answers(second, "fresh", b"works")


def test_backend_auto_picks_docker(make_daemon, docker_engine):
    d = make_daemon(extra_args=("--backend", "auto"))
    text = d.log_text()
    assert "using the docker backend" in text and "backend: docker" in text, text[-2000:]


def test_sigterm_during_a_runtime_image_build_ends_it(make_daemon, docker_engine, tmp_path):
    """Shutdown cuts a runtime image build short instead of waiting for it
    (or exiting with it still running): the engine holds the image import,
    the daemon closes that request, returns from main and leaves no image
    tar behind."""
    runtimes = tmp_path / "runtimes"
    shutil.copytree(REPO / "runtimes", runtimes, symlinks=True)
    # Bytes no earlier run had: an image that must be built now.
    with open(runtimes / "nodejs" / "handler.js", "a") as f:
        f.write(f"\n// built once, by the test {uuid.uuid4()}\n")
    proxy = docker_engine_api.StallingEngineProxy(str(tmp_path / "engine.sock"))
    try:
        d = docker_daemon(make_daemon, extra_args=("--runtimes-dir", str(runtimes),
                                                   "--docker-host", f"unix://{proxy.path}"))
        assert proxy.stalled.wait(120), f"the nodejs image was never imported\n{d.log_tail()}"
        d.stop()  # exit status 0 within its 10 s deadline, not after the build
        assert proxy.hung_up.wait(5), "the daemon left its image import open"
        log = d.log_text()
        assert log.rstrip().splitlines()[-1].endswith("stopped"), d.log_tail()
        assert "runtime image" not in log.split("received SIGTERM")[1].replace("building", ""), d.log_tail()
        images = os.path.join(d.state_dir, "images")
        assert not os.path.isdir(images) or not os.listdir(images), "an image tar outlived the daemon"
    finally:
        proxy.close()


def runtime_tags(runtime: str) -> set[str]:
    status, images = engine("GET", f"/images/json?filters={label_filter('tinyfaas.runtime=' + runtime)}")
    assert status == 200
    return {t for i in images for t in i.get("RepoTags") or []}


def test_two_nodes_on_one_engine_keep_each_others_images(make_daemon, docker_engine, tmp_path):
    """A node removes only the runtime images it tagged: a second node built
    from other runtimes (so another image) used to delete the first node's
    images when it started (issue 14, item 10)."""
    first = docker_daemon(make_daemon)
    first.deploy("echo", "one")
    first_node = node_id(first)
    first_image = inspect(next(iter(first.instances("one"))))["Config"]["Image"]
    assert first_image.endswith("-" + first_node), first_image

    # Other handler bytes: another python3 image, built by the second node.
    runtimes = tmp_path / "runtimes"
    shutil.copytree(REPO / "runtimes", runtimes, symlinks=True)
    with open(runtimes / "python3" / "handler.py", "a") as f:
        f.write("\n# the second node's copy\n")
    second_args = ("--runtimes-dir", str(runtimes))
    second = docker_daemon(make_daemon, extra_args=second_args)
    second.deploy("echo", "two")
    second_node = node_id(second)
    second_image = inspect(next(iter(second.instances("two"))))["Config"]["Image"]
    assert second_image.split(":")[1][:12] != first_image.split(":")[1][:12], "expected two different images"

    # The first node's containers go; the second restarts (and prunes).
    first.stop()
    second.stop()
    again = docker_daemon(make_daemon, extra_args=second_args, state_dir=second.state_dir)
    wait_until(lambda: answers(again, "two", b"second node"), 60, what="the second node's function to answer")
    assert first_image in runtime_tags("python3"), "the second node removed the first node's image"

    # The first node comes back to its image as it left it: no rebuild.
    back = docker_daemon(make_daemon, state_dir=first.state_dir)
    wait_until(lambda: answers(back, "one", b"first node"), 60, what="the first node's function to answer")
    assert f"runtime image {first_image} is up to date" in back.log_text()
    assert answers(again, "two", b"still the second node")
