"""Shared pieces of the benchmark scripts (run-evaluation, proxy-overhead,
footprint): starting and stopping the systems under test on loopback,
deploying functions through the management API, running tinyfaas-bench,
and reading memory and CPU use from /proc.

Python 3 standard library only; matplotlib is imported by run-evaluation
alone, and only for its plots.

Every process started here is put in its own session and remembered; all of
them are stopped (SIGTERM, then SIGKILL after a grace period) on normal exit,
on an exception, and on SIGINT/SIGTERM/SIGHUP.
"""

import atexit
import base64
import io
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(REPO, "bench")
BASELINES = os.path.join(BENCH, "baselines")
LOOPBACK = "127.0.0.1"

_commands = []          # every command and API call, in order, for the report
_processes = []         # (Popen, name) of everything we started
_temp_dirs = []


def log(msg):
    print(msg, flush=True)


def record(command_text):
    """Prints a command we ran (or an API call we made) and keeps it for the report."""
    _commands.append(command_text)
    log("+ " + command_text)


def commands():
    return list(_commands)


def shell_text(argv, env=None, cwd=None):
    text = shlex.join(str(a) for a in argv)
    if env:
        text = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items()) + " " + text
    if cwd:
        text = f"(cd {shlex.quote(str(cwd))} && {text})"
    return text


def run(argv, check=True, capture=True, env=None, cwd=None, timeout=600):
    """Runs a command to completion (bounded by timeout) and records it."""
    record(shell_text(argv, cwd=cwd))
    full_env = dict(os.environ, **env) if env else None
    result = subprocess.run([str(a) for a in argv], capture_output=capture, text=True, env=full_env, cwd=cwd,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {result.returncode}: {(result.stderr or '').strip()[-2000:]}")
    return result


# ---------------------------------------------------------------- processes

def start(argv, name, env=None, cwd=None, log_path=None, replace_env=False):
    """Starts a long-running process in its own session; stopped at exit."""
    record(shell_text(argv, env=env, cwd=cwd) + " &")
    if replace_env:
        full_env = dict(env or {})
    else:
        full_env = dict(os.environ, **(env or {}))
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([str(a) for a in argv], env=full_env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    if log_path:
        out.close()
    _processes.append((proc, name))
    return proc


def stop(proc, grace=5.0):
    """SIGTERM to the process' own session (its children too), SIGKILL after grace seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # Children that outlived their parent stay in the session: kill those too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _processes[:] = [(p, n) for (p, n) in _processes if p is not proc]


def stop_all():
    for proc, _ in list(reversed(_processes)):
        stop(proc)
    for d in _temp_dirs:
        shutil.rmtree(d, ignore_errors=True)
    _temp_dirs.clear()


def _on_signal(signum, _frame):
    # Raise so that finally blocks run; atexit stops the processes.
    raise SystemExit(128 + signum)


def install_cleanup():
    atexit.register(stop_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


def temp_dir(prefix="tfb"):
    # Short: handler socket paths (STATE/run/NAME.N/handler.sock) must fit
    # in sockaddr_un's 108 bytes.
    d = tempfile.mkdtemp(prefix=prefix + ".", dir="/tmp")
    _temp_dirs.append(d)
    return d


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1, for the baseline servers
    (node's HTTP and CoAP); tinyFaaS itself binds port 0 and reports its ports."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((LOOPBACK, 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def wait_until(predicate, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready after {timeout} s")


def unix_health(path):
    """GET /health on a handler's Unix socket, as the daemon's health check does."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(path)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# -------------------------------------------------------------- /proc reads

def status_kb(pid, field):
    """VmRSS, VmHWM, ... of a process in kB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def smaps_rollup_kb(pid):
    """Pss and Private (clean + dirty) in kB: RSS counts shared libraries in
    full, although every process mapping them shares those pages."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":"):
                    out[parts[0][:-1]] = int(parts[1]) if parts[1].isdigit() else 0
    except OSError:
        return {}
    return {"Pss": out.get("Pss"), "Private": out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)}


def descendants(pid):
    """All processes below pid (children, grandchildren, ...)."""
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = []
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
        out += kids
        todo += kids
    return out


def cpu_seconds(pid):
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuMeter:
    """CPU time used between start() and stop() by named process groups, e.g.
    {"daemon": [pid], "handlers": [pids]} (pids listed at start)."""

    def __init__(self, groups):
        self.groups = groups
        self.before = {}

    def start(self):
        self.before = {name: {p: cpu_seconds(p) for p in pids} for name, pids in self.groups.items()}
        return self

    def stop(self):
        return {name: sum(max(0.0, cpu_seconds(p) - t0) for p, t0 in pids.items())
                for name, pids in self.before.items()}


class RssSampler:
    """Samples VmRSS of a process (and, separately, the sum over its
    descendants) every interval seconds in a thread; keeps the peaks."""

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.peak_children_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            rss = status_kb(self.pid, "VmRSS") or 0
            self.peak_kb = max(self.peak_kb, rss)
            kids = sum(status_kb(k, "VmRSS") or 0 for k in descendants(self.pid))
            self.peak_children_kb = max(self.peak_children_kb, kids)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def kernel_drops():
    """System-wide counters of datagrams and connections the kernel dropped:
    UDP receive-buffer overflows (a CoAP server not reading fast enough) and
    TCP listen-queue overflows (an HTTP server not accepting fast enough).
    Taken before and after a run, the difference shows losses that no server
    log can: everything here runs on loopback, so it is ours."""
    out = {}
    for path, wanted in (("/proc/net/snmp", {"Udp": ["InErrors", "RcvbufErrors"]}),
                         ("/proc/net/netstat", {"TcpExt": ["ListenOverflows", "ListenDrops"]})):
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for i in range(0, len(lines) - 1, 2):
            head, values = lines[i].split(), lines[i + 1].split()
            prefix = head[0].rstrip(":")
            if prefix in wanted and values[0] == head[0]:
                row = dict(zip(head[1:], values[1:]))
                for key in wanted[prefix]:
                    if key in row:
                        out[f"{prefix}.{key}"] = int(row[key])
    return out


def drops_delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0) != 0}


