"""A submitter that gets a just-freed ID (docs/api.md, "Epochs and leases") discovers the ring's peers
like any other. The real server (`--id-lease 1`), three native worker peers, and `browsercloud submit`
processes run one after another: each joins after the previous one left and its lease ended, so the
least-occupied rule gives each the same ID, with a higher epoch and a new key.

The bug this keeps fixed: the workers' replay memory remembered the previous holder's message IDs
("<ID>-n1", "<ID>-n2", ...: a counter from 1 in every process), so the new holder's first messages
(its discovery queries) were refused as `replayed` and its discovery found no peer."""
import re
import subprocess
import threading
import time

from harness import BIN, ROOT
from native import NativePeer, wait_stable

LEASE = 1.0


class RingWatcher:
    """Records every peer ID the server's /api/network shows while it runs (to learn the submitters' IDs)."""

    def __init__(self, server):
        self.server, self.seen, self.stopped = server, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            for p in self.server.get("/api/network?limit=10000").json()["peers"]:
                if p["peerId"] not in self.seen:
                    self.seen.append(p["peerId"])
            self.stopped.wait(0.02)

    def stop(self):
        self.stopped.set()
        self.thread.join(10)
        return self.seen


def test_a_submitter_reusing_a_freed_id_discovers_every_peer(start_server, tmp_path):
    server = start_server("--id-lease", LEASE)
    workers = [NativePeer(server.ws) for _ in range(3)]
    try:
        for w in workers:
            w.wait_registered(timeout=30)
        wait_stable(server, workers)
        watcher = RingWatcher(server)
        runs = []
        for i in range(4):
            done = subprocess.run([BIN, "submit", "raytrace", "--server", server.ws, "--scene", "small", "--scenes", str(ROOT / "Public/scenes"),
                                   "--tiles", "6", "--peers", "3", "--discovery-wait", "10", "--out", str(tmp_path / f"out{i}.png")],
                                  capture_output=True, text=True, timeout=120)
            runs.append(done)
            refusals = [(e["reason"], e["srcId"]) for w in workers for e in w.of("forgery")]
            assert done.returncode == 0, f"submitter {i}: {done.stderr[-2000:]}; refused at the workers: {refusals}"
            used = re.findall(r"^peers used: (.*)$", done.stdout, re.M)
            assert used and len(used[0].split()) == 3, f"submitter {i} found fewer than 3 peers: {done.stdout}"
            # The submitter left; its ID stays leased to its key for LEASE seconds. The lease is a deadline of
            # the server's clock (there is no event to wait for: the server ends it on its next event, the
            # next submitter's connection), so the next one joins once it has passed, and gets the same ID.
            time.sleep(LEASE + 0.2)
        seen = watcher.stop()
        submitters = [p for p in seen if p not in {w.peer_id for w in workers}]
        assert len(submitters) == 1, f"every submitter should have had the same ID: {submitters}"
        for w in workers:
            refused = w.state()["overlay"]["refused"]
            assert not refused, f"{w.peer_id} refused overlay messages: {refused}"
            assert not w.of("forgery"), w.of("forgery")
    finally:
        for w in workers:
            w.stop()
