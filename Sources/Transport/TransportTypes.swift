// `ConnectionID`, `CloseCause` and `FrameProblem` live in the dependency-free `ConnectionTypes` target
// (the pure rendezvous core names them too); re-exported so that users of `Transport` see them here.
@_exported import ConnectionTypes

/// Settings of the libwebsockets server. Every limit here is enforced by `Transport`.
public struct TransportConfiguration: Sendable {
    /// Address to bind: an IPv4 or IPv6 literal, "localhost", or "0.0.0.0" / "::" for all interfaces.
    public var host = "127.0.0.1"
    /// TCP port; 0 asks the kernel for an ephemeral port (see `Transport.port`); nil listens on nothing
    /// (a client-only transport that only makes outgoing connections with `connect`).
    public var port: Int? = 0
    /// WebSocket subprotocol name; also the protocol used when a client offers none.
    public var subprotocol = "webrtc-explorer.v2"
    /// Largest WebSocket message accepted, in bytes (fragments are reassembled first).
    public var maxMessageBytes = 64 * 1024
    /// Bytes of the receive buffer libwebsockets allocates for each WebSocket for its whole life (the
    /// protocol's `rx_buffer_size`); 0 means lws's default, 4096. A message larger than this arrives in
    /// several pieces, reassembled up to `maxMessageBytes`. (lws 4.1 would also cut every socket write
    /// at this size; the transport sets the write size apart: `writeBatchBytes`.) The rendezvous
    /// server, which holds many idle peers exchanging small messages, uses 1024 (`ServerConfiguration`).
    public var receiveBufferBytes = 0
    /// Most bytes of queued messages written to an accepted WebSocket in one write (lws's
    /// `tx_packet_size`, which also bounds each socket write lws makes). Without permessage-deflate the
    /// transport frames those messages itself (RFC 6455 §5.2) and hands them to the socket together: one
    /// system call for many small messages instead of one each. A message larger than this goes alone.
    public var writeBatchBytes = 16 * 1024
    /// Seconds between returns of freed heap memory to the system (glibc's `malloc_trim`, on the
    /// service thread; 0: never). Joins come in bursts whose buffers, and the old storage of tables that
    /// grew, stay in the process as free heap: at 19,500 held peers that is about 0.7 KiB per peer.
    public var trimMemorySeconds = 10
    /// Most messages queued for one slow receiver before it is disconnected.
    public var maxSendQueueMessages = 1024
    /// Most bytes queued for one slow receiver before it is disconnected.
    public var maxSendQueueBytes = 4 * 1024 * 1024
    /// Seconds without traffic before the server pings a WebSocket.
    public var pingAfterSeconds = 10
    /// Seconds without a valid pong or message before a WebSocket is closed as dead.
    public var hangupAfterSeconds = 30
    /// Origins allowed to open WebSockets (exact `Origin` header values); nil allows every origin.
    public var allowedOrigins: Set<String>? = nil
    /// Offer permessage-deflate (RFC 7692). Costs about 100 KB of zlib state per connection.
    public var permessageDeflate = false
    /// Seconds between keep-alive comments on Server-Sent Event streams; they also reveal closed streams.
    /// Liveness checks run once a second, so every timeout here has one second of granularity.
    public var eventStreamKeepaliveSeconds = 15
    /// Run lws on a libev (epoll) loop; when false, or when the lws libev plugin is missing, lws uses
    /// poll(), which costs time proportional to the number of open sockets on every wake-up.
    public var useLibev = true
    /// Most simultaneous accepted connections (HTTP, WebSocket and event streams alike); further TCP
    /// connections are closed at once.
    public var maxConnections = 20_000
    /// Largest request head (request line and headers, as libwebsockets stores them) in bytes; a larger
    /// one is answered `431` and the connection closed. At most 65535 (an lws limit).
    public var maxHeaderBytes = 4096
    /// PEM certificate (chain) and private key: when both are set, the port serves https and wss only.
    public var tlsCertificatePath: String? = nil
    public var tlsPrivateKeyPath: String? = nil

    public init() {}
}

/// HTTP request methods the transport recognises.
public enum HTTPMethod: String, Sendable {
    case get = "GET", post = "POST", put = "PUT", patch = "PATCH", delete = "DELETE"
    case options = "OPTIONS", head = "HEAD", other = "OTHER"
}

