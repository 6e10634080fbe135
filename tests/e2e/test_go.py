"""The go runtime (issue 13): upstream's `env: "go"` functions, built at
deploy in the install sandbox with our handler main, called over HTTP, CoAP
and gRPC; errors, panics, vendored modules, compile errors, the build
cache, concurrent calls, and uploads that try to run code at build time.

The module's daemon is --offline (a go build gets GOPROXY=off) and has
GOFLAGS and GOTOOLCHAIN in its own environment that would break every
build if they reached it: build flags are the daemon's alone."""

# e2e: both backends

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import REPO, Daemon, backend_independent, zip_entries_b64
from test_grpc import grpc

GO_MOD = b"module main\n\ngo 1.19\n"

# A Debian 12 toolchain besides the one in PATH (CI has both): the oldest Go
# the README names must build upstream's functions too.
DEBIAN_GO = "/usr/lib/go-1.19/bin/go"


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(grpc_port=0, extra_args=["--offline"],
               env={"GOFLAGS": "-toolexec=/bin/false", "GOTOOLCHAIN": "go1.99.9"})
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def upload(d: Daemon, name: str, files: dict, **fields):
    payload = {"name": name, "env": "go", "threads": 1, "zip": zip_entries_b64(files.items()), **fields}
    return d.upload_raw(payload)


def deploy(d: Daemon, name: str, files: dict, **fields):
    r = upload(d, name, files, **fields)
    assert r.status == 200, f"deploy of {name}: {r.status} {r.text}"
    return r


def deploy_logs(d: Daemon, name: str) -> list[str]:
    """The build's output lines in /logs (instance "NAME.install")."""
    r = d.mgmt("GET", f"/logs?name={name}")
    assert r.status == 200, r.text
    return [line for line in r.text.splitlines() if f" {name}.install " in line]


def upload_sh(d: Daemon, folder, name: str, env: str, threads: int):
    environment = dict(os.environ, TINYFAAS_MANAGEMENT_URL=f"http://127.0.0.1:{d.mport}")
    return subprocess.run([str(REPO / "scripts" / "upload.sh"), str(folder), name, env, str(threads)],
                          env=environment, capture_output=True, text=True, timeout=600)


