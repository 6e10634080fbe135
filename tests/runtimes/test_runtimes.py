"""Tests of the function handler runtimes, each started by hand.

Every test starts a handler the way the daemon does (cwd = a function's code
directory, TINYFAAS_SOCKET = a socket path in a temporary directory) and talks
to it with curl over the Unix socket, an HTTP client independent of all three
runtimes. Nothing here imports project code.

The binary handler must be built first:
    cmake -S . -B build-runtimes -G Ninja -DTINYFAAS_TESTS=OFF
    cmake --build build-runtimes --target tinyfaas-binary-handler
or be named by $TINYFAAS_BINARY_HANDLER.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
TEST_FUNCTIONS = REPO / "tests" / "functions"

# Debian's interpreter is what the runtime images and the process backend use.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else shutil.which("python3")
NODE = shutil.which("node")
CURL = shutil.which("curl")
BINARY_HANDLER = Path(
    os.environ.get(
        "TINYFAAS_BINARY_HANDLER",
        REPO / "build-runtimes" / "runtimes" / "binary" / "tinyfaas-binary-handler",
    )
)

START_DEADLINE = 15.0
CALL_TIMEOUT = 60

pytestmark = pytest.mark.skipif(CURL is None, reason="curl is needed as the test client")


def handler_command(runtime: str) -> List[str]:
    if runtime == "python3":
        if PYTHON is None:
            pytest.skip("python3 not found")
        return [PYTHON, str(REPO / "runtimes" / "python3" / "handler.py")]
    if runtime == "nodejs":
        if NODE is None:
            pytest.skip("node not found")
        return [NODE, str(REPO / "runtimes" / "nodejs" / "handler.js")]
    if runtime == "binary":
        if not (BINARY_HANDLER.is_file() and os.access(BINARY_HANDLER, os.X_OK)):
            pytest.skip(
                f"binary handler not built at {BINARY_HANDLER}; build the target "
                "tinyfaas-binary-handler into build-runtimes or set TINYFAAS_BINARY_HANDLER"
            )
        return [str(BINARY_HANDLER)]
    raise ValueError(runtime)


class Handler:
    """One handler process serving one function directory."""

    def __init__(self, runtime: str, code_dir: Path, tmp: Path, env: Optional[Dict[str, str]] = None):
        self.runtime = runtime
        self.code_dir = code_dir
        self.socket = tmp / "handler.sock"
        self.stdout_path = tmp / "handler.stdout"
        self.stderr_path = tmp / "handler.stderr"
        self.env = dict(os.environ)
        # The daemon gives handlers a clean environment plus the function's;
        # a PYTHONPATH or NODE_OPTIONS from the test runner must not leak in.
        for k in ("PYTHONPATH", "PYTHONHOME", "NODE_OPTIONS", "NODE_PATH"):
            self.env.pop(k, None)
        self.env.update(env or {})
        self.env["TINYFAAS_SOCKET"] = str(self.socket)
        self.env["TINYFAAS_FUNCTION"] = code_dir.name.replace("-", "")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Handler":
        cmd = handler_command(self.runtime)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=self.code_dir, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.runtime} handler exited with {self.proc.returncode} at start:\n{self.logs()}"
                )
            if self.socket.exists():
                status, body = call(self, "/health", method="GET", timeout=5, check=False)
                if status == 200:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"{self.runtime} handler not healthy after {START_DEADLINE}s:\n{self.logs()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for p in (self.stdout_path, self.stderr_path):
            if p.exists():
                parts.append(f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def __enter__(self) -> "Handler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def curl_args(
    h: Handler,
    path: str,
    data: Optional[bytes],
    headers: Iterable[str],
    method: Optional[str],
    timeout: float,
) -> List[str]:
    args = [CURL, "-sS", "--unix-socket", str(h.socket), "--max-time", str(timeout)]
    for hd in headers:
        args += ["-H", hd]
    if method:
        args += ["-X", method]
    if data is not None:
        # Default curl headers would make the body form data; send it raw.
        args += ["--data-binary", "@-", "-H", "Content-Type: application/octet-stream"]
    return args


def call(
    h: Handler,
    path: str = "/fn",
    data: Optional[bytes] = None,
    headers: Iterable[str] = (),
    method: Optional[str] = None,
    timeout: float = CALL_TIMEOUT,
    check: bool = True,
) -> Tuple[int, bytes]:
    """One request with curl; returns (status, body)."""
    if method is None:
        method = "POST" if path.split("?")[0] == "/fn" else "GET"
    if method == "POST" and data is None:
        data = b""
    args = curl_args(h, path, data, headers, method, timeout)
    # The status goes to stderr so that stdout holds exactly the body bytes.
    args += ["-o", "-", "-w", "%{stderr}%{http_code}", f"http://localhost{path}"]
    r = subprocess.run(args, input=data if data is not None else b"", capture_output=True, timeout=timeout + 10)
    if r.returncode != 0:
        if check:
            raise AssertionError(f"curl failed ({r.returncode}): {r.stderr!r}\n{h.logs()}")
        return 0, b""
    return int(r.stderr.decode().strip()[-3:]), r.stdout


# --------------------------------------------------------------------------
# per-runtime functions

ECHO = {
    "python3": FUNCTIONS / "echo",
    "nodejs": FUNCTIONS / "echo-js",
    "binary": FUNCTIONS / "echo-binary",
}
RUNTIMES = list(ECHO)


def make_function(tmp: Path, files: Dict[str, str], executable: Sequence[str] = ()) -> Path:
    code = tmp / "code"
    code.mkdir()
    for name, text in files.items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text(text)
    for name in executable:
        (code / name).chmod(0o755)
    return code


def fail_function(runtime: str, tmp: Path) -> Tuple[Path, str]:
    """A function that fails, and the reason its handler must report."""
    if runtime == "python3":
        return TEST_FUNCTIONS / "fail", "boom"
    if runtime == "nodejs":
        return TEST_FUNCTIONS / "failjs", "boom js"
    code = make_function(tmp, {"fn.sh": "#!/bin/sh\ncat > /dev/null\necho 'first line' >&2\necho 'boom bin' >&2\nexit 3\n"}, ["fn.sh"])
    return code, "fn.sh exited with status 3: boom bin"


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    handler_command(request.param)  # skips early when the runtime is missing
    return request.param


@pytest.fixture
def echo(runtime: str, tmp_path: Path):
    with Handler(runtime, ECHO[runtime], tmp_path) as h:
        yield h


# --------------------------------------------------------------------------
# the contract, for every runtime


def test_health(echo: Handler) -> None:
    assert call(echo, "/health") == (200, b"OK")


def test_unknown_paths_are_404(echo: Handler) -> None:
    assert call(echo, "/nope")[0] == 404
    assert call(echo, "/nope", data=b"x", method="POST")[0] == 404
    assert call(echo, "/fn/extra", data=b"x", method="POST")[0] == 404
    # still serving afterwards
    assert call(echo, "/fn", b"after") == (200, b"after")


def test_other_methods_keep_the_connection_usable(echo: Handler) -> None:
    args = [CURL, "-sS", "--unix-socket", str(echo.socket), "--max-time", "30"]
    for method in ("HEAD", "PUT", "DELETE", "OPTIONS", "GET"):
        args += ["--head"] if method == "HEAD" else ["-X", method]
        args += ["-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n", "http://localhost/fn", "--next",
                 "--unix-socket", str(echo.socket), "--max-time", "30"]
    args += ["-o", "-", "--data-binary", "still fine", "http://localhost/fn"]
    r = subprocess.run(args, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\n")
    assert lines[:5] == ["404 1", "404 0", "404 0", "404 0", "404 0"]
    assert lines[5] == "still fine"


def test_echo_small(echo: Handler) -> None:
    assert call(echo, "/fn", b"Hello World!") == (200, b"Hello World!")


def test_echo_utf8(echo: Handler) -> None:
    text = "h\u00e9llo w\u00f6rld \u2713 \U0001F600".encode()
    assert call(echo, "/fn", text) == (200, text)


def test_echo_100kib(echo: Handler) -> None:
    payload = (b"0123456789abcdef" * 6400)[: 100 * 1024]
    assert len(payload) == 100 * 1024
    status, body = call(echo, "/fn", payload)
    assert status == 200
    assert body == payload


def test_empty_input(echo: Handler) -> None:
    assert call(echo, "/fn", b"") == (200, b"")


def test_function_error_is_500_with_reason(runtime: str, tmp_path: Path) -> None:
    code, reason = fail_function(runtime, tmp_path)
    with Handler(runtime, code, tmp_path) as h:
        status, body = call(h, "/fn", b"input")
        assert status == 500
        assert body.decode() == reason
        assert b"\n" not in body
        # one failure does not break the handler or the next call
        assert call(h, "/health") == (200, b"OK")
        assert call(h, "/fn", b"again") == (500, reason.encode())


def test_keep_alive_two_requests_one_connection(echo: Handler) -> None:
    # %{num_connects} is 1 for a transfer that opened a connection and 0 for
    # one that reused it.
    args = [CURL, "-sS", "--unix-socket", str(echo.socket), "--max-time", "30",
            "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
            "-w", "%{http_code} %{num_connects}\n", "-X", "POST", "--data-binary", "ping",
            "http://localhost/fn", "http://localhost/fn", "http://localhost/health"]
    r = subprocess.run(args, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[:3] == ["200 1", "200 0", "404 0"]


def test_keep_alive_response_framing(echo: Handler) -> None:
    """Responses carry Content-Length and no Connection: close."""
    args = [CURL, "-sS", "-i", "--unix-socket", str(echo.socket), "--max-time", "30",
            "--data-binary", "abc", "http://localhost/fn"]
    r = subprocess.run(args, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    head = r.stdout.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert "content-length: 3" in head
    assert "connection: close" not in head
    assert "transfer-encoding" not in head


def test_connection_close_is_honoured(echo: Handler) -> None:
    args = [CURL, "-sS", "-i", "--unix-socket", str(echo.socket), "--max-time", "30",
            "-H", "Connection: close", "--data-binary", "abc", "http://localhost/fn"]
    r = subprocess.run(args, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    head, body = r.stdout.split(b"\r\n\r\n", 1)
    assert body == b"abc"
    assert "connection: close" in head.decode().lower()


def test_expect_100_continue(echo: Handler, tmp_path: Path) -> None:
    # curl sends large bodies only after "100 Continue" (or its timeout, set
    # far beyond --max-time here, so a handler that never answers fails).
    payload = tmp_path / "payload"
    payload.write_bytes(b"e" * 2_000_000)
    args = [CURL, "-sS", "--unix-socket", str(echo.socket), "--max-time", "10",
            "--expect100-timeout", "60", "-H", "Expect: 100-continue",
            "-H", "Content-Type: application/octet-stream",
            "-o", "-", "-w", "%{stderr}%{http_code}",
            "--data-binary", f"@{payload}", "http://localhost/fn"]
    r = subprocess.run(args, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode() == "200"
    assert r.stdout == b"e" * 2_000_000


def test_chunked_request_body(echo: Handler) -> None:
    payload = b"chunk" * 30_000
    args = [CURL, "-sS", "--unix-socket", str(echo.socket), "--max-time", "30",
            "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/octet-stream",
            "-o", "-", "-w", "%{stderr}%{http_code}", "--data-binary", "@-",
            "http://localhost/fn", "--next", "--unix-socket", str(echo.socket),
            "-o", "-", "--data-binary", "next", "http://localhost/fn"]
    r = subprocess.run(args, input=payload, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode() == "200"
    assert r.stdout == payload + b"next"


def test_50_concurrent_calls(echo: Handler) -> None:
    def one(i: int) -> Tuple[int, bytes, bytes]:
        payload = f"call {i} ".encode() * (i + 1)
        status, body = call(echo, "/fn", payload)
        return status, body, payload

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    for status, body, payload in results:
        assert status == 200
        assert body == payload


def test_stale_socket_file_is_replaced(runtime: str, tmp_path: Path) -> None:
    (tmp_path / "handler.sock").write_text("left over from a crashed instance")
    with Handler(runtime, ECHO[runtime], tmp_path) as h:
        assert call(h, "/fn", b"x") == (200, b"x")


def test_sigterm_exits_and_removes_socket(runtime: str, tmp_path: Path) -> None:
    h = Handler(runtime, ECHO[runtime], tmp_path).start()
    try:
        assert h.proc is not None
        h.proc.send_signal(signal.SIGTERM)
        assert h.proc.wait(timeout=10) == 0
        assert not h.socket.exists()
    finally:
        h.stop()


def test_function_env_vars_reach_the_function(runtime: str, tmp_path: Path) -> None:
    code = TEST_FUNCTIONS / {"python3": "env", "nodejs": "envjs", "binary": "envbinary"}[runtime]
    with Handler(runtime, code, tmp_path, env={"GREETING": "hello from env"}) as h:
        assert call(h, "/fn", b"GREETING") == (200, b"hello from env" + (b"\n" if runtime == "binary" else b""))
        assert call(h, "/fn", b"TINYFAAS_FUNCTION")[0] == 200
        assert call(h, "/fn", b"NOT_SET_ANYWHERE") == (200, b"")


def test_function_output_is_logged_as_is(runtime: str, tmp_path: Path) -> None:
    files = {
        "python3": {"fn.py": "def fn(i, h):\n    print('out line', i)\n    import sys\n    print('err line', i, file=sys.stderr)\n    return 'ok'\n"},
        "nodejs": {"index.js": "module.exports = (req, res) => { console.log('out line ' + req.body); console.error('err line ' + req.body); res.send('ok'); };\n"},
        "binary": {"fn.sh": "#!/bin/sh\ni=$(cat)\necho \"out line $i\" >&2\necho \"err line $i\" >&2\nprintf ok\n"},
    }[runtime]
    code = make_function(tmp_path, files, ["fn.sh"] if runtime == "binary" else [])
    with Handler(runtime, code, tmp_path) as h:
        assert call(h, "/fn", b"42") == (200, b"ok")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            logs = h.stdout_path.read_text() + h.stderr_path.read_text()
            if "out line 42" in logs and "err line 42" in logs:
                break
            time.sleep(0.05)
        else:
            pytest.fail("function output not in the handler's logs:\n" + h.logs())
        # no per-request access log by default
        assert "/fn" not in h.stdout_path.read_text() + h.stderr_path.read_text()


# --------------------------------------------------------------------------
# headers


def test_python_headers_as_sent(tmp_path: Path) -> None:
    with Handler("python3", FUNCTIONS / "show-headers", tmp_path) as h:
        status, body = call(h, "/fn", b"", headers=["Lab: x", "User-Agent: tester/1.0", "X-Two-Words: y"])
        assert status == 200
        got = json.loads(body)
        assert got["Lab"] == "x"
        assert got["User-Agent"] == "tester/1.0"
        assert got["X-Two-Words"] == "y"


def test_nodejs_headers_lower_case(tmp_path: Path) -> None:
    with Handler("nodejs", FUNCTIONS / "show-headers-js", tmp_path) as h:
        status, body = call(h, "/fn", b"", headers=["Lab: x", "User-Agent: tester/1.0"])
        assert status == 200
        got = json.loads(body)
        assert got["lab"] == "x"
        assert got["user-agent"] == "tester/1.0"
        assert "Lab" not in got


# --------------------------------------------------------------------------
# python3 specifics


def test_python_none_input_and_none_output(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.py": "def fn(input, headers):\n    return 'none' if input is None else None\n"})
    with Handler("python3", code, tmp_path) as h:
        assert call(h, "/fn", b"") == (200, b"none")
        assert call(h, "/fn", b"something") == (200, b"")


def test_python_results_become_json_status_and_headers(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.py": """
def fn(input, headers):
    return {
        "dict": lambda: {"a": 1},
        "tuple": lambda: ("made", 201, {"X-A": "1", "Set-Cookie": ["a=1", "b=2"], "Content-Length": "1"}),
        "pair": lambda: (["x"], 404),
        "badname": lambda: ("x", 200, {"Bad Name": "v"}),
        "badstatus": lambda: ("x", "200"),
        "notjson": lambda: {"s": {1, 2}},
    }[input]()
