"""Native TLS (https and wss on one port, OpenSSL through libwebsockets), with a throwaway CA and
certificate made by openssl in the test: a client that verifies against that CA gets /healthz and
registers; a client without the CA is refused; plain http on the TLS port gets nothing."""
import asyncio
import json
import ssl
import subprocess

import pytest
import requests
from websockets.asyncio.client import connect

from harness import BIN, SUBPROTOCOL, Server, make_pki, register_async


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("tls"), "--tls-cert", pki / "server.pem", "--tls-key", pki / "server.key")
    yield s
    s.stop()


def test_https_and_wss_with_the_ca(tls_server, pki):
    r = requests.get(f"https://127.0.0.1:{tls_server.port}/healthz", verify=str(pki / "ca.pem"), timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))

    # The asyncio client: one thread owns the TLS connection (see test_deploy.wss for why not the threaded one).
    async def register():
        async with connect(f"wss://127.0.0.1:{tls_server.port}/", subprotocols=[SUBPROTOCOL], ssl=ctx, open_timeout=10) as ws:
            return (await register_async(ws))["type"]
    assert asyncio.run(asyncio.wait_for(register(), 30)) == "registered"


def test_clients_without_the_ca_are_refused(tls_server):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{tls_server.port}/healthz", timeout=10)

    async def unverified():
        async with connect(f"wss://127.0.0.1:{tls_server.port}/", ssl=ssl.create_default_context(), open_timeout=10):
            pass
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(unverified())


def test_plain_http_on_the_tls_port_gets_no_page(tls_server):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_server.port}/healthz", timeout=5)


def test_tls_flags_are_checked(tmp_path, pki):
    only_cert = subprocess.run([BIN, "serve", "--port", "0", "--tls-cert", str(pki / "server.pem")], capture_output=True, text=True, timeout=30)
    assert only_cert.returncode != 0 and "--tls-cert and --tls-key together" in only_cert.stderr
    missing = subprocess.run([BIN, "serve", "--port", "0", "--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(pki / "server.key")],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and "cannot read" in missing.stderr


def test_a_server_key_file_named_in_the_working_directory(tmp_path):
    """A one-character relative name used to crash Foundation's path handling."""
    proc = subprocess.Popen([BIN, "serve", "--port", "0", "--server-key-file", "k"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in proc.stdout.readline()
        assert len((tmp_path / "k").read_text().strip()) == 64
        assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    finally:
        proc.terminate()
        proc.wait(10)


def test_plain_http_port_redirects_to_https(pki, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        redirect = s.getsockname()[1]
    server = Server(tmp_path, "--tls-cert", pki / "server.pem", "--tls-key", pki / "server.key", "--redirect-port", redirect)
    try:
        r = requests.get(f"http://localhost:{redirect}/api/network?limit=5", allow_redirects=False, timeout=10)
        assert r.status_code == 301
        assert r.headers["Location"] == f"https://localhost:{server.port}/api/network?limit=5"
        followed = requests.get(f"http://localhost:{redirect}/healthz", verify=str(pki / "ca.pem"), timeout=10)
        assert followed.status_code == 200 and followed.url.startswith("https://")
    finally:
        server.stop()
    refused = subprocess.run([BIN, "serve", "--port", "0", "--redirect-port", "8080"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "--redirect-port needs --tls-cert" in refused.stderr
