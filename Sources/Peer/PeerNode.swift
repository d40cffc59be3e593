import Dispatch
import Foundation
import Logging
import Ring
import Transport
import WireProtocol

/// A native peer of the ring (docs/protocol.md): the I/O shell around `PeerSession`. It owns the
/// `Transport` (the link listener and the client connections), turns transport callbacks and a 100 ms
/// timer into core events with the time, performs the actions that come back, and calls the
/// `on…` callbacks.
///
/// Links: a peer that needs a link sends the other a relayed `signal` {"type":"dial-me","url","nonce"}
/// and the other dials that URL and says hello with the nonce; so browsers (which cannot listen)
/// always dial, and a WebRTC offer from a browser is answered with "dial me". When both sides dial at
/// once, the link dialled by the smaller ID is kept.
///
/// `@unchecked Sendable`: every stored property except the immutable ones (`configuration`,
/// `transport`, `logger`) and `timer` is read and written only on the transport's service thread, and
/// each entry point asserts it (`transport.isOnServiceThread`): the `TransportHandler` callbacks run
/// there, the public methods must be called through `transport.post`/`sync`, and the timer posts its
/// ticks there. `timer` is set in `start` and cancelled in `stop`, which the owner calls once each, in
/// that order, from one thread.
public final class PeerNode: TransportHandler, @unchecked Sendable {
    public typealias SessionState = PeerSession.State

    public let configuration: PeerConfiguration
    public let transport: Transport
    let logger: Logger
    /// The pure core (service thread only).
    private var session: PeerSession

    public var state: SessionState { checked(session.state) }
    public var peerId: PeerID? { checked(session.peerId) }
    /// The server's certificate of this peer's binding (ID, public key, epoch), once registered.
    public var certificate: String? { checked(session.certificate) }
    /// The public key this peer registers with (64 lowercase hex).
    public var publicKey: String { identity.publicKey }
    public let identity: PeerIdentity
    public var ring: PeerState { checked(session.ring) }
    public var relayAllowed: Bool { checked(session.relayAllowed) }
    /// Overlay messages accepted here and refused by reason (docs/protocol.md, "Signed overlay messages").
    public var overlayCounters: OverlayCounters { checked(session.overlayCounters) }

    /// Called on the service thread.
    public var onRegistered: ((PeerID, Bool) -> Void)?
    public var onMessage: ((Envelope) -> Void)?
    public var onLinkUp: ((PeerID) -> Void)?
    public var onLinkDown: ((PeerID) -> Void)?
    public var onRingChange: (() -> Void)?
    public var onTick: ((UInt64) -> Void)?
    /// The server announced a shutdown (`going-away`); the peer reconnects after the given milliseconds.
    public var onGoingAway: ((Int) -> Void)?
    /// Errors the peer cannot act on (e.g. `server-full`, `bad-signature`), and hop-limit drops.
    public var onError: ((String, String) -> Void)?
    /// A refused overlay message (reason, the source it claimed, the peer whose link carried it); it is
    /// also counted in `overlayCounters`.
    public var onForgery: ((String, PeerID?, PeerID) -> Void)?

    private var timer: DispatchSourceTimer?
    /// Signalled when the server connection has closed after `stop`.
    private var serverClosed: DispatchSemaphore?
    /// Connections to a server made so far: the next goes to the next server of the list (service thread).
    private var serverAttempts = 0

    /// `identity`: the key pair the peer registers with (a new one when nil: the peer then gets a new ID
    /// whenever the process starts).
    public init(configuration: PeerConfiguration, identity: PeerIdentity? = nil, logger: Logger = Logger(label: "browsercloud.peer")) throws {
        self.configuration = configuration
        let identity = try identity ?? PeerIdentity.generate()
        self.identity = identity
        self.logger = logger
        var t = TransportConfiguration()
        t.host = configuration.listenHost
        t.port = configuration.listenPort
        t.subprotocol = "bc-link.v1"
        t.maxMessageBytes = configuration.maxLinkMessageBytes
        t.maxSendQueueBytes = max(4 * 1024 * 1024, 4 * configuration.maxLinkMessageBytes)
        t.maxConnections = configuration.maxLinks
        transport = Transport(configuration: t, logger: logger)
        session = PeerSession(configuration: configuration, url: configuration.advertisedURL ?? "", identity: identity,
                              random: SystemRandomNumberGenerator())
    }

    /// The URL other peers dial (valid after `start`).
    public var url: String { configuration.advertisedURL ?? "ws://\(configuration.listenHost):\(transport.port)/" }