"""})
    with Handler("python3", code, tmp_path) as h:
        assert call(h, "/fn", b"dict") == (200, b'{"a": 1}')
        args = curl_args(h, "/fn", b"tuple", (), "POST", CALL_TIMEOUT) + ["-i", "http://localhost/fn"]
        r = subprocess.run(args, input=b"tuple", capture_output=True, timeout=CALL_TIMEOUT + 10)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 201 "), head
        assert b"\r\nX-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2" in head, head
        assert head.count(b"Content-Length") == 1 and body == b"made", r.stdout
        assert b"Content-Type: text/plain; charset=utf-8" in head, head
        assert call(h, "/fn", b"pair") == (404, b'["x"]')
        assert call(h, "/fn", b"badname") == (500, b"fn returned header name 'Bad Name', which is not an HTTP header name")
        assert call(h, "/fn", b"badstatus") == (500, b"fn returned status '200'; a status is an int from 200 to 599")
        status, body = call(h, "/fn", b"notjson")
        assert status == 500 and body.startswith(b"the function's result is not JSON: "), body


def test_python_single_parameter_function(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.py": "def fn(input):\n    return 'old style: ' + (input or '')\n"})
    with Handler("python3", code, tmp_path) as h:
        assert call(h, "/fn", b"hi") == (200, b"old style: hi")


def test_python_code_dir_first_on_path(tmp_path: Path) -> None:
    # requirements.txt is installed into the code directory, and what is
    # there must win over anything installed system-wide (json is stdlib).
    code = make_function(tmp_path, {
        "fn.py": "import helper\nimport json\ndef fn(input, headers):\n    return helper.VALUE + json.MARK\n",
        "helper.py": "VALUE = 'from helper'\n",
        "json/__init__.py": "MARK = ' and local json'\n",
    })
    with Handler("python3", code, tmp_path) as h:
        assert call(h, "/fn", b"") == (200, b"from helper and local json")


def test_python_traceback_on_stderr(tmp_path: Path) -> None:
    with Handler("python3", TEST_FUNCTIONS / "fail", tmp_path) as h:
        assert call(h, "/fn", b"")[0] == 500
        deadline = time.monotonic() + 10
        while "ValueError: boom" not in h.stderr_path.read_text():
            assert time.monotonic() < deadline, h.logs()
            time.sleep(0.05)
        assert "Traceback" in h.stderr_path.read_text()


def test_python_multiline_exception_is_one_line(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.py": "def fn(i, h):\n    raise RuntimeError('line one\\nline two')\n"})
    with Handler("python3", code, tmp_path) as h:
        assert call(h, "/fn", b"") == (500, b"line one line two")


def test_python_binary_input_round_trips(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 8
    with Handler("python3", FUNCTIONS / "echo", tmp_path) as h:
        assert call(h, "/fn", payload) == (200, payload)


def test_python_big_output(tmp_path: Path) -> None:
    with Handler("python3", TEST_FUNCTIONS / "big", tmp_path) as h:
        status, body = call(h, "/fn", b"5000000")
        assert status == 200
        assert body == b"x" * 5_000_000


def test_python_calls_run_concurrently(tmp_path: Path) -> None:
    with Handler("python3", TEST_FUNCTIONS / "sleep", tmp_path) as h:
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda _: call(h, "/fn", b"2"), range(10)))
        elapsed = time.monotonic() - start
        assert all(r == (200, b"slept") for r in results)
        # Each call ran to its end (the function prints when it has slept).
        assert h.stdout_path.read_text().count("slept 2.0s\n") == 10, h.logs()
        # 10 calls of 2 s each take 20 s one after another.
        assert elapsed < 15, f"calls were not concurrent: {elapsed:.1f}s"


def test_python_crash_kills_the_handler(tmp_path: Path) -> None:
    h = Handler("python3", TEST_FUNCTIONS / "crash", tmp_path).start()
    try:
        assert call(h, "/fn", b"hello") == (200, b"alive")
        assert call(h, "/fn", b"crash", check=False)[0] in (0, 500)
        assert h.proc is not None
        assert h.proc.wait(timeout=10) == 3
    finally:
        h.stop()


def test_python_broken_fn_py_fails_at_start(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.py": "def fn(:\n"})
    h = Handler("python3", code, tmp_path)
    with pytest.raises(AssertionError, match="exited"):
        h.start()
    assert "SyntaxError" in h.stderr_path.read_text()


# --------------------------------------------------------------------------
# nodejs specifics


def test_nodejs_sieve(tmp_path: Path) -> None:
    with Handler("nodejs", FUNCTIONS / "sieve", tmp_path) as h:
        for _ in range(3):
            assert call(h, "/fn", b"") == (200, b"Found 1229 primes under 10000")


def test_nodejs_package_json_main(tmp_path: Path) -> None:
    code = make_function(tmp_path, {
        "package.json": json.dumps({"name": "x", "main": "lib/entry.js"}),
        "lib/entry.js": "module.exports = (req, res) => res.send('from main');\n",
    })
    with Handler("nodejs", code, tmp_path) as h:
        assert call(h, "/fn", b"") == (200, b"from main")


def test_nodejs_es_module(tmp_path: Path) -> None:
    code = make_function(tmp_path, {
        "package.json": json.dumps({"name": "esm", "type": "module", "main": "main.js"}),
        "main.js": "export default (req, res) => res.send('esm ' + req.body);\n",
    })
    with Handler("nodejs", code, tmp_path) as h:
        assert call(h, "/fn", b"ok") == (200, b"esm ok")


def test_nodejs_default_export(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": "exports.default = (req, res) => res.send('default export');\n"})
    with Handler("nodejs", code, tmp_path) as h:
        assert call(h, "/fn", b"") == (200, b"default export")


def test_nodejs_express_style_response_api(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": """
module.exports = (req, res) => {
  switch (req.body) {
    case "json": return res.json({ a: 1, path: req.path, method: req.method, q: req.query });
    case "object": return res.send({ b: [1, 2] });
    case "buffer": return res.send(Buffer.from("bytes"));
    case "status": return res.status(201).send("created");
    case "header": return res.set("X-Custom", "1").header("X-Other", "2").send(res.get("X-Custom") + req.get("Lab"));
    case "end": res.write("par"); return res.end("tial");
    case "sendStatus": return res.sendStatus(202);
    case "number": return res.send(1229);
    case "notfound": return res.status(404).send("no such thing");
    case "async": return new Promise((resolve) => setTimeout(() => { res.send("later"); resolve(); }, 10));
    case "reject": return Promise.reject(new Error("rejected\\nbadly"));
    case "asyncthrow": return (async () => { throw new TypeError("async boom"); })();
    case "twice": res.send("first"); return res.send("second");
    default: return res.send("default");
  }
};
"""})
    with Handler("nodejs", code, tmp_path) as h:
        status, body = call(h, "/fn?x=1&y=2", b"json")
        assert status == 200
        assert json.loads(body) == {"a": 1, "path": "/fn", "method": "POST", "q": {"x": "1", "y": "2"}}
        assert call(h, "/fn", b"object") == (200, b'{"b":[1,2]}')
        assert call(h, "/fn", b"buffer") == (200, b"bytes")
        assert call(h, "/fn", b"status") == (201, b"created")
        assert call(h, "/fn", b"header", headers=["Lab: L"]) == (200, b"1L")
        assert call(h, "/fn", b"end") == (200, b"partial")
        assert call(h, "/fn", b"sendStatus") == (202, b"Accepted")
        assert call(h, "/fn", b"number") == (200, b"1229")
        assert call(h, "/fn", b"notfound") == (404, b"no such thing")
        assert call(h, "/fn", b"async") == (200, b"later")
        assert call(h, "/fn", b"reject") == (500, b"rejected badly")
        assert call(h, "/fn", b"asyncthrow") == (500, b"async boom")
        assert call(h, "/fn", b"twice") == (200, b"first")
        assert call(h, "/health") == (200, b"OK")


def test_nodejs_error_discards_headers_set_before(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": "module.exports = (req, res) => { res.set('X-Leak', '1'); res.status(201); throw new Error('bad'); };\n"})
    with Handler("nodejs", code, tmp_path) as h:
        args = [CURL, "-sS", "-i", "--unix-socket", str(h.socket), "--max-time", "30",
                "--data-binary", "", "http://localhost/fn"]
        r = subprocess.run(args, capture_output=True, timeout=60)
        head, body = r.stdout.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 500")
        assert b"x-leak" not in head.lower()
        assert body == b"bad"


def test_nodejs_bad_export_fails_at_start(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": "module.exports = 42;\n"})
    h = Handler("nodejs", code, tmp_path)
    with pytest.raises(AssertionError, match="exited"):
        h.start()
    assert "must export a function" in h.stderr_path.read_text()


# --------------------------------------------------------------------------
# binary specifics


def test_binary_fn_sh_without_exec_bit_runs_via_sh(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "printf 'via sh: '\ncat\n"})
    with Handler("binary", code, tmp_path) as h:
        assert call(h, "/fn", b"in") == (200, b"via sh: in")


def test_binary_fn_sh_without_shebang_runs_via_sh(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "printf 'no shebang: '\ncat\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        assert call(h, "/fn", b"in") == (200, b"no shebang: in")


def test_binary_missing_fn_sh(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"README": "no fn.sh here\n"})
    with Handler("binary", code, tmp_path) as h:
        status, body = call(h, "/fn", b"")
        assert status == 500
        assert b"fn.sh not found" in body


def test_binary_killed_by_signal(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nkill -9 $$\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        assert call(h, "/fn", b"") == (500, b"fn.sh was killed by signal 9")


def test_binary_large_input_and_output_do_not_deadlock(tmp_path: Path) -> None:
    # Output starts before the input is read to its end: with stdin written
    # first and stdout read afterwards, both pipes fill up and both sides wait.
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' y\ncat\n"}, ["fn.sh"])
    payload = os.urandom(2_000_000)
    with Handler("binary", code, tmp_path) as h:
        status, body = call(h, "/fn", payload)
        assert status == 200
        assert body == b"y" * 3_000_000 + payload


def test_binary_input_not_read(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\necho ignored the input\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        assert call(h, "/fn", b"z" * 1_000_000) == (200, b"ignored the input\n")


def test_binary_output_limit(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nexec cat /dev/zero\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        status, body = call(h, "/fn", b"")
        assert status == 500
        assert b"output exceeds" in body
        assert call(h, "/health") == (200, b"OK")


def test_binary_binary_data_round_trips(tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    with Handler("binary", FUNCTIONS / "echo-binary", tmp_path) as h:
        assert call(h, "/fn", payload) == (200, payload)


def test_binary_calls_run_concurrently(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nsleep 2\ncat\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda i: call(h, "/fn", str(i).encode()), range(10)))
        elapsed = time.monotonic() - start
        assert results == [(200, str(i).encode()) for i in range(10)]
        assert elapsed < 15, f"calls were not concurrent: {elapsed:.1f}s"


def test_binary_fn_sh_gets_default_sigpipe(tmp_path: Path) -> None:
    # `yes | head` only ends because yes dies of SIGPIPE; an inherited
    # SIG_IGN would make it spin on EPIPE errors instead... or print them.
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nyes | head -n 3\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        assert call(h, "/fn", b"", timeout=20) == (200, b"y\ny\ny\n")
        assert "Broken pipe" not in h.stderr_path.read_text()


def test_binary_no_descriptors_leak_into_fn_sh(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nls /proc/self/fd\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        status, body = call(h, "/fn", b"")
        assert status == 200
        # 0-2 for fn.sh, plus the one `ls` opens to read the directory.
        fds = sorted(int(x) for x in body.split())
        assert fds[:3] == [0, 1, 2]
        assert len(fds) <= 4, fds


def sleeps_left(marker: str) -> List[int]:
    """pids of `sleep MARKER` processes (MARKER: a duration unique to a test)."""
    r = subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True, text=True, timeout=10)
    return [int(x) for x in r.stdout.split()]


def wait_no_sleeps(marker: str, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while sleeps_left(marker):
        assert time.monotonic() < end, f"`sleep {marker}` still running: {sleeps_left(marker)}"
        time.sleep(0.05)


def test_binary_deadline_header_kills_the_calls_process_group(tmp_path: Path) -> None:
    # fn.sh and a child it started in the background both outlive the
    # call's time; the handler stops the whole group when the time is up.
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nsleep 31.41 &\nsleep 31.41\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        start = time.monotonic()
        status, body = call(h, "/fn", b"", headers=["X-tinyFaaS-Timeout-Ms: 300"], timeout=20)
        assert (status, body) == (500, b"fn.sh was stopped: the call's timeout passed")
        assert time.monotonic() - start < 10
        wait_no_sleeps("31.41")
        assert call(h, "/health") == (200, b"OK")


def test_binary_closed_connection_kills_the_calls_process_group(tmp_path: Path) -> None:
    # No deadline header: the caller giving up (closing its connection) is
    # what stops the call.
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nsleep 32.41 &\nsleep 32.41\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        assert call(h, "/fn", b"", timeout=1, check=False) == (0, b"")
        wait_no_sleeps("32.41")
        assert call(h, "/health") == (200, b"OK")


def test_binary_processes_left_behind_end_with_fn_sh(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": "#!/bin/sh\nsleep 33.41 >/dev/null 2>&1 &\necho done\n"}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        assert call(h, "/fn", b"") == (200, b"done\n")
        wait_no_sleeps("33.41")


def test_binary_body_limit(tmp_path: Path) -> None:
    with Handler("binary", FUNCTIONS / "echo-binary", tmp_path) as h:
        big = tmp_path / "big.bin"
        with open(big, "wb") as f:
            f.truncate(17 * 1024 * 1024)
        args = [CURL, "-sS", "--unix-socket", str(h.socket), "--max-time", "60",
                "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", f"@{big}", "http://localhost/fn"]
        r = subprocess.run(args, capture_output=True, timeout=90)
        # curl may see the reset before the 413 when it is still sending
        assert r.stdout in (b"413", b"000"), (r.stdout, r.stderr)
        assert call(h, "/health") == (200, b"OK")


# --------------------------------------------------------------------------
# nodejs, python3 and binary: the daemon's length-prefixed framing
# (src/proxy/handler_frame.hpp), spoken here by hand with a plain socket.


class FramedConnection:
    """One connection in the framing: preface once, then request/response frames."""

    def __init__(self, h: Handler):
        import socket
        import struct

        self.struct = struct
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(CALL_TIMEOUT)
        self.sock.connect(str(h.socket))
        self.sock.sendall(b"\0TF2")
        # The headers of the last answer, in order, as (name, value) strings.
        self.headers: list = []

    def call(self, body: bytes = b"", headers: Sequence[Tuple[bytes, bytes]] = ()) -> Tuple[int, bytes]:
        pack, unpack = self.struct.pack, self.struct.unpack
        block = b"".join(pack(">H", len(n)) + n + pack(">I", len(v)) + v for n, v in headers)
        self.sock.sendall(pack(">II", len(block), len(body)) + block + body)
        status, block_size, size = unpack(">III", self.read(12))
        answered = self.read(block_size)
        self.headers = []
        at = 0
        while at < len(answered):
            (n,) = unpack(">H", answered[at:at + 2])
            name = answered[at + 2:at + 2 + n].decode("latin-1")
            at += 2 + n
            (v,) = unpack(">I", answered[at:at + 4])
            self.headers.append((name, answered[at + 4:at + 4 + v].decode("latin-1")))
            at += 4 + v
        return status, self.read(size)

    def read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("handler closed the framed connection")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def test_nodejs_framed_calls_share_one_connection(tmp_path: Path) -> None:
    with Handler("nodejs", FUNCTIONS / "echo-js", tmp_path) as h:
        conn = FramedConnection(h)
        try:
            for payload in (b"hello", "grüße ✓".encode(), b"", b"x" * 300_000):
                assert conn.call(payload) == (200, payload)
        finally:
            conn.close()
        # HTTP keeps working on the same socket.
        assert call(h, "/fn", b"after") == (200, b"after")


def test_python3_framed_calls_share_one_connection(tmp_path: Path) -> None:
    with Handler("python3", FUNCTIONS / "echo", tmp_path) as h:
        conn = FramedConnection(h)
        try:
            # Bytes that are not UTF-8 come back as sent (surrogateescape).
            for payload in (b"hello", "grüße ✓".encode(), b"\xff\xfe", b"x" * 300_000):
                assert conn.call(payload) == (200, payload)
                assert conn.headers == [("Content-Type", "text/plain; charset=utf-8")]
        finally:
            conn.close()
        assert call(h, "/fn", b"after") == (200, b"after")


def test_python3_framed_headers_as_over_http(tmp_path: Path) -> None:
    """A function sees the same headers, in the same order, whichever way
    the daemon sent the call."""
    with Handler("python3", FUNCTIONS / "show-headers", tmp_path) as h:
        conn = FramedConnection(h)
        try:
            status, body = conn.call(b"abc", [(b"Lab", b"x"), (b"X-Multi", b"1"), (b"X-Multi", b"2"),
                                              (b"X-Tinyfaas-Timeout-Ms", b"999")])
        finally:
            conn.close()
        assert status == 200
        framed = json.loads(body)
        assert list(framed.items()) == [("Host", "localhost"), ("Lab", "x"), ("X-Multi", "2"),
                                        ("X-Tinyfaas-Timeout-Ms", "999"), ("Content-Length", "3")]
        # The same call over HTTP, as the proxy writes it (Host first,
        # Content-Length last).
        import socket
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(CALL_TIMEOUT)
            sock.connect(str(h.socket))
            sock.sendall(b"POST /fn HTTP/1.1\r\nHost: localhost\r\nLab: x\r\nX-Multi: 1\r\nX-Multi: 2\r\n"
                         b"X-Tinyfaas-Timeout-Ms: 999\r\nContent-Length: 3\r\n\r\nabc")
            sock.shutdown(socket.SHUT_WR)  # the handler closes after its answer
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == framed


def test_python3_framed_answer_carries_status_and_headers(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.py": """
def fn(input, headers):
    if input == "tuple":
        return '{"ok": true}', 201, {"X-A": 1, "Set-Cookie": ["a=1", "b=2"], "Content-Type": "application/json",
                                     "Content-Length": "999"}
    if input == "dict":
        return {"n": 1}
    if input == "none":
        return None
    if input == "raise":
        raise RuntimeError("no\\nway")
    if input == "bad status":
        return "x", 99
    return input
