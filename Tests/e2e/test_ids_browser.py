"""A browser whose saved ID is no longer its own (docs/protocol.md, "Tokens, epochs and leases"): after the
server answers its re-registration with `id-expired`, the page forgets the ID and token and registers
fresh on its own (Public/webrtc-explorer.js), and register() callers see no failure."""
from harness import Peer

SETUP = """async () => {
  const { Explorer } = await import('/webrtc-explorer.js')
  window.errors = []
  window.registrations = []
  window.explorer = new Explorer({ signalingURL: `ws://${location.host}` })
  window.explorer.events.on('error', (e) => window.errors.push(e))
  window.explorer.events.on('registered', (r) => window.registrations.push(r))
  const { peerId } = await window.explorer.register()
  return { peerId, token: window.explorer.token }
}"""


def test_a_browser_registers_fresh_after_id_expired(page, web_server):
    first = page.evaluate(SETUP)
    # A protocol client with the page's credentials replaces the page's session (the same holder), then
    # leaves: the binding ends, so the page's token no longer holds the ID.
    thief = Peer(web_server)
    try:
        assert thief.register(first["peerId"], first["token"]) == first["peerId"]
        thief.send({"type": "leave"})
        page.wait_for_function("() => window.errors.some((e) => e.code === 'id-expired')", timeout=20000)
        page.wait_for_function("() => window.registrations.length >= 2", timeout=20000)
        after = page.evaluate("({ peerId: window.explorer.peerId, token: window.explorer.token })")
        assert after["token"] != first["token"]
        codes = [e["code"] for e in page.evaluate("window.errors")]
        assert "replaced" in codes and "id-expired" in codes, codes
        assert any(p["peerId"] == after["peerId"] for p in web_server.network()["peers"])
    finally:
        thief.close()
        page.evaluate("window.explorer.leave()")
