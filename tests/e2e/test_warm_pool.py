"""Standbys (the warm pool): sandboxes or containers with a runtime up and
no function, kept per runtime of the deployed functions, that take over a
new instance. What a user sees: a function scaled to zero answers its
first call from a standby; each standby serves one function only and shows
it nothing of others; an idle node without functions runs none."""
# e2e: both backends

import json
import os
import re
import shutil
import subprocess

import pytest

import docker_engine
from conftest import cmdlines_matching, ere_escape, fn_dir, fn_env, wait_until, zip_entries_b64, zip_folder_b64

# A standby's handler serves on STATE/run/standby-N/handler.sock.
STANDBY = r"/run/standby-[0-9]+/handler\.sock"


def standbys(d) -> set[str]:
    """standby-N of every live standby process or running standby container
    (handed over or not)."""
    found = set()
    if d.backend == "docker":
        for c in docker_engine.containers(d.node(), all_=False):
            found.update(re.findall(r"-(standby-[0-9]+)$", c["Names"][0]))
        return found
    for pid, cmd in cmdlines_matching(ere_escape(d.state_dir) + STANDBY).items():
        if pid != d.proc.pid:
            found.update(re.findall(r"standby-[0-9]+", cmd))
    return found


def waiting_environments(d) -> list[str]:
    """The environment every live standby was started with, as the host
    sees it (a container's Env, a process's /proc/PID/environ)."""
    if d.backend == "docker":
        return ["\n".join(docker_engine.inspect(c["Id"])["Config"]["Env"])
                for c in docker_engine.containers(d.node(), all_=False) if "-standby-" in c["Names"][0]]
    found = []
    for pid in cmdlines_matching(ere_escape(d.state_dir) + STANDBY):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                found.append(f.read().replace(b"\0", b"\n").decode(errors="replace"))
        except OSError:
            pass
    return found


def up(d, runtime: str) -> int:
    """Standbys of `runtime` up and waiting, as GET /metrics says."""
    r = d.mgmt("GET", "/metrics")
    assert r.status == 200, r.text
    m = re.search(r'^tinyfaas_standby_handlers\{runtime="%s"\} (\d+)$' % runtime, r.text, re.M)
    return int(m.group(1)) if m else 0


def handovers(d) -> int:
    text = d.log_text() or ""
    return len(re.findall(r"took over a standby", text))


def deploy(d, key, name, **fields):
    payload = {"name": name, "env": fn_env(key), "threads": 1, "zip": zip_folder_b64(fn_dir(key))}
    payload.update(fields)
    r = d.upload_raw(payload)
    assert r.status == 200, r.text


def healthy(d, name) -> int:
    r = d.mgmt("GET", f"/functions/{name}")
    assert r.status == 200, r.text
    return json.loads(r.body)["instances"]["healthy"]


def curl(d, name, body: str) -> tuple[int, str]:
    out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--data-binary", body,
                          f"http://127.0.0.1:{d.hport}/{name}"], capture_output=True, text=True, timeout=30)
    text, _, code = out.stdout.rpartition("\n")
    return int(code or 0), text


@pytest.fixture
def pool_daemon(make_daemon):
    return make_daemon()


@pytest.mark.parametrize("key", ["echo", "echo-js", "echo-binary"])
def test_a_function_at_zero_answers_its_first_call_from_a_standby(pool_daemon, key):
    d = pool_daemon
    assert not standbys(d), "an idle node without functions runs no standby"
    deploy(d, key, "cold", min_instances=0, max_instances=1, idle_seconds=0.2)
    wait_until(lambda: healthy(d, "cold") == 0, 30, what="the function to scale to zero")
    runtime = fn_env(key)
    wait_until(lambda: up(d, runtime) == 1, 30, what="a standby of its runtime")
    before = handovers(d)
    taken = standbys(d)
    assert curl(d, "cold", "wake up") == (200, "wake up")
    assert handovers(d) == before + 1, d.log_tail()
    # Replaced by a new one; the one handed over is not given back when
    # its instance stops.
    wait_until(lambda: healthy(d, "cold") == 0, 30, what="the function to scale to zero again")
    wait_until(lambda: up(d, runtime) == 1 and not standbys(d) & taken, 30,
               what="the used standby to end and a fresh one to wait")
    assert curl(d, "cold", "again") == (200, "again")
    assert handovers(d) == before + 2


VICTIM = b"def fn(input, headers):\n    return 'victim'\n"

SNOOP = b'''
import json, os


def fn(input, headers):
    cfg = json.loads(input)
    out = {"cwd_files": sorted(os.listdir(".")),
           "beside_code": sorted(os.listdir("..")),
           "victim_code_visible": os.path.exists(cfg["victim_code"]),
           "victim_slot_visible": any(os.path.exists(p) for p in cfg["victim_slots"]),
           "env_leak": sorted(k for k in os.environ if k in ("VICTIM_SECRET", "TINYFAAS_STANDBY",
                                                               "TINYFAAS_CONTROL_FD", "TINYFAAS_CONTROL_SOCKET")),
           "processes": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    try:
        open("planted.py", "w").write("x")
        out["code_writable"] = True
    except OSError:
        out["code_writable"] = False
    return json.dumps(out)
'''


