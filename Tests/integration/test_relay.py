"""Relay of WebRTC offers, answers and ICE candidates between peers."""
from harness import Peer, wait_until


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


def test_link_frames_are_refused_unless_the_relay_is_on(server, peers):
    a = Peer(server); peers.append(a)
    b = Peer(server); peers.append(b)
    a.register(); b.register()
    assert a.config["linkRelay"] is False
    a.send({"type": "link", "to": b.peer_id, "frame": "M{}"})
    assert "--link-relay" in a.expect_error("relay-disabled")["message"]


def test_the_link_relay_carries_frames_with_a_rate_limit_and_counts_them(start_server):
    server = start_server("--link-relay", "--link-relay-rate", "5", "--link-relay-burst", "10")
    a = Peer(server); b = Peer(server)
    try:
        a.register(); b.register()
        assert a.config["linkRelay"] is True
        frame = 'M{"srcId":"%s","dstId":"%s","data":{"n":1},"hops":0,"id":"x"}' % (a.peer_id, b.peer_id)
        a.send({"type": "link", "to": b.peer_id, "frame": frame})
        assert b.expect(lambda m: m["type"] == "link") == {"type": "link", "from": a.peer_id, "frame": frame}
        a.send({"type": "link", "to": "000000000000", "frame": "K"})
        a.expect_error("unknown-peer")
        a.send({"type": "link", "to": b.peer_id, "frame": ""})
        a.expect_error("bad-field")
        for i in range(40):                       # far beyond the burst of 10
            a.send({"type": "link", "to": b.peer_id, "frame": f"C{i}:0:1:x"})
        a.expect_error("rate-limited")
        # The error comes at the first drop; the server may still be reading the rest (a loaded machine).
        stats = wait_until(lambda: (lambda s: s if s["linkRelayFrames"] + s["linkRelayDropped"] == 41 else None)(server.stats()),
                           message="all 41 relayed or dropped")
        assert 10 <= stats["linkRelayFrames"] <= 14 and stats["linkRelayDropped"] >= 26
        assert stats["linkRelayBytes"] >= len(frame)
        assert "browsercloud_link_relay_frames_total" in server.get("/metrics").text
    finally:
        a.close(); b.close()
