"""Dependency installs run in the sandbox (issue 12, findings 2 and 4).

An upload's package manifest is attacker-controlled: its lifecycle scripts
do not run by default, and when the operator allows them (--install-scripts)
they run as the sandbox uid inside the install sandbox, never on the host.
requirements.txt cannot point pip at host files. An install that leaves a
`setsid` child behind neither blocks other deploys and deletes nor leaves
the child running. An install cannot reach the daemon's management port
on 127.0.0.1 (or the node's own address, or link-local addresses)."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import pids_matching, wait_until, zip_entries_b64

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")

READ_FILES_JS = b"""
const fs = require("fs");
module.exports = (req, res) => {
  const out = {};
  for (const f of ["ran-as.txt", "reach.txt", "caps.txt"]) {
    try { out[f] = fs.readFileSync(f, "utf8").trim(); } catch (e) { out[f] = null; }
  }
  res.send(JSON.stringify(out));
};
"""

READ_FILES_PY = b"""
import json


def fn(input, headers):
    out = {}
    for f in ("setup-ran-as.txt",):
        try:
            out[f] = open(f).read().strip()
        except OSError:
            out[f] = None
    return json.dumps(out)
"""


@pytest.fixture
def marker_dir():
    d = tempfile.mkdtemp(prefix="tfinst-", dir="/tmp")
    os.chmod(d, 0o777)  # any uid could write here: only visibility keeps markers out
    yield d
    shutil.rmtree(d, ignore_errors=True)


def npm_upload(name, preinstall, extra_files=(), registry_dependency=False):
    dependencies = {"localdep": "file:./localdep"}
    if registry_dependency:  # then the install has network
        dependencies["is-number"] = "7.0.0"
    package = {"name": name, "version": "1.0.0", "main": "index.js",
               "scripts": {"preinstall": preinstall}, "dependencies": dependencies}
    files = [("package.json", json.dumps(package).encode()), ("index.js", READ_FILES_JS),
             ("localdep/package.json", b'{"name": "localdep", "version": "1.0.0"}'),
             ("localdep/index.js", b"module.exports = 1;\n"), *extra_files]
    return {"name": name, "env": "nodejs", "threads": 1, "zip": zip_entries_b64(files)}


def pip_upload(name, marker):
    setup = f"""
import os
from setuptools import setup
open("/tmp/build/setup-ran-as.txt", "w").write(str(os.getuid()))
try:
    open("{marker}/setup-py-ran-as-" + str(os.getuid()), "w").close()
except OSError:
    pass  # the host's folder is not there: what the test wants
