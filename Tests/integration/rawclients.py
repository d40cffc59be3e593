"""Raw clients for the edge tests: an `/api/events` subscriber on its own socket, HTTP exchanges written
byte by byte, and WebSocket registrations without a client library (to send frames a library would not)."""
import json
import socket
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import register_message


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
        # shutdown first: close() alone does not end a connection another thread is reading from.
        for end in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                end()
            except OSError:
                pass


# --- Who sees listening addresses -------------------------------------------------------------------


def http_exchange(server, raw, pieces=1, timeout=10):
    """Sends raw request bytes (in `pieces` parts, paced so that the server reads them separately) and
    returns everything the server sends until it closes (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        step = max(1, len(raw) // pieces)
        for i in range(0, len(raw), step):
            s.sendall(raw[i:i + step])
            if pieces > 1:
                time.sleep(0.02)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    finally:
        s.close()


def responses(data):
    """(status, headers, body) of each HTTP/1.1 response in `data` (bodies with content-length)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        length = int(headers.get("content-length", 0))
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


def get(path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def read_response(s):
    """One HTTP/1.1 response with a content-length from socket `s`; None if it closes first."""
    data = b""
    while True:
        got = responses(data) if b"\r\n\r\n" in data else []
        if got and len(got[0][2]) == int(got[0][1].get("content-length", 0)):
            return got[0]
        chunk = s.recv(65536)
        if not chunk:
            return None
        data += chunk


def raw_websocket(server, timeout=5):
    """A WebSocket opened by hand (subprotocol v2): (socket, the challenge, bytes read after it)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: webrtc-explorer.v2\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, data = data.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0]
    # The challenge: one unmasked text frame of 126...65535 bytes (a 16-bit length).
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[2:4], "big"):
        data += s.recv(4096)
    assert data[0] == 0x81 and data[1] == 126, data[:4]
    end = 4 + int.from_bytes(data[2:4], "big")
    challenge = json.loads(data[4:end])
    assert challenge["type"] == "challenge", challenge
    return s, challenge, data[end:]


def send_masked(s, payload):
    """One masked text frame (any length below 64 KiB)."""
    mask = b"\x01\x02\x03\x04"
    header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def register_raw(server):
    """A raw WebSocket client that registers (signing the challenge with a new key) and then never reads
    again (so it never answers a ping)."""
    s, challenge, _ = raw_websocket(server)
    send_masked(s, json.dumps(register_message(Ed25519PrivateKey.generate(), challenge["nonce"], challenge["serverKey"])).encode())
    return s
