"""Hostile and malformed management requests: every one gets a 4xx with a
one-line reason, nothing escapes the function directory, and the daemon keeps
serving the functions it has."""

# e2e: both backends

import base64
import os
import shutil
import subprocess
import uuid
import zipfile

import pytest

from conftest import Daemon, fn_dir, one_line_reason, zip_entries_b64, zip_folder_b64

MAX_UPLOAD = 65536


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(extra_args=["--max-upload-bytes", str(MAX_UPLOAD)])
    d.ensure("echo")
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def echo_files() -> list:
    folder = fn_dir("echo")
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out.append((p.relative_to(folder).as_posix(), p.read_bytes()))
    return out


def assert_rejected(d, r, name=None, status=None):
    if 200 <= r.status < 300 and name:
        # Accepted by mistake: remove it so later tests start clean.
        d.mgmt("POST", "/delete", {"name": name})
    if status is not None:
        assert r.status == status, (r.status, r.text)
    assert 400 <= r.status < 500, f"expected 4xx, got {r.status}: {r.text!r}"
    one_line_reason(r.body)
    # The daemon still serves what it had.
    assert d.proc.poll() is None, f"the daemon died (status {d.proc.returncode})"
    d.ensure("echo")
    c = d.call("echo", b"still serving")
    assert (c.status, c.body) == (200, b"still serving"), (c.status, c.text)
    if name:
        assert name not in d.list_names()


def good_payload(**over):
    p = {"name": "bad", "env": "python3", "threads": 1, "zip": zip_folder_b64(fn_dir("echo"))}
    p.update(over)
    return p


# ---- malformed bodies -------------------------------------------------------

@pytest.mark.parametrize(
    "body",
    [b"{", b"not json at all", b'{"name": "bad", "env": "python3",', b"", b"[]", b'"a string"', b"null", b"42"],
    ids=["open-brace", "text", "truncated", "empty", "array", "string", "null", "number"],
)
def test_malformed_json(daemon, body):
    r = daemon.mgmt("POST", "/upload", body)
    assert_rejected(daemon, r, "bad")


@pytest.mark.parametrize("missing", ["name", "env", "threads", "zip"])
def test_missing_field(daemon, missing):
    p = good_payload()
    del p[missing]
    r = daemon.upload_raw(p)
    assert_rejected(daemon, r, "bad")


@pytest.mark.parametrize(
    "field,value",
    [("name", 5), ("name", None), ("env", 3), ("threads", "2"), ("threads", 1.5), ("threads", None),
     ("zip", 123), ("zip", None), ("envs", "A=B"), ("envs", [1, 2]), ("envs", {"A": "B"})],
    ids=["name-int", "name-null", "env-int", "threads-str", "threads-float", "threads-null",
         "zip-int", "zip-null", "envs-str", "envs-ints", "envs-object"],
)
def test_wrong_typed_field(daemon, field, value):
    r = daemon.upload_raw(good_payload(**{field: value}))
    assert_rejected(daemon, r, "bad")


def test_bad_base64(daemon):
    r = daemon.upload_raw(good_payload(zip="!!! this is not base64 @@@"))
    assert_rejected(daemon, r, "bad")


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04" + b"\x00garbage" * 20, b"just some bytes that are not a zip", b""],
    ids=["truncated-header", "not-a-zip", "empty"],
)
def test_corrupt_zip(daemon, data):
    r = daemon.upload_raw(good_payload(zip=base64.b64encode(data).decode()))
    assert_rejected(daemon, r, "bad")


def test_zip_with_bad_crc(daemon):
    # A well-formed archive whose content was damaged after packing.
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for n, data in echo_files():
            z.writestr(n, data)
        z.writestr("payload.txt", b"A" * 1000)
    raw = bytearray(buf.getvalue())
    i = raw.find(b"A" * 1000)
    raw[i + 10] = ord("B")
    r = daemon.upload_raw(good_payload(zip=base64.b64encode(bytes(raw)).decode()))
    assert_rejected(daemon, r, "bad")


# ---- entries escaping the function directory -------------------------------

def hostile_upload(daemon, extra_entries, name="bad"):
    entries = echo_files() + list(extra_entries)
    return daemon.upload_raw(good_payload(name=name, zip=zip_entries_b64(entries)))


