"""Cheating volunteers against `verify: 'quorum'` (docs/jobs.md, "Verification by quorum"), with real
native peers on a real server: honest `browsercloud peer`s plus the test tool `bc-cheater` (a native
peer that corrupts its ray-trace results, always or with a seeded probability). With quorum the image is
byte-identical to `browsercloud render`, the cheaters end penalised and a later job of the same
submitting process avoids them; an honest ring pays well under 2x (the replication factor is printed).
Without quorum: a cheater that lies about the digest is caught by the submitter's SHA-256 check; a
consistent cheater is not (the documented limit)."""
import json
import os
import re
import subprocess
import threading
import time

import pytest

from harness import BIN, ROOT, Server
from native import NativePeer

CHEATER = os.path.join(os.path.dirname(BIN), "bc-cheater")
SCENES = str(ROOT / "Public/scenes")


class Cheater:
    """A bc-cheater process; `seed` makes its corruption draws reproducible (it prints it)."""

    def __init__(self, server_ws, probability, seed, *extra):
        self.proc = subprocess.Popen([CHEATER, "--server", server_ws, "--workers", "1", "--probability", str(probability), "--seed", str(seed), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.peer_id = None
        self.stderr = []
        threading.Thread(target=lambda: [self.stderr.append(line) for line in self.proc.stderr], daemon=True).start()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "registered":
                self.peer_id = event["peerId"]

    def wait_registered(self, timeout=15):
        deadline = time.monotonic() + timeout
        while self.peer_id is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.peer_id, f"bc-cheater did not register: {self.stderr[-10:]}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return "".join(self.stderr)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


def start_ring(server, honest, cheaters):
    """`honest` native peers and the given cheaters (made by the caller), all registered and linked."""
    peers = [NativePeer(server.ws) for _ in range(honest)]
    wait_ring(server, peers, cheaters)
    return peers


def wait_ring(server, peers, cheaters):
    """Until every peer is in the server's ring and every honest peer's view equals the server's, links open."""
    for p in peers:
        p.wait_registered()
    for c in cheaters:
        c.wait_registered()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        network = server.get("/api/network").json()
        expected = {e["peerId"]: e for e in network["peers"]}
        if len(expected) == len(peers) + len(cheaters) and all(p.matches(expected.get(p.peer_id)) for p in peers):
            return
        time.sleep(0.2)
    raise AssertionError("the ring did not stabilise")


def render_pixels_sha(tmp_path, scene):
    out = tmp_path / f"render-{scene}.png"
    done = subprocess.run([BIN, "render", "--scene", scene, "--scenes", SCENES, "--out", str(out)], check=True, capture_output=True, text=True, timeout=300)
    return out.read_bytes(), re.search(r"pixels sha256 ([0-9a-f]{64})", done.stdout).group(1)


def submit(server, tmp_path, name, *args, tiles=48, peers=8, scene="small"):
    out = tmp_path / name
    done = subprocess.run([BIN, "submit", "raytrace", "--server", server.ws, "--scene", scene, "--scenes", SCENES, "--tiles", str(tiles),
                           "--peers", str(peers), "--out", str(out), *[str(a) for a in args]], capture_output=True, text=True, timeout=300)
    print(done.stdout)
    return done, out


def jobs_of(stdout):
    """The per-job summaries of a `submit --repeat` run: [{pixels, peers, penalised, replication, dissented, …}]."""
    out = []
    for block in re.split(r"^job \d+ of \d+$", stdout, flags=re.M)[1:]:
        j = {"pixels": re.search(r"^pixels sha256 (\w+)", block, re.M).group(1),
             "peers": re.search(r"^peers used: (.*)$", block, re.M).group(1).split(),
             "winners": re.findall(r"^  (\w{12})  \d+ tasks$", block, re.M)}
        m = re.search(r"^verify quorum: seed (\d+), replication ([\d.]+) \((\d+) results for (\d+) tasks\), agreed (\d+), dissented (\d+), "
                      r"spot checks (\d+), unchecked (\d+), no quorum (\d+)$", block, re.M)
        if m:
            j.update(seed=int(m[1]), replication=float(m[2]), results=int(m[3]), tasks=int(m[4]), agreed=int(m[5]), dissented=int(m[6]),
                     spot_checks=int(m[7]), unchecked=int(m[8]), no_quorum=int(m[9]))
            j["penalised"] = [p for p in re.search(r"^penalised: (.*)$", block, re.M).group(1).split() if p != "none"]
        out.append(j)
    return out


def test_quorum_outvotes_cheaters_penalises_them_and_a_later_job_avoids_them(server, tmp_path):
    reference, reference_sha = render_pixels_sha(tmp_path, "small")
    # The sometimes-cheater's seed makes it corrupt its first result (its first draw is 0.033; bc-cheater prints it).
    always = Cheater(server.ws, 1.0, 11)
    sometimes = Cheater(server.ws, 0.5, 10)
    peers = []
    try:
        peers = start_ring(server, 4, [always, sometimes])
        done, out = submit(server, tmp_path, "quorum.png", "--verify", "quorum", "--seed", 5, "--repeat", 2)
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == reference
        first, second = jobs_of(done.stdout)
        assert first["pixels"] == second["pixels"] == reference_sha
        # Both cheaters worked on the first job, were outvoted and penalised.
        assert {always.peer_id, sometimes.peer_id} <= set(first["peers"]), first
        assert sorted(first["penalised"]) == sorted([always.peer_id, sometimes.peer_id]), first
        assert first["dissented"] >= 2 and first["no_quorum"] == 0
        # The second job of the same process avoids them: discovery leaves them out.
        assert not {always.peer_id, sometimes.peer_id} & set(second["peers"]), second
        assert second["penalised"] == [] and second["dissented"] == 0
    finally:
        logs = always.stop() + sometimes.stop()
        for p in peers:
            p.stop()
    print(logs)
    assert re.search(r"bc-cheater: seed 11, probability 1.0", logs) and re.search(r"bc-cheater: seed 10, probability 0.5", logs)


def test_an_honest_ring_pays_well_under_2x(server, tmp_path):
    reference, reference_sha = render_pixels_sha(tmp_path, "small")
    peers = start_ring(server, 4, [])
    try:
        done, out = submit(server, tmp_path, "honest.png", "--verify", "quorum", "--seed", 9, "--repeat", 2, tiles=200, peers=4)
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == reference
        first, second = jobs_of(done.stdout)
        for j in (first, second):
            assert j["pixels"] == reference_sha and j["dissented"] == 0 and j["penalised"] == []
        print(f"replication factor of an honest ring of 4 (200 tasks, trust after 10, spot checks 10%): first job {first['replication']:.3f}, "
              f"second job {second['replication']:.3f}")
        assert first["replication"] < 1.5, first
        # Once every peer is trusted, only the spot checks are replicated: about 1 + 10%.
        assert second["replication"] < 1.25 and second["spot_checks"] > 0 and second["unchecked"] > 150, second
    finally:
        for p in peers:
            p.stop()


def test_without_quorum_a_lying_digest_is_caught_and_a_consistent_cheater_is_not(server, tmp_path):
    reference, _ = render_pixels_sha(tmp_path, "small")
    liar = Cheater(server.ws, 1.0, 21, "--lie-digest")
    peers = []
    try:
        peers = start_ring(server, 2, [liar])
        done, out = submit(server, tmp_path, "liar.png", tiles=24, peers=3)
        # Every result of the liar fails the submitter's SHA-256 check ('corrupt') and the task is dispatched
        # again: a wrong image is never accepted. The liar is not excluded, so a task it keeps getting back
        # may fail after maxRetries (docs/jobs.md): then the job fails with 'corrupt', and no image is written.
        if done.returncode == 0:
            assert out.read_bytes() == reference
            assert liar.peer_id in done.stdout and liar.peer_id not in re.findall(r"^  (\w{12})  \d+ tasks$", done.stdout, re.M)
            assert int(re.search(r"re-dispatched (\d+)", done.stdout)[1]) >= 1
        else:
            assert re.search(r"tasks failed; task \d+: corrupt: the SHA-256 of the result does not match its bytes", done.stderr), done.stderr
            assert not out.exists()
    finally:
        liar.stop()
    consistent = Cheater(server.ws, 1.0, 22)
    try:
        wait_ring(server, peers, [consistent])   # the liar has left
        done, out = submit(server, tmp_path, "cheated.png", tiles=24, peers=3)
        assert done.returncode == 0, done.stderr
        # A cheater whose digest matches its (wrong) bytes is not caught without quorum: the image differs.
        if consistent.peer_id in re.findall(r"^  (\w{12})  \d+ tasks$", done.stdout, re.M):
            assert out.read_bytes() != reference
        else:
            pytest.fail(f"the consistent cheater won no task, the test proves nothing: {done.stdout}")
    finally:
        consistent.stop()
        for p in peers:
            p.stop()
