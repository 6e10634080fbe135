"""Handler isolation on the process backend with bubblewrap: a function
cannot reach the management API, read another function's code, change its
own code or see the host's /tmp. Skipped (with that reason) where bwrap is
not installed, because the daemon then runs plain child processes."""

import json
import os
import shutil
import tempfile

import pytest

from conftest import zip_entries_b64

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")

PROBE = b'''
import json, os, socket


def fn(input, headers):
    cfg = json.loads(input)
    out = {}
    try:
        socket.create_connection(("127.0.0.1", cfg["port"]), timeout=2).close()
        out["management_api"] = "reachable"
    except OSError:
        out["management_api"] = "unreachable"
    out["other_code_visible"] = os.path.exists(cfg["other"])
    try:
        with open("written-by-function.txt", "w") as f:
            f.write("x")
        out["own_code_writable"] = True
    except OSError:
        out["own_code_writable"] = False
    out["host_tmp_file_visible"] = os.path.exists(cfg["host_tmp_file"])
    return json.dumps(out, sort_keys=True)
'''


def find_code_dir(state_dir: str, marker_file: str) -> str:
    """The folder below the state dir that holds a deployed function's code."""
    for dirpath, dirs, files in os.walk(state_dir):
        if marker_file in files and "run" not in dirpath.split(os.sep):
            return dirpath
        if dirpath.count(os.sep) > state_dir.count(os.sep) + 6:
            dirs[:] = []
    raise AssertionError(f"no {marker_file} below {state_dir}")


def test_function_is_isolated(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    echo_code = find_code_dir(d.state_dir, "fn.py")
    host_tmp = tempfile.NamedTemporaryFile(prefix="tfe2e-host-", dir="/tmp", delete=False)
    host_tmp.close()
    try:
        r = d.upload_raw({"name": "probe", "env": "python3", "threads": 1,
                          "zip": zip_entries_b64([("fn.py", PROBE)])})
        assert r.status == 200, r.text
        cfg = {"port": d.mport, "other": echo_code, "host_tmp_file": host_tmp.name}
        r = d.call("probe", json.dumps(cfg).encode())
        assert r.status == 200, r.text
        got = json.loads(r.body)
        assert got == {
            "management_api": "unreachable",
            "other_code_visible": False,
            "own_code_writable": False,
            "host_tmp_file_visible": False,
        }, f"sandbox leaks: {got} (echo's code at {echo_code})"
    finally:
        os.remove(host_tmp.name)
