"""GET /healthz (liveness) and /readyz (readiness) on the management port,
answered without a token (issue 14, item 9), with curl."""

import os
import subprocess

from conftest import wait_until
from test_auth import TOKEN_FILE, AuthDaemon


def curl(d, path, *extra):
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "--max-time", "10", *extra,
                        f"http://127.0.0.1:{d.mport}{path}"], capture_output=True, text=True, timeout=20)
    body, _, status = r.stdout.rpartition("\n")
    return status, body


def token_file(tmp_path, text=TOKEN_FILE):
    """test_auth's tokens in a file only the daemon's user may read."""
    path = tmp_path / "tokens"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_health_and_readiness_without_a_token(tmp_path):
    d = AuthDaemon(extra_args=["--token-file", str(token_file(tmp_path))])
    try:
        assert curl(d, "/healthz") == ("200", "ok\n")
        # Ready once the (here: no) stored functions are restored.
        wait_until(lambda: curl(d, "/readyz") == ("200", "ok\n"), 30, what="/readyz 200")
        assert curl(d, "/healthz", "-I")[0] == "200"
        assert curl(d, "/healthz", "-X", "POST")[0] == "405"
        # Everything else still wants the token.
        assert curl(d, "/list")[0] == "401"
        assert curl(d, "/healthz/../list", "--path-as-is")[0] == "401"
        assert "ready: stored functions restored, endpoints listening" in d.log_text()
    finally:
        d.stop()
        d.cleanup()


def test_ready_after_restoring_functions(make_daemon):
    d = make_daemon()
    d.deploy("echo")
    d.stop()
    again = make_daemon(state_dir=d.state_dir)
    assert curl(again, "/healthz") == ("200", "ok\n")
    wait_until(lambda: curl(again, "/readyz")[0] == "200", 60, what="/readyz 200 after the restore")
    # Ready means the restored function answers.
    assert again.call("echo", b"hi").status == 200
    log = again.log_text()
    assert log.index("ready: stored functions restored") > log.index("HTTP endpoint on")
