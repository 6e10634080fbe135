"""The management API: upload replies, list, delete, wipe, logs and the
number of handler instances. Each test gets a fresh daemon because they
observe the whole function list."""

# e2e: both backends
import pytest

import http.client

from conftest import SIEVE_ANSWER, wait_until, zip_folder_b64, fn_dir


def test_upload_reply_names_every_enabled_endpoint(make_daemon):
    d = make_daemon()
    r = d.deploy("echo")  # deploy() asserts the exact set of lines
    lines = [l for l in r.text.splitlines() if l.strip()]
    assert len(lines) == 2, r.text
    assert sorted(lines) == sorted(
        [f"coap://127.0.0.1:{d.cport}/echo", f"http://127.0.0.1:{d.hport}/echo"]
    )


def test_upload_reply_uses_the_host_of_the_request(make_daemon):
    d = make_daemon()
    conn = http.client.HTTPConnection("127.0.0.1", d.mport, timeout=120)
    try:
        import json
        body = json.dumps({"name": "echo", "env": "python3", "threads": 1,
                           "zip": zip_folder_b64(fn_dir("echo"))})
        conn.request("POST", "/upload", body=body,
                     headers={"Host": f"localhost:{d.mport}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 200, text
    assert {l for l in text.splitlines() if l} == d.expected_upload_lines("echo", host="localhost")


def test_list_delete_and_calls(make_daemon):
    d = make_daemon()
    assert d.list_names() == []
    d.deploy("echo")
    d.deploy("sieve")
    d.deploy("echo-js", "echojs")
    assert sorted(d.list_names()) == ["echo", "echojs", "sieve"]

    r = d.mgmt("POST", "/delete", {"name": "echo"})
    assert r.status == 200, r.text
    assert sorted(d.list_names()) == ["echojs", "sieve"]
    assert d.call("echo", b"x").status == 404
    assert d.coap("echo", b"x").code == "4.04"
    # The others are untouched.
    assert d.call("sieve").body == SIEVE_ANSWER
    assert d.call("echojs", b"js").body == b"js"


def test_delete_unknown_is_404(make_daemon):
    d = make_daemon()
    r = d.mgmt("POST", "/delete", {"name": "nosuchfunction"})
    assert r.status == 404, (r.status, r.text)
    assert r.text.strip(), "404 without a reason"


def test_delete_removes_handler_processes(make_daemon):
    d = make_daemon()
    d.deploy("echo", threads=2)
    assert len(d.instances("echo")) == 2
    assert d.mgmt("POST", "/delete", {"name": "echo"}).status == 200
    wait_until(lambda: not d.instances("echo"), 10, what="echo's handlers to exit after delete")


def test_wipe_removes_everything(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    d.deploy("sieve", threads=2)
    r = d.mgmt("POST", "/wipe")
    assert r.status == 200, r.text
    assert d.list_names() == []
    assert d.call("echo", b"x").status == 404
    assert d.call("sieve").status == 404
    assert d.coap("sieve").code == "4.04"
    wait_until(lambda: not d.handlers_left(), 10, what="all handlers to exit after wipe")
    # Deploying again after a wipe works.
    d.deploy("echo")
    assert d.call("echo", b"back").body == b"back"


def test_threads_start_that_many_instances(make_daemon):
    d = make_daemon()
    d.deploy("echo", threads=3)
    dirs = d.instances("echo")
    assert len(dirs) == 3, dirs
    d.deploy("echo", threads=1)
    wait_until(lambda: len(d.instances("echo")) == 1, 10, what="redeploy with threads=1 to leave one instance")


def test_logs_contain_function_output(make_daemon):
    d = make_daemon()
    d.deploy("fail")
    d.deploy("echo")
    assert d.call("fail", b"x").status == 500
    assert d.call("echo", b"hello").status == 200

    def logs_have_boom(path):
        r = d.mgmt("GET", path)
        assert r.status == 200, r.text
        return "boom" in r.text and r.text

    text = wait_until(lambda: logs_have_boom("/logs?name=fail"), 10, what="fail's traceback in /logs?name=fail")
    assert "ValueError" in text, text[-2000:]
    wait_until(lambda: logs_have_boom("/logs"), 10, what="fail's traceback in /logs")
    r = d.mgmt("GET", "/logs?name=echo")
    assert r.status == 200
    assert "boom" not in r.text, "logs of echo contain fail's output"


def test_logs_of_unknown_function(make_daemon):
    d = make_daemon()
    r = d.mgmt("GET", "/logs?name=nosuchfunction")
    # Either an empty log or a 404 is reasonable; never a server error.
    assert r.status in (200, 404), (r.status, r.text)


def test_functions_survive_a_daemon_restart(make_daemon):
    # DESIGN: the state dir keeps function code and metadata across restarts.
    d = make_daemon()
    d.deploy("echo", threads=2)
    d.deploy("sieve")
    d.stop()
    d2 = make_daemon(state_dir=d.state_dir)
    assert sorted(d2.list_names()) == ["echo", "sieve"]
    r = wait_until(lambda: (lambda r: r.status == 200 and r)(d2.call("echo", b"again")), 15,
                   interval=0.2, what="echo to answer after the restart")
    assert r.body == b"again"
    assert d2.call("sieve").body == SIEVE_ANSWER