def children_rss_kb(pid):
    return sum(status_kb(k, "VmRSS") or 0 for k in descendants(pid))


# ------------------------------------------------------------------ systems

def find_bench(build_dir, explicit=None):
    candidates = [explicit] if explicit else [
        os.path.join(build_dir, "bench", "tinyfaas-bench"),
        os.path.join(REPO, "build-bench", "bench", "tinyfaas-bench"),
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise SystemExit("tinyfaas-bench not found (looked at: " + ", ".join(c for c in candidates if c) +
                     "); build it (target tinyfaas-bench) or pass --bench")


def find_daemon(build_dir):
    path = os.path.join(build_dir, "src", "tinyfaas")
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{path} not found: build the daemon first (scripts/build.sh), or pass --build DIR")
    return os.path.abspath(path)


def grpc_served(daemon):
    """Whether this build's `serve` really serves gRPC (its --help said
    'not available yet' while the endpoint was a placeholder)."""
    text = subprocess.run([daemon, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    for line in text.splitlines():
        if "--grpc-port" in line or "gRPC endpoint" in line:
            if "not available" in line or "reserved" in line:
                return False
    return "--grpc-port" in text


class Daemon:
    """tinyfaas serve on loopback with ports the kernel picks (read from its
    --ports-file) and a throwaway state dir. `wrapper` goes before the binary
    (e.g. valgrind); a build older than --ports-file gets free ports picked
    here, so that before/after comparisons can start it."""

    def __init__(self, binary, out_dir, sandbox="auto", grpc=False, log_name="daemon.log", extra=None,
                 backend="process", wrapper=None, start_timeout=20):
        self.binary = binary
        self.state = temp_dir("tfs")
        self.log_path = os.path.join(out_dir, log_name)
        ports_file = os.path.join(temp_dir("tfp"), "ports.json")
        has_ports_file = "--ports-file" in subprocess.run([binary, "serve", "--help"], capture_output=True,
                                                           text=True, timeout=30).stdout
        ports = [0, 0, 0, 0 if grpc else -1] if has_ports_file else [
            free_port(), free_port(), free_port(), free_port() if grpc else -1]
        argv = (wrapper or []) + [
            binary, "serve", "--backend", backend, "--state-dir", self.state,
            "--management-address", LOOPBACK, "--management-port", ports[0],
            "--address", LOOPBACK, "--http-port", ports[1], "--coap-port", ports[2],
            "--grpc-port", ports[3], "--sandbox", sandbox, "--log-level", "warn"] + (
            ["--ports-file", ports_file] if has_ports_file else []) + (extra or [])
        self.proc = start(argv, "tinyfaas", log_path=self.log_path)
        self.pid = self.proc.pid
        if has_ports_file:
            # Written once every endpoint listens.
            wait_until(lambda: os.path.exists(ports_file), start_timeout, "tinyfaas ports file", self.proc)
            with open(ports_file) as f:
                bound = json.load(f)
            ports = [-1 if bound[k] is None else bound[k] for k in ("management", "http", "coap", "grpc")]
        self.mgmt, self.http, self.coap, self.grpc = ports
        wait_until(lambda: self._list_ok(), start_timeout, "tinyfaas management API", self.proc)

    def _list_ok(self):
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.mgmt}/list", timeout=1) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def url(self, protocol, function):
        port = {"http": self.http, "coap": self.coap, "grpc": self.grpc}[protocol]
        return f"{protocol}://{LOOPBACK}:{port}/{function}"

    def deploy(self, folder, name, env="nodejs", threads=2, fields=None):
        """POST /upload, as scripts/upload.sh does: a base64 zip of the folder's contents
        (plus optional upload `fields`, e.g. the scaling ones)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for root, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if d not in ("node_modules", "__pycache__"))
                for f in sorted(files):
                    full = os.path.join(root, f)
                    z.write(full, os.path.relpath(full, folder))
        body = json.dumps({"name": name, "env": env, "threads": threads,
                           "zip": base64.b64encode(buf.getvalue()).decode(), **(fields or {})}).encode()
        extra = "".join(f",{json.dumps(k)}:{json.dumps(v)}" for k, v in (fields or {}).items())
        record(f"POST http://{LOOPBACK}:{self.mgmt}/upload "
               f"{{\"name\":\"{name}\",\"env\":\"{env}\",\"threads\":{threads}{extra},\"zip\":<base64 zip of {folder}>}}"
               f"   # = scripts/upload.sh {os.path.relpath(folder, REPO)} {name} {env} {threads}")
        req = urllib.request.Request(f"http://{LOOPBACK}:{self.mgmt}/upload", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        t0 = time.monotonic()
        try:
            # A go function's first build compiles the standard library.
            with urllib.request.urlopen(req, timeout=600) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"deploy {name}: {e.code} {e.read().decode().strip()}")
        return text, time.monotonic() - t0

    def handler_pids(self):
        return descendants(self.pid)

    def stop(self):
        stop(self.proc)


def start_node_server(script, port, out_dir, name, extra=None):
    """A baseline from bench/baselines: node SCRIPT PORT 127.0.0.1 [extra...]."""
    proc = start(["node", os.path.join(BASELINES, script), port, LOOPBACK] + (extra or []), name,
                 log_path=os.path.join(out_dir, name + ".log"))
    return proc


def ensure_baseline_modules():
    """npm ci in bench/baselines when its node_modules are missing (the coap package)."""
    if os.path.isdir(os.path.join(BASELINES, "node_modules", "coap")):
        return
    run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BASELINES, timeout=300)


def start_handler(function_dir, socket_dir, out_dir, name="handler", runtime="nodejs"):
    """A function handler started as the process backend starts one (without
    the bubblewrap sandbox): runtime's handler with the socket path as its
    argument and in TINYFAAS_SOCKET, cwd = the function's folder, the
    daemon's default environment."""
    os.makedirs(socket_dir, exist_ok=True)
    sock = os.path.join(socket_dir, "handler.sock")
    if runtime == "nodejs":
        argv = ["node", os.path.join(REPO, "runtimes", "nodejs", "handler.js"), sock]
    else:
        argv = [sys.executable, os.path.join(REPO, "runtimes", "python3", "handler.py"), sock]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "NODE_ENV": "production", "TINYFAAS_SOCKET": sock,
           "TINYFAAS_FUNCTION": name, "TINYFAAS_INSTANCE": name + ".0"}
    proc = start(argv, name, env=env, cwd=function_dir, log_path=os.path.join(out_dir, name + ".log"),
                 replace_env=True)
    wait_until(lambda: unix_health(sock), 20, f"handler {name}", proc)
    return proc, sock


# -------------------------------------------------------------------- load

def bench(binary, url, clients, calls, samples=None, threads=None, timeout_ms=1000, extra=None, quiet=False):
    """One tinyfaas-bench run; returns its JSON summary as a dict."""
    argv = [binary, url, "--clients", clients, "--calls", calls, "--timeout-ms", timeout_ms, "--json"]
    if threads:
        argv += ["--threads", threads]
    if samples:
        argv += ["--samples", samples]
    argv += extra or []
    if quiet:
        _commands.append(shell_text(argv))
        result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=900)
    else:
        result = run(argv, check=False, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"tinyfaas-bench failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_serving(binary, url, timeout=30):
    """Until one call to url succeeds (a function's instances are up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        argv = [binary, url, "--clients", 1, "--calls", 1, "--timeout-ms", 1000, "--json"]
        r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])["successes"] == 1:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} does not answer after {timeout} s")


def machine_notes():
    notes = {}
    notes["nproc"] = os.cpu_count()
    try:
        notes["loadavg"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    notes["kernel"] = os.uname().release
    try:
        notes["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        notes["node"] = "?"
    try:
        notes["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                         text=True, timeout=10).stdout.strip()
    except OSError:
        notes["commit"] = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    notes["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return notes


def binary_sizes(path):
    """(unstripped, stripped) sizes in bytes; stripped via strip -o to a temp file."""
    unstripped = os.path.getsize(path)
    stripped = None
    if shutil.which("strip"):
        d = temp_dir("tfstrip")
        out = os.path.join(d, "tinyfaas.stripped")
        run(["strip", "-o", out, path])
        stripped = os.path.getsize(out)
    return unstripped, stripped


def mb(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"
