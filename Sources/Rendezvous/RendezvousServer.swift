import Cluster
import Foundation
import Logging
import RendezvousCore
import Ring
import Transport
import WireProtocol

/// The rendezvous (signalling) server: the I/O shell around the pure core (`Membership`, in
/// RendezvousCore). It turns transport callbacks into `Event`s stamped with the clock, hands them to the
/// core (`handle(_:)`, which also records them with `--record-events`), and performs the `Action`s that
/// come back; it also serves the HTTP routes.
///
/// `@unchecked Sendable` is safe because every mutable stored property (`membership`, `subscribers`,
/// `adminSubscribers`, `pendingAdminStream`, the recorder's file) is touched only on the transport's service thread (from `TransportHandler`
/// callbacks or jobs posted with `transport.sync`/`post`); `start()`/`stop()`/`port` only call
/// thread-safe `Transport` methods, and `stop()` closes the recorder after the service thread ended.
/// The state-file timer reads the core only inside `transport.sync` (on the service thread); `saveTimer`
/// is set by `start()` and cleared by `stop()`, which the owner calls in that order from one thread, and
/// `stop()` reads the core for the last save only after the service thread ended.
public final class RendezvousServer: TransportHandler, ClusterDelegate, @unchecked Sendable {
    public let configuration: ServerConfiguration
    let transport: Transport
    let logger: Logger
    var membership: Membership
    let files: StaticFiles?
    var subscribers = Set<ConnectionID>()
    /// The subscribers whose request carried the admin token: they also see why peers leave (docs/api.md).
    var adminSubscribers = Set<ConnectionID>()
    /// The admin `/api/events` request being answered (set by its route, taken by `eventStreamOpened`).
    var pendingAdminStream: ConnectionID?
    /// Renders `/api/network` pages off the signalling thread.
    var analytics: AnalyticsWorker!
    /// Set by `shutdown`: new connections are told to go away, closes are not leaves.
    var shuttingDown = false
    private let started = DispatchTime.now()
    /// Writes every event and its actions (`--record-events`); nil when not recording.
    private let recorder: EventRecorder?
    /// Saves the state file every `stateSaveInterval` seconds (nil without `stateFilePath`).
    private var saveTimer: DispatchSourceTimer?
    private let saveQueue = DispatchQueue(label: "browsercloud.state-file")

    /// The server's Ed25519 key: checks registration signatures, signs certificates.
    public let identity: ServerIdentity
    /// Cluster mode: the link to the cluster's Redis (docs/cluster.md); nil on a single server.
    let cluster: ClusterLink?

    public init(configuration: ServerConfiguration, identity: ServerIdentity, logger: Logger = Logger(label: "browsercloud.server")) throws {
        self.identity = identity
        self.configuration = configuration
        self.logger = logger
        if let directory = configuration.publicDirectory {
            guard let files = StaticFiles(directory: directory) else { throw ServerError.noSuchDirectory(directory) }
            self.files = files
        } else {
            files = nil
        }
        // The shell owns the randomness: the core gets a seed (logged, and written in a recording's header).
        var core = configuration.membership(seed: UInt64.random(in: .min ... .max))
        if let c = configuration.cluster {
            // Every replica must run with the same ring settings, seed and server key: the first instance
            // stores them in Redis, the others check theirs and take its seed.
            let agreed = try ClusterLink.agree(c, proposed: Self.replicated(core, serverKey: identity.serverKey))
            if let seed = agreed["seed"]?.stringValue.flatMap({ UInt64($0) }) { core.seed = seed }
            let link = ClusterLink(configuration: c, logger: logger)
            cluster = link
            logger.info("cluster", metadata: ["redis": "\(c.url)", "instance": "\(link.instanceID)"])
        } else {
            cluster = nil
        }
        logger.debug("core seed", metadata: ["seed": "\(core.seed)"])
        membership = Membership(configuration: core, credentials: identity, instance: cluster?.instanceID)
        recorder = try configuration.recordEventsPath.map { try EventRecorder(path: $0, configuration: core) }
        transport = Transport(configuration: configuration.transport, logger: logger)
        transport.handler = self
        analytics = AnalyticsWorker(configuration: configuration, transport: transport)
        try restoreBindings()
        for (package, files) in configuration.vendor.missing {
            logger.warning("vendor library missing: /vendor/ answers 404 for it, so pages that are not a secure context (plain http at a LAN address) cannot volunteer; install the Debian package (scripts/install-deps.sh)",
                           metadata: ["package": "\(package)", "files": "\(files.joined(separator: ", "))"])
        }
    }

