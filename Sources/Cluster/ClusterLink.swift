import Foundation
import Logging
import Redis
import RendezvousCore
import Synchronization
import WireProtocol

/// What the link asks of the server it serves (called from the link's threads).
public protocol ClusterDelegate: AnyObject, Sendable {
    /// Events for the core, in order: log entries (`applied`, `loadedSnapshot`), forwarded messages,
    /// and changes of `logAvailability`. The server hands them to its service thread in this order.
    func clusterDeliver(_ events: [Event])
    /// The instances holding peers in the replica, and this instance's figures for its heartbeat
    /// (from the writer thread, once per heartbeat).
    func clusterState() -> (instancesWithPeers: [String], stats: JSONValue)
}

/// The link between an instance and its cluster's Redis (docs/cluster.md): three threads with a
/// connection each.
/// - The reader applies the log: it loads the latest snapshot at start, then reads the log's entries
///   in order (`XREAD BLOCK`) and hands them to the core as `Event.applied`.
/// - The writer appends the core's proposals to the log (a script numbers entries 1, 2, 3…),
///   publishes forwarded messages on the target instance's channel, keeps the heartbeat, stores
///   snapshots and trims the log, and proposes `instance-gone` for instances whose heartbeat expired.
/// - The subscriber receives the messages other instances forward to this one.
/// Each thread reconnects on its own after a failure; while one of them has no connection, or the reader
/// has not caught up with the log, the core is told the log is unavailable.
public final class ClusterLink: Sendable {
    public let configuration: ClusterConfiguration
    /// This incarnation's name in the log and in peer records: `<name>/<6 random hex>`.
    public let instanceID: String
    private let logger: Logger
    private let state = Mutex(State())
    private let wake = NSCondition()
    /// Signalled when the writer thread has ended (`stop` waits for it: the writer asks the server for its
    /// figures on the server's service thread, which must still run then).
    private let writerEnded = DispatchSemaphore(value: 0)

    /// What the threads share (under `state`).
    struct State: Sendable {
        var delegate: Delegate?
        var queue: [Outgoing] = []
        /// Checkpoints of this instance in the order the reader delivered them (entry, number).
        var checkpoints: [(StreamID, Int)] = []
        var writerUp = false
        var readerUp = false
        var caughtUp = false
        var subscriberUp = false
        /// Set when the log cannot be followed any more (entries lost): unavailable until restarted.
        var fatal: String?
        var availableSent: Bool?
        var lastEntry = StreamID.zero
        var lastNumber = 0
        /// The last entry handed to the core (`lastNumber` once its batch was delivered).
        var postedNumber = 0
        /// Forwarded messages waiting for the core to be given the entry their sender had read.
        var held: [(after: Int, message: Forwarded, until: Double)] = []
        var heldDropped = 0
        var applied = 0
        var sinceCheckpoint = 0
        var checkpointProposed = false
        var dropped = 0
        var lastError: String?
        var instances: [String: JSONValue] = [:]
        var goneProposed: [String: Double] = [:]
        /// Instances are not declared gone before this time (after this one's own (re)connection).
        var graceUntil = 0.0
        var stopping = false
    }

    struct Delegate: @unchecked Sendable {
        // Safe: the delegate is a Sendable class (ClusterDelegate: Sendable); only the weak box is not.
        weak var value: (any ClusterDelegate)?
    }

    enum Outgoing: Sendable {
        case propose(Mutation)
        /// A message for another instance, and the number of the last log entry read here when it was
        /// sent (the target holds it until it has applied that entry too).
        case forward(String, Forwarded, after: Int)
        case snapshot(ReplicaSnapshot)
    }

    /// What `/api/stats` and `/metrics` show of the link.
    public struct Status: Sendable {
        public var available: Bool
        public var problem: String?
        public var appliedEntries: Int
        public var lastEntry: String
        public var queued: Int
        public var dropped: Int
        /// The live instances' heartbeat figures, by incarnation.
        public var instances: [String: JSONValue]
    }

