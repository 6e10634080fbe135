"""Following logs: GET /logs?name=N&follow=1 streams new lines as they come
(chunked, each with its timestamp and instance), read with curl -N; the
CLI's `tinyfaas logs -f N` prints them until it is interrupted."""

# e2e: both backends
import re
import signal
import subprocess
import threading
import time

from conftest import BIN, wait_until

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z sleep\.\d+ slept 0\.0s$")


class Reader:
    """Collects a child's stdout lines on a thread, so a test can wait for
    one with a deadline."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._thread.join(timeout=10)


def test_follow_streams_lines_written_after_it_started(make_daemon):
    d = make_daemon()
    d.deploy("sleep")
    d.call("sleep", b"0.01")  # an older line, sent first
    follower = Reader(["curl", "-sN", "--max-time", "60", f"http://127.0.0.1:{d.mport}/logs?name=sleep&follow=1"])
    try:
        wait_until(lambda: any("slept 0.01s" in l for l in follower.lines), 10, what="the lines so far")
        assert not any("slept 0.0s" in l for l in follower.lines)
        for _ in range(3):
            assert d.call("sleep", b"0").status == 200
        new = wait_until(lambda: [l for l in follower.lines if l.endswith("slept 0.0s")][:3]
                         if sum(l.endswith("slept 0.0s") for l in follower.lines) >= 3 else None,
                         10, what="three new lines in the followed stream")
        for line in new:
            assert LINE.match(line), line
        assert follower.proc.poll() is None, "the stream ended by itself"
    finally:
        follower.stop()
    # The daemon serves on after the follower went away.
    assert d.call("sleep", b"0").status == 200


def test_follow_of_unknown_function_is_404(make_daemon):
    d = make_daemon()
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                        f"http://127.0.0.1:{d.mport}/logs?name=nosuch&follow=1"], capture_output=True, text=True)
    assert r.stdout == "404"


def test_cli_logs_follow_prints_new_lines_until_interrupted(make_daemon):
    d = make_daemon()
    d.deploy("sleep")
    follower = Reader([str(BIN), "logs", "-f", "sleep", "--url", f"http://127.0.0.1:{d.mport}"])
    try:
        time.sleep(0.5)  # let it connect; a line from before would be printed too, so this is only for realism
        assert d.call("sleep", b"0").status == 200
        wait_until(lambda: any(LINE.match(l) for l in follower.lines), 10, what="the CLI to print the new line")
        assert follower.proc.poll() is None, "tinyfaas logs -f ended by itself"
    finally:
        rc = follower.stop()
    assert rc in (0, 130, -signal.SIGINT), rc


def test_follow_ends_when_the_daemon_stops(make_daemon):
    d = make_daemon()
    d.deploy("sleep")
    follower = Reader([str(BIN), "logs", "-f", "--url", f"http://127.0.0.1:{d.mport}"])
    try:
        time.sleep(0.5)
        d.stop()  # SIGTERM: exits 0 within 10 s although a follower is connected
        assert follower.proc.wait(timeout=10) is not None
    finally:
        follower.stop()
