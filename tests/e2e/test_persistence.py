"""Deployed functions survive a restart, a kill -9, and a kill -9 in the
middle of an upload (issue 6, item 1). Each test runs daemons one after the
other on one state directory."""

# e2e: both backends
import os
import signal
import threading

from conftest import UPLOAD_TIMEOUT, fn_dir, fn_env, pids_matching, wait_until, zip_folder_b64

BACK_DEADLINE = 20.0


def wait_answer(d, name, body, expect, what=None):
    def answered():
        r = d.call(name, body, timeout=5)
        return r.status == 200 and r.body == expect
    wait_until(answered, BACK_DEADLINE, interval=0.1, what=what or f"{name} to answer after the restart")


def records(state_dir):
    root = os.path.join(state_dir, "functions")
    return sorted(n for n in os.listdir(root) if os.path.exists(os.path.join(root, n, "function.json")))


def test_restart_brings_functions_back_with_env_threads_http_and_coap(make_daemon):
    d = make_daemon()
    d.deploy("env", "envfn", threads=2, envs=["GREETING=hello there", "EMPTY="])
    d.deploy("echo-js", "echojs")
    d.stop()

    d2 = make_daemon(state_dir=d.state_dir)
    # Listed at once, before the instances are up.
    assert sorted(d2.list_names()) == ["echojs", "envfn"]
    wait_answer(d2, "envfn", b"GREETING", b"hello there")
    assert d2.call("envfn", b"EMPTY").body == b""
    wait_until(lambda: len(d2.instances("envfn")) == 2, 10, what="both instances of envfn")
    wait_answer(d2, "echojs", b"after restart", b"after restart")
    c = d2.coap("envfn", b"GREETING", method="post")
    assert (c.code, c.payload) == ("2.05", b"hello there")
    # Restored functions are ordinary ones: they can be replaced and deleted.
    d2.deploy("echo", "echojs")
    assert d2.call("echojs", b"py").body == b"py"
    assert d2.mgmt("POST", "/delete", {"name": "envfn"}).status == 200
    assert records(d2.state_dir) == ["echojs"]


def test_kill_9_then_restart_brings_functions_back(make_daemon):
    d = make_daemon()
    d.deploy("echo", "pyecho", threads=2)
    d.deploy("sieve")
    d.kill_hard()  # SIGKILL: no shutdown code runs

    d2 = make_daemon(state_dir=d.state_dir)
    assert sorted(d2.list_names()) == ["pyecho", "sieve"]
    wait_answer(d2, "pyecho", b"still here", b"still here")
    wait_answer(d2, "sieve", None, b"Found 1229 primes under 10000")
    wait_until(lambda: len(d2.instances("pyecho")) == 2, 10, what="both instances of pyecho")


def test_delete_and_wipe_are_stored_too(make_daemon):
    d = make_daemon()
    for name in ("one", "two", "three"):
        d.deploy("echo", name)
    assert d.mgmt("POST", "/delete", {"name": "two"}).status == 200
    d.stop()
    d2 = make_daemon(state_dir=d.state_dir)
    assert sorted(d2.list_names()) == ["one", "three"]
    assert d2.mgmt("POST", "/wipe").status == 200
    d2.kill_hard()
    d3 = make_daemon(state_dir=d.state_dir)
    assert d3.list_names() == []
    assert records(d3.state_dir) == []


