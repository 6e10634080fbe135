"""Files on the node (issue 12, findings 11 and 12): the state dir and the
records in it are the daemon's alone, an uploaded zip cannot bring its own
modes (0777 folders, setuid files), and a record that cannot be read keeps
its function's name from other tenants until an admin fixes or deletes it.

Process backend: the modes do not depend on the backend."""

import base64
import io
import json
import os
import shutil
import stat
import subprocess
import tempfile
import zipfile

import pytest

from conftest import BIN, wait_until
from test_auth import ADMIN, ALICE, BOB, TOKEN_FILE, AuthDaemon


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def record_path(state_dir, name):
    return os.path.join(state_dir, "functions", name, "function.json")


def code_dir(state_dir, name):
    with open(record_path(state_dir, name)) as f:
        version = json.load(f)["version"]
    return os.path.join(state_dir, "functions", name, version)


def zip_with_modes(entries):
    """entries: (name, mode, content); a name ending in / is a folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, entry_mode, content in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix: the high 16 bits are the mode
            kind = stat.S_IFDIR if name.endswith("/") else stat.S_IFREG
            info.external_attr = ((kind | entry_mode) << 16) | (0x10 if name.endswith("/") else 0)
            z.writestr(info, content)
    return base64.b64encode(buf.getvalue()).decode()


def test_state_dir_and_records_are_the_daemons_alone(make_daemon):
    d = make_daemon()
    d.deploy("env", "envfn", envs=["SECRET=hunter2"])
    # Private; the sandbox's group may at most pass through (0710) to the code.
    assert mode(d.state_dir) & ~0o010 == 0o700
    record = record_path(d.state_dir, "envfn")
    with open(record) as f:
        assert "hunter2" in f.read()  # which is why nobody else may read it
    assert mode(record) == 0o600
    for sub in ("functions", "run"):
        assert mode(os.path.join(d.state_dir, sub)) & ~0o010 == 0o700, sub
    # The code: the daemon writes, the sandbox's group reads, others nothing.
    for root, dirs, files in os.walk(code_dir(d.state_dir, "envfn")):
        for name in dirs + files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                assert mode(path) & 0o027 == 0, f"{path} has mode {mode(path):o}"
    # A redeploy writes the record again, with the same mode.
    d.deploy("env", "envfn", envs=["SECRET=hunter3"])
    assert mode(record_path(d.state_dir, "envfn")) == 0o600


def test_a_zips_own_modes_are_masked(make_daemon):
    d = make_daemon()
    zip_b64 = zip_with_modes([
        ("fn.py", 0o666, "def fn(data, headers):\n    return 'masked'\n"),
        ("open/", 0o777, ""),
        ("open/data.txt", 0o666, "x"),
        ("sticky/", 0o1777, ""),
        ("setuid.sh", 0o6777, "#!/bin/sh\n"),
        ("unlisted/deeper/file.txt", 0o644, "y"),
    ])
    r = d.upload_raw({"name": "modes", "env": "python3", "threads": 1, "zip": zip_b64})
    assert r.status == 200, r.text
    assert d.call("modes", b"").body == b"masked"  # still readable by the function
    code = code_dir(d.state_dir, "modes")
    assert {name: mode(os.path.join(code, name)) for name in
            (".", "fn.py", "open", "open/data.txt", "sticky", "setuid.sh", "unlisted", "unlisted/deeper",
             "unlisted/deeper/file.txt")} == {
        ".": 0o750, "fn.py": 0o640, "open": 0o750, "open/data.txt": 0o640, "sticky": 0o750,
        "setuid.sh": 0o750, "unlisted": 0o750, "unlisted/deeper": 0o750, "unlisted/deeper/file.txt": 0o640}


def test_an_existing_open_state_dir_is_tightened_at_start(make_daemon):
    state = tempfile.mkdtemp(prefix="t", dir="/tmp")
    try:
        os.chmod(state, 0o755)
        d = make_daemon(state_dir=state)
        assert mode(state) & ~0o010 == 0o700
        assert f"state: {state} had mode 0755; set it to 07" in d.log_text()
        d.stop()
    finally:
        shutil.rmtree(state, ignore_errors=True)


# --------------------------------------------------------------------------
# A corrupt record keeps its name


@pytest.fixture
def tokens(tmp_path):
    p = tmp_path / "tokens"
    p.write_text(TOKEN_FILE)
    os.chmod(p, 0o600)
    return str(p)


@pytest.fixture
def auth_daemons():
    made = []

    def factory(tokens, state_dir=None):
        d = AuthDaemon(extra_args=["--token-file", tokens], state_dir=state_dir)
        made.append(d)
        return d

    yield factory
    try:
        for d in reversed(made):
            d.stop()
    finally:
        for d in made:
            d.cleanup()


def corrupt(state_dir, name):
    record = record_path(state_dir, name)
    with open(record, "rb") as f:
        text = f.read()
    with open(record, "wb") as f:
        f.write(text[: len(text) // 2])  # as if cut short by a disk


def functions_of(d, token):
    r = d.mgmt("GET", "/functions", token=token)
    assert r.status == 200, (r.status, r.text)
    return {f["name"]: f for f in json.loads(r.text)}


def restarted_with_a_corrupt_record(auth_daemons, tokens):
    """alice's `broken` and `good`; `broken`'s record cut in half; restarted."""
    d = auth_daemons(tokens)
    for name in ("good", "broken"):
        r = d.upload_as(ALICE, "echo", name)
        assert r.status == 200, r.text
    d.stop()
    corrupt(d.state_dir, "broken")
    return auth_daemons(tokens, state_dir=d.state_dir), d.state_dir


def test_a_corrupt_record_keeps_its_name_from_tenants(auth_daemons, tokens):
    d, state = restarted_with_a_corrupt_record(auth_daemons, tokens)
    # Another tenant cannot take the name: the same 409 as for a name another
    # tenant owns; nor can its former owner (the record cannot say it was).
    taken = d.upload_as(BOB, "echo", "good")
    assert taken.status == 409, taken.text
    for token in (BOB, ALICE):
        r = d.upload_as(token, "echo", "broken")
        assert (r.status, r.text.replace("broken", "good")) == (409, taken.text)
    assert "function broken is quarantined" in d.log_text()
    # Not started, not callable; its files stay for inspection.
    assert d.instances("broken") == set()
    assert d.call("broken", b"x").status == 404
    assert os.path.exists(record_path(state, "broken"))
    # The admin sees it, and why; tenants do not.
    listed = functions_of(d, ADMIN)["broken"]
    assert listed["state"] == "quarantined"
    assert listed["reason"] == "function.json is not a JSON object (cut short?)"
    for token in (ALICE, BOB):
        assert "broken" not in functions_of(d, token)
        assert d.mgmt("GET", "/functions/broken", token=token).status == 404
        assert d.mgmt("POST", "/delete", {"name": "broken"}, token=token).status == 404
    assert d.mgmt("GET", "/functions/broken").status == 200
    assert "broken" not in d.mgmt("GET", "/list", token=ALICE).text.split()
    # And so does `tinyfaas list`.
    env = {**os.environ, "TINYFAAS_TOKEN": ADMIN}
    table = subprocess.run([str(BIN), "list", "--url", f"http://127.0.0.1:{d.mport}"], capture_output=True,
                           text=True, timeout=60, env=env)
    assert table.returncode == 0, table.stderr
    assert any(line.split()[:3] == ["broken", "-", "quarantined"] for line in table.stdout.splitlines()), table.stdout
    assert "broken is quarantined: function.json is not a JSON object" in table.stdout


def test_the_admin_deletes_a_quarantined_function_and_the_name_is_free(auth_daemons, tokens):
    d, state = restarted_with_a_corrupt_record(auth_daemons, tokens)
    assert d.mgmt("POST", "/delete", {"name": "broken"}).status == 200
    assert not os.path.exists(os.path.join(state, "functions", "broken"))
    assert "broken" not in functions_of(d, ADMIN)
    r = d.upload_as(BOB, "echo", "broken")
    assert r.status == 200, r.text
    assert d.call("broken", b"bob's").body == b"bob's"


def test_the_admins_upload_replaces_a_quarantined_function(auth_daemons, tokens):
    d, state = restarted_with_a_corrupt_record(auth_daemons, tokens)
    old_versions = set(os.listdir(os.path.join(state, "functions", "broken")))
    # An upload that fails leaves it as it was: quarantined, its files kept.
    bad = d.mgmt("POST", "/upload", {"name": "broken", "env": "python3", "threads": 1,
                                     "zip": base64.b64encode(b"not a zip").decode()})
    assert bad.status == 400, bad.text
    assert set(os.listdir(os.path.join(state, "functions", "broken"))) == old_versions
    assert functions_of(d, ADMIN)["broken"]["state"] == "quarantined"
    r = d.upload_as(ADMIN, "echo", "broken")
    assert r.status == 200, r.text
    assert d.call("broken", b"fixed").body == b"fixed"
    listed = functions_of(d, ADMIN)["broken"]
    assert "state" not in listed and listed["instances"]["healthy"] == 1
    # Its old code is gone; the new record is whole and survives a restart.
    assert not (old_versions - {"function.json"}) & set(os.listdir(os.path.join(state, "functions", "broken")))
    d.stop()
    d2 = auth_daemons(tokens, state_dir=state)
    assert "quarantined" not in d2.log_text()
    wait_until(lambda: d2.call("broken", b"again", timeout=5).body == b"again", 20, interval=0.1,
               what="broken to answer after the restart")


def test_wipe_by_the_admin_removes_quarantined_functions_too(auth_daemons, tokens):
    d, state = restarted_with_a_corrupt_record(auth_daemons, tokens)
    assert d.mgmt("POST", "/wipe", token=ALICE).status == 200
    assert "broken" in functions_of(d, ADMIN)  # a tenant's wipe does not touch it
    assert d.mgmt("POST", "/wipe").status == 200
    assert functions_of(d, ADMIN) == {}
    assert os.listdir(os.path.join(state, "functions")) == []
