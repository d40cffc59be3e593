"""Every error code and every limit, against the real server. Errors never take the connection down
unless the client is abusive, and never affect other peers."""
import json
import socket
import time

import pytest
import requests
import websockets
from websockets.sync.client import connect

from harness import Peer, SUBPROTOCOL, flood_slow_consumer, wait_until
from rawclients import register_raw


def still_works(p):
    """The connection survived: a request that needs an answer gets one."""
    p.send({"type": "signal", "to": "000000000001", "intentId": "probe", "signal": {}})
    err = p.expect(lambda m: m.get("type") == "error" and m["code"] in ("unknown-peer", "not-registered"))
    return err is not None


@pytest.mark.parametrize("frame,code", [
    ("not json", "bad-json"),
    ("[1,2,3]", "bad-json"),
    ('{"type":"teleport"}', "unknown-type"),
    ('{"no":"type"}', "bad-field"),
    ('{"type":7}', "bad-field"),
    ('{"type":"signal","to":"XYZ","intentId":"a","signal":{}}', "bad-field"),
    ('{"type":"signal","to":"00000000000","intentId":"a","signal":{}}', "bad-field"),
    ('{"type":"signal","to":"000000000001","intentId":"' + "x" * 65 + '","signal":{}}', "bad-field"),
    ('{"type":"report","stats":{"cpu":-3}}', "bad-field"),
    ('{"type":"report","stats":{"cpu":1e400}}', "bad-json"),
    ('{"type":"report","stats":{"cpu":1e20}}', "bad-field"),
    ('{"type":"register","peerId":"000000000001"}', "bad-field"),
    ('{"type":"register","peerId":"000000000001","token":"abc"}', "bad-field"),
    ('{"type":"register","publicKey":"' + "ab" * 32 + '","signature":"' + "cd" * 64 + '"}', "bad-signature"),
    ('{"type":"signal","to":"000000000001","intentId":"a","signal":{},"type":"leave"}', "bad-json"),
    ('{"type":"leave","type":"signal","to":"000000000001","intentId":"a","signal":{}}', "bad-json"),
    ('{"type":"signal","to":"000000000001","intentId":"a' + "\u0301" * 64 + '","signal":{}}', "bad-field"),
])
def test_malformed_messages_get_clear_errors(server, peers, frame, code):
    p = Peer(server); peers.append(p)
    if code != "bad-signature":
        p.register()
    p.send(frame)
    err = p.expect_error(code)
    assert err["message"]
    assert still_works(p)
    assert server.stats()["errors"][code] >= 1


def test_not_registered_and_already_registered(server, peers):
    p = Peer(server); peers.append(p)
    p.send({"type": "signal", "to": "000000000001", "intentId": "a", "signal": {}})
    p.expect_error("not-registered")
    p.send({"type": "report", "stats": {"x": 1}})
    p.expect_error("not-registered")
    p.send({"type": "leave"})
    p.expect_error("not-registered")
    p.register()
    p.send(p.register_message())
    p.expect_error("already-registered")
    p.send({"type": "report", "stats": {"tasksDone": 3}})
    wait_until(lambda: server.get(f"/api/peers/{p.peer_id}").json()["stats"] == {"tasksDone": 3}, message="report")


def test_message_size_limit(start_server, peers):
    server = start_server("--max-message-bytes", "2048")
    p = Peer(server); peers.append(p)
    p.register()
    other = Peer(server); peers.append(other)
    other.register()
    p.send(json.dumps({"type": "signal", "to": other.peer_id, "intentId": "a", "signal": {"sdp": "x" * 4000}}))
    err = p.expect_error("too-large")
    assert "2048" in err["message"]
    # Just under the limit still goes through.
    p.send(json.dumps({"type": "signal", "to": other.peer_id, "intentId": "a", "signal": {"sdp": "y" * 1900}}))
    assert other.expect(lambda m: m["type"] == "signal")["signal"]["sdp"] == "y" * 1900
    assert server.stats()["errors"]["too-large"] == 1


def test_binary_frames_are_rejected(server, peers):
    p = Peer(server); peers.append(p)
    p.register()
    p.send(b"\x00\x01binary")
    p.expect_error("binary-frame")
    assert still_works(p)


def test_rate_limit_and_abusive_disconnect(start_server, peers):
    server = start_server("--rate-limit", "5", "--rate-burst", "10", "--abusive-after", "200")
    p = Peer(server); peers.append(p)
    p.register()
    for _ in range(30):
        p.send({"type": "report", "stats": {"x": 1}})
    p.expect_error("rate-limited")
    stats = server.stats()
    # 30 sent, 10 admitted by the burst: about 20 dropped, but only one error per second is sent.
    assert stats["rateLimitedMessages"] >= 19 and stats["errors"]["rate-limited"] == 1
    # Keep flooding: after 200 dropped messages in a row the server closes the connection.
    for _ in range(400):
        try:
            p.send({"type": "report", "stats": {"x": 1}})
        except websockets.ConnectionClosed:
            break
    wait_until(lambda: server.stats()["abusiveDisconnects"] == 1, message="abusive disconnect")
    wait_until(lambda: server.stats()["connectionsOpen"] == 0, message="closed")
    assert server.stats()["peersOnline"] == 0


def test_max_peers(start_server, peers):
    server = start_server("--max-peers", "3")
    for _ in range(3):
        p = Peer(server); peers.append(p)
        p.register()
    extra = Peer(server); peers.append(extra)
    extra.send(extra.register_message())
    extra.expect_error("server-full")
    assert still_works(extra)
    peers[0].close()
    wait_until(lambda: server.stats()["peersOnline"] == 2, message="leave")
    assert extra.register()