def test_corrupt_record_is_quarantined_and_the_rest_comes_back(make_daemon):
    d = make_daemon()
    d.deploy("echo", "good")
    d.deploy("echo", "broken")
    d.stop()
    record = os.path.join(d.state_dir, "functions", "broken", "function.json")
    with open(record, "rb") as f:
        text = f.read()
    with open(record, "wb") as f:
        f.write(text[: len(text) // 2])  # as if cut short (by a disk, not by us)

    d2 = make_daemon(state_dir=d.state_dir)
    assert d2.list_names() == ["good"]
    wait_answer(d2, "good", b"ok", b"ok")
    log = d2.log_text()
    assert "function broken is quarantined" in log, log[-3000:]
    # Without tokens every client is the admin: its upload replaces it
    # (test_state_files has what tenants see).
    d2.deploy("echo", "broken")
    assert d2.call("broken", b"again").body == b"again"


# --------------------------------------------------------------------------
# kill -9 in the middle of an upload


SLOW_NPM = """#!/bin/sh
# Stands in for npm: leaves half an install behind, then takes its time
# (inside the install sandbox: seen from the host as "sleep 61").
mkdir -p node_modules/half-installed
exec sleep 61
"""


def slow_npm(workdir):
    script = os.path.join(workdir, "slow-npm")
    with open(script, "w") as f:
        f.write(SLOW_NPM)
    os.chmod(script, 0o755)
    # The install sandbox's uid runs it from here.
    os.chmod(workdir, 0o755)
    return script, "sleep 61"


def upload_in_background(d, key, name):
    """Starts an upload that the daemon will not live to answer."""
    payload = {"name": name, "env": fn_env(key), "threads": 1, "zip": zip_folder_b64(fn_dir(key))}

    def run():
        try:
            d.mgmt("POST", "/upload", payload, timeout=UPLOAD_TIMEOUT)
        except OSError:
            pass  # the daemon dies under it

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def kill_during_install(d, marker, key, name):
    """`marker`: the command line the slow npm runs as."""
    t = upload_in_background(d, key, name)
    npm_pids = wait_until(lambda: pids_matching(marker), 60, what="the upload to reach its dependency install")
    d.kill_hard()
    t.join(timeout=30)
    for pid in npm_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_during_uploads_leaves_the_old_version_or_nothing(make_daemon, workdir):
    npm, marker = slow_npm(workdir)
    d = make_daemon(extra_args=["--npm", npm])
    d.deploy("echo-js", "js")
    d.deploy("echo", "py")

    # A redeploy of js with a function that needs an install: killed there.
    kill_during_install(d, marker, "depsjs", "js")
    functions = os.path.join(d.state_dir, "functions")
    assert len([v for v in os.listdir(os.path.join(functions, "js")) if v.startswith("v")]) == 2, \
        "the killed upload did not get as far as unpacking"

    d2 = make_daemon(state_dir=d.state_dir, extra_args=["--npm", npm])
    assert sorted(d2.list_names()) == ["js", "py"]
    # The old echo-js, not the half-installed new version.
    wait_answer(d2, "js", b"old version", b"old version")
    wait_answer(d2, "py", b"untouched", b"untouched")
    versions = [v for v in os.listdir(os.path.join(functions, "js")) if v.startswith("v")]
    assert len(versions) == 1, f"the unfinished version was not removed: {versions}"

    # The first upload of a new name, killed the same way, leaves nothing.
    kill_during_install(d2, marker, "depsjs", "fresh")
    assert os.path.isdir(os.path.join(functions, "fresh"))
    d3 = make_daemon(state_dir=d.state_dir, extra_args=["--npm", npm])
    assert sorted(d3.list_names()) == ["js", "py"]
    assert not os.path.exists(os.path.join(functions, "fresh"))
    wait_answer(d3, "js", b"third start", b"third start")
    # And the name is free for a normal upload.
    d3.deploy("echo", "fresh")
    assert d3.call("fresh", b"new").body == b"new"


# --------------------------------------------------------------------------
# SIGTERM in the middle of an upload


def test_sigterm_during_an_install_ends_it_answers_503_and_stores_nothing(make_daemon, workdir):
    npm, marker = slow_npm(workdir)
    d = make_daemon(extra_args=["--npm", npm, "--shutdown-timeout", "1"])
    payload = {"name": "fresh", "env": fn_env("depsjs"), "threads": 1, "zip": zip_folder_b64(fn_dir("depsjs"))}
    answers = []
    t = threading.Thread(target=lambda: answers.append(d.mgmt("POST", "/upload", payload, timeout=UPLOAD_TIMEOUT)),
                         daemon=True)
    t.start()
    wait_until(lambda: pids_matching(marker), 60, what="the upload to reach its dependency install")
    # The upload is a request in flight: it gets the shutdown timeout, then
    # its answer; its 61 s install is killed rather than waited for, and
    # the daemon returns from main instead of leaving work behind.
    d.stop()
    t.join(timeout=30)
    assert answers and answers[0].status == 503, answers
    assert "shutting down" in answers[0].text, answers[0].text
    wait_until(lambda: not pids_matching(marker), 5, what="the install sandbox to be gone")
    assert d.log_text().rstrip().splitlines()[-1].endswith("stopped"), d.log_tail()

    d2 = make_daemon(state_dir=d.state_dir)
    assert d2.list_names() == []
    assert not os.path.exists(os.path.join(d.state_dir, "functions", "fresh"))
