// The finger table manager (thesis module 2): this peer's view of its place in the ring, kept up to
// date from the server's `registered`, `config`, `predecessor`, `successors` and `finger-update`
// messages (docs/protocol.md). Its state is private: other modules read it through the getters and
// change it only through `apply` (server messages) and `clear` (leaving the ring).

export class FingerTable {
  #peerId = null
  #predecessor = null
  #successors = []
  /** row -> { start, peerId } for the rows in force */
  #fingers = new Map()
  #rows = []

  /** This peer's ID, or null before registration (and after `clear`). */
  get peerId () { return this.#peerId }
  /** The predecessor's ID, or null. */
  get predecessor () { return this.#predecessor }
  /** The successor list, nearest first (a copy). */
  get successors () { return [...this.#successors] }
  /** The finger rows in force (a copy). */
  get rows () { return [...this.#rows] }

  /** Forgets the ring and this peer's ID (the peer left). */
  clear () {
    this.#peerId = null
    this.#reset()
  }

  #reset () {
    this.#predecessor = null
    this.#successors = []
    this.#fingers = new Map()
  }

  /** Applies one server message; returns true when it changed the ring state. */
  apply (m) {
    switch (m.type) {
      case 'registered':
        this.#peerId = m.peerId
        this.#reset()
        this.#rows = m.config.fingerRows
        return true
      case 'config':
        this.#rows = m.fingerRows
        for (const row of [...this.#fingers.keys()]) if (!this.#rows.includes(row)) this.#fingers.delete(row)
        return true
      case 'predecessor':
        this.#predecessor = m.peerId
        return true
      case 'successors':
        this.#successors = m.peerIds
        return true
      case 'finger-update':
        this.#fingers.set(m.row, { start: m.start, peerId: m.peerId })
        return true
      default:
        return false
    }
  }

  /** Peers this peer must dial: its successor list and its fingers (never itself). */
  neededPeers () {
    const needed = new Set(this.#successors)
    for (const { peerId } of this.#fingers.values()) if (peerId) needed.add(peerId)
    needed.delete(this.#peerId)
    return needed
  }

  snapshot () {
    return {
      peerId: this.#peerId,
      predecessor: this.#predecessor,
      successors: [...this.#successors],
      fingers: Object.fromEntries([...this.#fingers].sort((a, b) => a[0] - b[0]).map(([row, f]) => [row, f.peerId]))
    }
  }
}

const EPOCH = /^[0-9a-f]{16}$/

/**
 * The holder epochs a ring update names, as [[peerId, epoch (16 hex)], …] (docs/protocol.md, "Holder epochs
 * in ring updates"): `predecessor` and `finger-update` carry `epoch`, `successors` an `epochs` array parallel
 * to `peerIds`. Empty for other messages, and for updates without (or with malformed) epochs.
 */
export function ringEpochs (m) {
  const ok = (peerId, epoch) => typeof peerId === 'string' && typeof epoch === 'string' && EPOCH.test(epoch)
  switch (m?.type) {
    case 'predecessor':
    case 'finger-update':
      return ok(m.peerId, m.epoch) ? [[m.peerId, m.epoch]] : []
    case 'successors': {
      const ids = m.peerIds
      const epochs = m.epochs
      if (!Array.isArray(ids) || !Array.isArray(epochs) || epochs.length !== ids.length) return []
      return ids.every((p, i) => ok(p, epochs[i])) ? ids.map((p, i) => [p, epochs[i]]) : []
    }
    default:
      return []
  }
}
