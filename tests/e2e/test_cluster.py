"""A cluster of tinyFaaS nodes on NATS JetStream (issue 18), end to end.

A real 3-server nats-server JetStream cluster on loopback (nats_cluster.py)
and three daemons joined to it (`--cluster URL,URL,URL --node-name NAME`,
each with its own state dir, ports and token file), called the way users
do: http.client, coap-client and grpc-python (test_grpc's client).

The module shares one cluster; tests that kill a node or NATS servers
restore them before the next test (_whole_cluster). They run last, in file
order.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from conftest import UPLOAD_TIMEOUT, fn_dir, fn_env, one_line_reason, wait_until, zip_folder_b64
from nats_cluster import ClusterNode, NatsCluster, TinyfaasCluster
from test_grpc import describe, grpc

ALPHA, BRAVO, CHARLIE = "alpha", "bravo", "charlie"
NAMES = (ALPHA, BRAVO, CHARLIE)

# Token files stay per node; tenants are cluster-wide: alice has one token
# on alpha and another on charlie, bob has tokens on bravo and charlie.
ADMIN = {ALPHA: "admin-alpha-0123456789", BRAVO: "admin-bravo-0123456789", CHARLIE: "admin-charlie-012345678"}
ALICE_A = "alice-on-alpha-0123456789"
ALICE_C = "alice-on-charlie-0123456"
BOB_B = "bob-on-bravo-0123456789"
BOB_C = "bob-on-charlie-012345678"
TENANTS = {ALPHA: [(ALICE_A, "alice")], BRAVO: [(BOB_B, "bob")], CHARLIE: [(ALICE_C, "alice"), (BOB_C, "bob")]}

# What the issue promises after a node dies: calls through the survivors
# succeed again within 30 s.
MOVE_DEADLINE = 30.0
# Deploys, deletes and registry changes reach the other nodes "within
# seconds"; generous for a loaded CI machine.
CONVERGE_DEADLINE = 30.0


@pytest.fixture(scope="module")
def nats():
    c = NatsCluster(3)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def cluster(nats, tmp_path_factory):
    tokens = {}
    folder = tmp_path_factory.mktemp("cluster-tokens")
    for name in NAMES:
        path = folder / f"{name}.tokens"
        lines = [f"{ADMIN[name]} ops admin"] + [f"{t} {tenant} tenant" for t, tenant in TENANTS[name]]
        path.write_text("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        tokens[name] = (ADMIN[name], str(path))
    c = TinyfaasCluster(nats, list(NAMES), tokens)
    yield c
    c.stop()


def crashed(node: ClusterNode) -> bool:
    return not node.stopped and node.proc.poll() is not None


@pytest.fixture(autouse=True)
def _whole_cluster(request):
    """Before each test: every NATS server and every node runs (a test that
    failed half-way through a kill leaves them down). After it: a node that
    died by itself fails the test, and is started again on its state dir."""
    if "cluster" not in request.fixturenames:
        yield
        return
    nats = request.getfixturevalue("nats")
    cluster = request.getfixturevalue("cluster")
    down = [i for i, s in enumerate(nats.servers) if not s.running()]
    for i in down:
        nats.restart(i)
    if down:
        nats.wait_ready()
    for name in NAMES:
        if cluster[name].stopped:
            cluster.restart(name)
    yield
    dead = [cluster[name] for name in NAMES if crashed(cluster[name])]
    if dead:
        report = "\n".join(f"{n.name} exited with status {n.proc.returncode}\n{n.log_tail(20)}" for n in dead)
        for n in dead:
            n.kill_hard()
            cluster.restart(n.name)
        pytest.fail(f"a node died during this test; it was started again\n{report}", pytrace=False)


# --------------------------------------------------------------------------
# helpers


def upload(node: ClusterNode, key: str, name: str, token="default", http_timeout=UPLOAD_TIMEOUT, **fields):
    """POST /upload; `fields` are upload fields (nodes, timeout...)."""
    payload = {"name": name, "env": fn_env(key), "threads": 1, "zip": zip_folder_b64(fn_dir(key)), **fields}
    return node.mgmt("POST", "/upload", payload, timeout=http_timeout, token=token)


def names_in(text: str) -> set[str]:
    return {n for n in NAMES if re.search(rf"\b{n}\b", text)}


def deploy(node: ClusterNode, key: str, name: str, **fields):
    """Uploads through `node`; the reply comes once the function is ready
    on at least one node and names the nodes (issue 18)."""
    r = upload(node, key, name, **fields)
    assert r.status == 200, f"upload of {name} through {node.name}: {r.status} {r.text!r}"
    assert names_in(r.text), f"the upload reply names no node: {r.text!r}"
    return r


def listed(node: ClusterNode, token="default") -> list[str]:
    r = node.mgmt("GET", "/list", token=token)
    assert r.status == 200, f"GET /list on {node.name}: {r.status} {r.text!r}"
    return [l.strip() for l in r.text.splitlines() if l.strip()]


def wait_listed_everywhere(cluster: TinyfaasCluster, name: str, present: bool = True):
    for node in cluster.live():
        wait_until(lambda: (name in listed(node)) == present, CONVERGE_DEADLINE,
                   what=f"{name} {'in' if present else 'out of'} {node.name}'s /list")


def runs_on(view: ClusterNode, name: str, token="default") -> set[str]:
    """Nodes that `view`'s GET /nodes says run an instance of `name`."""
    return {n["name"] for n in view.nodes(token=token) if name in n.get("functions", [])}


