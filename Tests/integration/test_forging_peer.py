"""A forging peer (issue 12): native peers sign every overlay message and verify what is delivered to them
(docs/protocol.md, "Signed overlay messages"). A Python protocol peer on the ring (forger.py) rewrites the
`srcId` of messages it relays, and injects forged and replayed frames on its links; the destinations
refuse them, count them by reason (the `overlay` counters of `state`) and report `forgery` events, and
honest traffic between the native peers is unaffected."""
import json
import time

import pytest

from forger import ForgingPeer, body, parse
from harness import Server, wait_until
from native import NativePeer, all_pairs, wait_stable

NATIVES = 5


@pytest.fixture
def ring(tmp_path):
    server = Server(tmp_path)
    natives, forger = [], None
    try:
        for _ in range(NATIVES - 1):
            natives.append(NativePeer(server.ws))
        for p in natives:
            p.wait_registered(timeout=30)
        forger = ForgingPeer(server)
        natives.append(NativePeer(server.ws))
        natives[-1].wait_registered(timeout=30)
        yield server, natives, forger
    finally:
        if forger:
            forger.close()
        for p in natives:
            p.stop()
        server.stop()


def refused(peer):
    return peer.state()["overlay"]["refused"]


def wait_linked(server, natives, forger, timeout=60):
    """Until the natives' states match the server's view (the forger included) and every native that
    needs the forger has a link to it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        network = {e["peerId"]: e for e in server.get("/api/network?limit=1000").json()["peers"]}
        if len(network) == len(natives) + 1 and forger.ready() and all(p.matches(network.get(p.peer_id)) for p in natives):
            return network
        time.sleep(0.2)
    raise AssertionError("the ring with the forger did not stabilise")


def test_forged_and_replayed_messages_are_refused_and_counted_and_honest_traffic_arrives(ring):
    server, natives, forger = ring
    wait_linked(server, natives, forger)
    linked = [p for p in natives if p.peer_id in forger.links]
    assert linked, "no native peer linked to the forger"
    b = linked[0]
    a = next(p for p in natives if p is not b)

    # Honest: every pair of natives delivers, relayed by the forger where it is on the route.
    delivered, expected, _ = all_pairs(natives)
    assert delivered == expected
    # And a genuine message from a native to the forger arrives signed, srcId and certificate a's.
    a.command(f'send {forger.peer_id} {json.dumps({"secret": 1})}')
    wait_until(lambda: forger.received, timeout=15, message="a signed message at the forger")
    genuine = forger.received[-1]
    hops, certificate, signature, text, src, dst, _ = parse(genuine)
    assert src == a.peer_id and dst == forger.peer_id and certificate == a.certificate

    for p in natives:
        p.clear("forgery")
    # 1. srcId rewritten to a's, with the forger's own certificate: wrong-source.
    forger.inject(b.peer_id, forger.frame(body(a.peer_id, b.peer_id, "f1", {"evil": 1})))
    # 2. the same with a's certificate (taken from a genuine frame): the signature is not a's.
    forger.inject(b.peer_id, forger.frame(body(a.peer_id, b.peer_id, "f2", {"evil": 2}), certificate=certificate))
    # 3. a's genuine message to the forger replayed to b, its dstId rewritten so that b is the destination.
    forger.inject(b.peer_id, f"S1:{certificate}:{signature}:{text.replace(forger.peer_id, b.peer_id, 1)}")
    # 4. the forger's own genuine message, delivered twice: replayed.
    own = forger.frame(body(forger.peer_id, b.peer_id, "own-1", {"n": 1}))
    forger.inject(b.peer_id, own)
    forger.inject(b.peer_id, own)
    # 5. an unsigned M message claiming to be a's.
    forger.inject(b.peer_id, "M" + json.dumps({"srcId": a.peer_id, "dstId": b.peer_id, "data": {"evil": 5}, "hops": 0, "id": "u"}))
    want = {"wrong-source": 1, "bad-signature": 2, "replayed": 1, "unsigned": 1}
    wait_until(lambda: all(refused(b).get(k, 0) >= n for k, n in want.items()), timeout=15,
               message=f"b's refusals {want}")
    assert {k: refused(b).get(k, 0) for k in want} == want
    reasons = sorted(e["reason"] for e in b.of("forgery"))
    assert reasons == sorted(["wrong-source", "bad-signature", "bad-signature", "replayed", "unsigned"])
    # Only the forger's own genuine message reached b's application, with the forger as its source.
    got = [m for m in b.of("message") if m["srcId"] != b.peer_id and isinstance(m["data"], dict) and ("evil" in m["data"] or "n" in m["data"])]
    assert [(m["srcId"], m["data"]) for m in got] == [(forger.peer_id, {"n": 1})]

    # 6. a's genuine message replayed to b unchanged: b is not its destination and relays it to the
    #    forger (directly or through others), byte-identical but for the hops; b accepts nothing.
    before = len(forger.received)
    accepted = b.state()["overlay"]["accepted"]
    forger.inject(b.peer_id, genuine)
    wait_until(lambda: len(forger.received) > before, timeout=15, message="the replay relayed back")
    back = forger.received[-1]
    assert back.split(":", 1)[1] == genuine.split(":", 1)[1] and int(back.split(":", 1)[0][1:]) > hops
    assert b.state()["overlay"]["accepted"] == accepted

    # On the route: the forger rewrites the srcId of every message it relays. Destinations refuse each
    # (wrong-source), and every message not relayed by the forger arrives.
    before = {p.peer_id: refused(p).get("wrong-source", 0) for p in natives}
    forger.tamper = True
    delivered, expected, _ = all_pairs(natives, timeout=20)
    forger.tamper = False
    tampered = forger.tampered
    print(f"the forger relayed {forger.relayed} messages honestly and tampered with {tampered}")
    wait_until(lambda: sum(refused(p).get("wrong-source", 0) - before[p.peer_id] for p in natives) >= tampered, timeout=15,
               message="every tampered message refused")
    assert sum(refused(p).get("wrong-source", 0) - before[p.peer_id] for p in natives) == tampered
    assert delivered == expected - tampered
    # Every message delivered came from the source it names.
    assert all(m["srcId"] == m["data"]["from"] for p in natives for m in p.of("message"))

    # Honest again: every pair delivers.
    delivered, expected, _ = all_pairs(natives)
    assert delivered == expected
