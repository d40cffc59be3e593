#!/usr/bin/env python3
"""Writes Tests/vectors/rendezvous-events.jsonl: a real server run, recorded with
`browsercloud serve --record-events`, that RendezvousCoreTests replays into a fresh core (docs/architecture.md,
"The server core").

It starts the real server on an ephemeral loopback port with low rate limits, link relay and an admin
token, and drives it with real WebSocket clients: registrations with capabilities, signals, a relayed link
frame, a report, malformed and unknown messages, a binary and a too-large frame, pings, a flood that hits
the rate limit and is closed as abusive, a leave, a re-registration with the key, a replacement, an
eviction, closes, a bad signature, a wrong key claiming an ID, ID leases (a blip and a return within the
lease, an expiry and the id-expired answer, a binding restored from a state file written before the
start), and finally a shutdown (SIGTERM) that tells the remaining peers to go away. The server draws its
own random seed and challenge nonces; the log records both.

The server key file holds the fixed private key 00 01 02 ... 1f (the replay test checks signatures and
signs certificates with it).

    BROWSERCLOUD_BIN=.build/debug/browsercloud python3 Tests/vectors/record_rendezvous_events.py
"""
import json
import pathlib
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "integration"))
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from harness import Peer, Server, public_hex, wait_until  # noqa: E402

OUT = ROOT / "Tests" / "vectors" / "rendezvous-events.jsonl"
SERVER_KEY_HEX = bytes(range(32)).hex()
# The key of the binding restored from the "previous run" (its holder never comes back in the recording).
RESTORED_KEY = Ed25519PrivateKey.from_private_bytes(bytes([0x42] * 32))
ADMIN = "replay-admin-token-0123456789"
LEASE = 3   # seconds: short, so that one lease ends within the recording


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "server.ed25519").write_text(SERVER_KEY_HEX + "\n")
        log = tmp / "events.jsonl"
        # A state file from a "previous run": one binding, restored as a lease (the `restored` event).
        (tmp / "state").write_text(json.dumps({
            "format": "browsercloud-bindings/2", "nextEpoch": "1000", "savedAt": time.time(),
            "bindings": [{"peerId": "0123456789ab", "epoch": "999", "publicKey": public_hex(RESTORED_KEY),
                          "leaseEnds": time.time() + 600}]}))
        server = Server(tmp, "--record-events", log, "--rate-limit", "5", "--rate-burst", "10",
                        "--abusive-after", "30", "--max-message-bytes", "1024", "--link-relay",
                        "--admin-token", ADMIN, "--id-lease", LEASE, "--state-file", tmp / "state",
                        "--server-key-file", tmp / "server.ed25519", secret_file=tmp / "secret")
        peers = []
        try:
            drive(server, peers)
        finally:
            code = server.stop()        # SIGTERM: going-away to the peers still connected
            for p in peers:
                p.close()
        assert code == 0, f"server exited with {code}: {server.stderr_lines[-10:]}"
        lines = log.read_bytes().splitlines()
        assert lines and json.loads(lines[0])["format"] == "browsercloud-rendezvous-events/2"
        kinds = {json.loads(l)["event"]["type"] for l in lines[1:]}
        expected = {"opened", "received", "rejected", "control-frames", "closed", "evict", "going-away", "restored"}
        assert expected <= kinds, f"missing events: {expected - kinds}"
        OUT.write_bytes(log.read_bytes())
        print(f"wrote {OUT.relative_to(ROOT)}: {len(lines) - 1} events, seed {json.loads(lines[0])['configuration']['seed']}")



