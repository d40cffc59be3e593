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

from overlay import CHROMIUM, Overlay
from harness import BIN, ROOT, Server

VECTORS = {v["scene"]: v["sha256"] for v in json.loads((ROOT / "Tests/vectors/raytracer.json").read_text())["images"]}
VOLUNTEERS = 3
CONSOLE = {}   # id(page) -> the page's console messages, shown when a page does not join


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
            page.on("console", lambda m, page=page: CONSOLE.setdefault(id(page), []).append(m.text))
            page.goto(server.http + "/")
            pages.append(page)
        yield server, pages
    finally:
        browser.close()
        server.stop()
    assert not errors, errors


STATE = """() => ({ status: document.getElementById('status').textContent, job: document.getElementById('job-status').textContent,
  log: [...document.querySelectorAll('#log li')].map((li) => li.textContent).slice(0, 20), peerId: window.peer?.peerId ?? null,
  ready: window.peer?.ready ?? null, participating: window.bp?.participating ?? null })"""


def joined(pages):
    """Clicks Join on every page and waits until each is in the ring and offers its workers."""
    for page in pages:
        if page.evaluate("() => !window.peer"):
            page.click("#join")
    try:
        for page in pages:
            # participate() resolved (the page then says it offers its workers) and the peer is linked into the ring.
            page.wait_for_function("() => window.bp?.participating === true && window.peer?.ready === true", timeout=30000)
            page.wait_for_function("() => !document.getElementById('run').disabled", timeout=30000)
    except Exception:
        raise AssertionError(f"a page did not join: {[(page.evaluate(STATE), CONSOLE.get(id(page), [])[-20:]) for page in pages]}")
    return [page.evaluate("() => window.peer.peerId") for page in pages]


def stable(pages, timeout=30):
    """Until every page's ring state equals the server's and its needed links are open (as overlay.py's
    wait_stable, for pages driven through the UI)."""
    overlay = Overlay(None, None, None, None)
    overlay.pages = [[True, page, page.evaluate("() => window.peer.peerId")] for page in pages]
    return overlay.wait_stable(timeout=timeout)


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


# The explorer's key pair (TweetNaCl.js here), and the server's certificate of its binding checked in the page
# with identity.js's verify (tweetnacl too): peerId ‖ publicKey ‖ epoch ‖ signature of the certificate text.
IDENTITY = """async () => {
  const { verify } = await import('/explorer/identity.js')
  const p = window.peer
  const c = p.certificate
  const [peerId, publicKey, epoch, signature] = [c.slice(0, 12), c.slice(12, 76), c.slice(76, 92), c.slice(92)]
  const text = `browsercloud-certificate/1\n${p.serverKey}\n${peerId}\n${publicKey}\n${epoch}`
  const bytes = new TextEncoder().encode(text)
  return {
    kind: p.identity.kind, publicKey: p.publicKey, peerId: p.peerId, certificate: [peerId, publicKey, epoch],
    epoch: p.epoch, valid: await verify(p.serverKey, bytes, signature),
    forged: await verify(p.serverKey, new TextEncoder().encode(text.replace(peerId, '000000000000')), signature)
  }
}"""


def test_volunteers_register_with_tweetnacl_keys_and_get_their_id_back_after_a_reload(lan):
    server, pages = lan
    joined(pages)
    identities = [page.evaluate(IDENTITY) for page in pages]
    for i in identities:
        assert i["kind"] == "tweetnacl", i
        assert re.fullmatch(r"[0-9a-f]{64}", i["publicKey"]), i
        assert i["certificate"] == [i["peerId"], i["publicKey"], i["epoch"]], i
        assert (i["valid"], i["forged"]) == (True, False), i
    assert len({i["publicKey"] for i in identities}) == VOLUNTEERS
    # A volunteer reloads the page and joins again: its key comes back from IndexedDB and proves the ID
    # it held (now leased to that key) is its own: same key, same ID.
    volunteer = pages[-1]
    volunteer.reload()
    joined([volunteer])
    again = volunteer.evaluate(IDENTITY)
    assert (again["kind"], again["publicKey"], again["peerId"], again["valid"]) == ("tweetnacl", identities[-1]["publicKey"], identities[-1]["peerId"], True)


def test_a_native_submitter_gets_the_render_bytes_from_lan_volunteers(lan, namespace, tmp_path):
    server, pages = lan
    ids = joined(pages)
    stable(pages)
    reference = tmp_path / "reference.png"
    out = tmp_path / "lan.png"
    subprocess.run([BIN, "render", "--scene", "small", "--scenes", str(ROOT / "Public/scenes"), "--out", str(reference)],
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.run(list(namespace.prefix) + [BIN, "submit", "raytrace", "--server", server.ws, "--scene", "small",
                          "--scenes", str(ROOT / "Public/scenes"), "--tiles", "50", "--peers", str(VOLUNTEERS), "--out", str(out),
                          # Discovery ends as soon as the volunteers answer; the long bound is for a loaded machine.
                          "--discovery-wait", "30",
                          "--listen", f"{namespace.address}:0"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == reference.read_bytes(), proc.stdout
    assert any(i in proc.stdout for i in ids), proc.stdout   # the browsers' results (CryptoJS digests) were accepted
