// Signed overlay messages (docs/protocol.md, "Signed overlay messages"), pure: no sockets, no timers, no crypto of its own. The
// same rules as the native peer's SignedOverlay target; both reproduce Tests/vectors/signed-overlay.json.
//
//   S<hops>:<certificate>:<signature>:<body>
//
// hops: 1 to 6 decimal digits (not signed; relays raise it). certificate: 220 lowercase hex (peerId 12 ‖
// publicKey 64 ‖ epoch 16 ‖ serverSignature 128). signature: 128 lowercase hex, the source's Ed25519
// signature of the UTF-8 bytes of SIGNED_PREFIX + body. body: the JSON text the source wrote once, with a
// fixed head so that relays read dstId without parsing the rest:
//   {"srcId":"<12 hex>","dstId":"<12 hex>","id":"<1-64 of [0-9A-Za-z_.-]>","at":<ms>,"data":<JSON>}
//
// Ed25519 is injected, so the same code runs on WebCrypto and on tweetnacl (explorer/identity.js):
//   sign(bytes: Uint8Array) -> Promise<Uint8Array | hex string> | Uint8Array | hex string
//   verify(publicKeyHex, bytes: Uint8Array, signatureHex) -> Promise<boolean> | boolean (only `true` counts as valid)

/** The prefix of the text a source signs (domain separation from certificates and registrations). */
export const SIGNED_PREFIX = 'browsercloud-overlay/1\n'
const CERTIFICATE_PREFIX = 'browsercloud-certificate/1'

/** Why a message was refused, in the order of the checks (docs/protocol.md, "Signed overlay messages"). */
export const REASONS = Object.freeze(['malformed', 'bad-certificate', 'wrong-source', 'stale-epoch', 'bad-signature',
  'bad-body', 'wrong-destination', 'outside-window', 'replayed'])

/** The bounds of a verifier; every limit is named here (the same defaults as the Swift verifier). */
export const DEFAULT_LIMITS = Object.freeze({
  timeToleranceMs: 300000, // |at - now| at most, in ms
  maxReplayEntries: 65536, // (srcId, id) pairs remembered
  maxCachedCertificates: 4096, // verified certificates cached
  maxKnownEpochs: 65536 // IDs whose highest epoch is remembered
})

const FRAME = /^S([0-9]{1,6}):([0-9a-f]{220}):([0-9a-f]{128}):/
const HEAD = /^\{"srcId":"([0-9a-f]{12})","dstId":"([0-9a-f]{12})","id":"([0-9A-Za-z_.-]{1,64})","at":(0|[1-9][0-9]{0,14}),"data":/
const ID = /^[0-9A-Za-z_.-]{1,64}$/
const encoder = new TextEncoder()

/**
 * The relay's view of a frame (no JSON parse of the body), or null when it is not an S frame.
 * @returns {{hops: number, certificate: string, signature: string, body: string, srcId: string, dstId: string,
 *   id: string, at: number} | null}
 */
export function parseSignedFrame (text) {
  if (typeof text !== 'string') return null
  const f = FRAME.exec(text)
  if (!f) return null
  const body = text.slice(f[0].length)
  const h = HEAD.exec(body)
  if (!h || !body.endsWith('}')) return null
  return { hops: Number(f[1]), certificate: f[2], signature: f[3], body, srcId: h[1], dstId: h[2], id: h[3], at: Number(h[4]) }
}

/** The frame of a parsed message with `hops` (default: one more, what a relay forwards). */
export function encodeSignedFrame (parsed, hops = parsed.hops + 1) {
  return `S${hops}:${parsed.certificate}:${parsed.signature}:${parsed.body}`
}

/** JSON text with object keys sorted (as the Swift signer writes `data`), so both engines sign the same bytes. */
export function canonicalJSON (value) {
  if (Array.isArray(value)) return '[' + value.map((v) => v === undefined ? 'null' : canonicalJSON(v)).join(',') + ']'
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort()
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJSON(value[k])).join(',') + '}'
  }
  return JSON.stringify(value)
}

/** The body of a message, or null when `id` or `at` is outside the grammar. */
export function messageBody ({ srcId, dstId, id, at, data }) {
  if (!ID.test(id) || !Number.isSafeInteger(at) || at < 0 || at >= 1e15) return null
  return `{"srcId":"${srcId}","dstId":"${dstId}","id":"${id}","at":${at},"data":${canonicalJSON(data)}}`
}

