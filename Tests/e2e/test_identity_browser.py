"""Public/explorer/identity.js (a peer's Ed25519 key pair) and explorer/sha256.js in real Chromium, on both
paths: WebCrypto on a secure origin (http://127.0.0.1), TweetNaCl.js and CryptoJS (Debian's node-tweetnacl
and libjs-cryptojs, served by the server under /vendor/) on a plain-http page at a non-localhost address
(the test namespace's 10.x address, WITHOUT any insecure-origin flag: no crypto.subtle there).

Checked: RFC 8032 section 7.1's vectors (Tests/vectors/ed25519-rfc8032.json) reproduced by both paths;
signatures made on one path verify on the other; stored keys come back after a reload; two explorers or two
tabs of one origin get two keys; SHA-256 matches Python's hashlib on both paths; a server without the
Debian package answers 404 and identity.js fails with its documented codes."""
import hashlib
import json
import pathlib
import random
import sys

import pytest

from overlay import CHROMIUM

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests/integration"))
from harness import Server  # noqa: E402

VECTORS = json.loads((ROOT / "Tests/vectors/ed25519-rfc8032.json").read_text())["vectors"]

HELPERS = """
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  const bytes = (h) => new Uint8Array((h.match(/../g) || []).map((x) => parseInt(x, 16)))
  const flip = (b) => { const c = new Uint8Array(b); c[c.length >> 1] ^= 1; return c }
"""

# Each vector through loadIdentity({ ephemeral, seed, kind }): the public key, the signature, verify(), and
# verify() of a flipped message, signature and key.
VECTOR_RUN = """async ({ vectors, kind }) => {""" + HELPERS + """
  const { loadIdentity, verify } = await import('/explorer/identity.js')
  const out = []
  for (const v of vectors) {
    const id = await loadIdentity({ ephemeral: true, seed: bytes(v.secretKey), kind })
    const message = bytes(v.message)
    const signature = hex(await id.sign(message))
    out.push({
      name: v.name, kind: id.kind, publicKey: id.publicKey, signature,
      verifies: await verify(id.publicKey, message, signature),
      flippedMessage: await verify(id.publicKey, message.length ? flip(message) : new Uint8Array(1), signature),
      flippedSignature: await verify(id.publicKey, message, hex(flip(bytes(signature)))),
      flippedKey: await verify(hex(flip(bytes(id.publicKey))), message, signature),
      malformed: [await verify('xyz', message, signature), await verify(id.publicKey, message, signature.toUpperCase())]
    })
  }
  return out
}"""

KEYS = """async ({ names }) => {
  const { loadIdentity } = await import('/explorer/identity.js')
  const out = []
  for (const storageName of names) {
    const id = await loadIdentity({ storageName })
    out.push({ kind: id.kind, publicKey: id.publicKey, slot: id.slot })
  }
  return out
}"""

SIGN = """async ({ message }) => {""" + HELPERS + """
  const { loadIdentity } = await import('/explorer/identity.js')
  const id = await loadIdentity({ ephemeral: true })
  return { kind: id.kind, publicKey: id.publicKey, signature: hex(await id.sign(bytes(message))) }
}"""

VERIFY = """async ({ publicKey, message, signature }) => {""" + HELPERS + """
  const { verify } = await import('/explorer/identity.js')
  return [await verify(publicKey, bytes(message), signature), await verify(publicKey, flip(bytes(message)), signature)]
}"""

SHA = """async ({ inputs }) => {""" + HELPERS + """
  const { sha256Hex, sha256Kind } = await import('/explorer/sha256.js')
  const out = []
  for (const h of inputs) out.push(await sha256Hex(bytes(h)))
  out.push(await sha256Hex(new Uint8ClampedArray([1, 2, 3, 4]).subarray(1)))   // a view with an offset
  return { kind: sha256Kind(), digests: out }
}"""


def sha_inputs(seed):
    rng = random.Random(seed)
    return ["", "616263", bytes(rng.getrandbits(8) for _ in range(1000)).hex(), bytes(rng.getrandbits(8) for _ in range(65)).hex()]


def check_vectors(results, kind):
    assert [r["name"] for r in results] == [v["name"] for v in VECTORS]
    for v, r in zip(VECTORS, results):
        assert r["kind"] == kind, r
        assert (r["publicKey"], r["signature"]) == (v["publicKey"], v["signature"]), v["name"]
        assert r["verifies"] is True, v["name"]
        assert (r["flippedMessage"], r["flippedSignature"], r["flippedKey"], r["malformed"]) == (False, False, False, [False, False]), v["name"]


@pytest.fixture(scope="module")
def lan(playwright, namespace, tmp_path_factory):
    """A server at the namespace's 10.x address and a browser WITHOUT the insecure-origin flag."""
    server = Server(tmp_path_factory.mktemp("lan"), host=namespace.address, prefix=namespace.prefix)
    browser = playwright.chromium.launch(executable_path=namespace.chromium_wrapper(tmp_path_factory.mktemp("bin"), CHROMIUM), headless=True)
    yield server, browser
    browser.close()
    server.stop()


@pytest.fixture
def lan_page(lan):
    server, browser = lan
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.http + "/")
    assert page.evaluate("() => [isSecureContext, !!globalThis.crypto?.subtle]") == [False, False]
    yield page
    context.close()
    assert not errors, errors


def test_webcrypto_reproduces_the_rfc8032_vectors_through_identity_js(page):
    check_vectors(page.evaluate(VECTOR_RUN, {"vectors": VECTORS, "kind": None}), "webcrypto")


def test_tweetnacl_reproduces_the_rfc8032_vectors_on_a_secure_origin_too(page):
    check_vectors(page.evaluate(VECTOR_RUN, {"vectors": VECTORS, "kind": "tweetnacl"}), "tweetnacl")


