"""The `tinyfaas` client subcommands against a running daemon."""

# e2e: both backends

import json
import os
import subprocess

from conftest import BIN, REPO, SIEVE_ANSWER, fn_dir, free_tcp_port, wait_until


def cli(*args, input=None, timeout=300, env=None):
    e = os.environ.copy()
    for k in ("TINYFAAS_MANAGEMENT_URL", "TINYFAAS_URL", "TINYFAAS_TOKEN", "TINYFAAS_CLI_CONFIG", "TINYFAAS_ENDPOINT"):
        e.pop(k, None)
    # No config file of the user running the tests.
    e["XDG_CONFIG_HOME"] = "/nonexistent"
    e.update(env or {})
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, timeout=timeout, input=input, env=e)


def test_deploy_list_invoke_delete_wipe(make_daemon):
    d = make_daemon()
    url = f"http://127.0.0.1:{d.mport}"
    r = cli("deploy", fn_dir("env"), "--name", "env", "--runtime", "python3", "--threads", 2,
            "--var", "GREETING=hello cli", "--var", "OTHER=x=y", "--url", url)
    assert r.returncode == 0, r.stderr
    assert {l for l in r.stdout.decode().splitlines() if l} == d.expected_upload_lines("env"), r.stdout
    assert len(d.instances("env")) == 2
    r = cli("deploy", fn_dir("sieve"), "--name", "sieve", "--runtime", "nodejs", "--threads", 1, "--url", url)
    assert r.returncode == 0, r.stderr

    r = cli("list", "-q", "--url", url)
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

    r = cli("wipe", "--yes", "--url", url)
    assert r.returncode == 0, r.stderr
    assert d.list_names() == []
    r = cli("list", "-q", "--url", url)
    assert (r.returncode, r.stdout.strip()) == (0, b"")


def test_management_url_from_environment(make_daemon):
    d = make_daemon()
    env = {"TINYFAAS_MANAGEMENT_URL": f"http://127.0.0.1:{d.mport}"}
    r = cli("deploy", fn_dir("echo"), "--name", "echo", "--runtime", "python3", "--threads", 1, env=env)
    assert r.returncode == 0, r.stderr
    r = cli("list", "-q", env=env)
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
                 ["deploy", str(fn_dir("echo")), "--name", "echo", "--runtime", "python3", "--threads", "1"]):
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
    r = cli("deploy", fn_dir("sieve"), "--name", "sieve", "--runtime", "nodejs", "--threads", "65",
            "--url", f"http://127.0.0.1:{d.mport}")
    assert r.returncode != 0
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), r.stderr
    assert d.list_names() == []


def test_list_table_and_json(make_daemon):
    d = make_daemon()
    url = f"http://127.0.0.1:{d.mport}"
    d.deploy("echo", threads=2)
    d.deploy("sieve")
    for _ in range(3):
        assert d.call("echo", b"hi").status == 200
    assert d.coap("echo", b"hi", method="post").code == "2.05"

    r = cli("list", "--url", url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "RUNTIME", "INSTANCES", "CALLS", "ERRORS", "P50"]
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert rows["echo"][:5] == ["echo", "python3", "2/2", "4", "0"], lines
    assert rows["echo"][6] in ("µs", "ms", "s"), lines
    assert rows["sieve"] == ["sieve", "nodejs", "1/1", "0", "0", "-"], lines

    r = cli("list", "--json", "--url", url)
    assert r.returncode == 0, r.stderr
    listed = {f["name"]: f for f in json.loads(r.stdout)}
    assert listed["echo"]["calls"] == 4 and listed["echo"]["protocols"]["coap"]["calls"] == 1


def test_deploy_progress_and_invoke_inputs(make_daemon, workdir):
    d = make_daemon()
    url = f"http://127.0.0.1:{d.mport}"
    r = cli("deploy", fn_dir("echo"), "--name", "echo", "--runtime", "python3", "--threads", 2, "--url", url,
            "--progress")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "packed " in err and "uploading echo to " + url in err, err
    assert "deployed echo: 2/2 instances healthy" in err, err
    assert {l for l in r.stdout.decode().splitlines() if l} == d.expected_upload_lines("echo")
    # Without a terminal and without --progress: endpoints only.
    r = cli("deploy", fn_dir("echo"), "--name", "echo", "--runtime", "python3", "--threads", 1, "--url", url)
    assert (r.returncode, r.stderr) == (0, b""), r.stderr

    data = os.path.join(workdir, "in.bin")
    with open(data, "wb") as f:
        f.write(b"from a file")
    endpoint = ["--port", d.hport, "--host", "127.0.0.1"]
    assert cli("invoke", "echo", "--data-file", data, *endpoint).stdout == b"from a file"
    assert cli("invoke", "echo", "--data", "@" + data, *endpoint).stdout == b"from a file"
    assert cli("invoke", "echo", "--data", "@-", *endpoint, input=b"piped").stdout == b"piped"
    assert cli("invoke", "echo", *endpoint, input=b"stdin").stdout == b"stdin"
    r = cli("invoke", "echo", "--data", "@" + data + ".missing", *endpoint)
    assert r.returncode == 1 and r.stderr.decode().count("\n") == 1, r.stderr


