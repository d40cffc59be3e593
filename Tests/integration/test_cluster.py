"""Cluster mode (docs/cluster.md): several `browsercloud serve --cluster` instances share one ring through a
real redis-server started by the test. Expected ring states come from the brute-force oracle
(harness.oracle_state), not from the server."""
import random
import subprocess
import time

import pytest
import requests

from cluster import Redis, instance, ring_of, wait_available, wait_same_ring
from harness import BIN, ROOT, Peer, auto_rows, oracle_state, wait_until
from rawclients import EventStream
from native import NativePeer, all_pairs, wait_stable


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.stop()


@pytest.fixture
def cluster(tmp_path, redis):
    """Three instances; the first creates the shared server key before the others start."""
    made = []

    def start(n=3, *args):
        for i in range(n):
            made.append(instance(tmp_path, redis, f"i{len(made) + 1}", *args))
            wait_available(made[-1])
        return made
    yield start
    for s in made:
        s.stop()


def check_oracle(servers, peers, ids=None):
    """Every instance shows the same ring (of `ids`, default the clients'), equal to the oracle; every protocol
    client's pushed state too."""
    ids = ids or [p.peer_id for p in peers]
    ring = wait_same_ring(servers, ids)
    rows = auto_rows(len(ids))
    for peer_id, predecessor, successors, fingers in ring:
        want = oracle_state(peer_id, ids, rows, 3)
        assert (predecessor, list(successors), dict(fingers)) == (want["predecessor"], want["successors"], want["fingers"]), peer_id
    for p in peers:
        wait_until(lambda: (p.pump(0.01), p.state() == oracle_state(p.peer_id, ids, rows, 3))[1], timeout=10,
                   message=f"peer {p.peer_id} holds the oracle's state")


def test_sixty_peers_on_three_instances_hold_one_ring_after_every_join_and_leave(cluster):
    """48 protocol clients and 12 native peers, spread over three instances: after every join and every leave
    all instances show the same ring, equal to the oracle; the native peers deliver all ordered pairs across
    instances."""
    servers = cluster(3)
    seed = random.randrange(1 << 32)
    print("seed", seed)
    rng = random.Random(seed)
    peers, natives = [], []

    def members():
        return [p.peer_id for p in peers] + [n.peer_id for n in natives]
    try:
        for k in range(60):
            if k % 5 == 4:
                natives.append(NativePeer(servers[k % 3].ws, "--workers", "1"))
                natives[-1].wait_registered()
                wait_same_ring(servers, members())
            else:
                p = Peer(servers[k % 3])
                p.register()
                peers.append(p)
                check_oracle(servers, peers, members())
        # Leaves through every instance (closes and explicit leaves), each followed by the oracle check.
        for _ in range(6):
            p = peers.pop(rng.randrange(len(peers)))
            if rng.random() < 0.5:
                p.send({"type": "leave"})
            p.close()
            check_oracle(servers, peers, members())
        natives.pop(rng.randrange(len(natives))).stop()
        check_oracle(servers, peers, members())
        # A signal from a peer on one instance reaches a peer on another, with the sender's ID.
        a = next(p for p in peers if p.server is servers[0])
        b = next(p for p in peers if p.server is servers[2])
        a.send({"type": "signal", "to": b.peer_id, "intentId": "i-1", "signal": {"type": "offer", "sdp": "v=0"}})
        m = b.expect(lambda m: m.get("type") == "signal" and m.get("intentId") == "i-1")
        assert (m["from"], m["signal"]) == (a.peer_id, {"type": "offer", "sdp": "v=0"})
        assert len(servers[1].stats()["cluster"]["instances"]) == 3
        wait_until(lambda: servers[1].stats()["cluster"]["totals"].get("peersHere") == len(members()), timeout=5,
                   message="the heartbeats' peer counts add up to the ring")
        # The protocol clients (which answer no overlay traffic) leave; the native peers, on three instances,
        # link up and deliver all ordered pairs.
        while peers:
            peers.pop().close()
        wait_same_ring(servers, members())
        wait_stable(servers[1], natives, timeout=60)
        delivered, expected, hops = all_pairs(natives)
        assert delivered == expected, (delivered, expected)
    finally:
        for p in peers:
            p.close()
        for n in natives:
            n.stop()