    /// Loads the state file (if any) into the core as leases, before the transport starts.
    private func restoreBindings() throws {
        guard let path = configuration.stateFilePath else { return }
        let state: BindingStore.State?
        do throws(BindingStore.Failure) {
            state = try BindingStore.load(path)
        } catch {
            guard configuration.startEmpty else { throw error }
            logger.warning("starting without the previous ID bindings (--start-empty)", metadata: ["problem": "\(error)"])
            state = nil
        }
        guard let state else { return }
        _ = handle(BindingStore.restoreEvent(state, now: now, wallClock: wallClock))
        logger.info("restored ID leases", metadata: ["leases": "\(membership.leasesHeld)", "file": "\(path)"])
    }

    /// Writes the state file from the service thread's core (from the save queue while the transport
    /// runs, or from `stop()` after it stopped).
    private func saveBindings(_ state: BindingStore.State) {
        guard let path = configuration.stateFilePath else { return }
        do throws(BindingStore.Failure) {
            try BindingStore.save(state, to: path, savedAt: wallClock)
        } catch {
            logger.error("state file not saved", metadata: ["problem": "\(error)"])
        }
    }

    private func startSaving() {
        guard configuration.stateFilePath != nil else { return }
        let timer = DispatchSource.makeTimerSource(queue: saveQueue)
        timer.schedule(deadline: .now() + configuration.stateSaveInterval, repeating: configuration.stateSaveInterval)
        timer.setEventHandler { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            // Only the bindings are read on the service thread (a copy, which shares the core's storage);
            // the snapshot of every binding is made here, off the thread every message waits for.
            let (bindings, nextEpoch, at, clock) = transport.sync { [self] in (membership.bindings, membership.nextEpoch, now, wallClock) }
            let state = BindingStore.state(of: bindings, nextEpoch: nextEpoch, leaseSeconds: configuration.core.idLeaseSeconds,
                                           now: at, wallClock: clock)
            let snapshotted = DispatchTime.now().uptimeNanoseconds
            saveBindings(state)
            logger.trace("state file saved", metadata: [
                "bindings": "\(state.bindings.count)",
                "snapshotMs": "\(Double(snapshotted - start) / 1e6)",
                "writeMs": "\(Double(DispatchTime.now().uptimeNanoseconds - snapshotted) / 1e6)"])
        }
        saveTimer = timer
        timer.resume()
    }

    /// The settings all instances of a cluster must share (their seed is the first instance's).
    static func replicated(_ c: MembershipConfiguration, serverKey: String) -> JSONValue {
        .object(["format": "browsercloud-cluster/1", "fingerPolicy": .string(c.fingerPolicy.description),
                 "successorListLength": .number(Double(c.successorListLength)), "maxPeers": .number(Double(c.maxPeers)),
                 "idLeaseSeconds": .number(c.idLeaseSeconds), "linkRelay": .bool(c.linkRelay), "seed": .string(String(c.seed)),
                 "serverKey": .string(serverKey)])
    }

    /// Binds and starts serving on the transport's service thread.
    public func start() throws {
        analytics.start()
        try transport.start()
        cluster?.start(delegate: self)
        startSaving()
        logger.info("listening", metadata: ["host": "\(configuration.transport.host)", "port": "\(transport.port)",
                                            "fingers": "\(configuration.core.fingerPolicy)"])
    }

    /// The bound port.
    public var port: Int { transport.port }

    /// Closes every connection and stops the service thread.
    public func stop() {
        if let timer = saveTimer {
            timer.cancel()
            saveQueue.sync {}   // a save in progress ends (the transport still runs for its snapshot)
            saveTimer = nil
        }
        cluster?.stop()   // its writer sends what is queued first (it needs the service thread)
        transport.stop()
        // The service thread has ended: the core is read from this thread.
        if configuration.stateFilePath != nil {
            saveBindings(BindingStore.state(of: membership, now: now, wallClock: wallClock))
        }
        analytics.stop()
        recorder?.close()
        logger.info("stopped")
    }

