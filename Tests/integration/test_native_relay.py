"""The link relay as a last resort: native peers whose WebSocket listeners nobody can reach (they
advertise a closed port) get no direct links, so after a few "dial me" rounds they link through the
server (`serve --link-relay`), route every ordered pair, and the server counts the relayed frames."""
from harness import Server, wait_until
from native import NativePeer, all_pairs, wait_stable

UNREACHABLE = "ws://127.0.0.1:1/"   # nothing listens on port 1


def test_unreachable_peers_link_through_the_server_relay(tmp_path):
    server = Server(tmp_path, "--link-relay")
    peers = []
    try:
        for _ in range(5):
            peers.append(NativePeer(server.ws, "--advertise", UNREACHABLE))
        for p in peers:
            p.wait_registered()
        wait_stable(server, peers, timeout=60)
        delivered, expected, _ = all_pairs(peers)
        assert delivered == expected == 20
        stats = server.stats()
        assert stats["linkRelayFrames"] >= 20 and stats["linkRelayDropped"] == 0, stats
    finally:
        for p in peers:
            p.stop()
        server.stop()


def test_without_the_relay_such_peers_stay_unlinked(tmp_path):
    server = Server(tmp_path)
    peers = []
    try:
        for _ in range(2):
            peers.append(NativePeer(server.ws, "--advertise", UNREACHABLE))
        for p in peers:
            p.wait_registered()
        # With the relay, a peer falls back to it after 3 unanswered "dial me" signals to the other (and
        # 2 retry periods): wait until each has sent 4, so the relay would have been used by now.
        wait_until(lambda: server.stats()["signalsRelayed"] >= 8, timeout=60, message="dial-me rounds")
        assert not any(p.state()["ready"] for p in peers)
        assert server.stats()["linkRelayFrames"] == 0
    finally:
        for p in peers:
            p.stop()
        server.stop()
