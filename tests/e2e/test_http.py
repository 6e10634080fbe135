"""Function calls over HTTP: exact results, headers, payload sizes, errors,
async calls and the request body limit."""

# e2e: both backends

import json
import random
import time

import pytest

from conftest import SIEVE_ANSWER, wait_until

ECHOS = [("echo", "echo"), ("echo-js", "echojs"), ("echo-binary", "echobinary")]


def ascii_payload(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    return bytes(rnd.randrange(33, 127) for _ in range(n))


def test_sieve_answers_exactly(daemon):
    daemon.ensure("sieve")
    for method in ("GET", "POST"):
        r = daemon.call("sieve", method=method)
        assert (r.status, r.body) == (200, SIEVE_ANSWER), method


@pytest.mark.parametrize("key,name", ECHOS, ids=[k for k, _ in ECHOS])
def test_echo_round_trip(daemon, key, name):
    daemon.ensure(key, name)
    for method in ("POST", "GET"):
        r = daemon.call(name, b"Hello World!", method=method)
        assert (r.status, r.body) == (200, b"Hello World!"), method
    # Spaces, quotes, newlines and non-ASCII text survive unchanged.
    text = 'line one\nline "two"\ttabbed \u00e9\u00e8 \u2603 end'.encode()
    r = daemon.call(name, text)
    assert (r.status, r.body) == (200, text)


def test_show_headers_python_gets_canonical_keys(daemon):
    daemon.ensure("show-headers", "showheaders")
    r = daemon.call("showheaders", method="GET", headers={"Lab": "x", "User-Agent": "tinyfaas-e2e/1"})
    assert r.status == 200, r.text
    headers = json.loads(r.body)
    assert headers.get("Lab") == "x", headers
    assert headers.get("User-Agent") == "tinyfaas-e2e/1", headers


def test_show_headers_python_canonicalises_lower_case_keys(daemon):
    # The client sends lower-case names; the function still sees `Lab`.
    daemon.ensure("show-headers", "showheaders")
    r = daemon.call("showheaders", method="GET", headers={"lab": "y", "x-custom-thing": "z"})
    assert r.status == 200, r.text
    headers = json.loads(r.body)
    assert headers.get("Lab") == "y", headers
    assert headers.get("X-Custom-Thing") == "z", headers


def test_show_headers_js_gets_lower_case_keys(daemon):
    daemon.ensure("show-headers-js", "showheadersjs")
    r = daemon.call("showheadersjs", method="GET", headers={"Lab": "x", "User-Agent": "tinyfaas-e2e/1"})
    assert r.status == 200, r.text
    headers = json.loads(r.body)
    assert headers.get("lab") == "x", headers
    assert headers.get("user-agent") == "tinyfaas-e2e/1", headers


@pytest.mark.parametrize("size", [4096, 100 * 1024], ids=["4KiB", "100KiB"])
@pytest.mark.parametrize("key,name", ECHOS, ids=[k for k, _ in ECHOS])
def test_large_request_body(daemon, key, name, size):
    daemon.ensure(key, name)
    payload = ascii_payload(size, size)
    r = daemon.call(name, payload)
    assert r.status == 200, r.text[:200]
    assert len(r.body) == size
    assert r.body == payload


@pytest.mark.parametrize("size", [4096, 100 * 1024], ids=["4KiB", "100KiB"])
def test_large_response_body(daemon, size):
    daemon.ensure("big")
    r = daemon.call("big", str(size).encode())
    assert r.status == 200, r.text[:200]
    assert r.body == b"x" * size


def test_unknown_function_is_404(daemon):
    r = daemon.call("doesnotexist", b"hi")
    assert r.status == 404, (r.status, r.text)
    r = daemon.call("doesnotexist", method="GET")
    assert r.status == 404, (r.status, r.text)


@pytest.mark.parametrize("key", ["fail", "failjs"])
def test_function_error_is_500_with_short_reason(daemon, key):
    daemon.ensure(key)
    r = daemon.call(key, b"anything")
    assert r.status == 500, (r.status, r.text)
    assert 0 < len(r.body.strip()) <= 512, f"reason should be short and non-empty: {r.body!r}"
    # The daemon and the function keep serving after an error.
    r2 = daemon.call(key, b"again")
    assert r2.status == 500
    daemon.ensure("echo")
    assert daemon.call("echo", b"still here").body == b"still here"


def test_async_call_answers_202_before_the_function_finishes(make_daemon):
    d = make_daemon()
    d.deploy("sleep")
    t0 = time.monotonic()
    r = d.call("sleep", b"2", headers={"X-tinyFaaS-Async": "true"})
    answered = time.monotonic() - t0
    assert r.status == 202, (r.status, r.text)
    assert answered < 1.5, f"async call took {answered:.2f}s to answer; the function sleeps 2s"
    # The function's own log line says when it finished.
    assert "slept 2.0s" not in d.mgmt("GET", "/logs?name=sleep").text
    wait_until(lambda: "slept 2.0s" in d.mgmt("GET", "/logs?name=sleep").text, 15,
               what="the async call to finish (its line in /logs)")
    finished = time.monotonic() - t0
    assert finished >= 1.9, f"the function finished after {finished:.2f}s, before its 2s sleep ended"


def test_async_header_any_value(daemon, workdir):
    # DESIGN: `X-tinyFaaS-Async: <any>` answers 202.
    daemon.ensure("echo")
    r = daemon.call("echo", b"x", headers={"X-tinyFaaS-Async": "yes"})
    assert r.status == 202, (r.status, r.text)


def test_request_body_limit_is_413(make_daemon):
    d = make_daemon(extra_args=["--max-body-bytes", "8192"])
    d.ensure("echo")
    ok = b"a" * 8000
    r = d.call("echo", ok)
    assert (r.status, r.body) == (200, ok)
    r = d.call("echo", b"a" * 9000)
    assert r.status == 413, (r.status, r.text[:200])
    r = d.call("echo", b"a" * 200_000)
    assert r.status == 413, (r.status, r.text[:200])
    # Still serving afterwards.
    assert d.call("echo", b"after").body == b"after"
