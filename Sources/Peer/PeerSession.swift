import Ring
import SignedOverlay
import Transport
import WireProtocol

/// The pure core of a native peer (docs/protocol.md): the session with the rendezvous server (register
/// by signing the connection's challenge with its key, again with its ID after a reconnect, ring updates, signals, `going-away`, reconnecting with backoff), its
/// `LinkTable`, and routing. Transport events go in with the time (`now`, nanoseconds of a monotonic
/// clock); `PeerAction`s come out, for `PeerNode` (the I/O shell) to perform in order. It reads no
/// clock and no socket; its randomness (nonces, intent and part IDs, backoff jitter) comes from the
/// generator it is given.
///
/// Session lifecycle: idle → connecting (`connectToServer`) → registering (the socket opened; `register`
/// sent when the server's `challenge` arrives) → registered; a lost or unreachable server leads back to idle with a reconnect
/// time (exponential backoff with jitter, or the delay of `going-away`); `stop` leads to stopped, for good.
public struct PeerSession {
    public enum State: Equatable, Sendable { case idle, connecting, registering, registered, stopped }

    public let configuration: PeerConfiguration
    /// The URL other peers dial (sent in `register` and in "dial me").
    public var url: String
    public internal(set) var state: State = .idle
    public internal(set) var peerId: PeerID?
    /// The key the server binds the ID to.
    public let identity: PeerIdentity
    /// The holder epoch and the server's certificate of (ID, public key, epoch), from `registered`.
    public internal(set) var epoch: UInt64?
    public internal(set) var certificate: String?
    /// The server's public key (from `challenge`).
    public internal(set) var serverKey: String?
    /// The challenge nonce of the current server connection (nil until its `challenge` arrives).
    var nonce: String?
    public internal(set) var ring = PeerState(predecessor: nil, successors: [], fingers: [:])
    public internal(set) var serverConnection: ConnectionID?
    /// Whether the server relays link frames (from its `registered` config), and its message limit.
    public internal(set) var relayAllowed = false
    public internal(set) var serverMaxMessageBytes = 65536
    public internal(set) var links: LinkTable
    /// When the next connection attempt is due (state idle).
    public internal(set) var reconnectAt: UInt64?
    var reconnectAttempt = 0
    /// Set by `going-away`: the delay the server asked for before the next connection attempt.
    var retryAfter: UInt64?
    var counter = 0
    /// The middle part of this holder's overlay message IDs (`<ID>-<8 hex>-n<counter>`), drawn at each
    /// `registered`: the verifiers' replay memory is keyed by (srcId, id), and a later holder of the same ID
    /// (or this key back after a restart) counts from 1 again, so the counter alone would repeat the previous
    /// holder's IDs and its messages would be refused as `replayed` for the time window.
    var messageIdNonce = ""
    /// `dial-me` signals refused because their URL was not the sender's vouched URL (or unusable).
    public internal(set) var dialMeRefused = 0
    var random: any RandomNumberGenerator
    /// Signs this peer's overlay messages (its key and certificate, from `registered`; nil before).
    var signer: OverlaySigner?
    /// Checks signed overlay messages for this peer (trusting the `serverKey` of the current `challenge`;
    /// `me` set at `registered`, cleared when the ID is gone). Nil before the first challenge.
    var verifier: OverlayVerifier?
    /// Refusals of verifiers replaced after a server-key change, and of messages refused without one
    /// (`unsigned` `M` messages, frames that came before any `challenge`).
    var refusedElsewhere = OverlayCounters()
    /// The neighbour lists the links sent, and what each link was sent (docs/protocol.md, "Neighbour lists").
    public internal(set) var neighbourLists = NeighbourLists()

    /// `random` supplies nonces, IDs and jitter: the system generator in production, a seeded one in tests.
    /// `identity`: the key pair the peer registers with.
    public init(configuration: PeerConfiguration, url: String, identity: PeerIdentity, random: any RandomNumberGenerator) {
        self.configuration = configuration
        self.url = url
        self.identity = identity
        self.random = random
        links = LinkTable(maxMessageBytes: configuration.maxLinkMessageBytes)
    }

    /// Successors and fingers, without this peer.
    public func neededPeers() -> Set<PeerID> {
        var s = Set(ring.successors)
        for case let p? in ring.fingers.values { s.insert(p) }
        if let me = peerId { s.remove(me) }
        return s
    }

    /// Peers with an open link that are in the finger table.
    public var linkedPeers: [PeerID] { links.linked(among: neededPeers()) }

    /// Whether every needed peer has an open link (the ring is usable from here).
    public var isReady: Bool { state == .registered && neededPeers().allSatisfy { links.isOpen($0) } }

    // MARK: server session

    /// Starts a connection attempt (unless stopped): the shell opens the socket and reports it with
    /// `serverConnecting`.
    public mutating func connect() -> [PeerAction] {
        guard state != .stopped else { return [] }
        state = .connecting
        return [.connectToServer]
    }

