"""An ID belongs to its holder (issue 12, first slice): holder epochs, ID leases and the state file, against
the real server with protocol clients and native peers. Each test is one step of the defect that must never
come back (docs/protocol.md, "Tokens, epochs and leases"):

1. B gets X and T and drops; no newcomer gets X during the lease.
2. B comes back with X and T and gets X.
3. After the lease a newcomer may get X, with another token; B's old token gets id-expired; B registers fresh.
4. A signal to X while X is leased is answered unknown-peer (never delivered to anyone).
5. Restart: a newcomer registering first does not get a returning peer's ID; the returning peer gets it back.
6. Soak: native peers whose connections are cut repeatedly, plus newcomers: no replacement ping-pong.
"""
import json
import os
import random
import time

import requests

from harness import Peer, Server, wait_until
from native import NativePeer, wait_stable

ADMIN = "ids-test-admin-token-0123456789"


def ring_of(server, peers, n):
    made = []
    for _ in range(n):
        p = Peer(server)
        peers.append(p)
        p.register()
        made.append(p)
    return made


def drop(server, peer, leases):
    """Closes the peer's socket without a leave (a blip) and waits until the server holds its lease."""
    peer.close()
    wait_until(lambda: server.stats()["leasesHeld"] == leases, message=f"{leases} leases held")


def test_a_dropped_id_goes_to_no_newcomer_during_its_lease_and_back_to_its_holder(start_server, peers):
    server = start_server("--id-lease", "600")
    ring_of(server, peers, 3)
    b = ring_of(server, peers, 1)[0]
    x, t = b.peer_id, b.token
    drop(server, b, 1)
    # Before leases, the first newcomer got X (the midpoint of the largest arc) and the same token.
    newcomers = ring_of(server, peers, 8)
    assert x not in {n.peer_id for n in newcomers}
    assert t not in {n.token for n in newcomers}
    # Step 4: a late signal for B is answered unknown-peer, and reaches none of the newcomers.
    sender = newcomers[0]
    sender.send({"type": "signal", "to": x, "intentId": "late", "signal": {"candidate": "192.0.2.1"}})
    sender.expect_error("unknown-peer")
    for n in newcomers[1:]:
        n.pump(0.05)
        assert not [m for m in n.inbox if m.get("type") == "signal"]
    # Step 2: B comes back with X and T.
    back = Peer(server); peers.append(back)
    assert back.register(x, t) == x and back.token == t
    stats = server.stats()
    assert stats["leasesHeld"] == 0 and stats["leasesClaimed"] == 1 and stats["replacements"] == 0
    assert stats["peersOnline"] == 12


def test_after_the_lease_a_newcomer_gets_another_token_and_the_old_one_is_id_expired(start_server, peers):
    lease = 1.0
    server = start_server("--id-lease", lease)
    others = ring_of(server, peers, 3)
    b = ring_of(server, peers, 1)[0]
    x, t = b.peer_id, b.token
    drop(server, b, 1)
    t0 = time.monotonic()

    def ended():
        others[0].send({"type": "report", "stats": {"x": 1}})   # any event: the core ends due leases
        return server.stats()["leasesExpired"] == 1
    wait_until(ended, timeout=lease + 10, interval=0.1, message="the lease ended")
    assert time.monotonic() - t0 >= lease - 0.2
    n = ring_of(server, peers, 1)[0]
    assert n.peer_id == x, "the freed midpoint goes to the next newcomer (the least-occupied rule)"
    assert n.token != t
    # B's old token: id-expired, never a replacement; B registers fresh.
    b2 = Peer(server); peers.append(b2)
    b2.send({"type": "register", "peerId": x, "token": t})
    b2.expect_error("id-expired")
    assert b2.register() != x
    n.pump(0.1)
    assert not [m for m in n.inbox if m.get("type") == "error"], "the newcomer was not disturbed"
    stats = server.stats()
    assert stats["replacements"] == 0 and stats["idExpiredAnswers"] == 1
    assert stats["errors"]["id-expired"] == 1
    assert 'browsercloud_id_expired_total 1' in server.get("/metrics").text


