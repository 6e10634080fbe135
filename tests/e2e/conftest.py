"""Fixtures and helpers for the tinyFaaS end-to-end suite.

Every test here starts the real `tinyfaas` binary (`$TINYFAAS_BIN`) on free
ports of 127.0.0.1 and talks to it only through independent clients:
Python's http.client for HTTP and the management API, libcoap's
`coap-client` for CoAP, curl through the upstream shell scripts, and the
`tinyfaas` CLI itself. Nothing here imports project code.

Conventions:
- all traffic goes to 127.0.0.1;
- every wait is a poll with a deadline, every loop is bounded;
- a daemon is stopped with SIGTERM and must exit 0 within 10 s leaving no
  handler process behind (`pgrep -f <state dir>` finds nothing);
- when a test fails, the tail of each involved daemon's stderr is attached
  to the report.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Iterable, Optional

import pytest

import docker_engine

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ.get("TINYFAAS_REPO", HERE.parent.parent)).resolve()
BIN = Path(os.environ.get("TINYFAAS_BIN", REPO / "build" / "src" / "tinyfaas"))

# Generous upper bounds: deploying a function with dependencies runs pip/npm.
UPLOAD_TIMEOUT = 300.0
CALL_TIMEOUT = 60.0
START_DEADLINE = 10.0
STOP_DEADLINE = 10.0

# Sample functions shipped with the product and test-only functions.
# key -> (folder relative to the repo, runtime)
FUNCTIONS = {
    "sieve": ("functions/sieve", "nodejs"),
    "echo": ("functions/echo", "python3"),
    "echo-js": ("functions/echo-js", "nodejs"),
    "echo-binary": ("functions/echo-binary", "binary"),
    "show-headers": ("functions/show-headers", "python3"),
    "show-headers-js": ("functions/show-headers-js", "nodejs"),
    "sleep": ("tests/functions/sleep", "python3"),
    "fail": ("tests/functions/fail", "python3"),
    "failjs": ("tests/functions/failjs", "nodejs"),
    "env": ("tests/functions/env", "python3"),
    "envjs": ("tests/functions/envjs", "nodejs"),
    "envbinary": ("tests/functions/envbinary", "binary"),
    "deps": ("tests/functions/deps", "python3"),
    "depsjs": ("tests/functions/depsjs", "nodejs"),
    "crash": ("tests/functions/crash", "python3"),
    "big": ("tests/functions/big", "python3"),
}

SIEVE_ANSWER = b"Found 1229 primes under 10000"

# The backend every daemon of this run uses unless a test asks for another:
# ctest runs the modules marked "e2e: both backends" once per backend.
BACKEND = os.environ.get("TINYFAAS_E2E_BACKEND", "process")

# For tests of a module run on both backends that start their own daemon
# with an explicit backend: running them twice would prove nothing new.
backend_independent = pytest.mark.skipif(BACKEND != "process",
                                         reason="does not depend on the backend; runs in the process pass")


# --------------------------------------------------------------------------
# small utilities


# For tests that must name a port themselves (flags against environment
# variables, an address nothing listens on); daemons bind port 0 and say
# which ports they got (Daemon._read_ports). Ports this process has handed
# out: the kernel may give the same free port to two binds in a row.
_handed_out: set[int] = set()


def free_tcp_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no TCP port that was not handed out already")


def free_udp_port() -> int:
    """A free UDP port below the kernel's ephemeral range. coap-client binds
    port 0 with SO_REUSEADDR, as libcoap's server socket does, so the kernel
    may hand a client the server's own port; that client then sends its
    request to itself and answers it (4.04 from its empty resource list). A
    port the kernel never hands out cannot collide."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    low = max(1024, ephemeral_low - 12000)
    for _ in range(200):
        port = random.randint(low, ephemeral_low - 1)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free UDP port in {low}-{ephemeral_low - 1}")


def wait_until(pred, deadline_s: float, interval: float = 0.05, what: str = "condition"):
    """Polls pred() until it returns a truthy value or the deadline passes.

    Returns that value; raises AssertionError on timeout. Bounded in time and
    (through the interval) in count.
    """
    end = time.monotonic() + deadline_s
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polled predicates may raise while not ready
            last_exc = e
        if time.monotonic() >= end:
            raise AssertionError(
                f"timed out after {deadline_s:.1f}s waiting for {what}"
                + (f" (last error: {last_exc!r})" if last_exc else "")
            )
        time.sleep(interval)