    /// Graceful shutdown: refuses new connections, tells every peer the server is going away (they
    /// reconnect after a spread delay and re-register with their keys), waits up to `grace` seconds
    /// for the messages to flush and the connections to close, then stops. From any thread but the
    /// service thread.
    public func shutdown(grace: Double) {
        let open = transport.sync { [self] () -> Int in
            shuttingDown = true
            let spread = min(10_000, membership.ring.count)   // about 1 ms per peer, at most 10 s
            perform(handle(.goingAway(spreadMs: spread)))
            // The other instances lease this one's peers at once, rather than after its heartbeat expires.
            if let cluster { cluster.send(.propose(.instanceGone(cluster.instanceID))) }
            for s in subscribers { transport.sendEvent(Array("event: going-away\ndata: {}\n\n".utf8), to: s) }
            return transport.counters.webSocketsOpen
        }
        logger.info("shutting down", metadata: ["connections": "\(open)"])
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, grace) * 1e9)
        while DispatchTime.now().uptimeNanoseconds < deadline, transport.sync({ [self] in transport.counters.webSocketsOpen }) > 0 {
            usleep(20_000)
        }
        stop()
    }

    /// Monotonic seconds, for the core's rate limits.
    var now: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    /// Seconds since 1970, for the core's timestamps (a peer's `connectedAt`).
    var wallClock: Double { Date().timeIntervalSince1970 }
    var uptime: Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }

    // MARK: TransportHandler (service thread)

    public func webSocketOpened(_ connection: ConnectionID, remoteAddress: String, origin: String?) {
        if shuttingDown {
            transport.send(ServerMessage.goingAway(retryAfterMs: 1000).encoded(), to: connection)
            transport.close(connection, status: 1001, reason: "server going away")
            return
        }
        // The client's address as far as the server can tell ("" when unknown): the core vouches link URLs with it.
        let client = clientAddress(peer: remoteAddress, forwardedFor: transport.forwardedFor(connection),
                                   trustedProxies: configuration.trustedProxies)
        perform(handle(.opened(connection, remoteAddress: client, nonce: ServerIdentity.nonce(), now: now)))
        logger.debug("connection opened", metadata: ["connection": "\(connection)", "remote": "\(remoteAddress)", "client": "\(client)"])
    }

    public func webSocketReceived(_ connection: ConnectionID, text: [UInt8]) {
        perform(handle(.received(connection, text: text, now: now, wallClock: wallClock)))
    }

    public func webSocketControlFrames(_ connection: ConnectionID, count: Int) {
        perform(handle(.controlFrames(connection, count: count, now: now)))
    }

    public func webSocketRejected(_ connection: ConnectionID, problem: FrameProblem) {
        perform(handle(.rejected(connection, problem: problem, now: now)))
    }

    public func webSocketClosed(_ connection: ConnectionID, cause: CloseCause) {
        logger.debug("connection closed", metadata: ["connection": "\(connection)", "cause": "\(cause.rawValue)"])
        if cause == .shutdown || shuttingDown { return }   // no leaves: the peers come back
        perform(handle(.closed(connection, cause: cause, now: now)))
    }

    public func originRejected(_ origin: String) {
        logger.notice("origin rejected", metadata: ["origin": "\(origin)"])
    }

    public func eventStreamOpened(_ connection: ConnectionID) {
        subscribers.insert(connection)
        if pendingAdminStream == connection { adminSubscribers.insert(connection) }
        pendingAdminStream = nil
    }

    public func eventStreamClosed(_ connection: ConnectionID) {
        subscribers.remove(connection)
        adminSubscribers.remove(connection)
    }

    public func httpRequest(_ request: HTTPRequest) -> HTTPResponse {
        route(request)
    }

    // MARK: Actions

    /// Gives one event to the core (service thread); records it with its actions when recording.
    func handle(_ event: Event) -> [Action] {
        let actions = membership.handle(event)
        if let recorder { recorder.record(event, actions) }
        return actions
    }

    func perform(_ actions: [Action]) {
        analytics.apply(actions.compactMap { if case .analytics(let change) = $0 { change } else { nil } })
        for action in actions {
            switch action {
            case .send(let connection, let message):
                transport.send(message.encoded(), to: connection)
            case .close(let connection, let status, let reason):
                // A flood is not read any further while its connection closes.
                transport.close(connection, status: status, reason: reason, stopReading: reason == Membership.abusiveCloseReason)
            case .publish(let event):
                publish(event)
            case .analytics:
                break   // handed over above, in one batch
            case .propose, .forward, .snapshot:
                cluster?.send(action)
            }
        }
    }

    private func publish(_ event: RingEvent) {
        switch event {
        case .join(let p):
            logger.info("join", metadata: ["peer": "\(p.hex)", "peers": "\(membership.ring.count)"])
        case .leave(let p, let reason):
            logger.info("leave", metadata: ["peer": "\(p.hex)", "reason": "\(reason.rawValue)", "peers": "\(membership.ring.count)"])
        case .replaced(let p):
            logger.info("replaced", metadata: ["peer": "\(p.hex)", "peers": "\(membership.ring.count)"])
        case .updated:
            break
        }
        guard !subscribers.isEmpty else { return }
        let name: String, data: JSONValue
        var adminData: JSONValue?   // what subscribers with the admin token get instead, when it differs
        switch event {
        case .join(let p):
            name = "join"; data = .object(["peerId": .string(p.hex)])
        case .leave(let p, let reason):
            // Anonymous subscribers see that a peer left, as /api/network shows; only the admin sees why.
            name = "leave"; data = .object(["peerId": .string(p.hex)])
            adminData = .object(["peerId": .string(p.hex), "reason": .string(reason.rawValue)])
        case .replaced(let p):
            name = "replace"; data = .object(["peerId": .string(p.hex)])
        case .updated(let p, let updates):
            name = "update"
            data = .object(["peerId": .string(p.hex),
                            "changes": .array(updates.map { ServerMessage($0, config: membership.config(rows:)).json })])
        }
        func sse(_ data: JSONValue) -> [UInt8] { Array("event: \(name)\ndata: ".utf8) + data.encoded() + Array("\n\n".utf8) }
        let bytes = sse(data)
        let adminBytes = adminSubscribers.isEmpty ? nil : adminData.map(sse)
        for s in subscribers { transport.sendEvent(adminBytes.flatMap { adminSubscribers.contains(s) ? $0 : nil } ?? bytes, to: s) }
    }

    // MARK: ClusterDelegate (the link's threads)

    public func clusterDeliver(_ events: [Event]) {
        transport.post { [self] in
            for event in events { perform(handle(event)) }
        }
    }

    public func clusterState() -> (instancesWithPeers: [String], stats: JSONValue) {
        transport.sync { [self] in
            let s = statsSnapshot()
            let c = s.membership
            let figures: JSONValue = .object([
                "instance": .string(configuration.cluster?.name ?? ""), "peersHere": .number(Double(s.peersHere)),
                "connectionsOpen": .number(Double(s.connectionsOpen)), "joins": .number(Double(c.joins)),
                "leaves": .number(Double(c.leaves)), "signalsRelayed": .number(Double(c.signalsRelayed)),
                "forwardsSent": .number(Double(c.forwardsSent)), "forwardsDelivered": .number(Double(c.forwardsDelivered)),
                "forwardsDropped": .number(Double(c.forwardsDropped)), "uptimeSeconds": .number(s.uptimeSeconds.rounded()),
            ])
            return (membership.instancesWithPeers, figures)
        }
    }

    func statsSnapshot() -> StatsSnapshot {
        let ratios = membership.arcRatios()
        return StatsSnapshot(peersOnline: membership.ring.count, connectionsOpen: transport.counters.webSocketsOpen,
                             membership: membership.counters, transport: transport.counters, uptimeSeconds: uptime,
                             arcRatioMaxMin: ratios?.maxMin ?? 0, arcRatioMaxMean: ratios?.maxMean ?? 0,
                             fingerRows: membership.ring.fingerRows, eventSubscribers: subscribers.count,
                             leasesHeld: membership.leasesHeld,
                             peersHere: cluster == nil ? membership.ring.count : membership.peers.values.reduce(0) { $0 + ($1.instance == membership.instance ? 1 : 0) },
                             cluster: cluster.map { ClusterFigures(name: configuration.cluster?.name ?? "", instanceID: $0.instanceID, status: $0.status) })
    }
}

public enum ServerError: Error, CustomStringConvertible {
    case noSuchDirectory(String)

    public var description: String {
        switch self {
        case .noSuchDirectory(let d): return "public directory \(d) does not exist"
        }
    }
}
