"""Graceful shutdown: on SIGTERM the daemon takes no new calls, lets the calls
in flight finish (up to --shutdown-timeout), answers those still running
then with an error, stops every instance and exits 0.

Calls go to tests/functions/sleep (input = seconds) over HTTP (curl), CoAP
(coap-client) and gRPC (grpcio, test_grpc's client). A test waits until
/metrics shows its calls in flight before it signals, so that the order is
certain without guessing at sleeps.
"""

# e2e: both backends

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from conftest import BIN, Daemon, backend_independent, coap_client_binary, wait_until
from test_grpc import CLIENT as GRPC_CLIENT
from test_grpc import grpc_python

# How long the daemon may take to stop its instances and exit once the
# calls are done (process backend: a few seconds at most).
EXIT_MARGIN = 10.0


def start_daemon(*extra: str) -> Daemon:
    return Daemon(grpc_port=0, extra_args=extra)


def calls_in_flight(d: Daemon, name: str) -> dict[str, int]:
    """protocol -> calls of `name` running now, from /metrics."""
    r = d.mgmt("GET", "/metrics", timeout=5)
    assert r.status == 200, r.text
    found = {}
    pattern = re.compile(r'^tinyfaas_calls_in_flight\{(.*)\} (\d+)$')
    for line in r.text.splitlines():
        m = pattern.match(line)
        if m and f'function="{name}"' in m.group(1):
            proto = re.search(r'protocol="(\w+)"', m.group(1)).group(1)
            found[proto] = int(m.group(2))
    return found


