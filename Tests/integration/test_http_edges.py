"""HTTP edges libwebsockets would drop without an answer: a NUL byte in the request target (400) and
request heads over --max-header-bytes (431), on fresh and reused connections."""
import json
import socket

import pytest

from harness import Peer, SUBPROTOCOL
from rawclients import http_exchange, read_response, responses, get


@pytest.mark.parametrize("target", ["/index.html%00.js", "/api/network?after=%00", "/api/peers/%00", "/%00",
                                    "/api/stats?x=1&y=%00z"])
def test_a_nul_byte_in_the_request_target_gets_400(server, target):
    got = responses(http_exchange(server, get(target)))
    assert len(got) == 1, got
    status, headers, body = got[0]
    assert status == 400 and headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert json.loads(body)["error"] == "bad-request"
    assert server.stats()["httpBadRequests"] == 1
    assert server.get("/healthz").status_code == 200


def test_a_nul_byte_after_good_requests_on_one_connection(server):
    """The check follows keep-alive connections: the third request on the connection is the bad one."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        answers = []
        for path in ["/healthz", "/api/stats", "/api/network?after=%00"]:
            s.sendall(get(path))
            answers.append(read_response(s)[0])
        assert answers == [200, 200, 400]
        assert s.recv(100) == b""   # closed after the 400
    finally:
        s.close()
    assert server.stats()["httpBadRequests"] == 1


def padded_request(total, path="/healthz", extra=""):
    """A GET whose head (request line and headers, blank line included) is exactly `total` bytes."""
    base = get(path, extra + "X-Pad: \r\n")
    return get(path, extra + "X-Pad: " + "a" * (total - len(base)) + "\r\n")


def test_headers_over_the_limit_get_431_and_at_the_limit_pass(start_server):
    server = start_server("--max-header-bytes", "2048")
    assert len(padded_request(2048)) == 2048
    ok = responses(http_exchange(server, padded_request(2048, extra="Connection: close\r\n")))
    assert ok[0][0] == 200
    for pieces in [1, 7]:
        got = responses(http_exchange(server, padded_request(2049), pieces=pieces))
        assert len(got) == 1 and got[0][0] == 431, got
        assert got[0][1]["content-type"] == "application/json"
        body = json.loads(got[0][2])
        assert body["error"] == "headers-too-large" and "2048" in body["message"]
    big = responses(http_exchange(server, padded_request(200_000)))
    assert big[0][0] == 431
    stats = server.stats()
    assert stats["httpHeadersTooLarge"] == 3 and stats["httpBadRequests"] == 0
    assert "browsercloud_http_headers_too_large_total 3" in server.get("/metrics").text.splitlines()
    assert not [ln for ln in server.stderr_lines if " E: " in ln or "error" in ln.split(" ")[1:2]]


def test_default_header_limit_is_4096_for_http_and_websocket_upgrades(server):
    assert responses(http_exchange(server, padded_request(4096, extra="Connection: close\r\n")))[0][0] == 200
    assert responses(http_exchange(server, padded_request(5000)))[0][0] == 431
    from websockets.sync.client import connect
    from websockets.exceptions import InvalidStatus
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws, subprotocols=[SUBPROTOCOL], additional_headers={"X-Big": "b" * 5000}, open_timeout=10)
    assert refused.value.response.status_code == 431
    assert server.stats()["httpHeadersTooLarge"] == 2
    p = Peer(server)
    try:
        assert p.register()
    finally:
        p.close()


# --- Why peers leave ---------------------------------------------------------------------------------
