"""A timed-out call stops its work (issue 12, finding 9).

An attacker who can call a function keeps calling it with input that makes
it run past its timeout. Before, every such call answered 504 while the
function ran on: six 1 s timeouts of a binary `sleep 30` left six `sleep`
processes, and `concurrency` bounded nothing real. Now the binary runtime
kills the call's process group at its deadline, and a nodejs or python
instance still busy with a timed-out call after `--timeout-grace` is
replaced, while the function's other instance keeps serving."""

# e2e: both backends

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
import zipfile

from conftest import Daemon, wait_until, zip_entries_b64

GRACE = 5  # the default --timeout-grace, seconds
# A duration no other test uses, so that pgrep finds only this test's sleeps.
MARKER = "30.25"


def executable(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o755 << 16
    return info


def deploy(d: Daemon, name: str, env: str, files: dict, **fields) -> None:
    entries = [(executable(n) if n.endswith(".sh") else n, body) for n, body in files.items()]
    payload = {"name": name, "env": env, "threads": fields.pop("threads", 1), "zip": zip_entries_b64(entries),
               **fields}
    r = d.upload_raw(payload)
    assert r.status == 200, f"upload of {name}: {r.status} {r.text!r}"


def sleeps_left() -> list[int]:
    r = subprocess.run(["pgrep", "-f", f"^sleep {MARKER}$"], capture_output=True, text=True, timeout=10)
    return [int(p) for p in r.stdout.split()]


def logs(d: Daemon, name: str) -> str:
    return d.mgmt("GET", "/logs?name=" + name).text


def replaced(d: Daemon, name: str) -> bool:
    return f"replaced: a call was still running {GRACE} s after its timeout" in logs(d, name)


BINARY_FN = f"""#!/bin/sh
x=$(cat)
if [ "$x" = quick ]; then echo fast; exit 0; fi
sleep {MARKER} &
sleep {MARKER}
"""


def test_timed_out_binary_calls_leave_no_process(daemon):
    deploy(daemon, "sleeper", "binary", {"fn.sh": BINARY_FN}, timeout=1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: daemon.call("sleeper", b"slow", timeout=30), range(6)))
    assert [r.status for r in results] == [504] * 6, [(r.status, r.text) for r in results]
    # fn.sh and the child it put in the background, for every call.
    wait_until(lambda: not sleeps_left(), 10, what=f"no `sleep {MARKER}` left (found {sleeps_left()})")
    r = daemon.call("sleeper", b"quick")
    assert (r.status, r.body) == (200, b"fast\n")


def busy_then_serving(d: Daemon, name: str) -> None:
    """One call runs past its timeout and keeps its instance busy; calls keep
    being answered by the other instance until the busy one is replaced."""
    before = d.instances(name)
    assert len(before) == 2, before
    r = d.call(name, b"stuck", timeout=30)
    assert r.status == 504, (r.status, r.text)
    end = time.monotonic() + 30
    answered = 0
    while not replaced(d, name):
        assert time.monotonic() < end, f"no replacement within 30 s; logs:\n{logs(d, name)}"
        r = d.call(name, b"hi", timeout=10)
        assert (r.status, r.body) == (200, b"hi"), (r.status, r.text)
        answered += 1
        time.sleep(0.05)
    assert answered > 0
    # The busy instance is gone, a new one took its place, and every call
    # is answered.
    def replaced_set():
        now = d.instances(name)
        return now if len(now) == 2 and now != before else None

    after = wait_until(replaced_set, 20, what="the stuck instance to be replaced")
    assert len(before & after) == 1, (before, after)
    for _ in range(10):
        r = d.call(name, b"again", timeout=10)
        assert (r.status, r.body) == (200, b"again"), (r.status, r.text)
    status = json.loads(d.mgmt("GET", "/functions/" + name).body)
    assert not status["crash_loop"], status


NODE_SPIN = """module.exports = (req, res) => {
  if (req.body === "stuck") { for (;;) {} }
  res.send(req.body);
};
"""


def test_a_nodejs_instance_in_a_busy_loop_is_replaced(daemon):
    deploy(daemon, "spin", "nodejs", {"index.js": NODE_SPIN, "package.json": '{"name": "spin", "main": "index.js"}'},
           threads=2, timeout=1)
    busy_then_serving(daemon, "spin")


PY_SLEEP = """import time


def fn(input, headers):
    if input == "stuck":
        time.sleep(60)
    return input
"""


def test_a_python_instance_sleeping_past_the_timeout_is_replaced(daemon):
    deploy(daemon, "nap", "python3", {"fn.py": PY_SLEEP}, threads=2, timeout=1)
    busy_then_serving(daemon, "nap")


def test_concurrency_bounds_the_work_that_really_runs(daemon):
    # One call at a time, none queued: the timed-out call still holds the
    # instance's only turn while its code runs, so another call is refused
    # rather than run beside it; once the instance is replaced it serves.
    deploy(daemon, "single", "python3", {"fn.py": PY_SLEEP}, timeout=1, concurrency=1, queue=0)
    r = daemon.call("single", b"stuck", timeout=30)
    assert r.status == 504, (r.status, r.text)
    r = daemon.call("single", b"hi")
    assert r.status == 503 and r.text.startswith("function overloaded"), (r.status, r.text)
    wait_until(lambda: replaced(daemon, "single"), 20, what="the stuck instance to be replaced")
    wait_until(lambda: daemon.call("single", b"hi", timeout=10).body == b"hi", 20,
               what="the replacement to answer")
