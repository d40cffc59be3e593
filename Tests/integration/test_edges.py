"""Edges found by attacking the server, part one: who sees peers' addresses, why peers leave, closed
event streams, and error-free logs (HTTP edges: test_http_edges.py; floods and analytics load:
test_abuse.py)."""
import socket

import requests

from harness import Peer, flood_slow_consumer, wait_until
from native import NativePeer
from rawclients import EventStream, register_raw

ADMIN = "admin-token-for-tests-0123456789"


def test_listening_addresses_go_only_to_the_admin(start_server):
    server = start_server("--admin-token", ADMIN)
    stream = EventStream(server)
    wait_until(lambda: server.stats()["eventSubscribers"] == 1, message="subscribed")
    native = NativePeer(server.ws)
    try:
        peer_id = native.wait_registered()
        url = native.url
        assert url.startswith("ws://127.0.0.1:")
        public = {"runtimes": ["raytrace", "wasm"], "workers": 1, "transports": ["websocket"]}
        admin = {"Authorization": f"Bearer {ADMIN}"}
        wrong = {"Authorization": "Bearer wrong-token-0000000000000"}
        wait_until(lambda: any(n == "join" for n, _ in stream.events()), message="join event")

        for headers in [{}, wrong, {"Authorization": "Basic dXNlcjpwYXNz"}]:
            for path in ["/api/network", "/api/network?limit=1", f"/api/peers/{peer_id}"]:
                r = server.get(path, headers=headers)
                assert r.status_code == 200, (path, r.text)
                body = r.json()
                entry = body["peers"][0] if "peers" in body else body
                assert entry["peerId"] == peer_id and entry["capabilities"] == public, (path, headers)
                assert url not in r.text and "url" not in r.text
                assert "authorization" in r.headers.get("vary", "").lower()
        for path in ["/api/network", f"/api/peers/{peer_id}"]:
            r = server.get(path, headers=admin)
            entry = r.json()["peers"][0] if path == "/api/network" else r.json()
            assert entry["capabilities"] == {**public, "url": url}
        for path in ["/api/stats", "/metrics", "/healthz"]:
            assert url not in server.get(path).text
        assert url not in stream.text() and '"url"' not in stream.text()
    finally:
        native.stop()
        stream.close()


def test_addresses_hidden_when_admin_routes_are_off(server, peers):
    p = Peer(server); peers.append(p)
    p.register(capabilities={"workers": 3, "url": "ws://10.1.2.3:9100/", "host": "10.1.2.3"})
    for headers in [{}, {"Authorization": "Bearer anything-at-all-0000000"}]:
        assert server.get(f"/api/peers/{p.peer_id}", headers=headers).json()["capabilities"] == {"workers": 3}
        assert server.network()["peers"][0]["capabilities"] == {"workers": 3}


# --- Requests libwebsockets cannot parse ---------------------------------------------------------------


LEAVE_REASONS = ["leave", "closed", "idle-timeout", "slow-consumer", "rate-limited", "evicted", "closed-by-server", "instance-gone"]


def leaves(stream):
    return [(d["peerId"], d["reason"]) for n, d in stream.events() if n == "leave"]


def test_every_leave_has_its_reason_in_events_stats_metrics_and_log(start_server, peers):
    """The admin's event stream carries every leave's reason; an anonymous one the same leaves without
    reasons (docs/api.md, "Who sees what")."""
    server = start_server("--admin-token", ADMIN, "--ping-after", "1", "--idle-timeout", "2", "--rate-limit", "5",
                          "--rate-burst", "10", "--abusive-after", "20", "--log-level", "info")
    stream = EventStream(server, headers=f"Authorization: Bearer {ADMIN}\r\n")
    anonymous = EventStream(server, headers="Authorization: Bearer wrong-token-0000000000000\r\n")
    wait_until(lambda: server.stats()["eventSubscribers"] == 2, message="subscribed")
    expected = []

    def expect(peer_id, reason):
        expected.append((peer_id, reason))
        wait_until(lambda: leaves(stream) == expected, timeout=10, message=f"leave {reason}: {leaves(stream)}")

    p = Peer(server); peers.append(p)
    p.register()
    p.send({"type": "leave"})
    expect(p.peer_id, "leave")

    p = Peer(server); peers.append(p)
    p.register()
    p.close()
    expect(p.peer_id, "closed")

    p = Peer(server); peers.append(p)
    p.register()
    assert requests.delete(f"{server.http}/api/peers/{p.peer_id}", headers={"Authorization": f"Bearer {ADMIN}"},
                           timeout=5).status_code == 200
    expect(p.peer_id, "evicted")

    old = Peer(server); peers.append(old)
    old.register()
    new = Peer(server); peers.append(new)
    new.register(peer_id=old.peer_id, key=old.key)
    wait_until(lambda: ("replace", {"peerId": old.peer_id}) in stream.events(), message="replace event")
    assert leaves(stream) == expected            # a replacement is not a leave
    new.send({"type": "leave"})
    expect(new.peer_id, "leave")

    raw = register_raw(server)
    try:
        wait_until(lambda: server.stats()["peersOnline"] == 1, message="raw peer registered")
        idle_id = server.network()["peers"][0]["peerId"]
        expect(idle_id, "idle-timeout")
    finally:
        raw.close()

    p = Peer(server); peers.append(p)
    p.register()
    for _ in range(200):
        try:
            p.send({"type": "report", "stats": {"x": 1}})
        except Exception:
            break
    expect(p.peer_id, "rate-limited")

    counts = dict.fromkeys(LEAVE_REASONS, 0)
    counts.update({"leave": 2, "closed": 1, "evicted": 1, "idle-timeout": 1, "rate-limited": 1})
    stats = server.stats()
    assert stats["leavesByReason"] == counts and stats["leaves"] == 6 and stats["replacements"] == 1
    metrics = server.get("/metrics").text.splitlines()
    for reason, n in counts.items():
        assert f'browsercloud_leaves_by_reason_total{{reason="{reason}"}} {n}' in metrics
    log = "".join(server.stderr_lines)
    for peer_id, reason in expected:
        assert f"peer={peer_id} peers=0 reason={reason} [Rendezvous] leave" in log, (peer_id, reason)
    assert f"peer={old.peer_id} peers=1 [Rendezvous] replaced" in log
    # The anonymous stream saw the same leaves, joins and replacement, and no reason.
    wait_until(lambda: [d for n, d in anonymous.events() if n == "leave"] == [{"peerId": p} for p, _ in expected],
               message=f"anonymous leaves: {anonymous.events()}")
    assert [n for n, _ in anonymous.events() if n != "update"] == [n for n, _ in stream.events() if n != "update"]
    assert "reason" not in anonymous.text()
    stream.close()
    anonymous.close()


