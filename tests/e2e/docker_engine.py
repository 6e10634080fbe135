"""The Docker engine as the e2e tests see it: Engine API calls over its Unix
socket (python's http.client, no docker CLI), and the containers and
networks a tinyFaaS node created, found by their labels."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote

DOCKER_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def engine(method: str, path: str, body=None, timeout: float = 30.0):
    """One Engine API call; returns (status, parsed JSON or raw bytes)."""
    conn = _UnixConnection(DOCKER_SOCKET, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, "/v1.41" + path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, (json.loads(raw) if raw else None)
        except ValueError:
            return r.status, raw
    finally:
        conn.close()


def engine_answers() -> bool:
    try:
        return engine("GET", "/_ping", timeout=2)[0] == 200
    except OSError:
        return False


def ensure_engine(repo: Path) -> str | None:
    """Starts the engine with scripts/start-dockerd.sh if it does not answer;
    returns None when it answers, else why not."""
    if not engine_answers():
        script = repo / "scripts" / "start-dockerd.sh"
        if script.exists():
            subprocess.run([str(script)], capture_output=True, timeout=60)
    if engine_answers():
        return None
    return (f"no Docker engine answers on {DOCKER_SOCKET} and none could be started "
            "(apt-get install docker.io; scripts/start-dockerd.sh)")


def label_filter(label: str) -> str:
    return quote(json.dumps({"label": [label]}))


def node_id(state_dir: str) -> str:
    """The id a daemon's docker backend labels its containers with."""
    return Path(state_dir, "node-id").read_text().strip()


def containers(node: str, function: str | None = None, all_: bool = True) -> list[dict]:
    label = f"tinyfaas.node={node}"
    status, listed = engine("GET", f"/containers/json?all={int(all_)}&filters={label_filter(label)}")
    assert status == 200, listed
    if function is not None:
        listed = [c for c in listed if c["Labels"].get("tinyfaas.function") == function]
    return listed


def networks(node: str) -> list[dict]:
    status, listed = engine("GET", f"/networks?filters={label_filter(f'tinyfaas.node={node}')}")
    assert status == 200, listed
    return listed


def inspect(container_id: str) -> dict:
    status, body = engine("GET", f"/containers/{container_id}/json")
    assert status == 200, body
    return body


def kill(container_id: str) -> None:
    status, body = engine("POST", f"/containers/{container_id}/kill?signal=SIGKILL")
    assert status == 204, body


def remove_node_images(node: str) -> None:
    """Removes the runtime image tags of a node (REPOSITORY:DIGEST-NODE); an
    image whose last tag that was goes with it, as a node's pruning does."""
    status, images = engine("GET", f"/images/json?filters={label_filter('tinyfaas.runtime')}")
    if status != 200:
        return
    for image in images:
        for tag in image.get("RepoTags") or []:
            if tag.endswith("-" + node):
                engine("DELETE", f"/images/{tag}")


def remove_node(node: str) -> None:
    """Force-removes whatever a (crashed) daemon of this node left."""
    for c in containers(node):
        engine("DELETE", f"/containers/{c['Id']}?force=1&v=1")
    for n in networks(node):
        engine("DELETE", f"/networks/{n['Id']}")


class StallingEngineProxy:
    """A Unix socket in front of the engine that passes every request on,
    except image imports (POST .../images/create): those it reads and never
    answers, so that a test can act while a runtime image build waits for
    the engine. `stalled` is set when one arrives, `hung_up` when the client
    closed that connection."""

    def __init__(self, path: str):
        self.path = path
        self.stalled = threading.Event()
        self.hung_up = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                piece = client.recv(65536)
                if not piece:
                    return
                head += piece
            request_line = head.split(b"\r\n", 1)[0]
            if request_line.startswith(b"POST ") and b"/images/create" in request_line:
                self.stalled.set()
                while client.recv(65536):  # the image's tar, never imported
                    pass
                self.hung_up.set()
                return
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
                upstream.connect(DOCKER_SOCKET)
                upstream.sendall(head)
                back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
                back.start()
                _pipe(client, upstream)
                back.join(timeout=60)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
