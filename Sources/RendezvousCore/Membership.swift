import ConnectionTypes
import Foundation   // only to format wall-clock times given to it (ISO 8601); never reads the clock
import Ring
import WireProtocol

/// The rendezvous server's logic without any I/O: sessions, ring membership, registration with signed
/// challenges (the key-pair identity), signal relay and rate limits. Events go in, `Action`s come out (tested without sockets).
///
/// Deterministic: it reads no clock (monotonic and wall-clock times come with the events), draws
/// randomness only from generators seeded with `configuration.seed`, and orders its actions without
/// depending on hash order, so the same events give the same actions on any machine (`EventLog`).
/// Not thread-safe: the shell calls it from one thread.
public struct Membership {
    public let configuration: MembershipConfiguration
    let credentials: any CredentialIssuer
    /// This instance's name in a cluster (docs/cluster.md: mutations go through the cluster's log), or
    /// nil on a single server (mutations are applied at once).
    public let instance: String?
    /// Cluster mode: whether the cluster's log is reachable (`Event.logAvailability`).
    public internal(set) var logAvailable = true
    public internal(set) var ring: Ring
    public internal(set) var peers: [PeerID: PeerRecord] = [:]
    var sessions: [ConnectionID: Session] = [:]   // internal: Membership+RateLimits.swift
    public internal(set) var counters = MembershipCounters()
    /// The going-away reconnect spread (seeded with `~configuration.seed`).
    private var random: SplitMix64
    /// Changes to the ring and the records not yet returned by `handle(_:)` as `.analytics` actions.
    var changes: [AnalyticsChange] = []
    /// Every ID with a holder: registered peers and leased IDs (docs/protocol.md, "Epochs, leases and the
    /// state file").
    public internal(set) var bindings: [PeerID: Binding] = [:]
    /// The ID each bound public key holds (a key holds at most one ID; the inverse of `bindings`).
    public internal(set) var holders: [String: PeerID] = [:]
    /// The epoch the next new holder of an ID gets.
    public internal(set) var nextEpoch: UInt64
    /// Leases in the order they end (deadlines never decrease: each is the event's `now` plus
    /// `idLeaseSeconds`, restored ones clamped to that); entries whose binding changed since are skipped.
    var leaseQueue: [(deadline: Double, peer: PeerID, epoch: UInt64)] = []   // internal: Membership+Leases.swift
    var leaseQueueHead = 0
    /// The latest `now` of the events so far (monotonic seconds).
    public internal(set) var latestNow = -Double.infinity

    /// The holder of an ID: its epoch, its public key (64 lowercase hex) and, while the holder is away,
    /// when its lease ends (monotonic seconds; nil while a session holds the ID).
    public struct Binding: Equatable, Sendable {
        public var epoch: UInt64
        public var publicKey: String
        public var leaseUntil: Double?
    }

    /// IDs leased to an absent holder.
    public var leasesHeld: Int { bindings.count - peers.count }

    struct Session {
        var machine = SessionStateMachine()
        var bucket: TokenBucket
        var relayBucket: TokenBucket
        var remoteAddress: String
        /// The challenge nonce of this connection (64 lowercase hex), signed by every `register` on it.
        var nonce: ChallengeNonce
        var droppedInARow = 0
        /// Messages dropped in the current abuse window, which started at `windowStart`.
        var droppedInWindow = 0
        var windowStart = -Double.infinity
        var lastRateLimitNotice = -Double.infinity
        /// Why the server is closing this connection, when it decided to.
        var closing: LeaveReason?
    }

    /// A core with no connections and an empty ring; `credentials` checks registration signatures and
    /// signs certificates with the server key.
    /// `instance`: this instance's name in a cluster (nil: a single server).
    public init(configuration: MembershipConfiguration, credentials: any CredentialIssuer, instance: String? = nil) {
        self.configuration = configuration
        self.credentials = credentials
        self.instance = instance
        self.logAvailable = instance == nil   // an instance waits until it has caught up with the log
        self.ring = Ring(policy: configuration.fingerPolicy, successorListLength: configuration.successorListLength,
                         seed: configuration.seed)
        self.random = SplitMix64(seed: ~configuration.seed)
        // Epochs start at a value drawn from the seed, so that a server started without its state
        // file does not reissue the (ID, epoch) pairs of a previous run (2^40 values apart).
        var epochs = SplitMix64(seed: configuration.seed ^ 0x6570_6f63_6873)
        self.nextEpoch = (epochs.next() >> 24) << 16 | 1
    }

    public var ringConfig: RingConfig { config(rows: ring.fingerRows) }