def test_slow_consumer_leave_reason(start_server, peers):
    server = start_server("--admin-token", ADMIN, "--send-queue-bytes", "65536", "--rate-limit", "100000", "--rate-burst", "100000")
    stream = EventStream(server, headers=f"Authorization: Bearer {ADMIN}\r\n")
    wait_until(lambda: server.stats()["eventSubscribers"] == 1, message="subscribed")
    slow, _ = flood_slow_consumer(server, peers)
    wait_until(lambda: leaves(stream) == [(slow.peer_id, "slow-consumer")], message="slow-consumer leave")
    assert server.stats()["leavesByReason"]["slow-consumer"] == 1
    stream.close()


# --- Closed event streams ----------------------------------------------------------------------------

def test_a_closed_event_stream_is_noticed_when_its_socket_closes(start_server):
    # The keep-alive comment comes every 60 s here: only the close itself can make the count drop.
    server = start_server("--event-keepalive", "60")
    streams = [EventStream(server) for _ in range(3)]
    wait_until(lambda: server.stats()["eventSubscribers"] == 3, message="subscribed")
    streams[0].close()
    wait_until(lambda: server.stats()["eventSubscribers"] == 2, timeout=5, message="first close noticed")
    # A client that half-closes (shutdown of its sending side) has gone as well.
    streams[1].sock.shutdown(socket.SHUT_WR)
    wait_until(lambda: server.stats()["eventSubscribers"] == 1, timeout=5, message="half-close noticed")
    assert "browsercloud_event_subscribers 1" in server.get("/metrics").text.splitlines()
    streams[2].close()
    wait_until(lambda: server.stats()["eventSubscribers"] == 0, timeout=5, message="last close noticed")
    # The streams still open get events.
    late = EventStream(server)
    p = Peer(server)
    try:
        p.register()
        wait_until(lambda: any(n == "join" for n, _ in late.events()), message="join on a new stream")
    finally:
        p.close()
        late.close()


# --- Quiet logs ----------------------------------------------------------------------------------------


def error_lines(server):
    """lws's own format ("E: …", "W: …") and swift-log's ("<time> error …", "<time> warning …")."""
    return [ln for ln in server.stderr_lines
            if " E: " in ln or " W: " in ln or ln.split(" ")[1:2] in (["error"], ["warning"], ["critical"])]


def test_normal_operation_logs_no_errors(start_server, peers):
    server = start_server("--log-level", "info")
    page = server.get("/visualizer.html")
    assert page.status_code == 200 and "visualizer.js" in page.text
    for path in ["/visualizer.js", "/api/network?limit=1000", "/api/stats", "/index.html", "/healthz", "/metrics"]:
        assert server.get(path).status_code == 200, path
    streams = [EventStream(server) for _ in range(2)]
    wait_until(lambda: server.stats()["eventSubscribers"] == 2, message="subscribed")
    p = Peer(server); peers.append(p)
    p.register()
    q = Peer(server); peers.append(q)
    q.register()
    p.send({"type": "signal", "to": q.peer_id, "intentId": "i", "signal": {"x": 1}})
    q.expect(lambda m: m["type"] == "signal")
    p.close()
    wait_until(lambda: all(sum(n == "leave" for n, _ in s.events()) == 1 for s in streams), message="leave seen")
    for s in streams:
        s.close()
    wait_until(lambda: server.stats()["eventSubscribers"] == 0, message="streams closed")
    assert server.get("/visualizer.html").status_code == 200
    assert any("[Rendezvous] join" in ln for ln in server.stderr_lines)   # info lines do reach stderr
    assert error_lines(server) == []


# --- Floods: pings and steady over-limit traffic -------------------------------------------------------
