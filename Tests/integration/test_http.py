"""REST analytics, Prometheus metrics, Server-Sent Events, admin eviction, static files, bound address."""
import json
import re
import socket
import subprocess
import threading
import time

import pytest
import requests

from harness import BIN, Peer, wait_until

ADMIN = "admin-token-for-tests-0123456789"


def test_healthz_and_version(server):
    r = server.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    assert r.json()["version"] == version


def test_stats_shape(server, peers):
    p = Peer(server); peers.append(p)
    p.register()
    s = server.stats()
    for key in ["peersOnline", "joins", "leaves", "reRegistrations", "signalsRelayed", "bytesIn", "bytesOut",
                "errors", "uptimeSeconds", "arcRatioMaxMin", "arcRatioMaxMean", "connectionsOpen",
                "slowConsumerDisconnects", "originRejections"]:
        assert key in s, key
    assert s["peersOnline"] == 1 and s["joins"] == 1 and s["bytesIn"] > 0 and s["bytesOut"] > 0
    assert set(s["errors"]) >= {"bad-json", "unknown-type", "bad-field", "not-registered", "already-registered",
                                "unknown-peer", "too-large", "rate-limited", "server-full", "bad-signature", "id-expired"}
    assert "bad-token" not in s["errors"] and s["badSignatures"] == 0
    assert s["arcRatioMaxMin"] == 1.0


def test_network_and_peer_shapes(server, peers):
    ps = [Peer(server) for _ in range(4)]
    peers.extend(ps)
    for p in ps:
        p.register(capabilities={"workers": 2})
    net = server.network()
    assert net["idBits"] == 48 and net["successors"] == 3 and net["fingerRows"]
    assert [e["peerId"] for e in net["peers"]] == sorted(p.peer_id for p in ps)
    entry = net["peers"][0]
    assert set(entry) == {"peerId", "predecessor", "successors", "fingers", "connectedAt", "capabilities", "stats"}
    assert set(entry["fingers"]) == {str(r) for r in net["fingerRows"]}
    one = server.get(f"/api/peers/{ps[0].peer_id}")
    assert one.status_code == 200 and one.headers["content-type"] == "application/json"
    assert one.json()["capabilities"] == {"workers": 2}
    missing = server.get("/api/peers/000000000000")
    assert missing.status_code == 404 and missing.json()["error"] == "unknown-peer"
    bad = server.get("/api/peers/zzz")
    assert bad.status_code == 400 and bad.json()["error"] == "bad-field"


