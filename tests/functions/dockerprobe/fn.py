import json
import os
import socket
from typing import Optional

# Where a function might try to write outside its scratch space.
WRITE_TARGETS = ["/probe", "/etc/probe", "/usr/probe", "/opt/tinyfaas/probe", "/var/probe", "/root/probe",
                 "/dev/probe", "/proc/probe"]


def _status_field(name: str) -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def _can_write(path: str) -> bool:
    try:
        with open(path, "w") as f:
            f.write("x")
        os.remove(path)
        return True
    except OSError:
        return False


def _connect(host: str, port: int) -> str:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return "connected"
    except OSError as e:
        return type(e).__name__


def fn(input: Optional[str], headers: dict) -> Optional[str]:
    """Reports what this function can do from inside its sandbox (the docker
    backend's isolation tests deploy it); input is a JSON object naming the
    daemon's management port and another function's code folder."""
    print("probe: checking the sandbox", flush=True)
    cfg = json.loads(input or "{}")
    out = {
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "cap_eff": _status_field("CapEff"),
        "no_new_privs": _status_field("NoNewPrivs"),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        # The host's management API (the container's loopback is its own) and
        # an address that would need a route out.
        "management_api": _connect("127.0.0.1", int(cfg.get("port", 8080))),
        "outside": _connect("192.0.2.1", 80),
        "other_code_exists": os.path.exists(cfg.get("other", "/nonexistent")),
        "writable": sorted(p for p in WRITE_TARGETS + [os.getcwd() + "/probe"] if _can_write(p)),
        "tmp_writable": _can_write("/tmp/probe"),
    }
    try:
        with open(os.path.join(cfg.get("other", "/nonexistent"), "fn.py")) as f:
            out["other_code_read"] = len(f.read()) >= 0
    except OSError:
        out["other_code_read"] = False
    return json.dumps(out, sort_keys=True)
