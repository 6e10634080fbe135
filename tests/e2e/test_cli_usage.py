"""The CLI as people from docker and faas-cli use it (issue 14): what deploy
packs, -e/--runtime, usage errors, where invoke calls, large payloads, and
wipe's confirmation. The CLI runs as a subprocess against a real daemon."""

import os
import pty
import shutil
import subprocess

from conftest import BIN, fn_dir
from test_cli import cli

VENDORED = fn_dir("echo").parent.parent / "tests" / "functions" / "vendoredjs"


def mgmt_url(d) -> str:
    return f"http://127.0.0.1:{d.mport}"


def test_deploy_packs_vendored_node_modules_and_honours_tinyfaasignore(make_daemon, tmp_path):
    d = make_daemon()
    folder = tmp_path / "vendoredjs"
    shutil.copytree(VENDORED, folder)
    (folder / ".env").write_text("SECRET=1\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.md").write_text("x\n")
    (folder / ".tinyfaasignore").write_text("# stays home\n.env\nnotes/\n")
    r = cli("deploy", folder, "-n", "vendored", "-r", "nodejs", "-t", 1, "--url", mgmt_url(d))
    assert r.returncode == 0, r.stderr
    assert "left out by .tinyfaasignore: .env, notes/" in r.stderr.decode(), r.stderr
    r = cli("invoke", "vendored", "-d", "hi", "--endpoint", "127.0.0.1", "--port", d.hport)
    assert (r.returncode, r.stdout) == (0, b"vendored: HI"), r.stderr
    # What was left out never reached the node; what was packed did.
    packed = set()
    for root, dirs, files in os.walk(d.state_dir):
        if "tinyvendored" in dirs:
            packed.add(root)
        assert ".env" not in files and ".tinyfaasignore" not in files and "notes" not in dirs, (root, dirs, files)
    assert packed, "node_modules/tinyvendored is nowhere in the state dir"


def test_env_flag_sets_variables_and_runtime_names_the_runtime(make_daemon):
    d = make_daemon()
    r = cli("deploy", fn_dir("env"), "-n", "env", "-r", "python3", "-t", 1, "-e", "GREETING=hello",
            "--env", "OTHER=x=y", "--var", "A=1", "B=2", "--url", mgmt_url(d))
    assert r.returncode == 0, r.stderr
    for key, want in (("GREETING", b"hello"), ("OTHER", b"x=y"), ("A", b"1"), ("B", b"2")):
        r = cli("invoke", "env", "-d", key, "--endpoint", "127.0.0.1", "--port", d.hport)
        assert (r.returncode, r.stdout) == (0, want), (key, r.stderr)


def test_usage_errors_exit_2_with_a_hint(make_daemon):
    d = make_daemon()
    url = mgmt_url(d)
    cases = [
        (["deploy", fn_dir("echo"), "-n", "echo", "-e", "python3", "-t", 1, "--url", url],
         "did you mean --runtime python3?"),
        (["deploy", fn_dir("echo"), "-n", "echo", "-t", 1, "--url", url], "--runtime is required"),
        (["lsit", "--url", url], "did you mean 'list'?"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["list", "--bogus", "--url", url], "--bogus"),
        (["delete", "--url", url], "name is required"),
        (["invoke"], "name is required"),
    ]
    for args, text in cases:
        r = cli(*args)
        err = r.stderr.decode()
        assert r.returncode == 2, (args, err)
        assert err.startswith("tinyfaas: ") and text in err and err.count("\n") == 1, (args, err)
    assert d.list_names() == []


