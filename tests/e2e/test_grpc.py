"""Function calls over gRPC with an independent client: grpc-python (Debian's
python3-grpcio) with upstream's two messages encoded by hand, so there is no
generated code and no protoc step at test time.

The client runs as a subprocess (CLIENT below) under an interpreter that can
`import grpc`: pytest may run under a pyenv or venv Python that does not see
Debian's python3-grpcio, while /usr/bin/python3 does. Set
$TINYFAAS_GRPC_PYTHON to choose another one.
"""

# e2e: both backends

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from typing import Optional

import pytest

from conftest import SIEVE_ANSWER, Daemon, listening_ports, mapped_files

# Reads {"target", "parallel", "calls": [{"name", "data" (base64), "metadata",
# "timeout", "after"}]} on stdin and prints one result per call as JSON.
CLIENT = r'''
import base64, json, sys, time
from concurrent.futures import ThreadPoolExecutor
import grpc

METHOD = "/openfogstack.tinyfaas.tinyfaas.TinyFaaS/Request"

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field(number, value):
    # proto3 leaves out empty strings
    return b"" if not value else varint(number << 3 | 2) + varint(len(value)) + value

def read_varint(raw, i):
    n = shift = 0
    while True:
        b = raw[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i

def decode_response(raw):
    i, out = 0, b""
    while i < len(raw):
        key, i = read_varint(raw, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = read_varint(raw, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = read_varint(raw, i)
            if number == 1:
                out = raw[i:i + length]
            i += length
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return out

spec = json.load(sys.stdin)
channel = grpc.insecure_channel(spec["target"])
request = channel.unary_unary(METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)
t0 = time.monotonic()

def one(c):
    if c.get("after"):
        time.sleep(c["after"])
    start = time.monotonic() - t0
    message = field(1, c["name"].encode()) + field(2, base64.b64decode(c["data"]))
    result = {"code": "OK", "details": "", "response": ""}
    try:
        raw = request(message, metadata=[tuple(m) for m in c.get("metadata", [])], timeout=c.get("timeout", 60))
        result["response"] = base64.b64encode(decode_response(raw)).decode()
    except grpc.RpcError as e:
        result["code"] = e.code().name
        result["details"] = e.details() or ""
    result["start"] = start
    result["end"] = time.monotonic() - t0
    return result

calls = spec["calls"]
if spec.get("parallel"):
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(one, calls))
else:
    results = [one(c) for c in calls]
json.dump(results, sys.stdout)
'''


@functools.lru_cache(maxsize=1)
def grpc_python() -> str:
    candidates = [os.environ.get("TINYFAAS_GRPC_PYTHON"), sys.executable, "/usr/bin/python3", shutil.which("python3")]
    for python in candidates:
        if python and os.path.exists(python):
            r = subprocess.run([python, "-c", "import grpc"], capture_output=True, timeout=60)
            if r.returncode == 0:
                return python
    pytest.fail("no Python interpreter here can `import grpc` (Debian: apt-get install python3-grpcio; "
                "or set TINYFAAS_GRPC_PYTHON)", pytrace=False)


@dataclasses.dataclass
class GrpcResult:
    code: str  # grpc.StatusCode name, e.g. "OK", "NOT_FOUND"
    details: str
    response: bytes
    start: float  # seconds since the client started, when the call was sent
    end: float


def grpc_calls(port: int, calls: list[dict], parallel: bool = False, timeout: float = 120.0,
               target: Optional[str] = None) -> list[GrpcResult]:
    """Runs `calls` ({"name", "data": bytes|str, "metadata": [(k, v)], "timeout", "after"})
    against 127.0.0.1:port in one client process."""
    wire = []
    for c in calls:
        data = c.get("data", b"")
        if isinstance(data, str):
            data = data.encode()
        wire.append({**c, "data": base64.b64encode(data).decode()})
    spec = {"target": target or f"127.0.0.1:{port}", "parallel": parallel, "calls": wire}
    r = subprocess.run([grpc_python(), "-c", CLIENT], input=json.dumps(spec).encode(), capture_output=True,
                       timeout=timeout)
    assert r.returncode == 0, f"gRPC client failed ({r.returncode}): {r.stderr.decode('utf-8', 'replace')[-2000:]}"
    return [GrpcResult(x["code"], x["details"], base64.b64decode(x["response"]), x["start"], x["end"])
            for x in json.loads(r.stdout)]


def describe(r: GrpcResult) -> str:
    return f"code={r.code} details={r.details!r} response={r.response[:200]!r}"


def grpc(d: Daemon, name: str, data: bytes | str = b"", metadata: Optional[list] = None,
         timeout: float = 60.0) -> GrpcResult:
    """One call to daemon `d`'s gRPC endpoint."""
    return grpc_calls(d.gport, [{"name": name, "data": data, "metadata": metadata or [], "timeout": timeout}])[0]


