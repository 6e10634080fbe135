"""Durable asynchronous calls (issue 19): an accepted X-tinyFaaS-Async or
CoAP No-Response call is stored before the 202, which points at its result
(Location: /calls/ID); it is retried, dead-lettered, survives kill -9, and
its result expires. Every wait polls with a deadline."""

# e2e: both backends

import json
import os
import re
import subprocess

from conftest import (REPO, coap_client_binary, fn_dir, fn_env, http_request, one_line_reason, wait_until,
                      zip_folder_b64)
from test_auth import ADMIN, ALICE, BOB, AuthDaemon, TOKEN_FILE
from test_cli import cli

ASYNC = {"X-tinyFaaS-Async": "1"}
ID = re.compile(r"^/calls/[0-9a-f]{32}$")


def deploy(d, key, name=None, retry=None):
    folder = REPO / "tests" / "functions" / key if key == "resppy" else fn_dir(key)
    env = "python3" if key == "resppy" else fn_env(key)
    payload = {"name": name or key, "env": env, "threads": 1, "zip": zip_folder_b64(folder)}
    if retry is not None:
        payload["async"] = retry
    r = d.upload_raw(payload)
    assert r.status == 200, (r.status, r.text)
    return name or key


def accept(d, name, data=b""):
    """An asynchronous call; returns its /calls/ID."""
    r = d.call(name, data, headers=ASYNC)
    assert r.status == 202, (r.status, r.text)
    location = r.headers.get("location")
    assert location and ID.match(location), r.headers
    return location


def result(d, location):
    return http_request(d.hport, "GET", location)


def finished(d, location, deadline=30):
    """Polls GET /calls/ID until it is no longer 202; returns that answer."""
    last = {}

    def done():
        last["r"] = result(d, location)
        return last["r"].status != 202

    wait_until(done, deadline, interval=0.1, what=f"call {location} to finish")
    return last["r"]


def test_location_pending_then_the_result(make_daemon):
    d = make_daemon()
    deploy(d, "sleep")
    deploy(d, "resppy")
    location = accept(d, "sleep", b"1.5")
    pending = result(d, location)
    assert (pending.status, pending.text) in ((202, "queued\n"), (202, "running\n")), (pending.status, pending.text)
    r = finished(d, location)
    assert (r.status, r.body) == (200, b"slept")
    # The function's own status and headers, as a call that waited gets them.
    r = finished(d, accept(d, "resppy", b"tuple"))
    assert (r.status, r.body, r.headers.get("x-custom")) == (201, b"created", "yes")
    # Each call has its own id.
    assert accept(d, "sleep", b"0") != accept(d, "sleep", b"0")


def test_cli_invoke_async_prints_where_the_result_will_be(make_daemon):
    d = make_daemon()
    deploy(d, "echo")
    r = cli("invoke", "echo", "--async", "--data", "from the cli", "--port", str(d.hport), "--host", "127.0.0.1")
    assert r.returncode == 0, r.stderr
    url = r.stdout.decode().strip()
    prefix = f"http://127.0.0.1:{d.hport}"
    assert url.startswith(prefix) and ID.match(url[len(prefix):]), url
    done = finished(d, url[len(prefix):])
    assert (done.status, done.body) == (200, b"from the cli")


def test_unknown_and_malformed_ids_are_404(daemon):
    daemon.ensure("echo")
    for path in ("/calls/" + "0" * 32, "/calls/" + "A" * 32, "/calls/xyz", "/calls/", "/calls/" + "0" * 33,
                 "/calls/%27%20OR%201%3D1%20--%20", "/calls/../echo"):
        r = http_request(daemon.hport, "GET", path)
        assert r.status == 404, (path, r.status, r.text)
    r = daemon.call("nosuchfunction", b"x", headers=ASYNC)
    assert r.status == 404 and "location" not in r.headers, (r.status, r.headers)


def test_failed_after_retries_is_dead_lettered_and_logged(make_daemon):
    d = make_daemon()
    deploy(d, "fail", retry={"retries": 2, "backoff_ms": 50})
    fn = d.mgmt("GET", "/functions/fail")
    assert fn.status == 200 and '"async":{"backoff_ms":50,"retries":2}' in fn.text, fn.text
    location = accept(d, "fail", b"x")
    r = finished(d, location)
    assert r.status == 500, (r.status, r.text)
    call_id = location.rsplit("/", 1)[1]
    logs = d.mgmt("GET", "/logs?name=fail").text
    for attempt in (1, 2, 3):
        assert f"asynchronous call {call_id}: attempt {attempt} of 3 failed" in logs, logs
    assert "retrying in 50 ms" in logs and "retrying in 100 ms" in logs and "dead-lettered" in logs, logs
    listed = d.mgmt("GET", "/calls?name=fail&state=failed")
    assert listed.status == 200, (listed.status, listed.text)
    calls = json.loads(listed.text)
    assert [c["id"] for c in calls] == [call_id], calls
    assert calls[0]["state"] == "failed" and calls[0]["failures"] == 3, calls
    assert d.mgmt("GET", "/calls?name=fail&state=queued").text == "[]\n"
    metrics = d.mgmt("GET", "/metrics").text
    assert 'tinyfaas_async_calls_dead_lettered_total{function="fail"} 1' in metrics, metrics
    # Bad listings and bad policies are 400s with a reason.
    assert d.mgmt("GET", "/calls?name=fail&state=lost").status == 400
    assert d.mgmt("GET", "/calls").status == 400
    assert d.mgmt("GET", "/calls?name=ghost").status == 404
    bad = d.upload_raw({"name": "bad", "env": "python3", "threads": 1, "zip": zip_folder_b64(fn_dir("fail")),
                        "async": {"retries": -1}})
    assert bad.status == 400 and one_line_reason(bad.body) == "retries must be an integer between 0 and 100, got -1"


