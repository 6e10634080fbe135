"""Upstream's management scripts (scripts/*.sh) work unchanged against the
daemon; TINYFAAS_MANAGEMENT_URL points them at it."""

# e2e: both backends

import os
import subprocess

from conftest import REPO, SIEVE_ANSWER, fn_dir, wait_until

SCRIPTS = REPO / "scripts"


def run_script(d, name, *args, cwd=None, timeout=300):
    path = SCRIPTS / name
    assert path.is_file(), f"{path} is missing"
    assert os.access(path, os.X_OK), f"{path} is not executable"
    env = os.environ.copy()
    env["TINYFAAS_MANAGEMENT_URL"] = f"http://127.0.0.1:{d.mport}"
    return subprocess.run(["./" + name, *map(str, args)], cwd=cwd or SCRIPTS, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_upload_list_call_delete(make_daemon):
    d = make_daemon()
    r = run_script(d, "upload.sh", fn_dir("echo"), "echo", "python3", 1)
    assert r.returncode == 0, r.stderr
    assert {l for l in r.stdout.splitlines() if l} == d.expected_upload_lines("echo"), r.stdout
    r = run_script(d, "upload.sh", fn_dir("sieve"), "sieve", "nodejs", 2)
    assert r.returncode == 0, r.stderr
    assert {l for l in r.stdout.splitlines() if l} == d.expected_upload_lines("sieve"), r.stdout

    assert d.call("echo", b"from script").body == b"from script"
    assert d.call("sieve").body == SIEVE_ANSWER

    r = run_script(d, "list.sh")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == ["echo", "sieve"], r.stdout

    r = run_script(d, "delete.sh", "echo")
    assert r.returncode == 0, r.stderr
    assert d.list_names() == ["sieve"]
    r = run_script(d, "list.sh")
    assert r.stdout.split() == ["sieve"], r.stdout


def test_upload_with_relative_folder_and_env_vars(make_daemon):
    d = make_daemon()
    rel = os.path.relpath(fn_dir("env"), SCRIPTS)
    r = run_script(d, "upload.sh", rel, "env", "python3", 1, "GREETING=from script")
    assert r.returncode == 0, r.stderr
    assert d.call("env", b"GREETING").body == b"from script"


def test_upload_binary_function(make_daemon):
    d = make_daemon()
    r = run_script(d, "upload.sh", fn_dir("echo-binary"), "echobinary", "binary", 1)
    assert r.returncode == 0, r.stderr
    assert d.call("echobinary", b"bin").body == b"bin"


def test_logs_script(make_daemon):
    d = make_daemon()
    assert run_script(d, "upload.sh", fn_dir("fail"), "fail", "python3", 1).returncode == 0
    assert d.call("fail", b"x").status == 500

    def script_logs_have_boom(script, *args):
        r = run_script(d, script, *args)
        assert r.returncode == 0, r.stderr
        return "boom" in r.stdout

    wait_until(lambda: script_logs_have_boom("logs.sh"), 10, what="logs.sh to show fail's traceback")
    wait_until(lambda: script_logs_have_boom("logs.sh", "fail"), 10, what="logs.sh fail to show the traceback")
    wait_until(lambda: script_logs_have_boom("get_logs.sh"), 10, what="get_logs.sh to show the traceback")


def test_wipe_functions_script(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    d.deploy("sieve")
    r = run_script(d, "wipe-functions.sh")
    assert r.returncode == 0, r.stderr
    assert d.list_names() == []
    assert d.call("echo", b"x").status == 404


def test_failed_upload_script_exits_non_zero(make_daemon):
    d = make_daemon()
    r = run_script(d, "upload.sh", fn_dir("echo"), "bad_name", "python3", 1)
    assert r.returncode != 0
    assert r.stderr.strip(), "no error message"
    assert d.list_names() == []


def test_scripts_default_to_localhost_8080_when_unset():
    # Without TINYFAAS_MANAGEMENT_URL the scripts talk to localhost:8080, as
    # upstream's do; checked from the text, nothing listens there in tests.
    for name in ("upload.sh", "list.sh", "delete.sh", "logs.sh", "wipe-functions.sh"):
        text = (SCRIPTS / name).read_text()
        assert "localhost:8080" in text, name