def test_origin_allow_list(start_server, peers):
    server = start_server("--allowed-origins", "https://good.example,http://localhost:9000")
    ok = Peer(server, origin="https://good.example"); peers.append(ok)
    assert ok.register()
    with pytest.raises(Exception):
        connect(server.ws, subprotocols=[SUBPROTOCOL], origin="https://evil.example", open_timeout=5)
    with pytest.raises(Exception):
        connect(server.ws, subprotocols=[SUBPROTOCOL], open_timeout=5)  # no Origin header
    assert server.stats()["originRejections"] == 2


def test_slow_consumer_is_disconnected(start_server, peers):
    server = start_server("--send-queue-bytes", "65536", "--rate-limit", "100000", "--rate-burst", "100000")
    slow, fast = flood_slow_consumer(server, peers)
    wait_until(lambda: server.stats()["slowConsumerDisconnects"] == 1, message="slow consumer counted")
    wait_until(lambda: server.stats()["peersOnline"] == 1, message="slow peer left")
    assert still_works(fast)


def test_connection_stays_usable_after_many_errors(server, peers):
    p = Peer(server); peers.append(p)
    other = Peer(server); peers.append(other)
    p.register(); other.register()
    for i in range(50):
        p.send("{broken" + str(i))
    for _ in range(50):
        p.expect_error("bad-json")
    p.send({"type": "signal", "to": other.peer_id, "intentId": "ok", "signal": {"a": 1}})
    assert other.expect(lambda m: m["type"] == "signal")["signal"] == {"a": 1}


def test_unknown_subprotocol_is_refused(server):
    with pytest.raises(Exception):
        connect(server.ws, subprotocols=["something-else"], open_timeout=5)
    assert server.alive()


def test_dead_connection_counts_as_leave(start_server):
    """A client that stops answering pings (half-open) is removed within the idle timeout."""
    server = start_server("--ping-after", "1", "--idle-timeout", "3")
    s = register_raw(server)
    wait_until(lambda: server.stats()["peersOnline"] == 1, message="registered")
    # Never read again, never pong.
    wait_until(lambda: server.stats()["peersOnline"] == 0, timeout=8, message="idle hangup")
    assert server.stats()["leaves"] == 1
    s.close()


def test_idle_but_alive_connection_is_kept(start_server, peers):
    """A quiet client that answers pings (as browsers do) stays registered past the idle timeout."""
    server = start_server("--ping-after", "1", "--idle-timeout", "3")
    a = Peer(server); peers.append(a)
    a.register()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        a.pump(0.5)  # reading lets the client library answer the server's pings
    assert server.stats()["peersOnline"] == 1 and server.stats()["leaves"] == 0
    assert still_works(a)


def test_connection_limit(start_server, peers):
    """--max-connections counts every accepted connection: WebSockets, HTTP and event streams."""
    server = start_server("--max-connections", "2")
    for _ in range(2):
        p = Peer(server); peers.append(p)
        p.register()
    with pytest.raises(Exception):
        connect(server.ws, subprotocols=[SUBPROTOCOL], open_timeout=5)
    with pytest.raises(Exception):
        requests.get(server.http + "/healthz", timeout=5)
    peers[0].close()
    peers[1].close()
    wait_until(lambda: _healthz_ok(server), message="slots freed")
    assert server.stats()["connectionLimitRejections"] >= 2


def _healthz_ok(server):
    try:
        return server.get("/healthz").status_code == 200
    except requests.RequestException:
        return False


def test_capabilities_size_limit(start_server, peers):
    server = start_server("--max-capabilities-bytes", "100")
    p = Peer(server); peers.append(p)
    p.send(p.register_message(capabilities={"blob": "x" * 200}))
    assert "100" in p.expect_error("too-large")["message"]
    assert p.register(capabilities={"workers": 2}) and server.stats()["peersOnline"] == 1


def test_permessage_deflate(start_server, peers):
    """With --permessage-deflate the server negotiates RFC 7692 compression; large relayed messages survive."""
    server = start_server("--permessage-deflate")
    a = Peer(server, compression="deflate"); peers.append(a)
    b = Peer(server, compression="deflate"); peers.append(b)
    assert "permessage-deflate" in (a.ws.response.headers.get("Sec-WebSocket-Extensions") or "")
    a.register(); b.register()
    sdp = "".join(f"a=candidate:{i} 1 udp {i * 7919 % 100000} 10.0.0.{i % 250} {40000 + i} typ host\r\n" for i in range(600))
    for i in range(20):
        a.send({"type": "signal", "to": b.peer_id, "intentId": f"d{i}", "signal": {"type": "offer", "sdp": sdp}})
    for i in range(20):
        got = b.expect(lambda m: m["type"] == "signal")
        assert got["intentId"] == f"d{i}" and got["signal"]["sdp"] == sdp
    plain = Peer(server, compression=None); peers.append(plain)
    assert plain.register()


def test_connect_method_is_closed(server):
    """lws turns CONNECT into a raw socket; the server closes it instead of holding it forever."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n")
    s.settimeout(5)
    assert s.recv(100) == b""   # closed, not left hanging
    s.close()
    wait_until(lambda: server.stats()["socketsOpen"] <= 1, message="raw socket gone")


def test_bind_to_foreign_address_fails(tmp_path):
    import subprocess
    from harness import BIN
    r = subprocess.run([BIN, "serve", "--host", "192.0.2.1", "--port", "0", "--secret-file", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "cannot listen" in r.stderr
