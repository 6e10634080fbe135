"""A real NATS JetStream cluster and tinyFaaS nodes joined to it, for the
cluster tests (issue 18).

NatsCluster starts Debian's `nats-server` three times on 127.0.0.1, each
with its own client, route and monitoring ports (free at run time) and its
own JetStream store dir, routed to each other as one cluster; it is ready
when every running server's `/jsz` names a meta leader of a cluster of that
size. One server can be killed with SIGKILL and restarted on the same ports
and store (what a crash and a restart do to a real one).

TinyfaasCluster starts tinyFaaS daemons (conftest's Daemon: process
backend, loopback ports the daemon picks, own state dir) with
`--cluster URL,URL,URL --node-name NAME`, kills one with SIGKILL or stops
it, and starts it again on its state dir. Both stop everything they
started in stop(), which the fixtures call in teardown whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from typing import Optional

import pytest

from conftest import START_DEADLINE, Daemon, free_tcp_port, http_request, wait_until

NATS_SERVER = os.environ.get("NATS_SERVER", shutil.which("nats-server") or "/usr/bin/nats-server")
# Forming a cluster and electing a JetStream meta leader takes a few
# seconds; a restarted server catches up its store first.
NATS_READY_DEADLINE = 30.0


class NatsServer:
    def __init__(self, name: str, root: str, cluster_name: str):
        self.name = name
        self.client_port = free_tcp_port()
        self.route_port = free_tcp_port()
        self.monitor_port = free_tcp_port()
        self.store_dir = os.path.join(root, name + "-store")
        self.conf_path = os.path.join(root, name + ".conf")
        self.log_path = os.path.join(root, name + ".log")
        os.makedirs(self.store_dir)
        self.cluster_name = cluster_name
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def write_config(self, route_ports: list[int]) -> None:
        routes = ", ".join(f"nats://127.0.0.1:{p}" for p in route_ports)
        with open(self.conf_path, "w") as f:
            f.write(f"""server_name: {self.name}
