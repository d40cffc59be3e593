import Hex
import Dispatch
import Foundation
import Logging
import Ring
import Transport
import WireProtocol

/// An overlay message (docs/protocol.md, "Routing between peers").
public struct Envelope: Sendable {
    public var srcId: PeerID
    public var dstId: PeerID
    public var data: JSONValue
    public var hops: Int
    public var id: String

    public var json: JSONValue {
        .object(["srcId": .string(srcId.hex), "dstId": .string(dstId.hex), "data": data, "hops": .number(Double(hops)), "id": .string(id)])
    }

    init?(_ bytes: [UInt8]) {
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
    /// Where this peer listens for WebSocket links (port 0: an ephemeral port).
    public var listenHost = "127.0.0.1"
    public var listenPort = 0
    /// The URL other peers dial (default: ws://listenHost:boundPort/).
    public var advertisedURL: String?
    /// Sent in `register` (runtimes, workers); `transports` and `url` are added.
    public var capabilities: [String: JSONValue] = [:]
    /// Messages are dropped after this many hops.
    public var maxHops = 64
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

/// A native peer of the ring (docs/protocol.md): the session with the rendezvous server (register,
/// re-register with the token, ring updates, signals), WebSocket links to the peers of its finger
/// table, and the Chord router (`Ring.route`).
///
/// Links: a peer that needs a link sends the other a relayed `signal` {"type":"dial-me","url","nonce"}
/// and the other dials that URL and says hello with the nonce; so browsers (which cannot listen)
/// always dial, and a WebRTC offer from a browser is answered with "dial me". When both sides dial at
/// once, the link dialled by the smaller ID is kept.
///
/// `@unchecked Sendable`: every stored property is read and written only on the transport's service
/// thread. Entry points are `TransportHandler` callbacks (service thread) and the public methods,
/// which must be called through `transport.post`/`sync` (they `dispatchPrecondition` in debug builds).
public final class PeerNode: TransportHandler, @unchecked Sendable {
    public enum SessionState: Equatable, Sendable { case idle, connecting, registering, registered, stopped }

    struct Link {
        /// The WebSocket, or nil for a link relayed through the rendezvous server (last resort).
        var connection: ConnectionID?
        var dialer: PeerID
        var open = false
        var retiringSince: UInt64?
        var keptByRemote = false
        var reassembler: Reassembler
    }

    public let configuration: PeerConfiguration
    public let transport: Transport
    let logger: Logger

    public private(set) var state: SessionState = .idle
    public private(set) var peerId: PeerID?
    public private(set) var token: String?
    public private(set) var ring = PeerState(predecessor: nil, successors: [], fingers: [:])
    private var serverConnection: ConnectionID?
    private var reconnectAttempt = 0
    private var reconnectAt: UInt64?
    /// Set by `going-away`: the delay the server asked for before the next connection attempt.
    private var retryAfter: UInt64?

    private var links: [PeerID: Link] = [:]
    /// Connections that are not (yet) a link: dialled ones waiting to open or for a welcome, accepted
    /// ones waiting for a hello.
    private var dialling: [ConnectionID: (peer: PeerID, nonce: String)] = [:]
    private var accepted: [ConnectionID: UInt64] = [:]
    private var connectionPeer: [ConnectionID: PeerID] = [:]
    private var nonces: [String: (peer: PeerID, expires: UInt64)] = [:]
    private var lastDialMe: [PeerID: UInt64] = [:]
    /// "Dial me" requests sent since the last link to each peer, and when the first went out.
    private var dialAttempts: [PeerID: (count: Int, since: UInt64)] = [:]
    /// Whether the server relays link frames (from its `registered` config), and its message limit.
    public private(set) var relayAllowed = false
    private var serverMaxMessageBytes = 65536
    private var counter = 0

    /// Called on the service thread.
    public var onRegistered: ((PeerID, Bool) -> Void)?
    public var onMessage: ((Envelope) -> Void)?
    public var onLinkUp: ((PeerID) -> Void)?
    public var onLinkDown: ((PeerID) -> Void)?
    public var onRingChange: (() -> Void)?
    public var onTick: ((UInt64) -> Void)?
    /// The server announced a shutdown (`going-away`); the peer reconnects after the given milliseconds.
    public var onGoingAway: ((Int) -> Void)?
    /// Errors the peer cannot act on (e.g. `server-full`, `bad-token`), and hop-limit drops.
    public var onError: ((String, String) -> Void)?

    private var timer: DispatchSourceTimer?
    /// Signalled when the server connection has closed after `stop`.
    private var serverClosed: DispatchSemaphore?

    public init(configuration: PeerConfiguration, logger: Logger = Logger(label: "browsercloud.peer")) {
        self.configuration = configuration
        self.logger = logger
        var t = TransportConfiguration()
        t.host = configuration.listenHost
        t.port = configuration.listenPort
        t.subprotocol = "bc-link.v1"
        t.maxMessageBytes = configuration.maxLinkMessageBytes
        t.maxSendQueueBytes = max(4 * 1024 * 1024, 4 * configuration.maxLinkMessageBytes)
        t.maxConnections = configuration.maxLinks
        transport = Transport(configuration: t, logger: logger)
    }

    /// The URL other peers dial.
    public var url: String { configuration.advertisedURL ?? "ws://\(configuration.listenHost):\(transport.port)/" }

    /// Starts the listener and the session (from any thread).
    public func start() throws {
        transport.handler = self
        try transport.start()
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "browsercloud.peer.timer"))
        timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            self.transport.post { self.tick() }
        }
        timer.resume()
        self.timer = timer
        transport.post { self.connectToServer() }
    }

    /// Leaves the ring and stops (from any thread; blocks until done, at most `seconds` plus the
    /// transport's teardown). A registered peer sends `leave` and closes its server connection with 1000
    /// after its send queue is flushed; links are closed with 1001. Whatever the session's state
    /// (connecting, registering, waiting to reconnect to a dead server), the wait is bounded.
    public func stop(within seconds: Double = 2) {
        timer?.cancel()
        let flushed = DispatchSemaphore(value: 0)
        transport.sync {
            let wasOpen = self.state == .registering || self.state == .registered
            if let c = self.serverConnection, self.state == .registered { _ = self.transport.send(ClientMessage.leave.encoded(), to: c) }
            self.state = .stopped
            for link in self.links.values { if let c = link.connection { self.transport.close(c, status: 1001, reason: "leaving") } }
            if let c = self.serverConnection, wasOpen {
                self.serverClosed = flushed
                self.transport.close(c, status: 1000, reason: "leaving")
            } else {
                flushed.signal()
            }
        }
        if flushed.wait(timeout: .now() + max(0, seconds)) == .timedOut {
            logger.warning("the server connection did not close within \(seconds) s")
        }
        transport.stop()
    }

    // MARK: public API (service thread)

    /// Routes `data` to the peer responsible for `dst`. Returns false when there is no route.
    @discardableResult
    public func send(to dst: PeerID, data: JSONValue) -> Bool {
        guard let me = peerId else { return false }
        counter += 1
        return forward(Envelope(srcId: me, dstId: dst, data: data, hops: 0, id: "\(me.hex)-n\(counter)"))
    }

    /// Peers with an open link that are in the finger table.
    public var linkedPeers: [PeerID] {
        let needed = neededPeers()
        return links.filter { $0.value.open && $0.value.retiringSince == nil && needed.contains($0.key) }.map(\.key)
    }

    public func neededPeers() -> Set<PeerID> {
        var s = Set(ring.successors)
        for case let p? in ring.fingers.values { s.insert(p) }
        if let me = peerId { s.remove(me) }
        return s
    }

    /// Whether every needed peer has an open link (the ring is usable from here).
    public var isReady: Bool { state == .registered && neededPeers().allSatisfy { links[$0]?.open == true } }

    // MARK: server session

    private func connectToServer() {
        guard state != .stopped else { return }
        state = .connecting
        serverConnection = transport.connect(host: configuration.serverHost, port: configuration.serverPort, subprotocol: "webrtc-explorer.v1")
        if serverConnection == nil { scheduleReconnect() }
    }

    private func scheduleReconnect() {
        guard state != .stopped else { return }
        state = .idle
        serverConnection = nil
        if let retryAfter {
            // The server went away on purpose and said when to come back.
            self.retryAfter = nil
            reconnectAt = now() + retryAfter
            return
        }
        // Exponential backoff with jitter: 0.25 s … 10 s.
        let base = min(10.0, 0.25 * Double(1 << min(reconnectAttempt, 6)))
        reconnectAttempt += 1
        reconnectAt = now() + UInt64(base * Double.random(in: 0.75...1.25) * 1e9)
    }

    private func register() {
        guard let c = serverConnection else { return }
        state = .registering
        var caps = configuration.capabilities
        caps["transports"] = .array(["websocket"])
        caps["url"] = .string(url)
        _ = transport.send(ClientMessage.register(peerId: peerId, token: token, capabilities: caps).encoded(), to: c)
    }

    private func onServerMessage(_ bytes: [UInt8]) {
        let message: ServerMessage
        do { message = try ServerMessage.decode(bytes) } catch {
            logger.warning("unreadable server message: \(error.message)")
            return
        }
        switch message {
        case .registered(let id, let token, let config):
            let again = peerId == id
            if !again { ring = PeerState(predecessor: nil, successors: [], fingers: [:]) }
            peerId = id
            self.token = token
            ring.apply([.config(fingerRows: config.fingerRows)])
            relayAllowed = config.linkRelay
            serverMaxMessageBytes = config.maxMessageBytes
            state = .registered
            reconnectAttempt = 0
            logger.info("registered as \(id.hex)\(again ? " (again)" : "")")
            onRegistered?(id, again)
        case .signal(let from, let intentId, let signal):
            onSignal(from: from, intentId: intentId, signal: signal.value ?? .null)
        case .link(let from, let frame):
            guard relayAllowed, state == .registered else { return }
            if links[from] == nil {
                // The other side reaches us only through the relay: answer the same way.
                links[from] = Link(connection: nil, dialer: from, open: true, reassembler: Reassembler(maxBytes: configuration.maxLinkMessageBytes))
                logger.info("link up (relayed by the server): \(from.hex)")
                onLinkUp?(from)
            }
            onLinkFrame(from, Array(frame.utf8))
        case .goingAway(let ms):
            logger.info("the server is going away; reconnecting in \(ms) ms with the same ID")
            retryAfter = UInt64(ms) * 1_000_000
            onGoingAway?(ms)
        case .error(let code, let text):
            logger.warning("server error \(code.rawValue): \(text)")
            onError?(code.rawValue, text)
            if code == .badToken { peerId = nil; token = nil; register() }
        default:
            if let update = message.ringUpdate {
                ring.apply([update])
                reconcileLinks()
                onRingChange?()
            }
        }
    }

    private func signal(_ to: PeerID, intentId: String, _ body: [String: JSONValue]) {
        guard let c = serverConnection, state == .registered else { return }
        _ = transport.send(ClientMessage.signal(to: to, intentId: intentId, signal: RawJSON(body)).encoded(), to: c)
    }

    private func onSignal(from: PeerID, intentId: String, signal: JSONValue) {
        switch signal["type"]?.stringValue {
        case "offer":
            // A browser dials with WebRTC, which this peer does not speak: ask it to dial our URL.
            sendDialMe(to: from, intentId: intentId, force: true)
        case "dial-me":
            guard let url = signal["url"]?.stringValue, let nonce = signal["nonce"]?.stringValue, nonce.utf8.count <= 64 else { return }
            dial(from, url: url, nonce: nonce)
        default:
            break   // answers and ICE candidates of WebRTC: not for us
        }
    }

    private func sendDialMe(to peer: PeerID, intentId: String? = nil, force: Bool = false) {
        let t = now()
        if !force, let last = lastDialMe[peer], t - last < UInt64(configuration.dialRetrySeconds * 1e9) { return }
        lastDialMe[peer] = t
        let attempts = dialAttempts[peer] ?? (0, t)
        dialAttempts[peer] = (attempts.count + 1, attempts.since)
        let nonce = randomHex(16)
        nonces[nonce] = (peer, t + UInt64(max(configuration.handshakeSeconds, configuration.dialRetrySeconds) * 3e9))
        signal(peer, intentId: intentId ?? randomHex(8), ["type": "dial-me", "url": .string(url), "nonce": .string(nonce)])
    }

    // MARK: links

    private func reconcileLinks() {
        guard peerId != nil else { return }
        let needed = neededPeers()
        let t = now()
        for p in needed where links[p]?.open != true && !dialling.values.contains(where: { $0.peer == p }) {
            // Last resort: after a few "dial me" rounds without a link, relay through the server.
            if relayAllowed, let a = dialAttempts[p], a.count >= 3, t - a.since > UInt64(2 * configuration.dialRetrySeconds * 1e9) {
                links[p] = Link(connection: nil, dialer: peerId!, open: true, reassembler: Reassembler(maxBytes: configuration.maxLinkMessageBytes))
                logger.info("link up (relayed by the server, no direct connection): \(p.hex)")
                onLinkUp?(p)
                continue
            }
            sendDialMe(to: p)
        }
        for (p, link) in links where link.open && !needed.contains(p) && link.retiringSince == nil && !link.keptByRemote {
            links[p]?.retiringSince = now()
            sendFrame(p, LinkFrame.retire.encoded())
        }
        // Needed again while being retired (the ring changed back): keep it, and tell the other side,
        // which may have marked it as retiring too.
        for (p, link) in links where link.open && needed.contains(p) && link.retiringSince != nil {
            links[p]?.retiringSince = nil
            sendFrame(p, LinkFrame.keep.encoded())
        }
    }

    private func dial(_ peer: PeerID, url: String, nonce: String) {
        guard links[peer]?.open != true || links[peer]?.connection == nil, !dialling.values.contains(where: { $0.peer == peer }) else { return }
        // Only IP literals: a host name would be resolved synchronously on the service thread (lws 4.1
        // without async DNS), so another peer could stall this one with a slow name.
        guard let (host, port, path) = parseWebSocketURL(url), isIPLiteral(host) else {
            logger.warning("\(peer.hex) asked to be dialled at an unusable URL \(url)")
            return
        }
        guard let c = transport.connect(host: host, port: port, path: path, subprotocol: "bc-link.v1") else { return }
        dialling[c] = (peer, nonce)
    }

    private func linkOpened(_ peer: PeerID, connection: ConnectionID, dialer: PeerID) {
        if let existing = links[peer], let old = existing.connection, old != connection {
            // Both sides dialled: keep the link dialled by the smaller ID (both ends choose the same).
            let keeper = min(peer, peerId ?? peer)
            if existing.dialer == keeper && existing.open {
                transport.close(connection, status: 1000, reason: "duplicate link")
                return
            }
            connectionPeer[old] = nil
            transport.close(old, status: 1000, reason: "duplicate link")
        }
        let wasRelayed = links[peer]?.connection == nil && links[peer] != nil
        links[peer] = Link(connection: connection, dialer: dialer, open: true, reassembler: Reassembler(maxBytes: configuration.maxLinkMessageBytes))
        connectionPeer[connection] = peer
        dialAttempts[peer] = nil
        logger.info("link up: \(peer.hex)\(wasRelayed ? " (direct, replacing the relayed one)" : "")")
        if !wasRelayed { onLinkUp?(peer) }
        if !neededPeers().contains(peer) { reconcileLinks() }
    }

    private func onLinkFrame(_ peer: PeerID, _ bytes: [UInt8]) {
        guard let frame = LinkFrame.parse(bytes) else { return }
        switch frame {
        case .message(let text):
            receive(text)
        case .chunk(let id, let index, let count, let part):
            switch links[peer]?.reassembler.add(id: id, index: index, count: count, part: part) {
            case .complete(let text)?: receive(text)
            case .overflow?: dropLink(peer, reason: "too many partial messages")
            default: break
            }
        case .retire:
            if neededPeers().contains(peer) { sendFrame(peer, LinkFrame.keep.encoded()) }
            else if links[peer]?.retiringSince == nil { links[peer]?.retiringSince = now() }
        case .keep:
            links[peer]?.retiringSince = nil
            links[peer]?.keptByRemote = true
        case .hello, .welcome:
            break
        }
    }

    private func receive(_ text: [UInt8]) {
        guard var envelope = Envelope(text) else { return }
        envelope.hops += 1
        if envelope.hops > configuration.maxHops {
            onError?("hop-limit", "dropped a message for \(envelope.dstId.hex) after \(envelope.hops) hops")
            return
        }
        if !forward(envelope) { onError?("no-route", "no route to \(envelope.dstId.hex)") }
    }

    private func forward(_ envelope: Envelope) -> Bool {
        guard let me = peerId else { return false }
        let candidates = Set(linkedPeers)
        switch route(from: me, to: envelope.dstId, predecessor: ring.predecessor, successors: ring.successors, candidates: candidates) {
        case .deliver:
            onMessage?(envelope)
            return true
        case .next(let next):
            guard let link = links[next] else { return false }
            let text = envelope.json.encoded()
            // Relayed frames must fit the server's message limit inside a `link` message (escaping
            // may double them); direct ones go whole up to `partBytes`.
            let limit = link.connection == nil ? max(1024, serverMaxMessageBytes / 2 - 256) : configuration.partBytes
            guard text.count + 1 > limit else { return sendFrame(next, LinkFrame.message(text).encoded()) }
            // Large messages go in parts, as the browsers do. Parts end on UTF-8 character boundaries.
            let id = randomHex(8)
            var parts: [ArraySlice<UInt8>] = []
            var start = 0
            while start < text.count {
                var end = min(text.count, start + limit - 64)
                while end < text.count && end > start + 1 && (text[end] & 0xC0) == 0x80 { end -= 1 }
                parts.append(text[start..<end])
                start = end
            }
            for (i, part) in parts.enumerated() {
                guard sendFrame(next, LinkFrame.chunk(id: id, index: i, count: parts.count, part: Array(part)).encoded()) else { return false }
            }
            return true
        case .noRoute:
            return false
        }
    }

    // MARK: housekeeping (every 100 ms)

    private func tick() {
        let t = now()
        if state == .idle, let at = reconnectAt, t >= at { reconnectAt = nil; connectToServer() }
        let handshake = UInt64(configuration.handshakeSeconds * 1e9)
        for (c, since) in accepted where t - since > handshake {
            accepted[c] = nil
            transport.close(c, status: 1008, reason: "no hello")
        }
        nonces = nonces.filter { $0.value.expires > t }
        let grace = UInt64(configuration.retireGraceSeconds * 1e9)
        for (p, link) in links {
            if let since = link.retiringSince, t - since > grace, !neededPeers().contains(p) {
                dropLink(p, reason: "retired")
            }
        }
        if state == .registered { reconcileLinks() }
        onTick?(t)
    }

    // MARK: TransportHandler

    public func webSocketOpened(_ connection: ConnectionID, remoteAddress: String, origin: String?) {
        if connection == serverConnection {
            register()
        } else if let d = dialling[connection], let me = peerId {
            _ = transport.send(LinkFrame.hello(peerId: me, nonce: d.nonce).encoded(), to: connection)
        } else if dialling[connection] == nil {
            accepted[connection] = now()
        }
    }

    public func webSocketReceived(_ connection: ConnectionID, text: [UInt8]) {
        if connection == serverConnection { onServerMessage(text); return }
        if let peer = connectionPeer[connection] { onLinkFrame(peer, text); return }
        if let d = dialling[connection] {
            guard case .welcome(let who)? = LinkFrame.parse(text), who == d.peer else {
                transport.close(connection, status: 1008, reason: "expected a welcome")
                return
            }
            dialling[connection] = nil
            if let me = peerId { linkOpened(who, connection: connection, dialer: me) }
            return
        }
        if accepted[connection] != nil {
            guard case .hello(let who, let nonce)? = LinkFrame.parse(text), let issued = nonces[nonce], issued.peer == who, let me = peerId else {
                accepted[connection] = nil
                transport.close(connection, status: 1008, reason: "bad hello")
                return
            }
            nonces[nonce] = nil
            accepted[connection] = nil
            _ = transport.send(LinkFrame.welcome(peerId: me).encoded(), to: connection)
            linkOpened(who, connection: connection, dialer: who)
        }
    }

    public func webSocketRejected(_ connection: ConnectionID, problem: FrameProblem) {
        if connectionPeer[connection] != nil { transport.close(connection, status: 1009, reason: "frame refused") }
    }

    public func webSocketClosed(_ connection: ConnectionID, cause: CloseCause) {
        if connection == serverConnection {
            if state == .stopped {
                serverClosed?.signal()
                return
            }
            logger.warning("lost the rendezvous server (\(cause.rawValue))")
            for (p, link) in links where link.connection == nil { dropLink(p, reason: "the relay went with the server") }
            scheduleReconnect()
            return
        }
        dialling[connection] = nil
        accepted[connection] = nil
        if let peer = connectionPeer.removeValue(forKey: connection), links[peer]?.connection == connection {
            links[peer] = nil
            logger.info("link down: \(peer.hex)")
            onLinkDown?(peer)
            lastDialMe[peer] = nil
            if state == .registered { reconcileLinks() }
        }
    }

    public func webSocketConnectFailed(_ connection: ConnectionID, reason: String) {
        if connection == serverConnection {
            if state == .stopped {
                serverClosed?.signal()
                return
            }
            logger.warning("cannot reach the rendezvous server: \(reason)")
            scheduleReconnect()
            return
        }
        if let d = dialling.removeValue(forKey: connection) { logger.info("cannot dial \(d.peer.hex): \(reason)") }
    }
}

