"""Limits and overload (issue 6, item 3): a function's own call timeout, its
per-instance concurrency limit with a bounded queue, and the request and
response size limits, each seen over HTTP (http.client), CoAP (libcoap's
coap-client) and gRPC (grpcio), with the node serving normally afterwards.

The slow calls are the `sleep` test function; no assertion depends on how
fast the machine is beyond "a reply within a few seconds"."""

# e2e: both backends

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from conftest import BIN, Daemon, HttpResult, fn_dir, wait_until, zip_folder_b64
from test_grpc import describe, grpc

MAX_BODY = 4096
DAEMON_TIMEOUT = 30  # --call-timeout: what a function without "timeout" gets


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(grpc_port=0,
               extra_args=["--max-body-bytes", str(MAX_BODY), "--call-timeout", str(DAEMON_TIMEOUT)])
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def upload(d: Daemon, key: str, name: str, **fields) -> HttpResult:
    payload = {"name": name, "env": "python3", "threads": 1, "zip": zip_folder_b64(fn_dir(key)), **fields}
    return d.upload_raw(payload)


def deploy(d: Daemon, key: str, name: str, **fields) -> None:
    r = upload(d, key, name, **fields)
    assert r.status == 200, f"upload of {name}: {r.status} {r.text!r}"


def limits_of(d: Daemon, name: str) -> dict:
    r = d.mgmt("GET", "/functions/" + name)
    assert r.status == 200, (r.status, r.text)
    return json.loads(r.body)["limits"]


def http_in_flight(d: Daemon, name: str) -> int:
    return json.loads(d.mgmt("GET", "/functions/" + name).body)["protocols"]["http"]["in_flight"]


class Background:
    """One HTTP call on its own thread, for calls that must stay in flight."""

    def __init__(self, d: Daemon, name: str, data: bytes):
        self.result: HttpResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(d, name, data), daemon=True)
        self._thread.start()

    def _run(self, d, name, data):
        try:
            self.result = d.call(name, data, timeout=60)
        except BaseException as e:  # noqa: BLE001 - reported by join()
            self.error = e

    def join(self) -> HttpResult:
        self._thread.join(70)
        assert not self._thread.is_alive(), "background call did not finish"
        if self.error:
            raise self.error
        return self.result


# --------------------------------------------------------------------------
# upload fields


@pytest.mark.parametrize("fields,message", [
    ({"timeout": 0}, "timeout must be between 0.001 and 3600 seconds, got 0"),
    ({"timeout": 3601}, "timeout must be between 0.001 and 3600 seconds, got 3601"),
    ({"timeout": "10s"}, 'field "timeout" must be a number of seconds'),
    ({"concurrency": 0}, "concurrency must be an integer between 1 and 4096, got 0"),
    ({"concurrency": 2.5}, 'field "concurrency" must be an integer between 1 and 4096'),
    ({"queue": -1}, "queue must be an integer between 0 and 65536, got -1"),
    ({"queue": 100000}, "queue must be an integer between 0 and 65536, got 100000"),
])
def test_bad_limits_are_a_400_naming_the_field(daemon, fields, message):
    r = upload(daemon, "echo", "badlimits", **fields)
    assert (r.status, r.text.strip()) == (400, message)
    assert "badlimits" not in daemon.list_names()


def test_limits_are_shown_with_their_defaults(daemon):
    deploy(daemon, "echo", "plain")
    got = limits_of(daemon, "plain")
    assert (got["timeout"], got["concurrency"], got["queue"]) == (DAEMON_TIMEOUT, 128, 1024)
    deploy(daemon, "echo", "tuned", timeout=2.5, concurrency=3, queue=0)
    got = limits_of(daemon, "tuned")
    assert (got["timeout"], got["concurrency"], got["queue"]) == (2.5, 3, 0)
    assert daemon.call("tuned", b"hi").body == b"hi"


# --------------------------------------------------------------------------
# timeout


def test_timeout_answers_504_5_04_deadline_exceeded_and_the_instance_serves_on(daemon):
    deploy(daemon, "sleep", "slow", timeout=1)

    r = daemon.call("slow", b"5")
    assert r.status == 504, (r.status, r.text)
    assert r.text.strip() == "function call timed out"
    assert r.elapsed < 4.5, f"answered after {r.elapsed:.1f}s; the timeout is 1 s"
    assert (daemon.call("slow", b"0").status, daemon.call("slow", b"0").body) == (200, b"slept")

    c = daemon.coap("slow", b"5", method="post")
    assert c.code == "5.04", c.log[-1000:]
    c = daemon.coap("slow", b"0", method="post")
    assert (c.code, c.payload) == ("2.05", b"slept"), c.log[-1000:]

    g = grpc(daemon, "slow", b"5")
    assert g.code == "DEADLINE_EXCEEDED", describe(g)
    assert g.details == "function call timed out"
    g = grpc(daemon, "slow", b"0")
    assert (g.code, g.response) == ("OK", b"slept"), describe(g)


# --------------------------------------------------------------------------
# concurrency and queue


