// SHA-256 for the job engine (result digests, docs/jobs.md) in pages and workers, secure or not.
//
// WebCrypto (`crypto.subtle.digest`) where it exists; where it does not (a page that is not a secure
// context, such as http://<lan-address>:9000, and its workers), CryptoJS from Debian's libjs-cryptojs,
// served by the server at /vendor/cryptojs/ (explorer/vendor.js). Both give the same 32 bytes.
//
// Errors: a rejection with `code` VENDOR_ERROR ('ERR_VENDOR_SCRIPT') when WebCrypto is missing and the
// server does not serve CryptoJS; a TypeError when `bytes` is not a BufferSource.

import { VENDOR, loadVendor } from './vendor.js'

/** 'webcrypto' where `crypto.subtle` exists in this realm, 'cryptojs' otherwise. */
export function sha256Kind () {
  return globalThis.crypto?.subtle ? 'webcrypto' : 'cryptojs'
}

/**
 * Starts loading the fallback library where it is needed (a no-op where WebCrypto exists) and returns
 * the promise of it. A worker that removes `fetch` from its own scope calls this first, with its fetch.
 */
export function prepareSha256 (fetchFn = globalThis.fetch) {
  if (sha256Kind() === 'webcrypto') return Promise.resolve(null)
  return loadVendor(VENDOR.cryptojs, fetchFn)
}

function view (bytes) {
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes)
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  throw new TypeError('sha256 takes an ArrayBuffer or a typed array')
}

/** The SHA-256 of `bytes` (an ArrayBuffer or any typed array view): a Uint8Array of 32 bytes. */
export async function sha256 (bytes) {
  const data = view(bytes)
  if (sha256Kind() === 'webcrypto') return new Uint8Array(await crypto.subtle.digest('SHA-256', data))
  const CryptoJS = await prepareSha256()
  const words = CryptoJS.SHA256(CryptoJS.lib.WordArray.create(data)).words   // 8 big-endian 32-bit words
  const out = new DataView(new ArrayBuffer(32))
  for (let i = 0; i < 8; i++) out.setInt32(4 * i, words[i])
  return new Uint8Array(out.buffer)
}

/** The SHA-256 of `bytes` as 64 lowercase hex characters. */
export async function sha256Hex (bytes) {
  const digest = await sha256(bytes)
  let out = ''
  for (const b of digest) out += b.toString(16).padStart(2, '0')
  return out
}