    /// The shell opened (`connection`) or could not start (nil) the server connection.
    public mutating func serverConnecting(_ connection: ConnectionID?, now: UInt64) {
        serverConnection = connection
        nonce = nil
        if connection == nil { scheduleReconnect(now: now) }
    }

    mutating func scheduleReconnect(now: UInt64) {
        guard state != .stopped else { return }
        state = .idle
        serverConnection = nil
        nonce = nil
        if let retryAfter {
            // The server went away on purpose and said when to come back.
            self.retryAfter = nil
            reconnectAt = now + retryAfter
            return
        }
        // Exponential backoff with jitter: 0.25 s … 10 s.
        let base = min(10.0, 0.25 * Double(1 << min(reconnectAttempt, 6)))
        reconnectAttempt += 1
        reconnectAt = now + UInt64(base * Double.random(in: 0.75...1.25, using: &random) * 1e9)
    }

    /// Sends `register` signed for this connection's challenge (nothing before the challenge arrived).
    mutating func register() -> [PeerAction] {
        guard let c = serverConnection else { return [] }
        state = .registering
        guard let nonce, let serverKey else { return [] }
        var caps = configuration.capabilities
        caps["transports"] = .array(["websocket"])
        caps["url"] = .string(url)
        let signature = identity.registrationSignature(serverKey: serverKey, nonce: nonce, peerId: peerId)
        return [.sendServer(c, .register(peerId: peerId, publicKey: identity.publicKey, signature: signature, capabilities: caps))]
    }

    mutating func serverMessage(_ bytes: [UInt8], now: UInt64, wallClockMs: Int64) -> [PeerAction] {
        let message: ServerMessage
        do { message = try ServerMessage.decode(bytes) } catch {
            return [.log(.warning, "unreadable server message: \(error.message)")]
        }
        switch message {
        case .challenge(let nonce, let serverKey):
            guard state == .registering || state == .connecting else { return [] }
            self.nonce = nonce
            self.serverKey = serverKey
            trustServerKey(serverKey)
            return register()
        case .registered(let id, let epoch, let certificate, let config):
            let again = peerId == id
            if !again { ring = PeerState(predecessor: nil, successors: [], fingers: [:]) }
            peerId = id
            self.epoch = epoch
            self.certificate = certificate
            ring.apply([.config(fingerRows: config.fingerRows)])
            relayAllowed = config.linkRelay
            serverMaxMessageBytes = config.maxMessageBytes
            state = .registered
            reconnectAttempt = 0
            let signing = startSigning(as: id, certificate: certificate)
            return [.log(.info, "registered as \(id.hex)\(again ? " (again)" : "")")] + signing + [.registered(id, again: again)]
        case .signal(let from, let intentId, let signal, let fromUrl):
            return onSignal(from: from, intentId: intentId, signal: signal.value ?? .null, fromUrl: fromUrl, now: now)
        case .link(let from, let frame):
            guard relayAllowed, state == .registered else { return [] }
            var actions: [PeerAction] = []
            if links.links[from] == nil {
                // The other side reaches us only through the relay: answer the same way.
                links.openRelayed(from, dialer: from)
                actions += [.log(.info, "link up (relayed by the server): \(from.hex)"), .linkUp(from)]
            }
            return actions + linkFrame(from, Array(frame.utf8), now: now, wallClockMs: wallClockMs)
        case .goingAway(let ms):
            retryAfter = UInt64(ms) * 1_000_000
            return [.log(.info, "the server is going away; reconnecting in \(ms) ms with the same ID"), .goingAway(ms)]
        case .error(let code, let text):
            var actions: [PeerAction] = [.log(.warning, "server error \(code.rawValue): \(text)"), .error(PeerError(code.rawValue, text))]
            if code == .idExpired, state == .registering {
                // The saved ID is no longer ours (its lease ended, or it left; docs/protocol.md): register fresh.
                peerId = nil
                epoch = nil
                certificate = nil
                stopSigning()
                actions += register()
            }
            return actions
        default:
            guard let update = message.ringUpdate else { return [] }
            noteEpochs(of: message)
            ring.apply([update])
            return reconcileLinks(now: now) + [.ringChanged]
        }
    }

    func signal(_ to: PeerID, intentId: String, _ body: [String: JSONValue]) -> [PeerAction] {
        guard let c = serverConnection, state == .registered else { return [] }
        return [.sendServer(c, .signal(to: to, intentId: intentId, signal: RawJSON(body)))]
    }

