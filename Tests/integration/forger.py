"""A forging peer for tests (issue 12, "A forging peer"): a Python protocol peer that registers with the
real server with its own Ed25519 key, answers native peers' "dial me" signals by dialling their link
listeners (hello with the nonce), relays the signed frames routed through it, and can forge: rewrite the
`srcId` of frames it relays (`tamper`), and inject forged or replayed frames on its links (`inject`).
Only tests use it; the shipped binaries have no forging option.

Frames (docs/protocol.md, "Signed overlay messages"): S<hops>:<certificate>:<signature>:<body>, the body
{"srcId","dstId","id","at","data"} signed as "browsercloud-overlay/1\\n" + body."""
import json
import re
import threading
import time

from websockets.sync.client import connect

from harness import Peer

LINK_SUBPROTOCOL = "bc-link.v1"
SPACE = 1 << 48
FRAME = re.compile(r'^S([0-9]{1,6}):([0-9a-f]{220}):([0-9a-f]{128}):(.*)$', re.S)
HEAD = re.compile(r'^\{"srcId":"([0-9a-f]{12})","dstId":"([0-9a-f]{12})","id":"([0-9A-Za-z_.-]{1,64})","at":(0|[1-9][0-9]*),"data":')


def parse(frame):
    """(hops, certificate, signature, body, srcId, dstId, id) of an S frame, or None."""
    f = FRAME.match(frame)
    if not f:
        return None
    h = HEAD.match(f.group(4))
    if not h:
        return None
    return int(f.group(1)), f.group(2), f.group(3), f.group(4), h.group(1), h.group(2), h.group(3)


def body(src, dst, msg_id, data, at=None):
    at = int(time.time() * 1000) if at is None else at
    return f'{{"srcId":"{src}","dstId":"{dst}","id":"{msg_id}","at":{at},"data":{json.dumps(data, separators=(",", ":"), sort_keys=True)}}}'


def in_open_closed(x, a, b):
    """x in (a, b] on the ring (a == b: the whole ring)."""
    return a != b and 0 < (x - a) % SPACE <= (b - a) % SPACE or a == b


def in_open(x, a, b):
    return 0 < (x - a) % SPACE < (b - a) % SPACE if a != b else x != a


