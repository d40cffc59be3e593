import ConnectionTypes
import Ring
import WireProtocol

// The replicated part of the core (docs/cluster.md): mutations of the ring, the holder bindings, the
// leases and the peer records. A single server applies each mutation as soon as it is decided; in a
// cluster every instance applies the log's mutations in log order, so all replicas compute the same IDs
// and the same ring updates, and each sends only to the sessions it holds.

extension Membership {
    /// The name this core's sessions are recorded under ("" on a single server).
    var local: String { instance ?? "" }

    func origin(_ connection: ConnectionID) -> Origin { Origin(instance: local, connection: connection) }

    /// Whether `record` is the session `connection` of this instance.
    func isLocal(_ record: PeerRecord?, _ connection: ConnectionID) -> Bool {
        record?.instance == local && record?.connection == connection
    }

    /// Applies the mutation at once (single server) or hands it to the cluster's log.
    mutating func propose(_ mutation: Mutation) -> [Action] {
        instance == nil ? apply(mutation) : [.propose(mutation)]
    }

    /// One mutation, in log order; deterministic (every replica returns the same ring changes).
    public mutating func apply(_ mutation: Mutation) -> [Action] {
        switch mutation {
        case .join(let origin, let joining):
            return applyJoin(origin, joining)
        case .leave(let peer, let origin, let reason, let keepLease):
            guard let record = peers[peer], record.instance == origin.instance, record.connection == origin.connection else { return [] }
            return removeFromRing(peer, reason: reason, keepLease: keepLease)
        case .evict(let peer):
            guard let record = peers[peer] else { return [] }
            var actions: [Action] = []
            if record.instance == local {
                sessions[record.connection]?.machine.evicted()
                counters.evictions += 1
                counters.count(.evicted)
                actions = [.send(record.connection, .error(.evicted, "evicted by the operator")),
                           .close(record.connection, status: 1008, reason: "evicted")]
            }
            return actions + removeFromRing(peer, reason: .evicted)
        case .instanceGone(let name):
            var actions: [Action] = []
            for peer in peers.filter({ $0.value.instance == name }).keys.sorted() {
                // This instance was declared gone (it lost the log for too long): its sessions are no longer
                // in the ring, so they reconnect (here or elsewhere) and claim their IDs.
                if name == local, let c = peers[peer]?.connection { actions += drop(c) }
                actions += removeFromRing(peer, reason: .instanceGone)
            }
            return actions
        case .checkpoint(let by):
            let actions: [Action] = by == local ? [.snapshot(replicaSnapshot)] : []
            ring.normalize()
            normalizeLeases()
            return actions
        }
    }

    /// A verified registration, applied: a returning key gets its ID back (replacing a live session of
    /// its own, wherever it is), a new key a least-occupied ID and a new epoch. A fresh registration with
    /// a key that already holds an ID is answered as if it had asked for that ID (a key holds at most one).
    private mutating func applyJoin(_ origin: Origin, _ j: Joining) -> [Action] {
        let here = origin.instance == local
        let record = j.record(at: origin)
        guard let claimed = j.requested ?? holders[j.publicKey] else { return addToRing(origin, nil, publicKey: j.publicKey, record: record) }
        guard let binding = bindings[claimed], binding.publicKey == j.publicKey else {
            // The same answer whether the ID was freed, is bound to another key or was lost.
            return refuse(origin, ProtocolError(.idExpired,
                "peer \(claimed.hex) is not held by this key (its lease ended, or it left); register without peerId"))
        }
        if let old = peers[claimed], old.instance == origin.instance, old.connection == origin.connection {
            return []   // this very registration, applied before (a proposal sent twice after a reconnection)
        }
        if here { counters.reRegistrations += 1 }
        guard let old = peers[claimed] else {
            // The holder is back within its lease.
            if here { counters.leasesClaimed += 1 }
            return addToRing(origin, claimed, publicKey: j.publicKey, record: record)
        }
        // A live (possibly half-open) session of the same key holds this ID: the new session replaces it.
        var actions: [Action] = []
        if old.instance == local {
            sessions[old.connection]?.machine.replaced()
            counters.replacements += 1
            counters.count(.replaced)
            actions = [.send(old.connection, .error(.replaced, "peer \(claimed.hex) registered on another connection")),
                       .close(old.connection, status: 4000, reason: "replaced")]
        }
        peers[claimed] = record
        changes.append(.record(claimed, record))
        let welcomed = registered(origin, claimed)
        return actions + [.publish(.replaced(claimed))] + welcomed.welcome + welcomed.then
    }

