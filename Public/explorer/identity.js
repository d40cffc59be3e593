// A peer's Ed25519 key pair (RFC 8032, pure Ed25519), the key-pair identity of docs/protocol.md.
//
//   import { loadIdentity, verify } from './explorer/identity.js'
//   const id = await loadIdentity()                    // { kind, publicKey, sign, storageName, slot, release }
//   const signature = await id.sign(new TextEncoder().encode('browsercloud-register/1\n…'))   // Uint8Array(64)
//   await verify(id.publicKey, bytes, hexOfSignature)  // true | false
//
// Two implementations, the same bytes (Ed25519 is deterministic):
// - 'webcrypto': `crypto.subtle` Ed25519, where the page is a secure context (https://, http://localhost)
//   and the browser has Ed25519; the private key is a non-extractable CryptoKey.
// - 'tweetnacl': TweetNaCl.js from Debian's node-tweetnacl, which the server serves at
//   /vendor/tweetnacl/nacl-fast.min.js (explorer/vendor.js), where `crypto.subtle` is missing (a plain-http
//   page at a LAN address) or has no Ed25519; the private key is a 32-byte seed from crypto.getRandomValues.
// The key pair is kept per origin in IndexedDB (explorer/identity-store.js: one slot per live explorer, so
// two explorers or two tabs never share a key, and a reload gets its key back) unless `ephemeral` is set.
//
// Failures reject with an IdentityError whose `code` is one of IDENTITY_ERRORS:
//   ERR_IDENTITY_UNAVAILABLE  the kind asked for (options.kind) does not exist here, or no Ed25519 at all
//                             (no WebCrypto Ed25519 and tweetnacl could not be loaded: `cause` has the
//                             vendor error; the server lacks node-tweetnacl) or no crypto.getRandomValues
//   ERR_IDENTITY_STORAGE      IndexedDB is missing or failed (some private windows): pass `ephemeral: true`
//   ERR_IDENTITY_BAD_INPUT    a bad option (storageName, seed, kind), or sign()/verify() given bytes that
//                             are not a Uint8Array
//   ERR_IDENTITY_SIGN         the key refused to sign (a WebCrypto failure)
// `verify` answers false, never throws, for a malformed key or signature (not 64 / 128 lowercase hex), a key
// that is not a valid point, or a signature that does not verify.

import { VENDOR, loadVendor } from './vendor.js'
import { openStore, claimSlot, storeKey, holdSlot, releaseSlot } from './identity-store.js'

export const IDENTITY_ERRORS = Object.freeze({
  UNAVAILABLE: 'ERR_IDENTITY_UNAVAILABLE',
  STORAGE: 'ERR_IDENTITY_STORAGE',
  BAD_INPUT: 'ERR_IDENTITY_BAD_INPUT',
  SIGN: 'ERR_IDENTITY_SIGN'
})

/** An Error with a `code` from IDENTITY_ERRORS (and the underlying error as `cause`, when there is one). */
export class IdentityError extends Error {
  constructor (code, message, cause) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'IdentityError'
    this.code = code
  }
}

/** RFC 8410's PKCS#8 wrapping of an Ed25519 seed: this prefix, then the 32 bytes. */
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
const ED25519 = { name: 'Ed25519' }

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
const fromHex = (hex) => new Uint8Array(hex.match(/../g).map((x) => parseInt(x, 16)))
const fromBase64url = (text) => Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))

function hasSubtle () { return Boolean(globalThis.crypto?.subtle) }

async function loadNacl () {
  try {
    return await loadVendor(VENDOR.tweetnacl)
  } catch (error) {
    throw new IdentityError(IDENTITY_ERRORS.UNAVAILABLE, `no WebCrypto Ed25519 here and TweetNaCl.js could not be loaded: ${error.message}`, error)
  }
}

