"""The Debian package: `cpack -G DEB` from the build tree, unpacked with
dpkg-deb into a scratch directory (nothing is installed on this machine),
then its files, its control data and its systemd unit are checked, and the
unpacked daemon is started from there, given a function and called with curl,
the way it would run from /usr.

The maintainer scripts run for real, but in a private mount namespace where
/etc and /var/lib are scratch copies: the users they create (and purge)
never touch this machine's. There the daemon also runs as the unit runs it
(issue 12, finding 14): as `tinyfaas`, with exactly the unit's capabilities."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.error
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
                "usr/lib/tinyfaas/modules/tinyfaas-archive.so",
                "usr/share/tinyfaas/runtimes/nodejs/handler.js",
                "usr/share/tinyfaas/runtimes/python3/handler.py",
                "usr/share/tinyfaas/runtimes/go/tinyfaas_main.go",
                "usr/share/tinyfaas/runtimes/go/build.sh",
                "usr/lib/systemd/system/tinyfaas.service",
                "etc/default/tinyfaas",
                "usr/share/bash-completion/completions/tinyfaas",
                "usr/share/man/man1/tinyfaas.1"):
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
    # dpkg-shlibdeps found the shared libraries the binary and its modules
    # link; adduser runs in postinst.
    for lib in ("libcoap3", "libarchive", "libcurl", "libgrpc++", "adduser"):
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
        # verify also runs `man tinyfaas(1)` for Documentation=: the page
        # is in the unpacked tree, not yet on this host.
        env = dict(os.environ, MANPATH=str(root / "usr/share/man"))
        r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                           timeout=60, env=env)
        bad = [l for l in (r.stdout + r.stderr).splitlines()
               if "tinyfaas.service" in l and "Failed to" not in l and "network-online" not in l]
        shutil.rmtree(copy.parent, ignore_errors=True)
        assert not bad, "\n".join(bad)


def wait_for_ports(proc, ports_file: str, output) -> dict:
    """Until the daemon wrote its --ports-file (10 s), which it does once
    every listener is bound; its ports. `output()` for the failure message."""
    deadline = time.monotonic() + 10
    while not os.path.exists(ports_file):
        assert proc.poll() is None, output()
        assert time.monotonic() < deadline, "the unpacked daemon wrote no ports file within 10 s\n" + output()
        time.sleep(0.1)
    with open(ports_file) as f:
        return json.load(f)


def upload_echo(mport: int, folder: str = "functions/echo", name: str = "echo") -> str:
    """Deploys `folder` (python3, functions/echo by default) as `name`; the reply's text."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in (REPO / folder).iterdir():
            z.write(f, f.name)
    body = json.dumps({"name": name, "env": "python3", "threads": 1,
                       "zip": base64.b64encode(buf.getvalue()).decode()}).encode()
    return urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{mport}/upload", data=body,
                                                         method="POST"), timeout=120).read().decode()


def test_unpacked_daemon_finds_its_runtimes_and_serves(unpacked, tmp_path):
    root, _, _ = unpacked
    state = tempfile.mkdtemp(prefix="tp", dir="/tmp")
    ports_file = str(tmp_path / "ports.json")
    proc = subprocess.Popen([str(root / "usr/bin/tinyfaas"), "serve", "--backend", "process",
                             "--address", "127.0.0.1", "--management-port", "0", "--http-port", "0",
                             "--coap-port", "-1", "--grpc-port", "0", "--state-dir", state, "--ports-file", ports_file],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ports = wait_for_ports(proc, ports_file, lambda: "" if proc.poll() is None else
                               proc.stderr.read().decode(errors="replace")[-2000:])
        mport, hport, gport = ports["management"], ports["http"], ports["grpc"]
        reply = upload_echo(mport)
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


# --------------------------------------------------------------------------
# Least privilege: the unit's hardening, the package's users, and the daemon
# running as the unit runs it (issue 12, finding 14).

UNIT_CAPS = "setuid,setgid,kill"


def unit_of(root: Path) -> str:
    return (root / "usr/lib/systemd/system/tinyfaas.service").read_text()


def test_unit_runs_the_daemon_unprivileged_and_hardened(unpacked, tmp_path):
    root, _, _ = unpacked
    unit = unit_of(root)
    settings = [line.strip() for line in unit.splitlines() if line.strip() and not line.startswith("#")]
    for expected in ("User=tinyfaas", "AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_KILL",
                     "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_KILL", "NoNewPrivileges=yes", "Delegate=yes",
                     "StateDirectory=tinyfaas", "StateDirectoryMode=0700", "UMask=0077", "ProtectSystem=strict"):
        assert expected in settings, f"{expected} missing from the unit"
    # Node's JIT needs writable executable memory: the functions inherit it.
    assert not any(s.startswith("MemoryDenyWriteExecute=yes") for s in settings)
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is not installed (apt-get install systemd)", pytrace=False)
    copy = tmp_path / "tinyfaas.service"
    copy.write_text(unit)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
                       capture_output=True, text=True, timeout=60)
    found = [l for l in (r.stdout + r.stderr).splitlines() if "Overall exposure level" in l]
    assert found, r.stdout[-3000:] + r.stderr[-3000:]
    exposure = float(found[0].split(":")[1].split()[0])
    assert exposure <= 3.5, "\n".join(l for l in r.stdout.splitlines() if l.startswith("✗")) + "\n" + found[0]