const toHex = (b) => typeof b === 'string' ? b : Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')

/** Signs messages as their source: one signature per message, however many C parts carry it. */
export class OverlaySigner {
  #certificate
  #sign

  /** `certificate`: this peer's (220 hex, from `registered`); `sign`: Ed25519 with the certificate's key. */
  constructor ({ certificate, sign }) {
    this.#certificate = certificate
    this.#sign = sign
  }

  get peerId () { return this.#certificate.slice(0, 12) }

  /** The S frame (0 hops) of a message to `dstId`, or null when `id` or `at` is outside the grammar. */
  async frame (dstId, id, at, data) {
    const body = messageBody({ srcId: this.peerId, dstId, id, at, data })
    if (body === null) return null
    const signature = toHex(await this.#sign(encoder.encode(SIGNED_PREFIX + body)))
    return `S0:${this.#certificate}:${signature}:${body}`
  }
}

/** Accepted (srcId, id) pairs within the window, ordered by `at` (a binary min-heap), with a floor. */
class ReplayMemory {
  #seen = new Map() // `${srcId}/${id}` -> at
  #heap = [] // [at, key]
  #floor = -1

  get size () { return this.#seen.size }

  /** 'admitted', 'replayed' or 'outside-window'. */
  admit (key, at, now, tolerance, capacity) {
    while (this.#heap.length && this.#heap[0][0] < now - tolerance) this.#seen.delete(this.#pop()[1])
    if (Math.abs(at - now) > tolerance || at <= this.#floor) return 'outside-window'
    if (this.#seen.has(key)) return 'replayed'
    if (this.#seen.size >= capacity) {
      if (!this.#heap.length || at <= this.#heap[0][0]) return 'outside-window'
      const [oldAt, oldKey] = this.#pop()
      this.#seen.delete(oldKey)
      this.#floor = Math.max(this.#floor, oldAt)
    }
    this.#seen.set(key, at)
    this.#push([at, key])
    return 'admitted'
  }

  #push (entry) {
    const h = this.#heap
    h.push(entry)
    for (let i = h.length - 1; i > 0;) {
      const parent = (i - 1) >> 1
      if (h[parent][0] <= h[i][0]) break
      ;[h[parent], h[i]] = [h[i], h[parent]]
      i = parent
    }
  }

  #pop () {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    if (h.length) {
      h[0] = last
      for (let i = 0; ;) {
        const l = 2 * i + 1; const r = l + 1
        let m = i
        if (l < h.length && h[l][0] < h[m][0]) m = l
        if (r < h.length && h[r][0] < h[m][0]) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i], h[m]]
        i = m
      }
    }
    return top
  }
}

/**
 * The destination's checks, in order (each failure counted under its reason, REASONS): the frame parses;
 * the certificate is signed by `serverKey` (verified certificates are cached: one check per certificate);
 * its peerId is srcId; its epoch is not below the highest known for that ID (which is then raised); the
 * signature; the body is a JSON object of exactly srcId, dstId, id, at, data agreeing with its head; dstId is
 * `self` (or a key this peer is responsible for, see `verify`); |at - now| within the tolerance and above the replay floor; (srcId, id) not accepted before.
 * `verify(frame, nowMs)` answers {verdict: 'accepted', srcId, id, at, epoch, hops, data} or
 * {verdict: 'rejected', reason}. The state changes after the last await of a call, so overlapping calls
 * cannot both accept one message.
 */
export class OverlayVerifier {
  #serverKey
  #verify
  #limits
  #self
  #certificates = new Map() // certificate -> Promise<{peerId, publicKey, epoch} | null>
  #epochs = new Map() // peerId -> highest epoch (16 hex; equal lengths compare as numbers)
  #replay = new ReplayMemory()
  #counts = { accepted: 0, certificateChecks: 0, rejected: Object.fromEntries(REASONS.map((r) => [r, 0])) }

  /** `serverKey`: the trusted server's public key (64 hex); `self`: this peer's ID (null accepts nothing). */
  constructor ({ serverKey, self = null, verify, limits = {} }) {
    this.#serverKey = serverKey
    this.#self = self
    this.#verify = verify
    this.#limits = { ...DEFAULT_LIMITS, ...limits }
  }

  get self () { return this.#self }
  set self (peerId) { this.#self = peerId }

  /** {accepted, certificateChecks, rejected: {reason: count}} (a copy). */
  get counters () {
    return { accepted: this.#counts.accepted, certificateChecks: this.#counts.certificateChecks, rejected: { ...this.#counts.rejected } }
  }

  /** The highest epoch known for `peerId` (16 hex), or undefined. */
  highestEpoch (peerId) { return this.#epochs.get(peerId) }

  /** Raises the highest epoch known for `peerId` (16 hex), e.g. from ring updates carrying epochs. */
  noteEpoch (peerId, epoch) {
    const known = this.#epochs.get(peerId)
    if (known !== undefined) {
      if (epoch > known) this.#epochs.set(peerId, epoch)
      return
    }
    if (this.#epochs.size >= this.#limits.maxKnownEpochs) this.#epochs.delete(this.#epochs.keys().next().value)
    this.#epochs.set(peerId, epoch)
  }

  /**
   * `responsible(dstId)`: whether this peer takes messages for dstId (default: dstId is `self`). The peer the
   * routing rules deliver at passes `() => true`: it is responsible for the keys of its range, (predecessor,
   * self] (discovery queries, a task for a peer that left reaching its successor). Without `self`, every
   * message is refused (wrong-destination).
   */
  async verify (frame, nowMs, { responsible } = {}) {
    const f = parseSignedFrame(frame)
    if (!f) return this.#reject('malformed')
    const certificate = await this.#certificate(f.certificate)
    if (!certificate) return this.#reject('bad-certificate')
    if (certificate.peerId !== f.srcId) return this.#reject('wrong-source')
    if (this.#isStale(certificate)) return this.#reject('stale-epoch')
    this.noteEpoch(certificate.peerId, certificate.epoch)
    let valid = false
    try { valid = await this.#verify(certificate.publicKey, encoder.encode(SIGNED_PREFIX + f.body), f.signature) } catch { valid = false }
    if (valid !== true) return this.#reject('bad-signature')
    // Another message may have raised the epoch while this one was being verified.
    if (this.#isStale(certificate)) return this.#reject('stale-epoch')
    let o
    try { o = JSON.parse(f.body) } catch { return this.#reject('bad-body') }
    if (o === null || typeof o !== 'object' || Array.isArray(o) || Object.keys(o).length !== 5 || !('data' in o) ||
        o.srcId !== f.srcId || o.dstId !== f.dstId || o.id !== f.id || o.at !== f.at) return this.#reject('bad-body')
    if (this.#self === null || !(responsible ? responsible(f.dstId) : f.dstId === this.#self)) return this.#reject('wrong-destination')
    const outcome = this.#replay.admit(`${f.srcId}/${f.id}`, f.at, nowMs, this.#limits.timeToleranceMs, this.#limits.maxReplayEntries)
    if (outcome !== 'admitted') return this.#reject(outcome)
    this.#counts.accepted++
    return { verdict: 'accepted', srcId: f.srcId, id: f.id, at: f.at, epoch: certificate.epoch, hops: f.hops, data: o.data }
  }

  #isStale (certificate) {
    const known = this.#epochs.get(certificate.peerId)
    return known !== undefined && certificate.epoch < known
  }

  #certificate (text) {
    let pending = this.#certificates.get(text)
    if (pending) return pending
    this.#counts.certificateChecks++
    const peerId = text.slice(0, 12); const publicKey = text.slice(12, 76); const epoch = text.slice(76, 92)
    const signed = [CERTIFICATE_PREFIX, this.#serverKey, peerId, publicKey, epoch].join('\n')
    pending = Promise.resolve()
      .then(() => this.#verify(this.#serverKey, encoder.encode(signed), text.slice(92)))
      .catch(() => false)
      .then((ok) => {
        if (ok !== true) {
          this.#certificates.delete(text) // only verified certificates stay cached
          return null
        }
        if (this.#certificates.size > this.#limits.maxCachedCertificates) this.#certificates.delete(this.#certificates.keys().next().value)
        return { peerId, publicKey, epoch }
      })
    this.#certificates.set(text, pending)
    return pending
  }

  #reject (reason) {
    this.#counts.rejected[reason]++
    return { verdict: 'rejected', reason }
  }
}