def test_hello_go_over_http_coap_and_grpc(daemon):
    r = upload_sh(daemon, REPO / "functions" / "hello-go", "hellogo", "go", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {line for line in r.stdout.splitlines() if line} == daemon.expected_upload_lines("hellogo")

    call = daemon.call("hellogo", b"world", headers={"lab": "x"})
    assert call.status == 200, call.text
    assert call.text.startswith("Hello, world with headers: map["), call.text
    assert "Lab:x" in call.text, call.text  # Go's canonical name, the first value

    coap = daemon.coap("hellogo", b"over coap", method="post")
    assert coap.code == "2.05", coap.log[-800:]
    assert coap.payload.startswith(b"Hello, over coap with headers: map["), coap.payload

    rpc = grpc(daemon, "hellogo", b"over grpc", metadata=[("lab", "y")])
    assert rpc.code == "OK", rpc.details
    assert rpc.response.startswith(b"Hello, over grpc with headers: map["), rpc.response
    assert b"Lab:y" in rpc.response, rpc.response

    listed = json.loads(daemon.mgmt("GET", "/functions/hellogo").text)
    assert listed["runtime"] == "go", listed


def test_returned_error_is_500_with_its_text(daemon):
    deploy(daemon, "goerror", {"go.mod": GO_MOD, "fn.go": b"""package main

import "errors"

func fn(data string, headers map[string]string) (string, error) {
	return "", errors.New("cannot greet " + data)
}
"""})
    r = daemon.call("goerror", b"nobody")
    assert (r.status, r.text.rstrip("\n")) == (500, "cannot greet nobody")
    assert grpc(daemon, "goerror", b"x").code == "INTERNAL"


def test_panic_answers_500_and_the_instance_keeps_serving(daemon):
    deploy(daemon, "gopanic", {"go.mod": GO_MOD, "fn.go": b"""package main

func fn(data string, headers map[string]string) (string, error) {
	if data == "panic" {
		var m map[string]int
		m["boom"] = 1
	}
	return "fine", nil
}
"""})
    before = daemon.instances("gopanic")
    r = daemon.call("gopanic", b"panic")
    assert r.status == 500 and "assignment to entry in nil map" in r.text, (r.status, r.text)
    r = daemon.call("gopanic", b"again")
    assert (r.status, r.text) == (200, "fine")
    assert daemon.instances("gopanic") == before  # the same instance, not a restart


VENDORED = {
    "go.mod": b"module main\n\ngo 1.19\n\nrequire example.com/greet v1.0.0\n",
    "fn.go": b"""package main

import "example.com/greet"

func fn(data string, headers map[string]string) (string, error) {
	return greet.Hello(data), nil
}
""",
    "vendor/modules.txt": b"# example.com/greet v1.0.0\n## explicit; go 1.19\nexample.com/greet\n",
    "vendor/example.com/greet/greet.go": b"""package greet

// Hello is the vendored module's greeting.
func Hello(name string) string { return "vendored hello, " + name }
""",
}


def test_vendored_module_builds_on_an_offline_node(daemon):
    deploy(daemon, "govendor", VENDORED)
    r = daemon.call("govendor", b"edge")
    assert (r.status, r.text) == (200, "vendored hello, edge")


def test_module_without_vendor_on_an_offline_node_is_400(daemon):
    files = {k: v for k, v in VENDORED.items() if not k.startswith("vendor/")}
    r = upload(daemon, "gonovendor", files)
    assert r.status == 400, r.text
    assert r.text.startswith("go build failed: fn.go:3:8: "), r.text  # the import's line
    assert "GOPROXY=off" in r.text and "go mod vendor" in r.text, r.text


def test_compile_error_is_400_naming_the_line(daemon):
    r = upload(daemon, "gobroken", {"go.mod": GO_MOD, "fn.go": b"""package main

func fn(data string, headers map[string]string) (string, error) {
	return x, nil
}
"""})
    assert r.status == 400, r.text
    assert r.text.strip() == "go build failed: fn.go:4:9: undefined: x; see `tinyfaas logs gobroken`", r.text
    assert daemon.state_dir not in r.text and "/tmp" not in r.text and "tinyfaas_main" not in r.text
    assert "gobroken" not in daemon.list_names()


def test_wrong_signature_is_400_saying_what_fn_must_be(daemon):
    r = upload(daemon, "gosignature", {"go.mod": GO_MOD, "fn.go": b"""package main

func fn(data string) string { return data }
"""})
    assert r.status == 400, r.text
    assert "fn.go must define func fn(data string, headers map[string]string) (string, error)" in r.text, r.text
    assert "tinyfaas_main" not in r.text, r.text


def test_missing_go_mod_is_400(daemon):
    r = upload(daemon, "gonomod", {"fn.go": b"package main\n"})
    assert r.status == 400 and "go function needs fn.go and go.mod" in r.text, r.text


def test_redeploy_compiles_only_the_function(daemon):
    """The first build of the node compiles the standard library (the
    handler main's net/http); a redeploy finds it in the build cache and
    compiles only the function's own package."""
    files = {"go.mod": GO_MOD, "fn.go": b"""package main

func fn(data string, headers map[string]string) (string, error) { return "v1", nil }
"""}
    deploy(daemon, "gocache", files)
    compiled = [line for line in deploy_logs(daemon, "gocache") if line.endswith(" net/http")]
    files["fn.go"] = files["fn.go"].replace(b'"v1"', b'"v2"')
    deploy(daemon, "gocache", files)
    assert daemon.call("gocache").text == "v2"
    lines = deploy_logs(daemon, "gocache")
    assert [line for line in lines if line.endswith(" net/http")] == compiled, lines[-20:]
    assert lines[-1].endswith(" main"), lines[-5:]
    # The cache and the built code are the daemon's: the build made no file
    # of the sandbox user's.
    state = Path(daemon.state_dir)
    assert any((state / "go-cache").rglob("*-d")), "no build cache in the state dir"
    daemon_uid = os.stat(state).st_uid
    foreign = [str(p) for top in ("go-cache", "functions") for p in (state / top).rglob("*")
               if p.lstat().st_uid != daemon_uid]
    assert foreign == [], foreign[:10]


# Each call counts the calls in flight and waits until `want` are (or 5 s
# pass); it answers the most it saw at once.
CONCURRENT = {"go.mod": GO_MOD, "fn.go": b"""package main

import (
	"strconv"
	"sync"
	"time"
)

var (
	mu       sync.Mutex
	inFlight int
	most     int
)

func fn(data string, headers map[string]string) (string, error) {
	want, _ := strconv.Atoi(data)
	mu.Lock()
	inFlight++
	mu.Unlock()
	defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		if inFlight > most {
			most = inFlight
		}
		enough := inFlight >= want
		mu.Unlock()
		if enough {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return strconv.Itoa(most), nil
}
"""}


def call_all_at_once(d: Daemon, name: str, count: int, payload: bytes) -> list:
    results = [None] * count

    def one(i):
        results[i] = d.call(name, payload, timeout=60)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    return results


def test_calls_run_concurrently_in_one_instance_up_to_its_concurrency(daemon):
    deploy(daemon, "goconcurrent", CONCURRENT, concurrency=8)
    results = call_all_at_once(daemon, "goconcurrent", 8, b"8")
    assert all(r is not None and r.status == 200 for r in results), results
    assert max(int(r.text) for r in results) == 8, [r.text for r in results]

    deploy(daemon, "gonarrow", CONCURRENT, concurrency=2, queue=8)
    results = call_all_at_once(daemon, "gonarrow", 3, b"3")
    assert all(r is not None and r.status == 200 for r in results), results
    assert max(int(r.text) for r in results) == 2, [r.text for r in results]


def test_build_runs_no_code_of_the_upload(daemon):
    """A toolchain line that would download Go, a //go:generate directive
    and a cgo file: the build downloads nothing (the node is offline: the
    deploy would fail), runs no generator and compiles no cgo."""
    deploy(daemon, "goattack", {
        "go.mod": b"module main\n\ngo 1.19\n\ntoolchain go1.99.9\n",
        "go.work": b"go 1.19\n\nuse ./elsewhere\n",
        "fn.go": b"""package main

//go:generate sh -c "echo ran > generated.txt"

import (
	"fmt"
	"os"
)

var cgoCompiled bool

func fn(data string, headers map[string]string) (string, error) {
	_, err := os.Stat("generated.txt")
	return fmt.Sprintf("cgo=%v generated=%v", cgoCompiled, err == nil), nil
}
""",
        "cgo.go": b"""package main

// static int answer(void) { return 42; }
import "C"

func init() { cgoCompiled = C.answer() == 42 }
""",
    })
    r = daemon.call("goattack")
    assert (r.status, r.text) == (200, "cgo=false generated=false")


@backend_independent
def test_node_without_a_go_toolchain_refuses_go_deploys(make_daemon):
    d = make_daemon(extra_args=["--go", "/nonexistent/go"])
    r = upload(d, "nogo", {"go.mod": GO_MOD, "fn.go": b"package main\n"})
    assert r.status == 400, r.text
    assert "no Go toolchain" in r.text and "apt-get install golang-go" in r.text, r.text


@backend_independent
@pytest.mark.skipif(not os.access(DEBIAN_GO, os.X_OK), reason=f"{DEBIAN_GO} (Debian's golang-go) is not installed")
def test_debian_go_builds_upstreams_hello_go(make_daemon):
    """upstream's hello-go says `go 1.22`: Debian 12's Go 1.19 builds it."""
    d = make_daemon(extra_args=["--go", DEBIAN_GO, "--offline"])
    r = upload_sh(d, REPO / "functions" / "hello-go", "hellogo", "go", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    call = d.call("hellogo", b"old go")
    assert call.status == 200 and call.text.startswith("Hello, old go with headers: map["), call.text
    assert any("building with go 1.19" in line for line in deploy_logs(d, "hellogo"))