extension PeerNode {
    /// Sends one link frame on the peer's WebSocket, or through the server's relay.
    @discardableResult
    func sendFrame(_ peer: PeerID, _ frame: [UInt8]) -> Bool {
        guard let link = links[peer] else { return false }
        if let c = link.connection { return transport.send(frame, to: c) }
        guard let server = serverConnection, state == .registered else { return false }
        return transport.send(ClientMessage.link(to: peer, frame: String(decoding: frame, as: UTF8.self)).encoded(), to: server)
    }

    /// Ends a link (closing its WebSocket, if any).
    func dropLink(_ peer: PeerID, reason: String) {
        guard let link = links.removeValue(forKey: peer) else { return }
        if let c = link.connection {
            connectionPeer[c] = nil
            transport.close(c, status: reason == "retired" ? 1000 : 1009, reason: reason)
        }
        onLinkDown?(peer)
    }
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func randomHex(_ bytes: Int) -> String {
    var g = SystemRandomNumberGenerator()
    return Hex.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &g) })
}


func isIPLiteral(_ host: String) -> Bool {
    var v4 = in_addr(), v6 = in6_addr()
    return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
}

/// `ws://host:port/path` → (host, port, path). Only ws:// is dialled (wss:// links are not supported yet).
func parseWebSocketURL(_ url: String) -> (String, Int, String)? {
    guard url.hasPrefix("ws://") else { return nil }
    let rest = url.dropFirst(5)
    let slash = rest.firstIndex(of: "/") ?? rest.endIndex
    let authority = rest[..<slash]
    let path = slash == rest.endIndex ? "/" : String(rest[slash...])
    let host: Substring, portText: Substring
    if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
        host = authority[authority.index(after: authority.startIndex)..<close]
        portText = authority[authority.index(after: close)...].drop { $0 == ":" }
    } else if let colon = authority.lastIndex(of: ":") {
        host = authority[..<colon]
        portText = authority[authority.index(after: colon)...]
    } else {
        host = authority
        portText = "80"
    }
    guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else { return nil }
    return (String(host), port, path)
}