def test_calls_queued_at_kill_9_all_run_after_the_restart(make_daemon):
    # One call at a time: most of them are still queued when the daemon dies.
    d = make_daemon(extra_args=["--async-max-calls", "1"])
    deploy(d, "sleep")
    locations = [accept(d, "sleep", b"0.5") for _ in range(6)]
    d.kill_hard()
    back = make_daemon(state_dir=d.state_dir, extra_args=["--async-max-calls", "1"])
    for location in locations:
        r = finished(back, location, deadline=60)
        assert (r.status, r.body) == (200, b"slept"), (location, r.status, r.text)


def test_results_expire_after_the_retention(make_daemon):
    d = make_daemon(extra_args=["--async-retention", "1"])
    deploy(d, "echo")
    location = accept(d, "echo", b"kept a while")
    r = finished(d, location)
    assert (r.status, r.body) == (200, b"kept a while")
    wait_until(lambda: result(d, location).status == 404, 10, interval=0.1, what="the result to expire")


def test_queue_limit_is_503_with_a_reason(make_daemon):
    d = make_daemon(extra_args=["--async-queue-limit", "2", "--async-max-calls", "1"])
    deploy(d, "sleep")
    first = accept(d, "sleep", b"2")
    accept(d, "sleep", b"2")
    r = d.call("sleep", b"2", headers=ASYNC)
    assert r.status == 503, (r.status, r.text)
    assert one_line_reason(r.body) == "the asynchronous queue of sleep is full (2 calls waiting); try again later"
    # Finished calls make room.
    finished(d, first)
    wait_until(lambda: d.call("sleep", b"0", headers=ASYNC).status == 202, 20, what="a call to be accepted again")


def test_store_cap_is_503(make_daemon):
    d = make_daemon(extra_args=["--async-store-bytes", "2000"])
    deploy(d, "echo")
    r = d.call("echo", b"x" * 4000, headers=ASYNC)
    assert r.status == 503, (r.status, r.text)
    assert one_line_reason(r.body) == "the asynchronous call store is full (2000 bytes); try again later"
    accept(d, "echo", b"small")


def test_deleting_a_function_drops_its_calls(make_daemon):
    d = make_daemon(extra_args=["--async-max-calls", "1"])
    deploy(d, "sleep")
    accept(d, "sleep", b"3")
    queued = accept(d, "sleep", b"0")
    assert d.mgmt("POST", "/delete", {"name": "sleep"}).status == 200
    assert result(d, queued).status == 404


def test_coap_no_response_calls_are_stored_and_run(make_daemon, workdir):
    d = make_daemon()
    deploy(d, "echo")
    payload = os.path.join(workdir, "in")
    with open(payload, "w") as f:
        f.write("over coap")
    # CON with No-Response for 2.xx: the ACK comes once the call is stored.
    r = subprocess.run(
        [coap_client_binary(), "-v", "6", "-B", "5", "-m", "post", "-O", "258,0x02", "-f", payload,
         f"coap://127.0.0.1:{d.cport}/echo"], capture_output=True, timeout=30)
    log = r.stdout.decode("utf-8", "replace")
    assert "2.05" not in log, log

    def done():
        listed = d.mgmt("GET", "/calls?name=echo&state=done")
        return listed.status == 200 and '"state":"done"' in listed.text

    wait_until(done, 20, interval=0.1, what="the CoAP call to be stored and run")


def test_tenants_see_only_their_own_functions_calls(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN_FILE)
    os.chmod(tokens, 0o600)
    d = AuthDaemon(extra_args=["--token-file", str(tokens)])
    try:
        up = d.mgmt("POST", "/upload", {"name": "mine", "env": "python3", "threads": 1,
                                        "zip": zip_folder_b64(fn_dir("fail")), "async": {"retries": 0}},
                    timeout=300, token=ALICE)
        assert up.status == 200, up.text
        location = accept(d, "mine", b"x")
        assert finished(d, location).status == 500
        own = d.mgmt("GET", "/calls?name=mine&state=failed", token=ALICE)
        assert own.status == 200 and location.rsplit("/", 1)[1] in own.text, own.text
        other = d.mgmt("GET", "/calls?name=mine&state=failed", token=BOB)
        assert other.status == 404 and location.rsplit("/", 1)[1] not in other.text, other.text
        assert d.mgmt("GET", "/calls?name=mine", token=ADMIN).status == 200
        assert d.mgmt("GET", "/calls?name=mine", token=None).status == 401
    finally:
        d.stop()
        d.cleanup()