def test_network_pages(server, peers):
    ps = [Peer(server) for _ in range(7)]
    peers.extend(ps)
    for p in ps:
        p.register()
    seen, after, pages = [], None, 0
    while True:
        q = "?limit=3" + (f"&after={after}" if after else "")
        page = server.get("/api/network" + q).json()
        assert page["total"] == 7 and len(page["peers"]) <= 3
        seen += [e["peerId"] for e in page["peers"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert pages == 3 and seen == sorted(p.peer_id for p in ps)
    assert server.network()["next"] is None and len(server.network()["peers"]) == 7
    for bad in ["?limit=0", "?limit=x", "?limit=10001", "?after=XYZ"]:
        r = server.get("/api/network" + bad)
        assert r.status_code == 400 and r.json()["error"] == "bad-field", bad


def test_metrics(server, peers):
    p = Peer(server); peers.append(p)
    p.register()
    r = server.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert "browsercloud_peers_online 1" in lines
    assert "browsercloud_joins_total 1" in lines
    assert 'browsercloud_errors_total{code="bad-json"} 0' in lines
    for line in lines:
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            float(value)


def test_unknown_routes_and_methods(server):
    r = server.get("/api/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not-found"
    r = requests.post(server.http + "/api/stats", timeout=5)
    assert r.status_code == 405 and r.json()["error"] == "method-not-allowed" and r.headers["allow"] == "GET, HEAD"
    r = requests.put(server.http + "/api/peers/000000000001", timeout=5)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, DELETE"   # docs/api.md: the two routes of a peer
    r = requests.post(server.http + "/metrics/", timeout=5)                    # a trailing slash is the same route
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert server.get("/api/peers/000000000001/extra").json()["error"] == "not-found"
    r = requests.post(server.http + "/index.html", timeout=5)
    assert r.status_code == 405
    r = server.get("/no/such/file.js")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")


def test_admin_eviction(start_server, peers):
    server = start_server("--admin-token", ADMIN)
    a = Peer(server); peers.append(a)
    b = Peer(server); peers.append(b)
    a.register(); b.register()
    url = f"{server.http}/api/peers/{a.peer_id}"
    assert requests.delete(url, timeout=5).status_code == 401
    assert requests.delete(url, headers={"Authorization": "Bearer wrong-token-000000000"}, timeout=5).status_code == 401
    r = requests.delete(url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5)
    assert r.status_code == 200 and r.json()["evicted"] == a.peer_id
    a.expect_error("evicted")
    wait_until(lambda: server.stats()["peersOnline"] == 1, message="evicted")
    wait_until(lambda: (b.pump(0), b.predecessor is None)[1], message="b told")
    assert server.stats()["evictions"] == 1
    assert requests.delete(url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5).status_code == 404


def test_admin_routes_off_without_token(server, peers):
    p = Peer(server); peers.append(p)
    p.register()
    r = requests.delete(f"{server.http}/api/peers/{p.peer_id}", headers={"Authorization": "Bearer x"}, timeout=5)
    assert r.status_code == 403 and r.json()["error"] == "admin-disabled"


def test_event_stream(start_server, peers):
    server = start_server("--event-keepalive", "1")
    events = []
    ready = threading.Event()

    def listen():
        with requests.get(server.http + "/api/events", stream=True, timeout=10) as r:
            assert r.headers["content-type"] == "text/event-stream"
            ready.set()
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    events.append(line[7:])
                if len([e for e in events if e == "leave"]) >= 1:
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(5)
    wait_until(lambda: server.stats()["eventSubscribers"] == 1, message="subscribed")
    a = Peer(server); peers.append(a)
    b = Peer(server); peers.append(b)
    a.register(); b.register()
    b.close()
    t.join(10)
    assert events.count("join") == 2 and "update" in events and events[-1] == "leave"
    wait_until(lambda: server.stats()["eventSubscribers"] == 0, message="unsubscribed")


class RawHTTP:
    """One TCP connection read as bytes, so that pipelined responses can be told apart."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; received so far: {self.buffer[-300:]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            chunk = None
        if chunk == b"":
            raise AssertionError(f"connection closed; received so far: {self.buffer[-300:]!r}")
        self.buffer += chunk or b""

    def read_until(self, marker, timeout=5.0):
        deadline = time.monotonic() + timeout
        while marker not in self.buffer:
            self._fill(deadline)
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def read_exactly(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.buffer) < n:
            self._fill(deadline)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def response_head(self):
        """(status line, {lower-case header name: value}) of the next response."""
        lines = self.read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"header {name} twice: {lines}"
            headers[name.lower()] = value.strip()
        return lines[0], headers

    def next_event(self, timeout=5.0):
        """The next Server-Sent Event as (event, data), skipping keep-alive comments."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.read_until(b"\n\n", timeout=max(0.0, deadline - time.monotonic())).decode()
            fields = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":"))
            if fields:
                return fields.get("event"), json.loads(fields["data"])

    def close(self):
        self.sock.close()


def test_pipelined_event_stream_requests_are_answered_and_do_not_leak_subscribers(start_server, peers):
    """GET /healthz and GET /api/events pipelined on one connection: the first response is the health
    check, the second the event stream (which gets later events); closed streams are noticed at the
    next keep-alive write (every second here), so the subscriber count goes back to zero."""
    server = start_server("--event-keepalive", "1")
    streams = []
    for i in range(1, 21):
        c = RawHTTP(server.port)
        streams.append(c)
        c.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers = c.response_head()
        assert status == "HTTP/1.1 200 OK" and headers["content-type"] == "application/json", (status, headers)
        assert json.loads(c.read_exactly(int(headers["content-length"])))["status"] == "ok"
        status, headers = c.response_head()
        assert status == "HTTP/1.1 200 OK", (i, status)
        assert headers["content-type"] == "text/event-stream", headers
        assert headers["cache-control"] == "no-cache", headers
        assert "content-length" not in headers, headers
        wait_until(lambda: server.stats()["eventSubscribers"] == i, message=f"{i} event subscribers")
    joiner = Peer(server); peers.append(joiner)
    joiner.register()
    for c in streams:
        assert c.next_event() == ("join", {"peerId": joiner.peer_id})
    for c in streams:
        c.close()
    wait_until(lambda: server.stats()["eventSubscribers"] == 0, message="no leaked subscribers")


def test_head_then_get_on_one_connection(server):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for method, path in [("HEAD", "/healthz"), ("GET", "/healthz"), ("HEAD", "/api/nothing"), ("GET", "/healthz/")]:
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        assert (body == b"") == (method == "HEAD"), (method, path)
    c.close()


@pytest.fixture
def public_dir(tmp_path):
    d = tmp_path / "public"
    (d / "sub").mkdir(parents=True)
    files = {"index.html": "<h1>hi</h1>", "app.js": "export {}", "mod.mjs": "export {}", "style.css": "a{}",
             "data.json": "{}", "pic.svg": "<svg/>", "pic.png": "\x89PNG", "code.wasm": "\0asm",
             "sub/index.html": "<p>sub</p>"}
    for name, content in files.items():
        (d / name).write_text(content)
    (tmp_path / "secret.txt").write_text("do not serve")
    (d / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return d


def test_static_files_and_mime_types(start_server, public_dir):
    server = start_server(public=public_dir)
    expected = {"/": "text/html", "/index.html": "text/html", "/app.js": "text/javascript",
                "/mod.mjs": "text/javascript", "/style.css": "text/css", "/data.json": "application/json",
                "/pic.svg": "image/svg+xml", "/pic.png": "image/png", "/code.wasm": "application/wasm",
                "/sub/": "text/html"}
    for path, mime in expected.items():
        r = server.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].split(";")[0] == mime, path
    assert server.get("/").text == "<h1>hi</h1>"


def test_static_files_never_escape_the_root(start_server, public_dir):
    server = start_server(public=public_dir)
    for path in ["/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/escape.txt", "/sub/../index.html/x"]:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        assert b"do not serve" not in data, path
    assert server.alive()


def test_loopback_bind_does_not_listen_elsewhere(server):
    # 127.0.0.2 is also loopback: a wildcard listener would accept there, a 127.0.0.1 bind must not.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", server.port), timeout=2)
    out = subprocess.run(["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True).stdout
    listeners = [line.split()[3] for line in out.splitlines() if line.strip()]
    assert listeners == [f"127.0.0.1:{server.port}"], listeners


def test_head_requests(start_server, public_dir):
    server = start_server(public=public_dir)
    for path, mime in [("/app.js", "text/javascript"), ("/api/stats", "application/json"), ("/healthz", "application/json")]:
        r = requests.head(server.http + path, timeout=5)
        assert r.status_code == 200 and r.headers["content-type"].startswith(mime) and r.content == b"", path
        assert int(r.headers["content-length"]) > 0
    assert requests.head(server.http + "/nope.js", timeout=5).status_code == 404
    # The connection stays usable after HEAD (keep-alive): a GET on the same session works.
    with requests.Session() as s:
        assert s.head(server.http + "/app.js", timeout=5).status_code == 200
        assert s.get(server.http + "/app.js", timeout=5).text == "export {}"
