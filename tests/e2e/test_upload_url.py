"""POST /uploadURL: the daemon downloads a zip from a small HTTP server this
test starts on 127.0.0.1 and deploys a subfolder of it (or its top)."""

# e2e: both backends

import http.server
import io
import json
import threading
import zipfile

import pytest

from conftest import fn_dir, one_line_reason


def zip_of(folder, prefix: str) -> bytes:
    """A zip holding `folder`'s files under `prefix` (like a repository
    archive with a top-level directory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + str(path.relative_to(folder)))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def zip_server():
    files = {
        "/nested.zip": zip_of(fn_dir("echo"), "repo-main/functions/echo/"),
        "/top.zip": zip_of(fn_dir("echo"), ""),
        "/not-a-zip.zip": b"this is not a zip archive\n",
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            body = body if body is not None else b"no such file\n"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def upload_url(daemon, name: str, url: str, subfolder=None, **fields):
    body = {"name": name, "env": "python3", "threads": 1, "url": url, **fields}
    if subfolder is not None:
        body["subfolder_path"] = subfolder
    return daemon.mgmt("POST", "/uploadURL", body, timeout=120)


def test_deploys_a_subfolder_of_a_downloaded_zip(daemon, zip_server):
    r = upload_url(daemon, "urlnested", zip_server + "/nested.zip", "repo-main/functions/echo")
    assert r.status == 200, r.text
    assert {l for l in r.text.splitlines() if l} == daemon.expected_upload_lines("urlnested")
    assert daemon.call("urlnested", b"from a url").body == b"from a url"


@pytest.mark.parametrize("subfolder", ["/", "", None])
def test_slash_empty_or_absent_subfolder_means_the_top(daemon, zip_server, subfolder):
    r = upload_url(daemon, "urltop", zip_server + "/top.zip", subfolder)
    assert r.status == 200, r.text
    assert daemon.call("urltop", b"top").body == b"top"


@pytest.mark.parametrize(
    "path,subfolder,reason",
    [
        ("/nested.zip", "repo-main/functions/nope", "not a folder"),
        ("/nested.zip", "../..", "outside"),
        ("/not-a-zip.zip", "/", "zip"),
        ("/missing.zip", "/", "404"),
    ],
)
def test_bad_downloads_are_400_with_a_reason(daemon, zip_server, path, subfolder, reason):
    r = upload_url(daemon, "urlbad", zip_server + path, subfolder)
    assert r.status == 400, r.text
    assert reason in one_line_reason(r.body)
    assert "urlbad" not in daemon.list_names()


def test_unreachable_url_and_other_schemes_are_400(daemon):
    # Port 9 on loopback: nothing listens there, so the connection is refused.
    r = upload_url(daemon, "urlbad", "http://127.0.0.1:9/x.zip", "/")
    assert r.status == 400 and "cannot download" in one_line_reason(r.body), r.text
    r = upload_url(daemon, "urlbad", "file:///etc/passwd", "/")
    assert r.status == 400 and "http" in one_line_reason(r.body), r.text


def test_the_daemon_keeps_serving_after_bad_downloads(daemon, zip_server):
    upload_url(daemon, "urlbad", zip_server + "/not-a-zip.zip", "/")
    r = upload_url(daemon, "urlafter", zip_server + "/top.zip", "/")
    assert r.status == 200, r.text
    assert daemon.call("urlafter", b"still here").body == b"still here"


def test_call_limits_are_taken_and_checked(daemon, zip_server):
    r = upload_url(daemon, "urllimits", zip_server + "/top.zip", timeout=2.5, concurrency=2, queue=0)
    assert r.status == 200, r.text
    limits = json.loads(daemon.mgmt("GET", "/functions/urllimits").body)["limits"]
    assert (limits["timeout"], limits["concurrency"], limits["queue"]) == (2.5, 2, 0)
    r = upload_url(daemon, "urlbadlimits", zip_server + "/top.zip", queue=-1)
    assert (r.status, r.text.strip()) == (400, "queue must be an integer between 0 and 65536, got -1")
    assert "urlbadlimits" not in daemon.list_names()


def test_sigterm_during_a_download_ends_it_and_answers_503(make_daemon):
    """A server that never answers: the daemon must neither wait for its
    60 s download timeout nor leave the download running behind it."""
    asked = threading.Event()
    release = threading.Event()

    class Stall(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.set()
            release.wait(30)  # bounded: the test releases it at its end

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stall)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        d = make_daemon(extra_args=["--shutdown-timeout", "1"])
        answers = []
        url = f"http://127.0.0.1:{server.server_address[1]}/slow.zip"
        t = threading.Thread(target=lambda: answers.append(upload_url(d, "stalled", url)), daemon=True)
        t.start()
        assert asked.wait(30), "the daemon never asked the server"
        d.stop()  # exit 0 within its deadline
        t.join(timeout=30)
        assert answers and answers[0].status == 503, answers
        assert "shutting down" in answers[0].text, answers[0].text
        assert d.log_text().rstrip().splitlines()[-1].endswith("stopped"), d.log_tail()
    finally:
        release.set()
        server.shutdown()
        server.server_close()
