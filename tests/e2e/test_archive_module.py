"""libarchive (with libxml2, ICU and its compressors) is the archive module,
tinyfaas-archive.so, loaded by the first deploy: an idle daemon does not map
it, which keeps it within its memory budget (bench/footprint)."""

from __future__ import annotations

from conftest import mapped_files

ARCHIVE_LIBRARIES = ("libarchive", "libxml2", "libicu", "tinyfaas-archive")


def archive_files(pid: int) -> list[str]:
    return sorted(f for f in mapped_files(pid) if any(name in f for name in ARCHIVE_LIBRARIES))


def test_the_first_deploy_loads_the_archive_module(make_daemon):
    d = make_daemon()
    assert archive_files(d.proc.pid) == []
    d.deploy("echo")
    loaded = archive_files(d.proc.pid)
    assert any("tinyfaas-archive.so" in f for f in loaded), loaded
    assert any("libarchive" in f for f in loaded), loaded
    r = d.call("echo", b"unpacked")
    assert (r.status, r.body) == (200, b"unpacked"), (r.status, r.body)