def test_relayed_links_events_and_evictions_cross_instances(cluster):
    servers = cluster(2, "--link-relay", "--admin-token", "cluster-admin-token-0123")
    events = EventStream(servers[1])
    a, b = Peer(servers[0]), Peer(servers[1])
    try:
        a.register(), b.register()
        # The link relay carries frames between peers of different instances.
        a.send({"type": "link", "to": b.peer_id, "frame": "hello over the relay"})
        m = b.expect(lambda m: m.get("type") == "link")
        assert (m["from"], m["frame"]) == (a.peer_id, "hello over the relay")
        # The second instance's event stream shows the join made through the first.
        wait_until(lambda: ("join", {"peerId": a.peer_id}) in events.events(),
                   timeout=10, message="the join through the first instance on the second's event stream")
        # The operator evicts, through the second instance, a peer of the first.
        r = requests.delete(f"{servers[1].http}/api/peers/{a.peer_id}", headers={"authorization": "Bearer cluster-admin-token-0123"}, timeout=10)
        assert r.status_code == 200, r.text
        a.expect_error("evicted")
        wait_same_ring(servers, [b.peer_id])
    finally:
        events.close()
        a.close()
        b.close()


def test_the_same_joins_and_leaves_on_fresh_clusters_give_the_same_ids(tmp_path):
    def run(directory):
        directory.mkdir()
        redis = Redis(directory)
        servers = []
        peers = []
        try:
            for i in range(3):
                servers.append(instance(directory, redis, f"r{i}", "--seed", "424242"))
                wait_available(servers[-1])
            ids = []
            for k in range(12):
                p = Peer(servers[k % 3])
                ids.append(p.register())
                peers.append(p)
                if k in (5, 9):
                    peers.pop(1).close()
                    wait_same_ring(servers, [q.peer_id for q in peers])
            return ids, [r[0] for r in ring_of(servers[0])]
        finally:
            for p in peers:
                p.close()
            for s in servers:
                s.stop()
            redis.stop()
    first, second = run(tmp_path / "one"), run(tmp_path / "two")
    assert first == second
    assert len(set(first[0])) == 12


def test_an_instance_that_starts_later_loads_the_snapshot_and_applies_only_what_follows(cluster, redis):
    servers = cluster(2, "--checkpoint-entries", "10")
    peers = []
    try:
        for k in range(30):
            p = Peer(servers[k % 2])
            p.register()
            peers.append(p)
        wait_until(lambda: redis.command("EXISTS", "browsercloud:snapshot") == ":1", timeout=10, message="a snapshot is stored")
        # The log is trimmed behind the snapshot: fewer entries than joins are left.
        wait_until(lambda: int(redis.command("XLEN", "browsercloud:log")[1:]) < 30, timeout=10, message="the log is trimmed")
        late = cluster(1, "--checkpoint-entries", "10")[-1]
        wait_same_ring(servers + [late], [p.peer_id for p in peers])
        applied = late.stats()["cluster"]["appliedEntries"]
        assert applied < 30, applied
        p = Peer(late)
        p.register()
        peers.append(p)
        check_oracle(servers + [late], peers)
    finally:
        for p in peers:
            p.close()


def test_redis_stopped_then_restarted(tmp_path):
    redis = Redis(tmp_path, persistent=True)
    servers, peers = [], []
    try:
        for i in range(2):
            servers.append(instance(tmp_path, redis, f"p{i}", "--instance-timeout", "30"))
            wait_available(servers[-1])
        for k in range(6):
            p = Peer(servers[k % 2])
            p.register()
            peers.append(p)
        check_oracle(servers, peers)
        redis.stop()
        for s in servers:
            wait_until(lambda: s.stats()["cluster"]["logAvailable"] is False, timeout=10, message="the outage is seen")
            assert s.get("/healthz").status_code == 503
            assert 'browsercloud_cluster_log_available{instance="' in s.get("/metrics").text
            assert "} 0\n" in [line for line in s.get("/metrics").text.splitlines(True) if line.startswith("browsercloud_cluster_log_available")][0]
        # Joins are refused with `unavailable`, and the connection is closed so that the client retries later.
        newcomer = Peer(servers[0])
        newcomer.send(newcomer.register_message())
        newcomer.expect_error("unavailable")
        newcomer.close()
        # Peers of one instance still reach each other through it.
        a, b = [p for p in peers if p.server is servers[1]][:2]
        a.send({"type": "signal", "to": b.peer_id, "intentId": "during", "signal": {"x": 1}})
        assert b.expect(lambda m: m.get("type") == "signal")["intentId"] == "during"
        # A peer closes during the outage: its leave reaches the log once Redis is back.
        gone = peers.pop(0)
        gone.close()
        redis.start()
        for s in servers:
            wait_available(s)
        late = Peer(servers[1])
        late.register()
        peers.append(late)
        check_oracle(servers, peers)
        assert servers[0].get("/healthz").status_code == 200
    finally:
        for p in peers:
            p.close()
        for s in servers:
            s.stop()
        redis.stop()


