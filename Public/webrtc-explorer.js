// webrtc-explorer: join the BrowserCloud ring from a web page (protocol v2, docs/protocol.md).
//
//   import { Explorer } from '/webrtc-explorer.js'
//   const peer = new Explorer({ signalingURL: 'ws://host:9000', iceServers: [] })
//   peer.events.on('registered', ({ peerId }) => …)
//   peer.events.on('ready', () => …)            // the successor link is open (or the peer is alone)
//   peer.events.on('message', (envelope) => …)  // { srcId, dstId, data, hops }
//   await peer.register()
//   await peer.send(dstId, data)                // resolves when handed to the overlay
//   await peer.leave()
//
// Several servers (the instances of one cluster, docs/cluster.md): `signalingURL` may be a list,
// `new Explorer({ signalingURL: ['ws://a:9000', 'ws://b:9000'] })`. The first connection dials the first URL;
// every later attempt (after a close, a going-away or a failed attempt) dials the next in turn, so a peer
// whose instance stops comes back through another with its ID. `register()` rejects when its own attempt
// fails (ERR_SIGNALING_UNREACHABLE); the reconnection goes on with the next URL and 'registered' follows.
//
// A WebRTC attempt that times out or fails (ERR_CONNECT_TIMEOUT, ERR_CONNECTION_FAILURE) is tried again about a
// second later while the peer is still needed (after two failures through the server's relay, when it offers one).
//
// Other events: 'link-up' / 'link-down' ({ peerId }), 'ring' (the finger table snapshot after every
// change), 'signalling-lost', 'signalling-error' ({ code: 'ERR_SIGNALING_UNREACHABLE', message }: a
// reconnection attempt failed; another follows), 'signalling-restored', 'server-going-away' ({ retryAfterMs }: the server
// is shutting down; the peer comes back after that delay with its ID), 'error' ({ code, message }: the
// server's error codes of docs/protocol.md, 'hop-limit', 'no-route', and link failures { code, message,
// peerId } with a code of LINK_ERRORS, such as 'ERR_CONNECTION_FAILURE').
//
// Identity (docs/protocol.md, "Key-pair identity"): the peer holds an Ed25519 key pair
// (explorer/identity.js: WebCrypto, or TweetNaCl.js where crypto.subtle is missing; kept per origin in
// IndexedDB unless `identity: { ephemeral: true }`), signs every connection's `challenge` to register, and
// keeps the server's certificate of its binding (`certificate`). After a reconnection it signs for its ID
// and gets it back within the server's lease; `id-expired` makes it register fresh on the same connection.
//
// Signed overlay messages (docs/protocol.md, "Signed overlay messages"): `send` signs every message once
// with the peer's key and certificate (an `S` frame, explorer/signed-message.js); relays forward frames with
// one more hop, byte-identical otherwise; the destination verifies (trusting the server key of its own
// `challenge`) before it emits 'message', so a message's `srcId` is its authenticated source. Refused
// messages (forged, replayed, misdirected, stale, and unsigned `M` messages) are dropped, counted by reason
// (`overlayCounters`) and reported as 'forgery' ({ reason, srcId, link }).
//
// The four parts of the thesis: channel manager (explorer/channel-manager.js), finger table
// (explorer/finger-table.js), router (explorer/ring.js; neighbour-of-neighbour routing over the lists the links
// send, explorer/non-routing.js and explorer/neighbour-lists.js) and this interface (with explorer/events.js).

import { ChannelManager, LINK_ERRORS } from './explorer/channel-manager.js'
export { LINK_ERRORS } from './explorer/channel-manager.js'
import { Events } from './explorer/events.js'
import { FingerTable, ringEpochs } from './explorer/finger-table.js'
import { parseId } from './explorer/ring.js'
import { routeNoN, neighbourList } from './explorer/non-routing.js'
import { NeighbourLists } from './explorer/neighbour-lists.js'
import { loadIdentity, verify } from './explorer/identity.js'
import { OverlaySigner, OverlayVerifier, parseSignedFrame, encodeSignedFrame } from './explorer/signed-message.js'

export { route } from './explorer/ring.js'

const DEFAULT_MAX_HOPS = 64
/** After a WebRTC attempt timed out or failed, the needed peers without a link are dialled again after about this long. */
const LINK_RETRY_MS = 1000

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')