def fn_dir(key: str) -> Path:
    rel, _ = FUNCTIONS[key]
    p = REPO / rel
    if not p.is_dir():
        pytest.fail(f"function folder {rel} is missing from the repository ({p})", pytrace=False)
    return p


def fn_env(key: str) -> str:
    return FUNCTIONS[key][1]


def zip_folder_b64(folder: Path) -> str:
    """Zips a function folder the way upstream's upload.sh does
    (`cd DIR && zip -r - ./* | base64`)."""
    if shutil.which("zip"):
        out = subprocess.run(
            ["sh", "-c", "zip -q -r - ./*"], cwd=folder, capture_output=True, check=True, timeout=60
        ).stdout
    else:  # same layout without the zip tool: relative paths, no leading ./
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.rglob("*")):
                if any(part.startswith(".") for part in p.relative_to(folder).parts):
                    continue
                z.write(p, p.relative_to(folder).as_posix())
        out = buf.getvalue()
    return base64.b64encode(out).decode("ascii")


def zip_entries_b64(entries: Iterable[tuple]) -> str:
    """Builds a zip from (ZipInfo-or-name, bytes) pairs, for hostile uploads."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in entries:
            z.writestr(info, data)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def coap_client_binary() -> str:
    explicit = os.environ.get("COAP_CLIENT")
    if explicit:
        return explicit
    for name in ("coap-client", "coap-client-notls", "coap-client-openssl", "coap-client-gnutls"):
        p = shutil.which(name)
        if p:
            return p
    pytest.fail("libcoap's coap-client is not installed (Debian: libcoap3-bin)", pytrace=False)


def ere_escape(s: str) -> str:
    """Escapes `s` for a POSIX extended regex (pgrep's pattern language)."""
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", s)


def pids_matching(pattern: str) -> list[int]:
    """pids whose full command line matches the extended regex `pattern`."""
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=10)
    return [int(x) for x in r.stdout.split()]


def cmdlines_matching(pattern: str) -> dict[int, str]:
    r = subprocess.run(["pgrep", "-a", "-f", pattern], capture_output=True, text=True, timeout=10)
    out = {}
    for line in r.stdout.splitlines():
        pid, _, cmd = line.partition(" ")
        out[int(pid)] = cmd
    return out


def mapped_files(pid: int) -> set[str]:
    """The files process `pid` has mapped (libraries, modules), from /proc."""
    with open(f"/proc/{pid}/maps") as f:
        return {line.split()[-1] for line in f if len(line.split()) >= 6}