    /// Connects to Redis and agrees on the cluster's configuration: the first instance stores `proposed`
    /// (JSON of the replicated settings, with the seed), the others must carry the same settings and
    /// take the stored seed. Returns the stored configuration's JSON.
    /// - Throws: `ClusterError` when Redis cannot be reached or the settings differ.
    public static func agree(_ configuration: ClusterConfiguration, proposed: JSONValue) throws(ClusterError) -> JSONValue {
        let connection: RedisConnection
        do { connection = try RedisConnection(url: configuration.url, connectTimeout: configuration.connectTimeout, readTimeout: 5) } catch {
            throw .unreachable("\(configuration.url): \(error)")
        }
        defer { connection.close() }
        let key = configuration.keys.config
        do {
            _ = try connection.command(["SET", key, String(decoding: proposed.encoded(), as: UTF8.self), "NX"])
            guard let text = try connection.command(["GET", key]).bytes, let stored = JSONValue(parsing: text) else {
                throw ClusterError.mismatch("the cluster's configuration in Redis (\(key)) is not JSON")
            }
            guard case .object(var mine) = proposed, case .object(let theirs) = stored else { throw ClusterError.mismatch("not objects") }
            mine["seed"] = theirs["seed"]
            let differing = Set(mine.keys).union(theirs.keys).filter { mine[$0] != theirs[$0] }.sorted()
            guard differing.isEmpty else {
                throw ClusterError.mismatch("this instance's settings differ from the cluster's (\(key)) in: \(differing.joined(separator: ", ")); every instance must run with the same ring settings and server key")
            }
            return stored
        } catch let error as ClusterError {
            throw error
        } catch {
            throw .unreachable("\(configuration.url): \(error)")
        }
    }

    public init(configuration: ClusterConfiguration, logger: Logger) {
        self.configuration = configuration
        var random = SystemRandomNumberGenerator()
        self.instanceID = "\(configuration.name)/\(String(random.next() & 0xFF_FFFF, radix: 16))"
        self.logger = logger
    }

    /// Starts the threads; events go to `delegate`.
    public func start(delegate: any ClusterDelegate) {
        state.withLock { $0.delegate = Delegate(value: delegate) }
        for (name, body) in [("reader", readLoop), ("writer", writeLoop), ("subscriber", subscribeLoop)] as [(String, @Sendable () -> Void)] {
            let thread = Thread { body() }
            thread.name = "cluster-\(name)"
            thread.start()
        }
    }

    /// Stops the threads after the writer has sent what is queued (at most `grace` seconds), and waits
    /// for the writer to end (a little longer: its current Redis call has a 5 s timeout).
    public func stop(grace: Double = 2) {
        let started = state.withLock { $0.delegate != nil }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline, state.withLock({ !$0.queue.isEmpty && $0.writerUp }) { usleep(10_000) }
        state.withLock { $0.stopping = true }
        wake.broadcast()
        if started { _ = writerEnded.wait(timeout: .now() + 6) }
    }

    /// Hands a core action to the writer (service thread).
    public func send(_ action: Action) {
        let item: Outgoing
        switch action {
        case .propose(let m): item = .propose(m)
        case .forward(let instance, let m): item = .forward(instance, m, after: state.withLock { $0.lastNumber })
        case .snapshot(let s): item = .snapshot(s)
        default: return
        }
        state.withLock { s in
            s.queue.append(item)
            if s.queue.count > configuration.maxQueued {
                // Forwarded messages go first: they are best effort; proposals are reconciled later.
                let i = s.queue.firstIndex { if case .forward = $0 { true } else { false } } ?? 0
                s.queue.remove(at: i)
                s.dropped += 1
            }
        }
        wake.signal()
    }

    public var status: Status {
        state.withLock { s in
            Status(available: Self.isAvailable(s), problem: s.fatal ?? (Self.isAvailable(s) ? nil : s.lastError ?? "connecting"),
                   appliedEntries: s.applied, lastEntry: s.lastEntry.text, queued: s.queue.count, dropped: s.dropped + s.heldDropped,
                   instances: s.instances)
        }
    }

