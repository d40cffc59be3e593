import Ring
import WireProtocol

/// The values the pure core (`Membership`) runs with: a plain value, recorded in the header of an event
/// log (`EventLog`) so that a replay builds the same core. The server derives it from its
/// `ServerConfiguration` (each limit has a command-line flag of the same name there).
public struct MembershipConfiguration: Sendable {
    /// Which finger rows peers are told about.
    public var fingerPolicy = FingerPolicy.auto
    /// Successor list length r.
    public var successorListLength = 3
    /// Most peers registered at once; further registrations get `server-full`.
    public var maxPeers = 10_000
    /// Sustained messages per second per connection (token bucket refill rate).
    public var rateLimitPerSecond = 50.0
    /// Token bucket size: messages a connection may send in a burst.
    public var rateLimitBurst = 200.0
    /// Messages dropped for rate limiting in a row before the connection is closed as abusive.
    public var abusiveAfterDropped = 1000
    /// A connection is also closed as abusive when, within a window of `abusiveWindowSeconds`, the
    /// messages dropped for rate limiting reach `abusiveFraction` of what the rate limit allows in that
    /// window (`rateLimitPerSecond` × the window).
    public var abusiveWindowSeconds = 10.0
    public var abusiveFraction = 0.5
    /// Limits applied while decoding client messages.
    public var decoding = DecodingLimits()
    /// The seed of every random choice the core makes: ID allocation (the ring's SplitMix64) and the
    /// going-away reconnect spread (a second SplitMix64 seeded with the bitwise complement). The shell
    /// draws one from the system generator when the operator gives none.
    public var seed: UInt64 = 0
    /// Relay link frames (`link`) between peers that cannot reach each other.
    public var linkRelay = false
    /// Relayed frames per second per connection (sustained) and burst, on top of the general rate limit.
    public var linkRelayPerSecond = 20.0
    public var linkRelayBurst = 100.0
    /// Largest WebSocket message the transport accepts, in bytes (told to peers in `config`, and quoted
    /// in `too-large` errors).
    public var maxMessageBytes = 64 * 1024
    /// Seconds without traffic before the transport closes a connection (told to peers in `config`).
    public var idleTimeoutSeconds = 30
    /// Seconds an ID stays leased to its holder after the holder's session ends (close, idle timeout,
    /// eviction…): allocation skips it and only a `register` signed by the holder's key gets it back (docs/protocol.md).
    public var idLeaseSeconds = 60.0

    public init() {}
}
