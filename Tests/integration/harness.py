"""Test harness: runs the real browsercloud server on an ephemeral loopback port and talks to it with
real WebSocket and HTTP clients. Nothing is mocked; every wait is bounded."""
import json
import os
import pathlib
import subprocess
import threading
import time

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from websockets.sync.client import connect

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("BROWSERCLOUD_BIN", str(ROOT / ".build" / "debug" / "browsercloud"))
SUBPROTOCOL = "webrtc-explorer.v2"
ID_BITS = 48
SPACE = 1 << ID_BITS


class Server:
    """A browsercloud server process bound to 127.0.0.1 on a kernel-chosen port."""

    def __init__(self, tmp_path, *args, secret_file=None, public=None, host="127.0.0.1", prefix=(), port=0):
        self.secret_file = str(secret_file or (tmp_path / "secret"))
        cmd = list(prefix) + [BIN, "serve", "--host", host, "--port", str(port), "--secret-file", self.secret_file,
                              "--log-level", "warning"]
        cmd += ["--public", str(public if public is not None else ROOT / "Public")]
        cmd += [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr_lines = []
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        line = self._read_line(timeout=15)
        if not line or "listening on" not in line:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} {self.stderr_lines[-20:]}")
        self.port = int(line.rsplit(":", 1)[1])
        self.host = host
        self.http = f"http://{host}:{self.port}"
        self.ws = f"ws://{host}:{self.port}"

    def _pump_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def _read_line(self, timeout):
        result = []
        t = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return result[0].strip() if result else None

    def get(self, path, **kw):
        return requests.get(self.http + path, timeout=10, **kw)

    def stats(self):
        return self.get("/api/stats").json()

    def network(self):
        return self.get("/api/network").json()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def wait_until(predicate, timeout=10.0, interval=0.02, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def public_hex(key):
    """The 64 lowercase hex characters of an Ed25519 private key's public key."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def registration_text(server_key, nonce, peer_id, public_key):
    """The bytes a client signs in `register` (docs/protocol.md, "Key-pair identity")."""
    return f"browsercloud-register/1\n{server_key}\n{nonce}\n{peer_id or '-'}\n{public_key}".encode()


def register_message(key, nonce, server_key, peer_id=None, capabilities=None):
    """A `register` signed with `key` for the challenge (`nonce`, `server_key`) and `peer_id`."""
    msg = {"type": "register", "publicKey": public_hex(key),
           "signature": key.sign(registration_text(server_key, nonce, peer_id, public_hex(key))).hex()}
    if peer_id:
        msg["peerId"] = peer_id
    if capabilities is not None:
        msg["capabilities"] = capabilities
    return msg


def check_certificate(certificate, server_key):
    """The fields of a certificate (peerId, publicKey, epoch) after checking the server's signature."""
    assert len(certificate) == 220 and certificate == certificate.lower(), certificate
    peer_id, public_key, epoch, signature = certificate[:12], certificate[12:76], certificate[76:92], certificate[92:]
    text = f"browsercloud-certificate/1\n{server_key}\n{peer_id}\n{public_key}\n{epoch}".encode()
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(server_key)).verify(bytes.fromhex(signature), text)   # raises if forged
    return peer_id, public_key, epoch


async def register_async(ws, key=None, timeout=10):
    """Registers an asyncio `websockets` connection: reads its challenge, signs it with `key` (a new one
    when None), and returns the `registered` message (messages before it are dropped)."""
    import asyncio
    key = key or Ed25519PrivateKey.generate()
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if m.get("type") == "challenge":
            break
    await ws.send(json.dumps(register_message(key, m["nonce"], m["serverKey"])))
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if m.get("type") in ("registered", "error"):
            return m