def local_hosts(cluster: TinyfaasCluster, name: str) -> set[str]:
    """Nodes with a process of `name` running under their state dir."""
    return {node.name for node in cluster.live() if node.instance_dirs(name)}


def placed_once(cluster: TinyfaasCluster, name: str) -> str:
    """Waits until exactly one node runs `name`, both by its processes and
    by every node's /nodes; returns that node's name."""
    def one():
        hosts = local_hosts(cluster, name)
        if len(hosts) != 1:
            return None
        views = [runs_on(node, name) for node in cluster.live()]
        return hosts.pop() if all(v == hosts for v in views) else None
    return wait_until(one, CONVERGE_DEADLINE, what=f"exactly one node to run {name} (and every /nodes to say so)")


def others(name: str) -> list[str]:
    return [n for n in NAMES if n != name]


def ok_call(node: ClusterNode, name: str, data: bytes, **kw) -> bool:
    r = node.call(name, data, **kw)
    return r.status == 200 and r.body == data


# --------------------------------------------------------------------------
# deploy anywhere, call anywhere


def test_deploy_on_one_node_is_listed_and_served_on_every_node(cluster):
    a, c = cluster[ALPHA], cluster[CHARLIE]
    deploy(a, "echo", "echo")
    wait_listed_everywhere(cluster, "echo")
    listed_c = json.loads(c.mgmt("GET", "/functions").body)
    assert "echo" in [f.get("name") for f in listed_c], listed_c
    for node in (c, cluster[BRAVO]):
        data = f"hello through {node.name}".encode()
        r = node.call("echo", data)
        assert (r.status, r.body) == (200, data), f"HTTP on {node.name}: {r.status} {r.text!r}"
        coap = node.coap("echo", data, method="post")
        assert (coap.code, coap.payload) == ("2.05", data), f"CoAP on {node.name}: {coap.code} {coap.log[-500:]}"
        g = grpc(node, "echo", data)
        assert (g.code, g.response) == ("OK", data), f"gRPC on {node.name}: {describe(g)}"
    # Without "nodes" every node runs it, so an edge site's devices call
    # their own node.
    wait_until(lambda: local_hosts(cluster, "echo") == set(NAMES), CONVERGE_DEADLINE,
               what="echo to run on every node")


def test_nodes_lists_every_node_with_its_functions(cluster):
    if "echo" not in listed(cluster[ALPHA]):
        deploy(cluster[ALPHA], "echo", "echo")
    for view in cluster.live():
        def complete():
            nodes = view.nodes()
            return nodes if all("echo" in n.get("functions", []) for n in nodes) and len(nodes) == 3 else None
        nodes = wait_until(complete, CONVERGE_DEADLINE, what=f"{view.name}'s /nodes to show echo on 3 nodes")
        assert isinstance(nodes, list)
        assert sorted(n["name"] for n in nodes) == sorted(NAMES), nodes
        for n in nodes:
            assert {"name", "up", "functions", "last_seen", "memory"} <= n.keys(), n
            assert n["up"] is True, n
            assert isinstance(n["functions"], list), n


