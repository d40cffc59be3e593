import Ring
import WireProtocol

/// An overlay message (docs/protocol.md, "Routing between peers").
public struct Envelope: Equatable, Sendable {
    public var srcId: PeerID
    public var dstId: PeerID
    public var data: JSONValue
    public var hops: Int
    public var id: String

    public var json: JSONValue {
        .object(["srcId": .string(srcId.hex), "dstId": .string(dstId.hex), "data": data, "hops": .number(Double(hops)), "id": .string(id)])
    }

    /// Parses the JSON text of an envelope; nil when it is not an object with hex `srcId` and `dstId`.
    /// A missing or unusable `hops` (negative, not finite, ≥ 10⁶) reads as 0.
    public init?(_ bytes: [UInt8]) {
        guard case .object(let o)? = JSONValue(parsing: bytes),
              let src = o["srcId"]?.stringValue.flatMap(PeerID.init(hex:)),
              let dst = o["dstId"]?.stringValue.flatMap(PeerID.init(hex:)) else { return nil }
        srcId = src
        dstId = dst
        data = o["data"] ?? .null
        if case .number(let h)? = o["hops"], h.isFinite, h >= 0, h < 1e6 { hops = Int(h) } else { hops = 0 }
        id = o["id"]?.stringValue ?? ""
    }

    public init(srcId: PeerID, dstId: PeerID, data: JSONValue, hops: Int, id: String) {
        self.srcId = srcId; self.dstId = dstId; self.data = data; self.hops = hops; self.id = id
    }
}

/// Settings of a native peer. Every limit is named here.
public struct PeerConfiguration: Sendable {
    /// The rendezvous server.
    public var serverHost = "127.0.0.1"
    public var serverPort = 9000
    /// Further servers of the same cluster (docs/cluster.md): after a connection to the server fails or
    /// closes, the next reconnection goes to the next of `serverHost:serverPort` and these, in turn.
    public var moreServers: [ServerEndpoint] = []
    /// Where this peer listens for WebSocket links (port 0: an ephemeral port).
    public var listenHost = "127.0.0.1"
    public var listenPort = 0
    /// The URL other peers dial (default: ws://listenHost:boundPort/).
    public var advertisedURL: String?
    /// Sent in `register` (runtimes, workers); `transports` and `url` are added.
    public var capabilities: [String: JSONValue] = [:]
    /// Messages are dropped after this many hops.
    public var maxHops = 64
    /// How messages are routed (docs/protocol.md): `.non`, neighbour of neighbour over the lists the links
    /// sent (greedy for a link whose list has not arrived), or `.greedy`, Chord's closest preceding finger.
    /// Either way the peer sends its own list to its links.
    public var routing: RoutingRule = .non
    /// Largest link message accepted, in bytes.
    public var maxLinkMessageBytes = 16 * 1024 * 1024
    /// Seconds an accepted WebSocket may take to say hello with a valid nonce.
    public var handshakeSeconds = 5.0
    /// Seconds between "dial me" requests to a peer this one needs but has no link to.
    public var dialRetrySeconds = 3.0
    /// Seconds a retired link stays open for messages in flight.
    public var retireGraceSeconds = 2.0
    /// Simultaneous WebSocket connections to the link listener (links and handshakes).
    public var maxLinks = 512
    /// Messages larger than this go out in `C` parts of this size.
    public var partBytes = 1024 * 1024

    public init() {}
}

/// A rendezvous server's host and port.
public struct ServerEndpoint: Equatable, Sendable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}
