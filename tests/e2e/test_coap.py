"""Function calls over CoAP with libcoap's coap-client: exact payloads,
response codes, NON messages and block-wise transfer (RFC 7959)."""

# e2e: both backends

import random

import pytest

from conftest import SIEVE_ANSWER

ECHOS = [("echo", "echo"), ("echo-js", "echojs"), ("echo-binary", "echobinary")]


def ascii_payload(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    return bytes(rnd.randrange(33, 127) for _ in range(n))


def describe(r) -> str:
    return f"code={r.code} payload={r.payload[:80]!r}\nstderr={r.stderr[-500:]}\nlog tail:\n{r.log[-1500:]}"


def test_sieve_answers_exactly(daemon):
    daemon.ensure("sieve")
    r = daemon.coap("sieve")
    assert (r.code, r.payload) == ("2.05", SIEVE_ANSWER), describe(r)
    r = daemon.coap("sieve", method="post")
    assert (r.code, r.payload) == ("2.05", SIEVE_ANSWER), describe(r)


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("key,name", ECHOS, ids=[k for k, _ in ECHOS])
def test_echo_round_trip(daemon, key, name, method):
    daemon.ensure(key, name)
    r = daemon.coap(name, b"Hello World!", method=method)
    assert (r.code, r.payload) == ("2.05", b"Hello World!"), describe(r)


@pytest.mark.parametrize("key,name", ECHOS, ids=[k for k, _ in ECHOS])
def test_non_confirmable_request(daemon, key, name):
    daemon.ensure(key, name)
    r = daemon.coap(name, b"non-confirmable", method="post", non=True)
    assert (r.code, r.payload) == ("2.05", b"non-confirmable"), describe(r)


def test_unknown_function_is_404(daemon):
    r = daemon.coap("doesnotexist", b"hi")
    assert r.code == "4.04", describe(r)


@pytest.mark.parametrize("key", ["fail", "failjs"])
def test_function_error_is_500(daemon, key):
    daemon.ensure(key)
    r = daemon.coap(key, b"anything", method="post")
    assert r.code == "5.00", describe(r)
    daemon.ensure("echo")
    r = daemon.coap("echo", b"still here", method="post")
    assert (r.code, r.payload) == ("2.05", b"still here"), describe(r)


@pytest.mark.parametrize("size", [4096, 100 * 1024], ids=["4KiB", "100KiB"])
@pytest.mark.parametrize("key,name", ECHOS, ids=[k for k, _ in ECHOS])
def test_blockwise_request_and_response(daemon, key, name, size):
    # The request goes out in 1 KiB Block1 blocks; the echoed answer comes
    # back in Block2 blocks.
    daemon.ensure(key, name)
    payload = ascii_payload(size, size + 1)
    r = daemon.coap(name, payload, method="post", block=1024, timeout=60)
    assert r.code == "2.05", describe(r)
    assert len(r.payload) == size, describe(r)
    assert r.payload == payload


@pytest.mark.parametrize("size", [4096, 100 * 1024], ids=["4KiB", "100KiB"])
def test_blockwise_response_only(daemon, size):
    daemon.ensure("big")
    r = daemon.coap("big", str(size).encode(), method="post", timeout=60)
    assert r.code == "2.05", describe(r)
    assert r.payload == b"x" * size, describe(r)


def test_blockwise_response_with_small_block_size(daemon):
    daemon.ensure("big")
    r = daemon.coap("big", b"5000", method="post", block=256, timeout=60)
    assert r.code == "2.05", describe(r)
    assert r.payload == b"x" * 5000, describe(r)


@pytest.mark.parametrize("key,name", [("show-headers", "showheaders"), ("show-headers-js", "showheadersjs")])
def test_show_headers_over_coap_is_a_json_object(daemon, key, name):
    # CoAP carries no HTTP headers; the function still runs and gets a dict.
    import json
    daemon.ensure(key, name)
    r = daemon.coap(name)
    assert r.code == "2.05", describe(r)
    assert isinstance(json.loads(r.payload), dict), describe(r)
