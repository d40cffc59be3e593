"""`dial-me` only to addresses the server vouches for (issue 12; docs/protocol.md, "Vouched URLs"): the
server vouches for a peer's `capabilities.url` only when its host is the address the peer's connection
comes from (behind a trusted proxy, the forwarded one), relays it with the peer's signals as `fromUrl`,
and native peers dial no other URL: a dial-me naming any other address is refused and counted, and
nothing connects there. Real server, real native peers, protocol clients and real listeners."""
import socket
import threading

from harness import Peer, wait_until
from native import NativePeer, all_pairs, wait_stable


class Listener:
    """A TCP listener that records every connection it accepts and the first bytes sent on it."""

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.host, self.port = self.sock.getsockname()
        self.url = f"ws://{self.host}:{self.port}/"
        self.connections = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                first = conn.recv(4096)
            except OSError:
                first = b""
            with self.lock:
                self.connections.append(first)
            conn.close()

    def seen(self):
        with self.lock:
            return list(self.connections)

    def close(self):
        self.sock.close()


def dial_me(sender, to, url, nonce):
    signal = {"type": "dial-me", "nonce": nonce}
    if url is not None:
        signal["url"] = url
    sender.send({"type": "signal", "to": to, "intentId": nonce, "signal": signal})


def no_url_error(peer):
    """Whether `peer` got no url-not-vouched: it would have come before the answer to a later request."""
    peer.send({"type": "signal", "to": "000000000001", "intentId": "probe", "signal": {}})
    peer.expect_error("unknown-peer")
    return not [m for m in peer.inbox if m.get("type") == "error" and m.get("code") == "url-not-vouched"]


def test_a_url_that_is_not_the_connections_address_is_not_vouched(server, peers):
    receiver = Peer(server); peers.append(receiver)
    receiver.register()
    cases = {"ws://10.1.2.3:9100/": "not the address", "ws://localhost:9100/": "not an IP literal",
             "ws://u@127.0.0.1:9100/": "user information", "ws://127.0.0.1:9100/?x=1": "query",
             "ws://0.0.0.0:9100/": "not the address", "http://127.0.0.1:9100/": "not a ws://"}
    for url, why in cases.items():
        p = Peer(server); peers.append(p)
        p.register(capabilities={"url": url})       # registered all the same
        error = p.expect_error("url-not-vouched")
        assert why in error["message"], (url, error)
        p.send({"type": "signal", "to": receiver.peer_id, "intentId": "x", "signal": {"type": "dial-me", "url": url, "nonce": "n"}})
        relayed = receiver.expect(lambda m: m.get("type") == "signal" and m["from"] == p.peer_id)
        assert "fromUrl" not in relayed and relayed["signal"]["url"] == url
    honest = Peer(server); peers.append(honest)
    honest.register(capabilities={"url": "ws://127.0.0.1:9100/"})
    honest.send({"type": "signal", "to": receiver.peer_id, "intentId": "y", "signal": {"type": "offer", "sdp": "v=0"}})
    relayed = receiver.expect(lambda m: m.get("type") == "signal" and m["from"] == honest.peer_id)
    assert relayed["fromUrl"] == "ws://127.0.0.1:9100/"
    assert no_url_error(honest)
    assert server.stats()["errors"]["url-not-vouched"] == len(cases)


def test_dial_me_to_an_address_the_target_did_not_register_is_refused_and_counted(server, peers):
    native = NativePeer(server.ws)
    registered_at = Listener("127.0.0.1")     # the address the sender registers (and vouched for)
    elsewhere = Listener("127.0.0.2")         # another loopback address: what a dial-me must not reach
    try:
        target = native.wait_registered()
        sender = Peer(server); peers.append(sender)
        sender.register(capabilities={"url": registered_at.url})
        unvouched = Peer(server); peers.append(unvouched)
        unvouched.register()
        # The sender's vouched URL is registered_at.url: a dial-me naming anything else is refused.
        dial_me(sender, target, elsewhere.url, "n1")
        dial_me(sender, target, f"ws://127.0.0.1:{elsewhere.port}/", "n2")
        dial_me(sender, target, None, "n3")
        dial_me(unvouched, target, elsewhere.url, "n4")        # no vouched URL at all
        wait_until(lambda: len([e for e in native.of("error") if e["code"] == "dial-refused"]) == 4, message="4 refusals")
        assert native.state()["dialMeRefused"] == 4
        # The same peer naming its vouched URL is dialled: the listener sees the link handshake. Dials go
        # out in the order the signals came, so anything sent to `elsewhere` would have been sent before.
        dial_me(sender, target, registered_at.url, "n5")
        wait_until(lambda: registered_at.seen(), message="the vouched URL dialled")
        assert b"bc-link.v1" in registered_at.seen()[0]
        assert elsewhere.seen() == []
        assert native.state()["dialMeRefused"] == 4
    finally:
        native.stop()
        registered_at.close()
        elsewhere.close()


def test_a_native_peer_without_a_vouched_url_still_links(start_server):
    """B advertises an address it does not connect from: the server tells it so, A refuses B's dial-me,
    but B dials A's vouched URL when A asks, and every pair routes."""
    server = start_server()
    a = NativePeer(server.ws)
    b = NativePeer(server.ws, "--advertise", "ws://192.0.2.1:9100/")
    try:
        a.wait_registered()
        b.wait_registered()
        wait_until(lambda: any(e["code"] == "url-not-vouched" for e in b.of("error")), message="url-not-vouched")
        wait_stable(server, [a, b], timeout=60)
        delivered, expected, _ = all_pairs([a, b])
        assert delivered == expected == 2
        assert not any(e["code"] == "url-not-vouched" for e in a.of("error"))
    finally:
        a.stop()
        b.stop()


def test_only_a_trusted_proxy_forwards_the_address_that_vouches(start_server, peers):
    trusting = start_server("--trusted-proxies", "127.0.0.1")
    forwarded = {"X-Forwarded-For": "192.0.2.7"}
    p = Peer(trusting, additional_headers=forwarded); peers.append(p)
    p.register(capabilities={"url": "ws://192.0.2.7:9100/"})      # the forwarded address vouches
    q = Peer(trusting, additional_headers=forwarded); peers.append(q)
    q.register(capabilities={"url": "ws://127.0.0.1:9100/"})      # the proxy's own address does not
    assert "not the address" in q.expect_error("url-not-vouched")["message"]
    p.send({"type": "signal", "to": q.peer_id, "intentId": "t", "signal": {"type": "offer", "sdp": "v=0"}})
    assert q.expect(lambda m: m.get("type") == "signal")["fromUrl"] == "ws://192.0.2.7:9100/"
    assert no_url_error(p)

    plain = start_server()
    r = Peer(plain, additional_headers={"X-Forwarded-For": "127.0.0.1"}); peers.append(r)
    r.register(capabilities={"url": "ws://127.0.0.1:9100/"})      # a proxy nobody listed: address unknown
    assert "--trusted-proxies" in r.expect_error("url-not-vouched")["message"]
