// Classic scripts from Debian packages that the server serves under /vendor/ (docs/operations.md,
// `--tweetnacl-path`, `--cryptojs-path`), loaded only where WebCrypto is missing (a page that is not a
// secure context, such as http://<lan-address>:9000). They are never copied into this repository.
//
// A vendor script is a classic (non-module) script that defines a global (`nacl`, `CryptoJS`); this module
// runs such scripts in a page (a <script> element) or a worker, classic or module (fetch, then an indirect
// eval, which runs the text as global code as importScripts would; module workers have no importScripts).

/** The vendor scripts, relative to this module (so a bundle served under a sub-path still finds them). */
export const VENDOR = Object.freeze({
  /** TweetNaCl.js (Debian `node-tweetnacl`): Ed25519 (`nacl.sign.*`). Defines `nacl`. */
  tweetnacl: Object.freeze({ global: 'nacl', ready: (g) => typeof g?.sign?.detached?.verify === 'function', urls: Object.freeze([new URL('../vendor/tweetnacl/nacl-fast.min.js', import.meta.url).href]) }),
  /** CryptoJS (Debian `libjs-cryptojs`): SHA-256 of typed arrays. Defines `CryptoJS`; the order matters. */
  cryptojs: Object.freeze({
    global: 'CryptoJS',
    ready: (g) => typeof g?.SHA256 === 'function',   // the last of the three
    urls: Object.freeze(['core-min.js', 'lib-typedarrays-min.js', 'sha256-min.js'].map((f) => new URL(`../vendor/cryptojs/${f}`, import.meta.url).href))
  })
})

/** The error code of a vendor script that could not be loaded (404: the Debian package is missing). */
export const VENDOR_ERROR = 'ERR_VENDOR_SCRIPT'

function failure (url, why) {
  return Object.assign(new Error(`could not load ${url} (${why}): the server needs the Debian package behind it (scripts/install-deps.sh)`), { code: VENDOR_ERROR })
}

/** Adds the script (once per document) and resolves when it has run; a second caller waits for the first. */
function inDocument (url) {
  return new Promise((resolve, reject) => {
    const found = [...document.scripts].find((s) => s.src === url)
    if (found?.dataset.vendor === 'loaded') { resolve(); return }
    if (found?.dataset.vendor === 'failed') { reject(failure(url, 'the <script> failed')); return }
    const script = found ?? document.createElement('script')
    script.addEventListener('load', () => { script.dataset.vendor = 'loaded'; resolve() }, { once: true })
    script.addEventListener('error', () => { script.dataset.vendor = 'failed'; reject(failure(url, 'the <script> failed')) }, { once: true })
    if (!found) {
      script.src = url
      script.async = false
      document.head.append(script)
    }
  })
}

/** Fetches every script at once (before any await, so a worker may drop `fetch` right after the call). */
function fetchAll (urls, fetchFn) {
  return urls.map((url) => fetchFn(url).then((response) => {
    if (!response.ok) throw failure(url, `HTTP ${response.status}`)
    return response.text()
  }, (error) => { throw failure(url, error.message) }))
}

/**
 * Runs the vendor scripts of `entry` (one of VENDOR) once per realm and resolves with the global they
 * define. `fetchFn` is the fetch to use in workers (a worker that removes `fetch` from its scope captures it
 * first). Rejects with `{ code: VENDOR_ERROR }` when a script is missing or does not define the global.
 */
export async function loadVendor (entry, fetchFn = globalThis.fetch) {
  if (entry.ready(globalThis[entry.global])) return globalThis[entry.global]
  if (typeof document !== 'undefined') {
    for (const url of entry.urls) await inDocument(url)
  } else {
    const texts = fetchAll(entry.urls, fetchFn)
    for (const text of texts) (0, eval)(await text)   // global code, as a classic script runs
  }
  const value = globalThis[entry.global]
  if (!entry.ready(value)) throw failure(entry.urls.join(', '), `it did not define '${entry.global}'`)
  return value
}
