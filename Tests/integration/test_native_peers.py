"""A ring of native Swift peers (browsercloud peer) on loopback: they join the real server, link to
their fingers over WebSockets ("dial me" through the relay), route every ordered pair within the Chord
bound, again after a fifth leave, and compute ray-trace jobs byte-identical to `browsercloud render`,
also with 30% of the workers killed mid-job."""
import hashlib
import math
import os
import re
import struct
import subprocess
import time
import zlib

import pytest

from harness import BIN, ROOT, Server
from native import NativePeer, all_pairs, wait_stable

N = int(os.environ.get("NATIVE_PEERS", "50"))


def chord_hop_bound(n):
    return 2 * max(1, math.ceil(math.log2(n))) + 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("native"), "--max-connections", "4000")
    s.restarts = []   # servers started in its place by the restart test
    yield s
    for r in [s] + s.restarts:
        r.stop()


@pytest.fixture(scope="module")
def ring(server):
    peers = []
    try:
        for _ in range(N):
            peers.append(NativePeer(server.ws))
        # N processes start at once on a small machine: one deadline for all of them, growing with N.
        deadline = time.monotonic() + 15 + 0.5 * N
        for p in peers:
            p.wait_registered(timeout=max(1, deadline - time.monotonic()))
        yield peers
    finally:
        for p in peers:
            p.stop()


def render(tmp_path, scene, *extra):
    out = tmp_path / f"render-{scene}.png"
    done = subprocess.run([BIN, "render", "--scene", scene, "--scenes", str(ROOT / "Public/scenes"), "--out", str(out), *extra],
                          check=True, capture_output=True, text=True, timeout=300)
    data = out.read_bytes()
    # The digest printed is the file's, as sha256sum prints it.
    assert f"file sha256 {hashlib.sha256(data).hexdigest()}" in done.stdout, done.stdout
    return data


def submit(server, tmp_path, scene, tiles, peers, name):
    out = tmp_path / name
    proc = subprocess.Popen([BIN, "submit", "raytrace", "--server", server.ws, "--scene", scene, "--scenes", str(ROOT / "Public/scenes"),
                             "--tiles", str(tiles), "--peers", str(peers), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


def png_pixels(data):
    """Decodes our PNG files (RGBA, 8 bits, filter 0) with the standard library: a reader we did not write."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 6)
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[r * (width * 4 + 1):(r + 1) * (width * 4 + 1)] for r in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, b"".join(row[1:] for row in rows)


def test_render_writes_the_reference_image_and_single_tiles(tmp_path):
    import json
    vectors = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}
    width, height, pixels = png_pixels(render(tmp_path, "small"))
    assert (width, height) == (64, 48)
    assert hashlib.sha256(pixels).hexdigest() == vectors["Public/scenes/small.json"]
    _, _, tile = png_pixels(render(tmp_path, "small", "--tile", "8,4,10,6"))
    assert tile == b"".join(pixels[((4 + r) * 64 + 8) * 4:((4 + r) * 64 + 18) * 4] for r in range(6))
    bad = subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(tmp_path / "x.png"),
                          "--tile", "60,0,10,10"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not inside" in bad.stderr
    huge = subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(tmp_path / "x.png"),
                           "--tile", "4611686018427387904,0,4611686018427387904,1"], capture_output=True, text=True, timeout=60)
    assert huge.returncode == 1 and "not inside" in huge.stderr      # no overflow trap


def test_all_ordered_pairs_deliver_within_the_chord_bound(server, ring):
    wait_stable(server, ring)
    delivered, expected, hops = all_pairs(ring)
    assert delivered == expected == N * (N - 1)
    assert max(hops) <= chord_hop_bound(N), sorted(hops)[-10:]


def test_sigterm_with_all_peers_connected_then_restart_all_come_back_with_their_ids(server, ring, tmp_path):
    live = [p for p in ring if p.alive]
    before = sorted(p.peer_id for p in live)
    t0 = time.monotonic()
    assert server.stop() == 0                     # SIGTERM: graceful shutdown, exit 0
    assert time.monotonic() - t0 < 8              # within --shutdown-grace (5 s) and a margin
    wait_until = time.monotonic() + 10
    while time.monotonic() < wait_until and not all(p.of("going-away") for p in live):
        time.sleep(0.05)
    assert all(p.of("going-away") for p in live), "every peer was told the server is going away"
    restarted = Server(tmp_path, "--max-connections", "4000", port=server.port, secret_file=server.secret_file)
    server.restarts.append(restarted)
    network = wait_stable(restarted, live, timeout=90)
    assert sorted(p["peerId"] for p in network["peers"]) == before
    assert all(any(e.get("again") for e in p.of("registered")) for p in live)
    delivered, expected, _ = all_pairs(live)
    assert delivered == expected


def test_a_400_tile_job_is_byte_identical_to_render(server, ring, tmp_path):
    reference = render(tmp_path, "medium")
    proc, out = submit(server, tmp_path, "medium", 400, len(ring), "job.png")
    stdout, stderr = proc.communicate(timeout=300)
    print(stdout)
    assert proc.returncode == 0, stderr
    assert out.read_bytes() == reference, stdout
    assert "400 tasks on" in stdout


def test_delivery_is_complete_again_after_a_fifth_leave(server, ring):
    for p in ring[:N // 5]:
        code = p.leave()               # SIGTERM: leave, then exit 0
        assert code == 0, (code, p.stderr[-30:])
    survivors = ring[N // 5:]
    wait_stable(server, survivors)
    delivered, expected, hops = all_pairs(survivors)
    assert delivered == expected == len(survivors) * (len(survivors) - 1)
    assert max(hops) <= chord_hop_bound(len(survivors))


def test_a_job_survives_30_percent_of_its_workers_killed(server, ring, tmp_path):
    live = [p for p in ring if p.alive]
    reference = render(tmp_path, "medium")
    proc, out = submit(server, tmp_path, "medium", 400, len(live), "killed.png")
    # Kill (SIGKILL: no leave) 30% of the workers once a tenth of the tiles are in: early enough that the
    # job outlasts the detection of its lost peers (a probe answered `gone`, about a second).
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("progress ") and int(line.split()[1].split("/")[0]) >= 40:
            break
    victims = live[:math.ceil(0.3 * len(live))]
    for p in victims:
        p.kill()
    stdout, stderr = proc.communicate(timeout=300)
    print(stdout)
    assert proc.returncode == 0, "".join(lines) + stderr
    assert out.read_bytes() == reference, stdout
    done_after_kill = [line for line in stderr.splitlines() if line.startswith("progress ")]
    assert done_after_kill, "the job ended before the workers were killed: the scenario proves nothing"
    # The kill hit workers of this job (they had won tiles before it), so the job must have lost peers
    # and dispatched their tasks again: both counters of the summary line, not just one of them.
    worked = {line.split()[0] for line in stdout.splitlines() if line.startswith("  ") and line.endswith(" tasks")}
    assert worked & {p.peer_id for p in victims}, ("no killed peer worked on the job", stdout)
    counts = {name: int(n) for name, n in re.findall(r"\b(re-dispatched|peers lost) (\d+)", stdout)}
    assert set(counts) == {"re-dispatched", "peers lost"}, stdout
    assert counts["peers lost"] >= 1 and counts["re-dispatched"] >= 1, stdout