class Clients:
    """One call to `name` with `seconds` as input on each protocol, each in
    its own client process, started at once."""

    def __init__(self, d: Daemon, name: str, seconds: float, timeout: float = 60.0):
        self.tmp = tempfile.mkdtemp(prefix="tfshut-")
        payload = str(seconds).encode()
        self.curl = subprocess.Popen(
            ["curl", "-sS", "--max-time", str(timeout), "-o", os.path.join(self.tmp, "http.out"),
             "-w", "%{http_code}", "--data-binary", payload, f"http://127.0.0.1:{d.hport}/{name}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        inp = os.path.join(self.tmp, "coap.in")
        with open(inp, "wb") as f:
            f.write(payload)
        self.coap = subprocess.Popen(
            [coap_client_binary(), "-v", "6", "-B", str(int(timeout)), "-m", "post", "-f", inp,
             "-o", os.path.join(self.tmp, "coap.out"), f"coap://127.0.0.1:{d.cport}/{name}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        spec = {"target": f"127.0.0.1:{d.gport}", "parallel": False,
                "calls": [{"name": name, "data": base64.b64encode(payload).decode(),
                           "timeout": timeout}]}
        with open(os.path.join(self.tmp, "grpc.json"), "w") as f:
            json.dump(spec, f)
        with open(os.path.join(self.tmp, "grpc.json"), "rb") as f:
            self.grpc = subprocess.Popen([grpc_python(), "-c", GRPC_CLIENT], stdin=f,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.timeout = timeout

    def results(self) -> dict[str, tuple[str, bytes]]:
        """protocol -> (status, body): HTTP status, CoAP code, gRPC code name
        with the answer (the reason for an error)."""
        out = {}
        code, err = self.curl.communicate(timeout=self.timeout + 15)
        body = b""
        if os.path.exists(os.path.join(self.tmp, "http.out")):
            with open(os.path.join(self.tmp, "http.out"), "rb") as f:
                body = f.read()
        out["http"] = (code.decode() or err.decode(), body)
        log, err = self.coap.communicate(timeout=self.timeout + 15)
        codes = re.findall(r"^v:1 t:(?:CON|NON|ACK|RST) c:(\d\.\d\d) ", log.decode("utf-8", "replace"), re.M)
        body = b""
        if os.path.exists(os.path.join(self.tmp, "coap.out")):
            with open(os.path.join(self.tmp, "coap.out"), "rb") as f:
                body = f.read()
        # A 2.05 is written to -o; an error's reason is only in the PDU log.
        out["coap"] = (codes[-1] if codes else "no answer", body or log[-300:])
        raw, err = self.grpc.communicate(timeout=self.timeout + 15)
        assert self.grpc.returncode == 0, err.decode("utf-8", "replace")[-2000:]
        g = json.loads(raw)[0]
        out["grpc"] = (g["code"], base64.b64decode(g["response"]) or g["details"].encode())
        return out

    def kill(self):
        for p in (self.curl, self.coap, self.grpc):
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def wait_in_flight(d: Daemon, name: str, protocols=("http", "coap", "grpc")):
    wait_until(lambda: all(calls_in_flight(d, name).get(p, 0) >= 1 for p in protocols), 30,
               what=f"a call to {name} in flight on each of {protocols}")


def wait_exit(d: Daemon, within: float) -> tuple[int, float]:
    t0 = time.monotonic()
    try:
        rc = d.proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"tinyfaas did not exit within {within:.0f}s of SIGTERM\n{d.log_tail()}")
    return rc, time.monotonic() - t0


def finish(d: Daemon, rc: int):
    """Checks what every stop must leave: exit 0, no handler process."""
    d.stopped = True
    d._close_files()
    assert rc == 0, f"tinyfaas exited with {rc}\n{d.log_tail()}"
    wait_until(lambda: not d.handlers_left(), 5.0, what="handler processes to be gone")


def test_calls_in_flight_finish_and_new_ones_are_refused():
    d = start_daemon("--shutdown-timeout", "30")
    clients = None
    try:
        d.deploy("sleep")
        # Long enough for the checks below to run while the daemon drains,
        # even on a loaded machine.
        clients = Clients(d, "sleep", 8)
        wait_in_flight(d, "sleep")
        d.proc.send_signal(signal.SIGTERM)

        # New connections are refused at once: HTTP's listener is closed...
        def http_refused():
            with socket.socket() as s:
                s.settimeout(2)
                return s.connect_ex(("127.0.0.1", d.hport)) != 0
        wait_until(http_refused, 5, what="the HTTP port to refuse connections")
        # ... gRPC's too (a new client gets UNAVAILABLE) ...
        late = subprocess.run([grpc_python(), "-c", GRPC_CLIENT], capture_output=True, timeout=60, input=json.dumps(
            {"target": f"127.0.0.1:{d.gport}", "parallel": False,
             "calls": [{"name": "sleep", "data": "MA==", "timeout": 5}]}).encode())
        assert late.returncode == 0, late.stderr.decode()[-2000:]
        assert json.loads(late.stdout)[0]["code"] == "UNAVAILABLE", late.stdout
        # ... and a new CoAP request is answered 5.03 at once.
        r = subprocess.run([coap_client_binary(), "-v", "6", "-B", "5", "-m", "get",
                            f"coap://127.0.0.1:{d.cport}/sleep"], capture_output=True, timeout=30)
        codes = re.findall(r"^v:1 t:(?:CON|NON|ACK|RST) c:(\d\.\d\d) ", r.stdout.decode(), re.M)
        assert codes and codes[-1] == "5.03", r.stdout.decode()[-1000:]

        results = clients.results()
        assert results["http"] == ("200", b"slept"), results
        assert results["coap"] == ("2.05", b"slept"), results
        assert results["grpc"] == ("OK", b"slept"), results

        rc, _ = wait_exit(d, EXIT_MARGIN)
        finish(d, rc)
        log = d.log_text()
        assert "waiting up to 30 s for 3 in flight" in log, d.log_tail()
        assert "all 3 call(s) finished" in log, d.log_tail()
    finally:
        if clients:
            clients.kill()
        if not d.stopped:
            d.kill_hard()
        d.cleanup()


def test_calls_past_the_deadline_get_an_error_answer():
    d = start_daemon("--shutdown-timeout", "2")
    clients = None
    try:
        d.deploy("sleep")
        clients = Clients(d, "sleep", 40)
        wait_in_flight(d, "sleep")
        d.proc.send_signal(signal.SIGTERM)
        rc, took = wait_exit(d, 2 + EXIT_MARGIN)
        results = clients.results()
        assert results["http"][0] == "503", results
        assert b"shutdown timeout" in results["http"][1], results
        assert results["coap"][0] == "5.03", results
        assert results["grpc"][0] == "UNAVAILABLE", results
        assert b"shutdown timeout" in results["grpc"][1], results
        finish(d, rc)
        assert took >= 1.5, f"exited after {took:.1f}s, before the 2 s shutdown timeout"
        assert "cutting 3 call(s) short" in d.log_text(), d.log_tail()
    finally:
        if clients:
            clients.kill()
        if not d.stopped:
            d.kill_hard()
        d.cleanup()


def test_a_second_signal_cuts_the_wait_short():
    d = start_daemon("--shutdown-timeout", "120")
    try:
        d.deploy("sleep")
        tmp = tempfile.mkdtemp(prefix="tfshut-")
        curl = subprocess.Popen(["curl", "-sS", "--max-time", "60", "-o", os.path.join(tmp, "out"),
                                 "-w", "%{http_code}", "--data-binary", "40", f"http://127.0.0.1:{d.hport}/sleep"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_in_flight(d, "sleep", ("http",))
            d.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "waiting up to 120 s" in d.log_text(), 10, what="the drain to begin")
            d.proc.send_signal(signal.SIGINT)
            rc, _ = wait_exit(d, EXIT_MARGIN)
            code, _ = curl.communicate(timeout=30)
            assert code == b"503", code
            with open(os.path.join(tmp, "out"), "rb") as f:
                assert b"second signal" in f.read()
        finally:
            if curl.poll() is None:
                curl.kill()
                curl.wait(timeout=10)
        finish(d, rc)
        assert "received SIGINT again" in d.log_text(), d.log_tail()
    finally:
        if not d.stopped:
            d.kill_hard()
        d.cleanup()


def test_an_idle_daemon_exits_at_once():
    d = start_daemon("--shutdown-timeout", "120")
    try:
        d.deploy("sleep")
        d.proc.send_signal(signal.SIGTERM)
        rc, _ = wait_exit(d, EXIT_MARGIN)
        finish(d, rc)
        assert "no calls in flight" in d.log_text(), d.log_tail()
    finally:
        if not d.stopped:
            d.kill_hard()
        d.cleanup()


@backend_independent
def test_shutdown_timeout_is_a_setting():
    r = subprocess.run([str(BIN), "serve", "--print-config", "--shutdown-timeout", "7"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "shutdown-timeout = 7" in r.stdout.splitlines(), r.stdout
    bad = subprocess.run([str(BIN), "serve", "--print-config",
                          "--shutdown-timeout", "-1"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "shutdown-timeout" in bad.stderr, bad.stderr


def test_sigterm_while_restoring_leaves_no_instance_behind(make_daemon):
    """A SIGTERM right after the ports file appears, while the stored
    functions' instances are still starting: those starts stop their
    instances, and the daemon waits for that (no container outlives it)."""
    first = make_daemon(grpc_port=0)
    first.deploy("sleep", threads=2)
    first.stop()
    second = make_daemon(grpc_port=0, state_dir=first.state_dir)
    second.stop()  # asserts exit status 0 and no handler left
