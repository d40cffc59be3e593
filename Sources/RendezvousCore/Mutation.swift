import ConnectionTypes
import Ring
import WireProtocol

/// A change to the replicated part of the core (ring, holder bindings, leases, peer records), as a
/// cluster's ordered log carries it (docs/cluster.md). A single server applies each mutation as soon as
/// it decides it; an instance of a cluster appends it to the log (`Action.propose`) and applies it when
/// it comes back in log order (`Event.applied`), as every other instance does: the outcome (which ID a
/// join gets, whether a claim is refused) is decided when the mutation is applied, by the replica, so all
/// replicas agree.
public enum Mutation: Equatable, Sendable {
    /// A registration whose signature the origin instance checked against its connection's challenge.
    case join(Origin, Joining)
    /// The session `origin` holding `peer` ended (`keepLease`: the ID stays leased to its key). Ignored
    /// when the peer is held by another session by then (a newer registration replaced it).
    case leave(PeerID, origin: Origin, reason: LeaveReason, keepLease: Bool)
    /// The operator evicts the peer (ignored when it is not in the ring).
    case evict(PeerID)
    /// The instance is gone (its heartbeat expired, or it stopped): the peers it held leave, their IDs
    /// leased to their keys, so that they get them back through another instance.
    case instanceGone(String)
    /// Every replica rebuilds its ID allocator's index (`Ring.normalize()`); the proposing instance
    /// writes a snapshot of its replica as of this entry (`Action.snapshot`).
    case checkpoint(by: String)
}

/// The session a mutation comes from: an instance and one of its connections.
public struct Origin: Hashable, Sendable {
    public var instance: String
    public var connection: ConnectionID
    public init(instance: String, connection: ConnectionID) {
        self.instance = instance
        self.connection = connection
    }
}

/// A verified registration: the key, the ID it asks for (nil: a new one, unless the key holds one), and
/// what the origin instance knows of the connection.
public struct Joining: Equatable, Sendable {
    public var publicKey: String
    public var requested: PeerID?
    /// ISO 8601 time of the registration at the origin.
    public var connectedAt: String
    public var remoteAddress: String
    public var capabilities: [String: JSONValue]?
    public var vouchedURL: String?
    public init(publicKey: String, requested: PeerID?, connectedAt: String, remoteAddress: String,
                capabilities: [String: JSONValue]?, vouchedURL: String?) {
        self.publicKey = publicKey
        self.requested = requested
        self.connectedAt = connectedAt
        self.remoteAddress = remoteAddress
        self.capabilities = capabilities
        self.vouchedURL = vouchedURL
    }
}

/// A message for a peer connected to another instance of the cluster (docs/cluster.md, "Signals across
/// instances"): delivered there only while `to` is still held at epoch `toEpoch`, so it never reaches a
/// later holder of the same ID.
public struct Forwarded: Equatable, Sendable {
    public enum Payload: Equatable, Sendable {
        case signal(intentId: String, signal: RawJSON, fromUrl: String?)
        case link(frame: String)
    }
    public var from: PeerID
    public var to: PeerID
    public var toEpoch: UInt64
    public var payload: Payload
    public init(from: PeerID, to: PeerID, toEpoch: UInt64, payload: Payload) {
        self.from = from
        self.to = to
        self.toEpoch = toEpoch
        self.payload = payload
    }
}

extension Joining {
    /// The record of the session at `origin` that registered this way.
    func record(at origin: Origin) -> PeerRecord {
        var record = PeerRecord(connection: origin.connection, connectedAt: connectedAt, remoteAddress: remoteAddress, capabilities: capabilities)
        record.vouchedURL = vouchedURL
        record.instance = origin.instance
        return record
    }
}

// MARK: JSON (the log's entries, the instance channels, event recordings)

extension PeerRecord {
    /// The fields a log entry (`join`) and a replica snapshot carry of a session's record: `instance`,
    /// `connection`, `connectedAt`, `remoteAddress`, and `capabilities` and `vouchedUrl` when present (not
    /// `stats`, which stay on the session's instance).
    var replicatedJSON: [String: JSONValue] {
        var o: [String: JSONValue] = ["instance": .string(instance), "connection": .number(Double(connection)),
                                      "connectedAt": .string(connectedAt), "remoteAddress": .string(remoteAddress)]
        if let c = capabilities { o["capabilities"] = .object(c) }
        if let u = vouchedURL { o["vouchedUrl"] = .string(u) }
        return o
    }