function randomSeed () {
  if (typeof globalThis.crypto?.getRandomValues !== 'function') throw new IdentityError(IDENTITY_ERRORS.UNAVAILABLE, 'crypto.getRandomValues is missing: no key can be made')
  return crypto.getRandomValues(new Uint8Array(32))
}

// MARK: the two implementations: key material in, { publicKey, sign } out

/** New WebCrypto key material (a non-extractable private key), or from `seed`; null when there is no Ed25519. */
async function webcryptoMaterial (seed) {
  try {
    if (seed) {
      const pkcs8 = new Uint8Array([...PKCS8_PREFIX, ...seed])
      const jwk = await crypto.subtle.exportKey('jwk', await crypto.subtle.importKey('pkcs8', pkcs8, ED25519, true, ['sign']))
      const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, ED25519, false, ['sign'])
      return { kind: 'webcrypto', privateKey, publicKey: toHex(fromBase64url(jwk.x)) }
    }
    const pair = await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify'])
    return { kind: 'webcrypto', privateKey: pair.privateKey, publicKey: toHex(new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey))) }
  } catch (error) {
    if (error?.name === 'NotSupportedError') return null   // WebCrypto without Ed25519 (older browsers)
    throw error
  }
}

async function tweetnaclMaterial (seed) {
  const nacl = await loadNacl()
  const s = seed ?? randomSeed()
  return { kind: 'tweetnacl', seed: s, publicKey: toHex(nacl.sign.keyPair.fromSeed(s).publicKey) }
}

async function makeMaterial (kind, seed) {
  if (kind !== 'tweetnacl' && hasSubtle()) {
    const material = await webcryptoMaterial(seed)
    if (material) return material
  }
  if (kind === 'webcrypto') throw new IdentityError(IDENTITY_ERRORS.UNAVAILABLE, 'WebCrypto Ed25519 is not available here (not a secure context, or an older browser)')
  return tweetnaclMaterial(seed)
}

function usable (material, kind) {
  if (!material?.kind || (kind && material.kind !== kind)) return false
  return material.kind === 'tweetnacl' ? material.seed instanceof Uint8Array : hasSubtle() && material.privateKey instanceof CryptoKey
}

function checkBytes (bytes) {
  if (!(bytes instanceof Uint8Array)) throw new IdentityError(IDENTITY_ERRORS.BAD_INPUT, 'bytes must be a Uint8Array')
}

/** The signer of some key material. */
async function signer (material) {
  if (material.kind === 'tweetnacl') {
    const nacl = await loadNacl()
    const { secretKey } = nacl.sign.keyPair.fromSeed(material.seed)
    return async (bytes) => { checkBytes(bytes); return nacl.sign.detached(bytes, secretKey) }
  }
  return async (bytes) => {
    checkBytes(bytes)
    try {
      return new Uint8Array(await crypto.subtle.sign('Ed25519', material.privateKey, bytes))
    } catch (error) {
      throw new IdentityError(IDENTITY_ERRORS.SIGN, `WebCrypto refused to sign: ${error.message}`, error)
    }
  }
}

// MARK: API

/**
 * The peer's identity: `{ kind: 'webcrypto' | 'tweetnacl', publicKey: '<64 lowercase hex>',
 * async sign(Uint8Array) → Uint8Array(64), storageName, slot, async release() }`.
 *
 * Options:
 * - `storageName` (string of 1 to 64 characters, default 'default'): identities of different names are
 *   kept apart; within one name every live explorer holds its own slot (identity-store.js).
 * - `ephemeral` (default false): a fresh key pair kept nowhere (`slot` null).
 * - `kind` ('webcrypto' | 'tweetnacl'; default: WebCrypto where it has Ed25519, tweetnacl otherwise).
 *   A stored key of another kind is not used then (another slot is claimed).
 * - `seed` (Uint8Array of 32 bytes; only with `ephemeral`): the RFC 8032 private key to use (test vectors).
 *
 * `release()` gives the stored slot back (when the explorer closes; a page that goes away gives it back by
 * itself), so another explorer may take it and its key.
 */
