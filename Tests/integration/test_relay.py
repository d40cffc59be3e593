"""Relay of WebRTC offers, answers and ICE candidates between peers."""
from harness import Peer


def test_offer_answer_and_candidates_are_relayed(server, peers):
    a = Peer(server); peers.append(a)
    b = Peer(server); peers.append(b)
    a.register(); b.register()
    offer = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"}
    a.send({"type": "signal", "to": b.peer_id, "intentId": "intent-1", "signal": offer})
    got = b.expect(lambda m: m["type"] == "signal")
    assert got == {"type": "signal", "from": a.peer_id, "intentId": "intent-1", "signal": offer}

    answer = {"type": "answer", "sdp": "v=0\r\n"}
    b.send({"type": "signal", "to": a.peer_id, "intentId": "intent-1", "signal": answer})
    assert a.expect(lambda m: m["type"] == "signal")["signal"] == answer

    for i in range(5):
        cand = {"candidate": {"candidate": f"candidate:{i} 1 udp 2122260223 127.0.0.1 {50000 + i} typ host",
                              "sdpMid": "0", "sdpMLineIndex": 0}}
        a.send({"type": "signal", "to": b.peer_id, "intentId": "intent-1", "signal": cand})
    for i in range(5):
        got = b.expect(lambda m: m["type"] == "signal")
        assert got["signal"]["candidate"]["candidate"].startswith(f"candidate:{i} ")
    assert server.stats()["signalsRelayed"] == 7


def test_signal_to_unknown_or_departed_peer(server, peers):
    a = Peer(server); peers.append(a)
    b = Peer(server); peers.append(b)
    a.register(); b_id = b.register()
    a.send({"type": "signal", "to": "000000000000", "intentId": "i", "signal": {}})
    err = a.expect_error("unknown-peer")
    assert "000000000000" in err["message"]
    b.close()
    from harness import wait_until
    wait_until(lambda: server.stats()["peersOnline"] == 1, message="b gone")
    a.send({"type": "signal", "to": b_id, "intentId": "i", "signal": {"type": "offer", "sdp": ""}})
    a.expect_error("unknown-peer")
    assert server.alive()


def test_relay_on_poll_event_loop(start_server, peers):
    """The poll() fallback (used when the lws libev plugin is missing) serves the same protocol."""
    server = start_server("--event-loop", "poll")
    a = Peer(server); peers.append(a)
    b = Peer(server); peers.append(b)
    a.register(); b.register()
    a.send({"type": "signal", "to": b.peer_id, "intentId": "p", "signal": {"type": "offer", "sdp": "v=0"}})
    assert b.expect(lambda m: m["type"] == "signal")["from"] == a.peer_id
    assert server.get("/healthz").status_code == 200
