"""Issue 12, "Plain-http LAN pages": volunteers who open http://<lan-address>:<port> (the test namespace's
10.x address: not localhost, so not a secure context) in a browser WITHOUT any insecure-origin flag have no
crypto.subtle, and still join the ring, volunteer their CPU and submit jobs. Their Ed25519 keys come from
TweetNaCl.js and their SHA-256 from CryptoJS, served by the server from Debian's packages (/vendor/).

The volunteers use the shipped page (index.html, app.js) as a person would: Join, then Render. The bytes
are checked against `browsercloud render` (a native submitter) and against the ray tracer's vector file."""
import json
import pathlib
import re
import subprocess

import pytest

from overlay import CHROMIUM
from harness import BIN, ROOT, Server

VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}
VOLUNTEERS = 3


@pytest.fixture(scope="module")
def lan(playwright, namespace, tmp_path_factory):
    """A server at the 10.x address; a browser with no flag that would make that origin trustworthy; the
    volunteers' pages (one browser context each, as separate people), each joined through the page's UI."""
    server = Server(tmp_path_factory.mktemp("lan"), host=namespace.address, prefix=namespace.prefix)
    browser = playwright.chromium.launch(executable_path=namespace.chromium_wrapper(tmp_path_factory.mktemp("bin"), CHROMIUM), headless=True)
    pages, errors = [], []
    try:
        for _ in range(VOLUNTEERS):
            page = browser.new_context().new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.http + "/")
            pages.append(page)
        yield server, pages
    finally:
        browser.close()
        server.stop()
    assert not errors, errors


def joined(pages):
    """Clicks Join on every page and waits until each is in the ring and offers its workers."""
    for page in pages:
        if page.evaluate("() => !window.peer"):
            page.click("#join")
    for page in pages:
        # participate() resolved (the page then says it offers its workers) and the peer is linked into the ring.
        page.wait_for_function("() => window.bp?.participating === true && window.peer?.ready === true", timeout=30000)
        page.wait_for_function("() => !document.getElementById('run').disabled", timeout=30000)
    return [page.evaluate("() => window.peer.peerId") for page in pages]


def test_the_pages_are_not_a_secure_context(lan):
    server, pages = lan
    assert re.fullmatch(r"http://10\.\d+\.\d+\.\d+:\d+", server.http), server.http
    for page in pages:
        assert page.evaluate("() => [isSecureContext, !!globalThis.crypto?.subtle]") == [False, False]


def test_volunteers_join_and_a_render_from_the_page_uses_them(lan):
    server, pages = lan
    ids = joined(pages)
    for page in pages:
        assert re.fullmatch(r"this tab offers \d+ workers?", page.text_content("#job-status")), page.text_content("#job-status")
    assert len(set(ids)) == VOLUNTEERS and all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids), ids
    # Wait until the submitter sees every volunteer in the ring (its page polls /api/network).
    submitter = pages[0]
    submitter.wait_for_function(f"() => document.getElementById('ring-size').textContent.includes('{VOLUNTEERS} peers')", timeout=30000)
    submitter.select_option("#scene", "small")
    submitter.select_option("#tiles", "25")
    submitter.fill("#peers", str(VOLUNTEERS))
    submitter.click("#run")
    submitter.wait_for_function("() => /^[0-9a-f]{64}$/.test(document.getElementById('sha').textContent)", timeout=120000)
    assert submitter.text_content("#sha") == VECTORS["Public/scenes/small.json"], submitter.text_content("#job-status")
    status = submitter.text_content("#job-status")
    assert status.startswith("done: 25 tiles"), status
    rendered_by = {row.split("(")[0].strip() for row in submitter.eval_on_selector_all("#per-peer td.mono", "tds => tds.map((t) => t.textContent)")}
    assert len(rendered_by - {ids[0]}) >= 1, rendered_by     # other volunteers computed tiles
    ran = sum(int(page.text_content("#ran-here").split()[0]) for page in pages)
    assert ran >= 25, ran
    # The digests on this path came from CryptoJS (no WebCrypto here).
    assert submitter.evaluate("async () => (await import('/explorer/sha256.js')).sha256Kind()") == "cryptojs"


def test_a_native_submitter_gets_the_render_bytes_from_lan_volunteers(lan, namespace, tmp_path):
    server, pages = lan
    ids = joined(pages)
    reference = tmp_path / "reference.png"
    out = tmp_path / "lan.png"
    subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(reference)],
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.run(list(namespace.prefix) + [BIN, "submit", "raytrace", "--server", server.ws, "--scene", "small",
                          "--scenes", str(ROOT / "Public/scenes"), "--tiles", "50", "--peers", str(VOLUNTEERS + 1), "--out", str(out),
                          "--listen", f"{namespace.address}:0"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == reference.read_bytes(), proc.stdout
    assert any(i in proc.stdout for i in ids), proc.stdout   # the browsers' results (CryptoJS digests) were accepted