    /// Inserts the peer with `requested`, or with a least-occupied ID when nil.
    private mutating func addToRing(_ origin: Origin, _ requested: PeerID?, publicKey: String, record: PeerRecord) -> [Action] {
        guard ring.count < configuration.maxPeers, let id = requested ?? ring.allocateID(),
              requested != nil || bindings[id] == nil else {
            return refuse(origin, ProtocolError(.serverFull, "the ring is full (\(configuration.maxPeers) peers)"))
        }
        let changes: RingChanges
        do throws(RingError) { changes = try ring.join(id) } catch {
            return refuse(origin, ProtocolError(.alreadyRegistered, "peer \(id.hex) is already in the ring"))
        }
        peers[id] = record
        if requested == nil {
            bind(id, Binding(epoch: nextEpoch, publicKey: publicKey, leaseUntil: nil))
            nextEpoch &+= 1
        } else {
            bindings[id]?.leaseUntil = nil
        }
        self.changes.append(.joined(id, record))
        if origin.instance == local { counters.joins += 1 }
        let welcomed = registered(origin, id)
        return welcomed.welcome + [.publish(.join(id))] + push(changes) + welcomed.then
    }

    /// The session at `origin` now holds `id`: when it is here and still waiting, it is welcomed
    /// (`welcome`), then told when its URL is not vouched for (`then`, after the ring's updates); when it
    /// is here but closed before its registration was applied (cluster mode), the peer leaves again,
    /// keeping its lease (`then`).
    private mutating func registered(_ origin: Origin, _ id: PeerID) -> (welcome: [Action], then: [Action]) {
        guard origin.instance == local else { return ([], []) }
        let connection = origin.connection
        guard sessions[connection]?.machine.isJoining == true else {
            return ([], [.propose(.leave(id, origin: origin, reason: .closed, keepLease: true))])
        }
        sessions[connection]?.machine.registered(as: id)
        return (welcome(connection, id), urlNotVouched(connection, peers[id]?.capabilities))
    }

    /// The registration from `origin` is refused: answered there when the session is still waiting.
    private mutating func refuse(_ origin: Origin, _ error: ProtocolError) -> [Action] {
        guard origin.instance == local, sessions[origin.connection]?.machine.isJoining == true else { return [] }
        sessions[origin.connection]?.machine.refused()
        return fail(origin.connection, error)
    }

    /// A session of this instance that the replica no longer holds: told to register again, and closed
    /// with 1012 (its client reconnects, here or to another instance, and claims its ID with its key).
    private mutating func drop(_ c: ConnectionID) -> [Action] {
        sessions[c]?.machine.evicted()
        return [.send(c, .error(.unavailable, "this server lost its place in the cluster: reconnect and register again with your key")),
                .close(c, status: 1012, reason: "instance gone")]
    }

    // MARK: Forwarding (cluster mode)

    /// A signal or link frame for a peer held by another instance.
    mutating func forward(_ to: PeerID, via target: PeerRecord, _ payload: Forwarded.Payload, from: PeerID) -> [Action] {
        counters.forwardsSent += 1
        return [.forward(instance: target.instance, Forwarded(from: from, to: to, toEpoch: bindings[to]?.epoch ?? 0, payload: payload))]
    }

    /// A message another instance forwarded: delivered while its target is still this instance's session
    /// at the epoch the sender saw, dropped otherwise (never to a later holder of the ID).
    mutating func deliver(_ m: Forwarded) -> [Action] {
        guard let target = peers[m.to], target.instance == local, bindings[m.to]?.epoch == m.toEpoch,
              sessions[target.connection]?.machine.peer == m.to else {
            counters.forwardsDropped += 1
            return []
        }
        counters.forwardsDelivered += 1
        switch m.payload {
        case .signal(let intentId, let signal, let fromUrl):
            return [.send(target.connection, .signal(from: m.from, intentId: intentId, signal: signal, fromUrl: fromUrl))]
        case .link(let frame):
            return [.send(target.connection, .link(from: m.from, frame: frame))]
        }
    }

