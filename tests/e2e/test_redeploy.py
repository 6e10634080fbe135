"""Redeploying a function replaces it without failing a single call."""

# e2e: both backends

import threading
import time

from conftest import SIEVE_ANSWER, http_request

CLIENTS = 4
MAX_CALLS_PER_CLIENT = 2000
MIN_DURATION = 8.0
HARD_DEADLINE = 90.0


def test_redeploy_under_load_fails_no_call(daemon):
    daemon.deploy("echo", threads=2)
    stop = threading.Event()
    failures: list = []
    counts = [0] * CLIENTS
    lock = threading.Lock()

    def client(idx: int):
        for i in range(MAX_CALLS_PER_CLIENT):
            if stop.is_set():
                return
            body = f"client{idx}-call{i}".encode()
            try:
                r = http_request(daemon.hport, "POST", "/echo", body=body, timeout=10)
                ok = r.status == 200 and r.body == body
                detail = (r.status, r.body[:100])
            except Exception as e:  # noqa: BLE001 - any error is a failed call
                ok, detail = False, repr(e)
            counts[idx] += 1
            if not ok:
                with lock:
                    failures.append((idx, i, time.monotonic(), detail))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    upload_times = []
    try:
        for _ in range(3):
            t_up = time.monotonic()
            daemon.deploy("echo", threads=2)
            upload_times.append(time.monotonic() - t_up)
        # Keep the load on for at least MIN_DURATION in total.
        while time.monotonic() - t0 < MIN_DURATION and any(t.is_alive() for t in threads):
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=HARD_DEADLINE)
    total = sum(counts)
    assert not any(t.is_alive() for t in threads), "client threads did not stop"
    assert not failures, f"{len(failures)} of {total} calls failed during redeploys; first: {failures[:5]}"
    assert total >= 100, f"only {total} calls were made; the load was too small to mean anything"
    assert daemon.list_names().count("echo") == 1
    # The old instances were drained and destroyed: two instances remain.
    from conftest import wait_until
    wait_until(lambda: len(daemon.instances("echo")) == 2, 10,
               what="exactly 2 echo instances after the redeploys")


def test_redeploy_replaces_the_code(daemon):
    daemon.deploy("echo", "swap")
    assert daemon.call("swap", b"echoed").body == b"echoed"
    daemon.deploy("sieve", "swap")
    r = daemon.call("swap", b"echoed")
    assert (r.status, r.body) == (200, SIEVE_ANSWER)
    c = daemon.coap("swap")
    assert (c.code, c.payload) == ("2.05", SIEVE_ANSWER)
    daemon.deploy("echo-binary", "swap")
    assert daemon.call("swap", b"binary now").body == b"binary now"
    assert daemon.list_names().count("swap") == 1
