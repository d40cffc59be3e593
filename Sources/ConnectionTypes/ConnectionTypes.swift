/// Value types shared by the libwebsockets `Transport` and the pure rendezvous core (`RendezvousCore`),
/// so that the core can name connections and what happened to them without depending on the transport.
/// No dependencies.

/// Identifies one WebSocket connection or one HTTP connection for the life of a `Transport`.
public typealias ConnectionID = UInt64

/// Why a WebSocket connection ended.
public enum CloseCause: String, Sendable, CaseIterable {
    /// The peer closed, or the network failed.
    case closed
    /// Nothing (no message, no pong) came for `hangupAfterSeconds`.
    case idleTimeout = "idle-timeout"
    /// The server closed it (`Transport.close`).
    case closedByServer = "closed-by-server"
    /// Its send queue exceeded `maxSendQueueMessages` or `maxSendQueueBytes`.
    case slowConsumer = "slow-consumer"
    /// The transport is stopping.
    case shutdown
}

/// A message the transport refused before it reached the handler.
public enum FrameProblem: Sendable, Equatable {
    /// A binary message (the protocol speaks JSON text frames only).
    case binary
    /// A message larger than the limit; `bytes` is its size (or as much of it as was read), in bytes.
    case tooLarge(bytes: Int)
}