/// One HTTP request, as far as the routes need it.
public struct HTTPRequest: Sendable {
    public var connection: ConnectionID
    public var method: HTTPMethod
    /// The decoded path, without the query string.
    public var path: String
    /// Decoded query arguments (`?a=1&b=2`); a repeated name keeps its last value.
    public var query: [String: String] = [:]
    public var authorization: String?
    /// The `Host` header, if any.
    public var host: String? = nil
}

/// What a route answers.
public enum HTTPResponse: Sendable {
    /// A complete response with a body.
    case body(status: Int, contentType: String, body: [UInt8], headers: [(String, String)] = [])
    /// A file sent by libwebsockets (the path must exist and be readable).
    case file(path: String, contentType: String)
    /// A Server-Sent Events stream; once `TransportHandler.eventStreamOpened` is called, push events with
    /// `Transport.sendEvent(_:to:)`. Answered with headers only to HEAD.
    case eventStream
    /// The answer comes later, from `Transport.respond(to:with:)` (a `.body`), for work done off the
    /// service thread; the connection waits meanwhile.
    case deferred
}

/// Receives transport events. Every method is called on the transport's service thread.
/// Accepted (server) and dialled (client) WebSockets share the same events.
public protocol TransportHandler: AnyObject {
    func webSocketOpened(_ connection: ConnectionID, remoteAddress: String, origin: String?)
    func webSocketReceived(_ connection: ConnectionID, text: [UInt8])
    func webSocketRejected(_ connection: ConnectionID, problem: FrameProblem)
    /// About `count` control frames (pings) came on an accepted WebSocket since the last report (at most
    /// once a second). lws answers pings itself and does not report them; the transport counts the
    /// bytes of frames that are not messages or pongs, each 6 bytes (the smallest frame a client can
    /// send) as one frame. Under TLS the bytes include the record overhead; under permessage-deflate
    /// compression may hide some.
    func webSocketControlFrames(_ connection: ConnectionID, count: Int)
    func webSocketClosed(_ connection: ConnectionID, cause: CloseCause)
    /// A connection started with `Transport.connect` failed before the WebSocket opened.
    func webSocketConnectFailed(_ connection: ConnectionID, reason: String)
    func originRejected(_ origin: String)
    func httpRequest(_ request: HTTPRequest) -> HTTPResponse
    /// An `.eventStream` answer was accepted: events may be sent to this connection until it closes.
    func eventStreamOpened(_ connection: ConnectionID)
    func eventStreamClosed(_ connection: ConnectionID)
}

extension TransportHandler {
    public func webSocketConnectFailed(_ connection: ConnectionID, reason: String) {}
    public func webSocketControlFrames(_ connection: ConnectionID, count: Int) {}
    public func originRejected(_ origin: String) {}
    public func httpRequest(_ request: HTTPRequest) -> HTTPResponse {
        .body(status: 404, contentType: "text/plain; charset=utf-8", body: Array("not found\n".utf8))
    }
    public func eventStreamOpened(_ connection: ConnectionID) {}
    public func eventStreamClosed(_ connection: ConnectionID) {}
}

/// Counters the transport keeps (read them on the service thread).
public struct TransportCounters: Sendable {
    public var bytesIn = 0
    public var bytesOut = 0
    public var messagesIn = 0
    public var messagesOut = 0
    public var webSocketsOpen = 0
    /// Accepted connections of every kind (HTTP, WebSocket, event stream).
    public var connectionsOpen = 0
    public var httpRequests = 0
    public var slowConsumerDisconnects = 0
    public var originRejections = 0
    public var connectionLimitRejections = 0
    /// Control frames (pings) received on accepted WebSockets, as estimated from their bytes.
    public var controlFramesIn = 0
    /// HTTP requests answered `400` because they could not be parsed (a NUL byte in the path or query, a
    /// malformed request line) and `431` because their headers exceeded `maxHeaderBytes`.
    public var badRequests = 0
    public var headersTooLarge = 0
}

public enum TransportError: Error, CustomStringConvertible {
    case cannotListen(host: String, port: Int?)
    case alreadyStarted

    public var description: String {
        switch self {
        case .cannotListen(let host, let port): return "cannot listen on \(host):\(port.map(String.init) ?? "-") (address in use or not available)"
        case .alreadyStarted: return "transport already started"
        }
    }
}