def test_an_explicit_leave_frees_the_id_at_once(start_server, peers):
    server = start_server("--id-lease", "600")
    a = ring_of(server, peers, 1)[0]
    a_id, a_token = a.peer_id, a.token
    a.send({"type": "leave"})
    wait_until(lambda: server.stats()["peersOnline"] == 0, message="leave")
    assert server.stats()["leasesHeld"] == 0
    again = Peer(server); peers.append(again)
    again.send({"type": "register", "peerId": a_id, "token": a_token})
    again.expect_error("id-expired")


def test_restart_keeps_returning_holders_ids_from_newcomers(start_server, peers, tmp_path):
    first = start_server("--id-lease", "600")
    old = ring_of(first, peers, 5)
    held = [(p.peer_id, p.token) for p in old]
    assert first.stop() == 0                      # graceful: the state file is written
    for p in old:
        p.close()
    state = json.loads((tmp_path / "secret.state").read_text())
    assert sorted(b["peerId"] for b in state["bindings"]) == sorted(i for i, _ in held)
    second = start_server("--id-lease", "600", secret_file=first.secret_file)
    assert second.stats()["leasesHeld"] == 5
    # Newcomers first: none gets a returning peer's ID.
    newcomers = ring_of(second, peers, 5)
    assert not {n.peer_id for n in newcomers} & {i for i, _ in held}
    # The returning peers get theirs back.
    for peer_id, token in held:
        p = Peer(second); peers.append(p)
        assert p.register(peer_id, token) == peer_id
    stats = second.stats()
    assert stats["peersOnline"] == 10 and stats["leasesHeld"] == 0 and stats["replacements"] == 0


def test_a_corrupt_state_file_stops_the_start_unless_start_empty(start_server, tmp_path):
    (tmp_path / "secret.state").write_text("{not json")
    try:
        start_server()
        raise AssertionError("the server started on a corrupt state file")
    except RuntimeError as e:
        assert "state file" in str(e) and "corrupt" in str(e)
    server = start_server("--start-empty")
    assert server.stats()["leasesHeld"] == 0


def test_soak_native_peers_cut_repeatedly_with_newcomers_no_replacement_ping_pong(start_server, peers, tmp_path):
    seed = int(os.environ.get("SOAK_SEED", random.randrange(1 << 30)))
    print(f"soak seed {seed}")
    rng = random.Random(seed)
    server = start_server("--id-lease", "600", "--admin-token", ADMIN)
    natives = [NativePeer(server.ws) for _ in range(4)]
    try:
        for p in natives:
            p.wait_registered(timeout=30)
        ids = {p.peer_id for p in natives}
        blips = 0
        for round_ in range(6):
            victim = rng.choice(natives)
            if rng.random() < 0.5:
                r = requests.delete(f"{server.http}/api/peers/{victim.peer_id}",
                                    headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)
                assert r.status_code in (200, 404), r.text
                blips += 1
            else:
                # Killed and started again: a new process without the token, so a fresh ID; the old
                # one stays leased.
                victim.kill()
                natives[natives.index(victim)] = NativePeer(server.ws)
                blips += 1
            # A newcomer during the cut.
            n = Peer(server); peers.append(n)
            n.register()
            assert n.peer_id not in ids, f"round {round_}: a newcomer got a held ID"
            ids.add(n.peer_id)
            n.close()
            for p in natives:
                p.wait_registered(timeout=30)
            wait_until(lambda: server.stats()["peersOnline"] == 4, timeout=40, message="the native peers are back")
            ids |= {p.peer_id for p in natives}
        wait_stable(server, natives, timeout=90)
        # Let any ping-pong show itself: replacements would keep counting.
        before = server.stats()["replacements"]
        wait_stable(server, natives, timeout=90)
        stats = server.stats()
        assert stats["replacements"] <= blips, stats
        assert stats["replacements"] == before, "replacements went on after the ring settled"
        assert len({p.peer_id for p in natives}) == 4
    finally:
        for p in natives:
            p.stop()
