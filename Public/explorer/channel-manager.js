// The channel manager (thesis module 1): the WebSocket to the rendezvous server, and one
// RTCPeerConnection with one ordered data channel (RFC 8831) per linked peer, set up through the
// server's signal relay with trickle ICE.
//
// Connection attempts carry an `intentId`; signals of any other attempt are ignored, so late or
// duplicate offers, answers and candidates of an abandoned attempt do no harm. Glare (both peers dial
// each other at once) is resolved by ID: the attempt of the peer with the smaller ID wins.
//
// Native peers (browsercloud peer) listen for WebSockets and send "dial-me" ({ type: 'dial-me', url, nonce }),
// also in answer to an offer; the browser dials only the sender's vouched URL (`fromUrl`, explorer/dial-me.js)
// and says hello with the nonce. Such links carry the frames of a data channel (docs/protocol.md, "Links").
//
// Last resort: when the server relays links (`linkRelay` in its config) and WebRTC to a peer failed
// twice (or is turned off), the link's frames go through the server in `link` messages.

import { parseFrame, parseJSON, chunkFrames, MAX_PARTIAL_MESSAGES } from './link-frame.js'
import { LINK_ERRORS, LinkError } from './link-errors.js'
import { Link, RelayChannel, randomId, MAX_PARTIAL_CHARS } from './link-channels.js'
import { dialSocketLink } from './socket-link.js'
import { dialMeRefusal } from './dial-me.js'

export { LINK_ERRORS, LinkError } from './link-errors.js'

const SUBPROTOCOL = 'webrtc-explorer.v2'
/** A WebRTC attempt still connecting after this long has failed. */
const CONNECT_TIMEOUT_MS = 15000
/** WebRTC failures to one peer before its link goes through the server's relay (when allowed). */
const FAILURES_BEFORE_RELAY = 2
const CHANNEL_LABEL = 'webrtc-explorer'
const HIGH_WATER = 1024 * 1024
const LOW_WATER = 256 * 1024
const RETIRE_GRACE_MS = 2000

export class ChannelManager {
  /**
   * @param {object} o
   * @param {string|string[]} o.url the signalling server's WebSocket URL, or several (the instances of one
   *   cluster, docs/cluster.md): the first attempt dials the first; every later attempt (after a close or a
   *   failed attempt) dials the next in turn, wrapping around. Throws a TypeError when empty or not strings.
   * @param {RTCIceServer[]} o.iceServers STUN/TURN servers (none needed on a LAN)
   * @param {(m: object) => void} o.onServerMessage every non-signal server message
   * @param {() => void} o.onSignallingOpen called on every (re)connection of the WebSocket
   * @param {() => void} o.onSignallingLost the WebSocket closed (a reconnection follows unless stopped)
   * @param {(peerId: string, text: string) => void} o.onLinkMessage a whole message from a peer: a signed
   *   frame (`S…`), or the JSON text of an unsigned `M` message (reassembled C parts give either)
   * @param {(peerId: string) => void} o.onLinkUp / o.onLinkDown
   * @param {(peerId: string) => boolean} o.isNeeded whether this peer needs a link to peerId
   * @param {(peerId: string, error: LinkError) => void} [o.onLinkError] why a link failed (a code of LINK_ERRORS)
   * @param {(error: LinkError) => void} [o.onSignallingError] a reconnection attempt failed (ERR_SIGNALING_UNREACHABLE; another follows)
   */
  constructor (o) {
    this.o = o
    this.urls = Array.isArray(o.url) ? [...o.url] : [o.url]
    if (!this.urls.length || this.urls.some((u) => typeof u !== 'string' || !u)) throw new TypeError('url: a WebSocket URL or a non-empty list of them')
    this.urlIndex = 0           // this.urls[urlIndex]: the URL of the current (or next) attempt
    this.selfId = null
    this.links = new Map()
    this.failures = new Map()   // peerId → WebRTC attempts that never opened
    this.relayAllowed = false   // from the server's config (`linkRelay`)
    this.ws = null
    this.stopped = false
    this.attempt = 0
    this.reconnectTimer = null
    this.dialsRefused = 0       // dial-me signals refused: not the sender's vouched URL (ERR_DIAL_REFUSED)
  }

