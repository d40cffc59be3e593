import Algorithms
import Foundation
import Ring
import RendezvousCore
import Transport
import WireProtocol

/// The ring and the peers' records as the analytics routes show them (docs/api.md): pure functions of
/// a ring and its records, so that the analytics thread can render them from its own copy.
struct NetworkView: Sendable {
    /// Default and largest page of `/api/network`.
    static let pageDefault = 1000
    static let pageMax = 10_000

    /// The `capabilities` keys every caller sees: those the bundled peers send that never hold an
    /// address. Everything else a peer sent (notably a native peer's listening `url`) goes only to
    /// callers with the admin token (docs/api.md, "Who sees what").
    static let publicCapabilityKeys: Set<String> = ["runtimes", "workers", "transports"]

    private(set) var ring: Ring
    private(set) var peers: [PeerID: PeerRecord] = [:]

    init(configuration: ServerConfiguration) {
        ring = Ring(policy: configuration.core.fingerPolicy, successorListLength: configuration.core.successorListLength, seed: 0)
    }

    /// Replays a change the signalling thread made (the same joins and leaves give the same ring).
    mutating func apply(_ change: AnalyticsChange) {
        switch change {
        case .joined(let id, let record):
            _ = try? ring.join(id)
            peers[id] = record
        case .left(let id):
            _ = try? ring.leave(id)
            peers[id] = nil
        case .record(let id, let record):
            if peers[id] != nil { peers[id] = record }
        }
    }

    /// `GET /api/network` body: peers in ID order after `after`, at most `limit`.
    func page(after: PeerID?, limit: Int, admin: Bool) -> [UInt8] {
        let members = ring.members
        let start = after.map { a in members.partitioningIndex { $0 > a } } ?? 0
        let page = members[start..<min(members.count, start + limit)]
        let next: JSONValue = page.endIndex < members.count ? page.last.map { .string($0.hex) } ?? .null : .null
        return JSONValue.object([
            "idBits": .number(Double(PeerID.bits)),
            "fingerRows": .array(ring.fingerRows.map { .number(Double($0)) }),
            "successors": .number(Double(ring.successorListLength)),
            "total": .number(Double(members.count)),
            "next": next,
            "peers": .array(page.map { Self.peerJSON($0, ring: ring, record: peers[$0], admin: admin) }),
        ]).prettyEncoded()
    }

    /// One peer as the analytics routes show it; `admin` callers also see every capability (addresses).
    static func peerJSON(_ id: PeerID, ring: Ring, record: PeerRecord?, admin: Bool) -> JSONValue {
        let state = ring.state(of: id)
        var fingers: [String: JSONValue] = [:]
        for (row, peer) in state.fingers { fingers[String(row)] = peer.map { .string($0.hex) } ?? .null }
        var stats: [String: JSONValue] = [:]
        for (k, v) in record?.stats ?? [:] { stats[k] = .number(v) }
        var entry: [String: JSONValue] = [
            "peerId": .string(id.hex),
            "predecessor": state.predecessor.map { .string($0.hex) } ?? .null,
            "successors": .array(state.successors.map { .string($0.hex) }),
            "fingers": .object(fingers),
            "connectedAt": .string(record?.connectedAt ?? ""),
            "capabilities": record?.capabilities.map { .object(admin ? $0 : $0.filter { publicCapabilityKeys.contains($0.key) }) } ?? .null,
            "stats": .object(stats),
        ]
        // Cluster mode: the instance holding the peer's session (docs/cluster.md).
        if let instance = record?.instance, !instance.isEmpty { entry["instance"] = .string(instance) }
        return .object(entry)
    }
}

/// Serves `GET /api/network` off the signalling thread, so that anonymous analytics cannot delay
/// signalling (a 10,000-peer page is about 800 KB of JSON and tens of milliseconds of work).
///
/// The analytics thread keeps its own copy of the ring and the records, replaying the changes the
/// signalling thread hands it (a few microseconds each there, never a copy of the whole ring), and
/// renders pages from that copy. Changes and requests share one queue, in order, so a page shows
/// every change made before its request arrived. Pages are cached until the next change, so clients
/// polling the same pages cost one rendering per change. The thread runs at a lower priority (nice
/// 10) than the signalling thread. At most `maxPending` requests wait; more are answered 503.
///
/// `@unchecked Sendable`: `jobs` and `stopping` are guarded by `condition`; `view`, `cache` and
/// `version` are touched only on the analytics thread; `pending` only on the signalling thread.
final class AnalyticsWorker: @unchecked Sendable {
    private enum Job {
        case change(AnalyticsChange)
        case page(ConnectionID, after: PeerID?, limit: Int, admin: Bool)
    }

    private struct PageKey: Hashable {
        let after: PeerID?
        let limit: Int
        let admin: Bool
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    private var view: NetworkView
    private var cache: [PageKey: [UInt8]] = [:]

    /// Requests handed over and not answered yet (signalling thread).
    private(set) var pending = 0
    let maxPending: Int
    /// The signalling thread's transport, which sends the answers.
    private let transport: Transport

    init(configuration: ServerConfiguration, transport: Transport) {
        view = NetworkView(configuration: configuration)
        maxPending = configuration.maxPendingAnalytics
        self.transport = transport
    }

    func start() {
        condition.withLock { started = true }
        let t = Thread { [self] in run() }
        t.name = "analytics"
        t.stackSize = 4 << 20
        t.start()
    }

    /// Stops the thread after the jobs queued so far (their answers go nowhere once the transport stops).
    func stop() {
        let wasStarted: Bool = condition.withLock {
            guard started, !stopping else { return false }
            stopping = true
            condition.signal()
            return true
        }
        if wasStarted { finished.wait() }
    }

    /// Signalling thread: the ring or a record changed.
    func apply(_ changes: [AnalyticsChange]) {
        guard !changes.isEmpty else { return }
        condition.withLock {
            for c in changes { jobs.append(.change(c)) }
            condition.signal()
        }
    }

    /// Signalling thread: queues a page request; false when `maxPending` requests already wait.
    func requestPage(for connection: ConnectionID, after: PeerID?, limit: Int, admin: Bool) -> Bool {
        guard pending < maxPending else { return false }
        pending += 1
        condition.withLock {
            jobs.append(.page(connection, after: after, limit: limit, admin: admin))
            condition.signal()
        }
        return true
    }


    private func run() {
        // Below the signalling thread: on a busy machine, analytics wait, signalling does not.
        Transport.lowerCurrentThreadPriority(nice: 10)
        Transport.nameCurrentThread("analytics")
        while true {
            let batch: [Job] = condition.withLock {
                while jobs.isEmpty && !stopping { condition.wait() }
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            if batch.isEmpty { break }
            for job in batch { perform(job) }
        }
        finished.signal()
    }

    private func perform(_ job: Job) {
            switch job {
            case .change(let change):
                view.apply(change)
                cache.removeAll(keepingCapacity: true)
            case .page(let connection, let after, let limit, let admin):
                let key = PageKey(after: after, limit: limit, admin: admin)
                let body: [UInt8]
                if let cached = cache[key] {
                    body = cached
                } else {
                    body = view.page(after: after, limit: limit, admin: admin)
                    if cache.count >= 64 { cache.removeAll(keepingCapacity: true) }
                    cache[key] = body
                }
                transport.post { [self, transport] in
                    pending -= 1
                    transport.respond(to: connection, with: .body(status: 200, contentType: "application/json", body: body,
                                                                  headers: [("vary", "authorization")]))
                }
            }
    }
}