def test_ls_and_rm_are_aliases(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    r = cli("ls", "-q", "--url", mgmt_url(d))
    assert (r.returncode, r.stdout.split()) == (0, [b"echo"]), r.stderr
    r = cli("rm", "echo", "--url", mgmt_url(d))
    assert r.returncode == 0, r.stderr
    assert d.list_names() == []


def test_invoke_calls_the_endpoints_on_the_config_urls_host(make_daemon, tmp_path):
    # Endpoints on 127.0.0.2 only: a client that calls localhost or
    # 127.0.0.1 is refused.
    d = make_daemon(extra_args=("--address", "127.0.0.2"))
    r = cli("deploy", fn_dir("echo"), "-n", "echo", "-r", "python3", "-t", 1, "--url", mgmt_url(d))
    assert r.returncode == 0, r.stderr
    config = tmp_path / "cli.toml"
    config.write_text(f'url = "http://127.0.0.2:{d.mport}"\n')
    env = {"TINYFAAS_CLI_CONFIG": str(config), "HTTP_PORT": str(d.hport), "COAP_PORT": str(d.cport)}
    for proto in ("http", "coap"):
        r = cli("invoke", "echo", "-d", "hi", "-p", proto, env=env)
        assert (r.returncode, r.stdout) == (0, b"hi"), (proto, r.stderr)
    # --endpoint wins over the url's host; so does the config's endpoint key.
    r = cli("invoke", "echo", "-d", "hi", "--endpoint", "127.0.0.1", env=env)
    assert r.returncode == 1 and b"http://127.0.0.1:" in r.stderr, r.stderr
    config.write_text(f'url = "http://127.0.0.1:{d.mport}"\nendpoint = "127.0.0.2"\n')
    r = cli("invoke", "echo", "-d", "hi", env=env)
    assert (r.returncode, r.stdout) == (0, b"hi"), r.stderr


def test_large_payloads_grpc_10mb_and_http_413_text(make_daemon, tmp_path):
    d = make_daemon(grpc_port=0)
    d.deploy("echo")
    payload = bytes((i % 94) + 33 for i in range(10 * 1024 * 1024))
    big = tmp_path / "10mb"
    big.write_bytes(payload)
    r = cli("invoke", "echo", "-p", "grpc", "-f", big, "--endpoint", "127.0.0.1", "--port", d.gport)
    assert r.returncode == 0, r.stderr[:500]
    assert r.stdout == payload
    # Above the daemon's --max-body-bytes (16 MiB): its 413 and reason, not
    # "broken pipe".
    huge = tmp_path / "17mb"
    huge.write_bytes(b"x" * (17 * 1024 * 1024))
    r = cli("invoke", "echo", "-f", huge, "--endpoint", "127.0.0.1", "--port", d.hport)
    err = r.stderr.decode()
    assert r.returncode == 1 and err.startswith("tinyfaas: 413 Payload Too Large"), err
    assert "broken pipe" not in err


def run_on_terminal(args, answer: bytes, timeout=60):
    """Runs the CLI with a pseudo-terminal as stdin that has `answer` typed."""
    master, slave = pty.openpty()
    try:
        os.write(master, answer)
        e = os.environ.copy()
        e["XDG_CONFIG_HOME"] = "/nonexistent"
        return subprocess.run([str(BIN), *map(str, args)], stdin=slave, capture_output=True, timeout=timeout, env=e)
    finally:
        os.close(slave)
        os.close(master)


def test_wipe_asks_on_a_terminal_and_needs_yes_elsewhere(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    url = mgmt_url(d)
    # Not a terminal, no --yes: refused, nothing removed.
    r = cli("wipe", "--url", url, input=b"y\n")
    assert r.returncode == 2 and b"pass --yes" in r.stderr, r.stderr
    assert d.list_names() == ["echo"]
    # A terminal answering no keeps everything; yes removes it.
    r = run_on_terminal(["wipe", "--url", url], b"n\n")
    assert r.returncode == 1 and b"remove all 1 function (echo)" in r.stderr, r.stderr
    assert d.list_names() == ["echo"]
    r = run_on_terminal(["wipe", "--url", url], b"y\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"removed 1 function: echo\n"
    assert d.list_names() == []
    d.deploy("echo")
    r = cli("wipe", "--yes", "--url", url)
    assert (r.returncode, r.stdout) == (0, b"removed 1 function: echo\n"), r.stderr
    assert d.list_names() == []
