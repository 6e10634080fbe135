"""The `tinyfaas` client subcommands against a running daemon."""

# e2e: both backends

import os
import subprocess

from conftest import BIN, SIEVE_ANSWER, fn_dir, free_tcp_port, wait_until


def cli(*args, input=None, timeout=300, env=None):
    e = os.environ.copy()
    e.pop("TINYFAAS_MANAGEMENT_URL", None)
    e.update(env or {})
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, timeout=timeout, input=input, env=e)


def test_deploy_list_invoke_delete_wipe(make_daemon):
    d = make_daemon()
    url = f"http://127.0.0.1:{d.mport}"
    r = cli("deploy", fn_dir("env"), "--name", "env", "--env", "python3", "--threads", 2,
            "--var", "GREETING=hello cli", "--var", "OTHER=x=y", "--url", url)
    assert r.returncode == 0, r.stderr
    assert {l for l in r.stdout.decode().splitlines() if l} == d.expected_upload_lines("env"), r.stdout
    assert len(d.instances("env")) == 2
    r = cli("deploy", fn_dir("sieve"), "--name", "sieve", "--env", "nodejs", "--threads", 1, "--url", url)
    assert r.returncode == 0, r.stderr

    r = cli("list", "--url", url)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().split()) == ["env", "sieve"]

    for proto, port in (("http", d.hport), ("coap", d.cport)):
        r = cli("invoke", "env", "--data", "GREETING", "--protocol", proto, "--port", port, "--host", "127.0.0.1")
        assert r.returncode == 0, (proto, r.stderr)
        assert r.stdout == b"hello cli", (proto, r.stdout)
        r = cli("invoke", "env", "--data", "OTHER", "--protocol", proto, "--port", port, "--host", "127.0.0.1")
        assert r.stdout == b"x=y", (proto, r.stdout)
        r = cli("invoke", "sieve", "--protocol", proto, "--port", port, "--host", "127.0.0.1", input=b"")
        assert (r.returncode, r.stdout) == (0, SIEVE_ANSWER), (proto, r.stderr)

    r = cli("delete", "env", "--url", url)
    assert r.returncode == 0, r.stderr
    assert d.list_names() == ["sieve"]

    r = cli("wipe", "--url", url)
    assert r.returncode == 0, r.stderr
    assert d.list_names() == []
    r = cli("list", "--url", url)
    assert (r.returncode, r.stdout.strip()) == (0, b"")


def test_management_url_from_environment(make_daemon):
    d = make_daemon()
    env = {"TINYFAAS_MANAGEMENT_URL": f"http://127.0.0.1:{d.mport}"}
    r = cli("deploy", fn_dir("echo"), "--name", "echo", "--env", "python3", "--threads", 1, env=env)
    assert r.returncode == 0, r.stderr
    r = cli("list", env=env)
    assert r.stdout.decode().split() == ["echo"]


def test_invoke_large_payload_both_protocols(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    payload = bytes((i % 94) + 33 for i in range(20_000))
    for proto, port in (("http", d.hport), ("coap", d.cport)):
        r = cli("invoke", "echo", "--protocol", proto, "--port", port, "--host", "127.0.0.1", input=payload)
        assert r.returncode == 0, (proto, r.stderr)
        assert r.stdout == payload, proto


def test_invoke_errors(make_daemon):
    d = make_daemon()
    d.deploy("fail")
    for proto, port in (("http", d.hport), ("coap", d.cport)):
        r = cli("invoke", "nosuchfn", "--data", "x", "--protocol", proto, "--port", port, "--host", "127.0.0.1")
        assert r.returncode != 0, proto
        assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr
        r = cli("invoke", "fail", "--data", "x", "--protocol", proto, "--port", port, "--host", "127.0.0.1")
        assert r.returncode != 0, proto
        assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr


def test_logs_command(make_daemon):
    d = make_daemon()
    d.deploy("fail")
    assert d.call("fail", b"x").status == 500
    url = f"http://127.0.0.1:{d.mport}"

    def has_boom(*args):
        r = cli("logs", *args, "--url", url)
        assert r.returncode == 0, r.stderr
        return b"boom" in r.stdout

    wait_until(lambda: has_boom(), 10, what="`tinyfaas logs` to show the traceback")
    wait_until(lambda: has_boom("fail"), 10, what="`tinyfaas logs fail` to show the traceback")


def test_unreachable_daemon_is_one_line_error():
    url = f"http://127.0.0.1:{free_tcp_port()}"  # nothing listens there
    for args in (["list"], ["wipe"], ["delete", "x"], ["logs"],
                 ["deploy", str(fn_dir("echo")), "--name", "echo", "--env", "python3", "--threads", "1"]):
        r = cli(*args, "--url", url, timeout=60)
        assert r.returncode != 0, args
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].strip(), (args, r.stderr)
    port = free_tcp_port()
    r = cli("invoke", "echo", "--data", "x", "--protocol", "http", "--port", port, "--host", "127.0.0.1", timeout=60)
    assert r.returncode != 0
    assert len(r.stderr.decode().strip().splitlines()) == 1, r.stderr


def test_deploy_rejected_by_daemon_is_one_line_error(make_daemon):
    # 65 threads passes the CLI's own checks; the daemon answers 4xx.
    d = make_daemon()
    r = cli("deploy", fn_dir("sieve"), "--name", "sieve", "--env", "nodejs", "--threads", "65",
            "--url", f"http://127.0.0.1:{d.mport}")
    assert r.returncode != 0
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), r.stderr
    assert d.list_names() == []