setup(name="localpkg", version="1.0", py_modules=[])
""".encode()
    files = [("fn.py", READ_FILES_PY), ("requirements.txt", b"./localpkg\n"), ("localpkg/setup.py", setup)]
    return {"name": name, "env": "python3", "threads": 1, "zip": zip_entries_b64(files)}


def test_npm_lifecycle_scripts_do_not_run_by_default(daemon, marker_dir):
    r = daemon.upload_raw(npm_upload("npmdefault", f"id -u > ran-as.txt; touch {marker_dir}/preinstall-ran || true"))
    assert r.status == 200, r.text
    assert os.listdir(marker_dir) == [], "the preinstall script ran on the host"
    got = json.loads(daemon.call("npmdefault", b"").body)
    assert got["ran-as.txt"] is None, f"the preinstall script ran although scripts are off: {got}"


def test_setup_py_does_not_run_on_the_host_by_default(daemon, marker_dir):
    r = daemon.upload_raw(pip_upload("pipdefault", marker_dir))
    # pip may refuse a source requirement outright (--only-binary :all:);
    # either way nothing of it ran on the host.
    assert os.listdir(marker_dir) == [], f"setup.py ran on the host: {os.listdir(marker_dir)} ({r.status} {r.text})"
    if r.status == 200:
        got = json.loads(daemon.call("pipdefault", b"").body)
        assert got["setup-ran-as.txt"] is None, got


def test_allowed_scripts_run_only_inside_the_sandbox(make_daemon, marker_dir):
    d = make_daemon(extra_args=["--install-scripts"])
    r = d.upload_raw(npm_upload("npmscripts", f"id -u > ran-as.txt; touch {marker_dir}/preinstall-ran || true"))
    assert r.status == 200, r.text
    got = json.loads(d.call("npmscripts", b"").body)
    assert got["ran-as.txt"] is not None, "with --install-scripts the preinstall script must run"
    assert got["ran-as.txt"] != "0", "the preinstall script ran as root"
    r = d.upload_raw(pip_upload("pipscripts", marker_dir))
    assert r.status == 200, r.text
    got = json.loads(d.call("pipscripts", b"").body)
    assert got["setup-ran-as.txt"] not in (None, "0"), f"setup.py did not run, or ran as root: {got}"
    assert os.listdir(marker_dir) == [], f"an install script wrote on the host: {os.listdir(marker_dir)}"


@pytest.mark.parametrize("line", ["-r {secret}", "--requirement={secret}", "-c {secret}", "-r ../../{rel}",
                                  "--index-url file:///etc", "pkg @ file://{secret}"])
def test_requirements_cannot_point_at_host_files(daemon, workdir, line):
    secret = os.path.join(workdir, "secret.txt")
    with open(secret, "w") as f:
        f.write("tfsecret-line-7d1e==1.0\n")
    rel = os.path.relpath(secret, "/")
    reqs = line.format(secret=secret, rel=rel).encode() + b"\n"
    r = daemon.upload_raw({"name": "leak", "env": "python3", "threads": 1,
                           "zip": zip_entries_b64([("fn.py", READ_FILES_PY), ("requirements.txt", reqs)])})
    assert r.status == 400, r.text
    assert "tfsecret" not in r.text, f"host file content in the reply: {r.text}"
    assert "requirements.txt" in r.text, f"the reason should name the file: {r.text}"
    logs = daemon.mgmt("GET", "/logs")
    assert "tfsecret" not in logs.text, "host file content in the logs"


def test_failing_install_answers_with_pips_own_line(daemon):
    r = daemon.upload_raw({"name": "nosuch", "env": "python3", "threads": 1,
                           "zip": zip_entries_b64([("fn.py", READ_FILES_PY),
                                                   ("requirements.txt", b"tinyfaas-no-such-package-x9==1.0\n")])})
    assert r.status == 400, r.text
    assert "tinyfaas-no-such-package-x9" in r.text and ("No matching distribution" in r.text
                                                         or "Could not find" in r.text), r.text


def test_setsid_leftover_blocks_nothing_and_is_gone(make_daemon):
    d = make_daemon(extra_args=["--install-scripts"])
    d.deploy("echo", "other")
    # The install leaves a detached child holding its output open, then
    # takes 4 s; the child would outlive it for 987 s.
    upload = npm_upload("leftover", "setsid sh -c 'exec sleep 987' </dev/null & sleep 4")
    result = {}

    def run():
        result["r"] = d.upload_raw(upload, timeout=120)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_until(lambda: pids_matching("sleep 987"), 30, what="the install's detached child to start")
    started = time.monotonic()
    r = d.mgmt("POST", "/delete", {"name": "other"}, timeout=30)
    assert r.status == 200, r.text
    assert time.monotonic() - started < 3, "a delete waited for another function's install"
    t.join(timeout=60)
    assert not t.is_alive(), "the upload never finished: its install's leftover child held it"
    assert result["r"].status == 200, result["r"].text
    wait_until(lambda: not pids_matching("sleep 987"), 10, what="the install's leftover child to be gone")


def host_address() -> str:
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    v4 = [a for a in out if ":" not in a and not a.startswith("127.")]
    return v4[0] if v4 else ""


def test_install_with_network_cannot_reach_the_node_and_holds_no_capability(make_daemon):
    d = make_daemon(extra_args=["--install-scripts"])
    targets = ["127.0.0.1", "10.0.2.2", "169.254.169.254"]
    if host_address():
        targets.append(host_address())
    probe = (
        "const net=require('net'),fs=require('fs');const out={};let left=%d;"
        "fs.writeFileSync('caps.txt',/CapEff:\\s*(\\w+)/.exec(fs.readFileSync('/proc/self/status','utf8'))[1]);"
        "for(const h of %s){const s=net.connect({host:h,port:%d,timeout:3000});"
        "const done=r=>{if(out[h])return;out[h]=r;s.destroy();if(--left===0)fs.writeFileSync('reach.txt',JSON.stringify(out));};"
        "s.on('connect',()=>done('connected'));s.on('error',e=>done(e.code));s.on('timeout',()=>done('timeout'));}"
    ) % (len(targets), json.dumps(targets), d.mport)
    upload = npm_upload("reach", "node probe.js", extra_files=[("probe.js", probe.encode())],
                        registry_dependency=True)
    r = d.upload_raw(upload, timeout=120)
    assert r.status == 200, r.text
    got = json.loads(d.call("reach", b"").body)
    assert got["reach.txt"], f"the probe did not run: {got}"
    reach = json.loads(got["reach.txt"])
    assert "connected" not in reach.values(), f"the install reached the management port: {reach}"
    # The capability the sandbox starts with to close its routes is gone
    # before anything of the upload runs.
    assert int(got["caps.txt"], 16) == 0, got["caps.txt"]
