"""`verify: 'quorum'` with cheating volunteers among browsers and machines (docs/jobs.md, "Verification by
quorum"): Chromium pages, native peers (browsercloud peer) and the native test tool bc-cheater on one ring.
Two pages cheat: their task results are corrupted by a wrapper this test installs around the page's
worker pool (always, and with a seeded probability), with a SHA-256 matching the corrupted bytes. A
browser's quorum job gives the bytes of a single render, penalises every cheater, and its next job
avoids them; a native submitter's quorum job over the same ring gives the bytes of `browsercloud render`."""
import json
import os
import pathlib
import re
import subprocess
import threading

import pytest

from overlay import N
from harness import BIN, ROOT
from native import NativePeer

VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}
CHEATER = os.path.join(os.path.dirname(BIN), "bc-cheater")
BROWSERS = max(4, N // 2)

# Wraps the page's worker pool: a result is corrupted (one byte) when the seeded draw (mulberry32) is
# below `probability`, and carries the SHA-256 of the corrupted bytes. The seed is the test's.
CHEAT = """async ({ probability, seed }) => {
  const { sha256Hex } = await import('/browser-process.js')
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const pool = window.bp.pool
  const run = pool.run.bind(pool)
  window.corrupted = 0
  pool.run = async (key, message, deadlineMs) => {
    const r = await run(key, message, deadlineMs)
    if (!r.ok || r.encoding !== 'base64' || next() >= probability) return r
    const text = atob(r.payload)
    const bytes = new Uint8Array(text.length)
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i)
    bytes[Math.floor(next() * bytes.length)] ^= 0x5a
    window.corrupted++
    let binary = ''
    for (const b of bytes) binary += String.fromCharCode(b)
    return { ...r, payload: btoa(binary), sha256: await sha256Hex(bytes) }
  }
}"""

JOB = """async ({ peers }) => {
  const scene = await (await fetch('/scenes/small.json')).json()
  // Three cheaters may answer one task: a strict majority may need 2·3 + 1 results (docs/jobs.md).
  const r = await window.bp.raytrace(scene, { tiles: 48, peers, verify: 'quorum', seed: 3, maxReplicas: 7 })
  return { sha256: r.sha256, stats: r.stats }
}"""


class NativeCheater:
    def __init__(self, namespace, server_ws, seed):
        self.proc = subprocess.Popen(list(namespace.prefix) + [CHEATER, "--server", server_ws, "--listen", f"{namespace.address}:0",
                                                                "--probability", "1", "--seed", str(seed)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.stderr = []
        threading.Thread(target=lambda: [self.stderr.append(line) for line in self.proc.stderr], daemon=True).start()
        line = self.proc.stdout.readline()
        assert line, f"bc-cheater did not register: {self.stderr}"
        self.peer_id = json.loads(line)["peerId"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def ring(overlay, namespace, ring_server):
    natives = [NativePeer(ring_server.ws, prefix=namespace.prefix, listen=f"{namespace.address}:0", workers=1) for _ in range(2)]
    cheater = None
    try:
        for n in natives:
            n.wait_registered()
        cheater = NativeCheater(namespace, ring_server.ws, 31)
        overlay.spawn(BROWSERS)
        # The last two pages cheat: always, and with probability 0.5 (seed 7: its first draw, 0.012, corrupts).
        pages = overlay.live
        pages[-1][1].evaluate(CHEAT, {"probability": 1, "seed": 1})
        pages[-2][1].evaluate(CHEAT, {"probability": 0.5, "seed": 7})
        # The cheater is counted as a peer of the ring, not checked for its links (it has no state command).
        overlay.wait_stable(timeout=90, natives=natives + [FakeEntry(cheater.peer_id)])
        yield {"natives": natives, "cheaters": {pages[-1][2], pages[-2][2], cheater.peer_id}, "native_cheater": cheater}
    finally:
        if cheater:
            cheater.stop()
        for n in natives:
            n.stop()


class FakeEntry:
    """A peer wait_stable counts without checking its state."""
    def __init__(self, peer_id):
        self.peer_id = peer_id

    def matches(self, entry):
        return entry is not None


def test_a_browser_quorum_job_outvotes_browser_and_native_cheaters_and_the_next_job_avoids_them(overlay, ring):
    page = overlay.live[0][1]
    total = len(overlay.live) + 3
    first = page.evaluate(JOB, {"peers": total})
    stats = first["stats"]
    print(json.dumps({k: stats[k] for k in ("peers", "penalised", "replication", "verification", "seed")}))
    assert first["sha256"] == VECTORS["Public/scenes/small.json"], stats
    used = set(stats["peers"])
    assert ring["cheaters"] <= used, ("every cheater worked on the job", stats)
    assert set(stats["penalised"]) == ring["cheaters"], stats
    assert stats["failed"] == 0 and stats["verification"]["noQuorum"] == 0 and stats["seed"] == 3
    second = page.evaluate(JOB, {"peers": total})
    assert second["sha256"] == VECTORS["Public/scenes/small.json"]
    assert not set(second["stats"]["peers"]) & ring["cheaters"], second["stats"]
    assert second["stats"]["penalised"] == [] and second["stats"]["verification"]["dissented"] == 0


def test_a_native_quorum_job_over_cheating_browsers_gives_the_render_bytes(overlay, ring, ring_server, namespace, tmp_path):
    out = tmp_path / "quorum.png"
    reference = tmp_path / "reference.png"
    subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(reference)],
                   check=True, capture_output=True, timeout=120)
    total = len(overlay.live) + 3
    proc = subprocess.run(list(namespace.prefix) + [BIN, "submit", "raytrace", "--server", ring_server.ws, "--scene", "small",
                          "--scenes", str(ROOT / "Public/scenes"), "--tiles", "48", "--peers", str(total), "--out", str(out),
                          "--listen", f"{namespace.address}:0", "--verify", "quorum", "--seed", "4", "--max-replicas", "7"],
                         capture_output=True, text=True, timeout=240)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert pathlib.Path(out).read_bytes() == reference.read_bytes(), proc.stdout
    penalised = set(re.search(r"^penalised: (.*)$", proc.stdout, re.M).group(1).split())
    used = set(re.search(r"^peers used: (.*)$", proc.stdout, re.M).group(1).split())
    # A fresh process: its own reputation. Every cheater it gave a task to was outvoted and penalised
    # (the always-cheaters corrupt every result).
    assert penalised and penalised <= ring["cheaters"], proc.stdout
    always = ring["cheaters"] - {overlay.live[-2][2]}
    assert always & used <= penalised, proc.stdout