def listening_ports(pid: int) -> dict[str, set[int]]:
    """TCP ports in LISTEN state and bound UDP ports held by process `pid`,
    read from /proc (no extra tools)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    result = {"tcp": set(), "udp": set()}
    for proto, files, want_state in (
        ("tcp", ("/proc/net/tcp", "/proc/net/tcp6"), "0A"),
        ("udp", ("/proc/net/udp", "/proc/net/udp6"), None),
    ):
        for f in files:
            try:
                lines = Path(f).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if inode in inodes and (want_state is None or state == want_state):
                    result[proto].add(int(local.rsplit(":", 1)[1], 16))
    return result


def one_line_reason(body: bytes) -> str:
    """Asserts `body` is a non-empty, single-line reason; returns it."""
    text = body.decode("utf-8", "replace")
    stripped = text.rstrip("\r\n")
    assert stripped.strip(), f"empty reason in body {body!r}"
    assert "\n" not in stripped, f"reason is not one line: {text!r}"
    return stripped


# --------------------------------------------------------------------------
# HTTP and CoAP clients


@dataclasses.dataclass
class HttpResult:
    status: int
    body: bytes
    headers: dict
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http_request(
    port: int,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[dict] = None,
    timeout: float = CALL_TIMEOUT,
) -> HttpResult:
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        try:
            conn.request(method, path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            # A server may answer (e.g. 413) and close before reading a
            # large body; the answer can still be read.
            pass
        resp = conn.getresponse()
        data = resp.read()
        return HttpResult(resp.status, data, {k.lower(): v for k, v in resp.getheaders()}, time.monotonic() - t0)
    finally:
        conn.close()


@dataclasses.dataclass
class CoapResult:
    code: Optional[str]  # e.g. "2.05"; None when no response arrived
    payload: bytes  # payload of a 2.xx answer (all blocks)
    log: str  # coap-client's -v 6 output (PDU dumps)
    stderr: str
    elapsed: float


_CODE_RE = re.compile(r"^v:1 t:(?:CON|NON|ACK|RST) c:(\d\.\d\d) ", re.M)


def coap_request(
    port: int,
    name: str,
    payload: Optional[bytes] = None,
    method: str = "get",
    block: Optional[int] = None,
    non: bool = False,
    timeout: float = 30.0,
) -> CoapResult:
    """Calls coap://127.0.0.1:port/name with libcoap's coap-client.

    The answer code is the last response code in coap-client's PDU log
    (-v 6); the payload is what it wrote to its -o file (only for 2.xx).
    """
    tmp = tempfile.mkdtemp(prefix="tfcoap-")
    try:
        out = os.path.join(tmp, "out")
        args = [coap_client_binary(), "-v", "6", "-B", str(int(timeout)), "-m", method, "-o", out]
        if payload is not None:
            inp = os.path.join(tmp, "in")
            with open(inp, "wb") as f:
                f.write(payload)
            args += ["-f", inp]
        if block:
            args += ["-b", str(block)]
        if non:
            args.append("-N")
        args.append(f"coap://127.0.0.1:{port}/{name}")
        t0 = time.monotonic()
        r = subprocess.run(args, capture_output=True, timeout=timeout + 15)
        elapsed = time.monotonic() - t0
        log = r.stdout.decode("utf-8", "replace")
        codes = _CODE_RE.findall(log)
        data = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                data = f.read()
        return CoapResult(codes[-1] if codes else None, data, log, r.stderr.decode("utf-8", "replace"), elapsed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def coap_popen(port: int, name: str, payload: bytes, workdir: str, method: str = "post") -> subprocess.Popen:
    """Starts coap-client in the background (for overlap tests)."""
    inp = os.path.join(workdir, f"in-{name}")
    with open(inp, "wb") as f:
        f.write(payload)
    args = [
        coap_client_binary(), "-v", "6", "-B", "60", "-m", method,
        "-o", os.path.join(workdir, f"out-{name}"), "-f", inp,
        f"coap://127.0.0.1:{port}/{name}",
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# --------------------------------------------------------------------------
# the daemon

_report_daemons: list["Daemon"] = []


class Daemon:
    """One running `tinyfaas serve` with its own state dir and ports.

    http_port / coap_port / grpc_port: an int is passed as a flag (-1
    disables, 0, the default, lets the daemon pick a free port); None passes
    no flag (the environment or the default decides). gRPC is off unless
    asked for. Whatever was asked for, mport/hport/cport/gport are the ports
    the daemon reports in its --ports-file (-1: disabled); expect_http and
    expect_coap, when given, must match them.
    """

    def __init__(
        self,
        *,
        http_port: Optional[int] = 0,
        coap_port: Optional[int] = 0,
        extra_args: Iterable[str] = (),
        env: Optional[dict] = None,
        expect_http: Optional[int] = None,
        expect_coap: Optional[int] = None,
        state_dir: Optional[str] = None,
        grpc_port: Optional[int] = -1,
    ):
        if not BIN.exists():
            pytest.fail(f"tinyfaas binary not found at {BIN} (set TINYFAAS_BIN)", pytrace=False)
        self._kwargs = dict(http_port=http_port, coap_port=coap_port, extra_args=tuple(extra_args), env=env,
                            expect_http=expect_http, expect_coap=expect_coap, state_dir=state_dir)
        self.root = tempfile.mkdtemp(prefix="tfe2e-", dir="/tmp")  # logs
        # A short state dir (/tmp/tXXXXXXXX, 14 characters): handler
        # sockets live below it and sun_path holds 108 bytes, so with it any
        # valid function name fits (test_lifecycle checks longer dirs).
        self.own_state_dir = state_dir is None
        if state_dir is None:
            state_dir = tempfile.mkdtemp(prefix="t", dir="/tmp")
        self.state_dir = state_dir
        self.log_path = os.path.join(self.root, "daemon.stderr")
        self.out_path = os.path.join(self.root, "daemon.stdout")
        self.ports_path = os.path.join(self.root, "ports.json")
        self._expected = {"http": expect_http if expect_http is not None else http_port,
                          "coap": expect_coap if expect_coap is not None else coap_port}
        args = [str(BIN), "serve", "--management-port", "0", "--ports-file", self.ports_path]
        if http_port is not None:
            args += ["--http-port", str(http_port)]
        if coap_port is not None:
            args += ["--coap-port", str(coap_port)]
        if grpc_port is not None:
            args += ["--grpc-port", str(grpc_port)]
        # Defaults that extra_args may override (the daemon refuses an
        # option given twice), e.g. ("--backend", "docker").
        extra_args = list(extra_args)
        # A short shutdown timeout: stop() expects an exit within 10 s even
        # with calls still running (test_shutdown checks the timeout itself).
        for flag, value in (("--address", "127.0.0.1"), ("--state-dir", self.state_dir),
                            ("--backend", BACKEND), ("--log-level", "debug"), ("--shutdown-timeout", "3")):
            if flag not in extra_args:
                args += [flag, value]
        args += extra_args
        self.args = args
        self.backend = args[args.index("--backend") + 1]
        if self.backend == "auto":
            self.backend = "docker" if docker_engine.engine_answers() else "process"
        if self.backend == "docker":
            why_not = docker_engine.ensure_engine(REPO)
            if why_not:
                pytest.skip(why_not)
        self._node: Optional[str] = None
        full_env = os.environ.copy()
        for k in ("HTTP_PORT", "COAP_PORT", "GRPC_PORT"):
            full_env.pop(k, None)
        full_env.update(env or {})
        self._err = open(self.log_path, "wb")
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(
            args, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, env=full_env, cwd=self.root
        )
        self.stopped = False
        self.deployed: dict[str, tuple] = {}
        _report_daemons.append(self)
        try:
            self._read_ports()
            self._wait_ready()
        except BaseException:
            self.kill_hard()
            self.cleanup()
            _report_daemons.remove(self)
            raise

    # -- lifecycle --------------------------------------------------------

    def respawn(self) -> None:
        """Replaces a dead daemon by a fresh one (new ports, new state dir,
        nothing deployed) so that one crash does not fail every later test
        of a module."""
        self.kill_hard()
        self.cleanup()
        # _kwargs leaves the gRPC port out (subclasses pass their own).
        grpc = self.gport if self.gport in (None, -1) else 0
        fresh = Daemon(**self._kwargs, grpc_port=grpc)
        _report_daemons.remove(fresh)
        self.__dict__.update(fresh.__dict__)

    def _read_ports(self):
        """Waits for the --ports-file the daemon writes once every listener
        is bound, and takes the ports from it."""
        end = time.monotonic() + START_DEADLINE
        while not os.path.exists(self.ports_path):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"tinyfaas exited with status {self.proc.returncode} during start-up\n"
                    f"command: {' '.join(self.args)}\n{self.log_tail()}"
                )
            if time.monotonic() >= end:
                raise AssertionError(f"tinyfaas wrote no ports file within {START_DEADLINE}s\n{self.log_tail()}")
            time.sleep(0.05)
        with open(self.ports_path) as f:
            ports = {k: -1 if v is None else v for k, v in json.load(f).items()}
        self.mport, self.hport, self.cport, self.gport = ports["management"], ports["http"], ports["coap"], ports["grpc"]
        for name, expected in self._expected.items():
            if expected is not None and expected != 0:
                assert ports[name] == expected, f"{name} bound {ports[name]}, expected {expected}\n{self.log_tail()}"

    def _wait_ready(self):
        end = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"tinyfaas exited with status {self.proc.returncode} during start-up\n"
                    f"command: {' '.join(self.args)}\n{self.log_tail()}"
                )
            try:
                r = http_request(self.mport, "GET", "/list", timeout=2)
                if r.status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() >= end:
                raise AssertionError(
                    f"tinyfaas did not answer GET /list within {START_DEADLINE}s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_text(self) -> Optional[str]:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return getattr(self, "_final_log", None)

    def log_tail(self, lines: int = 150) -> str:
        text = self.log_text()
        if text is None:
            return "(no daemon log)"
        tail = text.splitlines()[-lines:]
        return f"--- tinyfaas stderr ({self.log_path}, last {len(tail)} lines) ---\n" + "\n".join(tail)

    def handler_pids(self, pattern_suffix: str = "") -> list[int]:
        """Process backend: pids of processes with the state dir on their
        command line (the bubblewrap wrappers and the runtimes)."""
        pids = pids_matching(ere_escape(self.state_dir) + pattern_suffix)
        return [p for p in pids if p != self.proc.pid]

    def instance_dirs(self, name: str) -> set[str]:
        """Process backend: distinct `DIR/run/<name>.<n>` paths on live
        processes' command lines, and `DIR/run/standby-<n>` of the instances
        that took over a standby."""
        pat = ere_escape(os.path.join(self.state_dir, "run", name)) + r"\.[0-9]+"
        found = set()
        for pid, cmd in cmdlines_matching(pat).items():
            if pid == self.proc.pid:
                continue
            for m in re.finditer(pat, cmd):
                found.add(m.group(0))
        # An instance that took over a standby runs under the standby's
        # socket dir; the daemon says which process is whose.
        standby = re.escape(os.path.join(self.state_dir, "run")) + r"/standby-[0-9]+"
        for pid in self.instance_pids(name).values():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            m = re.search(standby, cmd)
            if m:
                found.add(m.group(0))
        return found

    def instance_pids(self, name: str) -> dict:
        """Instance id -> host pid of function `name`'s instances, as GET
        /functions/NAME says ({} when it cannot)."""
        try:
            r = self.mgmt("GET", f"/functions/{name}", timeout=5)
            return json.loads(r.body)["instances"].get("pids", {}) if r.status == 200 else {}
        except (OSError, ValueError, KeyError):
            return {}

    def node(self) -> str:
        """Docker backend: the node id this daemon labels its containers with."""
        if self._node is None:
            self._node = docker_engine.node_id(self.state_dir)
        return self._node

    def instances(self, name: str) -> set[str]:
        """The running instances of function `name`: instance dirs of live
        processes, or ids of running containers."""
        if self.backend == "docker":
            found = {c["Id"] for c in docker_engine.containers(self.node(), name, all_=False)}
            # A container that took over a standby keeps the standby's
            # labels: the daemon says whose its process is.
            pids = set(self.instance_pids(name).values())
            for c in docker_engine.containers(self.node(), all_=False) if pids else []:
                if c["Id"] not in found and docker_engine.inspect(c["Id"])["State"]["Pid"] in pids:
                    found.add(c["Id"])
            return found
        return self.instance_dirs(name)

    def handlers_left(self) -> list:
        """What still runs (or exists) of this daemon's handlers: processes,
        or containers and networks."""
        if self.backend == "docker":
            try:
                node = self.node()
            except OSError:  # never got as far as creating a node id
                return []
            return [x.get("Names") or x.get("Name")
                    for x in docker_engine.containers(node) + docker_engine.networks(node)]
        return self.handler_pids()

    def kill_instance(self, instance: str) -> None:
        """SIGKILLs one instance (as returned by instances()): the container,
        or every process whose command line holds the instance dir (the
        bubblewrap wrapper and the runtime inside it), by pid."""
        if self.backend == "docker":
            docker_engine.kill(instance)
            return
        victims = [p for p, cmd in cmdlines_matching(ere_escape(instance)).items()
                   if p != self.proc.pid and (instance + "/" in cmd or instance + " " in cmd or cmd.endswith(instance))]
        assert victims, f"no process found for instance {instance} (handlers: {self.handler_pids()})"
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM; asserts exit status 0 within 10 s and no handler left."""
        if self.stopped:
            return
        self.stopped = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill_hard()
            raise AssertionError(f"tinyfaas did not exit within {STOP_DEADLINE}s of SIGTERM\n{self.log_tail()}")
        finally:
            self._close_files()
        # Handlers must be gone too; give the kernel a moment to reap
        # processes that were already killed (bounded poll).
        try:
            wait_until(lambda: not self.handlers_left(), 3.0, what="handlers to be gone")
        except AssertionError:
            left = self.handlers_left()
            if self.backend == "process":
                left = cmdlines_matching(ere_escape(self.state_dir))
            self._kill_leftovers()
            raise AssertionError(
                f"handlers survived the daemon's SIGTERM: {left}\n{self.log_tail()}"
            )
        assert rc == 0, f"tinyfaas exited with status {rc} after SIGTERM (expected 0)\n{self.log_tail()}"

    def _kill_leftovers(self):
        if self.backend == "docker":
            try:
                docker_engine.remove_node(self.node())
            except (OSError, AssertionError):
                pass
            return
        for pid in self.handler_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_hard(self):
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._kill_leftovers()
        self._close_files()

    def _close_files(self):
        for f in (self._err, self._out):
            try:
                f.close()
            except OSError:
                pass

    def cleanup(self):
        self._final_log = self.log_text()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.own_state_dir:
            if self.backend == "docker":
                # The node ends with its state dir: its image tags go too.
                try:
                    docker_engine.remove_node_images(self.node())
                except (OSError, AssertionError):
                    pass
            shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- management API -----------------------------------------------------

    def mgmt(self, method: str, path: str, body=None, timeout: float = 30.0, headers=None) -> HttpResult:
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        return http_request(self.mport, method, path, body=body, headers=headers, timeout=timeout)

    def upload_raw(self, payload: dict, timeout: float = UPLOAD_TIMEOUT) -> HttpResult:
        return self.mgmt("POST", "/upload", payload, timeout=timeout)

    def expected_upload_lines(self, name: str, host: str = "127.0.0.1") -> set[str]:
        lines = set()
        if self.cport != -1:
            lines.add(f"coap://{host}:{self.cport}/{name}")
        if self.hport != -1:
            lines.add(f"http://{host}:{self.hport}/{name}")
        if self.gport not in (None, -1):
            lines.add(f"grpc://{host}:{self.gport}/{name}")
        return lines

    def deploy(
        self,
        key: str,
        name: Optional[str] = None,
        threads: int = 1,
        envs: Optional[list[str]] = None,
        env: Optional[str] = None,
    ) -> HttpResult:
        """Uploads function `key` as `name`; asserts 200 and the exact URL lines."""
        name = name or key
        payload = {
            "name": name,
            "env": env or fn_env(key),
            "threads": threads,
            "zip": zip_folder_b64(fn_dir(key)),
        }
        if envs is not None:
            payload["envs"] = envs
        r = self.upload_raw(payload)
        assert r.status == 200, f"upload of {key} as {name}: {r.status} {r.text!r}"
        got = {l.strip() for l in r.text.splitlines() if l.strip()}
        assert got == self.expected_upload_lines(name), f"upload reply {r.text!r}"
        self.deployed[name] = (key, threads, tuple(envs or ()))
        return r

    def ensure(self, key: str, name: Optional[str] = None, threads: int = 1, envs=None) -> str:
        """Deploys once per daemon (same key/threads/envs); returns the name."""
        name = name or key
        if self.deployed.get(name) != (key, threads, tuple(envs or ())):
            self.deploy(key, name, threads=threads, envs=envs)
        return name

    def list_names(self) -> list[str]:
        r = self.mgmt("GET", "/list")
        assert r.status == 200, f"GET /list: {r.status} {r.text!r}"
        return [l.strip() for l in r.text.splitlines() if l.strip()]

    # -- function calls -------------------------------------------------------

    def call(self, name: str, data: Optional[bytes] = None, method: str = "POST", headers=None,
             timeout: float = CALL_TIMEOUT) -> HttpResult:
        assert self.hport != -1
        if isinstance(data, str):
            data = data.encode()
        return http_request(self.hport, method, "/" + name, body=data, headers=headers, timeout=timeout)

    def coap(self, name: str, payload: Optional[bytes] = None, **kw) -> CoapResult:
        assert self.cport != -1
        if isinstance(payload, str):
            payload = payload.encode()
        return coap_request(self.cport, name, payload, **kw)


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def daemon():
    """A daemon shared by the tests of one module (they must not interfere)."""
    d = Daemon()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