def test_unknown_function_is_not_found_on_every_node_and_protocol(cluster):
    for node in cluster.live():
        r = node.call("nosuchfunction", b"x")
        assert r.status == 404, f"HTTP on {node.name}: {r.status} {r.text!r}"
        coap = node.coap("nosuchfunction", b"x", method="post")
        assert coap.code == "4.04", f"CoAP on {node.name}: {coap.code}"
        g = grpc(node, "nosuchfunction", b"x")
        assert g.code == "NOT_FOUND", describe(g)
        assert g.details == "function nosuchfunction not found", describe(g)


@pytest.mark.parametrize("name", ["a.b", "*", ">", "echo.x", "echo.*", "$JS.API.INFO", "_INBOX.x"])
def test_names_that_are_nats_subjects_or_wildcards_are_unknown_functions(cluster, name):
    # A forwarding node must not turn a name into a subject (or a wildcard).
    if "echo" not in listed(cluster[ALPHA]):
        deploy(cluster[ALPHA], "echo", "echo")
    for node in cluster.live():
        r = node.call(name, b"x")
        assert (r.status, r.text.strip()) == (404, f"function {name} not found"), (node.name, r.status, r.text)
        g = grpc(node, name, b"x")
        assert (g.code, g.details) == ("NOT_FOUND", f"function {name} not found"), describe(g)
        assert ok_call(node, "echo", b"still serving")


# --------------------------------------------------------------------------
# placement and forwarding


def test_one_node_placement_runs_once_and_the_others_forward(cluster):
    deploy(cluster[ALPHA], "show-headers", "placed", nodes=1)
    host = placed_once(cluster, "placed")
    wait_listed_everywhere(cluster, "placed")
    for name in others(host):
        node = cluster[name]
        r = node.call("placed", b"", headers={"Lab": "x", "X-Custom-Thing": "z"})
        assert r.status == 200, f"HTTP through {name}: {r.status} {r.text!r}"
        headers = json.loads(r.body)
        assert (headers.get("Lab"), headers.get("X-Custom-Thing")) == ("x", "z"), headers
        coap = node.coap("placed", b"", method="get")
        assert coap.code == "2.05" and isinstance(json.loads(coap.payload), dict), f"CoAP through {name}: {coap.code}"
        g = grpc(node, "placed", b"", metadata=[("lab", "y")])
        assert g.code == "OK" and json.loads(g.response).get("Lab") == "y", describe(g)
    # Forwarding is not deploying: still one node runs it.
    assert local_hosts(cluster, "placed") == {host}


def test_function_errors_and_timeouts_come_back_as_if_local(cluster):
    deploy(cluster[BRAVO], "fail", "failing", nodes=1)
    deploy(cluster[BRAVO], "sleep", "sleepy", nodes=1, timeout=0.5)
    for fn in ("failing", "sleepy"):
        host = placed_once(cluster, fn)
        local = cluster[host].call(fn, b"3")
        for name in others(host):
            forwarded = cluster[name].call(fn, b"3")
            assert (forwarded.status, forwarded.body) == (local.status, local.body), \
                f"{fn} through {name}: {forwarded.status} {forwarded.text!r}; on {host}: {local.status} {local.text!r}"
    host = placed_once(cluster, "failing")
    forwarder = cluster[others(host)[0]]
    r = forwarder.call("failing", b"x")
    assert r.status == 500 and "boom" in r.text, (r.status, r.text)
    coap = forwarder.coap("failing", b"x", method="post")
    assert coap.code == "5.00", coap.code
    g = grpc(forwarder, "failing", b"x")
    assert g.code == "INTERNAL" and "boom" in g.details, describe(g)
    host = placed_once(cluster, "sleepy")
    forwarder = cluster[others(host)[0]]
    r = forwarder.call("sleepy", b"3")
    assert r.status == 504 and r.elapsed < 2.5, (r.status, r.text, r.elapsed)
    g = grpc(forwarder, "sleepy", b"3")
    assert g.code == "DEADLINE_EXCEEDED", describe(g)