    /// The record of `replicatedJSON`'s fields in `v`; nil when one is missing or malformed.
    init?(replicated v: JSONValue) {
        guard let instance = v["instance"]?.stringValue, case .number(let c)? = v["connection"], let connection = ConnectionID(exactly: c),
              let at = v["connectedAt"]?.stringValue, let remote = v["remoteAddress"]?.stringValue else { return nil }
        var capabilities: [String: JSONValue]?
        if let cap = v["capabilities"] {
            guard case .object(let object) = cap else { return nil }
            capabilities = object
        }
        self.init(connection: connection, connectedAt: at, remoteAddress: remote, capabilities: capabilities)
        self.instance = instance
        vouchedURL = v["vouchedUrl"]?.stringValue
    }
}

extension Mutation {
    /// The mutation as one JSON object (`{"type":"join",...}`); `init(json:)` reads it back.
    public var json: JSONValue {
        switch self {
        case .join(let o, let j):
            var v = j.record(at: o).replicatedJSON
            v["type"] = "join"
            v["publicKey"] = .string(j.publicKey)
            if let r = j.requested { v["peerId"] = .string(r.hex) }
            return .object(v)
        case .leave(let p, let o, let reason, let keepLease):
            return .object(["type": "leave", "peerId": .string(p.hex), "instance": .string(o.instance),
                            "connection": .number(Double(o.connection)), "reason": .string(reason.rawValue), "keepLease": .bool(keepLease)])
        case .evict(let p):
            return .object(["type": "evict", "peerId": .string(p.hex)])
        case .instanceGone(let name):
            return .object(["type": "instance-gone", "instance": .string(name)])
        case .checkpoint(let by):
            return .object(["type": "checkpoint", "instance": .string(by)])
        }
    }

    /// Reads `json`; nil for anything else (a log entry no replica can apply is skipped by all alike).
    public init?(json v: JSONValue) {
        func origin() -> Origin? {
            guard let i = v["instance"]?.stringValue, case .number(let c)? = v["connection"],
                  let connection = ConnectionID(exactly: c) else { return nil }
            return Origin(instance: i, connection: connection)
        }
        let peer = v["peerId"]?.stringValue.flatMap(PeerID.init(hex:))
        switch v["type"]?.stringValue {
        case "join":
            guard let r = PeerRecord(replicated: v), let key = v["publicKey"]?.stringValue, (v["peerId"] == nil) == (peer == nil) else { return nil }
            self = .join(Origin(instance: r.instance, connection: r.connection),
                         Joining(publicKey: key, requested: peer, connectedAt: r.connectedAt, remoteAddress: r.remoteAddress,
                                 capabilities: r.capabilities, vouchedURL: r.vouchedURL))
        case "leave":
            guard let p = peer, let o = origin(), let reason = v["reason"]?.stringValue.flatMap(LeaveReason.init(rawValue:)),
                  case .bool(let keep)? = v["keepLease"] else { return nil }
            self = .leave(p, origin: o, reason: reason, keepLease: keep)
        case "evict":
            guard let p = peer else { return nil }
            self = .evict(p)
        case "instance-gone":
            guard let name = v["instance"]?.stringValue else { return nil }
            self = .instanceGone(name)
        case "checkpoint":
            guard let name = v["instance"]?.stringValue else { return nil }
            self = .checkpoint(by: name)
        default:
            return nil
        }
    }
}

extension Forwarded {
    public var json: JSONValue {
        var v: [String: JSONValue] = ["from": .string(from.hex), "to": .string(to.hex), "toEpoch": .string(String(toEpoch))]
        switch payload {
        case .signal(let intentId, let signal, let fromUrl):
            v["type"] = "signal"
            v["intentId"] = .string(intentId)
            v["signal"] = .string(String(decoding: signal.bytes, as: UTF8.self))   // the sender's bytes, unchanged
            if let u = fromUrl { v["fromUrl"] = .string(u) }
        case .link(let frame):
            v["type"] = "link"
            v["frame"] = .string(frame)
        }
        return .object(v)
    }

    public init?(json v: JSONValue) {
        guard let from = v["from"]?.stringValue.flatMap(PeerID.init(hex:)), let to = v["to"]?.stringValue.flatMap(PeerID.init(hex:)),
              let epoch = v["toEpoch"]?.stringValue.flatMap({ UInt64($0) }) else { return nil }
        switch v["type"]?.stringValue {
        case "signal":
            guard let intent = v["intentId"]?.stringValue, let text = v["signal"]?.stringValue,
                  let signal = RawJSON(parsing: Array(text.utf8)) else { return nil }
            self.init(from: from, to: to, toEpoch: epoch, payload: .signal(intentId: intent, signal: signal, fromUrl: v["fromUrl"]?.stringValue))
        case "link":
            guard let frame = v["frame"]?.stringValue else { return nil }
            self.init(from: from, to: to, toEpoch: epoch, payload: .link(frame: frame))
        default:
            return nil
        }
    }
}
