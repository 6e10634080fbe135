"""GET /logs and `tinyfaas logs`: lines of all functions in the order they
were written, --tail/--since (tail=/since=), kept in the state dir across a
restart with private files, and a followed log that ends cleanly when the
daemon stops."""

# e2e: both backends
import os
import re
import signal
import stat
import subprocess
import threading

from conftest import BIN, wait_until

SLEPT = re.compile(r"^\S+ (sleep[ab])\.\d+ slept ([\d.]+)s$")


def cli(d, *args, timeout=30):
    return subprocess.run([str(BIN), "logs", *args, "--url", f"http://127.0.0.1:{d.mport}"],
                          capture_output=True, text=True, timeout=timeout)


def slept(text: str) -> list:
    return [(m.group(1), m.group(2)) for m in map(SLEPT.match, text.splitlines()) if m]


def deploy_two_and_call(d):
    d.deploy("sleep", "sleepa")
    d.deploy("sleep", "sleepb")
    for name, seconds in (("sleepa", "0.01"), ("sleepb", "0.02"), ("sleepa", "0.03")):
        assert d.call(name, seconds.encode()).status == 200
    # A handler's output reaches the log after its answer (Docker delivers
    # container output on its own stream), so wait for the last line.
    wait_until(lambda: len(slept(d.mgmt("GET", "/logs").text)) == 3, 10, what="three log lines")


def test_lines_of_all_functions_in_time_order_with_tail_and_since(make_daemon):
    d = make_daemon()
    deploy_two_and_call(d)
    expected = [("sleepa", "0.01"), ("sleepb", "0.02"), ("sleepa", "0.03")]
    r = cli(d)
    assert r.returncode == 0, r.stderr
    assert slept(r.stdout) == expected, r.stdout
    # --tail: the last lines of them all.
    r = cli(d, "--tail", "2")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2 and slept(r.stdout) == expected[1:], r.stdout
    # curl with the query parameters.
    out = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{d.mport}/logs?name=sleepa&tail=1"],
                         capture_output=True, text=True).stdout
    assert slept(out) == [("sleepa", "0.03")], out
    r = cli(d, "--since", "10m")
    assert slept(r.stdout) == expected, r.stdout
    r = cli(d, "sleepb", "--since", "1h30m")
    assert slept(r.stdout) == [("sleepb", "0.02")], r.stdout


def test_bad_tail_and_since_are_400_naming_them(make_daemon):
    d = make_daemon()
    for query, named in (("tail=-1", "tail"), ("tail=ten", "tail"), ("since=10", "since"), ("since=5x", "since"),
                         ("since=", "since")):
        r = d.mgmt("GET", f"/logs?{query}")
        assert r.status == 400, (query, r.status, r.text)
        assert r.text.startswith(named + " must be"), (query, r.text)
    # The CLI: the daemon's reason, or its own before anything is sent.
    r = cli(d, "--since", "5x")
    assert r.returncode == 1 and "since must be a duration" in r.stderr, r.stderr
    r = cli(d, "--since", "1 h")
    assert r.returncode == 2 and "--since must be a duration" in r.stderr, r.stderr


def test_logs_survive_a_restart_in_private_files(make_daemon):
    d = make_daemon()
    deploy_two_and_call(d)
    d.stop()
    logs_dir = os.path.join(d.state_dir, "logs")
    files = sorted(os.listdir(logs_dir))
    assert files == ["sleepa.log", "sleepb.log"], files
    for f in files + [""]:
        mode = stat.S_IMODE(os.stat(os.path.join(logs_dir, f)).st_mode)
        assert mode & 0o077 == 0 or (f == "" and mode & 0o067 == 0), (f, oct(mode))

    d2 = make_daemon(state_dir=d.state_dir)
    r = cli(d2)
    assert slept(r.stdout) == [("sleepa", "0.01"), ("sleepb", "0.02"), ("sleepa", "0.03")], r.stdout
    # New lines follow the old ones; delete removes a function's lines and files.
    wait_until(lambda: d2.call("sleepb", b"0.04").status == 200, 30, interval=0.2, what="sleepb to serve again")
    wait_until(lambda: slept(cli(d2, "sleepb").stdout) == [("sleepb", "0.02"), ("sleepb", "0.04")], 10,
               what="the new line after the old ones")
    assert d2.mgmt("POST", "/delete", {"name": "sleepb"}).status == 200
    assert not os.path.exists(os.path.join(logs_dir, "sleepb.log"))
    d2.stop()
    d3 = make_daemon(state_dir=d.state_dir)
    assert slept(cli(d3).stdout) == [("sleepa", "0.01"), ("sleepa", "0.03")]


def test_install_lines_carry_the_functions_name(make_daemon):
    d = make_daemon()
    d.deploy("depsjs")
    out = cli(d, "depsjs").stdout
    assert re.search(r"^\S+ depsjs\.install ", out, re.M), out


def test_follow_ends_with_exit_0_and_daemon_stopped_on_sigterm(make_daemon):
    d = make_daemon()
    d.deploy("sleep")
    proc = subprocess.Popen([str(BIN), "logs", "-f", "--url", f"http://127.0.0.1:{d.mport}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        assert d.call("sleep", b"0.05").status == 200
        wait_until(lambda: any("slept 0.05s" in l for l in lines), 10, what="the followed line")
        d.proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        err = proc.stderr.read()
        assert rc == 0, err
        assert err.strip() == "tinyfaas: daemon stopped", err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        d.stop()