    /// After the log was unavailable (or at start): the replica's peers recorded at this instance whose
    /// session is no longer here (it closed while the log was unreachable, or before a restart) leave,
    /// keeping their leases.
    mutating func reconcile() -> [Action] {
        peers.filter { $0.value.instance == local && sessions[$0.value.connection]?.machine.peer != $0.key }.keys.sorted()
            .map { .propose(.leave($0, origin: origin(peers[$0]!.connection), reason: .closed, keepLease: true)) }
    }

    /// The instances that hold sessions of peers in the ring, in order.
    public var instancesWithPeers: [String] { Set(peers.values.map(\.instance)).sorted() }

    // MARK: Snapshots (cluster mode)

    /// The replica as of now, to be taken just before the checkpoint's normalization (`apply`).
    var replicaSnapshot: ReplicaSnapshot {
        ReplicaSnapshot(ring: ring.snapshot, nextEpoch: nextEpoch, latestNow: latestNow,
                        bindings: bindings.map { ($0.key, $0.value) }.sorted { $0.0 < $1.0 },
                        leases: pendingLeases, peers: peers.map { ($0.key, $0.value) }.sorted { $0.0 < $1.0 })
    }

    /// The leases not yet ended, in the order they end (ties by ID).
    private var pendingLeases: [(deadline: Double, peer: PeerID, epoch: UInt64)] {
        leaseQueue[leaseQueueHead...].filter { e in
            bindings[e.peer].map { $0.epoch == e.epoch && $0.leaseUntil == e.deadline } ?? false
        }.sorted { ($0.deadline, $0.peer) < ($1.deadline, $1.peer) }
    }

    /// The lease queue keeps only live entries, in (deadline, ID) order: its order no longer depends on
    /// the order of past leaves, as in a replica loaded from a snapshot.
    mutating func normalizeLeases() {
        leaseQueue = pendingLeases
        leaseQueueHead = 0
    }

    /// Replaces the replicated state by a snapshot's (the peers' sessions stay where the snapshot says).
    /// Sessions of this instance that the snapshot does not hold (the instance fell so far behind that the
    /// log was trimmed past it) are closed, to register again; peers it records here without a session
    /// here leave (`reconcile`).
    mutating func load(_ s: ReplicaSnapshot) -> [Action] {
        for peer in peers.keys.sorted() { changes.append(.left(peer)) }
        ring = Ring(policy: configuration.fingerPolicy, successorListLength: configuration.successorListLength, restoring: s.ring)
        nextEpoch = s.nextEpoch
        latestNow = s.latestNow
        bindings = [:]
        holders = [:]
        for (peer, b) in s.bindings { bind(peer, b) }
        leaseQueue = s.leases
        leaseQueueHead = 0
        peers = Dictionary(uniqueKeysWithValues: s.peers)
        for (peer, record) in s.peers { changes.append(.joined(peer, record)) }
        var actions: [Action] = []
        for (c, session) in sessions.sorted(by: { $0.key < $1.key }) {
            guard let peer = session.machine.peer, !isLocal(peers[peer], c) else { continue }
            actions += drop(c)
        }
        return actions + (logAvailable ? reconcile() : [])
    }
}

/// A replica's replicated state as of a checkpoint of the cluster's log (docs/cluster.md, "Snapshots"):
/// an instance that loads it and applies the entries after the checkpoint holds the same replica as
/// the instances that applied the whole log.
public struct ReplicaSnapshot: Equatable, Sendable {
    public static let format = "browsercloud-replica/1"
    public var ring: Ring.Snapshot
    public var nextEpoch: UInt64
    public var latestNow: Double
    public var bindings: [(PeerID, Membership.Binding)]
    public var leases: [(deadline: Double, peer: PeerID, epoch: UInt64)]
    public var peers: [(PeerID, PeerRecord)]

    public static func == (a: ReplicaSnapshot, b: ReplicaSnapshot) -> Bool { a.json == b.json }

