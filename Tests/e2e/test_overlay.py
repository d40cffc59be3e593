"""webrtc-explorer in real Chromium: peers join through the real server, open WebRTC data channels to
their fingers through its relay, and route messages over the overlay (docs/protocol.md)."""
import pathlib
import sys

from overlay import N, chord_hop_bound
from harness import Server


def test_all_pairs_deliver_within_the_chord_bound(overlay):
    overlay.spawn(N)
    overlay.wait_stable()
    assert len(overlay.timeline.of("ready")) == N
    delivered, expected, hops = overlay.all_pairs()
    assert delivered == expected == N * (N - 1)
    assert max(hops) <= chord_hop_bound(N), hops


def test_every_page_holds_the_neighbour_list_of_each_direct_link(overlay):
    """Neighbour-of-neighbour routing (docs/protocol.md, "Neighbour lists"): a link's peer sends its list when
    the link opens, so every page ends up with a list from each peer it has a direct link to."""
    for _, page, _ in overlay.live:
        page.wait_for_function("""() => window.peer.channels.openPeers(true).every((p) => {
          const list = window.peer.neighbours.list(p)
          return Array.isArray(list) && list.length > 0 && !list.includes(p)
        })""", timeout=15000)


def test_delivery_is_complete_again_after_a_quarter_leave(overlay):
    for index in range(0, N, 4):
        overlay.close(index)
    # wait_stable: every survivor's pushed state (predecessor, successors, fingers) equals the server's,
    # and it has open links to all the peers it needs.
    overlay.wait_stable()
    survivors = len(overlay.live)
    delivered, expected, hops = overlay.all_pairs()
    assert delivered == expected == survivors * (survivors - 1)
    assert max(hops) <= chord_hop_bound(survivors)


def test_peers_come_back_with_their_ids_after_a_server_restart(overlay, ring_server, namespace, tmp_path_factory):
    before = sorted(p[2] for p in overlay.live)
    assert ring_server.stop() == 0          # SIGTERM: every page is told the server is going away
    restarted = Server(tmp_path_factory.mktemp("restart"), host=namespace.address, prefix=namespace.prefix,
                       port=ring_server.port, secret_file=ring_server.secret_file)
    ring_server.restarts.append(restarted)
    network = overlay.wait_stable(timeout=60)
    assert sorted(p["peerId"] for p in network["peers"]) == before
    assert len(overlay.timeline.of("signalling-restored")) >= len(before)
    assert {e["peer"] for e in overlay.timeline.of("server-going-away")} >= {i for i, p in enumerate(overlay.pages) if p[0] is not None}
    delivered, expected, _ = overlay.all_pairs()
    assert delivered == expected


def test_a_10_mb_message_arrives_intact(overlay):
    """Payloads above the data channel's message size are chunked, sent with backpressure and reassembled."""
    live = overlay.live
    src_page, dst_id = live[0][1], live[-1][2]
    live[-1][1].evaluate("() => { window.inbox = [] }")
    digest = src_page.evaluate("""async (dst) => {
      const bytes = new Uint8Array(10 * 1024 * 1024)
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24
      let text = ''
      for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192))
      const payload = btoa(text)
      await window.peer.send(dst, { payload })
      // FNV-1a over the characters (crypto.subtle needs a secure context; http://10.x is not one).
      let h = 0x811c9dc5
      for (let i = 0; i < payload.length; i++) h = Math.imul(h ^ payload.charCodeAt(i), 16777619) >>> 0
      return `${payload.length}:${h}`
    }""", dst_id)
    got = live[-1][1].wait_for_function("""() => {
      const m = window.inbox.find(m => m.data && m.data.payload)
      if (!m) return null
      const payload = m.data.payload
      let h = 0x811c9dc5
      for (let i = 0; i < payload.length; i++) h = Math.imul(h ^ payload.charCodeAt(i), 16777619) >>> 0
      return `${payload.length}:${h}`
    }""", timeout=60000).json_value()
    assert got == digest


def test_interoperates_with_an_aiortc_peer(overlay, namespace):
    """Offer, answer and ICE candidates relayed by our server between Chromium and aiortc, a WebRTC stack
    we did not write; data flows both ways over the data channel. Runs last: the aiortc peer joins the ring."""
    import json
    import subprocess
    _, page, browser_id = overlay.live[0]
    page.evaluate("() => { window.inbox = [] }")
    script = pathlib.Path(__file__).with_name("aiortc_peer.py")
    proc = subprocess.Popen(list(namespace.prefix) + [sys.executable, str(script), "--url", overlay.ws_url, "--target", browser_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline() or "{}")
        assert "peerId" in first, (first, proc.stderr.read() if proc.poll() is not None else "")
        aiortc_id = first["peerId"]
        got = page.wait_for_function("() => window.inbox.find(m => m.data && m.data.hello)", timeout=30000).json_value()
        assert got["srcId"] == aiortc_id and got["data"] == {"hello": "from aiortc"}
        page.evaluate("""(to) => window.peer.channels.send(to, JSON.stringify(
          { srcId: window.peer.peerId, dstId: to, data: { hello: 'from chromium' }, hops: 0, id: 'reply' }))""", aiortc_id)
        out, err = proc.communicate(timeout=30)
        reply = json.loads(out.strip().splitlines()[-1])
        assert reply.get("received", {}).get("data") == {"hello": "from chromium"}, (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
