"""The Debian package: `cpack -G DEB` from the build tree, unpacked with
dpkg-deb into a scratch directory (nothing is installed on this machine),
then its files, its control data and its systemd unit are checked, and the
unpacked daemon is started from there, given a function and called with curl,
the way it would run from /usr."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import zipfile
import io
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("TINYFAAS_BUILD_DIR", "build")).resolve()
REPO = Path(os.environ.get("TINYFAAS_REPO", ".")).resolve()


@pytest.fixture(scope="module")
def unpacked():
    for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (apt-get install cmake dpkg-dev)", pytrace=False)
    work = Path(tempfile.mkdtemp(prefix="tfdeb-"))
    try:
        r = subprocess.run(["cpack", "-G", "DEB", "--config", str(BUILD / "CPackConfig.cmake"), "-B", str(work / "out")],
                           capture_output=True, text=True, timeout=500)
        assert r.returncode == 0, f"cpack failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        debs = list((work / "out").glob("tinyfaas_*.deb"))
        assert len(debs) == 1, f"expected one tinyfaas_*.deb, got {debs}"
        root = work / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True, timeout=120)
        control = subprocess.run(["dpkg-deb", "-f", str(debs[0])], capture_output=True, text=True, check=True).stdout
        scripts = work / "control"
        subprocess.run(["dpkg-deb", "-e", str(debs[0]), str(scripts)], check=True, timeout=60)
        yield root, control, scripts
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_package_holds_the_binary_runtimes_and_service(unpacked):
    root, _, _ = unpacked
    for rel in ("usr/bin/tinyfaas",
                "usr/lib/tinyfaas/runtimes/binary/tinyfaas-binary-handler",
                "usr/lib/tinyfaas/modules/tinyfaas-grpc.so",
                "usr/lib/tinyfaas/modules/tinyfaas-fetch.so",
                "usr/share/tinyfaas/runtimes/nodejs/handler.js",
                "usr/share/tinyfaas/runtimes/python3/handler.py",
                "usr/lib/systemd/system/tinyfaas.service",
                "etc/default/tinyfaas",
                "usr/share/bash-completion/completions/tinyfaas"):
        assert (root / rel).is_file(), f"{rel} is missing from the package"
    assert os.access(root / "usr/bin/tinyfaas", os.X_OK)
    # Stripped: the build's binary carries debug info, the package must not.
    out = subprocess.run(["file", str(root / "usr/bin/tinyfaas")], capture_output=True, text=True).stdout
    assert "not stripped" not in out, out
    # Nothing of the tests or the load generator.
    names = {p.name for p in root.rglob("*")}
    assert not any(n.endswith("_tests") or n == "tinyfaas-bench" for n in names), sorted(names)


def test_control_data_names_dependencies_and_scripts(unpacked):
    _, control, scripts = unpacked
    fields = dict(line.split(": ", 1) for line in control.splitlines() if ": " in line and not line.startswith(" "))
    assert fields["Package"] == "tinyfaas"
    # dpkg-shlibdeps found the shared libraries the binary and its modules link.
    for lib in ("libcoap3", "libarchive", "libcurl", "libgrpc++"):
        assert lib in fields.get("Depends", ""), f"{lib} missing from Depends: {fields.get('Depends')}"
    assert "nodejs" in fields.get("Recommends", "") and "python3" in fields["Recommends"]
    assert (scripts / "conffiles").read_text().split() == ["/etc/default/tinyfaas"]
    postinst = (scripts / "postinst").read_text()
    assert "systemctl enable tinyfaas.service" in postinst and "systemctl restart tinyfaas.service" in postinst
    assert "systemctl stop tinyfaas.service" in (scripts / "prerm").read_text()


def test_service_unit_starts_the_packaged_binary(unpacked):
    root, _, _ = unpacked
    unit = (root / "usr/lib/systemd/system/tinyfaas.service").read_text()
    assert "ExecStart=/usr/bin/tinyfaas serve --state-dir /var/lib/tinyfaas $TINYFAAS_ARGS" in unit
    assert "StateDirectory=tinyfaas" in unit and "KillSignal=SIGTERM" in unit
    assert "EnvironmentFile=-/etc/default/tinyfaas" in unit
    assert "WantedBy=multi-user.target" in unit
    if shutil.which("systemd-analyze"):
        # Offline check of the unit's syntax (the binary path is the one the
        # package installs, so point the check at the unpacked tree).
        copy = Path(tempfile.mkdtemp(prefix="tfunit-")) / "tinyfaas.service"
        copy.write_text(unit.replace("/usr/bin/tinyfaas", str(root / "usr/bin/tinyfaas")))
        r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
        bad = [l for l in (r.stdout + r.stderr).splitlines()
               if "tinyfaas.service" in l and "Failed to" not in l and "network-online" not in l]
        shutil.rmtree(copy.parent, ignore_errors=True)
        assert not bad, "\n".join(bad)


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unpacked_daemon_finds_its_runtimes_and_serves(unpacked, tmp_path):
    root, _, _ = unpacked
    mport, hport, gport = free_port(), free_port(), free_port()
    state = tempfile.mkdtemp(prefix="tp", dir="/tmp")
    proc = subprocess.Popen([str(root / "usr/bin/tinyfaas"), "serve", "--backend", "process",
                             "--address", "127.0.0.1", "--management-port", str(mport), "--http-port", str(hport),
                             "--coap-port", "-1", "--grpc-port", str(gport), "--state-dir", state],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")[-2000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{mport}/list", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the unpacked daemon did not answer within 10 s"
                time.sleep(0.1)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in (REPO / "functions/echo").iterdir():
                z.write(f, f.name)
        body = json.dumps({"name": "echo", "env": "python3", "threads": 1,
                           "zip": base64.b64encode(buf.getvalue()).decode()}).encode()
        reply = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{mport}/upload", data=body,
                                                              method="POST"), timeout=120).read().decode()
        assert f"http://127.0.0.1:{hport}/echo" in reply, reply
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--data-binary", "from the package",
                            f"http://127.0.0.1:{hport}/echo"], capture_output=True, text=True, timeout=20)
        assert r.stdout == "from the package", (r.stdout, r.stderr)
        # gRPC, in the daemon and in the CLI, comes from the packaged module.
        r = subprocess.run([str(root / "usr/bin/tinyfaas"), "invoke", "echo", "--protocol", "grpc", "--host",
                            "127.0.0.1", "--port", str(gport), "--data", "over grpc"],
                           capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout.strip()) == (0, "over grpc"), (r.stdout, r.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            shutil.rmtree(state, ignore_errors=True)