export class Explorer {
  /**
   * @param {object} options
   * @param {string|string[]} [options.signalingURL] WebSocket URL of the rendezvous server (default: this page's
   *   host), or a non-empty list of URLs of one cluster's instances, dialled in turn (see above); a TypeError otherwise
   * @param {RTCIceServer[]} [options.iceServers] STUN/TURN servers for real deployments; none on a LAN
   * @param {object} [options.capabilities] sent in `register` (runtimes, workers, transports)
   * @param {number} [options.maxHops] messages are dropped after this many hops (default 64)
   * @param {boolean} [options.webrtc] false: never try WebRTC (links go through the server's relay,
   *   when it offers one, and to native peers over WebSockets)
   * @param {object} [options.identity] the key pair: an identity from explorer/identity.js's
   *   `loadIdentity` (`{ publicKey, sign }`), or the options given to `loadIdentity` (e.g. `{ ephemeral: true }`)
   */
  constructor (options = {}) {
    const here = typeof location !== 'undefined' ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}` : undefined
    this.signalingURL = options.signalingURL ?? here
    this.iceServers = options.iceServers ?? []
    this.capabilities = options.capabilities ?? { runtimes: ['js'], transports: ['webrtc'] }
    this.maxHops = options.maxHops ?? DEFAULT_MAX_HOPS
    this.events = new Events()
    this.table = new FingerTable()
    this.identityOption = options.identity
    this.identity = typeof options.identity?.sign === 'function' ? options.identity : null
    this.epoch = null          // 16 hex, from `registered`
    this.certificate = null    // 220 hex: the server's certificate of (ID, public key, epoch)
    this.serverKey = null      // 64 hex, from `challenge`
    this.challengeNonce = null // the current connection's challenge
    this.readyEmitted = false
    this.registering = null
    this.linkRetry = null      // the timer of #retryLinks
    this.counter = 0
    // The middle part of this holder's message IDs (`<ID>-<8 hex>-<counter>`), drawn at each `registered`:
    // verifiers remember (srcId, id) for the time window, and a later holder of the same ID (or this key
    // back after a reload) counts from 0 again, so the counter alone would be refused as `replayed`.
    this.messageIdNonce = ''
    this.signer = null         // signs this peer's messages (after `registered`)
    this.verifier = null       // checks messages for this peer (from the first `challenge`)
    this.refusedElsewhere = { accepted: 0, certificateChecks: 0, rejected: {} }   // unsigned, malformed, and replaced verifiers
    // Signing and verifying are asynchronous (WebCrypto): each runs in one chain, so messages go out in the
    // order they were sent and are delivered in the order they arrived, as before signing.
    this.signing = Promise.resolve()
    this.verifying = Promise.resolve()
    this.channels = new ChannelManager({
      url: this.signalingURL,
      iceServers: this.iceServers,
      onServerMessage: (m) => this.#onServerMessage(m),
      onSignallingOpen: () => this.#onSignallingOpen(),
      onSignallingLost: () => this.events.emit('signalling-lost', {}),
      onSignallingError: (error) => this.events.emit('signalling-error', { code: error.code, message: error.message }),
      onLinkMessage: (peerId, text) => this.#onLinkMessage(peerId, text),
      onNeighbours: (peerId, text) => this.neighbours.receive(peerId, text),
      onLinkUp: (peerId) => { this.events.emit('link-up', { peerId }); this.#checkReady(); this.neighbours.share() },
      onLinkDown: (peerId) => { this.neighbours.forget(peerId); this.events.emit('link-down', { peerId }); this.#reconcileLinks() },
      isNeeded: (peerId) => this.table.neededPeers().has(peerId),
      onLinkError: (peerId, error) => { this.events.emit('error', { code: error.code, message: error.message, peerId }); this.#retryLinks(error.code) },
      webrtc: options.webrtc ?? true
    })
    // Neighbour-of-neighbour routing (docs/protocol.md): this peer's list goes to its direct links, theirs come back.
    this.neighbours = new NeighbourLists({
      list: () => neighbourList(this.table.peerId, this.table.neededPeers(), this.table.predecessor),
      directPeers: () => this.channels.openPeers(true),
      send: (peerId, frame) => this.channels.send(peerId, frame)
    })
  }

  /** This peer's ID (12 hex characters), or null before registration. */
  get peerId () { return this.table.peerId }

  /** This peer's successor list, nearest first (a copy). */
  get successors () { return this.table.successors }
  /** Whether 'ready' was emitted for the current registration (the successor link is open, or the peer is alone). */
  get ready () { return this.readyEmitted }

  /**
   * Overlay messages accepted here and refused by reason (a copy): `{ accepted, certificateChecks,
   * forgeries, rejected: { reason: count } }`, reasons of explorer/signed-message.js's REASONS and 'unsigned'.
   */
  get overlayCounters () {
    const v = this.verifier?.counters ?? { accepted: 0, certificateChecks: 0, rejected: {} }
    const e = this.refusedElsewhere
    const rejected = { ...v.rejected }
    for (const [reason, n] of Object.entries(e.rejected)) rejected[reason] = (rejected[reason] ?? 0) + n
    const forgeries = Object.values(rejected).reduce((a, b) => a + b, 0)
    return { accepted: v.accepted + e.accepted, certificateChecks: v.certificateChecks + e.certificateChecks, forgeries, rejected }
  }

  /** The public key this peer registers with (64 lowercase hex), once its identity is loaded. */
  get publicKey () { return this.identity?.publicKey ?? null }

  /** Loads the key pair (once), connects to the server and joins the ring. Resolves with `{ peerId }`. */
  async register () {
    if (this.table.peerId && this.channels.signallingOpen) return { peerId: this.table.peerId }
    if (!this.registering) {
      this.registering = (async () => {
        if (!this.identity) {
          this.identity = await loadIdentity(this.identityOption ?? {})
          this.ownsIdentity = true   // loaded here: leave() gives its stored slot back
        }
        return new Promise((resolve, reject) => {
          const offRegistered = this.events.on('registered', (r) => { offRegistered(); offError(); resolve(r) })
          const offError = this.events.on('error', (e) => {
            if (!e.recovering && ['server-full', 'bad-signature', 'rate-limited', 'ERR_IDENTITY_SIGN'].includes(e.code)) {
              offRegistered(); offError(); reject(new Error(`${e.code}: ${e.message}`))
            }
          })
          this.channels.connect().catch((error) => { offRegistered(); offError(); reject(error) })
        })
      })().finally(() => { this.registering = null })
    }
    return this.registering
  }

  /**
   * Signs `data` (any JSON value) and routes it to the peer responsible for `dstId` (docs/protocol.md, "Signed
   * overlay messages"). A message for this peer's own range is delivered here without signing.
   */
  async send (dstId, data) {
    parseId(dstId)
    const self = this.table.peerId
    if (!self) throw new Error('not registered: call register() first')
    const id = `${self}-${this.messageIdNonce}-${this.counter++}`
    if (this.#route(dstId).deliver) {
      this.events.emit('message', { srcId: self, dstId, data, hops: 0 })
      return
    }
    if (!this.signer) throw new Error('cannot sign: no certificate yet')
    const signer = this.signer
    const signed = this.signing.then(() => signer.frame(dstId, id, Date.now(), data ?? null))
    this.signing = signed.catch(() => {})   // the caller gets the error through `signed`; the chain goes on
    const frame = await signed
    if (frame === null) throw new Error('cannot sign: the clock is outside the message grammar')
    await this.#forwardFrame(dstId, frame)
  }

  /** Leaves the ring: tells the server, closes every link and the WebSocket. */
  async leave () {
    this.channels.sendToServer({ type: 'leave' })
    this.channels.stop()
    this.neighbours.stop()
    clearTimeout(this.linkRetry)
    this.linkRetry = null
    this.table.clear()
    this.epoch = null
    this.certificate = null
    this.readyEmitted = false
    this.#stopSigning()
    // The ID is free after `leave`, so the key may serve the next explorer of this page (app.js's Leave
    // then Join) instead of that one claiming a new slot. A key given in the options stays the caller's.
    if (this.ownsIdentity) {
      const identity = this.identity
      this.identity = null
      this.ownsIdentity = false
      await identity.release?.()
    }
  }

  /** The current ring state as this peer knows it, with link states. */
  snapshot () {
    return { ...this.table.snapshot(), links: this.channels.openPeers(), rows: this.table.rows }
  }

  // MARK: internals

  #onSignallingOpen () {
    // `register` follows the connection's `challenge` (#sendRegister).
    this.challengeNonce = null
    if (this.table.peerId) this.events.emit('signalling-restored', {})
  }

  /** Signs this connection's challenge with the peer's key, for its held ID (a reconnection or a server
   * restart: docs/protocol.md) or for a fresh one, and sends `register`. */
  async #sendRegister () {
    const nonce = this.challengeNonce
    const serverKey = this.serverKey
    const peerId = this.table.peerId
    const text = `browsercloud-register/1\n${serverKey}\n${nonce}\n${peerId ?? '-'}\n${this.identity.publicKey}`
    let signature
    try {
      signature = toHex(await this.identity.sign(new TextEncoder().encode(text)))
    } catch (error) {
      this.events.emit('error', { code: error.code ?? 'ERR_IDENTITY_SIGN', message: error.message })
      return
    }
    if (this.challengeNonce !== nonce) return   // the connection changed while signing: its own challenge follows
    const m = { type: 'register', publicKey: this.identity.publicKey, signature, capabilities: this.capabilities }
    if (peerId) m.peerId = peerId
    this.channels.sendToServer(m)
  }

  #onServerMessage (m) {
    if (m.type === 'challenge') {
      if (typeof m.nonce !== 'string' || typeof m.serverKey !== 'string' || !this.identity) return
      this.challengeNonce = m.nonce
      if (this.serverKey !== m.serverKey || !this.verifier) this.#trustServerKey(m.serverKey)
      this.serverKey = m.serverKey
      this.#sendRegister()
      return
    }
    if (m.type === 'error') {
      if (m.code === 'id-expired' && this.table.peerId) {
        // Our saved ID is no longer ours (its lease ended, or we left; docs/protocol.md): forget it and
        // register fresh on this connection (the same challenge); register() resolves with the new ID.
        this.table.clear()
        this.epoch = null
        this.certificate = null
        this.readyEmitted = false
        this.#stopSigning()
        this.events.emit('error', { code: m.code, message: m.message, recovering: true })
        this.#sendRegister()
        return
      }
      this.events.emit('error', { code: m.code, message: m.message })
      return
    }
    if (m.type === 'going-away') {
      // The server is restarting: the channel manager reconnects after retryAfterMs, and we sign for our ID.
      this.events.emit('server-going-away', { retryAfterMs: m.retryAfterMs })
      return
    }
    if (m.type === 'registered') {
      this.channels.configure({ selfId: m.peerId, relayAllowed: m.config?.linkRelay, serverMaxMessageBytes: m.config?.maxMessageBytes })
      const again = this.table.peerId === m.peerId
      this.epoch = m.epoch
      this.certificate = m.certificate
      this.#startSigning(m.peerId, m.certificate)
      if (!again) this.readyEmitted = false
      this.table.apply(m)
      this.events.emit('registered', { peerId: m.peerId, again })
      return
    }
    // A ring update's holder epochs: a departed holder's older certificate for that ID is refused from now on.
    for (const [peerId, epoch] of ringEpochs(m)) this.verifier?.noteEpoch(peerId, epoch)
    if (this.table.apply(m)) {
      this.#reconcileLinks()
      this.#checkReady()
      this.neighbours.share()
      this.events.emit('ring', this.snapshot())
    }
  }

  /** Dials every needed peer that has no link; retires links neither side needs any more. */
  #reconcileLinks () {
    if (!this.table.peerId) return
    const needed = this.table.neededPeers()
    for (const peerId of needed) this.channels.dial(peerId)
    for (const peerId of this.channels.peers()) {
      if (!needed.has(peerId)) this.channels.retire(peerId)
    }
  }

  /** A WebRTC attempt timed out or failed (its signals may have been lost, e.g. between a cluster's instances):
   * the needed peers without a link are dialled again after LINK_RETRY_MS (one timer at a time). */
  #retryLinks (code) {
    if (this.linkRetry || (code !== LINK_ERRORS.CONNECT_TIMEOUT && code !== LINK_ERRORS.CONNECTION_FAILURE)) return
    this.linkRetry = setTimeout(() => { this.linkRetry = null; this.#reconcileLinks() }, LINK_RETRY_MS * (0.75 + Math.random() / 2))
  }

  #checkReady () {
    if (this.readyEmitted || !this.table.peerId) return
    const successor = this.table.successors[0]
    if (successor === undefined || this.channels.isOpen(successor)) {
      this.readyEmitted = true
      this.events.emit('ready', {})
    }
  }

  // MARK: signed overlay messages

  /** The server key of a `challenge` becomes the one trusted issuer (a new verifier when it changed). */
  #trustServerKey (serverKey) {
    if (this.verifier) this.#addCounters(this.verifier.counters)
    this.verifier = new OverlayVerifier({ serverKey, self: this.table.peerId, verify })
  }

  #startSigning (peerId, certificate) {
    if (this.verifier) this.verifier.self = peerId
    this.messageIdNonce = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('')
    const ok = typeof certificate === 'string' && certificate.slice(0, 12) === peerId
    this.signer = ok ? new OverlaySigner({ certificate, sign: this.identity.sign }) : null
  }

  #stopSigning () {
    this.signer = null
    if (this.verifier) this.verifier.self = null
  }

  #addCounters (c) {
    const e = this.refusedElsewhere
    e.accepted += c.accepted
    e.certificateChecks += c.certificateChecks
    for (const [reason, n] of Object.entries(c.rejected)) if (n > 0) e.rejected[reason] = (e.rejected[reason] ?? 0) + n
  }

  /** A refusal the verifier did not count (unsigned, malformed, no verifier yet). */
  #refuse (reason, srcId, link) {
    this.refusedElsewhere.rejected[reason] = (this.refusedElsewhere.rejected[reason] ?? 0) + 1
    this.events.emit('forgery', { reason, srcId, link })
  }

  /** A message from the link to `peerId`: a signed frame is relayed by its dstId (one more hop) or verified
   * and delivered here; anything else (an unsigned `M` message) is refused as 'unsigned'. */
  async #onLinkMessage (peerId, text) {
    if (typeof text !== 'string' || text[0] !== 'S') { this.#refuse('unsigned', null, peerId); return }
    const f = parseSignedFrame(text)
    if (!f) { this.#refuse('malformed', null, peerId); return }
    const hops = f.hops + 1
    if (hops > this.maxHops) {
      this.events.emit('error', { code: 'hop-limit', message: `dropped a message for ${f.dstId} after ${hops} hops` })
      return
    }
    const frame = encodeSignedFrame(f, hops)
    if (this.#route(f.dstId).deliver) {
      if (!this.verifier) { this.#refuse('bad-certificate', f.srcId, peerId); return }
      // The routing rules deliver here: this peer is responsible for dstId (its ID, or a key of its range).
      const verifier = this.verifier
      const verified = this.verifying.then(() => verifier.verify(frame, Date.now(), { responsible: () => true }))
      this.verifying = verified.catch(() => {})   // the caller gets the error through `verified`; the chain goes on
      const v = await verified
      if (v.verdict === 'accepted') this.events.emit('message', { srcId: v.srcId, dstId: f.dstId, data: v.data, hops: v.hops })
      else this.events.emit('forgery', { reason: v.reason, srcId: f.srcId, link: peerId })
      return
    }
    this.#forwardFrame(f.dstId, frame).catch((error) => this.events.emit('error', { code: 'no-route', message: error.message }))
  }

  #route (dstId) {
    // Only links to peers of the finger table count: a link to a peer that has left may look open for a
    // while (until ICE consent times out), but the server has already removed it from the table.
    const known = this.table.neededPeers()
    return routeNoN({
      neighbours: (peerId) => this.neighbours.list(peerId),
      fingers: this.table.snapshot().fingers,
      self: this.table.peerId,
      dst: dstId,
      predecessor: this.table.predecessor,
      successors: this.table.successors,
      candidates: this.channels.openPeers().filter((p) => known.has(p))
    })
  }

  /** Sends a signed frame on the link its dstId routes to. */
  async #forwardFrame (dstId, frame) {
    const decision = this.#route(dstId)
    if (decision.deliver || decision.error) throw new Error(`no route to ${dstId}: no open link`)
    await this.channels.send(decision.next, frame)
  }
}
