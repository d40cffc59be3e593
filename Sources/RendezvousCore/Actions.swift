// The values the core hands out: actions, ring events, leave reasons and abuse rules, peer records,
// analytics changes and counters.

import ConnectionTypes
import Ring
import WireProtocol

/// What the I/O layer must do after the core handled an event.
public enum Action: Equatable, Sendable {
    case send(ConnectionID, ServerMessage)
    /// Close after queued messages are sent, with a WebSocket close status.
    case close(ConnectionID, status: UInt16, reason: String)
    /// Publish on the Server-Sent Events stream.
    case publish(RingEvent)
    /// Hand a change to the analytics thread's copy of the ring and the records (`handle(_:)` only: the
    /// changes of one event follow its other actions).
    case analytics(AnalyticsChange)
    /// Cluster mode: append the mutation to the cluster's log (it is applied when it comes back, as
    /// `Event.applied`). A single server applies mutations at once and never returns this.
    case propose(Mutation)
    /// Cluster mode: hand the message to the instance that holds its target (`Event.forwarded` there).
    case forward(instance: String, Forwarded)
    /// Cluster mode: store this snapshot of the replica as of the checkpoint being applied.
    case snapshot(ReplicaSnapshot)
}

/// A change to the ring, published on `/api/events`.
public enum RingEvent: Equatable, Sendable {
    case join(PeerID)
    case leave(PeerID, reason: LeaveReason)
    case updated(PeerID, [RingUpdate])
    /// A new session registered the peer's ID with its key; the old one is closed. The ring is unchanged.
    case replaced(PeerID)
}

/// Why a peer left the ring (docs/protocol.md, "Why peers leave").
public enum LeaveReason: String, Sendable, CaseIterable {
    /// It sent `leave`.
    case leave
    /// It closed its connection, or the network failed.
    case closed
    /// Nothing (no message, no pong) came from it for `--idle-timeout` seconds.
    case idleTimeout = "idle-timeout"
    /// Its send queue overflowed (`--send-queue-messages`, `--send-queue-bytes`).
    case slowConsumer = "slow-consumer"
    /// It was closed for flooding (`--abusive-after`).
    case rateLimited = "rate-limited"
    /// The operator evicted it (`DELETE /api/peers/<id>`).
    case evicted
    /// The server closed its connection for another reason.
    case closedByServer = "closed-by-server"
    /// The cluster instance it was connected to died or stopped (docs/cluster.md).
    case instanceGone = "instance-gone"

    public init(_ cause: CloseCause) {
        switch cause {
        case .closed, .shutdown: self = .closed
        case .idleTimeout: self = .idleTimeout
        case .slowConsumer: self = .slowConsumer
        case .closedByServer: self = .closedByServer
        }
    }
}

/// Why a connection was closed as abusive.
public enum AbuseRule: String, Sendable, CaseIterable {
    /// `--abusive-after` messages dropped in a row.
    case droppedInARow = "dropped-in-a-row"
    /// Dropped messages within `--abusive-window` reached `--abusive-fraction` of the rate limit.
    case sustainedRate = "sustained-rate"
}

/// What the server keeps about a registered peer.
public struct PeerRecord: Equatable, Sendable {
    public var connection: ConnectionID
    /// ISO 8601 time of registration (formatted once: /api/network lists every peer).
    public var connectedAt: String
    public var remoteAddress: String
    public var capabilities: [String: JSONValue]?
    public var stats: [String: Double] = [:]
    /// The cluster instance holding the peer's session ("" on a single server); `connection` is that
    /// instance's connection.
    public var instance: String = ""
    /// The link URL the server vouches for (`capabilities.url` when `VouchedURL.check` accepts it):
    /// relayed with every `signal` from this peer as `fromUrl`; nil when none.
    public var vouchedURL: String? = nil
}

/// A change to the ring or to a peer's record, as the analytics thread replays it (from `Membership`).
public enum AnalyticsChange: Equatable, Sendable {
    case joined(PeerID, PeerRecord)
    case left(PeerID)
    /// A new session took over the peer's ID (replacement), or the peer reported stats.
    case record(PeerID, PeerRecord)
}

/// Counters of the membership logic, reported by `/api/stats` and `/metrics`.
public struct MembershipCounters: Sendable {
    public var joins = 0
    public var leaves = 0
    /// Leaves by reason (they add up to `leaves`).
    public var leavesByReason: [LeaveReason: Int] = [:]
    public var reRegistrations = 0
    /// `register` messages whose signature did not verify (answered `bad-signature`).
    public var badSignatures = 0
    public var replacements = 0
    /// Leases that ended unclaimed (the ID became free), and leases claimed back by their holder.
    public var leasesExpired = 0
    public var leasesClaimed = 0
    public var evictions = 0
    public var signalsRelayed = 0
    /// Cluster mode: signals and link frames handed to another instance, and those from other instances
    /// delivered here or dropped (the target left or changed holder meanwhile).
    public var forwardsSent = 0
    public var forwardsDelivered = 0
    public var forwardsDropped = 0
    /// Cluster mode: registrations refused while the cluster's log was unreachable.
    public var refusedUnavailable = 0
    /// Link frames relayed (`--link-relay`), their bytes, and frames dropped by the relay rate limit.
    public var linkRelayFrames = 0
    public var linkRelayBytes = 0
    public var linkRelayDropped = 0
    public var reports = 0
    public var abusiveDisconnects = 0
    /// Abusive disconnects by the rule that closed them.
    public var abusiveDisconnectsByRule: [AbuseRule: Int] = [:]
    /// Control frames (pings) received, as the transport estimates them.
    public var controlFrames = 0
    /// Messages dropped by the rate limit (an error is sent for at most one per second).
    public var rateLimitedMessages = 0
    public var errors: [ErrorCode: Int] = [:]

    public mutating func count(_ code: ErrorCode) { errors[code, default: 0] += 1 }
}