def test_zip_entry_with_dotdot(daemon):
    marker = f"tfe2e-escape-{uuid.uuid4().hex}"
    r = hostile_upload(daemon, [(zipfile.ZipInfo(f"../{marker}"), b"escaped"),
                                (zipfile.ZipInfo(f"sub/../../../{marker}"), b"escaped")])
    assert_rejected(daemon, r, "bad")
    # Nothing landed anywhere below the daemon's directory, nor next to it.
    for base in (daemon.state_dir, daemon.root):
        for dirpath, dirs, files in os.walk(base):
            assert marker not in files, f"{marker} written to {dirpath}"
            if dirpath.count(os.sep) > base.count(os.sep) + 10:
                dirs[:] = []  # bounded walk
    assert not os.path.exists(os.path.join(os.path.dirname(daemon.state_dir), marker))
    assert not os.path.exists(os.path.join("/", marker))


def test_zip_entry_with_absolute_path(daemon):
    target = f"/tmp/tfe2e-abs-{uuid.uuid4().hex}"
    try:
        r = hostile_upload(daemon, [(zipfile.ZipInfo(target), b"escaped")])
        assert_rejected(daemon, r, "bad")
        assert not os.path.exists(target), f"absolute zip entry was written to {target}"
    finally:
        if os.path.isfile(target):
            os.remove(target)


def symlink_info(name: str) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name)
    zi.create_system = 3  # unix, so external_attr carries the mode
    zi.external_attr = (0o120777 << 16)
    return zi


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_zip_symlink_escape(daemon, kind):
    outside = f"/tmp/tfe2e-symtarget-{uuid.uuid4().hex}"
    os.makedirs(outside)
    try:
        link_target = outside if kind == "absolute" else "../../../../../../../../../.." + outside
        r = hostile_upload(daemon, [
            (symlink_info("link"), link_target.encode()),
            (zipfile.ZipInfo("link/pwned"), b"written through a symlink"),
        ])
        assert_rejected(daemon, r, "bad")
        assert os.listdir(outside) == [], f"a file was written through the symlink: {os.listdir(outside)}"
    finally:
        shutil.rmtree(outside, ignore_errors=True)


# ---- invalid values --------------------------------------------------------

def test_unknown_env(daemon):
    r = daemon.upload_raw(good_payload(env="cobol"))
    assert_rejected(daemon, r, "bad")


@pytest.mark.parametrize("threads", [0, -1, 65, 1000])
def test_threads_out_of_range(daemon, threads):
    r = daemon.upload_raw(good_payload(threads=threads))
    assert_rejected(daemon, r, "bad")


@pytest.mark.parametrize(
    "name",
    ["-echo", "a/b", "..", "a b", "", "a.b", "a_b", "\u00e4bc", "x;rm", "../../etc"],
    ids=["leading-dash", "slash", "dotdot", "space", "empty", "dot", "underscore", "umlaut", "semicolon", "traversal"],
)
def test_bad_name(daemon, name):
    r = daemon.upload_raw(good_payload(name=name))
    assert_rejected(daemon, r)
    assert name not in daemon.list_names()


def test_body_above_upload_limit_is_413(daemon):
    p = good_payload(zip="A" * (MAX_UPLOAD + 1000))
    r = daemon.upload_raw(p)
    assert_rejected(daemon, r, "bad", status=413)


def test_python_dependency_install_failure_is_400(daemon):
    entries = echo_files() + [("requirements.txt", b"this is not ((( a valid requirement ===\n")]
    r = daemon.upload_raw(good_payload(zip=zip_entries_b64(entries)))
    assert_rejected(daemon, r, "bad", status=400)


def test_nodejs_dependency_install_failure_is_400(daemon):
    entries = [
        ("index.js", b"module.exports = (req, res) => { res.send(req.body); };\n"),
        ("package.json", b'{ "name": "broken", "dependencies": { this is not json'),
    ]
    r = daemon.upload_raw(good_payload(env="nodejs", zip=zip_entries_b64(entries)))
    assert_rejected(daemon, r, "bad", status=400)


