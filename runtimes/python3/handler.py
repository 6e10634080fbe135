#!/usr/bin/env python3
"""tinyFaaS function handler for Python 3 (standard library only).

Serves the handler contract on the Unix socket named by TINYFAAS_SOCKET:
  GET  /health -> 200 "OK"
  POST /fn     -> fn.fn(input, headers) from fn.py in the working directory
A connection that opens with the preface "\\0TF2" speaks the daemon's
length-prefixed framing instead (src/proxy/handler_frame.hpp): the same
calls without parsing HTTP.
"""

import functools
import inspect
import json as _json
import re
import os
import signal
import socket
import socketserver
import struct
import sys
import traceback
import typing

# A standby's control socket (_take_assignment): "ready\n" goes there once
# calls are served, which spares the daemon polling /health. Inherited (the
# process backend) or connected to (a container inherits no descriptors).
CONTROL_FD = os.environ.get("TINYFAAS_CONTROL_FD", "")
if not CONTROL_FD and os.environ.get("TINYFAAS_CONTROL_SOCKET"):
    _control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _control.connect(os.environ["TINYFAAS_CONTROL_SOCKET"])
    CONTROL_FD = str(_control.detach())


def _take_assignment(fd: int) -> None:
    """A standby (the process backend's warm pool) starts with no function
    and the platform's defaults only, says "standby" once it is up, and is
    handed one function, once, as NUL-ended records up to an empty one: the
    function's folder, a program to run instead (always "-" here: the
    binary runtime's standby starts go handlers), then the environment that
    replaces this one. No tenant's code ran here before."""
    os.write(fd, b"standby\n")  # up and waiting: the daemon hands out only such
    got = b""
    while b"\0\0" not in got:
        chunk = os.read(fd, 65536)
        if not chunk:  # the daemon closed it: this standby is not needed
            sys.exit(0)
        got += chunk
    records = got[: got.index(b"\0\0")].decode("utf-8", "surrogateescape").split("\0")
    os.environ.clear()
    for entry in records[2:]:
        name, _, value = entry.partition("=")
        os.environ[name] = value
    os.chdir(records[0])


def _signal_ready() -> None:
    if not CONTROL_FD:
        return
    try:
        os.write(int(CONTROL_FD), b"ready\n")
    except OSError:
        pass  # the daemon stopped waiting; /health still answers
    os.close(int(CONTROL_FD))


if CONTROL_FD and os.environ.get("TINYFAAS_STANDBY") == "1":
    _take_assignment(int(CONTROL_FD))

SOCKET_PATH = os.environ.get("TINYFAAS_SOCKET", "")
# The process backend binds and listens itself and hands the socket over
# as a descriptor, so the sandbox needs no path on the host; custom
# runtimes and the docker backend bind TINYFAAS_SOCKET.
LISTEN_FD = os.environ.get("TINYFAAS_LISTEN_FD", "")

# The function's folder comes first on sys.path (requirements.txt installs
# there), so a json package of its own must still import as `json`: this
# handler keeps its own reference and forgets the module's name.
for _name in [n for n in sys.modules if n == "json" or n.startswith("json.")]:
    del sys.modules[_name]

# Bodies are decoded with surrogateescape so that bytes which are not UTF-8
# survive a round trip through a function that passes its input on.
ENCODING = "utf-8"
ERRORS = "surrogateescape"


