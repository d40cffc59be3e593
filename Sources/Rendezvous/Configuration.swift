import RendezvousCore
import Ring
import Transport
import WireProtocol

/// Everything the rendezvous server can be told. Each limit has a command-line flag of the same name.
public struct ServerConfiguration: Sendable {
    /// Socket-level settings and limits (bind address, message size, send queues, idle policy, origins).
    public var transport = TransportConfiguration()
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
    /// window (`rateLimitPerSecond` × the window): a steady flood at (1 + fraction) × the limit or more.
    public var abusiveWindowSeconds = 10.0
    public var abusiveFraction = 0.5
    /// Most `GET /api/network` requests waiting for the analytics thread; more are answered 503.
    public var maxPendingAnalytics = 32
    /// Directory served over HTTP; nil serves no files.
    public var publicDirectory: String?
    /// Bearer token for admin routes (DELETE /api/peers/<id>); nil turns admin routes off.
    public var adminToken: String?
    /// Limits applied while decoding client messages.
    public var decoding = DecodingLimits()
    /// Seed of the core's random choices (ID allocation, the going-away spread); nil draws one from the
    /// system generator at start.
    public var seed: UInt64?
    /// Relay link frames (`link`) between peers that cannot reach each other; off by default.
    public var linkRelay = false
    /// Relayed frames per second per connection (sustained) and burst, on top of the general rate limit.
    public var linkRelayPerSecond = 20.0
    public var linkRelayBurst = 100.0
    /// Diagnostics: a file to which every event given to the core and every action it returned are
    /// written as JSON lines (`EventLog`); nil (the default) records nothing.
    public var recordEventsPath: String?

    public init() {}

    /// The values the pure core runs with; `seed` replaces a nil `self.seed`.
    public func membership(seed: UInt64) -> MembershipConfiguration {
        var c = MembershipConfiguration()
        c.fingerPolicy = fingerPolicy
        c.successorListLength = successorListLength
        c.maxPeers = maxPeers
        c.rateLimitPerSecond = rateLimitPerSecond
        c.rateLimitBurst = rateLimitBurst
        c.abusiveAfterDropped = abusiveAfterDropped
        c.abusiveWindowSeconds = abusiveWindowSeconds
        c.abusiveFraction = abusiveFraction
        c.decoding = decoding
        c.seed = self.seed ?? seed
        c.linkRelay = linkRelay
        c.linkRelayPerSecond = linkRelayPerSecond
        c.linkRelayBurst = linkRelayBurst
        c.maxMessageBytes = transport.maxMessageBytes
        c.idleTimeoutSeconds = transport.hangupAfterSeconds
        return c
    }
}
