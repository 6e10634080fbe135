"""Signals other than the first SIGTERM (issue 14, item 8): SIGHUP re-reads
the token file and never kills; a CoAP client that gave up before its
answer does not hold the shutdown for the whole --shutdown-timeout.

Independent clients: curl for the management API, libcoap's coap-client."""

import os
import signal
import subprocess
import time

from conftest import Daemon, coap_client_binary, wait_until
from test_auth import ADMIN, TOKEN_FILE, AuthDaemon
from test_health import curl, token_file

CAROL = "car0l-0123456789-token"


def curl_status(d, path, token):
    return curl(d, path, "-H", f"Authorization: Bearer {token}")[0]


def hangup_and_wait_for(d, text, count=1):
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: (d.log_text() or "").count(text) >= count, 10, what=f"log line {text!r}")
    assert d.proc.poll() is None, f"SIGHUP stopped the daemon\n{d.log_tail()}"


def test_sighup_reloads_the_token_file(tmp_path):
    path = token_file(tmp_path)
    d = AuthDaemon(extra_args=["--token-file", str(path)])
    try:
        assert curl_status(d, "/list", CAROL) == "401"
        path.write_text(TOKEN_FILE + f"{CAROL} carol tenant\n")
        hangup_and_wait_for(d, f"reloaded tokens from {path}: 4 token(s) (was 3)")
        assert curl_status(d, "/list", CAROL) == "200"
        assert curl_status(d, "/list", ADMIN) == "200"

        # A broken file keeps what was loaded, and says why.
        path.write_text(f"{CAROL} carol\n")
        hangup_and_wait_for(d, "cannot reload tokens: ")
        assert "line 1: expected TOKEN TENANT ROLE" in d.log_text()
        assert "keeping the 4 token(s) loaded before" in d.log_text()
        assert curl_status(d, "/list", CAROL) == "200"

        # A token taken out of the file stops working.
        path.write_text(TOKEN_FILE)
        hangup_and_wait_for(d, "reloaded tokens from", count=2)
        assert curl_status(d, "/list", CAROL) == "401"
        assert CAROL not in d.log_text()
    finally:
        d.stop()
        d.cleanup()


def test_sighup_without_a_token_file_changes_nothing(make_daemon):
    d = make_daemon()
    hangup_and_wait_for(d, "received SIGHUP: nothing to reload (no --token-file)")
    hangup_and_wait_for(d, "received SIGHUP: nothing to reload (no --token-file)", count=2)
    assert d.mgmt("GET", "/list").status == 200


def test_a_coap_client_that_gave_up_does_not_hold_the_shutdown(workdir):
    d = Daemon(extra_args=["--shutdown-timeout", "30"])
    try:
        d.deploy("sleep")
        # Two blocks (the second one proves the client's address with the
        # Echo value of the first answer), so the answer is a confirmable one
        # that libcoap retransmits until the client acknowledges it.
        inp = os.path.join(workdir, "in")
        with open(inp, "wb") as f:
            f.write(b"2" + b" " * 1500)
        # Gives up after 1 s; the function answers after 2 s, to nobody.
        client = subprocess.run([coap_client_binary(), "-B", "1", "-m", "post", "-f", inp,
                                 f"coap://127.0.0.1:{d.cport}/sleep"], capture_output=True, timeout=30)
        assert client.returncode is not None
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.proc.wait(timeout=40)
        took = time.monotonic() - t0
        d.stopped = True
        d._close_files()
        log = d.log_text()
        assert rc == 0, log[-3000:]
        # The call ends; its answer (a confirmable one, to a gone client)
        # does not keep the drain waiting (unit test: at most 3 s).
        assert took < 10, f"shutdown took {took:.1f} s\n{d.log_tail()}"
        assert "for 1 in flight (CoAP 1)" in log
        assert "shutdown: all 1 call(s) finished" in log
    finally:
        if not d.stopped:
            d.stop()
        d.cleanup()
