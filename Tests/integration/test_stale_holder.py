"""A departed holder's old certificate is refused (issue 12, docs/protocol.md "Holder epochs in ring
updates"): the server's ring updates carry the holder epoch of every peer they name, and a native peer feeds
them to its verifier. So once a newcomer holds an ID, messages signed with the previous holder's (genuine)
certificate are refused as `stale-epoch`, even before the verifier has seen a message of the newcomer.

The real server and a native peer C; B and the newcomer N are Python protocol peers that sign `S` frames
(forger.py); two plain protocol peers fill the ring so that N gets B's freed ID (the least-occupied rule,
as in test_ids.py)."""
import json

from forger import ForgingPeer, body
from harness import Peer, wait_until
from native import NativePeer

LEASE = 1.0


def names(state, peer_id):
    """Whether a native peer's ring state names `peer_id` (predecessor, successors or fingers)."""
    return peer_id == state["predecessor"] or peer_id in state["successors"] or peer_id in state["fingers"].values()


def test_a_departed_holders_certificate_is_stale_once_the_ring_update_names_the_newcomer(start_server, peers):
    server = start_server("--id-lease", LEASE)
    c = NativePeer(server.ws)
    forgers = []
    try:
        c.wait_registered(timeout=30)
        for _ in range(2):
            p = Peer(server)
            peers.append(p)
            p.register()
        b = ForgingPeer(server)
        forgers.append(b)
        x, old_certificate, old_epoch = b.peer_id, b.certificate, b.peer.epoch

        # B holds X: its signed messages reach C and are accepted.
        b.want(c.peer_id)
        first = b.frame(body(x, c.peer_id, "b-1", {"from": "B", "n": 1}))
        wait_until(lambda: b.try_inject(c.peer_id, first), timeout=20, message="B linked to C")
        wait_until(lambda: c.state()["overlay"]["accepted"] == 1, timeout=15, message="B's message accepted by C")

        # B goes away without a leave (its ID is leased to its key) and the lease ends.
        b.close_quietly()
        wait_until(lambda: server.stats()["leasesHeld"] == 1, message="B's lease held")

        def ended():
            peers[0].send({"type": "report", "stats": {"x": 1}})   # any event: the core ends due leases
            return server.stats()["leasesExpired"] == 1
        wait_until(ended, timeout=LEASE + 10, interval=0.1, message="B's lease ended")
        wait_until(lambda: not names(c.state(), x), timeout=15, message="C's ring without X")

        # A newcomer gets X with a higher epoch; C's ring update names it, with N's epoch.
        n = ForgingPeer(server)
        forgers.append(n)
        assert n.peer_id == x, "the freed ID goes to the next newcomer (the least-occupied rule)"
        assert n.peer.epoch > old_epoch and n.certificate != old_certificate
        wait_until(lambda: names(c.state(), x), timeout=15, message="C's ring update naming N")
        assert c.state()["overlay"]["accepted"] == 1, "C has seen no message of N"

        # B, still holding its old genuine certificate, reaches C again (over a link of a fresh registration
        # with the same key) and signs as X: refused as stale, counted, reported.
        b2 = ForgingPeer(server, key=b.peer.key)
        forgers.append(b2)
        assert b2.peer_id != x
        b2.want(c.peer_id)
        c.clear("forgery")
        stale = b.frame(body(x, c.peer_id, "b-2", {"from": "B", "n": 2}), certificate=old_certificate)
        wait_until(lambda: b2.try_inject(c.peer_id, stale), timeout=20, message="B linked to C again")
        wait_until(lambda: c.state()["overlay"]["refused"].get("stale-epoch", 0) == 1, timeout=15,
                   message="B's stale message refused")
        assert [(e["reason"], e.get("srcId")) for e in c.of("forgery")] == [("stale-epoch", x)]

        # Only the stale message was refused: nothing else C received counts as a forgery. (That N's own
        # messages as X are accepted with its newer certificate is checked without sockets in PeerTests,
        # ringUpdateEpochsMakeADepartedHoldersCertificateStale: a fresh link from N to C in this scenario
        # sometimes takes more than 20 s to come up, see the issue note.)
        overlay = c.state()["overlay"]
        assert overlay["forgeries"] == 1 and overlay["refused"] == {"stale-epoch": 1}
        assert [(m["srcId"], m["data"]) for m in c.of("message") if m["srcId"] == x] == [(x, {"from": "B", "n": 1})]
    finally:
        for f in forgers:
            f.close()
        c.stop()
    print(json.dumps({"x": x, "oldEpoch": old_epoch, "newEpoch": n.peer.epoch}))
