"""The deployment files for real: deploy/nginx.conf runs in Debian's nginx on loopback in front of the
server (TLS terminated by nginx, WebSocket upgrade, Server-Sent Events, redirect from plain http),
and peers register and relay through it; deploy/browsercloud.service passes `systemd-analyze verify`.
The cluster's files too: deploy/nginx-cluster.conf in front of two `serve --cluster` instances whose
redis-server runs with deploy/redis.conf (peers land on both, signal across them, and survive the death of
one), and deploy/browsercloud@.service instantiated passes `systemd-analyze verify`."""
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

from cluster import REDIS, Redis, instance, wait_available
from harness import BIN, ROOT, SUBPROTOCOL, Server, make_pki, register_async, wait_until

DEPLOY = ROOT / "deploy"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("nginx-pki"))


def start_nginx(name, upstream, pki, prefix):
    """Debian's nginx with deploy/<name> (checked with `nginx -t` first), changed only to listen on loopback,
    use the test certificate and keep its files under `prefix`; `upstream` replaces the file's upstream
    servers, as (old, new) text. Returns the process and the https and http ports."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not pathlib.Path(nginx).exists():
        pytest.fail(f"nginx is missing: no {nginx} (scripts/install-deps.sh --test installs the nginx package)", pytrace=False)
    tls_port, http_port = free_port(), free_port()
    conf = (DEPLOY / name).read_text()
    for old, new in [
        ("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        upstream,
        ("/etc/letsencrypt/live/rendezvous.example.org/fullchain.pem", str(pki / "server.pem")),
        ("/etc/letsencrypt/live/rendezvous.example.org/privkey.pem", str(pki / "server.key")),
        ("worker_processes auto;", f"worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;"),
        ("http {", f"http {{\n    access_log off;\n    client_body_temp_path {prefix}/body;\n    proxy_temp_path {prefix}/proxy;\n"
                   f"    fastcgi_temp_path {prefix}/fastcgi;\n    uwsgi_temp_path {prefix}/uwsgi;\n    scgi_temp_path {prefix}/scgi;"),
    ]:
        assert old in conf, f"deploy/{name} no longer has {old!r}"
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
    return proc, tls_port, http_port


@pytest.fixture(scope="module")
def proxied(pki, tmp_path_factory):
    # As deploy/nginx.conf says: nginx on this machine is the trusted proxy.
    server = Server(tmp_path_factory.mktemp("upstream"), "--trusted-proxies", "127.0.0.1")
    proc, tls_port, http_port = start_nginx("nginx.conf", ("server 127.0.0.1:9000;", f"server 127.0.0.1:{server.port};"),
                                            pki, tmp_path_factory.mktemp("nginx"))
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


async def registered(ws, capabilities=None):
    m = await register_async(ws, capabilities=capabilities)
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


def test_link_urls_are_vouched_with_the_address_nginx_forwards(proxied):
    """Through nginx the server sees nginx's address; with --trusted-proxies it vouches link URLs with the
    client's address from X-Forwarded-For (here loopback too), and relays the vouched URL as fromUrl.
    (Without the setting this fails: X-Forwarded-For from an unlisted proxy leaves the address unknown.)"""
    async def scenario():
        url = f"wss://localhost:{proxied['tls']}/"
        async with await wss(url, proxied["ca"]) as a, await wss(url, proxied["ca"]) as b:
            ids = [await registered(a, {"url": "ws://127.0.0.1:9100/"}), await registered(b)]
            await a.send(json.dumps({"type": "signal", "to": ids[1], "intentId": "v", "signal": {"type": "dial-me", "url": "ws://127.0.0.1:9100/", "nonce": "n"}}))
            while True:
                m = json.loads(await asyncio.wait_for(b.recv(), 10))
                if m["type"] == "signal":
                    assert m["from"] == ids[0] and m["fromUrl"] == "ws://127.0.0.1:9100/", m
                    break
            # a got no url-not-vouched (it would have come before the answer to this).
            await a.send(json.dumps({"type": "signal", "to": "000000000001", "intentId": "p", "signal": {}}))
            while True:
                m = json.loads(await asyncio.wait_for(a.recv(), 10))
                if m["type"] == "error":
                    assert m["code"] == "unknown-peer", m
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


def verify_unit(path, name):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.fail("systemd-analyze is missing (scripts/install-deps.sh --test installs the systemd package)", pytrace=False)
    r = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and name not in r.stderr, r.stderr


def test_the_cluster_unit_template_verifies_instantiated(tmp_path):
    """systemd loads browsercloud@node1.service from the template in the same directory, with %i = node1."""
    unit = (DEPLOY / "browsercloud@.service").read_text().replace("/usr/local/bin/browsercloud", BIN)
    for needed in ("--cluster redis://", "--instance %i", "--server-key-file ${CREDENTIALS_DIRECTORY}/", "EnvironmentFile=/etc/browsercloud/%i.env"):
        assert needed in unit, needed
    (tmp_path / "browsercloud@.service").write_text(unit)
    verify_unit(tmp_path / "browsercloud@node1.service", "browsercloud@")
    # The check can fail: an unknown key in the template is reported for the instance.
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "browsercloud@.service").write_text(unit.replace("[Service]", "[Service]\nNoSuchKey=1"))
    with pytest.raises(AssertionError):
        verify_unit(tmp_path / "bad" / "browsercloud@node1.service", "browsercloud@")


class ConfiguredRedis(Redis):
    """redis-server with deploy/redis.conf, on the test's own loopback port and directory."""

    def start(self):
        args = [REDIS, str(DEPLOY / "redis.conf"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.command("PING") == "+PONG", timeout=15, message="redis-server (deploy/redis.conf) answers PING")


def test_the_redis_configuration_keeps_the_log():
    """The settings docs/cluster.md relies on are in force, not commented out."""
    lines = {line.split()[0]: line.split(None, 1)[1] for line in (DEPLOY / "redis.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    assert lines["appendonly"] == "yes" and lines["appendfsync"] in ("always", "everysec")
    assert lines["maxmemory-policy"] == "noeviction" and lines["protected-mode"] == "yes"
    assert "requirepass" not in lines


@pytest.fixture
def cluster_proxied(pki, tmp_path):
    """Two cluster instances on a redis-server running deploy/redis.conf, behind deploy/nginx-cluster.conf."""
    redis = ConfiguredRedis(tmp_path)
    servers = []
    proc = None
    try:
        for name in ("c1", "c2"):
            servers.append(instance(tmp_path, redis, name, "--trusted-proxies", "127.0.0.1"))
            wait_available(servers[-1])
        upstream = "".join(f"        server 127.0.0.1:{s.port} max_fails=1 fail_timeout=10s;\n" for s in servers)
        listed = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in (9001, 9002, 9003))
        (tmp_path / "nginx").mkdir()
        proc, tls_port, _ = start_nginx("nginx-cluster.conf", (listed, upstream), pki, tmp_path / "nginx")
        yield {"servers": servers, "tls": tls_port, "ca": str(pki / "ca.pem")}
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        for s in servers:
            s.stop()
        redis.stop()


def test_two_cluster_instances_behind_nginx_both_get_peers(cluster_proxied):
    servers = cluster_proxied["servers"]
    url = f"wss://localhost:{cluster_proxied['tls']}/"

    def holder(peer_id):
        """The instance name ("c1" or "c2") holding the peer's session, from the first instance's ring."""
        for p in servers[0].network()["peers"]:
            if p["peerId"] == peer_id:
                return p["instance"].split("/")[0]
        return None

    async def scenario():
        sockets = [await wss(url, cluster_proxied["ca"]) for _ in range(4)]
        try:
            ids = [await registered(ws) for ws in sockets]
            # least_conn: the open signalling connections are spread over both instances.
            await asyncio.to_thread(wait_until, lambda: all(holder(i) for i in ids), 10, 0.05, "both instances show every peer")
            where = {i: holder(i) for i in ids}
            assert set(where.values()) == {"c1", "c2"}, where
            assert [s.stats()["peersHere"] for s in servers] == [2, 2], where
            # A signal from a peer on c1 reaches a peer on c2, through nginx and Redis.
            a = next(k for k, i in enumerate(ids) if where[i] == "c1")
            b = next(k for k, i in enumerate(ids) if where[i] == "c2")
            await sockets[a].send(json.dumps({"type": "signal", "to": ids[b], "intentId": "across", "signal": {"type": "offer", "sdp": "v=0"}}))
            while True:
                m = json.loads(await asyncio.wait_for(sockets[b].recv(), 10))
                if m["type"] == "signal":
                    assert m["from"] == ids[a] and m["intentId"] == "across", m
                    break
            # c1 dies: a new connection through nginx is passed to c2 (max_fails, proxy_next_upstream) and registers.
            servers[0].proc.kill()
            servers[0].proc.wait(10)
            async with await wss(url, cluster_proxied["ca"]) as late:
                late_id = await registered(late)
                assert late_id in {p["peerId"] for p in servers[1].network()["peers"]}
        finally:
            for ws in sockets:
                await ws.close()
    asyncio.run(scenario())
