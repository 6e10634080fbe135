"""Aggregate limits (issue 12, finding 10): what clients together can make
the node hold is bounded. Beyond each limit the client gets 503 / 5.03 /
RESOURCE_EXHAUSTED with a one-line reason, and the node keeps serving.

Small limits are set on the command line so that a handful of calls to the
`sleep` test function reaches them; every loop is bounded."""

# e2e: both backends

from __future__ import annotations

import subprocess

import pytest

from conftest import BIN, Daemon, one_line_reason, wait_until
from test_grpc import describe, grpc, grpc_calls


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(grpc_port=0,
               extra_args=["--async-max-calls", "1", "--async-queue-limit", "2", "--async-store-bytes", "4096",
                           "--grpc-max-calls", "2", "--grpc-body-bytes", "64"])
    d.deploy("sleep")
    d.deploy("echo")
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def async_call(d: Daemon, data: bytes):
    return d.call("sleep", data, headers={"X-tinyFaaS-Async": "1"})


def test_async_calls_beyond_their_queue_are_503_and_the_node_serves_on(daemon):
    # One runs at a time (--async-max-calls 1); two may wait per function.
    assert async_call(daemon, b"3").status == 202
    assert async_call(daemon, b"3").status == 202
    r = async_call(daemon, b"3")
    assert r.status == 503, (r.status, r.text)
    assert one_line_reason(r.body) == "the asynchronous queue of sleep is full (2 calls waiting); try again later"
    assert (daemon.call("echo", b"still here").status, daemon.call("echo", b"x").body) == (200, b"x")
    # Once they have run, asynchronous calls are accepted again.
    wait_until(lambda: async_call(daemon, b"0").status == 202, 20, what="an asynchronous call to be accepted")


def test_async_inputs_beyond_the_store_are_503(daemon):
    r = daemon.call("echo", b"0" * 5000, headers={"X-tinyFaaS-Async": "1"})
    assert r.status == 503, (r.status, r.text)
    assert one_line_reason(r.body) == "the asynchronous call store is full (4096 bytes); try again later"


def test_grpc_calls_beyond_their_count_or_bytes_are_resource_exhausted(daemon):
    calls = [{"name": "sleep", "data": "2", "timeout": 30},
             {"name": "sleep", "data": "2", "timeout": 30},
             {"name": "echo", "data": "late", "timeout": 30, "after": 0.7}]
    results = grpc_calls(daemon.gport, calls, parallel=True)
    assert [r.code for r in results[:2]] == ["OK", "OK"], [describe(r) for r in results]
    assert results[2].code == "RESOURCE_EXHAUSTED", describe(results[2])
    assert results[2].details == "too many calls in flight"
    g = grpc(daemon, "echo", b"x" * 65)
    assert (g.code, g.details) == ("RESOURCE_EXHAUSTED", "too many bytes in calls in flight"), describe(g)
    g = grpc(daemon, "echo", b"x" * 64)
    assert (g.code, g.response) == ("OK", b"x" * 64), describe(g)


def test_the_limits_are_in_print_config(daemon):
    out = subprocess.run([str(BIN), "serve", "--print-config", "--grpc-max-connections", "7"],
                         capture_output=True, text=True, timeout=30).stdout
    for line in ("timeout-grace = 5", "async-max-calls = 1024", "async-body-bytes = 33554432",
                 "async-queue-limit = 1000", "async-store-bytes = 67108864", "async-max-results = 10000",
                 "async-retention = 3600",
                 "coap-max-uploads = 64", "coap-upload-bytes = 33554432", "grpc-max-calls = 1024",
                 "grpc-max-connections = 7", "grpc-body-bytes = 33554432"):
        assert line in out.splitlines(), out
    r = subprocess.run([str(BIN), "serve", "--coap-max-uploads", "0"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "coap-max-uploads" in r.stderr, r.stderr

