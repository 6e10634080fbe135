"""The response contract (issue 14 item 1, README "Writing functions"): what
a function answers -- status, headers, JSON, return values, errors -- reaches
HTTP (http.client, curl), CoAP (coap-client) and gRPC (grpcio) clients, and
a hostile function cannot frame the client's connection with its headers."""

# e2e: both backends

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO, Daemon, http_request, zip_entries_b64, zip_folder_b64
from test_grpc import describe, grpc

GO_MOD = b"module fn\n\ngo 1.19\n"


@pytest.fixture(scope="module")
def daemon():
    """This module's daemon, with gRPC on, and its functions deployed once."""
    d = Daemon(grpc_port=0)
    try:
        for name, env in (("respjs", "nodejs"), ("noresjs", "nodejs"), ("resppy", "python3")):
            payload = {"name": name, "env": env, "threads": 1,
                       "zip": zip_folder_b64(REPO / "tests" / "functions" / name)}
            r = d.upload_raw(payload)
            assert r.status == 200, f"deploy {name}: {r.status} {r.text}"
        yield d
    finally:
        try:
            d.stop()
        finally:
            d.cleanup()


def curl(d: Daemon, name: str, data: str) -> tuple[int, dict, bytes]:
    """One call with curl; status, headers (lower-case names, repeats joined by \\n) and body."""
    r = subprocess.run(["curl", "-sS", "-i", "--max-time", "30", "--data-binary", data,
                        f"http://127.0.0.1:{d.hport}/{name}"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        headers[k] = headers[k] + "\n" + v.strip() if k in headers else v.strip()
    return int(lines[0].split()[1]), headers, body


# -- HTTP ---------------------------------------------------------------------


def test_get_root_says_to_call_a_function_by_name(daemon):
    r = http_request(daemon.hport, "GET", "/")
    assert r.status == 404
    assert "call a function at /NAME" in r.text, r.text


def test_nodejs_status_and_custom_header_reach_curl(daemon):
    status, headers, body = curl(daemon, "respjs", "status")
    assert (status, body) == (201, b"created")
    assert headers.get("x-custom") == "yes", headers


@pytest.mark.parametrize("case,status,body", [("notfound", 404, b"no such thing"),
                                              ("unavailable", 503, b"come back later")])
def test_nodejs_chosen_error_status_and_body_pass_through(daemon, case, status, body):
    r = daemon.call("respjs", case)
    assert (r.status, r.body) == (status, body)
    if case == "unavailable":
        assert r.headers.get("retry-after") == "7", r.headers


@pytest.mark.parametrize("case,body", [("json", b'{"a":1}'), ("type", b'{"b":2}')])
def test_nodejs_json_comes_with_its_content_type(daemon, case, body):
    r = daemon.call("respjs", case)
    assert (r.status, r.body) == (200, body)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers


def test_nodejs_set_cookie_is_the_functions_business(daemon):
    status, headers, body = curl(daemon, "respjs", "cookies")
    assert status == 200
    assert headers.get("set-cookie") == "a=1\nb=2", headers


@pytest.mark.parametrize("case,status,body,ctype", [
    ("return", 200, b"returned", "text/plain"),
    ("returnobject", 202, b'{"queued":true}', "application/json"),
    ("promise", 200, b"promised", "text/plain"),
    ("promisestatus", 204, b"", None),
    ("callback", 200, b"called back", "text/html"),
])
def test_nodejs_return_values_and_promises_answer(daemon, case, status, body, ctype):
    r = daemon.call("respjs", case, timeout=20)
    assert (r.status, r.body) == (status, body), r.text
    if ctype:
        assert r.headers.get("content-type", "").startswith(ctype), r.headers
    assert r.elapsed < 10


@pytest.mark.parametrize("case,reason", [("throw", "it broke"), ("reject", "it was rejected")])
def test_nodejs_thrown_error_and_rejected_promise_are_500_with_the_message(daemon, case, reason):
    r = daemon.call("respjs", case)
    assert (r.status, r.text) == (500, reason)


def test_nodejs_function_without_res_answers_its_return_value_or_an_empty_200(daemon):
    r = daemon.call("noresjs", "object")
    assert (r.status, r.body) == (200, b'{"from":"return"}')
    r = daemon.call("noresjs", "nothing", timeout=20)
    assert (r.status, r.body) == (200, b"")
    assert r.elapsed < 10


@pytest.mark.parametrize("case,status,body,ctype", [
    ("dict", 200, b'{"a": 1}', "application/json"),
    ("list", 200, b'[1, "two"]', "application/json"),
    ("jsontype", 200, b'{"c":3}', "application/json"),
    ("bytes", 200, b"\x00\x01\xff", "application/octet-stream"),
    ("none", 200, b"", None),
    ("tuple2", 404, b"no such thing", "text/plain"),
    ("other", 200, b"plain other", "text/plain"),
])
def test_python_results_answer_as_documented(daemon, case, status, body, ctype):
    r = daemon.call("resppy", case)
    assert (r.status, r.body) == (status, body)
    if ctype:
        assert r.headers.get("content-type", "").startswith(ctype), r.headers


def test_python_tuple_sets_status_and_headers(daemon):
    status, headers, body = curl(daemon, "resppy", "tuple")
    assert (status, body) == (201, b"created")
    assert headers.get("x-custom") == "yes", headers


@pytest.mark.parametrize("case,reason", [
    ("raise", "bad input"),
    ("badstatus", "fn returned status 101; a status is an int from 200 to 599"),
    ("badtuple", "fn returned a tuple of 4 items; return (body, status) or (body, status, headers)"),
])
def test_python_errors_are_500_with_the_reason(daemon, case, reason):
    r = daemon.call("resppy", case)
    assert (r.status, r.text) == (500, reason)


# -- hostile functions --------------------------------------------------------


@pytest.mark.parametrize("name", ["respjs", "resppy"])
def test_hostile_headers_cannot_frame_or_inject(daemon, name):
    status, headers, body = curl(daemon, name, "hostile")
    assert (status, body) == (200, b"still framed")
    assert "injected" not in headers, headers
    assert headers.get("x-evil") == "aInjected: yes", headers
    assert headers.get("content-length") == str(len(b"still framed")), headers
    assert "transfer-encoding" not in headers and "upgrade" not in headers, headers
    assert headers.get("connection", "keep-alive").lower() != "close", headers


def test_status_101_is_refused_and_the_connection_stays_http(daemon):
    r = daemon.call("respjs", "switch")
    assert r.status == 500
    assert r.text == "function answered status 101; a function may answer 200 to 599\n"
    assert "upgrade" not in r.headers


@pytest.mark.parametrize("case", ["bigheaders", "manyheaders"])
def test_too_many_or_too_large_headers_are_a_500_that_says_so(daemon, case):
    r = daemon.call("respjs", case)
    assert (r.status, r.text) == (500, "function response headers exceed the limit (64 headers, 16 KiB)\n")
    assert daemon.call("respjs", "return").status == 200


def test_a_functions_4xx_is_not_counted_as_a_failure(daemon):
    before = daemon.mgmt("GET", "/metrics").text
    assert daemon.call("respjs", "notfound").status == 404
    after = daemon.mgmt("GET", "/metrics").text

    def total(text, family):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(family + "{") and 'function="respjs"' in line)
    assert total(after, "tinyfaas_calls_total") == total(before, "tinyfaas_calls_total") + 1, after
    assert total(after, "tinyfaas_call_errors_total") == total(before, "tinyfaas_call_errors_total"), after


# -- CoAP -----------------------------------------------------------------------


@pytest.mark.parametrize("name,case,code", [
    ("respjs", "status", "2.01"),
    ("respjs", "return", "2.05"),
    ("respjs", "notfound", "4.04"),
    ("respjs", "unavailable", "5.03"),
    ("respjs", "throw", "5.00"),
    ("resppy", "tuple2", "4.04"),
    ("resppy", "dict", "2.05"),
])
def test_coap_maps_the_functions_status(daemon, name, case, code):
    r = daemon.coap(name, case, method="post")
    assert r.code == code, r.log


@pytest.mark.parametrize("name,case,fmt", [("respjs", "json", "application/json"),
                                           ("resppy", "dict", "application/json"),
                                           ("resppy", "bytes", "application/octet-stream"),
                                           ("resppy", "other", "text/plain"),
                                           ("respjs", "status", None)])  # text/html has no format
def test_coap_content_format_follows_the_content_type(daemon, name, case, fmt):
    r = daemon.coap(name, case, method="post")
    answer = ([line for line in r.log.splitlines() if " c:2." in line] or [""])[-1]
    assert r.code in ("2.05", "2.01"), r.log
    if fmt:
        assert f"Content-Format:{fmt}," in answer, r.log   # coap-client names the format
    else:
        assert "Content-Format" not in answer, r.log


# -- gRPC -----------------------------------------------------------------------


@pytest.mark.parametrize("name,case,code,text", [
    ("respjs", "status", "OK", b"created"),
    ("respjs", "json", "OK", b'{"a":1}'),
    ("respjs", "notfound", "NOT_FOUND", "no such thing"),
    ("respjs", "unavailable", "UNAVAILABLE", "come back later"),
    ("respjs", "throw", "INTERNAL", "it broke"),
    ("respjs", "reject", "INTERNAL", "it was rejected"),
    ("resppy", "tuple2", "NOT_FOUND", "no such thing"),
    ("resppy", "dict", "OK", b'{"a": 1}'),
])
def test_grpc_keeps_the_message_and_maps_non_2xx_to_a_status(daemon, name, case, code, text):
    r = grpc(daemon, name, case)
    assert r.code == code, describe(r)
    if code == "OK":
        assert r.response == text, describe(r)
    else:
        assert r.details == text, describe(r)


# -- go and binary --------------------------------------------------------------


def test_go_coded_error_chooses_status_and_headers_over_http_coap_and_grpc(daemon):
    fn = b"""package main

import "errors"

type answer struct{ status int }

func (a answer) Error() string              { return "teapot here" }
func (a answer) StatusCode() int            { return a.status }
func (a answer) Header() map[string]string  { return map[string]string{"X-Pot": "tea"} }

func fn(data string, headers map[string]string) (string, error) {
	switch data {
	case "teapot":
		return "", answer{418}
	case "missing":
		return "", answer{404}
	case "fail":
		return "", errors.New("plain failure")
	}
	return "hello " + data, nil
}
"""
    r = daemon.upload_raw({"name": "respgo", "env": "go", "threads": 1,
                           "zip": zip_entries_b64([("go.mod", GO_MOD), ("fn.go", fn)])})
    assert r.status == 200, r.text
    status, headers, body = curl(daemon, "respgo", "teapot")
    assert (status, body, headers.get("x-pot")) == (418, b"teapot here", "tea"), headers
    r = daemon.call("respgo", "fail")
    assert (r.status, r.text) == (500, "plain failure")
    r = daemon.call("respgo", "go")
    assert (r.status, r.body) == (200, b"hello go")
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    assert daemon.coap("respgo", "missing", method="post").code == "4.04"
    g = grpc(daemon, "respgo", "missing")
    assert (g.code, g.details) == ("NOT_FOUND", "teapot here"), describe(g)


def test_binary_output_is_200_and_failure_500_as_upstream(daemon):
    fn = b"#!/bin/sh\nread line\n[ \"$line\" = fail ] && { echo 'no luck' >&2; exit 3; }\necho \"got $line\"\n"
    r = daemon.upload_raw({"name": "respbin", "env": "binary", "threads": 1,
                           "zip": zip_entries_b64([("fn.sh", fn)])})
    assert r.status == 200, r.text
    r = daemon.call("respbin", "x\n")
    assert (r.status, r.body) == (200, b"got x\n")
    assert daemon.call("respbin", "fail\n").status == 500