    /// Starts the listener and the session (from any thread).
    public func start() throws {
        transport.handler = self
        try transport.start()
        let url = self.url
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "browsercloud.peer.timer"))
        timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            self.transport.post { self.tick() }
        }
        self.timer = timer
        transport.post {
            self.session.url = url
            self.perform(self.session.connect())
        }
        timer.resume()
    }

    /// Leaves the ring and stops (from any thread; blocks until done, at most `seconds` plus the
    /// transport's teardown). A registered peer sends `leave` and closes its server connection with 1000
    /// after its send queue is flushed; links are closed with 1001. Whatever the session's state
    /// (connecting, registering, waiting to reconnect to a dead server), the wait is bounded.
    public func stop(within seconds: Double = 2) {
        timer?.cancel()
        let flushed = DispatchSemaphore(value: 0)
        transport.sync {
            let (actions, awaitClose) = self.session.stop()
            if awaitClose { self.serverClosed = flushed }
            self.perform(actions)
            if !awaitClose { flushed.signal() }
        }
        if flushed.wait(timeout: .now() + max(0, seconds)) == .timedOut {
            logger.warning("the server connection did not close within \(seconds) s")
        }
        transport.stop()
    }

    // MARK: public API (service thread)

    /// Routes `data` to the peer responsible for `dst`. Returns false when there is no route or the
    /// link refused the message (its send queue is full).
    @discardableResult
    public func send(to dst: PeerID, data: JSONValue) -> Bool {
        assertServiceThread()
        let (routed, actions) = session.send(to: dst, data: data, wallClockMs: Self.wallClockMs())
        return perform(actions) && routed
    }

    /// Peers with an open link that are in the finger table.
    public var linkedPeers: [PeerID] { checked(session.linkedPeers) }

    public func neededPeers() -> Set<PeerID> { checked(session.neededPeers()) }

    /// Whether every needed peer has an open link (the ring is usable from here).
    public var isReady: Bool { checked(session.isReady) }

    /// `dial-me` signals refused because they named a URL the server does not vouch for (docs/protocol.md).
    public var dialMeRefused: Int { checked(session.dialMeRefused) }

    // MARK: the shell

    private func assertServiceThread() {
        assert(transport.isOnServiceThread, "PeerNode used off its transport's service thread")
    }

    private func checked<T>(_ value: @autoclosure () -> T) -> T {
        assertServiceThread()
        return value()
    }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    /// The wall clock in ms since 1970 (signed overlay messages' `at` and time window).
    private static func wallClockMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    private func tick() {
        let t = Self.now()
        perform(session.tick(now: t))
        onTick?(t)
    }

    /// Performs the core's actions in order. Returns false when the transport refused a frame of a
    /// `.forward` action.
    @discardableResult
    private func perform(_ actions: [PeerAction]) -> Bool {
        assertServiceThread()
        var ok = true
        for action in actions {
            switch action {
            case .connectToServer:
                let servers = [ServerEndpoint(host: configuration.serverHost, port: configuration.serverPort)] + configuration.moreServers
                let server = servers[serverAttempts % servers.count]
                serverAttempts += 1
                let c = transport.connect(host: server.host, port: server.port, subprotocol: "webrtc-explorer.v2")
                session.serverConnecting(c, now: Self.now())
            case .sendServer(let c, let message):
                _ = transport.send(message.encoded(), to: c)
            case .dial(let peer, let target, let nonce):
                if let c = transport.connect(host: target.host, port: target.port, path: target.path, subprotocol: "bc-link.v1") {
                    session.dialStarted(c, peer: peer, nonce: nonce)
                }
            case .send(let c, let frame):
                _ = transport.send(frame, to: c)
            case .forward(let c, let frames, let failure):
                if !frames.allSatisfy({ transport.send($0, to: c) }) {
                    ok = false
                    if let failure { onError?(failure.code, failure.message) }
                }
            case .close(let c, let status, let reason):
                transport.close(c, status: status, reason: reason)
            case .serverClosed:
                serverClosed?.signal()
            case .registered(let id, let again):
                onRegistered?(id, again)
            case .deliver(let envelope):
                onMessage?(envelope)
            case .linkUp(let p):
                onLinkUp?(p)
            case .linkDown(let p):
                onLinkDown?(p)
            case .ringChanged:
                onRingChange?()
            case .goingAway(let ms):
                onGoingAway?(ms)
            case .error(let e):
                onError?(e.code, e.message)
            case .forgery(let reason, let srcId, let link):
                onForgery?(reason, srcId, link)
            case .log(let level, let text):
                logger.log(level: level, "\(text)")
            }
        }
        return ok
    }

    // MARK: TransportHandler

    public func webSocketOpened(_ connection: ConnectionID, remoteAddress: String, origin: String?) {
        perform(session.opened(connection, now: Self.now()))
    }

    public func webSocketReceived(_ connection: ConnectionID, text: [UInt8]) {
        perform(session.received(connection, text: text, now: Self.now(), wallClockMs: Self.wallClockMs()))
    }

    public func webSocketRejected(_ connection: ConnectionID, problem: FrameProblem) {
        perform(session.rejected(connection))
    }

    public func webSocketClosed(_ connection: ConnectionID, cause: CloseCause) {
        perform(session.closed(connection, cause: cause.rawValue, now: Self.now()))
    }

    public func webSocketConnectFailed(_ connection: ConnectionID, reason: String) {
        perform(session.connectFailed(connection, reason: reason, now: Self.now()))
    }
}