    /// Available: the log can be followed and appended to, and messages forwarded to this instance reach
    /// it (its channel is subscribed: Pub/Sub keeps nothing for a channel nobody listens to).
    private static func isAvailable(_ s: State) -> Bool { s.fatal == nil && s.writerUp && s.readerUp && s.caughtUp && s.subscriberUp }

    private func deliver(_ events: [Event]) {
        guard !events.isEmpty, let d = state.withLock({ $0.delegate?.value }) else { return }
        d.clusterDeliver(events)
    }

    /// `deliver` for a caller that holds the state's lock (the delegate only queues the events).
    private static func deliver(_ events: [Event], to s: State) {
        guard !events.isEmpty, let d = s.delegate?.value else { return }
        d.clusterDeliver(events)
    }

    /// Tells the core when availability changed (with `events` before it, in order).
    private func update(_ change: (inout State) -> Void, then events: [Event] = []) {
        let flip: Bool? = state.withLock { s in
            change(&s)
            let now = Self.isAvailable(s)
            guard s.availableSent != now else { return nil }
            s.availableSent = now
            return now
        }
        if let flip {
            logger.notice(flip ? "cluster log available" : "cluster log unavailable", metadata: ["problem": "\(status.problem ?? "")"])
            if flip { state.withLock { $0.graceUntil = Date().timeIntervalSince1970 + configuration.instanceTimeout } }
        }
        deliver(events + (flip.map { [.logAvailability($0)] } ?? []))
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    /// Connects, or waits a little and returns nil (so that loops notice `stop`).
    private func connect(readTimeout: Double) -> RedisConnection? {
        do {
            return try RedisConnection(url: configuration.url, connectTimeout: configuration.connectTimeout, readTimeout: readTimeout)
        } catch {
            state.withLock { $0.lastError = "\(error)" }
            pause(0.5)
            return nil
        }
    }

    private func pause(_ seconds: Double) {
        wake.lock()
        _ = wake.wait(until: Date().addingTimeInterval(seconds))
        wake.unlock()
    }

    // MARK: Reader

    private func readLoop() {
        var connection: RedisConnection?
        while !stopping {
            if state.withLock({ $0.fatal != nil }) { pause(1); continue }   // nothing more can be applied
            let fresh = connection == nil
            guard let c = connection ?? connect(readTimeout: 5) else { continue }
            connection = c
            do {
                if fresh, try logWasLost(c) { continue }
                if state.withLock({ $0.lastNumber == 0 && $0.lastEntry == .zero }) { try loadSnapshot(c) }
                update { $0.readerUp = true }
                let after = state.withLock { $0.lastEntry }
                let reply = try c.command(["XREAD", "COUNT", "500", "BLOCK", "1000", "STREAMS", configuration.keys.log, after.text])
                let entries = try StreamReply.read(reply, stream: configuration.keys.log)
                try apply(entries, connection: c)
            } catch {
                state.withLock { $0.lastError = "log reader: \(error)" }
                update { $0.readerUp = false; $0.caughtUp = false }
                connection = nil
                pause(0.2)
            }
        }
    }

    /// After (re)connecting: whether Redis lost the log this replica applied (its entry counter is behind
    /// the last entry applied here: Redis restarted without its data). Then nothing more can be applied.
    private func logWasLost(_ c: RedisConnection) throws(RedisError) -> Bool {
        let applied = state.withLock { $0.lastNumber }
        let counter = try c.command(["GET", configuration.keys.sequence]).int ?? 0
        guard counter < applied else { return false }
        let problem = "the cluster's log lost entries (Redis counts \(counter), this instance applied \(applied)): Redis restarted without its data? Restart every instance with a new --cluster-prefix, or restore Redis's data (docs/cluster.md)"
        logger.critical("\(problem)")
        update { $0.fatal = problem }
        return true
    }

    private func loadSnapshot(_ c: RedisConnection) throws(RedisError) {
        guard let text = try c.command(["GET", configuration.keys.snapshot]).bytes else { return }
        guard let v = JSONValue(parsing: text), let entry = v["entry"]?.stringValue.flatMap(StreamID.init),
              case .number(let n)? = v["n"], let replica = v["replica"].flatMap(ReplicaSnapshot.init(json:)) else {
            state.withLock { $0.fatal = "the cluster's snapshot (\(configuration.keys.snapshot)) is malformed" }
            return
        }
        state.withLock { $0.lastEntry = entry; $0.lastNumber = Int(n) }
        logger.info("cluster snapshot loaded", metadata: ["entry": "\(entry)", "n": "\(Int(n))", "peers": "\(replica.peers.count)"])
        deliver([.loadedSnapshot(replica)])
    }

    private func apply(_ entries: [StreamEntry], connection c: RedisConnection) throws(RedisError) {
        var events: [Event] = []
        for entry in entries {
            let n = entry.string("n").flatMap { Int($0) } ?? -1
            let expected = state.withLock { $0.lastNumber + 1 }
            if n != expected {
                // Entries were trimmed behind a snapshot while this instance was away, or Redis lost them.
                deliver(events)
                events = []
                let before = state.withLock { $0.lastNumber }
                state.withLock { $0.lastNumber = 0; $0.lastEntry = .zero }
                try loadSnapshot(c)
                let (after, fatal) = state.withLock { ($0.lastNumber, $0.fatal) }
                if fatal == nil, after <= before {
                    let problem = "the cluster's log lost entries (expected number \(expected), found \(n)): Redis restarted without its data? Restart every instance with a new --cluster-prefix, or restore Redis's data (docs/cluster.md)"
                    logger.critical("\(problem)")
                    update { $0.fatal = problem; $0.lastNumber = before }
                }
                return
            }
            let mutation = entry.string("m").flatMap { JSONValue(parsing: Array($0.utf8)) }.flatMap(Mutation.init(json:))
            state.withLock { s in
                s.lastNumber = n
                s.lastEntry = entry.id
                s.applied += 1
                s.sinceCheckpoint += 1
                if case .checkpoint(let by)? = mutation {
                    s.sinceCheckpoint = 0
                    s.checkpointProposed = false
                    if by == instanceID { s.checkpoints.append((entry.id, n)) }
                }
            }
            // An entry no replica can read is skipped by all alike.
            if let mutation { events.append(.applied(mutation, at: Double(entry.id.ms) / 1000)) }
        }
        let caughtUp = entries.count < 500
        update({ if caughtUp { $0.caughtUp = true } }, then: events)
        release()
    }

    // MARK: Forwarded messages in log order

    /// Most forwarded messages held back at once, and for how long (seconds): beyond, they are dropped.
    static let maxHeld = 10_000
    static let holdSeconds = 10.0

    /// A message another instance forwarded after it had read log entry `after`: handed to the core now if
    /// the core has been given that entry (and nothing is held before it), held until then otherwise. So a
    /// signal from a peer that already sees a newcomer is not dropped by an instance that has not applied
    /// the newcomer's join yet; messages from one sender stay in order.
    private func receive(_ message: Forwarded, after: Int) {
        state.withLock { s in
            if s.held.isEmpty && s.postedNumber >= after {
                Self.deliver([.forwarded(message)], to: s)
            } else if s.held.count < Self.maxHeld {
                s.held.append((after, message, Date().timeIntervalSince1970 + Self.holdSeconds))
            } else {
                s.heldDropped += 1
            }
        }
    }

    /// After log entries were handed to the core: the held messages they were waiting for follow, in the
    /// order they came; those held too long are dropped.
    private func release() {
        let now = Date().timeIntervalSince1970
        state.withLock { s in
            s.postedNumber = s.lastNumber
            var ready: [Event] = []
            while let first = s.held.first, first.after <= s.postedNumber || first.until < now {
                s.held.removeFirst()
                if first.after <= s.postedNumber { ready.append(.forwarded(first.message)) } else { s.heldDropped += 1 }
            }
            Self.deliver(ready, to: s)   // under the lock: nothing from the channel can overtake them
        }
    }

    // MARK: Writer

    /// Appends a mutation as entry n+1 (n: the sequence key), so that readers can tell a gap.
    private static let appendScript = "local n = redis.call('INCR', KEYS[2]) return redis.call('XADD', KEYS[1], '*', 'n', n, 'm', ARGV[1])"
    /// Stores a snapshot unless a newer one is there, then trims the log behind it.
    private static let snapshotScript = """
        local old = redis.call('GET', KEYS[1])
        if old then local n = tonumber(string.match(old, '"n":(%d+)')) if n and n >= tonumber(ARGV[2]) then return 0 end end
        redis.call('SET', KEYS[1], ARGV[1]) redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3]) return 1
        """

    private func writeLoop() {
        var connection: RedisConnection?
        var nextBeat = 0.0
        while true {
            if stopping, state.withLock({ $0.queue.isEmpty || !$0.writerUp }) { break }
            guard let c = connection ?? connect(readTimeout: 5) else { update { $0.writerUp = false }; continue }
            if connection == nil {
                connection = c
                update { $0.writerUp = true }
                nextBeat = 0
            }
            let batch: [Outgoing] = state.withLock { s in defer { s.queue.removeAll() }; return s.queue }
            do {
                try write(batch, c)
                let now = Date().timeIntervalSince1970
                if now >= nextBeat {
                    try heartbeat(c, now: now)
                    nextBeat = now + configuration.heartbeatInterval
                }
            } catch {
                // Proposals are sent again after reconnecting (applying one twice changes nothing);
                // forwarded messages are best effort.
                let again = batch.filter { if case .forward = $0 { false } else { true } }
                state.withLock { $0.queue.insert(contentsOf: again, at: 0); $0.lastError = "log writer: \(error)" }
                update { $0.writerUp = false }
                connection = nil
                continue
            }
            wake.lock()
            if state.withLock({ $0.queue.isEmpty && !$0.stopping }) {
                _ = wake.wait(until: Date(timeIntervalSince1970: max(nextBeat, Date().timeIntervalSince1970 + 0.001)))
            }
            wake.unlock()
        }
        // A graceful stop: the heartbeat ends now rather than at its time to live.
        _ = try? connection?.command(["DEL", configuration.keys.alive(instanceID)])
        connection?.close()
        writerEnded.signal()
    }

    private func write(_ batch: [Outgoing], _ c: RedisConnection) throws(RedisError) {
        guard !batch.isEmpty else { return }
        let keys = configuration.keys
        var commands: [[String]] = []
        for item in batch {
            switch item {
            case .propose(let m):
                commands.append(["EVAL", Self.appendScript, "2", keys.log, keys.sequence, String(decoding: m.json.encoded(), as: UTF8.self)])
            case .forward(let instance, let m, let after):
                guard case .object(var o) = m.json else { continue }
                o["after"] = .number(Double(after))
                commands.append(["PUBLISH", keys.channel(instance), String(decoding: JSONValue.object(o).encoded(), as: UTF8.self)])
            case .snapshot(let s):
                guard let (entry, n) = state.withLock({ $0.checkpoints.isEmpty ? nil : $0.checkpoints.removeFirst() }) else { continue }
                let text = JSONValue.object(["entry": .string(entry.text), "n": .number(Double(n)), "replica": s.json]).encoded()
                commands.append(["EVAL", Self.snapshotScript, "2", keys.snapshot, keys.log, String(decoding: text, as: UTF8.self), String(n), entry.text])
                commands.append(["DEL", keys.checkpointLock])   // the next checkpoint may be proposed
            }
        }
        for (reply, command) in zip(try c.pipeline(commands), commands) {
            if let message = reply.errorMessage { logger.error("redis refused \(command[0])", metadata: ["error": "\(message)"]) }
        }
    }

    private func heartbeat(_ c: RedisConnection, now: Double) throws(RedisError) {
        guard let d = state.withLock({ $0.delegate?.value }) else { return }
        let (holding, stats) = d.clusterState()
        let keys = configuration.keys
        let ttl = String(Int(configuration.instanceTimeout * 1000))
        let others = Set(holding).union(state.withLock { Array($0.instances.keys) }).subtracting([instanceID]).sorted()
        var commands: [[String]] = [["SET", keys.alive(instanceID), String(decoding: stats.encoded(), as: UTF8.self), "PX", ttl],
                                    ["SADD", keys.instances, instanceID],
                                    ["SMEMBERS", keys.instances]]
        if !others.isEmpty { commands.append(["MGET"] + others.map(keys.alive)) }
        let replies = try c.pipeline(commands)
        let members = (replies[2].array ?? []).compactMap(\.string).filter { $0 != instanceID }
        var live: [String: JSONValue] = [instanceID: stats]
        var missing: [String] = []
        let values = replies.count > 3 ? replies[3].array ?? [] : []
        for (instance, value) in zip(others, values) {
            if let text = value.bytes, let v = JSONValue(parsing: text) { live[instance] = v } else { missing.append(instance) }
        }
        // Members not seen in the last look are looked up next time (they may have just started).
        let unknown = members.filter { !others.contains($0) }
        if !unknown.isEmpty {
            let found = (try c.command(["MGET"] + unknown.map(keys.alive))).array ?? []
            for (instance, value) in zip(unknown, found) {
                if let text = value.bytes, let v = JSONValue(parsing: text) { live[instance] = v } else {
                    _ = try c.command(["SREM", keys.instances, instance])
                }
            }
        }
        let (grace, proposed, wantCheckpoint) = state.withLock { s -> (Double, [String: Double], Bool) in
            s.instances = live
            let want = s.sinceCheckpoint >= configuration.checkpointEntries && !s.checkpointProposed
            return (s.graceUntil, s.goneProposed, want)
        }
        guard state.withLock({ Self.isAvailable($0) }) else { return }
        var mutations: [Mutation] = []
        if now >= grace {
            for instance in missing where holding.contains(instance) && now - (proposed[instance] ?? 0) > configuration.instanceTimeout {
                logger.warning("cluster instance gone (no heartbeat)", metadata: ["instance": "\(instance)"])
                mutations.append(.instanceGone(instance))
                state.withLock { $0.goneProposed[instance] = now }
            }
        }
        if wantCheckpoint, try c.command(["SET", keys.checkpointLock, instanceID, "NX", "PX", "10000"]).isOK {
            mutations.append(.checkpoint(by: instanceID))
            state.withLock { $0.checkpointProposed = true }
        }
        if !mutations.isEmpty { try write(mutations.map(Outgoing.propose), c) }
    }

    // MARK: Subscriber

    private func subscribeLoop() {
        var connection: RedisConnection?
        let channel = configuration.keys.channel(instanceID)
        while !stopping {
            guard let c = connection ?? connect(readTimeout: 1) else { continue }
            do {
                if connection == nil {
                    _ = try c.command(["SUBSCRIBE", channel])
                    connection = c
                    update { $0.subscriberUp = true }
                }
                guard let reply = try c.nextReply(), let parts = reply.array, parts.count == 3, parts[0].string == "message",
                      let payload = parts[2].bytes else { continue }
                guard let v = JSONValue(parsing: payload), let message = Forwarded(json: v) else { continue }
                var after = 0
                if case .number(let n)? = v["after"], let i = Int(exactly: n) { after = i }
                receive(message, after: after)
            } catch {
                update { $0.subscriberUp = false; $0.lastError = "channel: \(error)" }
                connection = nil
                pause(0.2)
            }
        }
        connection?.close()
    }
}

public enum ClusterError: Error, CustomStringConvertible {
    case unreachable(String)
    case mismatch(String)

    public var description: String {
        switch self {
        case .unreachable(let what): return "cannot reach the cluster's Redis at \(what)"
        case .mismatch(let what): return what
        }
    }
}
