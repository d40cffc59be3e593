"""The browser harness (the thesis's "piri-piri"): spawns peers as pages of one headless Chromium (one
browser context each), orchestrates them, collects their events with timestamps into one timeline, and
lets tests assert on it. Server and browsers run inside a network namespace of the test's own."""
import json
import math
import os
import time

CHROMIUM = "/usr/lib/chromium/chromium"
N = int(os.environ.get("E2E_PEERS", "8"))   # peers of the overlay scenarios (make e2e-large: 20)

SETUP = """async ({ index, url, workers }) => {
  const { Explorer } = await import('/webrtc-explorer.js')
  const { BrowserProcess, PROTOCOL } = await import('/browser-process.js')
  const peer = new Explorer({ signalingURL: url, iceServers: [] })
  window.peer = peer
  window.inbox = []
  for (const name of ['registered', 'ready', 'link-up', 'link-down', 'error', 'signalling-lost', 'signalling-restored', 'server-going-away']) {
    peer.events.on(name, (payload) => window.bcEvent(index, name, payload))
  }
  peer.events.on('message', (m) => {
    if (m.data?.proto === PROTOCOL) return   // job traffic: seen through the process's events
    window.inbox.push(m)
    window.bcEvent(index, 'message', m)
  })
  // Every peer also runs the job engine and offers `workers` Web Workers (browser-process.js).
  window.bp = new BrowserProcess({ explorer: peer, workers })
  for (const name of ['progress', 'task-error', 'task-run', 'peer-lost', 'job-done', 'error']) {
    window.bp.events.on(name, (payload) => window.bcEvent(index, name === 'error' ? 'job-error' : name, payload))
  }
  await window.bp.participate()
  return peer.peerId
}"""


class Timeline:
    def __init__(self):
        self.t0 = time.monotonic()
        self.events = []

    def add(self, peer, name, payload):
        self.events.append({"t": round(time.monotonic() - self.t0, 4), "peer": peer, "event": name, "payload": payload})

    def of(self, name):
        return [e for e in self.events if e["event"] == name]

    def save(self, path):
        path.write_text(json.dumps(self.events, indent=1))


class Overlay:
    def __init__(self, browser, base_url, ws_url, timeline):
        self.browser = browser
        self.base_url = base_url
        self.ws_url = ws_url
        self.timeline = timeline
        self.pages = []   # (context, page, peerId)

    def spawn(self, n, workers=1, base_url=None, ws_url=None):
        """`n` more pages, loaded from `base_url` and joined through `ws_url` (one URL, or a list of a cluster's
        instances; by default the overlay's own)."""
        start = len(self.pages)
        for i in range(start, start + n):
            context = self.browser.new_context()
            page = context.new_page()
            page.expose_function("bcEvent", lambda index, name, payload: self.timeline.add(index, name, payload))
            page.goto((base_url or self.base_url) + "/")
            peer_id = page.evaluate(SETUP, {"index": i, "url": ws_url or self.ws_url, "workers": workers})
            self.pages.append([context, page, peer_id])
        return self.pages[start:]

    @property
    def live(self):
        return [p for p in self.pages if p[0] is not None]

    def close(self, index):
        context = self.pages[index][0]
        self.pages[index][0] = None
        context.close()

    def snapshot(self, page):
        return page.evaluate("() => window.peer.snapshot()")

    def matches(self, page, entry):
        """Whether a page's ring state equals the server's entry and its needed links are open."""
        s = self.snapshot(page)
        needed = set(s["successors"]) | {p for p in s["fingers"].values() if p}
        return (entry is not None and s["predecessor"] == entry["predecessor"] and s["successors"] == entry["successors"]
                and {str(k): v for k, v in s["fingers"].items()} == entry["fingers"] and needed <= set(s["links"]))

    def wait_stable(self, timeout=30, natives=(), network=None):
        """Until every live page (and every native peer in `natives`) has its state equal to the
        server's and an open link to each peer it needs. The server is asked through a page (it is
        reachable only inside the namespace), or through `network()`: the server's /api/network, or None
        while it has no single answer (e.g. a cluster's instances still differ)."""
        deadline = time.monotonic() + timeout
        page = self.live[0][1]
        while time.monotonic() < deadline:
            network_now = network() if network else page.evaluate("async () => (await fetch('/api/network?limit=10000')).json()")
            expected = {e["peerId"]: e for e in network_now["peers"]} if network_now else {}
            ok = (network_now is not None and len(expected) == len(self.live) + len(natives)
                  and all(self.matches(pg, expected.get(peer_id)) for _, pg, peer_id in self.live)
                  and all(n.matches(expected.get(n.peer_id)) for n in natives))
            if ok:
                return network_now
            page.wait_for_timeout(100)
        raise AssertionError("ring did not stabilise: " + json.dumps([self.snapshot(p) for _, p, _ in self.live])[:2000])

    def all_pairs(self, timeout=30):
        """Every live peer sends one message to every other; returns (delivered, expected, hop counts)."""
        live = self.live
        for _, page, _ in live:
            page.evaluate("() => { window.inbox = [] }")
        for i, (_, page, src) in enumerate(live):
            targets = [p[2] for p in live if p[2] != src]
            page.evaluate("""async (targets) => {
              for (const dst of targets) await window.peer.send(dst, { from: window.peer.peerId, to: dst })
            }""", targets)
        expected = len(live) * (len(live) - 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [m for _, page, _ in live for m in page.evaluate("() => window.inbox")]
            if len(got) >= expected:
                break
            live[0][1].wait_for_timeout(100)
        correct = [m for (_, page, me) in live for m in page.evaluate("() => window.inbox") if m["dstId"] == me and m["data"]["to"] == me]
        return len(correct), expected, [m["hops"] for m in correct]


def chord_hop_bound(n):
    """Chord lookups take O(log N) hops; with the auto finger rows the bound checked is 2·ceil(log2 N) + 1."""
    return 2 * max(1, math.ceil(math.log2(n))) + 1