def test_large_payloads_through_a_forwarding_node_are_what_they_are_locally(cluster):
    # NATS' own default message limit is 1 MiB; the daemon's is 16 MiB.
    deploy(cluster[CHARLIE], "echo", "bigecho", nodes=1)
    host = placed_once(cluster, "bigecho")
    forwarder = cluster[others(host)[0]]
    data = os.urandom(1024 * 1024).hex().encode()  # 2 MiB of text
    r = forwarder.call("bigecho", data)
    assert r.status == 200 and r.body == data, f"2 MiB through {forwarder.name}: {r.status} {r.text[:300]!r}"
    too_big = b"x" * (16 * 1024 * 1024 + 1)
    local = cluster[host].call("bigecho", too_big)
    forwarded = forwarder.call("bigecho", too_big)
    assert local.status == 413, (local.status, local.text[:300])
    assert (forwarded.status, forwarded.body) == (local.status, local.body), (forwarded.status, forwarded.text[:300])
    assert ok_call(forwarder, "bigecho", b"still serving")


@pytest.mark.parametrize("value", [0, -1, "1", 1.5, True, [1], {"n": 1}, 2 ** 64, 10 ** 30],
                         ids=["zero", "negative", "string", "fraction", "bool", "list", "object",
                              "2^64", "1e30"])
def test_bad_nodes_values_are_a_400_naming_the_field(cluster, value):
    node = cluster[BRAVO]
    r = upload(node, "echo", "badnodes", nodes=value)
    assert r.status == 400, f"nodes={value!r}: {r.status} {r.text!r}"
    assert "nodes" in one_line_reason(r.body), r.text
    assert "badnodes" not in listed(cluster[ALPHA])
    assert ok_call(node, "echo", b"alive") or "echo" not in listed(node)


def test_logs_of_a_function_include_the_lines_of_the_node_that_runs_it(cluster):
    deploy(cluster[ALPHA], "fail", "logged", nodes=1)
    host = placed_once(cluster, "logged")
    forwarder = cluster[others(host)[0]]
    assert forwarder.call("logged", b"x").status == 500
    wait_until(lambda: "boom" in forwarder.mgmt("GET", "/logs?name=logged").text, CONVERGE_DEADLINE,
               what=f"the function's error in {forwarder.name}'s /logs")


# --------------------------------------------------------------------------
# management from every node


def test_delete_on_another_node_removes_it_everywhere(cluster):
    deploy(cluster[BRAVO], "echo", "shortlived")
    wait_listed_everywhere(cluster, "shortlived")
    wait_until(lambda: local_hosts(cluster, "shortlived") == set(NAMES), CONVERGE_DEADLINE,
               what="shortlived to run everywhere")
    r = cluster[CHARLIE].mgmt("POST", "/delete", {"name": "shortlived"})
    assert r.status == 200, (r.status, r.text)
    wait_listed_everywhere(cluster, "shortlived", present=False)
    for node in cluster.live():
        wait_until(lambda: node.call("shortlived", b"x").status == 404, CONVERGE_DEADLINE,
                   what=f"shortlived to be 404 on {node.name}")
    wait_until(lambda: not local_hosts(cluster, "shortlived"), CONVERGE_DEADLINE,
               what="shortlived's instances to stop on every node")
    assert cluster[ALPHA].mgmt("POST", "/delete", {"name": "shortlived"}).status == 404


def test_tenants_are_cluster_wide_and_tokens_per_node(cluster):
    a, b, c = cluster[ALPHA], cluster[BRAVO], cluster[CHARLIE]
    r = upload(a, "echo", "alicefn", token=ALICE_A)
    assert r.status == 200, (r.status, r.text)
    wait_until(lambda: "alicefn" in listed(c, token=ALICE_C), CONVERGE_DEADLINE,
               what="alice's function in her list on charlie")
    # Token files stay per node: alice's alpha token means nothing on charlie.
    assert c.mgmt("GET", "/list", token=ALICE_A).status == 401
    assert a.mgmt("GET", "/list", token=BOB_C).status == 401
    # Bob sees nothing of it, on either of his nodes, and cannot take the name.
    assert "alicefn" not in listed(b, token=BOB_B)
    assert "alicefn" not in listed(c, token=BOB_C)
    assert c.mgmt("POST", "/delete", {"name": "alicefn"}, token=BOB_C).status == 404
    assert upload(b, "echo", "alicefn", token=BOB_B).status == 409
    functions = json.loads(c.mgmt("GET", "/functions", token=BOB_C).body)
    assert "alicefn" not in [f.get("name") for f in functions]
    wait_until(lambda: "alicefn" in listed(b), CONVERGE_DEADLINE, what="alicefn in the list of bravo's admin")
    # GET /nodes tells a tenant where its own functions run, and nothing
    # of the others'.
    wait_until(lambda: runs_on(c, "alicefn", token=ALICE_C) == set(NAMES), CONVERGE_DEADLINE,
               what="alice's /nodes on charlie to show alicefn on every node")
    assert runs_on(c, "alicefn", token=BOB_C) == set()
    assert runs_on(b, "alicefn", token=BOB_B) == set()
    # Alice deletes it on charlie: gone on alpha too.
    assert c.mgmt("POST", "/delete", {"name": "alicefn"}, token=ALICE_C).status == 200
    wait_listed_everywhere(cluster, "alicefn", present=False)
    wait_until(lambda: a.call("alicefn", b"x").status == 404, CONVERGE_DEADLINE, what="alicefn to be 404 on alpha")


