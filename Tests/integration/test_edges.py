"""Protocol and HTTP edges found by attacking the server: who sees peers' addresses, malformed and
oversized requests, control-frame floods, why peers leave, closed event streams, error-free logs, and
signalling that stays responsive while analytics is hammered."""
import json
import socket
import threading
import time

import pytest
import requests

from harness import Peer, wait_until
from native import NativePeer

ADMIN = "admin-token-for-tests-0123456789"


class EventStream:
    """A raw `/api/events` subscriber on its own socket: keeps every byte it reads."""

    def __init__(self, server, headers=""):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        self.data = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                with self.lock:
                    self.data += chunk
        except OSError:
            return

    def text(self):
        with self.lock:
            return self.data.decode("utf-8", "replace")

    def events(self):
        """(name, data) of every complete event so far."""
        out = []
        for block in self.text().split("\n\n"):
            lines = block.split("\n")
            name = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
            data = next((ln[6:] for ln in lines if ln.startswith("data: ")), None)
            if name and data is not None:
                out.append((name, json.loads(data)))
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- Who sees listening addresses -------------------------------------------------------------------

def test_listening_addresses_go_only_to_the_admin(start_server):
    server = start_server("--admin-token", ADMIN)
    stream = EventStream(server)
    wait_until(lambda: server.stats()["eventSubscribers"] == 1, message="subscribed")
    native = NativePeer(server.ws)
    try:
        peer_id = native.wait_registered()
        url = native.url
        assert url.startswith("ws://127.0.0.1:")
        public = {"runtimes": ["raytrace"], "workers": 1, "transports": ["websocket"]}
        admin = {"Authorization": f"Bearer {ADMIN}"}
        wrong = {"Authorization": "Bearer wrong-token-0000000000000"}
        wait_until(lambda: any(n == "join" for n, _ in stream.events()), message="join event")

        for headers in [{}, wrong, {"Authorization": "Basic dXNlcjpwYXNz"}]:
            for path in ["/api/network", f"/api/network?limit=1", f"/api/peers/{peer_id}"]:
                r = server.get(path, headers=headers)
                assert r.status_code == 200, (path, r.text)
                body = r.json()
                entry = body["peers"][0] if "peers" in body else body
                assert entry["peerId"] == peer_id and entry["capabilities"] == public, (path, headers)
                assert url not in r.text and "url" not in r.text
                assert "authorization" in r.headers.get("vary", "").lower()
        for path in ["/api/network", f"/api/peers/{peer_id}"]:
            r = server.get(path, headers=admin)
            entry = r.json()["peers"][0] if path == "/api/network" else r.json()
            assert entry["capabilities"] == {**public, "url": url}
        for path in ["/api/stats", "/metrics", "/healthz"]:
            assert url not in server.get(path).text
        assert url not in stream.text() and '"url"' not in stream.text()
    finally:
        native.stop()
        stream.close()


def test_addresses_hidden_when_admin_routes_are_off(server, peers):
    p = Peer(server); peers.append(p)
    p.register(capabilities={"workers": 3, "url": "ws://10.1.2.3:9100/", "host": "10.1.2.3"})
    for headers in [{}, {"Authorization": "Bearer anything-at-all-0000000"}]:
        assert server.get(f"/api/peers/{p.peer_id}", headers=headers).json()["capabilities"] == {"workers": 3}
        assert server.network()["peers"][0]["capabilities"] == {"workers": 3}
