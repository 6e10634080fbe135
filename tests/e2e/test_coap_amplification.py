"""CoAP amplification (issue 12, finding 13).

UDP source addresses can be forged. Before, a 9-byte request got a 259-byte
answer (and a function's whole output) sent to whatever address it claimed.
Now a source that has not proven it receives what is sent to its address
gets at most three times its request back: a large answer comes in small
blocks (RFC 7959) that libcoap's coap-client and aiocoap fetch on their own;
a client that returns the RFC 9175 Echo value it was given has proven its
address and gets full-size answers."""

# e2e: both backends

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from conftest import zip_entries_b64

KIB = b"x" * 1024
FN = 'def fn(input, headers):\n    return "x" * 1024\n'


@pytest.fixture(scope="module")
def kibi(daemon):
    r = daemon.upload_raw({"name": "kibi", "env": "python3", "threads": 1, "zip": zip_entries_b64([("fn.py", FN)])})
    assert r.status == 200, (r.status, r.text)
    return "kibi"


def raw_get(port: int, path: str, token: bytes = b"", options: bytes = b"") -> tuple[bytes, list[bytes]]:
    """Sends one CON GET from a fresh UDP socket; returns it and every
    datagram that came back within 2 s."""
    assert len(path) < 13 and len(token) <= 8
    request = struct.pack("!BBH", 0x40 | len(token), 0x01, 0x1234) + token
    request += bytes([(11 << 4) | len(path)]) + path.encode() + options
    answers = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2.0)
        s.sendto(request, ("127.0.0.1", port))
        try:
            for _ in range(10):
                answers.append(s.recv(65535))
        except socket.timeout:
            pass
    return request, answers


def test_a_9_byte_request_gets_at_most_27_bytes_from_an_unproven_source(daemon, kibi):
    request, answers = raw_get(daemon.cport, kibi)
    assert len(request) == 9
    assert answers, "no answer at all"
    total = sum(len(a) for a in answers)
    assert total <= 3 * len(request), f"{total} bytes back for a {len(request)}-byte request: {answers!r}"
    # 2.05 with the first 16 bytes, as a Block2 block (option 23) with more to come.
    assert answers[0][1] == (2 << 5) | 5, answers[0].hex()
    assert answers[0].endswith(b"\xff" + b"x" * 16), answers[0].hex()


def test_coap_client_still_gets_the_whole_answer(daemon, kibi):
    r = daemon.coap(kibi)
    assert (r.code, r.payload) == ("2.05", KIB), r.log[-2000:]


def test_errors_to_an_unproven_source_stay_small(daemon):
    # An unknown function is a 4.04 without its reason text.
    request, answers = raw_get(daemon.cport, "nofn")
    assert answers and sum(len(a) for a in answers) <= 3 * len(request), answers


def test_aiocoap_still_gets_the_whole_answer(daemon, kibi):
    aiocoap = pytest.importorskip("aiocoap")

    async def fetch():
        context = await aiocoap.Context.create_client_context()
        try:
            message = aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{daemon.cport}/{kibi}")
            return await asyncio.wait_for(context.request(message).response, 30)
        finally:
            await context.shutdown()

    response = asyncio.run(fetch())
    assert (str(response.code), response.payload) == ("2.05 Content", KIB)
