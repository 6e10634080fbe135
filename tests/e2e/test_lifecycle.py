"""Start-up and shut-down: SIGTERM cleans up every handler; the port
environment variables (HTTP_PORT, COAP_PORT, GRPC_PORT) work as upstream's
and flags override them."""

# e2e: both backends

import shutil
import signal
import tempfile
import socket

import pytest

from conftest import SIEVE_ANSWER, backend_independent, free_tcp_port, free_udp_port, listening_ports, wait_until


def tcp_port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_removes_every_handler(make_daemon):
    d = make_daemon()
    d.deploy("echo", threads=2)
    d.deploy("sieve", threads=2)
    d.deploy("echo-binary", "echobinary")
    assert len(d.instances("echo")) == 2
    assert len(d.instances("sieve")) == 2
    assert d.handlers_left(), "no handler process has the state dir on its command line"
    d.stop()  # asserts exit 0 within 10 s and that `pgrep -f <state dir>` finds nothing
    assert not tcp_port_open(d.mport)
    assert not tcp_port_open(d.hport)


def test_sigint_also_stops_cleanly(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    d.proc.send_signal(signal.SIGINT)
    rc = d.proc.wait(timeout=10)
    d.stopped = True
    assert rc == 0, d.log_tail()
    wait_until(lambda: not d.handlers_left(), 3, what="handlers to exit after SIGINT")


def test_sigterm_while_calls_are_running(make_daemon, workdir):
    import threading
    from conftest import http_request
    d = make_daemon()
    d.deploy("sleep")
    t = threading.Thread(target=lambda: _swallow(lambda: http_request(d.hport, "POST", "/sleep", body=b"30", timeout=20)),
                         daemon=True)
    t.start()
    wait_until(lambda: d.handlers_left(), 5, what="handler to run")
    d.stop()  # exits 0 within 10 s: the call is cut at conftest's 3 s shutdown timeout
    t.join(timeout=20)


def _swallow(fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - the call is expected to be cut off
        pass


def test_http_port_env_minus_one_disables_http(make_daemon):
    cport = free_udp_port()
    d = make_daemon(http_port=None, coap_port=cport, env={"HTTP_PORT": "-1"}, expect_http=-1)
    r = d.deploy("echo")  # deploy() asserts exactly the coap line
    assert r.text.strip() == f"coap://127.0.0.1:{cport}/echo"
    ports = listening_ports(d.proc.pid)
    assert ports["tcp"] == {d.mport}, f"with HTTP_PORT=-1 the daemon listens on TCP {ports['tcp']}"
    c = d.coap("echo", b"coap only", method="post")
    assert (c.code, c.payload) == ("2.05", b"coap only")


def test_coap_port_env_minus_one_disables_coap(make_daemon):
    d = make_daemon(coap_port=None, env={"COAP_PORT": "-1"}, expect_coap=-1)
    r = d.deploy("echo")
    assert r.text.strip() == f"http://127.0.0.1:{d.hport}/echo"
    ports = listening_ports(d.proc.pid)
    assert ports["udp"] == set(), f"with COAP_PORT=-1 the daemon holds UDP ports {ports['udp']}"
    assert d.call("echo", b"http only").body == b"http only"


def test_port_env_vars_choose_ports(make_daemon):
    hport, cport = free_tcp_port(), free_udp_port()
    d = make_daemon(http_port=None, coap_port=None,
                    env={"HTTP_PORT": str(hport), "COAP_PORT": str(cport)},
                    expect_http=hport, expect_coap=cport)
    d.deploy("sieve")
    assert d.call("sieve").body == SIEVE_ANSWER
    c = d.coap("sieve")
    assert (c.code, c.payload) == ("2.05", SIEVE_ANSWER)
    ports = listening_ports(d.proc.pid)
    assert ports["tcp"] == {d.mport, hport}, ports
    assert ports["udp"] == {cport}, ports


def test_flags_override_port_env_vars(make_daemon):
    env_h, env_c = free_tcp_port(), free_udp_port()
    flag_h, flag_c = free_tcp_port(), free_udp_port()
    d = make_daemon(http_port=flag_h, coap_port=flag_c, env={"HTTP_PORT": str(env_h), "COAP_PORT": str(env_c)})
    d.deploy("echo")
    assert d.call("echo", b"flag").body == b"flag"
    ports = listening_ports(d.proc.pid)
    assert ports["tcp"] == {d.mport, flag_h}, ports
    assert ports["udp"] == {flag_c}, ports


def test_disabled_endpoint_by_flag(make_daemon):
    d = make_daemon(http_port=-1)
    r = d.deploy("echo")
    assert r.text.strip() == f"coap://127.0.0.1:{d.cport}/echo"
    assert listening_ports(d.proc.pid)["tcp"] == {d.mport}


def test_management_api_binds_loopback_only(make_daemon):
    d = make_daemon()
    # /proc/net/tcp shows the local address; the management port must be on 127.0.0.1 and ::1.
    from pathlib import Path
    hexport = f"{d.mport:04X}"
    entries = [l.split()[1] for l in Path("/proc/net/tcp").read_text().splitlines()[1:]
               if l.split()[1].endswith(":" + hexport) and l.split()[3] == "0A"]
    entries6 = [l.split()[1] for l in Path("/proc/net/tcp6").read_text().splitlines()[1:]
                if l.split()[1].endswith(":" + hexport) and l.split()[3] == "0A"]
    assert entries == ["0100007F:" + hexport], (entries, entries6)
    # And ::1 (localhost is both loopback addresses), nothing else.
    assert entries6 in ([], ["00000000000000000000000001000000:" + hexport]), entries6


@backend_independent
@pytest.mark.parametrize("port_flag", ["--http-port", "--management-port"])
def test_port_in_use_fails_to_start(port_flag, tmp_path):
    # A daemon that cannot bind exits non-zero with a message instead of
    # running half-configured.
    import subprocess
    from conftest import BIN
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [str(BIN), "serve", "--management-port", str(free_tcp_port()), "--http-port", str(free_tcp_port()),
                "--coap-port", str(free_udp_port()), "--grpc-port", "-1", "--address", "127.0.0.1",
                "--state-dir", str(tmp_path / "state"), "--backend", "process"]
        args[args.index(port_flag) + 1] = str(port)
        try:
            r = subprocess.run(args, capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tinyfaas kept running although {port_flag} {port} is taken")
        assert r.returncode != 0
        assert r.stderr.strip(), "no error message"


@backend_independent
@pytest.mark.parametrize("length", [17, 40])
def test_ordinary_state_dir_paths_are_accepted(length, tmp_path):
    # /var/lib/tinyfaas (17 characters) is the default state dir as root;
    # pytest's and mktemp's paths are 30-60 characters. The daemon must run
    # with such a path (e.g. by keeping socket paths short or relative).
    import subprocess
    from conftest import BIN
    base = tempfile.mkdtemp(prefix="L", dir="/tmp")  # 14 characters
    try:
        state = base + "/" + "s" * (length - len(base) - 1)
        assert len(state) == length
        mport = free_tcp_port()
        p = subprocess.Popen([str(BIN), "serve", "--management-port", str(mport), "--http-port", str(free_tcp_port()),
                              "--coap-port", "-1", "--grpc-port", "-1", "--address", "127.0.0.1",
                              "--state-dir", state, "--backend", "process"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            def ready():
                if p.poll() is not None:
                    return "exited"
                with socket.socket() as s:
                    s.settimeout(0.5)
                    return s.connect_ex(("127.0.0.1", mport)) == 0 and "ready"
            state_seen = wait_until(ready, 10, what="the daemon to listen")
            if state_seen == "exited":
                err = p.stderr.read().decode(errors="replace").strip().splitlines()
                pytest.fail(f"daemon refused a {length}-character state dir ({state}): "
                            f"{err[-1] if err else 'no message'}", pytrace=False)
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                assert p.wait(timeout=10) == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)