@pytest.fixture(autouse=True)
def _module_daemon_alive(request):
    """Fails the test during which a shared daemon died, and replaces it."""
    yield
    d = request.node.funcargs.get("daemon")
    if isinstance(d, Daemon) and not d.stopped and d.proc.poll() is not None:
        rc = d.proc.returncode
        tail = d.log_tail(40)
        d.respawn()
        pytest.fail(f"the daemon died during this test (exit status {rc}); later tests get a new one\n{tail}",
                    pytrace=False)


@pytest.fixture
def make_daemon():
    """Factory for fresh daemons owned by one test; each is stopped (and
    checked: exit 0, no handler left) at the end of the test."""
    made: list[Daemon] = []

    def factory(**kw) -> Daemon:
        d = Daemon(**kw)
        made.append(d)
        return d

    yield factory
    errors = []
    for d in reversed(made):  # later daemons may share an earlier one's state dir
        try:
            d.stop()
        except AssertionError as e:
            errors.append(str(e))
    for d in made:
        d.cleanup()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="tfwork-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def pytest_runtest_setup(item):
    # Forget daemons that were already stopped by an earlier test.
    _report_daemons[:] = [d for d in _report_daemons if not d.stopped]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in _report_daemons:
            rep.sections.append((f"tinyfaas stderr ({d.state_dir})", d.log_tail()))