def test_url_and_token_from_config_file(make_daemon, workdir):
    d = make_daemon()
    d.deploy("echo")
    conf = os.path.join(workdir, "cli.toml")
    with open(conf, "w") as f:
        f.write(f'url = "http://127.0.0.1:{d.mport}"\ntoken = "t0k3n"\n')
    r = cli("list", "-q", env={"TINYFAAS_CLI_CONFIG": conf})
    assert (r.returncode, r.stdout) == (0, b"echo\n"), r.stderr
    # The environment beats the file: a dead URL there fails the call.
    r = cli("list", env={"TINYFAAS_CLI_CONFIG": conf, "TINYFAAS_URL": f"http://127.0.0.1:{free_tcp_port()}"})
    assert r.returncode == 1 and b"cannot reach the management API" in r.stderr
    # The default place: $XDG_CONFIG_HOME/tinyfaas/cli.toml.
    os.makedirs(os.path.join(workdir, "xdg", "tinyfaas"))
    os.rename(conf, os.path.join(workdir, "xdg", "tinyfaas", "cli.toml"))
    r = cli("list", "-q", env={"XDG_CONFIG_HOME": os.path.join(workdir, "xdg")})
    assert (r.returncode, r.stdout) == (0, b"echo\n"), r.stderr

    with open(conf, "w") as f:
        f.write('url = "http://127.0.0.1:1"\nbogus = 1\n')
    r = cli("list", env={"TINYFAAS_CLI_CONFIG": conf})
    assert r.returncode == 2
    assert r.stderr.decode() == f"tinyfaas: config {conf}: line 2: unknown key 'bogus' (use url, token and endpoint)\n"


def test_bash_completion_script(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    script = str(REPO / "scripts" / "completion" / "tinyfaas.bash")

    def complete(*words):
        line = " ".join(map(str, words))
        prog = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
                f"_tinyfaas; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        r = subprocess.run(["bash", "-c", prog], capture_output=True, timeout=30,
                           env={**os.environ, "PATH": os.path.dirname(str(BIN)) + ":" + os.environ["PATH"]})
        assert r.returncode == 0, r.stderr
        return set(r.stdout.decode().split())

    assert {"serve", "deploy", "list", "invoke"} <= complete("tinyfaas", "")
    assert complete("tinyfaas", "deploy", "x", "--runtime", "py") == {"python3"}
    assert {"--json", "--quiet"} <= complete("tinyfaas", "list", "--")
    assert complete("tinyfaas", "delete", "--url", f"http://127.0.0.1:{d.mport}", "e") == {"echo"}
    assert complete("tinyfaas", "rm", "--url", f"http://127.0.0.1:{d.mport}", "e") == {"echo"}
    assert {"--runtime", "--env", "--memory-mb", "--cpus", "--egress"} <= complete("tinyfaas", "deploy", "x", "--")
    assert {"--yes"} <= complete("tinyfaas", "wipe", "--")
    assert {"--endpoint", "--max-body-bytes"} <= complete("tinyfaas", "invoke", "--")


def test_invoke_over_grpc(make_daemon):
    d = make_daemon(grpc_port=0)
    d.deploy("echo")
    d.deploy("show-headers", "showheaders")
    endpoint = ["--protocol", "grpc", "--port", d.gport, "--host", "127.0.0.1"]
    r = cli("invoke", "echo", "--data", "over grpc", *endpoint)
    assert (r.returncode, r.stdout) == (0, b"over grpc"), r.stderr
    r = cli("invoke", "showheaders", "-H", "Lab: edge", *endpoint, input=b"")
    assert r.returncode == 0, r.stderr
    assert b"Lab" in r.stdout and b"edge" in r.stdout, r.stdout
    r = cli("invoke", "nosuchfn", "--data", "x", *endpoint)
    assert r.returncode == 1
    assert r.stderr.decode().startswith("tinyfaas: NOT_FOUND"), r.stderr
    assert r.stderr.decode().count("\n") == 1, r.stderr