    /// `fromUrl`: the sender's URL as the server vouches for it (docs/protocol.md, "Vouched URLs").
    mutating func onSignal(from: PeerID, intentId: String, signal: JSONValue, fromUrl: String?, now: UInt64) -> [PeerAction] {
        switch signal["type"]?.stringValue {
        case "offer":
            // A browser dials with WebRTC, which this peer does not speak: ask it to dial our URL.
            return sendDialMe(to: from, intentId: intentId, force: true, now: now)
        case "dial-me":
            guard let nonce = signal["nonce"]?.stringValue, nonce.utf8.count <= 64 else { return [] }
            switch dialMeTarget(asked: signal["url"]?.stringValue, vouched: fromUrl, serverHost: configuration.serverHost) {
            case .success(let target):
                return dial(from, target, nonce: nonce)
            case .failure(let refusal):
                // Never dial a URL the server does not vouch for: the link falls back as when dialling fails.
                dialMeRefused += 1
                let text = "refused to dial \(from.hex): \(refusal.rawValue) (\(dialMeRefused) refused so far)"
                return [.log(.warning, text), .error(PeerError("dial-refused", text))]
            }
        default:
            return []   // answers and ICE candidates of WebRTC: not for us
        }
    }

    mutating func sendDialMe(to peer: PeerID, intentId: String? = nil, force: Bool = false, now: UInt64) -> [PeerAction] {
        let nonce = randomHex(16, using: &random)
        let lifetime = nanoseconds(max(configuration.handshakeSeconds, configuration.dialRetrySeconds) * 3)
        guard links.dialMe(peer, nonce: nonce, now: now, retry: nanoseconds(configuration.dialRetrySeconds), expires: now + lifetime, force: force) else { return [] }
        let intent = intentId ?? randomHex(8, using: &random)
        return signal(peer, intentId: intent, ["type": "dial-me", "url": .string(url), "nonce": .string(nonce)])
    }

    mutating func dial(_ peer: PeerID, _ target: WebSocketURL, nonce: String) -> [PeerAction] {
        guard !links.isOpen(peer) || links.links[peer]?.connection == nil, !links.isDialling(peer) else { return [] }
        return [.dial(peer, target, nonce: nonce)]
    }

    /// The shell dialled `peer` for a "dial me" request: `connection` waits to open.
    public mutating func dialStarted(_ connection: ConnectionID, peer: PeerID, nonce: String) {
        links.dialStarted(connection, peer: peer, nonce: nonce)
    }

    // MARK: stop and housekeeping

    /// Leaves the ring: a registered peer sends `leave`; links close with 1001; an open server
    /// connection closes with 1000 and `awaitServerClose` is true (its close reports `.serverClosed`).
    public mutating func stop() -> (actions: [PeerAction], awaitServerClose: Bool) {
        let wasOpen = state == .registering || state == .registered
        var actions: [PeerAction] = []
        if let c = serverConnection, state == .registered { actions.append(.sendServer(c, .leave)) }
        state = .stopped
        for (_, link) in links.links.sorted(by: { $0.key < $1.key }) {
            if let c = link.connection { actions.append(.close(c, status: 1001, reason: "leaving")) }
        }
        guard let c = serverConnection, wasOpen else { return (actions, false) }
        actions.append(.close(c, status: 1000, reason: "leaving"))
        return (actions, true)
    }

    /// Housekeeping (every 100 ms): the reconnect when due, handshakes without hello, expired nonces,
    /// retired links past their grace, and the links the ring needs.
    public mutating func tick(now: UInt64) -> [PeerAction] {
        var actions: [PeerAction] = []
        if state == .idle, let at = reconnectAt, now >= at {
            reconnectAt = nil
            actions += connect()
        }
        let needed = neededPeers()
        let expired = links.expire(now: now, handshake: nanoseconds(configuration.handshakeSeconds),
                                   grace: nanoseconds(configuration.retireGraceSeconds), needed: needed)
        for c in expired.silent { actions.append(.close(c, status: 1008, reason: "no hello")) }
        for p in expired.retired { actions += dropLink(p, reason: "retired") }
        if state == .registered { actions += reconcileLinks(now: now) + sendNeighbourLists(now: now) }
        return actions
    }

    /// Signs `data` for `dst` (an `S` frame, docs/protocol.md "Signed overlay messages") and routes it to the
    /// peer responsible for `dst`. `wallClockMs`: the wall clock in ms since 1970 (the message's `at`).
    /// `routed` is false when there is no route, or this peer cannot sign yet (not registered; the shell also
    /// reports false when the transport refuses a frame of the `.forward` action). A message for this peer's
    /// own range is delivered here without signing.
    public mutating func send(to dst: PeerID, data: JSONValue, wallClockMs: Int64) -> (routed: Bool, actions: [PeerAction]) {
        guard let me = peerId else { return (false, []) }
        counter += 1
        let id = "\(me.hex)-\(messageIdNonce)-n\(counter)"
        switch nextHop(from: me, to: dst) {
        case .deliver:
            // This peer's own message stays here: nothing to sign or check.
            return (true, [.deliver(Envelope(srcId: me, dstId: dst, data: data, hops: 0, id: id))])
        case .noRoute:
            return (false, [])
        case .next(let next):
            guard let signer, let frame = signer.frame(to: dst, id: id, at: wallClockMs, data: data) else {
                return (false, [.log(.warning, "cannot sign a message for \(dst.hex) (no certificate, or a clock before 1970)")])
            }
            return forward(whole: frame, to: next, failure: nil)
        }
    }
}