class Peer:
    """A protocol v2 client that applies what the server pushes to its own view of the ring. It holds an
    Ed25519 key (a new one unless given) and signs its connection's challenge to register."""

    def __init__(self, server, subprotocol=True, key=None, **kw):
        self.server = server
        protos = [SUBPROTOCOL] if subprotocol else None
        # An unbounded client queue keeps reading the socket even when the test does not, so closing
        # is prompt; the slow-consumer test passes max_queue=1 to stop reading on purpose.
        kw.setdefault("max_queue", None)
        self.ws = connect(server.ws, subprotocols=protos, open_timeout=10, close_timeout=2, max_size=None, **kw)
        self.key = key or Ed25519PrivateKey.generate()
        self.nonce = None          # the connection's challenge
        self.server_key = None
        self.peer_id = None
        self.epoch = None
        self.certificate = None
        self.config = None
        self.predecessor = None
        self.successors = []
        self.fingers = {}
        self.inbox = []  # messages other than ring state

    def send(self, obj):
        self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    def recv(self, timeout=5.0):
        msg = json.loads(self.ws.recv(timeout=timeout))
        self._apply(msg)
        return msg

    def _apply(self, m):
        t = m.get("type")
        if t == "challenge":
            self.nonce, self.server_key = m["nonce"], m["serverKey"]
        elif t == "registered":
            self.peer_id, self.epoch, self.certificate, self.config = m["peerId"], m["epoch"], m["certificate"], m["config"]
        elif t == "config":
            self.config = {k: v for k, v in m.items() if k != "type"}
            rows = set(self.config["fingerRows"])
            self.fingers = {r: p for r, p in self.fingers.items() if r in rows}
        elif t == "predecessor":
            self.predecessor = m["peerId"]
        elif t == "successors":
            self.successors = m["peerIds"]
        elif t == "finger-update":
            self.fingers[m["row"]] = m["peerId"]
        else:
            self.inbox.append(m)

    def expect(self, predicate, timeout=5.0):
        """Reads until a non-state message satisfies predicate (earlier ones stay in the inbox)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.inbox):
                if predicate(m):
                    return self.inbox.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message; inbox={self.inbox[-5:]}")
            try:
                self.recv(timeout=left)
            except TimeoutError:
                pass

    def expect_error(self, code, timeout=5.0):
        return self.expect(lambda m: m.get("type") == "error" and m.get("code") == code, timeout)

    @property
    def public_key(self):
        return public_hex(self.key)

    def challenge(self, timeout=5.0):
        """(nonce, serverKey) of this connection, reading until the challenge has arrived."""
        deadline = time.monotonic() + timeout
        while self.nonce is None:
            self.recv(timeout=max(0.01, deadline - time.monotonic()))
        return self.nonce, self.server_key

    def register_message(self, peer_id=None, key=None, capabilities=None):
        """A `register` for this connection's challenge, signed with `key` (default: the peer's own)."""
        nonce, server_key = self.challenge()
        return register_message(key or self.key, nonce, server_key, peer_id, capabilities)

    def register(self, peer_id=None, key=None, capabilities=None):
        """Registers (with `peer_id`: claims it) with `key`, which becomes the peer's key; returns the ID."""
        if key is not None:
            self.key = key
        self.send(self.register_message(peer_id, capabilities=capabilities))
        deadline = time.monotonic() + 5
        while self.peer_id is None or (peer_id and self.peer_id != peer_id):
            m = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if m.get("type") == "error":
                raise AssertionError(f"register failed: {m}")
        return self.peer_id

    def pump(self, duration=0.0):
        """Applies every message that arrives within `duration` seconds."""
        deadline = time.monotonic() + duration
        while True:
            try:
                self.recv(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return

    def state(self):
        return {"predecessor": self.predecessor, "successors": list(self.successors),
                "fingers": {str(r): p for r, p in sorted(self.fingers.items())}}

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def oracle_state(peer_hex, members_hex, rows, r):
    """Chord state of one peer recomputed from scratch (brute force)."""
    n = int(peer_hex, 16)
    members = sorted(int(m, 16) for m in members_hex)
    others = [m for m in members if m != n]

    def succ(t):
        return min(members, key=lambda m: (m - t) % SPACE)

    pred = max(others, key=lambda m: (m - n) % SPACE) if others else None
    successors = sorted(others, key=lambda m: (m - n) % SPACE)[:r]
    fingers = {}
    for row in rows:
        f = succ((n + (1 << row)) % SPACE)
        fingers[str(row)] = None if f == n else f"{f:012x}"
    return {"predecessor": None if pred is None else f"{pred:012x}",
            "successors": [f"{s:012x}" for s in successors], "fingers": fingers}


def auto_rows(n):
    n = max(n, 1)
    k = 0
    while (1 << k) < n:
        k += 1
    top = min(ID_BITS - 1, k + 2)
    return [0] + list(range(ID_BITS - top, ID_BITS))


def make_pki(directory):
    """A throwaway CA and a server certificate for localhost and 127.0.0.1 (openssl); returns the directory
    holding ca.pem, server.pem and server.key."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=BrowserCloud test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (directory / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
        "-extfile", "ext.cnf")
    return directory


def flood_slow_consumer(server, peers):
    """Registers a peer that reads one message and then nothing (its client stops reading the socket)
    and a fast peer that floods it with 60 KB signals until the server counts a slow consumer (at most
    2000). The server must run with a small --send-queue-bytes and a high rate limit. Returns (slow, fast)."""
    slow = Peer(server, max_queue=1); peers.append(slow)
    slow.register()
    fast = Peer(server); peers.append(fast)
    fast.register()
    blob = "z" * 60000
    sent = 0
    while server.stats()["slowConsumerDisconnects"] == 0 and sent < 2000:
        fast.send({"type": "signal", "to": slow.peer_id, "intentId": "flood", "signal": {"sdp": blob}})
        sent += 1
    return slow, fast
