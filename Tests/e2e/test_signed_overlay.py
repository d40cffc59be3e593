"""The browser's signed overlay messages (Public/explorer/signed-message.js) against the shared vectors
(Tests/vectors/signed-overlay.json, written by make_signed_overlay_vectors.py with Python's `cryptography`
from docs/protocol.md, "Signed overlay messages"), which the native peer's SignedOverlay target also reproduces
(Tests/PeerTests/SignedOverlayVectorTests.swift). Ed25519 is WebCrypto's, injected as identity.js will
inject it: on 127.0.0.1 (a secure context) and on the overlay tests' flagged 10.x origin."""
import json
import pathlib
import sys

from overlay import CHROMIUM

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests/integration"))
from harness import Server  # noqa: E402

VECTORS = json.loads((ROOT / "Tests/vectors/signed-overlay.json").read_text())

# WebCrypto Ed25519 for the module: verify(publicKeyHex, bytes, signatureHex) with raw public keys (imported
# once per key), sign(bytes) with a seed imported as PKCS#8 (RFC 8410 prefix).
CRYPTO = """
  const bytes = (h) => new Uint8Array((h.match(/../g) || []).map((x) => parseInt(x, 16)))
  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('')
  const keys = new Map()
  const verify = async (publicKeyHex, data, signatureHex) => {
    if (!keys.has(publicKeyHex)) {
      keys.set(publicKeyHex, crypto.subtle.importKey('raw', bytes(publicKeyHex), { name: 'Ed25519' }, false, ['verify']))
    }
    return crypto.subtle.verify('Ed25519', await keys.get(publicKeyHex), bytes(signatureHex), data)
  }
  const signerOf = async (seedHex) => {
    const key = await crypto.subtle.importKey('pkcs8', bytes('302e020100300506032b657004220420' + seedHex),
                                              { name: 'Ed25519' }, false, ['sign'])
    return async (data) => hex(await crypto.subtle.sign('Ed25519', key, data))
  }
"""


def test_frames_parse_as_the_vectors_say(page):
    assert len(VECTORS["frames"]) >= 40
    mismatches = page.evaluate("""async (frames) => {
      const { parseSignedFrame, encodeSignedFrame } = await import('/explorer/signed-message.js')
      return frames.map((v) => {
        const f = parseSignedFrame(v.frame)
        const got = f && { hops: f.hops, srcId: f.srcId, dstId: f.dstId, id: f.id, at: f.at, relayed: encodeSignedFrame(f) }
        return [v.frame.slice(0, 80), got, v.expect]
      }).filter(([, got, want]) => JSON.stringify(got) !== JSON.stringify(want))
    }""", VECTORS["frames"])
    assert mismatches == [], mismatches[:3]


def test_signers_write_the_vector_frames_byte_for_byte(page):
    mismatches = page.evaluate("""async ([peers, rows]) => {""" + CRYPTO + """
      const { OverlaySigner } = await import('/explorer/signed-message.js')
      const out = []
      for (const v of rows) {
        const signer = new OverlaySigner({ certificate: peers[v.peer].certificate, sign: await signerOf(peers[v.peer].seed) })
        const frame = await signer.frame(v.dstId, v.id, v.at, v.data)
        if (frame !== v.frame) out.push([v.id, frame, v.frame])
      }
      return out
    }""", [VECTORS["peers"], VECTORS["signing"]])
    assert mismatches == [], mismatches[:2]


def run_sequences(page):
    return page.evaluate("""async ([serverKey, sequences]) => {""" + CRYPTO + """
      const { OverlayVerifier, REASONS } = await import('/explorer/signed-message.js')
      const out = []
      for (const s of sequences) {
        const v = new OverlayVerifier({ serverKey, self: s.self, verify,
                                        limits: { timeToleranceMs: s.timeToleranceMs, maxReplayEntries: s.maxReplayEntries } })
        const verdicts = []
        for (const step of s.steps) verdicts.push(await v.verify(step.frame, step.now))
        const c = v.counters
        const counts = {}
        if (c.accepted) counts.accepted = c.accepted
        for (const r of REASONS) if (c.rejected[r]) counts[r] = c.rejected[r]
        out.push({ name: s.name, verdicts, counts, certificateChecks: c.certificateChecks })
      }
      return out
    }""", [VECTORS["serverKey"], VECTORS["sequences"]])


def check_sequences(results):
    assert len(results) == len(VECTORS["sequences"])
    for s, got in zip(VECTORS["sequences"], results):
        for n, (step, verdict) in enumerate(zip(s["steps"], got["verdicts"])):
            assert verdict == step["expect"], (s["name"], n)
        assert got["counts"] == s["counts"], s["name"]
        assert got["certificateChecks"] == s["certificateChecks"], s["name"]


