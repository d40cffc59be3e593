"""A browser whose saved ID is no longer its own (docs/protocol.md, "Key-pair identity"): after the server
answers its re-registration with `id-expired`, the page forgets the ID and registers fresh on its own
(Public/webrtc-explorer.js), and register() callers see no failure. The page's key is made from a known
seed (explorer/identity.js, `ephemeral` with `seed`) so that a protocol client can hold the same key."""
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import Peer, check_certificate, public_hex

SEED = bytes([0x33] * 32)

SETUP = """async () => {
  const { Explorer } = await import('/webrtc-explorer.js')
  window.errors = []
  window.registrations = []
  window.explorer = new Explorer({ signalingURL: `ws://${location.host}`, identity: { ephemeral: true, seed: new Uint8Array(32).fill(0x33) } })
  window.explorer.events.on('error', (e) => window.errors.push(e))
  window.explorer.events.on('registered', (r) => window.registrations.push(r))
  const { peerId } = await window.explorer.register()
  return { peerId, certificate: window.explorer.certificate, publicKey: window.explorer.publicKey }
}"""


def test_a_browser_registers_fresh_after_id_expired(page, web_server):
    first = page.evaluate(SETUP)
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    assert first["publicKey"] == public_hex(key)
    assert check_certificate(first["certificate"], web_server.get("/healthz").json()["serverKey"])[:2] == (first["peerId"], first["publicKey"])
    # A protocol client with the page's key replaces the page's session (the same holder), then leaves:
    # the binding ends, so the page's key no longer holds the ID.
    thief = Peer(web_server, key=key)
    try:
        assert thief.register(first["peerId"]) == first["peerId"]
        thief.send({"type": "leave"})
        page.wait_for_function("() => window.errors.some((e) => e.code === 'id-expired')", timeout=20000)
        page.wait_for_function("() => window.registrations.length >= 2", timeout=20000)
        after = page.evaluate("({ peerId: window.explorer.peerId, certificate: window.explorer.certificate })")
        assert after["certificate"] != first["certificate"]
        codes = [e["code"] for e in page.evaluate("window.errors")]
        assert "replaced" in codes and "id-expired" in codes, codes
        assert any(p["peerId"] == after["peerId"] for p in web_server.network()["peers"])
    finally:
        thief.close()
        page.evaluate("window.explorer.leave()")
