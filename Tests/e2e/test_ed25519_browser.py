"""Ed25519 in Chromium, for the key-pair identity (docs/protocol.md, "Key-pair identity (draft, not
implemented yet)"): WebCrypto reproduces RFC 8032 section 7.1's vectors (Tests/vectors/ed25519-rfc8032.json,
the same file the Swift `Signatures` target is checked with) on a secure origin, and a plain-http page at
a non-localhost address (the e2e pages' origin, without any insecure-origin flag) has no WebCrypto at
all, which is why browsers there need the tweetnacl fallback."""
import json
import pathlib
import sys

from overlay import CHROMIUM

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests/integration"))
from harness import Server  # noqa: E402

VECTORS = json.loads((ROOT / "Tests/vectors/ed25519-rfc8032.json").read_text())["vectors"]

# Each vector: import the seed as PKCS#8 (RFC 8410: the fixed 16-byte prefix, then the 32-byte seed), sign,
# export the public key, verify; then flip one bit in the message, the signature and the public key.
RUN = """async (vectors) => {
  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('')
  const bytes = (h) => new Uint8Array((h.match(/../g) || []).map((x) => parseInt(x, 16)))
  const flip = (b) => { const c = new Uint8Array(b); c[c.length >> 1] ^= 1; return c }
  const out = []
  for (const v of vectors) {
    const key = await crypto.subtle.importKey('pkcs8', bytes('302e020100300506032b657004220420' + v.secretKey),
                                              { name: 'Ed25519' }, true, ['sign'])
    const jwk = await crypto.subtle.exportKey('jwk', key)
    const pub = await crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: 'Ed25519' }, true, ['verify'])
    const message = bytes(v.message)
    const signature = await crypto.subtle.sign('Ed25519', key, message)
    const verify = (k, s, m) => crypto.subtle.verify('Ed25519', k, s, m)
    const flippedKey = await crypto.subtle.importKey('raw', flip(bytes(v.publicKey)), { name: 'Ed25519' }, true, ['verify'])
      .catch(() => null)
    out.push({
      name: v.name,
      publicKey: hex(await crypto.subtle.exportKey('raw', pub)),
      signature: hex(signature),
      verifies: await verify(pub, signature, message),
      flippedMessage: message.length ? await verify(pub, signature, flip(message)) : await verify(pub, signature, new Uint8Array(1)),
      flippedSignature: await verify(pub, flip(new Uint8Array(signature)), message),
      flippedKey: flippedKey ? await verify(flippedKey, signature, message).catch(() => false) : false,
    })
  }
  return out
}"""


def test_webcrypto_reproduces_the_rfc8032_vectors(page):
    results = page.evaluate(RUN, VECTORS)
    assert [r["name"] for r in results] == ["TEST 1", "TEST 2", "TEST 3", "TEST 1024"]
    for v, r in zip(VECTORS, results):
        assert r["publicKey"] == v["publicKey"], v["name"]
        assert r["signature"] == v["signature"], v["name"]
        assert r["verifies"] is True, v["name"]
        assert (r["flippedMessage"], r["flippedSignature"], r["flippedKey"]) == (False, False, False), v["name"]


def test_webcrypto_generates_ed25519_keys_on_a_secure_origin(page):
    r = page.evaluate("""async () => {
      const k = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
      const m = new TextEncoder().encode('browsercloud-register/1')
      const s = await crypto.subtle.sign('Ed25519', k.privateKey, m)
      return { secure: isSecureContext, signature: s.byteLength, raw: (await crypto.subtle.exportKey('raw', k.publicKey)).byteLength,
               verifies: await crypto.subtle.verify('Ed25519', k.publicKey, s, m), extractable: k.privateKey.extractable }
    }""")
    assert r == {"secure": True, "signature": 64, "raw": 32, "verifies": True, "extractable": False}


def test_a_plain_http_page_at_a_lan_address_has_no_webcrypto(playwright, namespace, tmp_path):
    server = Server(tmp_path, host=namespace.address, prefix=namespace.prefix)
    browser = playwright.chromium.launch(executable_path=namespace.chromium_wrapper(tmp_path, CHROMIUM), headless=True)
    try:
        page = browser.new_page()
        page.goto(server.http + "/")
        r = page.evaluate("() => ({ secure: isSecureContext, subtle: !!globalThis.crypto?.subtle, "
                          "random: typeof globalThis.crypto?.getRandomValues })")
        assert r == {"secure": False, "subtle": False, "random": "function"}, (server.http, r)
    finally:
        browser.close()
        server.stop()