    public func config(rows: [Int]) -> RingConfig {
        RingConfig(fingerRows: rows, successors: configuration.successorListLength,
                   maxMessageBytes: configuration.maxMessageBytes,
                   idleTimeoutSeconds: configuration.idleTimeoutSeconds, linkRelay: configuration.linkRelay,
                   serverKey: credentials.serverKey)
    }

    public var connectionCount: Int { sessions.count }

    public mutating func arcRatios() -> (maxMin: Double, maxMean: Double)? { ring.arcRatios() }

    // MARK: Events

    /// Every event, one entry: what the I/O shell calls (and what an event log records and replays).
    /// The actions end with the event's changes for the analytics thread (`.analytics`). The per-event
    /// methods below are conveniences for unit tests: only this entry returns those changes.
    public mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action]
        // A single server times leases by its own clock; a cluster's replicas by the log's (`applied`).
        if instance == nil, let now = event.now { expireLeases(now: now) }
        switch event {
        case .opened(let c, let remoteAddress, let nonce, let now):
            actions = opened(c, remoteAddress: remoteAddress, nonce: nonce, now: now)
        case .received(let c, let text, let now, let wallClock):
            actions = received(c, text: text, now: now, wallClock: wallClock)
        case .rejected(let c, let problem, let now):
            actions = rejected(c, problem: problem, now: now)
        case .controlFrames(let c, let count, let now):
            actions = controlFrames(c, count: count, now: now)
        case .closed(let c, let cause, _):
            actions = closed(c, cause: cause)
        case .evict(let peer, _):
            actions = evict(peer) ?? []
        case .restored(let list, let next, let now):
            restore(list, nextEpoch: next, now: now)
            actions = []
        case .goingAway(let spreadMs):
            actions = goingAway(spreadMs: spreadMs)
        case .applied(let mutation, let at):
            expireLeases(now: at)
            actions = apply(mutation)
        case .forwarded(let message):
            actions = deliver(message)
        case .logAvailability(let available):
            actions = available && !logAvailable ? reconcile() : []
            logAvailable = available
        case .loadedSnapshot(let snapshot):
            actions = load(snapshot)
        }
        if !changes.isEmpty {
            actions += changes.map(Action.analytics)
            changes.removeAll(keepingCapacity: true)
        }
        return actions
    }

    /// A WebSocket opened (`now`: monotonic seconds): it gets its `challenge` with `nonce`.
    @discardableResult
    public mutating func opened(_ connection: ConnectionID, remoteAddress: String, nonce: String, now: Double) -> [Action] {
        sessions[connection] = Session(
            bucket: TokenBucket(rate: configuration.rateLimitPerSecond, burst: configuration.rateLimitBurst, now: now),
            relayBucket: TokenBucket(rate: configuration.linkRelayPerSecond, burst: configuration.linkRelayBurst, now: now),
            remoteAddress: remoteAddress, nonce: ChallengeNonce(nonce))
        return [.send(connection, .challenge(nonce: nonce, serverKey: credentials.serverKey))]
    }

    /// Shutdown: every connection is told to come back after a delay spread over `spreadMs` (so that
    /// peers do not all reconnect at once), then closed with 1001 "going away".
    /// Connections are told in the order of their IDs.
    public mutating func goingAway(spreadMs: Int) -> [Action] {
        sessions.keys.sorted().flatMap { c -> [Action] in
            [.send(c, .goingAway(retryAfterMs: 250 + Int.random(in: 0...max(0, spreadMs), using: &random))),
             .close(c, status: 1001, reason: "server going away")]
        }
    }

    /// The connection is gone (`cause` from the transport); a peer it held leaves the ring.
    public mutating func closed(_ connection: ConnectionID, cause: CloseCause = .closed) -> [Action] {
        guard var session = sessions.removeValue(forKey: connection) else { return [] }
        guard let peer = session.machine.closed(), isLocal(peers[peer], connection) else { return [] }
        return propose(.leave(peer, origin: origin(connection), reason: session.closing ?? LeaveReason(cause), keepLease: true))
    }

    /// A frame the transport refused (binary or too large): answered like any protocol error.
    public mutating func rejected(_ connection: ConnectionID, problem: FrameProblem, now: Double) -> [Action] {
        guard admit(connection, now: now) else { return rateLimitActions(connection, now: now) }
        switch problem {
        case .binary:
            return fail(connection, ProtocolError(.binaryFrame, "binary frames are not accepted; send JSON text frames"))
        case .tooLarge(let bytes):
            return fail(connection, ProtocolError(.tooLarge,
                "message of \(bytes) bytes exceeds the limit of \(configuration.maxMessageBytes) bytes"))
        }
    }

    /// A text frame (`now`: monotonic seconds; `wallClock`: seconds since 1970, stamped on a registration).
    public mutating func received(_ connection: ConnectionID, text: [UInt8], now: Double, wallClock: Double) -> [Action] {
        // Fields are read in place rather than from a copy of the whole session (the relay's hot path).
        guard let index = sessions.index(forKey: connection),
              case let (accepts, sender) = sessions.inPlace(index, { ($0.machine.acceptsMessages, $0.machine.peer) }), accepts
        else { return [] }
        guard admit(connection, now: now) else { return rateLimitActions(connection, now: now) }
        let message: ClientMessage
        do throws(ProtocolError) {
            message = try ClientMessage.decode(text, limits: configuration.decoding)
        } catch {
            return fail(connection, error)
        }
        switch message {
        case .register(let peerId, let publicKey, let signature, let capabilities):
            return register(connection, peerId: peerId, publicKey: publicKey, signature: signature,
                            capabilities: capabilities, wallClock: wallClock)
        case .signal(let to, let intentId, let signal):
            guard let from = sender else { return fail(connection, notRegistered) }
            guard let target = peers.index(forKey: to) else {
                return fail(connection, ProtocolError(.unknownPeer, "peer \(to.hex) is not in the ring"))
            }
            counters.signalsRelayed += 1
            let fromUrl = peers.index(forKey: from).flatMap { peers.inPlace($0, \.vouchedURL) }
            let local = local
            let (targetConnection, here) = peers.inPlace(target) { ($0.connection, $0.instance == local) }
            guard here else {
                return forward(to, via: peers.values[target], .signal(intentId: intentId, signal: signal, fromUrl: fromUrl), from: from)
            }
            return [.send(targetConnection, .signal(from: from, intentId: intentId, signal: signal, fromUrl: fromUrl))]
        case .leave:
            // An explicit leave ends the binding at once: the ID is free, the key no longer holds it.
            guard let peer = sessions[connection]?.machine.left() else { return fail(connection, notRegistered) }
            return propose(.leave(peer, origin: origin(connection), reason: .leave, keepLease: false))
        case .report(let stats):
            guard let peer = sender else { return fail(connection, notRegistered) }
            peers[peer]?.stats = stats
            if let record = peers[peer] { changes.append(.record(peer, record)) }
            counters.reports += 1
            return []
        case .link(let to, let frame):
            guard let from = sender else { return fail(connection, notRegistered) }
            guard configuration.linkRelay else {
                return fail(connection, ProtocolError(.relayDisabled, "this server does not relay links (--link-relay)"))
            }
            guard let target = peers[to] else {
                return fail(connection, ProtocolError(.unknownPeer, "peer \(to.hex) is not in the ring"))
            }
            guard sessions[connection]!.relayBucket.take(now: now) else {
                counters.linkRelayDropped += 1
                return rateLimitActions(connection, now: now)
            }
            counters.linkRelayFrames += 1
            counters.linkRelayBytes += frame.utf8.count
            guard target.instance == local else { return forward(to, via: target, .link(frame: frame), from: from) }
            return [.send(target.connection, .link(from: from, frame: frame))]
        }
    }

    /// Control frames (pings) the transport saw on a connection: they cost the server like messages, so
    /// they take from the same budget, and those beyond it count as dropped (the transport answered them
    /// already; a flood of them is closed like a flood of messages).
    public mutating func controlFrames(_ connection: ConnectionID, count: Int, now: Double) -> [Action] {
        guard count > 0, sessions[connection] != nil else { return [] }
        counters.controlFrames += count
        let taken = sessions[connection]!.bucket.take(count, now: now)
        if taken > 0 { sessions[connection]!.droppedInARow = 0 }
        return taken == count ? [] : rateLimitActions(connection, now: now, dropped: count - taken)
    }

    /// Admin eviction; nil when the peer is unknown.
    public mutating func evict(_ peer: PeerID) -> [Action]? {
        guard peers[peer] != nil else { return nil }
        return propose(.evict(peer))
    }

    // MARK: Registration

    /// The close reason of a connection closed as abusive (the transport stops reading it at once).
    public static let abusiveCloseReason = "rate limit"

    private var notRegistered: ProtocolError { ProtocolError(.notRegistered, "send 'register' first") }

    /// `register`: the signature proves possession of `publicKey` for this connection's challenge and the
    /// requested ID (docs/protocol.md, "Key-pair identity"). The verified registration is then applied
    /// (`applyJoin`: at once, or when it comes back through a cluster's log), which decides the ID.
    private mutating func register(_ connection: ConnectionID, peerId: PeerID?, publicKey: String, signature: String,
                                   capabilities: [String: JSONValue]?, wallClock: Double) -> [Action] {
        guard let session = sessions[connection] else { return [] }
        if let current = session.machine.peer {
            return fail(connection, ProtocolError(.alreadyRegistered, "this connection is already registered as \(current.hex)"))
        }
        if session.machine.isJoining {
            return fail(connection, ProtocolError(.alreadyRegistered, "this connection's registration is in progress"))
        }
        let text = Identity.registrationText(serverKey: credentials.serverKey, nonce: session.nonce.text, peerId: peerId, publicKey: publicKey)
        guard credentials.isValid(signature: signature, of: text, publicKey: publicKey) else {
            counters.badSignatures += 1
            return fail(connection, ProtocolError(.badSignature,
                "the signature does not verify: sign this connection's challenge for this peerId with this publicKey"))
        }
        guard logAvailable else {
            counters.refusedUnavailable += 1
            // Closed with 1013 "try again later": clients reconnect after their backoff (to another server of
            // their list, if they have one).
            return fail(connection, ProtocolError(.unavailable,
                "this server cannot reach the cluster's log now: register again in a few seconds, or through another server"))
                + [.close(connection, status: 1013, reason: "try again later")]
        }
        sessions[connection]?.machine.joining()
        let joining = Joining(publicKey: publicKey, requested: peerId,
                              connectedAt: Date(timeIntervalSince1970: wallClock).formatted(.iso8601), remoteAddress: session.remoteAddress,
                              capabilities: capabilities, vouchedURL: Self.vouchedURL(capabilities, clientAddress: session.remoteAddress))
        return propose(.join(origin(connection), joining))
    }

    /// The server's certificate of the binding of `id` (`Identity.Certificate`, 220 hex).
    public func certificate(for id: PeerID) -> String? {
        guard let b = bindings[id] else { return nil }
        let text = Identity.certificateText(serverKey: credentials.serverKey, peerId: id, publicKey: b.publicKey, epoch: b.epoch)
        return Identity.Certificate(peerId: id, publicKey: b.publicKey, epoch: b.epoch, signature: credentials.sign(text)).text
    }

    /// `registered` followed by the peer's whole state.
    func welcome(_ connection: ConnectionID, _ id: PeerID) -> [Action] {
        let state = ring.state(of: id)
        var actions: [Action] = [
            .send(connection, .registered(peerId: id, epoch: bindings[id]?.epoch ?? 0, certificate: certificate(for: id) ?? "",
                                          config: ringConfig)),
            .send(connection, ServerMessage(.predecessor(state.predecessor), config: config(rows:), epoch: holderEpoch)),
            .send(connection, ServerMessage(.successors(state.successors), config: config(rows:), epoch: holderEpoch)),
        ]
        for row in ring.fingerRows {
            let update = RingUpdate.finger(row: row, start: id.fingerStart(row: row), peer: state.fingers[row] ?? nil)
            actions.append(.send(connection, ServerMessage(update, config: config(rows:), epoch: holderEpoch)))
        }
        return actions
    }

    /// The peer leaves the ring; its ID stays leased to it (`keepLease`) or becomes free at once.
    mutating func removeFromRing(_ peer: PeerID, reason: LeaveReason, keepLease: Bool = true) -> [Action] {
        guard let record = peers.removeValue(forKey: peer) else { return [] }
        changes.append(.left(peer))
        if record.instance == local {
            counters.leaves += 1
            counters.leavesByReason[reason, default: 0] += 1
        }
        let leased = keepLease ? lease(peer) : { unbind(peer); return false }()
        let changes = (try? ring.leave(peer, reserving: leased)) ?? [:]
        return [.publish(.leave(peer, reason: reason))] + push(changes)
    }

    /// The epoch of the current holder of `id` (sent with every peer a ring update names, so that peers
    /// refuse messages signed with a departed holder's older certificate).
    func holderEpoch(_ id: PeerID) -> UInt64? { bindings[id]?.epoch }

    /// Updates for each peer, in the order of their IDs (not the dictionary's hash order): sent to the
    /// peers whose session is here, published for all.
    func push(_ changes: RingChanges) -> [Action] {
        var actions: [Action] = []
        for (peer, updates) in changes.sorted(by: { $0.key < $1.key }) {
            guard let record = peers[peer] else { continue }
            if record.instance == local {
                for update in updates {
                    actions.append(.send(record.connection, ServerMessage(update, config: config(rows:), epoch: holderEpoch)))
                }
            }
            actions.append(.publish(.updated(peer, updates)))
        }
        return actions
    }
}

extension Dictionary {
    /// Reads from the value at `index` in place. The getter (`values[index]`) copies the whole value,
    /// which for a `PeerRecord` or a `Session` means a retain and a release of each of its strings and
    /// dictionaries; the modify accessor used here lends the stored value (mutating only to get that
    /// accessor: `body` cannot change it).
    mutating func inPlace<T>(_ index: Index, _ body: (Value) -> T) -> T {
        func read(_ value: inout Value) -> T { body(value) }
        return read(&values[index])
    }
}
