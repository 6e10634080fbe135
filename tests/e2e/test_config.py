"""`tinyfaas serve --config FILE` and `--print-config`: precedence, validation
messages naming the key, and a daemon that really uses the file."""

import os
import subprocess

from conftest import BIN, free_tcp_port


def serve(*args, env=None, timeout=30):
    e = os.environ.copy()
    for k in ("HTTP_PORT", "COAP_PORT", "GRPC_PORT", "TINYFAAS_CONFIG", "TINYFAAS_LOG_LEVEL", "TINYFAAS_STATE_DIR"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([str(BIN), "serve", *map(str, args)], capture_output=True, timeout=timeout, env=e,
                          stdin=subprocess.DEVNULL)


def settings(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            out[key] = value
    return out


def test_print_config_defaults_and_round_trip(workdir):
    r = serve("--print-config", "--state-dir", workdir)
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout.decode())
    assert s["http-port"] == "8000" and s["coap-port"] == "5683" and s["grpc-port"] == "9000"
    assert s["management-address"] == '"localhost"'
    assert s["address"] == '"::"'
    assert s["state-dir"] == f'"{workdir}"'
    assert s["log-level"] == '"info"'
    # Filled in from the machine, not left empty.
    assert s["runtimes-dir"] != '""' and s["python"] != '""'

    path = os.path.join(workdir, "printed.toml")
    with open(path, "wb") as f:
        f.write(r.stdout)
    again = serve("--config", path, "--print-config")
    assert again.returncode == 0, again.stderr
    assert again.stdout == r.stdout


def test_precedence_flag_environment_file_default(workdir):
    path = os.path.join(workdir, "tf.toml")
    with open(path, "w") as f:
        f.write('http-port = 1111\ncoap-port = 2222\ngrpc-port = 3333\nlog-level = "warn"\n')
    r = serve("--config", path, "--print-config", "--http-port", "1000", env={"COAP_PORT": "2000"})
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout.decode())
    assert s["http-port"] == "1000"  # flag
    assert s["coap-port"] == "2000"  # environment over file
    assert s["grpc-port"] == "3333"  # file over default
    assert s["log-level"] == '"warn"'
    assert s["management-port"] == "8080"  # default
    # TINYFAAS_CONFIG names the file too.
    r = serve("--print-config", env={"TINYFAAS_CONFIG": path})
    assert settings(r.stdout.decode())["grpc-port"] == "3333"


def test_validation_errors_name_the_key(workdir):
    cases = [
        ('http-port = 8000\nhtp-port = 1\n', "line 2: unknown key 'htp-port'"),
        ('http-port = "8000"\n', "line 1: 'http-port' must be an integer, not a string"),
        ('max-body-bytes = -5\n', "'max-body-bytes' must not be negative"),
        ('backend = "kubernetes"\n', "'backend'"),
        ('http-port = 70000\n', "--http-port must be between -1 and 65535"),
        ('http-port = \n', "line 1"),
    ]
    for text, expected in cases:
        path = os.path.join(workdir, "bad.toml")
        with open(path, "w") as f:
            f.write(text)
        for args in (["--print-config"], ["--management-port", free_tcp_port(), "--state-dir", workdir]):
            r = serve("--config", path, *args)
            err = r.stderr.decode()
            assert r.returncode == 2, (text, args, r.returncode, err)
            assert expected in err, (text, err)
            assert r.stdout == b"", text
    r = serve("--config", os.path.join(workdir, "absent.toml"), "--print-config")
    assert r.returncode == 2 and "no such file" in r.stderr.decode()


def test_daemon_serves_with_the_files_settings(make_daemon, workdir):
    path = os.path.join(workdir, "tf.toml")
    with open(path, "w") as f:
        f.write("max-body-bytes = 1000\ncall-timeout = 2\n")
    d = make_daemon(extra_args=["--config", path])
    d.ensure("echo")
    d.ensure("sleep")
    assert d.call("echo", b"x" * 500).status == 200
    assert d.call("echo", b"x" * 2000).status == 413
    assert d.call("sleep", b"5").status == 504
