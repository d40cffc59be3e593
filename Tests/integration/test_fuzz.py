"""Throws thousands of random and mutated frames at the real server, then checks that it is healthy and
that registered peers still relay."""
import json
import random

import websockets

from harness import Peer, wait_until

SEEDS = [
    {"type": "register"},
    {"type": "register", "peerId": "00000000abcd", "publicKey": "a" * 64, "signature": "b" * 128, "capabilities": {"workers": 2}},
    {"type": "register", "publicKey": "c" * 64, "signature": "d" * 128},
    {"type": "signal", "to": "000000000001", "intentId": "i", "signal": {"type": "offer", "sdp": "v=0"}},
    {"type": "leave"},
    {"type": "report", "stats": {"cpu": 0.5}},
]
ATOMS = [None, True, False, 0, -1, 1e308, -1e308, 2 ** 64, "", "x" * 100, "ffffffffffff", [], {}, [[[[[]]]]],
         {"type": "signal"}, "\u0000", "\ud7ff", 3.14]


def mutate(rng, obj, depth=0):
    if isinstance(obj, dict):
        out = dict(obj)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            keys = list(out) or ["type"]
            k = rng.choice(keys)
            if op < 0.3:
                out[k] = rng.choice(ATOMS)
            elif op < 0.5:
                out.pop(k, None)
            elif op < 0.7:
                out[rng.choice(["type", "to", "peerId", "token", "publicKey", "signature", "signal", "stats", "intentId", "zz"])] = rng.choice(ATOMS)
            elif depth < 3 and isinstance(out.get(k), dict):
                out[k] = mutate(rng, out[k], depth + 1)
        return out
    return rng.choice(ATOMS)


def frames(rng, n):
    for _ in range(n):
        kind = rng.random()
        if kind < 0.5:
            yield json.dumps(mutate(rng, rng.choice(SEEDS)))
        elif kind < 0.7:
            text = json.dumps(rng.choice(SEEDS))
            cut = rng.randrange(len(text) + 1)
            yield text[:cut] + "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(4))) + text[cut:]
        elif kind < 0.85:
            yield "".join(chr(rng.randrange(1, 0x7FF)) for _ in range(rng.randrange(64)))
        elif kind < 0.95:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            yield "[" * rng.randrange(1, 3000)


def test_fuzzed_frames_do_not_harm_server_or_peers(start_server, peers):
    server = start_server("--rate-limit", "100000", "--rate-burst", "100000")
    a = Peer(server); peers.append(a)
    b = Peer(server); peers.append(b)
    a.register(); b.register()
    rng = random.Random(2026)
    sent = 0
    for round_ in range(6):
        attacker = Peer(server); peers.append(attacker)
        try:
            for f in frames(rng, 800):
                attacker.send(f)
                sent += 1
        except websockets.ConnectionClosed:
            pass
        attacker.close()
    assert sent >= 4000
    assert server.get("/healthz").status_code == 200
    assert server.alive()
    # The two honest peers are untouched and still relay both ways.
    wait_until(lambda: any(p["peerId"] == a.peer_id for p in server.network()["peers"]), message="a present")
    a.send({"type": "signal", "to": b.peer_id, "intentId": "after-fuzz", "signal": {"type": "offer", "sdp": "v=0"}})
    assert b.expect(lambda m: m["type"] == "signal" and m["intentId"] == "after-fuzz")["from"] == a.peer_id
    b.send({"type": "signal", "to": a.peer_id, "intentId": "after-fuzz", "signal": {"type": "answer", "sdp": "v=0"}})
    assert a.expect(lambda m: m["type"] == "signal" and m["intentId"] == "after-fuzz")["from"] == b.peer_id
    errors = server.stats()["errors"]
    assert errors["bad-json"] > 100 and errors["binary-frame"] > 100