    /// JSON with every ID as 12 hex, 64-bit numbers as decimal strings, times as numbers.
    public var json: JSONValue {
        func hex(_ p: PeerID) -> JSONValue { .string(p.hex) }
        return .object([
            "format": .string(Self.format),
            "ring": .object(["members": .array(ring.members.map(hex)), "reserved": .array(ring.reserved.map(hex)),
                             "rng": .string(String(ring.rngState))]),
            "nextEpoch": .string(String(nextEpoch)),
            "latestNow": latestNow.isFinite ? .number(latestNow) : .null,
            "bindings": .array(bindings.map { p, b in
                var o: [String: JSONValue] = ["peerId": hex(p), "epoch": .string(String(b.epoch)), "publicKey": .string(b.publicKey)]
                if let until = b.leaseUntil { o["leaseUntil"] = .number(until) }
                return .object(o)
            }),
            "leases": .array(leases.map { .array([.number($0.deadline), hex($0.peer), .string(String($0.epoch))]) }),
            "peers": .array(peers.map { p, r in
                var o = r.replicatedJSON
                o["peerId"] = hex(p)
                return .object(o)
            }),
        ])
    }

    /// Reads `json`; nil when anything is missing or malformed.
    public init?(json v: JSONValue) {
        guard v["format"]?.stringValue == Self.format, let r = v["ring"],
              let members = r["members"]?.arrayValue?.compactMap({ $0.stringValue.flatMap(PeerID.init(hex:)) }),
              let reserved = r["reserved"]?.arrayValue?.compactMap({ $0.stringValue.flatMap(PeerID.init(hex:)) }),
              members.count == r["members"]?.arrayValue?.count, reserved.count == r["reserved"]?.arrayValue?.count,
              let rng = r["rng"]?.stringValue.flatMap({ UInt64($0) }),
              let nextEpoch = v["nextEpoch"]?.stringValue.flatMap({ UInt64($0) }),
              let bindingList = v["bindings"]?.arrayValue, let leaseList = v["leases"]?.arrayValue,
              let peerList = v["peers"]?.arrayValue else { return nil }
        var latestNow = -Double.infinity
        if case .number(let x)? = v["latestNow"] { latestNow = x }
        var bindings: [(PeerID, Membership.Binding)] = []
        for b in bindingList {
            guard let p = b["peerId"]?.stringValue.flatMap(PeerID.init(hex:)), let e = b["epoch"]?.stringValue.flatMap({ UInt64($0) }),
                  let key = b["publicKey"]?.stringValue else { return nil }
            var until: Double?
            if case .number(let x)? = b["leaseUntil"] { until = x }
            bindings.append((p, Membership.Binding(epoch: e, publicKey: key, leaseUntil: until)))
        }
        var leases: [(deadline: Double, peer: PeerID, epoch: UInt64)] = []
        for l in leaseList {
            guard let a = l.arrayValue, a.count == 3, case .number(let d) = a[0], let p = a[1].stringValue.flatMap(PeerID.init(hex:)),
                  let e = a[2].stringValue.flatMap({ UInt64($0) }) else { return nil }
            leases.append((d, p, e))
        }
        var peers: [(PeerID, PeerRecord)] = []
        for o in peerList {
            guard let p = o["peerId"]?.stringValue.flatMap(PeerID.init(hex:)), let record = PeerRecord(replicated: o) else { return nil }
            peers.append((p, record))
        }
        guard Set(peers.map(\.0)).count == peers.count, Set(bindings.map(\.0)).count == bindings.count else { return nil }
        self.init(ring: Ring.Snapshot(members: members, reserved: reserved, rngState: rng), nextEpoch: nextEpoch, latestNow: latestNow,
                  bindings: bindings, leases: leases, peers: peers)
    }

    init(ring: Ring.Snapshot, nextEpoch: UInt64, latestNow: Double, bindings: [(PeerID, Membership.Binding)],
         leases: [(deadline: Double, peer: PeerID, epoch: UInt64)], peers: [(PeerID, PeerRecord)]) {
        self.ring = ring
        self.nextEpoch = nextEpoch
        self.latestNow = latestNow
        self.bindings = bindings
        self.leases = leases
        self.peers = peers
    }
}
