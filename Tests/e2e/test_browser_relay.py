"""The server's link relay from browsers (last resort): pages that cannot use WebRTC (turned off here)
and a native peer nobody can dial link through `serve --link-relay`, and every ordered pair among them
is delivered over the overlay."""
import json
import time

import pytest

from harness import Server
from native import NativePeer

JOIN = """async (url) => {
  const { Explorer } = await import('/webrtc-explorer.js')
  const peer = new Explorer({ signalingURL: url, webrtc: false })
  window.peer = peer
  window.inbox = []
  peer.events.on('message', (m) => window.inbox.push(m))
  return (await peer.register()).peerId
}"""


@pytest.fixture
def relay_server(tmp_path):
    s = Server(tmp_path, "--link-relay")
    yield s
    s.stop()


def test_browsers_and_a_native_peer_link_through_the_relay(browser, relay_server):
    contexts, pages, ids = [], [], []
    native = NativePeer(relay_server.ws, "--advertise", "ws://127.0.0.1:1/")
    try:
        for _ in range(3):
            context = browser.new_context()
            page = context.new_page()
            page.goto(relay_server.http + "/")
            ids.append(page.evaluate(JOIN, relay_server.ws))
            contexts.append(context)
            pages.append(page)
        native_id = native.wait_registered()
        everyone = ids + [native_id]
        # Ready: every browser has open links to the peers it needs.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            ok = all(page.evaluate("""() => { const s = window.peer.snapshot()
              const needed = new Set([...s.successors, ...Object.values(s.fingers).filter(Boolean)])
              return s.successors.length === 3 && [...needed].every((p) => s.links.includes(p)) }""") for page in pages)
            if ok and native.state()["ready"]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the relayed ring did not become ready")
        for page, src in zip(pages, ids):
            page.evaluate("""async (targets) => {
              for (const dst of targets) await window.peer.send(dst, { from: window.peer.peerId, to: dst })
            }""", [d for d in everyone if d != src])
        for dst in ids:
            native.command(f'send {dst} {json.dumps({"from": native_id, "to": dst})}')
        deadline = time.monotonic() + 20
        pairs = set()
        while time.monotonic() < deadline and len(pairs) < 12:
            pairs = {(m["data"]["from"], me) for page, me in zip(pages, ids) for m in page.evaluate("() => window.inbox") if m["data"]["to"] == me}
            pairs |= {(m["data"]["from"], native_id) for m in native.of("message") if m["data"]["to"] == native_id}
            time.sleep(0.1)
        assert len(pairs) == 12, sorted(pairs)
        assert relay_server.stats()["linkRelayFrames"] >= 12
    finally:
        native.stop()
        for c in contexts:
            c.close()