  /** What the server said at registration: this peer's ID and whether (and how large) it relays links. */
  configure ({ selfId, relayAllowed, serverMaxMessageBytes }) {
    this.selfId = selfId
    this.relayAllowed = relayAllowed === true
    this.serverMaxMessageBytes = serverMaxMessageBytes
  }

  // MARK: signalling

  /** The signalling URL of the current (or next) connection attempt. */
  get url () { return this.urls[this.urlIndex] }

  connect () {
    this.stopped = false
    return new Promise((resolve, reject) => {
      let opened = false
      const url = this.url
      const ws = new WebSocket(url, SUBPROTOCOL)
      this.ws = ws
      ws.onopen = () => {
        opened = true
        this.attempt = 0
        resolve()
        this.o.onSignallingOpen()
      }
      ws.onmessage = (e) => {
        const m = parseJSON(e.data)
        if (m === null || typeof m !== 'object') return
        if (m.type === 'going-away' && Number.isFinite(m.retryAfterMs)) this.retryAfterMs = Math.min(60000, Math.max(0, m.retryAfterMs))
        if (m.type === 'signal') this.#onSignal(m)
        else if (m.type === 'link') this.#onRelayed(m)
        else this.o.onServerMessage(m)
      }
      ws.onclose = () => {
        if (this.ws !== ws) return
        this.ws = null
        // The next attempt dials the next URL of the list (the same one when there is only one).
        this.urlIndex = (this.urlIndex + 1) % this.urls.length
        if (!opened) reject(new LinkError(LINK_ERRORS.SIGNALING_UNREACHABLE, `cannot reach the signalling server at ${url}`))
        for (const link of [...this.links.values()]) if (link.role === 'relay') this.#destroy(link)
        if (opened) this.o.onSignallingLost()
        this.#scheduleReconnect()
      }
    })
  }