def test_sequences_reach_the_vector_verdicts(page):
    assert len(VECTORS["sequences"]) >= 12
    check_sequences(run_sequences(page))


def test_the_vectors_hold_on_the_flagged_lan_origin(playwright, namespace, tmp_path):
    """The same on the origin the overlay tests' browsers use: a 10.x address made trustworthy with
    --unsafely-treat-insecure-origin-as-secure (Tests/e2e/conftest.py, `overlay`)."""
    server = Server(tmp_path, host=namespace.address, prefix=namespace.prefix)
    browser = playwright.chromium.launch(executable_path=namespace.chromium_wrapper(tmp_path, CHROMIUM), headless=True,
                                         args=[f"--unsafely-treat-insecure-origin-as-secure={server.http}"])
    try:
        page = browser.new_page()
        page.goto(server.http + "/")
        assert page.evaluate("() => isSecureContext && !!crypto.subtle") is True
        check_sequences(run_sequences(page))
    finally:
        browser.close()
        server.stop()


def test_overlapping_verifications_accept_a_message_once_and_check_its_certificate_once(page):
    """The browser verifies asynchronously: the same frame verified ten times at once is accepted once,
    and its certificate is checked once."""
    s = VECTORS["sequences"][0]
    r = page.evaluate("""async ([serverKey, self, frame, now]) => {""" + CRYPTO + """
      const { OverlayVerifier } = await import('/explorer/signed-message.js')
      const v = new OverlayVerifier({ serverKey, self, verify })
      const verdicts = await Promise.all(Array.from({ length: 10 }, () => v.verify(frame, now)))
      return { verdicts: verdicts.map((x) => x.verdict + (x.reason ? ':' + x.reason : '')).sort(), counters: v.counters }
    }""", [VECTORS["serverKey"], s["self"], s["steps"][0]["frame"], s["steps"][0]["now"]])
    assert r["verdicts"] == ["accepted"] + ["rejected:replayed"] * 9, r
    assert r["counters"]["certificateChecks"] == 1, r


def test_ring_update_epochs_make_an_older_certificate_stale(page):
    """`ringEpochs` (explorer/finger-table.js) reads the holder epochs of ring updates (docs/protocol.md,
    "Holder epochs in ring updates"); fed to `noteEpoch`, as webrtc-explorer.js does, a genuine message signed
    with a certificate of a lower epoch is refused as stale, and one without epochs changes nothing."""
    s = VECTORS["sequences"][0]
    a = VECTORS["peers"]["a"]
    newer = format(int(a["epoch"], 16) + 1, "016x")
    r = page.evaluate("""async ([serverKey, self, frame, now, id, newer]) => {""" + CRYPTO + """
      const { OverlayVerifier } = await import('/explorer/signed-message.js')
      const { ringEpochs } = await import('/explorer/finger-table.js')
      const updates = [
        { type: 'predecessor', peerId: id },
        { type: 'successors', peerIds: [id, '000000000001'], epochs: [newer] },   // not parallel: ignored
        { type: 'finger-update', row: 3, start: id, peerId: id, epoch: '00000000000000FF' },   // uppercase: not an epoch
        { type: 'successors', peerIds: [id], epochs: [newer] },
        { type: 'predecessor', peerId: id, epoch: newer },
        { type: 'finger-update', row: 3, start: id, peerId: id, epoch: newer },
        { type: 'registered', peerId: id, epoch: newer }
      ].map(ringEpochs)
      const before = new OverlayVerifier({ serverKey, self, verify })
      for (const [p, e] of updates.slice(0, 3).flat()) before.noteEpoch(p, e)
      const after = new OverlayVerifier({ serverKey, self, verify })
      for (const [p, e] of updates[3]) after.noteEpoch(p, e)
      const a = await before.verify(frame, now)
      const b = await after.verify(frame, now)
      return { updates, before: a.verdict, after: b.verdict + ':' + b.reason, counters: after.counters }
    }""", [VECTORS["serverKey"], s["self"], s["steps"][0]["frame"], s["steps"][0]["now"], a["peerId"], newer])
    pair = [[a["peerId"], newer]]
    assert r["updates"] == [[], [], [], pair, pair, pair, []], r["updates"]
    assert r["before"] == "accepted" and r["after"] == "rejected:stale-epoch", r
    assert r["counters"]["rejected"]["stale-epoch"] == 1, r