"""})
    with Handler("python3", code, tmp_path) as h:
        conn = FramedConnection(h)
        try:
            assert conn.call(b"tuple") == (201, b'{"ok": true}')
            assert conn.headers == [("X-A", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                                    ("Content-Type", "application/json")]
            assert conn.call(b"dict") == (200, b'{"n": 1}')
            assert conn.headers == [("Content-Type", "application/json")]
            assert conn.call(b"none") == (200, b"")
            assert conn.headers == []
            # A failed call is a 500 with the reason, on a connection that
            # goes on serving.
            assert conn.call(b"raise") == (500, b"no way")
            status, body = conn.call(b"bad status")
            assert status == 500 and b"status 99" in body, body
            assert conn.call(b"still") == (200, b"still")
        finally:
            conn.close()


# An old preface and a header block whose name runs past its end.
BAD_FRAMES = (b"\0TF1\0\0\0\0\0\0\0\x01x", b"\0TF2\0\0\0\x03\0\0\0\0\x00\x09a")


def assert_bad_frames_close_their_connection(h: Handler, frames: Sequence[bytes]) -> None:
    """Each of `frames` on a connection of its own is answered by closing it;
    the handler goes on serving."""
    import socket
    for sent in frames:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(CALL_TIMEOUT)
            sock.connect(str(h.socket))
            sock.sendall(sent)
            assert sock.recv(100) == b"", sent
    assert call(h, "/health") == (200, b"OK")


def test_python3_framed_connection_with_a_bad_preface_or_block_is_closed(tmp_path: Path) -> None:
    with Handler("python3", FUNCTIONS / "echo", tmp_path) as h:
        assert_bad_frames_close_their_connection(h, BAD_FRAMES)


def test_binary_framed_calls_share_one_connection(tmp_path: Path) -> None:
    with Handler("binary", FUNCTIONS / "echo-binary", tmp_path) as h:
        conn = FramedConnection(h)
        try:
            for payload in (b"hello", b"\x00\xff binary", b"", b"x" * 300_000):
                assert conn.call(payload) == (200, payload)
                assert conn.headers == []
        finally:
            conn.close()
        assert call(h, "/fn", b"after") == (200, b"after")


def test_binary_framed_failures_and_the_calls_time_left(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"fn.sh": """#!/bin/sh
read what
case "$what" in
  fail) echo "it broke" >&2; exit 3 ;;
  slow) sleep 30 ;;
  *) echo "ok $what" ;;