class ForgingPeer:
    def __init__(self, server, key=None):
        """Registers fresh with `key` (default: a new one)."""
        self.peer = Peer(server, key=key)
        self.peer_id = self.peer.register()
        self.certificate = self.peer.certificate
        self.links = {}                 # peerId -> websocket
        self.lock = threading.Lock()
        self.received = []              # S frames delivered to this peer (as they arrived)
        self.relayed = 0                # frames relayed honestly
        self.tampered = 0               # frames relayed with a rewritten srcId
        self.tamper = False
        self.wanted = set()             # peers to link to although the ring does not need them (`want`)
        self.stopped = False
        threading.Thread(target=self._server_loop, daemon=True).start()

    # MARK: forging

    def sign(self, text):
        return self.peer.key.sign(b"browsercloud-overlay/1\n" + text.encode()).hex()

    def frame(self, text, certificate=None, signature=None, hops=0):
        """An S frame of `text` (a body), signed by this peer unless `signature` is given."""
        return f"S{hops}:{certificate or self.certificate}:{signature or self.sign(text)}:{text}"

    def inject(self, link, frame):
        """Sends `frame` as it is on the link to `link`."""
        self.links[link].send(frame)

    def try_inject(self, link, frame):
        """Sends `frame` on the link to `link` when there is one; whether it went out. (A link can close
        between a test seeing it and sending on it, when the two ends settle duplicates or a link loop ends;
        this peer's loop dials a wanted peer again, so a caller polls with wait_until.)"""
        with self.lock:
            ws = self.links.get(link)
        if ws is None:
            return False
        try:
            ws.send(frame)
            return True
        except Exception:
            return False

    # MARK: the peer

    def want(self, peer_id):
        """Links to `peer_id` too (a WebRTC offer makes a native peer answer "dial me" whatever the ring)."""
        with self.lock:
            self.wanted.add(peer_id)

    def needed(self):
        return (set(self.peer.successors) | {v for v in self.peer.fingers.values() if v} | self.wanted) - {self.peer_id}

    def ready(self):
        """Whether this peer has a link to every peer it needs."""
        with self.lock:
            return self.needed() <= set(self.links)

    def _server_loop(self):
        asked = 0.0
        while not self.stopped:
            if time.monotonic() - asked > 1.0:
                # Peers this one needs but has no link to: a WebRTC offer makes a native peer answer "dial me".
                asked = time.monotonic()
                with self.lock:
                    missing = self.needed() - set(self.links)
                for p in sorted(missing):
                    self.peer.send({"type": "signal", "to": p, "intentId": f"f{int(asked * 1000)}", "signal": {"type": "offer", "sdp": ""}})
            try:
                m = self.peer.recv(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:
                return
            if m.get("type") == "signal" and m.get("signal", {}).get("type") == "dial-me":
                threading.Thread(target=self._dial, args=(m["from"], m["signal"]["url"], m["signal"]["nonce"]), daemon=True).start()

    def _dial(self, peer_id, url, nonce):
        with self.lock:
            if peer_id in self.links:
                return
        try:
            ws = connect(url, subprotocols=[LINK_SUBPROTOCOL], open_timeout=5, max_size=None)
            ws.send("H" + json.dumps({"peerId": self.peer_id, "nonce": nonce}))
            welcome = ws.recv(timeout=5)
        except Exception:
            return
        if not welcome.startswith("W"):
            ws.close()
            return
        with self.lock:
            if peer_id in self.links:
                ws.close()
                return
            self.links[peer_id] = ws
        threading.Thread(target=self._link_loop, args=(peer_id, ws), daemon=True).start()

    def _link_loop(self, peer_id, ws):
        try:
            for text in ws:
                if text == "X":
                    ws.send("K")   # keep every link: this peer relays
                elif isinstance(text, str) and text.startswith("S"):
                    self._on_frame(text)
        except Exception:
            pass
        with self.lock:
            if self.links.get(peer_id) is ws:
                del self.links[peer_id]

    def _on_frame(self, text):
        f = parse(text)
        if f is None:
            return
        hops, certificate, signature, text_body, src, dst, _ = f
        nxt = self._route(dst)
        if nxt is None:
            with self.lock:
                self.received.append(text)
            return
        if self.tamper:
            # On the route, claim the message came from this peer (or another): the body's srcId changes, the
            # certificate and signature stay.
            forged_src = self.peer_id if src != self.peer_id else "000000000001"
            text_body = text_body.replace(f'"srcId":"{src}"', f'"srcId":"{forged_src}"', 1)
            with self.lock:
                self.tampered += 1
        else:
            with self.lock:
                self.relayed += 1
        try:
            self.links[nxt].send(f"S{hops + 1}:{certificate}:{signature}:{text_body}")
        except Exception:
            pass

    def _route(self, dst_hex):
        """The next hop for dst (the native peers' rule, Sources/Ring/Routing.swift), or None to deliver here."""
        me, dst = int(self.peer_id, 16), int(dst_hex, 16)
        p = self.peer
        if p.predecessor and in_open_closed(dst, int(p.predecessor, 16), me):
            return None
        with self.lock:
            linked = set(self.links)
        candidates = [c for c in self.needed() if c in linked]
        live = next((s for s in p.successors if s in linked), None)
        if live and p.successors[0] == live and in_open_closed(dst, me, int(live, 16)):
            return live
        inside = [c for c in candidates if in_open(int(c, 16), me, dst)]
        if inside:
            return max(inside, key=lambda c: (int(c, 16) - me) % SPACE)
        return live

    def close_quietly(self):
        """Goes away without a leave (the server leases its ID to its key); its key and certificate stay
        usable for `frame`."""
        self.stopped = True
        for ws in list(self.links.values()):
            ws.close()
        self.peer.close()

    def close(self):
        self.stopped = True
        try:
            self.peer.send({"type": "leave"})
        except Exception:
            pass
        for ws in list(self.links.values()):
            ws.close()
        self.peer.close()
