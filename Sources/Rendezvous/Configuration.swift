import Cluster
import RendezvousCore
import Ring
import Transport
import WireProtocol

/// Everything the rendezvous server can be told. Each limit has a command-line flag of the same name.
public struct ServerConfiguration: Sendable {
    /// Socket-level settings and limits (bind address, message size, send queues, idle policy, origins).
    /// Receive buffers of 512 bytes per WebSocket instead of lws's 4 KiB (lws 4.1 keeps one per connection
    /// for its whole life and reads the socket in pieces of that size): less memory per idle peer, and a
    /// usual `signal` still fits one read (docs/operations.md, "Sizing"); larger messages are reassembled.
    public var transport: TransportConfiguration = {
        var t = TransportConfiguration()
        t.receiveBufferBytes = 512
        return t
    }()
    /// The pure core's values (ring shape, limits, rate limits, relay); its `seed`, `maxMessageBytes` and
    /// `idleTimeoutSeconds` are set from `seed` and `transport` by `membership(seed:)`.
    public var core = MembershipConfiguration()
    /// Most `GET /api/network` requests waiting for the analytics thread; more are answered 503.
    public var maxPendingAnalytics = 32
    /// Directory served over HTTP; nil serves no files.
    public var publicDirectory: String?
    /// JavaScript libraries from Debian packages served under `/vendor/` (the WebCrypto fallbacks of pages
    /// that are not a secure context); none by default (`browsercloud serve` sets Debian's paths).
    public var vendor = VendorFiles()
    /// Bearer token for admin routes (DELETE /api/peers/<id>); nil turns admin routes off.
    public var adminToken: String?
    /// Seed of the core's random choices (ID allocation, the going-away spread); nil draws one from the
    /// system generator at start.
    public var seed: UInt64?
    /// Diagnostics: a file to which every event given to the core and every action it returned are
    /// written as JSON lines (`EventLog`); nil (the default) records nothing.
    public var recordEventsPath: String?
    /// The state file keeping ID bindings across restarts (`BindingStore`); nil keeps none.
    public var stateFilePath: String?
    /// Seconds between saves of the state file (also saved on shutdown).
    public var stateSaveInterval = 1.0
    /// Start with no bindings when the state file is unreadable or corrupt, instead of refusing to start.
    public var startEmpty = false
    /// Proxies (their addresses) whose `X-Forwarded-For` tells the client's address, with which the core
    /// vouches peers' link URLs (`clientAddress(peer:forwardedFor:trustedProxies:)`; docs/protocol.md).
    public var trustedProxies: Set<IPAddress> = []
    /// Cluster mode (docs/cluster.md): the Redis server and this instance's name; nil runs alone, all in
    /// memory.
    public var cluster: ClusterConfiguration?

    public init() {}

    /// The values the pure core runs with; `seed` replaces a nil `self.seed`.
    public func membership(seed: UInt64) -> MembershipConfiguration {
        var c = core
        c.seed = self.seed ?? seed
        c.maxMessageBytes = transport.maxMessageBytes
        c.idleTimeoutSeconds = transport.hangupAfterSeconds
        return c
    }
}
