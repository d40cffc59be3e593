"""Browsers and machines on one ring: Chromium pages and native Swift peers (browsercloud peer) join the
same server inside the test's network namespace, link to each other (WebRTC between browsers,
WebSockets to native peers after a "dial me" signal), exchange messages in every direction, and
compute one ray-trace job together with the bytes of a single render."""
import json
import pathlib
import subprocess

import pytest

from overlay import N, chord_hop_bound
from harness import BIN, ROOT
from native import NativePeer, all_pairs as native_pairs  # noqa: F401

VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}
BROWSERS = max(2, N // 2)
NATIVES = max(2, N // 2)


@pytest.fixture(scope="module")
def natives(namespace, ring_server):
    peers = []
    try:
        for _ in range(NATIVES):
            peers.append(NativePeer(ring_server.ws, prefix=namespace.prefix, listen=f"{namespace.address}:0", workers=1))
        for p in peers:
            p.wait_registered()
        yield peers
    finally:
        for p in peers:
            p.stop()


def wait_mixed(overlay, natives):
    return overlay.wait_stable(timeout=60, natives=natives)


def test_browsers_and_native_peers_exchange_messages_in_every_direction(overlay, natives, ring_server):
    overlay.spawn(BROWSERS)
    wait_mixed(overlay, natives)
    browsers = overlay.live
    ids = [p[2] for p in browsers] + [n.peer_id for n in natives]
    for _, page, _ in browsers:
        page.evaluate("() => { window.inbox = [] }")
    for n in natives:
        n.clear("message")
    for _, page, src in browsers:
        page.evaluate("""async (targets) => {
          for (const dst of targets) await window.peer.send(dst, { from: window.peer.peerId, to: dst })
        }""", [d for d in ids if d != src])
    for n in natives:
        for dst in ids:
            if dst != n.peer_id:
                n.command(f'send {dst} {json.dumps({"from": n.peer_id, "to": dst})}')
    expected = len(ids) * (len(ids) - 1)
    import time
    deadline = time.monotonic() + 60
    got = []
    while time.monotonic() < deadline:
        got = [(m["data"]["from"], me, m["hops"]) for (_, page, me) in browsers for m in page.evaluate("() => window.inbox") if m["data"]["to"] == me]
        got += [(m["data"]["from"], n.peer_id, m["hops"]) for n in natives for m in n.of("message") if m["data"]["to"] == n.peer_id]
        if len(got) >= expected:
            break
        time.sleep(0.1)
    pairs = {(a, b) for a, b, _ in got}
    assert len(pairs) == expected, f"{len(pairs)} of {expected} ordered pairs delivered"
    assert max(h for _, _, h in got) <= chord_hop_bound(len(ids))
    native_ids = {n.peer_id for n in natives}
    kinds = {(a in native_ids, b in native_ids) for a, b in pairs}
    assert kinds == {(False, False), (False, True), (True, False), (True, True)}


def test_a_browser_submits_a_job_that_browsers_and_native_peers_compute_together(overlay, natives, ring_server):
    wait_mixed(overlay, natives)
    page = overlay.live[0][1]
    total = len(overlay.live) + len(natives)
    result = page.evaluate("""async (peers) => {
      const scene = await (await fetch('/scenes/medium.json')).json()
      const r = await window.bp.raytrace(scene, { tiles: 100, peers })
      return { sha256: r.sha256, stats: r.stats }
    }""", total)
    assert result["sha256"] == VECTORS["Public/scenes/medium.json"], result["stats"]
    workers = set(result["stats"]["tasksPerPeer"])
    assert workers & {n.peer_id for n in natives}, result["stats"]
    assert workers & {p[2] for p in overlay.live}, result["stats"]


def test_a_native_submitter_gets_the_render_bytes_from_browsers_and_native_peers(overlay, natives, ring_server, namespace, tmp_path):
    wait_mixed(overlay, natives)
    out = tmp_path / "mixed.png"
    reference = tmp_path / "reference.png"
    subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(reference)],
                   check=True, capture_output=True, timeout=120)
    total = len(overlay.live) + len(natives)
    proc = subprocess.run(list(namespace.prefix) + [BIN, "submit", "raytrace", "--server", ring_server.ws, "--scene", "small",
                          "--scenes", str(ROOT / "Public/scenes"), "--tiles", "100", "--peers", str(total), "--out", str(out),
                          "--listen", f"{namespace.address}:0"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert pathlib.Path(out).read_bytes() == reference.read_bytes(), proc.stdout
    browser_ids = {p[2] for p in overlay.live}
    assert any(b in proc.stdout for b in browser_ids), proc.stdout     # browsers rendered some tiles
