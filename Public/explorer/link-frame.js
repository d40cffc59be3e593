// Link frames (docs/protocol.md, "Links"), pure: no sockets, no timers. The same grammar as the native
// peer's LinkFrame.swift; both reproduce Tests/vectors/link-frames.json.
//
//   M<message>                    a whole overlay message
//   C<id>:<index>:<count>:<part>  part `index` of `count` (id: 1 to 64 characters without ':'; index and
//                                 count in decimal digits, 1 <= count <= MAX_CHUNKS, index < count)
//   X / K                         retire request / keep answer
//   H{"peerId","nonce"}           hello of a WebSocket link's dialler
//   W{"peerId"}                   welcome of a WebSocket link's listener

/** Parts of one message at most: 128 MiB at 16 KiB per part. */
export const MAX_CHUNKS = 8192
/** Messages of one link being reassembled at once, at most. */
export const MAX_PARTIAL_MESSAGES = 16

const DIGITS = /^[0-9]+$/
const PEER_ID = /^[0-9a-f]{12}$/

/** JSON.parse that answers undefined for text that is not JSON (a peer's or the server's bad frame). */
export function parseJSON (text) {
  try { return JSON.parse(text) } catch { return undefined }
}

/**
 * The frame a text is, or null when it is not one (it is then ignored).
 * @returns {{kind: 'message', text: string} | {kind: 'chunk', id: string, index: number, count: number, part: string} |
 *   {kind: 'retire'} | {kind: 'keep'} | {kind: 'hello', peerId: string, nonce: string} | {kind: 'welcome', peerId: string} | null}
 */
export function parseFrame (text) {
  if (typeof text !== 'string' || text.length === 0) return null
  const rest = text.slice(1)
  switch (text[0]) {
    case 'M': return { kind: 'message', text: rest }
    case 'X': return rest === '' ? { kind: 'retire' } : null
    case 'K': return rest === '' ? { kind: 'keep' } : null
    case 'C': {
      const a = rest.indexOf(':'); const b = rest.indexOf(':', a + 1); const c = rest.indexOf(':', b + 1)
      if (a < 1 || b < 0 || c < 0 || a > 64) return null
      const index = rest.slice(a + 1, b); const count = rest.slice(b + 1, c)
      if (!DIGITS.test(index) || !DIGITS.test(count)) return null
      const i = Number(index); const n = Number(count)
      if (n < 1 || n > MAX_CHUNKS || i >= n) return null
      return { kind: 'chunk', id: rest.slice(0, a), index: i, count: n, part: rest.slice(c + 1) }
    }
    case 'H':
    case 'W': {
      const body = parseJSON(rest)
      if (body === null || typeof body !== 'object' || Array.isArray(body) || typeof body.peerId !== 'string' || !PEER_ID.test(body.peerId)) return null
      if (text[0] === 'W') return { kind: 'welcome', peerId: body.peerId }
      if (typeof body.nonce !== 'string' || body.nonce.length > 64) return null
      return { kind: 'hello', peerId: body.peerId, nonce: body.nonce }
    }
    default: return null
  }
}

/** Splits `text` into chunk frames of at most `size` characters of payload, never between the two halves of a surrogate pair. */
export function chunkFrames (text, size, id) {
  const parts = []
  for (let start = 0; start < text.length;) {
    let end = Math.min(text.length, start + size)
    const last = text.charCodeAt(end - 1)
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--
    parts.push(text.slice(start, end))
    start = end
  }
  return parts.map((part, i) => `C${id}:${i}:${parts.length}:` + part)
}

/**
 * Reassembles the chunked messages of one link within bounds, so that a faulty or hostile peer cannot make
 * this page hold unbounded memory: at most MAX_PARTIAL_MESSAGES partial messages and `maxChars` characters
 * held in them. `add` answers {status: 'pending'}, {status: 'complete', text} or {status: 'overflow'} (the
 * link must then be dropped). A part whose count differs from its message's, or one already held, is ignored.
 */
export class Reassembler {
  constructor (maxChars) {
    this.maxChars = maxChars
    this.partial = new Map() // id -> { parts, received }
    this.held = 0
  }

  add (id, index, count, part) {
    let entry = this.partial.get(id)
    if (!entry) {
      if (this.partial.size >= MAX_PARTIAL_MESSAGES) return { status: 'overflow' }
      entry = { parts: new Array(count), received: 0 }
      this.partial.set(id, entry)
    }
    if (entry.parts.length !== count || entry.parts[index] !== undefined) return { status: 'pending' }
    if (this.held + part.length > this.maxChars) return { status: 'overflow' }
    entry.parts[index] = part
    entry.received++
    this.held += part.length
    if (entry.received < count) return { status: 'pending' }
    this.partial.delete(id)
    const text = entry.parts.join('')
    this.held -= text.length
    return { status: 'complete', text }
  }
}