esac
"""}, ["fn.sh"])
    with Handler("binary", code, tmp_path) as h:
        conn = FramedConnection(h)
        try:
            assert conn.call(b"fail\n") == (500, b"fn.sh exited with status 3: it broke")
            assert conn.headers == [("Content-Type", "text/plain; charset=utf-8")]
            # The call's X-Tinyfaas-Timeout-Ms ends fn.sh, whatever case the name has.
            started = time.monotonic()
            status, body = conn.call(b"slow\n", [(b"x-tinyfaas-timeout-ms", b"300")])
            assert (status, body) == (500, b"fn.sh was stopped: the call's timeout passed")
            assert time.monotonic() - started < 20
            assert conn.call(b"again\n") == (200, b"ok again\n")
        finally:
            conn.close()


def test_binary_framed_connection_with_a_bad_frame_is_closed(tmp_path: Path) -> None:
    with Handler("binary", FUNCTIONS / "echo-binary", tmp_path) as h:
        beyond_the_body_limit = b"\0TF2\0\0\0\0\x04\0\0\0"  # 64 MiB announced
        assert_bad_frames_close_their_connection(h, (*BAD_FRAMES, beyond_the_body_limit))


def test_nodejs_framed_headers_as_over_http(tmp_path: Path) -> None:
    with Handler("nodejs", FUNCTIONS / "show-headers-js", tmp_path) as h:
        conn = FramedConnection(h)
        try:
            status, body = conn.call(b"abc", [(b"Lab", b"x"), (b"X-Multi", b"1"), (b"X-Multi", b"2")])
        finally:
            conn.close()
        assert status == 200
        assert json.loads(body) == {"host": "localhost", "lab": "x", "x-multi": "1, 2", "content-length": "3"}


def test_nodejs_framed_express_style_response_api(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": """
module.exports = (req, res) => {
  switch (req.body) {
    case "json": return res.json({ path: req.path, method: req.method, q: req.query, lab: req.get("Lab") });
    case "buffer": return res.send(Buffer.from("bytes"));
    case "status": return res.status(201).send("created");
    case "end": res.write("par"); return res.end("tial");
    case "sendStatus": return res.sendStatus(202);
    case "async": return new Promise((resolve) => setTimeout(() => { res.send("later"); resolve(); }, 10));
    case "reject": return Promise.reject(new Error("rejected\\nbadly"));
    case "throw": res.set("X-Leak", "1"); res.write("half"); throw new Error("boom");
    case "twice": res.send("first"); return res.send("second");
    default: return res.send("default");
  }
};
"""})
    with Handler("nodejs", code, tmp_path) as h:
        conn = FramedConnection(h)
        try:
            status, body = conn.call(b"json", [(b"Lab", b"L")])
            assert status == 200
            assert json.loads(body) == {"path": "/fn", "method": "POST", "q": {}, "lab": "L"}
            assert conn.call(b"buffer") == (200, b"bytes")
            assert conn.call(b"status") == (201, b"created")
            assert conn.call(b"end") == (200, b"partial")
            assert conn.call(b"sendStatus") == (202, b"Accepted")
            assert conn.call(b"async") == (200, b"later")
            assert conn.call(b"reject") == (500, b"rejected badly")
            # Nothing of a response reaches the proxy before end(): a throw
            # after write() is still a clean 500 on a usable connection.
            assert conn.call(b"throw") == (500, b"boom")
            assert conn.call(b"twice") == (200, b"first")
            assert conn.call(b"other") == (200, b"default")
        finally:
            conn.close()


def test_nodejs_framed_answer_carries_the_functions_headers(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": """
module.exports = (req, res) => {
  if (req.body === "throw") { res.set("X-Leak", "1"); throw new Error("no"); }
  res.status(201).set("X-A", "1").set("Set-Cookie", ["a=1", "b=2"]).type("json").send('{"ok":true}');
};
"""})
    with Handler("nodejs", code, tmp_path) as h:
        conn = FramedConnection(h)
        try:
            assert conn.call(b"") == (201, b'{"ok":true}')
            assert conn.headers == [("X-A", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
                                    ("Content-Type", "application/json; charset=utf-8")]
            # A failed call's answer carries none of the headers set before.
            assert conn.call(b"throw") == (500, b"no")
            assert conn.headers == [("Content-Type", "text/plain; charset=utf-8")]
        finally:
            conn.close()


def test_nodejs_return_values_and_promises_answer(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": """
module.exports = (req, res) => {
  switch (req.body) {
    case "string": return "returned";
    case "object": res.status(202); return { queued: true };
    case "promise": return new Promise((resolve) => setTimeout(() => resolve("promised"), 5));
    case "empty": return Promise.resolve().then(() => { res.status(204); });
    case "chained": return res.status(201);
    case "callback": setTimeout(() => res.send("called back"), 5); return undefined;
    case "cyclic": { const o = {}; o.o = o; return o; }
  }
};
"""})
    with Handler("nodejs", code, tmp_path) as h:
        conn = FramedConnection(h)
        try:
            assert conn.call(b"string") == (200, b"returned")
            assert ("Content-Type", "text/plain; charset=utf-8") in conn.headers
            assert conn.call(b"object") == (202, b'{"queued":true}')
            assert conn.call(b"promise") == (200, b"promised")
            assert conn.call(b"empty") == (204, b"")
            assert conn.call(b"callback") == (200, b"called back")
            status, body = conn.call(b"cyclic")
            assert status == 500 and b"circular" in body, body
        finally:
            conn.close()
        # Over HTTP the same.
        assert call(h, "/fn", b"object") == (202, b'{"queued":true}')


def test_nodejs_function_without_res_that_returns_nothing_answers_an_empty_200(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": "module.exports = (req) => { };\n"})
    with Handler("nodejs", code, tmp_path) as h:
        conn = FramedConnection(h)
        try:
            assert conn.call(b"x") == (200, b"")
            assert conn.call(b"y") == (200, b"")
        finally:
            conn.close()
        assert h.stderr_path.read_text().count("returned undefined and takes no res") == 1


def test_nodejs_callback_style_function_that_never_answers_is_logged_at_its_timeout(tmp_path: Path) -> None:
    code = make_function(tmp_path, {"index.js": "module.exports = (req, res) => { };\n"})
    with Handler("nodejs", code, tmp_path) as h:
        conn = FramedConnection(h)
        try:
            conn.sock.sendall(b"\0\0\0\x1d\0\0\0\0" + b"\0\x15X-Tinyfaas-Timeout-Ms\0\0\0\x0250")
            deadline = time.monotonic() + 10
            while "never ended res" not in h.stderr_path.read_text():
                assert time.monotonic() < deadline, h.stderr_path.read_text()
                time.sleep(0.05)
        finally:
            conn.close()
