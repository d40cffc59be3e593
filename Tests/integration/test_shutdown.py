"""Graceful shutdown (docs/protocol.md, `going-away`): on SIGTERM every connected peer gets `going-away`
with a delay, its connection closes with 1001, closes are not leaves, and the server exits 0 in time."""
import json
import signal
import time

from websockets.exceptions import ConnectionClosed

from harness import Peer, Server


def test_sigterm_tells_every_peer_to_come_back_and_exits_0(tmp_path):
    server = Server(tmp_path, "--shutdown-grace", "3")
    peers = []
    try:
        for _ in range(5):
            p = Peer(server)
            p.register()
            peers.append(p)
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        for p in peers:
            seen = []
            try:
                while True:
                    m = json.loads(p.ws.recv(timeout=5))
                    seen.append(m)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1001, closed
            going = [m for m in seen if m["type"] == "going-away"]
            assert len(going) == 1 and 250 <= going[0]["retryAfterMs"] <= 250 + 5, seen
            after = seen[seen.index(going[0]) + 1:]
            assert not [m for m in after if m["type"] in ("predecessor", "successors", "finger-update")], "closes are not leaves"
        assert server.proc.wait(10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        for p in peers:
            p.close()
        server.stop()