listen: 127.0.0.1:{self.client_port}
http: 127.0.0.1:{self.monitor_port}
jetstream {{ store_dir: "{self.store_dir}" }}
cluster {{
  name: {self.cluster_name}
  listen: 127.0.0.1:{self.route_port}
  routes: [{routes}]
}}
""")

    def start(self) -> None:
        assert not self.running(), f"{self.name} runs already"
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([NATS_SERVER, "-c", self.conf_path], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def jsz(self, query: str = "") -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/jsz{query}", timeout=2) as r:
            return json.loads(r.read())

    def meta_leader(self, size: int) -> Optional[str]:
        """The JetStream meta leader this server follows, when it sees a
        cluster of `size` servers."""
        meta = self.jsz().get("meta_cluster") or {}
        return meta.get("leader") if meta.get("cluster_size") == size else None

    def stream_leaders(self) -> set:
        """The leader of every stream this server holds a replica of (None
        for a stream without one)."""
        details = self.jsz("?accounts=true&streams=true").get("account_details") or []
        return {(st.get("cluster") or {}).get("leader") for acc in details for st in acc.get("stream_detail") or []}

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as f:
                tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            return f"(no log for {self.name})"
        return f"--- nats-server {self.name} ({self.log_path}) ---\n" + "\n".join(tail)


class NatsCluster:
    """`size` routed nats-servers with JetStream on loopback."""

    def __init__(self, size: int = 3):
        if not os.access(NATS_SERVER, os.X_OK):
            pytest.fail(f"nats-server not found at {NATS_SERVER} (Debian: apt-get install nats-server)",
                        pytrace=False)
        self.root = tempfile.mkdtemp(prefix="tfnats-", dir="/tmp")
        self.servers = [NatsServer(f"nats{i}", self.root, "tfe2e") for i in range(size)]
        for s in self.servers:
            s.write_config([o.route_port for o in self.servers])
        try:
            for s in self.servers:
                s.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def urls(self) -> str:
        """The value of `--cluster`: every server, so that a client fails over."""
        return ",".join(s.url for s in self.servers)

    def wait_ready(self, deadline_s: float = NATS_READY_DEADLINE) -> None:
        """Until every running server follows the same running JetStream
        meta leader in a cluster of the configured size (right after a
        kill, the survivors still name the dead leader for a while), and
        every stream has a running leader."""
        size = len(self.servers)
        live = [s for s in self.servers if s.running()]
        assert live, "no nats-server runs"

        names = {s.name for s in live}

        def agreed():
            leaders = {s.meta_leader(size) for s in live}
            if len(leaders) != 1 or leaders.pop() not in names:
                return False
            # Streams (tinyFaaS' KV buckets) elect their own leaders after
            # the meta leader: NATS has recovered when each has a live one.
            return all(s.stream_leaders() <= names for s in live)

        try:
            wait_until(agreed, deadline_s,
                       what=f"a JetStream meta leader on {[s.name for s in live]}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log_tails()}") from None

    def kill9(self, i: int) -> NatsServer:
        self.servers[i].kill9()
        return self.servers[i]

    def restart(self, i: int) -> None:
        self.servers[i].start()

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tails(self) -> str:
        return "\n".join(s.log_tail() for s in self.servers)


# --------------------------------------------------------------------------
# tinyFaaS nodes


class ClusterNode(Daemon):
    """A daemon joined to a NATS cluster. With a token file, management
    calls carry this node's admin token unless told otherwise."""

    def __init__(self, name: str, nats_urls: str, token: Optional[str] = None, token_file: Optional[str] = None,
                 state_dir: Optional[str] = None, extra_args: tuple = ()):
        self.name = name
        self.token = token
        self.cluster_args = ["--cluster", nats_urls, "--node-name", name]
        if token_file:
            self.cluster_args += ["--token-file", token_file]
        self.cluster_args += list(extra_args)
        self._init_kw = dict(token=token, token_file=token_file, extra_args=tuple(extra_args))
        self.nats_urls = nats_urls
        super().__init__(grpc_port=0, state_dir=state_dir, extra_args=self.cluster_args)

    def _wait_ready(self):
        # With a token file GET /list without one is a 401 once the API is up.
        end = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"tinyfaas exited with status {self.proc.returncode} during start-up\n"
                                     f"command: {' '.join(self.args)}\n{self.log_tail()}")
            try:
                if http_request(self.mport, "GET", "/list", timeout=2,
                                headers=self.auth(self.token)).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() >= end:
                raise AssertionError(f"tinyfaas did not answer GET /list within {START_DEADLINE}s\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)

    @staticmethod
    def auth(token: Optional[str]) -> dict:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def mgmt(self, method, path, body=None, timeout=30.0, headers=None, token="default"):
        token = self.token if token == "default" else token
        return super().mgmt(method, path, body, timeout=timeout, headers={**(headers or {}), **self.auth(token)})

    def nodes(self, token="default") -> list:
        r = self.mgmt("GET", "/nodes", timeout=10, token=token)
        assert r.status == 200, f"GET /nodes on {self.name}: {r.status} {r.text!r}"
        return json.loads(r.body)


class TinyfaasCluster:
    """tinyFaaS nodes named `names` joined to `nats`. tokens[name], when
    given, is (admin token, token file) of that node."""

    def __init__(self, nats: NatsCluster, names: list[str], tokens: Optional[dict] = None,
                 extra_args: tuple = ()):
        self.nats = nats
        self.tokens = tokens or {}
        self.extra_args = tuple(extra_args)
        self.nodes: dict[str, ClusterNode] = {}
        try:
            for n in names:
                self.start(n)
        except BaseException:
            self.stop()
            raise

    def start(self, name: str, state_dir: Optional[str] = None) -> ClusterNode:
        """Starts node `name` (again, on `state_dir` when given)."""
        token, token_file = self.tokens.get(name, (None, None))
        node = ClusterNode(name, self.nats.urls, token=token, token_file=token_file, state_dir=state_dir,
                           extra_args=self.extra_args)
        old = self.nodes.get(name)
        if old is not None and old.state_dir == node.state_dir:
            node.own_state_dir, old.own_state_dir = old.own_state_dir, False
        if old is not None:
            old.cleanup()
        self.nodes[name] = node
        return node

    def __getitem__(self, name: str) -> ClusterNode:
        return self.nodes[name]

    def live(self) -> list[ClusterNode]:
        return [n for n in self.nodes.values() if not n.stopped]

    def kill9(self, name: str) -> None:
        """SIGKILL to the daemon and its handlers: the node is gone as if its
        machine died."""
        self.nodes[name].kill_hard()

    def restart(self, name: str) -> ClusterNode:
        old = self.nodes[name]
        assert old.stopped, f"{name} still runs"
        return self.start(name, state_dir=old.state_dir)

    def stop(self) -> None:
        """Stops every node (SIGTERM, exit 0, no handler left); raises the
        collected failures after all are stopped and removed."""
        errors = []
        for node in self.nodes.values():
            try:
                node.stop()
            except AssertionError as e:
                errors.append(str(e))
        for node in self.nodes.values():
            node.cleanup()
        if errors:
            raise AssertionError("\n\n".join(errors))
