"""GET /metrics on the management port: the Prometheus text format, and
counters that move as calls are made over HTTP and CoAP."""

import re

from conftest import wait_until

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$')


def scrape(d) -> dict:
    """{(name, labels-text): float}; asserts every line is valid 0.0.4 text
    and every sample's family has HELP and TYPE lines before it."""
    r = d.mgmt("GET", "/metrics")
    assert r.status == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    samples, typed, helped = {}, {}, set()
    for line in r.text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name in helped, f"TYPE before HELP: {line}"
            assert name not in typed, f"family twice: {line}"
            typed[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name = m.group(1)
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
            assert family in typed, f"sample without TYPE: {line}"
            samples[(name, m.group(2) or "")] = float(m.group(3))
    return samples


def key(name, **labels):
    return name, ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")


def value(samples, name, **labels):
    k = key(name, **labels)
    assert k in samples, f"no sample {k}"
    return samples[k]


def test_scrape_call_scrape(daemon):
    daemon.ensure("echo", threads=2)
    daemon.ensure("fail")
    before = scrape(daemon)
    assert value(before, "tinyfaas_function_instances_desired", function="echo") == 2
    assert value(before, "tinyfaas_function_instances_up", function="echo") == 2

    for _ in range(3):
        assert daemon.call("echo", "hi").status == 200
    assert daemon.call("fail", "x").status == 500
    for _ in range(2):
        assert daemon.coap("echo", b"hi", method="post").code == "2.05"
    assert daemon.call("nosuchfunction", "x").status == 404
    assert daemon.coap("anothermissingone").code == "4.04"

    after = scrape(daemon)

    def delta(name, **labels):
        return value(after, name, **labels) - before.get(key(name, **labels), 0.0)

    assert delta("tinyfaas_calls_total", function="echo", protocol="http") == 3
    assert delta("tinyfaas_calls_total", function="echo", protocol="coap") == 2
    assert delta("tinyfaas_calls_total", function="echo", protocol="grpc") == 0
    assert delta("tinyfaas_calls_total", function="fail", protocol="http") == 1
    assert delta("tinyfaas_call_errors_total", function="fail", protocol="http", kind="function_error") == 1
    assert delta("tinyfaas_call_errors_total", function="echo", protocol="http", kind="function_error") == 0
    assert delta("tinyfaas_unknown_function_calls_total", protocol="http") == 1
    assert delta("tinyfaas_unknown_function_calls_total", protocol="coap") == 1
    # Unknown names make no series of their own.
    assert not [k for k in after if "nosuchfunction" in k[1] or "anothermissingone" in k[1]]

    # The latency histogram: +Inf bucket and _count equal the calls; the
    # buckets never decrease.
    lbl = dict(function="echo", protocol="http")
    assert delta("tinyfaas_call_duration_seconds_count", **lbl) == 3
    buckets = sorted(((float(re.search(r'le="([^"]+)"', k[1]).group(1)), v) for k, v in after.items()
                      if k[0] == "tinyfaas_call_duration_seconds_bucket" and 'function="echo",protocol="http"' in k[1]))
    assert buckets[-1][0] == float("inf")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1][1] == value(after, "tinyfaas_call_duration_seconds_count", **lbl)
    assert 0 < value(after, "tinyfaas_call_duration_seconds_sum", **lbl) < 60
    assert value(after, "tinyfaas_calls_in_flight", **lbl) == 0


def test_process_metrics(daemon):
    s = scrape(daemon)
    rss = value(s, "process_resident_memory_bytes")
    with open(f"/proc/{daemon.proc.pid}/status") as f:
        vmrss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    assert 0.5 * vmrss_kb * 1024 < rss < 2 * vmrss_kb * 1024
    assert value(s, "process_open_fds") > 3
    # This scrape's own connection is one of them.
    assert value(s, "tinyfaas_open_connections") >= 1
    assert value(s, "tinyfaas_uptime_seconds") > 0
    assert value(s, "process_start_time_seconds") > 1.6e9


def test_in_flight_and_removed_function(daemon):
    import threading

    daemon.ensure("sleep")
    t = threading.Thread(target=lambda: daemon.call("sleep", "1.5"))
    t.start()
    try:
        wait_until(lambda: value(scrape(daemon), "tinyfaas_calls_in_flight", function="sleep", protocol="http") == 1,
                   5.0, what="the sleeping call to show as in flight")
    finally:
        t.join(30)
    assert value(scrape(daemon), "tinyfaas_calls_in_flight", function="sleep", protocol="http") == 0

    r = daemon.mgmt("POST", "/delete", {"name": "sleep"})
    assert r.status == 200
    daemon.deployed.pop("sleep", None)
    assert not [k for k in scrape(daemon) if 'function="sleep"' in k[1]]


def test_restarts_counted(daemon):
    daemon.ensure("crash")
    before = value(scrape(daemon), "tinyfaas_function_restarts_total", function="crash")
    assert daemon.call("crash", "crash").status >= 500
    wait_until(lambda: value(scrape(daemon), "tinyfaas_function_restarts_total", function="crash") > before
               and value(scrape(daemon), "tinyfaas_function_instances_up", function="crash") == 1,
               15.0, what="the crashed instance to be restarted")


def test_metrics_only_answers_get(daemon):
    r = daemon.mgmt("POST", "/metrics", b"")
    assert r.status == 405