@pytest.fixture(scope="module")
def host_copy(unpacked):
    """Scratch copies of /etc and /var/lib, and a way to run commands with
    them mounted over the real ones (a private mount namespace)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("the maintainer-script tests need root and unshare (util-linux)", pytrace=False)
    work = Path(tempfile.mkdtemp(prefix="tfhost-"))
    try:
        subprocess.run(["cp", "-a", "/etc", str(work / "etc")], check=True, timeout=120)
        (work / "varlib").mkdir()

        def wrap(*command: str) -> list[str]:
            mounts = (f"mount --bind {work / 'etc'} /etc && mount --bind {work / 'varlib'} /var/lib && "
                      'exec "$@"')
            return ["unshare", "--mount", "--propagation", "private", "sh", "-c", mounts, "sh", *command]

        yield work, wrap
    finally:
        shutil.rmtree(work, ignore_errors=True)


def passwd(work: Path) -> dict[str, list[str]]:
    lines = (work / "etc/passwd").read_text().splitlines()
    return {fields[0]: fields for fields in (line.split(":") for line in lines)}


def test_maintainer_scripts_create_the_users_and_purge_removes_them(unpacked, host_copy):
    _, _, scripts = unpacked
    work, wrap = host_copy
    before = (Path("/etc/passwd").read_text(), Path("/etc/group").read_text())
    for _ in range(2):  # a reinstall finds both users and changes nothing
        r = subprocess.run(wrap(str(scripts / "postinst"), "configure", ""), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = (work / "etc/passwd").read_text().splitlines()
        assert sorted(l.split(":")[0] for l in lines if l.startswith("tinyfaas")) == ["tinyfaas", "tinyfaas-sandbox"]
    users = passwd(work)
    daemon, sandbox = users["tinyfaas"], users["tinyfaas-sandbox"]
    # System users (uid below 1000) without a login; the daemon's home is
    # its state dir, 0700; the functions' user has none.
    for user in (daemon, sandbox):
        assert 0 < int(user[2]) < 1000 and user[6] == "/usr/sbin/nologin", user
    assert daemon[2] != sandbox[2]
    assert daemon[5] == "/var/lib/tinyfaas" and sandbox[5] == "/nonexistent"
    state = os.stat(work / "varlib/tinyfaas")
    assert (state.st_uid, stat.S_IMODE(state.st_mode)) == (int(daemon[2]), 0o700)
    assert not (work / "varlib/nonexistent").exists()
    assert (Path("/etc/passwd").read_text(), Path("/etc/group").read_text()) == before, "touched the real /etc"

    # Purge (after remove) takes the state and both users away again.
    (work / "varlib/tinyfaas/functions").mkdir()
    saved = work / "etc-before-purge"
    subprocess.run(["cp", "-a", str(work / "etc"), str(saved)], check=True, timeout=60)
    try:
        r = subprocess.run(wrap(str(scripts / "postrm"), "purge"), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not (work / "varlib/tinyfaas").exists()
        assert not [u for u in passwd(work) if u.startswith("tinyfaas")]
        assert "tinyfaas" not in [line.split(":")[0] for line in (work / "etc/group").read_text().splitlines()]
    finally:
        # The next test runs the daemon as these users.
        subprocess.run(["cp", "-a", "--no-target-directory", str(saved), str(work / "etc")], check=True)
        subprocess.run(wrap("install", "-d", "-o", "tinyfaas", "-g", "tinyfaas", "-m", "0700",
                            "/var/lib/tinyfaas"), check=True)


def descendants(pid: int) -> dict[int, tuple[int, str]]:
    """pid -> (uid, command line) of every process below `pid`, from ps."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,uid=,args="], capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        p, pp, uid, args = (line.split(None, 3) + [""])[:4]
        rows[int(p)] = (int(pp), int(uid), args)
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for p, (pp, uid, args) in rows.items():
            if pp == parent and p not in found:
                found[p] = (uid, args)
                frontier.append(p)
    return found


