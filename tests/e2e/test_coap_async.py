"""Asynchronous calls over CoAP: a request with the No-Response option
(RFC 7967) gets no reply, and the function runs anyway."""

# e2e: both backends

import os
import subprocess
import time

from conftest import coap_client_binary, wait_until


def test_no_response_request_runs_the_function_without_a_reply(make_daemon, workdir):
    d = make_daemon()
    d.deploy("sleep")

    payload = os.path.join(workdir, "in")
    with open(payload, "w") as f:
        f.write("0.5")
    t0 = time.monotonic()
    # NON request, No-Response (option 258) = 0x1a: not interested in 2.xx,
    # 4.xx or 5.xx. coap-client waits 3 s (-B 3) for an answer: without the
    # option, the 2.05 of this 0.5 s call would arrive within that time.
    r = subprocess.run(
        [coap_client_binary(), "-v", "6", "-N", "-B", "3", "-m", "post", "-O", "258,0x1a", "-f", payload,
         f"coap://127.0.0.1:{d.cport}/sleep"],
        capture_output=True, timeout=30)
    returned = time.monotonic() - t0
    log = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert "2.05" not in log, f"a No-Response request got an answer:\n{log}"
    assert returned >= 2.5, f"coap-client returned after {returned:.2f}s: it got something"
    wait_until(lambda: "slept 0.5s" in d.mgmt("GET", "/logs?name=sleep").text, 15,
               what="the function to run (its line in /logs)")
    # The daemon keeps answering ordinary requests.
    assert d.coap("sleep", b"0", method="post").code == "2.05"
