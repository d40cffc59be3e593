"""The link relay as a last resort: native peers whose WebSocket listeners nobody can reach (they
advertise a closed port) get no direct links, so after a few "dial me" rounds they link through the
server (`serve --link-relay`), route every ordered pair, and the server counts the relayed frames."""
from harness import Server
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
        import time
        time.sleep(8)     # past the point where the relay would have been used
        assert not any(p.state()["ready"] for p in peers)
        assert server.stats()["linkRelayFrames"] == 0
    finally:
        for p in peers:
            p.stop()
        server.stop()