@pytest.fixture(scope="module")
def daemon():
    """This module's shared daemon, with gRPC on (conftest's has it off)."""
    d = Daemon(grpc_port=0)
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


# --------------------------------------------------------------------------


def test_listens_on_the_grpc_port_and_upload_names_it(daemon):
    assert daemon.gport in listening_ports(daemon.proc.pid)["tcp"]
    # deploy() checks that the reply lists grpc://127.0.0.1:PORT/echo too.
    daemon.ensure("echo")


def test_sieve_answers_exactly(daemon):
    daemon.ensure("sieve")
    r = grpc(daemon, "sieve")
    assert (r.code, r.response) == ("OK", SIEVE_ANSWER), describe(r)


@pytest.mark.parametrize("data", [
    b"hello",
    "gr\u00fc\u00dfe \u2713 \U0001F600".encode(),
    b"line one\nline two\r\n\ttabbed",
    bytes(range(32, 127)) * 1000,
], ids=["ascii", "unicode", "whitespace", "95KB"])
def test_echo_returns_the_input_exactly(daemon, data):
    daemon.ensure("echo")
    r = grpc(daemon, "echo", data)
    assert (r.code, r.response) == ("OK", data), describe(r)


def test_empty_input_gives_an_empty_response(daemon):
    daemon.ensure("echo")
    r = grpc(daemon, "echo", b"")
    assert (r.code, r.response) == ("OK", b""), describe(r)


def test_show_headers_python_gets_canonical_metadata(daemon):
    daemon.ensure("show-headers", "showheaders")
    r = grpc(daemon, "showheaders", metadata=[("lab", "x"), ("x-custom-thing", "z")])
    assert r.code == "OK", describe(r)
    headers = json.loads(r.response)
    assert headers.get("Lab") == "x", headers
    assert headers.get("X-Custom-Thing") == "z", headers
    assert headers.get("User-Agent", "").startswith("grpc-python"), headers
    for key in headers:
        assert not key.startswith(":") and not key.lower().startswith("grpc-"), headers
        assert key not in ("Content-Type", "Te"), headers


def test_show_headers_js_gets_lower_case_metadata(daemon):
    daemon.ensure("show-headers-js", "showheadersjs")
    r = grpc(daemon, "showheadersjs", metadata=[("lab", "x")])
    assert r.code == "OK", describe(r)
    headers = json.loads(r.response)
    assert headers.get("lab") == "x", headers
    assert headers.get("user-agent", "").startswith("grpc-python"), headers


@pytest.mark.parametrize("name", ["doesnotexist", "no-such-fn", ""])
def test_unknown_function_is_not_found(daemon, name):
    r = grpc(daemon, name, b"hi")
    assert r.code == "NOT_FOUND", describe(r)
    assert r.details == f"function {name} not found", describe(r)


def test_function_error_is_internal_with_the_reason(daemon):
    daemon.ensure("fail")
    r = grpc(daemon, "fail", b"anything")
    assert r.code == "INTERNAL", describe(r)
    assert "boom" in r.details, describe(r)
    # The daemon and the function keep serving.
    assert grpc(daemon, "fail", b"again").code == "INTERNAL"
    daemon.ensure("echo")
    r = grpc(daemon, "echo", b"still here")
    assert (r.code, r.response) == ("OK", b"still here"), describe(r)


def test_request_that_is_not_utf8_is_invalid_argument(daemon):
    # Data.data is a proto3 string; only a hand-encoded client can send this.
    daemon.ensure("echo")
    r = grpc(daemon, "echo", b"\xff\xfe")
    assert r.code == "INVALID_ARGUMENT", describe(r)
    assert grpc(daemon, "echo", b"ok").response == b"ok"


def test_100_parallel_calls_to_sieve(daemon):
    daemon.ensure("sieve", threads=2)
    results = grpc_calls(daemon.gport, [{"name": "sieve"}] * 100, parallel=True)
    bad = [describe(r) for r in results if (r.code, r.response) != ("OK", SIEVE_ANSWER)]
    assert not bad, f"{len(bad)} of 100 calls failed: {bad[:5]}"


def test_slow_call_does_not_block_fast_call(daemon):
    daemon.ensure("sleep")
    daemon.ensure("echo")
    # The fast calls go out 0.3 s after the slow one (nothing to poll for
    # the slow call having arrived), on the same channel.
    slow, *fast = grpc_calls(daemon.gport, [
        {"name": "sleep", "data": "3", "timeout": 30},
        *({"name": "echo", "data": f"fast{i}", "after": 0.3} for i in range(5)),
    ], parallel=True)
    assert (slow.code, slow.response) == ("OK", b"slept"), describe(slow)
    for i, r in enumerate(fast):
        assert (r.code, r.response) == ("OK", f"fast{i}".encode()), describe(r)
        assert r.end < slow.end, f"echo answered at {r.end:.2f}s, after the 3 s sleep call ({slow.end:.2f}s)"
        assert r.end < 2.5, f"echo answered at {r.end:.2f}s, behind the 3 s sleep call"


