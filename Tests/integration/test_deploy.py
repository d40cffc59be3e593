"""The deployment files for real: deploy/nginx.conf runs in Debian's nginx on loopback in front of the
server (TLS terminated by nginx, WebSocket upgrade, Server-Sent Events, redirect from plain http),
and peers register and relay through it; deploy/browsercloud.service passes `systemd-analyze verify`."""
import asyncio
import json
import pathlib
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import requests
from websockets.asyncio.client import connect as aconnect

from harness import BIN, ROOT, SUBPROTOCOL, Server, make_pki, register_async

DEPLOY = ROOT / "deploy"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("nginx-pki"))


@pytest.fixture(scope="module")
def proxied(pki, tmp_path_factory):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not pathlib.Path(nginx).exists():
        pytest.fail(f"nginx is missing: no {nginx} (scripts/install-deps.sh --test installs the nginx package)", pytrace=False)
    server = Server(tmp_path_factory.mktemp("upstream"))
    prefix = tmp_path_factory.mktemp("nginx")
    tls_port, http_port = free_port(), free_port()
    conf = (DEPLOY / "nginx.conf").read_text()
    # Only loopback, a test certificate and files under the test's directory.
    for old, new in [
        ("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("server 127.0.0.1:9000;", f"server 127.0.0.1:{server.port};"),
        ("/etc/letsencrypt/live/rendezvous.example.org/fullchain.pem", str(pki / "server.pem")),
        ("/etc/letsencrypt/live/rendezvous.example.org/privkey.pem", str(pki / "server.key")),
        ("worker_processes auto;", f"worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;"),
        ("http {", f"http {{\n    access_log off;\n    client_body_temp_path {prefix}/body;\n    proxy_temp_path {prefix}/proxy;\n"
                   f"    fastcgi_temp_path {prefix}/fastcgi;\n    uwsgi_temp_path {prefix}/uwsgi;\n    scgi_temp_path {prefix}/scgi;"),
    ]:
        assert old in conf, f"deploy/nginx.conf no longer has {old!r}"
        conf = conf.replace(old, new, 1)
    (prefix / "nginx.conf").write_text(conf)
    check = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"), "-g", "daemon off;"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", tls_port)) == 0:
                break
        time.sleep(0.05)
    yield {"server": server, "tls": tls_port, "http": http_port, "ca": str(pki / "ca.pem")}
    proc.terminate()
    proc.wait(10)
    server.stop()


def test_https_through_nginx_and_the_redirect(proxied):
    r = requests.get(f"https://localhost:{proxied['tls']}/healthz", verify=proxied["ca"], timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = requests.get(f"http://127.0.0.1:{proxied['http']}/api/stats", allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"].startswith("https://")


async def wss(url, ca):
    """A wss client on asyncio: one thread owns the TLS connection. (The threaded client of
    websockets.sync reads on a background thread while the caller writes; two threads on one OpenSSL
    connection lose the handshake request about once in a hundred TLS 1.3 connections, when nginx's
    post-handshake session tickets arrive during the write: nginx then waits for a request that never
    comes.)"""
    return await asyncio.wait_for(aconnect(url, subprotocols=[SUBPROTOCOL], ssl=ssl.create_default_context(cafile=ca),
                                           open_timeout=10, max_queue=None), 15)


async def registered(ws):
    m = await register_async(ws)
    assert m["type"] == "registered", m
    return m["peerId"]


def test_peers_register_and_relay_over_wss_through_nginx(proxied):
    async def scenario():
        url = f"wss://localhost:{proxied['tls']}/"
        async with await wss(url, proxied["ca"]) as a, await wss(url, proxied["ca"]) as b:
            ids = [await registered(a), await registered(b)]
            await a.send(json.dumps({"type": "signal", "to": ids[1], "intentId": "via-nginx", "signal": {"type": "offer", "sdp": "v=0"}}))
            while True:
                m = json.loads(await asyncio.wait_for(b.recv(), 10))
                if m["type"] == "signal":
                    assert m["from"] == ids[0] and m["signal"] == {"type": "offer", "sdp": "v=0"}
                    return
    asyncio.run(scenario())


def test_event_stream_is_not_buffered_by_nginx(proxied):
    with requests.get(f"https://localhost:{proxied['tls']}/api/events", verify=proxied["ca"], stream=True, timeout=10) as events:
        assert events.headers["Content-Type"].startswith("text/event-stream")
        lines = events.iter_lines(decode_unicode=True)

        async def scenario():
            async with await wss(f"wss://localhost:{proxied['tls']}/", proxied["ca"]) as ws:
                await registered(ws)
                # The join event comes through nginx while the peer is still connected (the stream's own
                # read timeout, 10 s, bounds each wait).
                while await asyncio.to_thread(next, lines) != "event: join":
                    pass
        asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.fail("systemd-analyze is missing (scripts/install-deps.sh --test installs the systemd package)", pytrace=False)
    unit = (DEPLOY / "browsercloud.service").read_text().replace("/usr/local/bin/browsercloud", BIN)
    path = tmp_path / "browsercloud.service"
    path.write_text(unit)
    r = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "browsercloud.service" not in r.stderr, r.stderr
