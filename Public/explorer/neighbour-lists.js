// The neighbour lists of a browser's links, both ways (docs/protocol.md, "Neighbour lists"): the lists its
// links sent (for explorer/non-routing.js's routeNoN), and this peer's own list sent in an `N` frame on every
// direct link when the link opens and when the list changes, at most once per `minIntervalMs` per link.
// Links relayed by the server get no lists (the relay's rate limit is kept for overlay messages).

import { parseNeighbours, encodeNeighbours } from './non-routing.js'

export class NeighbourLists {
  #received = new Map()   // peerId -> [ids] (at most MAX_NEIGHBOURS)
  #sent = new Map()       // peerId -> { frame, at }
  #timer = null

  /**
   * @param {object} host
   * @param {() => string[]} host.list this peer's current neighbour list (explorer/non-routing.js's neighbourList)
   * @param {() => string[]} host.directPeers peers with an open direct link (not relayed)
   * @param {(peerId: string, frame: string) => Promise<void>} host.send sends one frame on a link
   * @param {number} [host.minIntervalMs] the shortest time between two lists on one link (default 1000 ms)
   */
  constructor (host) {
    this.host = host
    this.minIntervalMs = host.minIntervalMs ?? 1000
  }

  /** The list `peerId` last sent, or undefined (none yet, or its link went down). */
  list (peerId) { return this.#received.get(peerId) }

  /** An `N` frame from the link to `peerId`; anything else is ignored. */
  receive (peerId, text) {
    const ids = parseNeighbours(text)
    if (ids !== null) this.#received.set(peerId, ids)
  }

  /** The link to `peerId` is gone: its list and what it was sent are forgotten. */
  forget (peerId) {
    this.#received.delete(peerId)
    this.#sent.delete(peerId)
  }

  /** Sends this peer's list to every direct link that lacks it; links that got another list less than
   * minIntervalMs ago get it later (one timer at a time). */
  share () {
    const frame = encodeNeighbours(this.host.list())
    const now = Date.now()
    let wait = null
    for (const peerId of this.host.directPeers()) {
      const sent = this.#sent.get(peerId)
      if (sent?.frame === frame) continue
      if (sent && now < sent.at + this.minIntervalMs) { wait = Math.min(wait ?? Infinity, sent.at + this.minIntervalMs - now); continue }
      this.#sent.set(peerId, { frame, at: now })
      // A link that closes while sending is forgotten (a new link gets the list again).
      this.host.send(peerId, frame).catch(() => this.#sent.delete(peerId))
    }
    if (wait !== null && this.#timer === null) this.#timer = setTimeout(() => { this.#timer = null; this.share() }, wait)
  }

  /** Forgets every list and stops the timer (the peer left). */
  stop () {
    clearTimeout(this.#timer)
    this.#timer = null
    this.#received.clear()
    this.#sent.clear()
  }
}