def test_message_above_the_body_limit_is_resource_exhausted(make_daemon):
    d = make_daemon(grpc_port=0, extra_args=["--max-body-bytes", "4096"])
    d.deploy("echo")
    r = grpc(d, "echo", b"a" * 4000)
    assert (r.code, r.response) == ("OK", b"a" * 4000), describe(r)
    r = grpc(d, "echo", b"a" * 20000)
    assert r.code == "RESOURCE_EXHAUSTED", describe(r)
    r = grpc(d, "echo", b"small")
    assert (r.code, r.response) == ("OK", b"small"), describe(r)


def test_the_daemon_serves_grpc_without_grpcs_library(daemon):
    # The endpoint is nghttp2 on the data plane: gRPC's library (about 9 MB
    # resident) is only ever loaded by `tinyfaas invoke --protocol grpc`.
    daemon.deploy("echo")
    r = grpc(daemon, "echo", b"served")
    assert (r.code, r.response) == ("OK", b"served"), describe(r)
    mapped = mapped_files(daemon.proc.pid)
    assert not any("libgrpc" in f or "tinyfaas-grpc" in f for f in mapped), sorted(mapped)
    assert any("libnghttp2" in f for f in mapped), sorted(mapped)


def test_an_unknown_method_is_unimplemented(daemon):
    script = ("import grpc, sys\n"
              f"ch = grpc.insecure_channel('127.0.0.1:{daemon.gport}')\n"
              "m = ch.unary_unary('/openfogstack.tinyfaas.tinyfaas.TinyFaaS/Delete',"
              " request_serializer=lambda b: b, response_deserializer=lambda b: b)\n"
              "try:\n    m(b'', timeout=10)\nexcept grpc.RpcError as e:\n"
              "    print(e.code().name, e.details())\n")
    out = subprocess.run([grpc_python(), "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("UNIMPLEMENTED "), out.stdout + out.stderr
    assert "TinyFaaS/Delete" in out.stdout, out.stdout


def curl_h2(port: int, path: str, body: bytes, content_type: str) -> str:
    """curl over HTTP/2 without TLS (prior knowledge): a client that is not
    gRPC's. Returns curl's verbose output (response headers and trailers)."""
    r = subprocess.run(["curl", "-sv", "--http2-prior-knowledge", "--max-time", "10", "-H",
                        f"content-type: {content_type}", "--data-binary", "@-",
                        f"http://127.0.0.1:{port}{path}"], input=body, capture_output=True, timeout=60)
    return r.stderr.decode("utf-8", "replace")


def test_other_http2_clients_get_grpc_statuses(daemon):
    daemon.deploy("echo")
    message = b"\x0a\x04echo\x12\x02hi"
    prefix = b"\x00" + len(message).to_bytes(4, "big")
    path = "/openfogstack.tinyfaas.tinyfaas.TinyFaaS/Request"
    ok = curl_h2(daemon.gport, path, prefix + message, "application/grpc")
    assert "< grpc-status: 0" in ok, ok
    assert "< HTTP/2 200" in ok, ok
    # Not gRPC's content type, a compressed message, a truncated one.
    assert "< grpc-status: 12" in curl_h2(daemon.gport, path, prefix + message, "text/plain")
    compressed = curl_h2(daemon.gport, path, b"\x01" + prefix[1:] + message, "application/grpc")
    assert "< grpc-status: 12" in compressed and "compressed" in compressed, compressed
    truncated = curl_h2(daemon.gport, path, prefix + message[:-1], "application/grpc")
    assert "< grpc-status: 13" in truncated, truncated
    r = grpc(daemon, "echo", b"still serving")
    assert (r.code, r.response) == ("OK", b"still serving"), describe(r)


def test_junk_on_the_grpc_port_closes_that_connection_only(daemon):
    daemon.deploy("echo")
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096),
                 b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(512)):
        with socket.create_connection(("127.0.0.1", daemon.gport), timeout=10) as s:
            s.sendall(junk)
            s.settimeout(10)
            # The endpoint answers with a GOAWAY, if anything, and closes.
            received = b""
            while chunk := s.recv(65536):
                received += chunk
                assert len(received) < 1 << 16
    r = grpc(daemon, "echo", b"after the junk")
    assert (r.code, r.response) == ("OK", b"after the junk"), describe(r)
