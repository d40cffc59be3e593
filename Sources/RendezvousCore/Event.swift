import ConnectionTypes
import Ring

/// Everything that enters the pure core (`Membership.handle(_:)`). The shell stamps each event with the
/// time it needs: `now` is monotonic seconds (any origin, never going back), `wallClock` is seconds since
/// 1970-01-01 UTC. With these, an event carries all its inputs, so a recorded log replays exactly.
public enum Event: Equatable, Sendable {
    /// A WebSocket opened from `remoteAddress`: the client's IP address as far as the shell can tell
    /// (`clientAddress(peer:forwardedFor:trustedProxies:)`), "" when unknown; link URLs are vouched with it.
    /// `nonce` (64 lowercase hex: 32 bytes the shell drew from the system's cryptographic generator,
    /// never from the seeded one) is the connection's challenge.
    case opened(ConnectionID, remoteAddress: String, nonce: String, now: Double)
    /// A text frame (its bytes, as received; not necessarily valid UTF-8 or JSON).
    case received(ConnectionID, text: [UInt8], now: Double, wallClock: Double)
    /// A frame the transport refused (binary or too large).
    case rejected(ConnectionID, problem: FrameProblem, now: Double)
    /// About `count` control frames (pings) came since the last report.
    case controlFrames(ConnectionID, count: Int, now: Double)
    /// The connection is gone (a peer it held keeps its ID leased from `now`).
    case closed(ConnectionID, cause: CloseCause, now: Double)
    /// The operator evicts a peer (nothing happens when it is unknown).
    case evict(PeerID, now: Double)
    /// At start: the bindings kept by the previous run (its state file) become leases that end
    /// `remaining` seconds after `now`; epochs are issued from `nextEpoch` on (or later).
    case restored([RestoredBinding], nextEpoch: UInt64, now: Double)
    /// The server shuts down: every connection is told to reconnect after 250 ms plus a random delay
    /// in 0...`spreadMs` milliseconds, then closed.
    case goingAway(spreadMs: Int)
    /// Cluster mode: the next entry of the cluster's log, in log order; `at` is its time (seconds since
    /// 1970 by the log's clock: leases are timed with it on every replica alike).
    case applied(Mutation, at: Double)
    /// Cluster mode: a signal or link frame another instance forwarded for a peer of this one.
    case forwarded(Forwarded)
    /// Cluster mode: whether the cluster's log is reachable (registrations are refused while not).
    case logAvailability(Bool)
    /// Cluster mode, at start: the replica becomes this snapshot (`Membership.replicaSnapshot`); the
    /// log entries that follow it are applied next.
    case loadedSnapshot(ReplicaSnapshot)
}

/// An ID's holder binding as a state file keeps it: the holder epoch, the holder's public key (64
/// lowercase hex) and the seconds its lease has left.
public struct RestoredBinding: Equatable, Sendable {
    public var peer: PeerID
    public var epoch: UInt64
    public var publicKey: String
    public var remaining: Double
    public init(peer: PeerID, epoch: UInt64, publicKey: String, remaining: Double) {
        self.peer = peer
        self.epoch = epoch
        self.publicKey = publicKey
        self.remaining = remaining
    }
}

extension Event {
    /// The monotonic time the event carries (nil for `goingAway`).
    var now: Double? {
        switch self {
        case .opened(_, _, _, let now), .received(_, _, let now, _), .rejected(_, _, let now),
             .controlFrames(_, _, let now), .closed(_, _, let now), .evict(_, let now), .restored(_, _, let now):
            return now
        case .goingAway, .applied, .forwarded, .logAvailability, .loadedSnapshot:
            return nil
        }
    }
}