@pytest.mark.parametrize("protocol", ["http", "coap", "grpc"])
def test_a_full_instance_refuses_at_once_and_serves_on(daemon, protocol):
    # One call at a time, none waiting. The blocker holds the only turn until
    # the function's timeout ends it.
    if "narrow" not in daemon.list_names():
        deploy(daemon, "sleep", "narrow", concurrency=1, queue=0, timeout=4)
    blocker = Background(daemon, "narrow", b"8")
    wait_until(lambda: http_in_flight(daemon, "narrow") == 1, 10, what="the blocking call to be in flight")

    if protocol == "http":
        r = daemon.call("narrow", b"0")
        assert r.status == 503, (r.status, r.text)
        assert r.text.startswith("function overloaded: 1 calls running and 0 waiting"), r.text
    elif protocol == "coap":
        c = daemon.coap("narrow", b"0", method="post")
        assert c.code == "5.03", c.log[-1000:]
    else:
        g = grpc(daemon, "narrow", b"0")
        assert g.code == "RESOURCE_EXHAUSTED", describe(g)
        assert g.details.startswith("function overloaded"), describe(g)
    # Refused, not queued: the blocker still holds the turn.
    assert http_in_flight(daemon, "narrow") == 1

    assert blocker.join().status == 504
    # The timed-out call still runs (4 s more) and keeps the turn until its
    # late answer, within the grace; then the instance serves again.
    wait_until(lambda: daemon.call("narrow", b"0").body == b"slept", 15, what="the turn to come free")


def test_calls_wait_in_the_queue_up_to_its_size(daemon):
    deploy(daemon, "sleep", "queued", concurrency=1, queue=1, timeout=20)
    blocker = Background(daemon, "queued", b"6")
    wait_until(lambda: http_in_flight(daemon, "queued") == 1, 10, what="the first call to be in flight")
    waiting = Background(daemon, "queued", b"0")
    wait_until(lambda: http_in_flight(daemon, "queued") == 2, 10, what="the second call to be queued")
    r = daemon.call("queued", b"0")
    assert r.status == 503, (r.status, r.text)
    assert r.text.startswith("function overloaded: 1 calls running and 1 waiting"), r.text
    # The waiting call was kept and runs once the first is done.
    assert (blocker.join().status, waiting.join().status) == (200, 200)
    assert daemon.call("queued", b"0").status == 200


# --------------------------------------------------------------------------
# sizes


def test_request_above_the_limit_is_refused_on_every_protocol(daemon):
    deploy(daemon, "echo", "echo")
    fits, too_big = b"a" * MAX_BODY, b"a" * (MAX_BODY + 1)

    assert daemon.call("echo", fits).body == fits
    r = daemon.call("echo", too_big)
    assert r.status == 413, (r.status, r.text)
    assert r.text.strip() == f"request larger than {MAX_BODY} bytes"

    c = daemon.coap("echo", fits, method="post", block=1024)
    assert (c.code, c.payload) == ("2.05", fits), c.log[-1000:]
    c = daemon.coap("echo", too_big, method="post", block=1024)
    assert c.code == "4.13", c.log[-1000:]

    g = grpc(daemon, "echo", fits)
    assert (g.code, g.response) == ("OK", fits), describe(g)
    g = grpc(daemon, "echo", too_big)
    assert g.code == "RESOURCE_EXHAUSTED", describe(g)
    assert g.details == f"payload larger than {MAX_BODY} bytes"
    g = grpc(daemon, "echo", b"a" * (4 * MAX_BODY))  # above gRPC's own message limit
    assert g.code == "RESOURCE_EXHAUSTED", describe(g)

    assert daemon.call("echo", b"after").body == b"after"
    assert daemon.coap("echo", b"after", method="post").payload == b"after"
    assert grpc(daemon, "echo", b"after").response == b"after"


def test_response_above_the_limit_is_refused_on_every_protocol(daemon):
    deploy(daemon, "big", "big")
    r = daemon.call("big", str(MAX_BODY).encode())
    assert (r.status, len(r.body)) == (200, MAX_BODY)
    r = daemon.call("big", str(MAX_BODY + 1).encode())
    assert r.status == 413, (r.status, r.text)
    assert r.text.strip() == "function response larger than the limit"

    c = daemon.coap("big", str(MAX_BODY + 1).encode(), method="post")
    assert c.code == "4.13", c.log[-1000:]
    g = grpc(daemon, "big", str(MAX_BODY + 1))
    assert g.code == "RESOURCE_EXHAUSTED", describe(g)
    assert g.details == "function response larger than the limit"

    r = daemon.call("big", b"10")
    assert (r.status, r.body) == (200, b"x" * 10)


# --------------------------------------------------------------------------
# CLI and persistence


def test_cli_sets_limits_and_they_survive_a_restart(make_daemon):
    d = make_daemon(extra_args=["--call-timeout", "9"])
    url = f"http://127.0.0.1:{d.mport}"
    r = subprocess.run([str(BIN), "deploy", str(fn_dir("echo")), "--name", "limited", "--runtime", "python3",
                        "--threads", "1", "--timeout", "1.5", "--concurrency", "2", "--queue", "3", "--url", url],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(BIN), "deploy", str(fn_dir("echo")), "--name", "limited", "--runtime", "python3",
                        "--threads", "1", "--queue", "-1", "--url", url], capture_output=True, timeout=300)
    assert r.returncode != 0
    assert b"queue must be an integer between 0 and 65536, got -1" in r.stderr, r.stderr
    d.deploy("echo", "plain")
    d.stop()

    # A new --call-timeout reaches the function that set none.
    d2 = make_daemon(state_dir=d.state_dir, extra_args=["--call-timeout", "7"])
    got = limits_of(d2, "limited")
    assert (got["timeout"], got["concurrency"], got["queue"]) == (1.5, 2, 3)
    assert limits_of(d2, "plain")["timeout"] == 7
    wait_until(lambda: d2.call("limited", b"back", timeout=5).body == b"back", 20, what="limited to answer")