def test_failed_redeploy_keeps_the_old_version(daemon):
    daemon.deploy("echo", "victim")
    assert daemon.call("victim", b"v1").body == b"v1"
    for bad in (good_payload(name="victim", zip="%%%"),
                good_payload(name="victim", zip=base64.b64encode(b"not a zip").decode()),
                good_payload(name="victim", threads=0)):
        r = daemon.upload_raw(bad)
        assert_rejected(daemon, r)
        c = daemon.call("victim", b"v1 still")
        assert (c.status, c.body) == (200, b"v1 still")
    assert "victim" in daemon.list_names()


@pytest.mark.parametrize(
    "body", [b"{", b"{}", b'{"name": 5}', b'{"name": "a_b"}'], ids=["malformed", "missing", "int", "bad-name"]
)
def test_bad_delete(daemon, body):
    r = daemon.mgmt("POST", "/delete", body)
    assert_rejected(daemon, r)


# -- issue 14, item 9: misspelt fields and contradictory scaling ---------------


@pytest.mark.parametrize("field, hint", [("memroy_mb", "memory_mb"), ("thread", "threads"), ("envs2", "envs"),
                                         ("minInstances", "min_instances"), ("colour", None)])
def test_unknown_fields_are_a_400_naming_them(daemon, field, hint):
    r = daemon.upload_raw(good_payload(**{field: 128}))
    assert_rejected(daemon, r, name="bad", status=400)
    want = f'unknown field "{field}"' + (f' (did you mean "{hint}"?)' if hint else "")
    assert r.text.strip() == want


def test_unknown_fields_of_upload_url_are_a_400(daemon):
    r = daemon.mgmt("POST", "/uploadURL", {"name": "bad", "env": "python3", "threads": 1,
                                           "url": "http://127.0.0.1:9/f.zip", "subfolder": "x"})
    assert_rejected(daemon, r, name="bad", status=400)
    assert r.text.strip() == 'unknown field "subfolder" (did you mean "subfolder_path"?)'


@pytest.mark.parametrize("fields, reason", [
    ({"threads": 2, "max_instances": 1}, "threads (2) exceeds max_instances (1)"),
    ({"threads": 3, "min_instances": 4}, "min_instances (4) exceeds threads (3)"),
    ({"min_instances": 3, "max_instances": 2}, "min_instances (3) must not exceed max_instances (2)"),
    ({"max_instances": 0}, "max_instances must be an integer between 1 and 64, got 0"),
])
def test_contradictory_scaling_is_a_400(daemon, fields, reason):
    r = daemon.upload_raw(good_payload(**fields))
    assert_rejected(daemon, r, name="bad", status=400)
    assert r.text.startswith(reason), r.text


@pytest.mark.parametrize("name", ["-lead", "trail-", "-", "a_b"])
def test_names_with_a_dash_first_or_last_are_refused(daemon, name):
    r = daemon.upload_raw(good_payload(name=name))
    assert_rejected(daemon, r, name=name, status=400)
    assert "starting and ending with a letter or digit" in r.text


def test_a_name_with_a_dash_works_everywhere(make_daemon):
    """`my-func` as faas-cli users write it: deployed with upstream's
    upload.sh and called over HTTP (curl), CoAP (coap-client) and gRPC."""
    from conftest import REPO, coap_request
    from test_grpc import grpc

    d = make_daemon(grpc_port=0)
    env = dict(os.environ, TINYFAAS_MANAGEMENT_URL=f"http://127.0.0.1:{d.mport}")
    r = subprocess.run(["./upload.sh", str(fn_dir("echo")), "my-func", "python3", "1"], cwd=REPO / "scripts",
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"http://127.0.0.1:{d.hport}/my-func" in r.stdout
    assert "my-func" in d.list_names()
    curl = subprocess.run(["curl", "-sS", "--max-time", "30", "--data-binary", "over http",
                           f"http://127.0.0.1:{d.hport}/my-func"], capture_output=True, timeout=60)
    assert curl.stdout == b"over http", curl
    c = coap_request(d.cport, "my-func", b"over coap", method="post")
    assert (c.code, c.payload) == ("2.05", b"over coap"), c.log[-500:]
    g = grpc(d, "my-func", b"over grpc")
    assert (g.code, g.response) == ("OK", b"over grpc"), g
    assert d.mgmt("GET", "/functions/my-func").status == 200
    logs = d.mgmt("GET", "/logs?name=my-func")
    assert logs.status == 200, logs.text
    r = subprocess.run(["./delete.sh", "my-func"], cwd=REPO / "scripts", env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "my-func" not in d.list_names()
