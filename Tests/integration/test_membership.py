"""Registration, least-occupied IDs, pushed ring state versus a brute-force oracle, keys and certificates."""
import random
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import Peer, SPACE, auto_rows, check_certificate, oracle_state, wait_until

HEX12 = re.compile(r"^[0-9a-f]{12}$")


def test_register_assigns_ids_and_certificates(server, peers):
    a = Peer(server); peers.append(a)
    a_id = a.register(capabilities={"runtimes": ["js"], "workers": 4})
    assert HEX12.match(a_id)
    assert re.match(r"^[0-9a-f]{64}$", a.nonce) and re.match(r"^[0-9a-f]{64}$", a.server_key)
    assert re.match(r"^[0-9a-f]{16}$", a.epoch)
    assert check_certificate(a.certificate, a.server_key) == (a_id, a.public_key, a.epoch)
    assert a.config["serverKey"] == a.server_key == server.get("/healthz").json()["serverKey"]
    assert a.config["idBits"] == 48 and a.config["successors"] == 3
    assert a.config["fingerRows"] == auto_rows(1)
    a.pump(0.2)
    assert a.predecessor is None and a.successors == [] and all(v is None for v in a.fingers.values())

    b = Peer(server); peers.append(b)
    b_id = b.register()
    # The second peer gets the midpoint of the only arc: exactly opposite the first.
    assert (int(b_id, 16) - int(a_id, 16)) % SPACE == SPACE // 2
    entry = server.get(f"/api/peers/{a_id}").json()
    assert entry["capabilities"] == {"runtimes": ["js"], "workers": 4}


def test_client_without_subprotocol_is_accepted(server, peers):
    p = Peer(server, subprotocol=False); peers.append(p)
    assert HEX12.match(p.register())


def test_arc_ratio_stays_within_two_under_joins(server, peers):
    for _ in range(40):
        p = Peer(server); peers.append(p)
        p.register()
        assert server.stats()["arcRatioMaxMin"] <= 2.0
    stats = server.stats()
    assert stats["peersOnline"] == 40 and stats["arcRatioMaxMean"] <= 2.0


def _check_all_against_oracle(server, live):
    net = server.network()
    members = [p["peerId"] for p in net["peers"]]
    assert sorted(members) == sorted(p.peer_id for p in live)
    rows = net["fingerRows"]
    for p in live:
        expected = oracle_state(p.peer_id, members, rows, 3)
        wait_until(lambda: (p.pump(0.0), p.state() == expected)[1], timeout=5,
                   message=f"state of {p.peer_id}: {p.state()} != {expected}")
        assert sorted(p.config["fingerRows"]) == rows


def test_pushed_state_matches_oracle_on_joins_and_leaves(server, peers):
    rng = random.Random(7)
    live = []
    for step in range(60):
        if len(live) < 3 or rng.random() < 0.6:
            p = Peer(server); peers.append(p)
            p.register()
            live.append(p)
        else:
            victim = live.pop(rng.randrange(len(live)))
            if rng.random() < 0.5:
                victim.send({"type": "leave"})
            else:
                victim.close()
            wait_until(lambda: server.stats()["peersOnline"] == len(live), message="leave processed")
        if step % 5 == 4:
            _check_all_against_oracle(server, live)
    _check_all_against_oracle(server, live)


def test_explicit_finger_rows(start_server, peers):
    server = start_server("--fingers", "0,10,12,20,30,47", "--successors", "2")
    live = []
    for _ in range(6):
        p = Peer(server); peers.append(p)
        p.register()
        live.append(p)
    net = server.network()
    assert net["fingerRows"] == [0, 10, 12, 20, 30, 47]
    members = [p["peerId"] for p in net["peers"]]
    for p in live:
        expected = oracle_state(p.peer_id, members, [0, 10, 12, 20, 30, 47], 2)
        wait_until(lambda: (p.pump(0.0), p.state() == expected)[1], message="state")


def test_restart_with_same_server_files_gives_same_ids_and_certificates(start_server, tmp_path, peers):
    secret = tmp_path / "restart-secret"
    first = start_server(secret_file=secret)
    old = []
    for _ in range(5):
        p = Peer(first); peers.append(p)
        old.append((p.register(), p.key, p.certificate))
    first.stop()
    second = start_server(secret_file=secret)
    for peer_id, key, certificate in reversed(old):
        p = Peer(second); peers.append(p)
        assert p.register(peer_id, key) == peer_id
        assert p.certificate == certificate, "the same server key certifies the same binding with the same bytes"
    stats = second.stats()
    assert stats["reRegistrations"] == 5 and stats["peersOnline"] == 5
    assert sorted(x["peerId"] for x in second.network()["peers"]) == sorted(i for i, _, _ in old)


def test_bad_signatures_are_refused_and_counted(server, peers):
    a = Peer(server); peers.append(a)
    a_id = a.register()
    b = Peer(server); peers.append(b)
    # A's signature from A's connection, replayed on B's (another nonce).
    b.send(a.register_message(peer_id=a_id))
    b.expect_error("bad-signature")
    # Signed for another ID, sent for A's.
    forged = b.register_message(peer_id=f"{(int(a_id, 16) + 1) % SPACE:012x}", key=a.key)
    forged["peerId"] = a_id
    b.send(forged)
    b.expect_error("bad-signature")
    # The tokens of protocol v1 are refused as a bad field.
    b.send({"type": "register", "peerId": a_id, "token": "0" * 64})
    b.expect_error("bad-field")
    stats = server.stats()
    assert stats["peersOnline"] == 1 and stats["badSignatures"] == 2 and stats["errors"]["bad-signature"] == 2
    assert "browsercloud_bad_signatures_total 2" in server.get("/metrics").text


def test_zombie_session_is_replaced(server, peers):
    zombie = Peer(server); peers.append(zombie)
    z_id = zombie.register()
    other = Peer(server); peers.append(other)
    other.register()
    fresh = Peer(server); peers.append(fresh)
    assert fresh.register(z_id, zombie.key) == z_id
    zombie.expect_error("replaced")
    wait_until(lambda: server.stats()["connectionsOpen"] == 2, message="zombie closed")
    stats = server.stats()
    assert stats["peersOnline"] == 2 and stats["replacements"] == 1 and stats["leaves"] == 0
    # The new session holds the ID: signals reach it.
    other.send({"type": "signal", "to": z_id, "intentId": "x", "signal": {"type": "offer", "sdp": "v=0"}})
    got = fresh.expect(lambda m: m["type"] == "signal")
    assert got["from"] == other.peer_id


def test_leave_then_register_again(server, peers):
    p = Peer(server); peers.append(p)
    first = p.register()
    p.send({"type": "leave"})
    wait_until(lambda: server.stats()["peersOnline"] == 0, message="left")
    p.peer_id = None
    assert HEX12.match(p.register())
    assert server.stats()["leaves"] == 1 and first