def test_a_standby_shows_its_function_nothing_of_another_tenant(pool_daemon):
    """The attacker's view from an instance that came from a standby: the
    victim, started from a standby too, keeps its code, its environment and
    its folder to itself."""
    d = pool_daemon
    if d.backend == "process" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    deploy(d, "echo", "first")  # its runtime's standby takes the victim
    wait_until(lambda: up(d, "python3") == 1, 30, what="a python standby")
    r = d.upload_raw({"name": "victim", "env": "python3", "threads": 1, "envs": ["VICTIM_SECRET=hunter2"],
                      "zip": zip_entries_b64([("fn.py", VICTIM)])})
    assert r.status == 200, r.text
    wait_until(lambda: up(d, "python3") == 1 and len(standbys(d)) == 2, 30, what="the next python standby")
    # The standby waiting now was started with nothing of the victim's.
    waiting = waiting_environments(d)
    assert waiting and not any("hunter2" in env for env in waiting), waiting
    r = d.upload_raw({"name": "snoop", "env": "python3", "threads": 1, "zip": zip_entries_b64([("fn.py", SNOOP)])})
    assert r.status == 200, r.text
    assert handovers(d) == 2, "victim and snoop were to start from standbys"
    victim_code = next(os.path.join(root, "fn.py") for root, _, files in os.walk(os.path.join(d.state_dir,
                                                                                                "functions", "victim"))
                       if "fn.py" in files)
    # Where the victim's standby shows it its code, as the host sees it
    # (the same path inside that sandbox).
    slots, snoop_slots = [], []
    for slot in os.listdir(os.path.join(d.state_dir, "standby")):
        code = os.path.join(d.state_dir, "standby", slot, "code", "fn.py")
        if os.path.exists(code) and open(code, "rb").read() == VICTIM:
            slots.append(code)
        if os.path.exists(code) and open(code, "rb").read() == SNOOP:
            snoop_slots.append(slot)
    assert len(slots) == 1 and len(snoop_slots) == 1, "each function in a standby of its own"
    r = d.call("snoop", json.dumps({"victim_code": victim_code, "victim_slots": slots}).encode())
    assert r.status == 200, r.text
    got = json.loads(r.body)
    assert got["cwd_files"] == ["fn.py"], got
    assert got["beside_code"] == ["code"], f"the standby's folder shows more than its own code: {got}"
    assert not got["victim_code_visible"] and not got["victim_slot_visible"], got
    assert got["env_leak"] == [], got
    assert not got["code_writable"], got
    assert len(got["processes"]) <= 3, f"processes of others visible: {got}"
    # A deleted function takes its standby (process or container) and its
    # folder with it: nothing of it is handed to the next function.
    assert snoop_slots[0] in standbys(d)
    assert d.mgmt("POST", "/delete", body={"name": "snoop"}).status == 200
    r = d.call("victim", b"")
    assert (r.status, r.body) == (200, b"victim")
    wait_until(lambda: snoop_slots[0] not in standbys(d)
               and not os.path.exists(os.path.join(d.state_dir, "standby", snoop_slots[0])), 10,
               what="snoop's standby and its folder to go")


def test_standbys_follow_the_runtimes_in_use(pool_daemon):
    d = pool_daemon
    deploy(d, "echo-js", "js")
    wait_until(lambda: up(d, "nodejs") == 1, 30, what="a nodejs standby")
    deploy(d, "echo", "py")
    wait_until(lambda: up(d, "python3") == 1 and up(d, "nodejs") == 1, 30, what="a python standby beside it")
    assert d.mgmt("POST", "/delete", body={"name": "js"}).status == 200
    # Both functions started before their runtime had a standby: what is
    # left is the python standby.
    wait_until(lambda: up(d, "nodejs") == 0 and len(standbys(d)) == 1, 30,
               what="the nodejs standby to end with the last nodejs function")


def test_warm_pool_zero_keeps_none(make_daemon):
    d = make_daemon(extra_args=["--warm-pool", "0"])
    deploy(d, "echo", "py", min_instances=0, max_instances=1, idle_seconds=0.2)
    wait_until(lambda: healthy(d, "py") == 0, 30, what="the function to scale to zero")
    assert curl(d, "py", "no standby") == (200, "no standby")
    assert not standbys(d) and handovers(d) == 0


TALKER = b"def fn(input, headers):\n    print('said: ' + (input or ''), flush=True)\n    return input\n"


def test_a_handed_over_instance_logs_and_ends_as_its_function(pool_daemon):
    """From its handover on, the standby's output and its death are its
    function's: /logs shows them under the function, and the manager
    replaces the instance when it is killed."""
    d = pool_daemon
    deploy(d, "echo", "first")
    wait_until(lambda: up(d, "python3") == 1, 30, what="a python standby")
    r = d.upload_raw({"name": "talker", "env": "python3", "threads": 1, "zip": zip_entries_b64([("fn.py", TALKER)])})
    assert r.status == 200, r.text
    assert handovers(d) == 1, d.log_tail()
    assert curl(d, "talker", "hello") == (200, "hello")
    wait_until(lambda: "said: hello" in d.mgmt("GET", "/logs?name=talker").text, 10, what="its line in /logs")
    [instance] = d.instances("talker")
    d.kill_instance(instance)
    wait_until(lambda: "restart" in d.mgmt("GET", "/logs?name=talker").text, 30,
               what="the restart in the function's logs")
    wait_until(lambda: curl(d, "talker", "again") == (200, "again"), 30, what="the replacement to answer")
    assert "said: hello" not in d.mgmt("GET", "/logs?name=first").text
