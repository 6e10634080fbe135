"""GET /functions and /functions/NAME: what the operator sees per function."""

import json
import re
import time

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def get_json(d, path, status=200):
    r = d.mgmt("GET", path)
    assert r.status == status, (path, r.status, r.text)
    assert r.headers["content-type"] == "application/json", r.headers
    return json.loads(r.body)


def test_list_and_one_function(daemon):
    daemon.ensure("env", threads=2, envs=["GREETING=secret-value", "OTHER=1"])
    daemon.ensure("sieve")
    all_fns = get_json(daemon, "/functions")
    assert isinstance(all_fns, list)
    by_name = {f["name"]: f for f in all_fns}
    assert set(by_name) == set(daemon.list_names())

    env = get_json(daemon, "/functions/env")
    assert env == by_name["env"] or env["name"] == "env"
    assert env["runtime"] == "python3"
    assert {k: env["instances"][k] for k in ("desired", "healthy", "reason")} == {
        "desired": 2, "healthy": 2, "reason": "fixed"}, env["instances"]
    assert env["scaling"] is None
    assert sorted(env["env"]) == ["GREETING", "OTHER"]
    # Names only: the values never leave the node through this API.
    assert "secret-value" not in json.dumps(all_fns)
    assert env["limits"]["memory_mb"] > 0 and env["limits"]["cpus"] > 0 and env["limits"]["egress"] is False
    assert ISO.match(env["created"]) and ISO.match(env["updated"]), env
    assert by_name["sieve"]["runtime"] == "nodejs"


def test_reports_what_the_instances_measurably_use(daemon):
    # PSS of each healthy instance's processes (sandbox helpers included),
    # measured every 5 s: the figure the memory_mb limit is compared with.
    daemon.ensure("echo-js", name="measured", threads=2)
    deadline = time.monotonic() + 30
    while True:
        used = get_json(daemon, "/functions/measured")["instances"]["memory_bytes"]
        if used is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert used is not None, "no measurement within 30 s"
    # Two node processes: more than a few MB, far less than their limits.
    limit = get_json(daemon, "/functions/measured")["limits"]["memory_mb"] << 20
    assert 4 << 20 < used < 2 * limit, used
    metrics = daemon.mgmt("GET", "/metrics").text
    sample = re.search(r'^tinyfaas_function_memory_bytes\{function="measured"\} (\d+)$', metrics, re.M)
    assert sample and int(sample.group(1)) > 4 << 20, metrics[-2000:]


def test_counts_and_latency_follow_calls(daemon):
    daemon.ensure("fail")
    before = get_json(daemon, "/functions/fail")
    for _ in range(4):
        assert daemon.call("fail", "x").status == 500
    assert daemon.coap("fail", b"x", method="post").code == "5.00"
    after = get_json(daemon, "/functions/fail")
    assert after["calls"] - before["calls"] == 5
    assert after["errors"] - before["errors"] == 5
    assert after["protocols"]["coap"]["calls"] - before["protocols"]["coap"]["calls"] == 1
    p50, p99 = after["latency_ms"]["p50"], after["latency_ms"]["p99"]
    assert 0 < p50 <= p99 < 60_000, after["latency_ms"]


def test_new_function_has_no_latency_yet(daemon):
    daemon.ensure("echo-js", name="echojs")
    f = get_json(daemon, "/functions/echojs")
    assert f["calls"] == 0 and f["errors"] == 0
    assert f["latency_ms"] == {"p50": None, "p99": None}


def test_redeploy_keeps_created_and_moves_updated(daemon):
    daemon.deploy("echo", "redeployed")
    first = get_json(daemon, "/functions/redeployed")
    time.sleep(1.1)
    daemon.deploy("echo", "redeployed", threads=2)
    second = get_json(daemon, "/functions/redeployed")
    assert second["created"] == first["created"]
    assert second["updated"] > first["updated"]
    assert second["instances"]["desired"] == 2


def test_unknown_and_bad_names(daemon):
    body = get_json(daemon, "/functions/nosuchfunction", status=404)
    assert body == {"error": "function nosuchfunction not found"}
    body = get_json(daemon, "/functions/bad-name-", status=400)
    assert "letters, digits and -" in body["error"]
    r = daemon.mgmt("POST", "/functions", b"{}")
    assert r.status == 405