export async function loadIdentity (options = {}) {
  const { storageName = 'default', ephemeral = false, seed } = options
  const kind = options.kind ?? undefined   // null: no preference, as undefined
  if (typeof storageName !== 'string' || storageName.length < 1 || storageName.length > 64 || storageName.includes('#')) {
    throw new IdentityError(IDENTITY_ERRORS.BAD_INPUT, "storageName must be a string of 1 to 64 characters without '#'")
  }
  if (kind !== undefined && kind !== 'webcrypto' && kind !== 'tweetnacl') throw new IdentityError(IDENTITY_ERRORS.BAD_INPUT, "kind must be 'webcrypto' or 'tweetnacl'")
  if (seed !== undefined && !(seed instanceof Uint8Array && seed.length === 32 && ephemeral)) {
    throw new IdentityError(IDENTITY_ERRORS.BAD_INPUT, 'seed must be a Uint8Array of 32 bytes, and only with ephemeral: true')
  }
  const identity = (material, slot, release) => signer(material).then((sign) => Object.freeze({
    kind: material.kind, publicKey: material.publicKey, sign, storageName, slot, release
  }))
  if (ephemeral) return identity(await makeMaterial(kind, seed), null, async () => undefined)

  let db, record
  try {
    db = await openStore()
    record = await claimSlot(db, storageName)
    // With `kind`, a slot holding a key of the other kind is skipped (held until a slot is found, then
    // given back: that key stays for loaders of its kind).
    const skipped = []
    while (kind && record.kind && record.kind !== kind && skipped.length < 64) {
      skipped.push(record)
      record = await claimSlot(db, storageName)
    }
    for (const r of skipped) await releaseSlot(db, r.id, r.claim)
  } catch (error) {
    throw new IdentityError(IDENTITY_ERRORS.STORAGE, `the identity store (IndexedDB) failed: ${error?.message ?? error}`, error)
  }
  const release = holdSlot(db, record.id, record.claim)
  try {
    if (usable(record, kind)) return await identity(record, record.slot, release)
    // A new slot, or a key this page cannot use (a WebCrypto key where WebCrypto is now missing): a new key.
    const material = await makeMaterial(kind)
    try {
      await storeKey(db, record.id, record.claim, material)
    } catch (error) {
      throw new IdentityError(IDENTITY_ERRORS.STORAGE, `the identity store (IndexedDB) failed: ${error?.message ?? error}`, error)
    }
    return await identity(material, record.slot, release)
  } catch (error) {
    await release()
    throw error
  }
}

/**
 * Whether `signatureHex` (128 lowercase hex) is a valid Ed25519 signature of `bytes` (a Uint8Array) by the
 * key `publicKeyHex` (64 lowercase hex). WebCrypto where it has Ed25519, tweetnacl otherwise. False for
 * malformed keys and signatures; rejects (ERR_IDENTITY_BAD_INPUT) only when `bytes` is not a Uint8Array,
 * and (ERR_IDENTITY_UNAVAILABLE) when no implementation can be loaded.
 */
export async function verify (publicKeyHex, bytes, signatureHex) {
  checkBytes(bytes)
  if (typeof publicKeyHex !== 'string' || !/^[0-9a-f]{64}$/.test(publicKeyHex)) return false
  if (typeof signatureHex !== 'string' || !/^[0-9a-f]{128}$/.test(signatureHex)) return false
  const key = fromHex(publicKeyHex)
  const signature = fromHex(signatureHex)
  if (hasSubtle()) {
    let imported = null
    try {
      imported = await crypto.subtle.importKey('raw', key, ED25519, false, ['verify'])
    } catch (error) {
      if (error?.name !== 'NotSupportedError') return false   // not a valid public key
    }
    if (imported) return crypto.subtle.verify('Ed25519', imported, signature, bytes).catch(() => false)
  }
  const nacl = await loadNacl()
  return nacl.sign.detached.verify(bytes, signature, key)
}
