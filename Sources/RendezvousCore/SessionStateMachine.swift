import Ring

/// The lifecycle of one signalling connection (docs/protocol.md, "Connection state machine").
///
///     connected --register--> joining --applied--> registered --leave--> connected
///         |   <----refused------'                   |  \--replaced (same ID registered elsewhere)--> replaced
///         |                                         |  \--evicted (admin, or its instance lost)-----> evicted
///         +----- close -----------------------------+----------------------------------------------> closed
///
/// Only `registered` holds a ring position. `joining` lasts while a verified registration waits to be
/// applied (at once on a single server; until it comes back through the log in a cluster). A `replaced`
/// or `evicted` session is being closed and ignores further messages.
struct SessionStateMachine: Sendable {
    enum State: Equatable, Sendable {
        case connected
        case joining
        case registered(PeerID)
        case replaced
        case evicted
        case closed
    }

    private(set) var state = State.connected

    var peer: PeerID? {
        if case .registered(let p) = state { return p }
        return nil
    }

    /// Whether incoming messages are still processed.
    var acceptsMessages: Bool {
        switch state {
        case .connected, .joining, .registered: return true
        case .replaced, .evicted, .closed: return false
        }
    }

    var isJoining: Bool { state == .joining }

    mutating func joining() {
        precondition(state == .connected, "register from \(state)")
        state = .joining
    }

    /// The registration was applied and refused (id-expired, server-full…): the session may try again.
    mutating func refused() {
        if state == .joining { state = .connected }
    }

    mutating func registered(as peer: PeerID) {
        precondition(state == .joining, "registered from \(state)")
        state = .registered(peer)
    }

    /// Leaves the ring but keeps the connection; returns the ID given up.
    mutating func left() -> PeerID? {
        guard let p = peer else { return nil }
        state = .connected
        return p
    }

    mutating func replaced() {
        precondition(peer != nil, "replace from \(state)")
        state = .replaced
    }

    mutating func evicted() {
        precondition(peer != nil, "evict from \(state)")
        state = .evicted
    }

    /// The connection is gone; returns the ID it still held, which must leave the ring.
    mutating func closed() -> PeerID? {
        let p = peer
        state = .closed
        return p
    }
}