def _load_function() -> typing.Callable[[typing.Optional[str], dict], typing.Any]:
    # requirements.txt is installed with `pip install --target <codedir>`, so
    # the code directory must come before anything else on the path.
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)
    import fn as module  # type: ignore  # noqa: E402

    func = getattr(module, "fn", None)
    if not callable(func):
        raise ImportError("fn.py must define a function fn(input, headers)")

    # Very old upstream functions take only the input; decide once here,
    # not per call.
    takes_headers = True
    try:
        params = list(inspect.signature(func).parameters.values())
        positional = [
            p
            for p in params
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        variadic = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
        takes_headers = variadic or len(positional) >= 2
    except (TypeError, ValueError):
        pass

    if takes_headers:
        return func
    return lambda data, headers: func(data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _ChunkedBodyError(Exception):
    pass


_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"


def _body(value: typing.Any) -> typing.Tuple[bytes, bytes]:
    """A body and its default Content-Type."""
    if value is None:
        return b"", b""
    if isinstance(value, str):
        return value.encode(ENCODING, ERRORS), _TEXT
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), b"application/octet-stream"
    if isinstance(value, (dict, list)):
        try:
            return _json.dumps(value).encode(ENCODING), _JSON
        except (TypeError, ValueError) as e:
            raise ValueError("the function's result is not JSON: %s" % _one_line(str(e))) from None
    # Numbers and the like, as upstream answered them.
    return str(value).encode(ENCODING, ERRORS), _TEXT


# This handler frames its own answer; the proxy drops these anyway.
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def _header(name: typing.Any, value: typing.Any) -> typing.Tuple[bytes, bytes]:
    # The proxy screens names and values again; here they only must not
    # break this handler's own HTTP framing.
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ValueError("fn returned header name %r, which is not an HTTP header name" % (name,))
    text = str(value).replace("\r", "").replace("\n", "")
    return name.encode("latin-1"), text.encode("latin-1", "replace")


def _answer(result: typing.Any) -> typing.Tuple[int, bytes, bytes, typing.List[typing.Tuple[bytes, bytes]]]:
    """What fn returned as (status, body, Content-Type, other headers):
    str, bytes, None, a dict or list (JSON), or (body, status[, headers])."""
    if not isinstance(result, tuple):
        body, content_type = _body(result)
        return 200, body, content_type, []
    if len(result) not in (2, 3):
        raise ValueError("fn returned a tuple of %d items; return (body, status) or (body, status, headers)" % len(result))
    status = result[1]
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError("fn returned status %r; a status is an int from 200 to 599" % (status,))
    headers = result[2] if len(result) == 3 else {}
    if not isinstance(headers, dict):
        raise TypeError("fn returned headers of type %s; return them as a dict" % type(headers).__name__)
    body, content_type = _body(result[0])
    pairs = []
    for name, value in headers.items():
        if str(name).lower() in _FRAMING:
            continue
        if str(name).lower() == "content-type":
            content_type = str(value).replace("\r", "").replace("\n", "").encode("latin-1", "replace")
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append(_header(name, v))
    return status, body, content_type, pairs


def _call(function: typing.Callable[[typing.Optional[str], dict], typing.Any], raw: bytes,
          headers: dict) -> typing.Tuple[int, bytes, bytes, typing.List[typing.Tuple[bytes, bytes]]]:
    """One call of the function, over HTTP or framed: its answer, or a 500
    saying why it failed."""
    data: typing.Optional[str] = raw.decode(ENCODING, ERRORS) if raw else None
    try:
        result = function(data, headers)
    except Exception as e:  # noqa: BLE001 - any function error is a 500
        traceback.print_exc()
        sys.stderr.flush()
        reason = _one_line(str(e)) or type(e).__name__
        return 500, reason.encode(ENCODING, "replace"), _TEXT, []
    try:
        return _answer(result)
    except (TypeError, ValueError) as e:
        sys.stderr.write("tinyfaas python3 handler: %s\n" % e)
        return 500, _one_line(str(e)).encode(ENCODING, "replace"), _TEXT, []


_PREFACE = b"\0TF2"
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_REQUEST_HEAD = struct.Struct(">II")
_RESPONSE_HEAD = struct.Struct(">III")


def _frame_headers(block: bytes, body_bytes: int) -> typing.Optional[dict]:
    """A request's header block as the function would get the same call's
    headers over HTTP (Host first, Content-Length last, the names as the
    proxy sent them, a repeated name's last value); None when its lengths
    do not add up."""
    headers = {"Host": "localhost"}
    at = 0
    while at < len(block):
        if at + 2 > len(block):
            return None
        (n,) = _U16.unpack_from(block, at)
        if at + 2 + n + 4 > len(block):
            return None
        name = block[at + 2:at + 2 + n].decode("latin-1")
        at += 2 + n
        (v,) = _U32.unpack_from(block, at)
        if at + 4 + v > len(block):
            return None
        value = block[at + 4:at + 4 + v].decode("latin-1")
        at += 4 + v
        if name.lower() not in ("host", "content-length"):
            headers[name] = value
    headers["Content-Length"] = str(body_bytes)
    return headers


def _encode_frame(status: int, body: bytes, content_type: bytes,
                  headers: typing.Sequence[typing.Tuple[bytes, bytes]]) -> bytes:
    if content_type:
        headers = [*headers, (b"Content-Type", content_type)]
    block = b"".join(_U16.pack(len(n)) + n + _U32.pack(len(v)) + v for n, v in headers if len(n) <= 0xFFFF)
    return _RESPONSE_HEAD.pack(status, len(block), len(body)) + block + body


class Handler(socketserver.StreamRequestHandler):
    """One connection: the daemon's framed calls, or HTTP/1.1 (health probes,
    custom clients), whose handler is built on its first use: http.server
    and what it imports (email, html, mimetypes) cost an idle instance
    about 7 MB, and the daemon frames every call."""

    function: typing.Callable[[typing.Optional[str], dict], typing.Any]

    def handle(self) -> None:
        # Peeked, not read: the HTTP handler reads the connection afresh.
        first = self.request.recv(1, socket.MSG_PEEK)
        if first == _PREFACE[:1]:
            self._serve_frames()
        elif first:
            _http_handler()(self.request, self.client_address, self.server)

    def _serve_frames(self) -> None:
        """One call at a time, as the proxy sends them; the connection is
        closed only when a frame cannot be read."""
        if self.rfile.read(len(_PREFACE)) != _PREFACE:
            return
        while True:
            head = self.rfile.read(_REQUEST_HEAD.size)
            if len(head) < _REQUEST_HEAD.size:
                return
            block_bytes, body_bytes = _REQUEST_HEAD.unpack(head)
            block = self.rfile.read(block_bytes)
            raw = self.rfile.read(body_bytes)
            if len(block) < block_bytes or len(raw) < body_bytes:
                return
            headers = _frame_headers(block, body_bytes)
            if headers is None:
                sys.stderr.write("tinyfaas python3 handler: a frame's header block does not add up\n")
                return
            self.wfile.write(_encode_frame(*_call(Handler.function, raw, headers)))


@functools.lru_cache(maxsize=None)
def _http_handler() -> type:
    import http.server

    class HttpHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "tinyfaas-python3"
        sys_version = ""

        def log_message(self, format: str, *args: typing.Any) -> None:
            # Quiet by default: a log line per call costs throughput, and the
            # base implementation indexes client_address, which is not a tuple
            # on a Unix socket.
            pass

        def log_error(self, format: str, *args: typing.Any) -> None:
            sys.stderr.write("tinyfaas python3 handler: " + (format % args) + "\n")

        def _reply(
            self, status: int, body: bytes, content_type: bytes = b"",
            headers: typing.Sequence[typing.Tuple[bytes, bytes]] = ()
        ) -> None:
            # One write per response: building it by hand skips the Date/Server
            # header formatting of send_response, which shows at high call rates.
            reason = self.responses.get(status, ("",))[0].encode("ascii")
            head = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (status, reason, len(body))
            if content_type:
                head += b"Content-Type: " + content_type + b"\r\n"
            for name, value in headers:
                head += name + b": " + value + b"\r\n"
            if self.close_connection:
                head += b"Connection: close\r\n"
            self.wfile.write(head + b"\r\n" + body)

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length = self.headers.get("Content-Length")
            if not length:
                return b""
            n = int(length)
            if n < 0:
                raise ValueError("negative Content-Length")
            return self.rfile.read(n)

        def _read_chunked(self) -> bytes:
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise _ChunkedBodyError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers end with an empty line
                    while True:
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)

        def _drain_body(self) -> None:
            try:
                self._read_body()
            except (ValueError, _ChunkedBodyError):
                self.close_connection = True

        def _path(self) -> str:
            q = self.path.find("?")
            return self.path if q < 0 else self.path[:q]

        def do_GET(self) -> None:
            self._drain_body()
            if self._path() == "/health":
                self._reply(200, b"OK", b"text/plain; charset=utf-8")
            else:
                self._reply(404, b"not found", b"text/plain; charset=utf-8")

        def do_POST(self) -> None:
            if self._path() != "/fn":
                self._drain_body()
                self._reply(404, b"not found", b"text/plain; charset=utf-8")
                return

            try:
                raw = self._read_body()
            except (ValueError, _ChunkedBodyError) as e:
                self.close_connection = True
                self._reply(400, _one_line(str(e)).encode(ENCODING, "replace"))
                return

            # dict() of the message keeps the names as the proxy sent them
            # (canonical capitalisation), as upstream functions expect.
            self._reply(*_call(Handler.function, raw, dict(self.headers.items())))

        def _not_found(self) -> None:
            self._drain_body()
            self._reply(404, b"not found", b"text/plain; charset=utf-8")

        def do_HEAD(self) -> None:
            # A body after a HEAD response would be read as the next response.
            self._drain_body()
            self._reply(404, b"")

        do_PUT = _not_found
        do_DELETE = _not_found
        do_PATCH = _not_found
        do_OPTIONS = _not_found

    return HttpHandler


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # Connections are long-lived keep-alive connections from the proxy;
    # waiting for their threads would block shutdown forever.
    block_on_close = False
    request_queue_size = 1024

    def server_bind(self) -> None:
        try:
            os.unlink(self.server_address)  # type: ignore[arg-type]
        except FileNotFoundError:
            pass
        super().server_bind()

    def handle_error(self, request: typing.Any, client_address: typing.Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return
        sys.stderr.write("tinyfaas python3 handler: error serving a connection\n")
        traceback.print_exc()


def _load_error_text(error: BaseException) -> str:
    """"fn.py:2: SyntaxError: '(' was never closed": the place in the
    function's own files, not this handler's frames."""
    what = type(error).__name__ + ": " + (str(error).splitlines() or [""])[0]
    if isinstance(error, SyntaxError) and error.filename:
        what = type(error).__name__ + ": " + str(error.msg)
        places = [(error.filename, error.lineno)]
    else:
        places = [(f.filename, f.lineno) for f in reversed(traceback.extract_tb(error.__traceback__))]
    cwd = os.getcwd() + os.sep
    for filename, line in places:
        path = os.path.abspath(filename)
        if path.startswith(cwd) and line is not None:
            return "%s:%d: %s" % (path[len(cwd) :], line, what)
    return what


def main() -> int:
    if not SOCKET_PATH and not LISTEN_FD:
        sys.stderr.write("tinyfaas python3 handler: TINYFAAS_SOCKET is not set\n")
        return 2

    # stdout/stderr are pipes to the daemon, which reads them line by line;
    # block buffering would hold a function's print() back indefinitely.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
        except (AttributeError, ValueError):
            pass

    try:
        Handler.function = staticmethod(_load_function())  # type: ignore[assignment]
    except Exception as e:  # noqa: BLE001 - any load failure ends the handler
        traceback.print_exc()
        # Last, on one line: the daemon's deploy reply quotes it.
        sys.stderr.write("tinyfaas python3 handler: cannot load the function: " + _load_error_text(e) + "\n")
        return 1

    if LISTEN_FD:
        server = Server(SOCKET_PATH, Handler, bind_and_activate=False)
        server.socket.close()
        # Not inherited by processes the function starts.
        os.set_inheritable(int(LISTEN_FD), False)
        server.socket = socket.socket(fileno=int(LISTEN_FD))
    else:
        server = Server(SOCKET_PATH, Handler)

    def stop(signum: int, frame: typing.Any) -> None:
        if not LISTEN_FD:
            try:
                os.unlink(SOCKET_PATH)
            except OSError:
                pass
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    _signal_ready()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