def drive(server, peers):
    def peer():
        p = Peer(server)
        peers.append(p)
        return p

    a, b, c = peer(), peer(), peer()
    a.register(capabilities={"runtimes": ["swift"], "workers": 2})
    b.register(capabilities={"runtimes": ["browser"]})
    c.register()
    for p in (a, b, c):
        p.pump(0.2)

    # Signals, a relayed link frame, a report.
    a.send({"type": "signal", "to": b.peer_id, "intentId": "i-1", "signal": {"type": "offer", "sdp": "v=0"}})
    b.expect(lambda m: m.get("type") == "signal" and m["from"] == a.peer_id)
    b.send({"type": "signal", "to": a.peer_id, "intentId": "i-1", "signal": {"type": "answer", "sdp": "v=0"}})
    a.expect(lambda m: m.get("type") == "signal" and m["from"] == b.peer_id)
    a.send({"type": "link", "to": c.peer_id, "frame": "hello over the relay"})
    c.expect(lambda m: m.get("type") == "link" and m["from"] == a.peer_id)
    c.send({"type": "report", "stats": {"linksOpen": 2, "routed": 17}})

    # Errors: unknown peer, malformed JSON, unknown type, not registered, already registered.
    b.send({"type": "signal", "to": "000000000001", "intentId": "i-2", "signal": {}})
    b.expect_error("unknown-peer")
    b.send("{not json")
    b.expect(lambda m: m.get("type") == "error")
    b.send({"type": "teleport"})
    b.expect(lambda m: m.get("type") == "error")
    b.send(b.register_message())
    b.expect_error("already-registered")
    d = peer()
    d.send({"type": "signal", "to": a.peer_id, "intentId": "i-3", "signal": {}})
    d.expect_error("not-registered")
    # A signature made for another connection's challenge (a's), and a wrong key claiming a's ID.
    d.challenge()
    d.send(a.register_message(peer_id=a.peer_id))
    d.expect_error("bad-signature")
    d.send(d.register_message(peer_id=a.peer_id))
    d.expect_error("id-expired")

    # Frames the transport refuses: binary and too large.
    d.send(b"\x00\x01binary")
    d.expect_error("binary-frame")
    d.send("x" * 2000)
    d.expect_error("too-large")

    # Pings: the transport reports them as control frames.
    for _ in range(5):
        d.ws.ping()
    wait_until(lambda: server.stats()["controlFramesIn"] >= 1, message="pings counted")

    # A flood: rate-limited, then closed as abusive.
    e = peer()
    e.register()
    for _ in range(60):
        try:
            e.send({"type": "report", "stats": {"x": 1}})
        except Exception:
            break
    wait_until(lambda: server.stats()["abusiveDisconnects"] == 1, message="abusive disconnect")
    wait_until(lambda: server.stats()["peersOnline"] == 3, message="flood left the ring")

    # A leave ends the lease at once: the same ID with its key on a new connection is id-expired;
    # the peer registers fresh.
    a_id, a_key = a.peer_id, a.key
    a.send({"type": "leave"})
    wait_until(lambda: server.stats()["peersOnline"] == 2, message="leave")
    a.close()
    a2 = peer()
    a2.send(a2.register_message(peer_id=a_id, key=a_key))
    a2.expect_error("id-expired")
    a2.register(key=a_key)

    # A replacement: B's ID registered on another connection while B is still connected.
    b2 = peer()
    b2.register(peer_id=b.peer_id, key=b.key)
    b.expect_error("replaced")

    # An eviction by the operator.
    r = requests.delete(f"{server.http}/api/peers/{c.peer_id}", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert r.status_code == 200, r.text
    c.expect_error("evicted")

    # Plain closes: one registered peer and one that never registered.
    d.close()
    f = peer()
    f.register()
    f.close()
    wait_until(lambda: server.stats()["connectionsOpen"] == 2, message="closes seen")   # a2 and b2 remain

    def no_leases():
        a2.send({"type": "report", "stats": {"x": 2}})   # an event, on which the core ends due leases
        return server.stats()["leasesHeld"] == 0
    # The leases so far (the restored one, clamped to --id-lease; the evicted, flooding and closed
    # peers') end.
    wait_until(no_leases, timeout=LEASE + 10, interval=0.25, message="the leases so far ended")
    ended = server.stats()["leasesExpired"]

    # A blip: G closes without leaving, its ID is leased, and G comes back with its key within the lease.
    g = peer()
    g.register()
    g_id, g_key = g.peer_id, g.key
    g.close()
    wait_until(lambda: server.stats()["leasesHeld"] == 1, message="G's lease")
    g2 = peer()
    g2.register(peer_id=g_id, key=g_key)
    assert g2.peer_id == g_id
    # G goes again and stays away: its lease ends (checked on the next event after it) and its key
    # gets id-expired.
    g2.close()
    wait_until(lambda: server.stats()["leasesHeld"] == 1, message="G's second lease")
    started = time.monotonic()
    wait_until(no_leases, timeout=LEASE + 10, interval=0.25, message="G's lease ended")
    assert server.stats()["leasesExpired"] == ended + 1
    assert time.monotonic() - started >= LEASE - 0.5, "a lease ended early"
    g3 = peer()
    g3.send(g3.register_message(peer_id=g_id, key=g_key))
    g3.expect_error("id-expired")
    g3.close()
    wait_until(lambda: server.stats()["connectionsOpen"] == 2, message="closes seen")


if __name__ == "__main__":
    main()
