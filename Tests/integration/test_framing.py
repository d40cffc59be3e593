"""The server's own WebSocket framing (Transport.writeFramed): queued messages to a WebSocket it accepted
are framed by the transport and written several at a time. A raw receiver parses every frame by hand
against RFC 6455 §5.2 (FIN set, text opcode, no mask from a server, the length in its shortest form),
independently of any WebSocket library, while a library client sends."""
import json
import random
import time

import pytest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import Peer, register_message
from rawclients import raw_websocket, send_masked


class RawReceiver:
    """A registered raw WebSocket that reads and checks frames itself."""

    def __init__(self, server):
        self.sock, challenge, self.data = raw_websocket(server, timeout=30)
        send_masked(self.sock, json.dumps(register_message(Ed25519PrivateKey.generate(), challenge["nonce"],
                                                           challenge["serverKey"])).encode())
        self.headers = []   # (length field form, payload length) of every frame read
        self.peer_id = self.next_message(lambda m: m["type"] == "registered")["peerId"]

    def _fill(self, n, deadline):
        while len(self.data) < n:
            if time.monotonic() > deadline:
                raise AssertionError("timed out reading a frame")
            chunk = self.sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            self.data += chunk

    def frame(self, timeout=30):
        """The next frame's payload, after checking its header."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.data[0], self.data[1]
        assert b0 == 0x81, f"FIN + text expected, got {b0:#x}"
        assert b1 & 0x80 == 0, "a server must not mask its frames"
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, at = int.from_bytes(self.data[2:4], "big"), 4
            assert n >= 126, f"16-bit length {n} where 7 bits suffice"
        elif n == 127:
            self._fill(10, deadline)
            n, at = int.from_bytes(self.data[2:10], "big"), 10
            assert n >= 65536, f"64-bit length {n} where 16 bits suffice"
        self._fill(at + n, deadline)
        payload, self.data = self.data[at:at + n], self.data[at + n:]
        self.headers.append((at, n))
        return payload

    def next_message(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            m = json.loads(self.frame(max(0.1, deadline - time.monotonic())))
            if predicate(m):
                return m

    def close(self):
        self.sock.close()


def relayed_size(sender_id, intent, signal):
    """Bytes of the frame the server relays (docs/protocol.md: `from` replaces `to`, keys in this order)."""
    return len(json.dumps({"type": "signal", "from": sender_id, "intentId": intent, "signal": signal},
                          separators=(",", ":")).encode())


def sized_signal(sender_id, intent, size):
    """An offer whose relayed frame is exactly `size` bytes."""
    base = relayed_size(sender_id, intent, {"type": "offer", "sdp": ""})
    assert size >= base
    return {"type": "offer", "sdp": "v" * (size - base)}


def test_frame_lengths_at_each_boundary_are_in_their_shortest_form(server, peers):
    rx = RawReceiver(server)
    try:
        tx = Peer(server); peers.append(tx)
        tx.register()
        # 7-bit, 16-bit and 64-bit length forms on both sides of each boundary (the largest needs an
        # incoming frame of 65,535 bytes, under the 64 KiB message limit).
        sizes = [125, 126, 127, 65535, 65536, 65537]
        for k, size in enumerate(sizes):
            signal = sized_signal(tx.peer_id, f"b{k}", size)
            tx.send(json.dumps({"type": "signal", "to": rx.peer_id, "intentId": f"b{k}", "signal": signal}, separators=(",", ":")))
            m = rx.next_message(lambda m: m["type"] == "signal")
            assert m == {"type": "signal", "from": tx.peer_id, "intentId": f"b{k}", "signal": signal}
        forms = [h for h in rx.headers if h[1] in sizes]
        assert forms == [(2, 125), (4, 126), (4, 127), (4, 65535), (10, 65536), (10, 65537)]
    finally:
        rx.close()


@pytest.mark.parametrize("settings", [[], ["--receive-buffer-bytes", "128", "--write-batch-bytes", "1024", "--trim-memory", "1"]],
                         ids=["defaults", "smallest-buffers"])
def test_a_burst_to_a_receiver_that_is_not_reading_arrives_whole_and_in_order(start_server, peers, settings):
    """Hundreds of messages of mixed sizes (about 2.5 MB, far more than the socket buffers hold) queue
    while the receiver does not read, so writes are partial and lws holds the rest; then every one
    arrives, intact and in order. Also with the smallest receive buffer and write batch the settings allow
    (every message then arrives in pieces and most go out alone)."""
    server = start_server("--rate-limit", "10000", "--rate-burst", "10000", *settings)
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    rx = RawReceiver(server)
    try:
        tx = Peer(server); peers.append(tx)
        tx.register()
        sent = []
        for k in range(240):
            size = rng.choice([rng.randint(90, 124), rng.randint(126, 2000), rng.randint(2000, 30000)])
            signal = sized_signal(tx.peer_id, f"m{k}", max(size, relayed_size(tx.peer_id, f"m{k}", {"type": "offer", "sdp": ""})))
            sent.append(signal)
            tx.send(json.dumps({"type": "signal", "to": rx.peer_id, "intentId": f"m{k}", "signal": signal}))
        # Every message reached the server (it relays in order) before the receiver reads anything.
        deadline = time.monotonic() + 30
        while server.stats()["signalsRelayed"] < len(sent):
            assert time.monotonic() < deadline, server.stats()
            time.sleep(0.05)
        assert server.stats()["slowConsumerDisconnects"] == 0
        for k, signal in enumerate(sent):
            m = rx.next_message(lambda m: m["type"] == "signal")
            assert (m["intentId"], m["signal"]) == (f"m{k}", signal), f"message {k} (seed {seed})"
    finally:
        rx.close()