def test_tweetnacl_reproduces_the_rfc8032_vectors_on_a_plain_http_lan_page(lan_page):
    check_vectors(lan_page.evaluate(VECTOR_RUN, {"vectors": VECTORS, "kind": None}), "tweetnacl")


def test_webcrypto_asked_for_on_a_plain_http_lan_page_fails_with_its_code(lan_page):
    r = lan_page.evaluate("""async () => {
      const { loadIdentity } = await import('/explorer/identity.js')
      return loadIdentity({ ephemeral: true, kind: 'webcrypto' }).then(() => 'loaded', (e) => e.code)
    }""")
    assert r == "ERR_IDENTITY_UNAVAILABLE"


def test_signatures_verify_across_the_two_paths(page, lan_page):
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    message = random.Random(seed).randbytes(200).hex()
    made_by_webcrypto = page.evaluate(SIGN, {"message": message})
    made_by_tweetnacl = lan_page.evaluate(SIGN, {"message": message})
    assert (made_by_webcrypto["kind"], made_by_tweetnacl["kind"]) == ("webcrypto", "tweetnacl")
    assert lan_page.evaluate(VERIFY, {"message": message, **made_by_webcrypto}) == [True, False]
    assert page.evaluate(VERIFY, {"message": message, **made_by_tweetnacl}) == [True, False]


@pytest.mark.parametrize("where", ["secure", "lan"])
def test_stored_keys_come_back_after_a_reload_and_explorers_never_share_one(where, page, lan_page):
    pg, kind = (page, "webcrypto") if where == "secure" else (lan_page, "tweetnacl")
    first = pg.evaluate(KEYS, {"names": ["default", "default", "other"]})
    assert [k["kind"] for k in first] == [kind] * 3
    assert [k["slot"] for k in first] == [0, 1, 0]
    assert len({k["publicKey"] for k in first}) == 3, first   # two explorers of one name: two keys
    pg.reload()
    again = pg.evaluate(KEYS, {"names": ["default", "default", "other"]})
    assert again == first
    # A second tab of the same origin (same storage) while the first holds its slots: new keys.
    other_tab = pg.context.new_page()
    other_tab.goto(pg.url)
    second = other_tab.evaluate(KEYS, {"names": ["default"]})
    assert second[0]["slot"] == 2 and second[0]["publicKey"] not in {k["publicKey"] for k in first}
    # Released slots are taken again, with their keys.
    released = pg.evaluate("""async () => {
      const { loadIdentity } = await import('/explorer/identity.js')
      const ephemeral = await loadIdentity({ ephemeral: true })
      const a = await loadIdentity({ storageName: 'released' })
      await a.release()
      const b = await loadIdentity({ storageName: 'released' })
      return [ephemeral.slot, a.slot, b.slot, a.publicKey === b.publicKey]
    }""")
    assert released == [None, 0, 0, True]
    other_tab.close()


@pytest.mark.parametrize("where", ["secure", "lan"])
def test_sha256_matches_hashlib_on_both_paths(where, page, lan_page):
    pg, kind = (page, "webcrypto") if where == "secure" else (lan_page, "cryptojs")
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    inputs = sha_inputs(seed)
    r = pg.evaluate(SHA, {"inputs": inputs})
    assert r["kind"] == kind
    assert r["digests"] == [hashlib.sha256(bytes.fromhex(h)).hexdigest() for h in inputs] + [hashlib.sha256(bytes([2, 3, 4])).hexdigest()]


def test_a_server_without_the_packages_fails_clearly(playwright, namespace, tmp_path):
    server = Server(tmp_path, "--tweetnacl-path", tmp_path / "missing.js", "--cryptojs-path", tmp_path / "nothing",
                    host=namespace.address, prefix=namespace.prefix)
    browser = playwright.chromium.launch(executable_path=namespace.chromium_wrapper(tmp_path, CHROMIUM), headless=True)
    try:
        page = browser.new_page()
        page.goto(server.http + "/")
        r = page.evaluate("""async () => {
          const { loadIdentity } = await import('/explorer/identity.js')
          const { sha256Hex } = await import('/explorer/sha256.js')
          const identity = await loadIdentity({ ephemeral: true }).then(() => null, (e) => [e.code, e.cause?.code])
          const sha = await sha256Hex(new Uint8Array(1)).then(() => null, (e) => e.code)
          const status = (await fetch('/vendor/tweetnacl/nacl-fast.min.js')).status
          return { identity, sha, status }
        }""")
        assert r == {"identity": ["ERR_IDENTITY_UNAVAILABLE", "ERR_VENDOR_SCRIPT"], "sha": "ERR_VENDOR_SCRIPT", "status": 404}
    finally:
        browser.close()
        server.stop()


def test_leave_gives_the_stored_key_back_to_the_next_explorer(page):
    """app.js's Leave then Join makes a new Explorer: it gets the key the first one stored (the slot is
    released on leave), not a new slot and key each time; an explorer still joined keeps its own key."""
    out = page.evaluate("""async () => {
      const { Explorer } = await import('/webrtc-explorer.js')
      const make = () => new Explorer({ signalingURL: `ws://${location.host}`, identity: { storageName: 'leave-join' } })
      const first = make()
      await first.register()
      const key = first.publicKey
      await first.leave()
      const second = make()
      await second.register()
      const third = make()
      await third.register()
      const keys = [key, second.publicKey, third.publicKey, first.publicKey]
      await second.leave(); await third.leave()
      return keys
    }""")
    assert out[0] == out[1], out           # the released slot's key came back
    assert out[2] not in (out[0], None), out  # a second explorer alive at the same time has its own
    assert out[3] is None, out              # the explorer that left no longer holds it
