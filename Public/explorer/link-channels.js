// The channels a link runs on (RTCDataChannel itself, or these look-alikes) and the state of one link
// (explorer/channel-manager.js drives them).

import { Reassembler } from './link-frame.js'

/** Largest piece sent in one data channel message (RFC 8831 implementations accept at least 16 KiB). */
export const DEFAULT_CHUNK = 16 * 1024
/** Characters held in partial messages of one link, at most (see Reassembler in link-frame.js). */
export const MAX_PARTIAL_CHARS = 64 * 1024 * 1024

export function randomId () {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * The parts of RTCDataChannel the manager uses (readyState, send, bufferedAmount, the
 * 'bufferedamountlow' and 'close' events, close), for links that are not data channels. WebSockets
 * have no 'bufferedamountlow' event: it is polled until the buffer drains.
 */
class ChannelLike extends EventTarget {
  constructor () {
    super()
    this.bufferedAmountLowThreshold = 0
    this.onmessage = null
    this.onclose = null
  }

  addEventListener (name, handler) {
    super.addEventListener(name, handler)
    if (name === 'bufferedamountlow') {
      const poll = () => {
        if (this.readyState !== 'open') return
        if (this.bufferedAmount <= this.bufferedAmountLowThreshold) this.dispatchEvent(new Event('bufferedamountlow'))
        else setTimeout(poll, 10)
      }
      setTimeout(poll, 10)
    }
  }
}

/** A WebSocket link to a native peer. */
export class SocketChannel extends ChannelLike {
  constructor (ws) {
    super()
    this.ws = ws
    ws.onmessage = (e) => this.onmessage?.(e)
    ws.onclose = () => { this.dispatchEvent(new Event('close')); this.onclose?.() }
  }

  get readyState () { return ['connecting', 'open', 'closing', 'closed'][this.ws.readyState] }
  get bufferedAmount () { return this.ws.bufferedAmount }
  send (text) { this.ws.send(text) }
  close () { this.ws.close() }
}

/**
 * A link relayed by the server: frames go out as `link` messages on the signalling WebSocket.
 * `server`: `send(message)` (to the server), `isOpen()` and `bufferedAmount()` of that WebSocket.
 */
export class RelayChannel extends ChannelLike {
  constructor (peerId, server) {
    super()
    this.server = server
    this.peerId = peerId
    this.closed = false
  }

  get readyState () { return this.closed || !this.server.isOpen() ? 'closed' : 'open' }
  get bufferedAmount () { return this.server.bufferedAmount() }
  send (text) { this.server.send({ type: 'link', to: this.peerId, frame: text }) }
  close () { if (!this.closed) { this.closed = true; this.dispatchEvent(new Event('close')) } }
}

/** Link states: connecting -> open -> closed (an explicit, one-way state machine per attempt). */
export class Link {
  constructor (peerId, intentId, role, pc) {
    this.peerId = peerId
    this.intentId = intentId
    this.role = role // 'offerer' | 'answerer' | 'socket' (a WebSocket link to a native peer) | 'relay'
    this.pc = pc
    this.dc = null
    this.state = 'connecting'
    this.remoteDescriptionSet = false
    this.pendingCandidates = []
    this.sendChain = Promise.resolve()
    this.reassembler = new Reassembler(MAX_PARTIAL_CHARS)
    this.chunkSize = DEFAULT_CHUNK
    this.retiring = false // no new messages are sent on a retiring link
    this.retireTimer = null
    this.keptByRemote = false // the remote peer answered "K": it needs this link
  }
}