def test_an_instance_killed_during_a_job_its_peers_move_with_their_ids_and_the_job_completes(cluster, tmp_path):
    servers = cluster(3)
    urls = [s.ws for s in servers]
    natives = []
    try:
        # Two native peers per instance; each knows every instance (it starts with its own, then takes the
        # next in turn after a close).
        for k in range(6):
            i = k % 3
            natives.append(NativePeer(",".join(urls[i:] + urls[:i]), "--workers", "1"))
        for p in natives:
            p.wait_registered()
        wait_stable(servers[0], natives, timeout=60)
        delivered, expected, hops = all_pairs(natives)
        assert delivered == expected, (delivered, expected)
        before = {p.peer_id for p in natives}
        reference = tmp_path / "reference.png"
        subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(reference)],
                       check=True, capture_output=True, timeout=120)
        out = tmp_path / "job.png"
        job = subprocess.Popen([BIN, "submit", "raytrace", "--server", ",".join([urls[1], urls[2]]), "--scene", "small",
                                "--scenes", str(ROOT / "Public/scenes"), "--tiles", "100", "--peers", "6", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The job is under way (the submitter joined and its workers are linked): kill the first instance,
        # whose two peers lose their server.
        wait_until(lambda: len(servers[1].network()["peers"]) == 7 or job.poll() is not None, timeout=30, message="the submitter joined")
        assert job.poll() is None, job.communicate()
        killed_at = time.monotonic()
        servers[0].proc.kill()
        survivors = servers[1:]
        # The others report the instance gone within the bound (instance timeout 1.5 s + heartbeat 0.2 s + slack).
        wait_until(lambda: all(len(s.stats()["cluster"]["instances"]) == 2 for s in survivors), timeout=10,
                   message="the survivors drop the killed instance")
        assert time.monotonic() - killed_at < 1.5 + 0.2 + 3
        stdout, stderr = job.communicate(timeout=180)
        assert job.returncode == 0, stderr[-2000:]
        assert out.read_bytes() == reference.read_bytes()
        # Every native peer is back in the ring with its ID, through another instance.
        wait_until(lambda: {p["peerId"] for p in survivors[0].network()["peers"]} >= before, timeout=30,
                   message="the moved peers are back with their IDs")
        assert {p.peer_id for p in natives} == before
        instances = {p["instance"].split("/")[0] for p in survivors[0].network()["peers"]}
        assert instances <= {"i2", "i3"}, instances
    finally:
        for p in natives:
            p.stop()


def test_a_redis_that_lost_the_log_is_reported_and_nothing_is_handed_out_again(cluster, redis):
    """Redis restarted without its data (no persistence): the instance must not apply a new log on top of its
    replica (it would hand out the lost entries' IDs again): it reports the loss and refuses registrations."""
    server = cluster(1)[0]
    peers = [Peer(server) for _ in range(3)]
    try:
        for p in peers:
            p.register()
        redis.stop()
        redis.start()   # empty: no persistence
        wait_until(lambda: "lost entries" in (server.stats()["cluster"]["problem"] or ""), timeout=15,
                   message="the instance reports the lost log")
        health = server.get("/healthz")
        assert health.status_code == 503 and "lost entries" in health.json()["problem"], health.text
        newcomer = Peer(server)
        newcomer.send(newcomer.register_message())
        newcomer.expect_error("unavailable")
        newcomer.close()
        assert len(server.network()["peers"]) == 3
    finally:
        for p in peers:
            p.close()