def test_a_second_live_node_with_a_taken_name_is_refused(cluster):
    b = cluster[BRAVO]
    token, token_file = cluster.tokens[BRAVO]
    twin = None
    try:
        twin = ClusterNode(BRAVO, cluster.nats.urls, token=token, token_file=token_file)
    except AssertionError as e:
        assert "exited with status" in str(e) and "status 0" not in str(e), str(e)
    if twin is not None:
        try:
            wait_until(lambda: twin.proc.poll() is not None, 20.0, what="a second node named bravo to give up")
            assert twin.proc.returncode != 0
        finally:
            twin.kill_hard()
            twin.cleanup()
    assert ok_call(b, "echo", b"the first bravo") or "echo" not in listed(b)
    assert [n["up"] for n in b.nodes() if n["name"] == BRAVO] == [True]


# --------------------------------------------------------------------------
# failures (these stop and restart nodes and NATS servers)


def test_a_node_that_was_down_catches_up_including_a_delete(cluster):
    a, b = cluster[ALPHA], cluster[BRAVO]
    deploy(a, "echo", "kept")
    deploy(a, "echo-js", "doomed")
    wait_until(lambda: cluster[CHARLIE].instance_dirs("kept") and cluster[CHARLIE].instance_dirs("doomed"),
               CONVERGE_DEADLINE, what="kept and doomed to run on charlie")
    cluster[CHARLIE].stop()
    wait_until(lambda: [n["up"] for n in a.nodes() if n["name"] == CHARLIE] == [False], CONVERGE_DEADLINE,
               what="alpha to see charlie down")
    assert a.mgmt("POST", "/delete", {"name": "doomed"}).status == 200
    deploy(b, "echo", "fresh")
    c = cluster.restart(CHARLIE)
    wait_until(lambda: {"kept", "fresh"} <= set(listed(c)) and "doomed" not in listed(c), CONVERGE_DEADLINE,
               what="charlie's /list to converge")
    wait_until(lambda: ok_call(c, "fresh", b"new") and ok_call(c, "kept", b"old"), CONVERGE_DEADLINE,
               what="charlie to serve kept and fresh")
    wait_until(lambda: c.call("doomed", b"x").status == 404, CONVERGE_DEADLINE, what="doomed to be 404 on charlie")
    wait_until(lambda: not c.instance_dirs("doomed") and c.instance_dirs("fresh"), CONVERGE_DEADLINE,
               what="charlie to stop doomed and run fresh itself")


def test_a_placed_function_moves_when_its_node_is_killed(cluster):
    deploy(cluster[ALPHA], "echo", "mover", nodes=1)
    host = placed_once(cluster, "mover")
    survivors = [cluster[n] for n in others(host)]
    cluster.kill9(host)
    t0 = time.monotonic()
    for node in survivors:
        wait_until(lambda: ok_call(node, "mover", b"moved", timeout=5), MOVE_DEADLINE - (time.monotonic() - t0),
                   interval=0.2, what=f"mover to answer through {node.name} after {host} was killed")
    for node in survivors:
        wait_until(lambda: [n["up"] for n in node.nodes() if n["name"] == host] == [False], CONVERGE_DEADLINE,
                   what=f"{node.name}'s /nodes to show {host} down")
        wait_until(lambda: len(runs_on(node, "mover") - {host}) == 1, CONVERGE_DEADLINE,
                   what=f"{node.name}'s /nodes to show mover on one survivor")
    assert len(local_hosts(cluster, "mover")) == 1
    # Back again: still one instance in the cluster, reachable everywhere.
    cluster.restart(host)
    placed_once(cluster, "mover")
    for node in cluster.live():
        wait_until(lambda: ok_call(node, "mover", b"back", timeout=5), CONVERGE_DEADLINE,
                   what=f"mover through {node.name}")