def test_daemon_as_the_unit_runs_it_puts_functions_under_the_sandbox_user(unpacked, host_copy):
    """Needs the sandbox's uid switch (issue 12, part A): until then the
    function runs as the daemon's user, or bubblewrap refuses the ambient
    capabilities it inherits, and this fails."""
    root, _, scripts = unpacked
    work, wrap = host_copy
    if "tinyfaas" not in passwd(work):
        r = subprocess.run(wrap(str(scripts / "postinst"), "configure", ""), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    users = passwd(work)
    daemon_uid, sandbox_uid = int(users["tinyfaas"][2]), int(users["tinyfaas-sandbox"][2])
    # The unpacked tree and the state dir as the installed ones are: the
    # programs readable by all, the state the daemon's alone.
    os.chmod(root.parent, 0o755)
    state = tempfile.mkdtemp(prefix="tu", dir="/tmp")
    os.chown(state, daemon_uid, int(users["tinyfaas"][3]))
    ports_file = state + ".ports.json"  # beside the state dir: a place the daemon's user may write
    log = open(Path(state).parent / (Path(state).name + ".log"), "w+b")
    command = ["setpriv", "--reuid", "tinyfaas", "--regid", "tinyfaas", "--init-groups",
               "--inh-caps", f"-all,+{UNIT_CAPS.replace(',', ',+')}",
               "--ambient-caps", f"-all,+{UNIT_CAPS.replace(',', ',+')}",
               "--bounding-set", f"-all,+{UNIT_CAPS.replace(',', ',+')}", "--no-new-privs",
               str(root / "usr/bin/tinyfaas"), "serve", "--backend", "process", "--address", "127.0.0.1",
               "--management-port", "0", "--http-port", "0", "--coap-port", "-1",
               "--grpc-port", "-1", "--state-dir", state, "--ports-file", ports_file]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": state, "LANG": "C.UTF-8"}
    # /dev/net/tun as Debian makes it (0666; this machine's is 0600): the
    # install network's slirp4netns runs as the sandbox user.
    tun = f"mknod -m 666 {work}/tun c 10 200 && mount --bind {work}/tun /dev/net/tun && "
    proc = subprocess.Popen(wrap("sh", "-c", tun + "umask 077 && exec \"$@\"", "sh", *command), stdout=log,
                            stderr=subprocess.STDOUT, env=env)

    def log_tail():
        log.seek(0)
        return log.read().decode(errors="replace")[-3000:]

    try:
        ports = wait_for_ports(proc, ports_file, log_tail)
        mport, hport = ports["management"], ports["http"]
        daemon = descendants(proc.pid)
        assert os.stat(f"/proc/{proc.pid}").st_uid == daemon_uid
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caps = {line.split(":")[0]: int(line.split()[1], 16) for line in status.splitlines()
                if line.startswith("Cap")}
        # CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7: these and nothing else.
        assert caps["CapEff"] == caps["CapAmb"] == caps["CapBnd"] == (1 << 5) | (1 << 6) | (1 << 7), caps
        assert "NoNewPrivs:\t1" in status
        assert not daemon, f"processes before any deploy: {daemon}"

        try:
            reply = upload_echo(mport)
        except urllib.error.HTTPError as e:
            pytest.fail(f"deploy refused: {e.code} {e.read().decode(errors='replace')}\n{log_tail()}", pytrace=False)
        assert f"http://127.0.0.1:{hport}/echo" in reply, reply
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--data-binary", "unprivileged",
                            f"http://127.0.0.1:{hport}/echo"], capture_output=True, text=True, timeout=20)
        assert r.stdout == "unprivileged", (r.stdout, r.stderr, log_tail())
        # The handler (python3 running handler.py) and everything around it
        # run as tinyfaas-sandbox: not the daemon's user, not root.
        functions = descendants(proc.pid)
        handlers = {p: uid for p, (uid, args) in functions.items() if "handler.py" in args and "bwrap" not in args}
        assert handlers, functions
        assert set(handlers.values()) == {sandbox_uid}, functions
        assert {uid for uid, _ in functions.values()} == {sandbox_uid}, functions

        # A dependency from PyPI: the install sandbox gets its network
        # (slirp4netns as the sandbox user) from a daemon that is not root.
        try:
            upload_echo(mport, "tests/functions/deps", "deps")
        except urllib.error.HTTPError as e:
            pytest.fail(f"deploy with a dependency refused: {e.code} {e.read().decode(errors='replace')}\n"
                        f"{log_tail()}", pytrace=False)
        r = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{hport}/deps"],
                           capture_output=True, text=True, timeout=20)
        assert r.stdout == "1.16.0", (r.stdout, r.stderr, log_tail())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=15) == 0, log_tail()
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
            os.unlink(log.name)
            shutil.rmtree(state, ignore_errors=True)
            Path(ports_file).unlink(missing_ok=True)


def test_man_page_renders_and_names_every_client_option(unpacked):
    root, _, _ = unpacked
    page = root / "usr/share/man/man1/tinyfaas.1"
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    text = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": ""}).stdout
    assert "EXIT STATUS" in text and ".tinyfaasignore" in text, text[:2000]
    # Every long option of the client subcommands' --help, so the page does
    # not fall behind the binary.
    binary = root / "usr/bin/tinyfaas"
    for sub in ("deploy", "list", "invoke", "delete", "logs", "wipe"):
        help_text = subprocess.run([str(binary), sub, "--help"], capture_output=True, text=True, timeout=30).stdout
        # An option line starts with its names: "  -f,--file,--data-file TEXT ...".
        names = [line.split()[0] for line in help_text.splitlines() if line.startswith("  -")]
        for option in {n for name in names for n in name.split(",") if n.startswith("--")}:
            assert option in text, f"{option} of `tinyfaas {sub}` is not in the man page"