  #scheduleReconnect () {
    if (this.stopped || this.reconnectTimer) return
    // After a going-away, the delay the server asked for; otherwise exponential backoff with jitter:
    // 0.25 s, 0.5 s, 1 s ... at most 10 s.
    const delay = this.retryAfterMs ?? Math.min(10000, 250 * 2 ** this.attempt) * (0.75 + Math.random() / 2)
    this.retryAfterMs = undefined
    this.attempt++
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      // A failed attempt closes its WebSocket, whose close handler schedules the next one; the page hears of it.
      this.connect().catch((error) => this.o.onSignallingError?.(error))
    }, delay)
  }

  sendToServer (m) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false
    this.ws.send(JSON.stringify(m))
    return true
  }

  get signallingOpen () { return this.ws !== null && this.ws.readyState === WebSocket.OPEN }

  // MARK: links

  isOpen (peerId) {
    const link = this.links.get(peerId)
    return link?.state === 'open' && !link.retiring
  }

  /** Peers with a link in any state (connecting, open, retiring). */
  peers () { return [...this.links.keys()] }

  /** Peers with a usable link (open and not being retired); with `direct`, only links not relayed by the server. */
  openPeers (direct = false) { return [...this.links.values()].filter((l) => l.state === 'open' && !l.retiring && !(direct && l.role === 'relay')).map((l) => l.peerId) }

  /** Asks to close a link this peer no longer needs (the retirement handshake above). Our own attempt still
   * connecting is dropped at once: its peer may have left (our offer refused); back with the same ID (a
   * reloaded page keeps its key), its offer would lose the glare to our dead attempt: no link at all. */
  retire (peerId) {
    const link = this.links.get(peerId)
    if (link?.state === 'connecting' && link.role === 'offerer') { const f = this.failures.get(peerId) ?? 0; this.#destroy(link); this.failures.set(peerId, f); return } // not a failure
    if (!link || link.state !== 'open' || link.retiring || link.keptByRemote) return
    link.retiring = true
    this.#sendControl(link, 'X')
    link.retireTimer = setTimeout(() => this.#destroy(link), RETIRE_GRACE_MS)
  }

  #sendControl (link, code) {
    if (link.dc?.readyState !== 'open') return
    try {
      link.dc.send(code)
    } catch (error) {
      this.#destroy(link, new LinkError(LINK_ERRORS.SEND, `cannot send on the link to ${link.peerId}: ${error.message}`))
    }
  }

  /** Starts a connection attempt to `peerId` unless one is open or under way. */
  dial (peerId) {
    if (this.links.has(peerId) || peerId === this.selfId) return
    if (this.relayAllowed && (this.o.webrtc === false || (this.failures.get(peerId) ?? 0) >= FAILURES_BEFORE_RELAY)) {
      this.#openRelay(peerId)
      return
    }
    const link = this.#newLink(peerId, randomId(), 'offerer')
    link.connectTimer = setTimeout(() => {
      if (link.state === 'connecting') this.#destroy(link, new LinkError(LINK_ERRORS.CONNECT_TIMEOUT, `no data channel to ${peerId} after ${CONNECT_TIMEOUT_MS} ms`))
    }, CONNECT_TIMEOUT_MS)
    const dc = link.pc.createDataChannel(CHANNEL_LABEL, { ordered: true })
    this.#attachChannel(link, dc)
    link.pc.createOffer()
      .then((offer) => link.pc.setLocalDescription(offer))
      .then(() => this.#signal(link, { type: 'offer', sdp: link.pc.localDescription.sdp }))
      .catch((error) => this.#destroy(link, new LinkError(LINK_ERRORS.SIGNALING, `offer to ${peerId}: ${error.message}`)))
  }

  close (peerId) {
    const link = this.links.get(peerId)
    if (link) this.#destroy(link)
  }

  closeAll () {
    for (const link of [...this.links.values()]) this.#destroy(link)
  }

  stop () {
    this.stopped = true
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this.closeAll()
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close() }
  }

  /** Sends one message to a linked peer, in chunks when needed, respecting backpressure. */
  send (peerId, text) {
    const link = this.links.get(peerId)
    if (!link || link.state !== 'open') return Promise.reject(new Error(`no open link to ${peerId}`))
    const run = link.sendChain.then(() => this.#sendNow(link, text))
    link.sendChain = run.catch(() => {})   // the caller gets the error through `run`; the chain goes on
    return run
  }

  async #sendNow (link, text) {
    const dc = link.dc
    // A signed overlay frame (`S…`, docs/protocol.md) or a neighbour list (`N…`, never over 832 characters) stands
    // on its own: as it is, or in C parts; any other text is a message's JSON, sent as `M` + text or in C parts.
    const whole = text[0] === 'S' || text[0] === 'N'
    const pieces = text.length + (whole ? 0 : 1) <= link.chunkSize ? [whole ? text : 'M' + text] : chunkFrames(text, link.chunkSize - 64, randomId())
    for (const piece of pieces) {
      if (dc.readyState !== 'open') throw new Error(`link to ${link.peerId} closed`)
      if (dc.bufferedAmount > HIGH_WATER) {
        await new Promise((resolve) => {
          const done = () => { dc.removeEventListener('bufferedamountlow', done); dc.removeEventListener('close', done); resolve() }
          dc.addEventListener('bufferedamountlow', done)
          dc.addEventListener('close', done)
        })
        if (dc.readyState !== 'open') throw new Error(`link to ${link.peerId} closed`)
      }
      dc.send(piece)
    }
  }

  #receive (link, data) {
    // A signed overlay frame goes up whole (the explorer relays or verifies it).
    if (typeof data === 'string' && data[0] === 'S') { this.o.onLinkMessage(link.peerId, data); return }
    if (typeof data === 'string' && data[0] === 'N') { this.o.onNeighbours?.(link.peerId, data); return }   // a neighbour list
    const frame = parseFrame(data)
    switch (frame?.kind) {
      case 'message':
        this.o.onLinkMessage(link.peerId, frame.text)
        return
      case 'retire':
        if (this.o.isNeeded(link.peerId)) this.#sendControl(link, 'K')
        else link.retiring = true // the remote will close it after its grace period
        return
      case 'keep':
        clearTimeout(link.retireTimer)
        link.retiring = false
        link.keptByRemote = true
        return
      case 'chunk': {
        const outcome = link.reassembler.add(frame.id, frame.index, frame.count, frame.part)
        if (outcome.status === 'complete') this.o.onLinkMessage(link.peerId, outcome.text)
        if (outcome.status === 'overflow') {
          this.#destroy(link, new LinkError(LINK_ERRORS.REASSEMBLY,
            `${link.peerId} exceeded ${MAX_PARTIAL_MESSAGES} partial messages or ${MAX_PARTIAL_CHARS} characters in them`))
        }
      }
    }
  }

  #newLink (peerId, intentId, role) {
    const pc = new RTCPeerConnection({ iceServers: this.o.iceServers })
    const link = new Link(peerId, intentId, role, pc)
    this.links.set(peerId, link)
    pc.onicecandidate = (e) => {
      this.#signal(link, { candidate: e.candidate ? e.candidate.toJSON() : null })
    }
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') this.#destroy(link, new LinkError(LINK_ERRORS.CONNECTION_FAILURE, `the connection to ${peerId} failed`))
      else if (pc.connectionState === 'closed') this.#destroy(link)
    }
    return link
  }

  #attachChannel (link, dc) {
    link.dc = dc
    dc.bufferedAmountLowThreshold = LOW_WATER
    dc.onopen = () => {
      if (this.links.get(link.peerId) !== link) { dc.close(); return }
      const max = link.pc.sctp?.maxMessageSize
      if (Number.isFinite(max) && max > 1024) link.chunkSize = Math.min(64 * 1024, max)
      link.state = 'open'
      this.o.onLinkUp(link.peerId)
    }
    dc.onmessage = (e) => this.#receive(link, e.data)
    dc.onclose = () => this.#destroy(link)
  }

  #signal (link, signal) {
    this.sendToServer({ type: 'signal', to: link.peerId, intentId: link.intentId, signal })
  }

  #onSignal ({ from, intentId, signal, fromUrl }) {
    if (typeof from !== 'string' || typeof intentId !== 'string' || !signal) return
    if (signal.type === 'dial-me') { this.#dialSocket(from, signal, fromUrl); return }
    let link = this.links.get(from)
    if (signal.type === 'offer') {
      if (link && link.intentId === intentId) return // duplicate
      if (link && link.state === 'connecting' && link.role === 'offerer' && this.selfId < from) return // glare: ours wins
      // The remote peer started over (a reloaded page keeps its ID): the new link goes in the table before
      // the old one's teardown, whose link-down would otherwise dial again (an attempt orphaned at once).
      const replaced = link
      link = this.#newLink(from, intentId, 'answerer')
      if (replaced) this.#destroy(replaced)
      link.pc.ondatachannel = (e) => this.#attachChannel(link, e.channel)
      link.pc.setRemoteDescription({ type: 'offer', sdp: signal.sdp })
        .then(() => { link.remoteDescriptionSet = true; return this.#flushCandidates(link) })
        .then(() => link.pc.createAnswer())
        .then((answer) => link.pc.setLocalDescription(answer))
        .then(() => this.#signal(link, { type: 'answer', sdp: link.pc.localDescription.sdp }))
        .catch((error) => this.#destroy(link, new LinkError(LINK_ERRORS.SIGNALING, `answer to ${from}: ${error.message}`)))
      return
    }
    if (!link || link.intentId !== intentId) return // a signal of another (abandoned) attempt
    if (signal.type === 'answer') {
      if (link.role !== 'offerer' || link.remoteDescriptionSet) return
      link.pc.setRemoteDescription({ type: 'answer', sdp: signal.sdp })
        .then(() => { link.remoteDescriptionSet = true; return this.#flushCandidates(link) })
        .catch((error) => this.#destroy(link, new LinkError(LINK_ERRORS.SIGNALING, `answer from ${from}: ${error.message}`)))
    } else if ('candidate' in signal) {
      if (!link.remoteDescriptionSet) { link.pendingCandidates.push(signal.candidate); return }
      this.#addCandidate(link, signal.candidate)
    }
  }

  /** A link through the server's relay (last resort). */
  #openRelay (peerId) {
    const link = new Link(peerId, randomId(), 'relay', null)
    link.dc = new RelayChannel(peerId, { send: (m) => this.sendToServer(m), isOpen: () => this.signallingOpen, bufferedAmount: () => this.ws?.bufferedAmount ?? 0 })
    // A relayed frame travels inside a JSON `link` message under the server's message limit.
    link.chunkSize = Math.max(1024, Math.floor(((this.serverMaxMessageBytes ?? 65536) - 512) / 6))
    link.state = 'open'
    this.links.set(peerId, link)
    this.o.onLinkUp(peerId)
    return link
  }

  #onRelayed ({ from, frame }) {
    if (!this.relayAllowed || typeof from !== 'string' || typeof frame !== 'string' || from === this.selfId) return
    let link = this.links.get(from)
    if (link && link.state !== 'open') { this.#destroy(link); link = undefined }
    if (!link) link = this.#openRelay(from)   // the other side reaches us only through the relay
    this.#receive(link, frame)
  }

  /** A native peer asks to be dialled at `url`, its vouched `fromUrl` (its listener); `nonce` proves who we are. */
  #dialSocket (peerId, { url, nonce }, fromUrl) {
    if (typeof nonce !== 'string' || nonce.length > 64) return
    const refusal = dialMeRefusal({ url, fromUrl, signalingURL: this.url })
    const existing = this.links.get(peerId)
    if (refusal !== null) {
      this.dialsRefused++ // counted and reported; a WebRTC attempt the native peer cannot answer ends (towards the relay)
      const error = new LinkError(LINK_ERRORS.DIAL_REFUSED, `refused to dial ${peerId}: ${refusal}`)
      return existing?.state === 'connecting' && existing.role !== 'socket' ? this.#destroy(existing, error) : this.o.onLinkError?.(peerId, error)
    }
    if (existing && (existing.state === 'open' || existing.role === 'socket')) return
    if (existing) this.#destroy(existing) // a WebRTC attempt the native peer cannot answer
    try {
      this.links.set(peerId, dialSocketLink(peerId, fromUrl, {
        selfId: this.selfId,
        nonce,
        lowWater: LOW_WATER,
        isCurrent: (link) => this.links.get(peerId) === link,
        onOpen: (link) => { link.state = 'open'; this.o.onLinkUp(peerId) },
        onFrame: (link, data) => this.#receive(link, data),
        onEnd: (link, error) => this.#destroy(link, error)
      }))
    } catch (error) {
      this.o.onLinkError?.(peerId, error)
    }
  }

  async #flushCandidates (link) {
    const pending = link.pendingCandidates
    link.pendingCandidates = []
    for (const c of pending) await this.#addCandidate(link, c)
  }

  /** A refused remote candidate is reported; the link goes on with the others (RFC 8838 trickle ICE). */
  #addCandidate (link, candidate) {
    return link.pc.addIceCandidate(candidate ?? undefined).catch((error) => {
      this.o.onLinkError?.(link.peerId, new LinkError(LINK_ERRORS.ICE_CANDIDATE, `a candidate from ${link.peerId}: ${error.message}`))
    })
  }

  /**
   * The one teardown path of a link, whatever ended it: closes its channel and connection, forgets it,
   * counts a WebRTC attempt that never opened, and reports `error` (if any) and the link going down once.
   */
  #destroy (link, error) {
    if (link.state === 'closed') return
    const wasOpen = link.state === 'open'
    if (!wasOpen && (link.role === 'offerer' || link.role === 'answerer')) {
      this.failures.set(link.peerId, (this.failures.get(link.peerId) ?? 0) + 1)
    }
    if (wasOpen) this.failures.delete(link.peerId)
    link.state = 'closed'
    clearTimeout(link.retireTimer)
    clearTimeout(link.connectTimer)
    if (this.links.get(link.peerId) === link) this.links.delete(link.peerId)
    // Neither close() throws (RTCDataChannel, RTCPeerConnection, WebSocket without arguments).
    link.dc?.close()
    link.pc?.close()
    if (error) this.o.onLinkError?.(link.peerId, error)
    if (wasOpen) this.o.onLinkDown(link.peerId)
  }
}