def test_deploys_and_calls_go_on_when_one_nats_server_dies(cluster, nats):
    a, b, c = cluster[ALPHA], cluster[BRAVO], cluster[CHARLIE]
    if "echo" not in listed(a):
        deploy(a, "echo", "echo")
    deploy(c, "echo", "beforeloss", nodes=1)
    host = placed_once(cluster, "beforeloss")
    nats.kill9(0)
    # Once NATS itself has recovered (new leaders elected), deploys work.
    nats.wait_ready()
    # Forwarded calls go on too (through whichever server each node uses now).
    for name in others(host):
        wait_until(lambda: ok_call(cluster[name], "beforeloss", b"fwd", timeout=5), CONVERGE_DEADLINE,
                   interval=0.2, what=f"beforeloss forwarded through {name}")
    deploy(a, "echo", "afterloss")
    wait_listed_everywhere(cluster, "afterloss")
    for node in (b, c):
        wait_until(lambda: ok_call(node, "afterloss", b"x"), CONVERGE_DEADLINE,
                   what=f"afterloss through {node.name}")
        assert ok_call(node, "echo", b"y")
    assert b.mgmt("POST", "/delete", {"name": "afterloss"}).status == 200
    wait_listed_everywhere(cluster, "afterloss", present=False)
    # What makes this last: the registry is replicated on all three servers.
    streams = [s for acc in nats.servers[1].jsz("?accounts=true&streams=true&config=true").get("account_details", [])
               for s in acc.get("stream_detail", [])]
    assert streams, "no JetStream stream on the cluster"
    assert all(s["config"]["num_replicas"] == 3 for s in streams), [(s["name"], s["config"]) for s in streams]


def test_without_nats_nodes_serve_their_functions_and_converge_after(cluster, nats):
    if "echo" not in listed(cluster[ALPHA]):
        deploy(cluster[ALPHA], "echo", "echo")
    wait_until(lambda: local_hosts(cluster, "echo") == set(NAMES), CONVERGE_DEADLINE,
               what="echo to run on every node")
    for i in range(len(nats.servers)):
        nats.kill9(i)
    # Offline first: every node keeps serving its own instances, over
    # HTTP and CoAP, for as long as this loop runs (bounded: 3 s, 60 calls).
    end = time.monotonic() + 3.0
    for i in range(60):
        if time.monotonic() > end:
            break
        node = cluster[NAMES[i % 3]]
        data = f"offline {i}".encode()
        r = node.call("echo", data, timeout=5)
        assert (r.status, r.body) == (200, data), f"call {i} on {node.name} without NATS: {r.status} {r.text!r}"
    coap = cluster[BRAVO].coap("echo", b"offline coap", method="post")
    assert (coap.code, coap.payload) == ("2.05", b"offline coap"), coap.code
    for i in range(len(nats.servers)):
        nats.restart(i)
    nats.wait_ready()
    # A deploy succeeds once the node is connected again, and reaches the others.
    wait_until(lambda: upload(cluster[CHARLIE], "echo", "healed", http_timeout=10).status == 200, CONVERGE_DEADLINE,
               interval=0.5, what="a deploy through charlie after NATS came back")
    wait_listed_everywhere(cluster, "healed")
    for node in cluster.live():
        wait_until(lambda: ok_call(node, "healed", b"h"), CONVERGE_DEADLINE, what=f"healed through {node.name}")
        wait_until(lambda: all(n["up"] for n in node.nodes()) and len(node.nodes()) == 3, CONVERGE_DEADLINE,
                   what=f"{node.name} to see every node up")


def test_wipe_on_one_node_empties_every_node(cluster):
    if "echo" not in listed(cluster[ALPHA]):
        deploy(cluster[ALPHA], "echo", "echo")
    before = listed(cluster[ALPHA])
    assert cluster[BRAVO].mgmt("POST", "/wipe").status == 200
    for node in cluster.live():
        wait_until(lambda: listed(node) == [], CONVERGE_DEADLINE, what=f"{node.name}'s /list to be empty")
    wait_until(lambda: not any(local_hosts(cluster, name) for name in before), CONVERGE_DEADLINE,
               what=f"every node to stop {before}")
