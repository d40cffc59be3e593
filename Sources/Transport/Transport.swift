import CLibWebSockets
import DequeModule
import Foundation
import Logging

/// An HTTP + WebSocket server on libwebsockets (RFC 6455).
///
/// Threading: one dedicated service thread creates the lws context, runs the event loop (libev on epoll,
/// or lws's poll loop), calls every
/// `TransportHandler` method and owns all connection state. Other threads talk to it only through
/// `post(_:)` (a locked inbox followed by `lws_cancel_service`, the one thread-safe lws call) and `stop()`.
/// Every other method must be called on the service thread, i.e. from a handler callback or a posted job.
///
/// `@unchecked Sendable` is safe because: the inbox and the stop flag are guarded by `lock`; every other
/// stored property is read and written only on the service thread (the thread is started after `init`,
/// and `stop()` joins it before the object can be released).
public final class Transport: @unchecked Sendable {
    public let configuration: TransportConfiguration
    public weak var handler: (any TransportHandler)?
    public private(set) var counters = TransportCounters()
    let logger: Logger

    // Cross-thread state, guarded by `lock`.
    private let lock = NSLock()
    private var inbox: [@Sendable () -> Void] = []
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    // Service-thread state.
    private var context: OpaquePointer?
    /// The libev loop lws runs on (nil on lws's poll loop); the request gate's watchers live on it.
    private var evLoop: OpaquePointer?
    private var boundPort = 0
    private var nextID: ConnectionID = 1
    private var sockets: [ConnectionID: WebSocketSession] = [:]
    private var https: [ConnectionID: HTTPSession] = [:]
    private var scratch: [UInt8] = []
    private let pre = Int(bc_lws_pre())
    private let storage: CStorage
    private let housekeepingTimer: UnsafeMutablePointer<bc_timer_t>
    /// Session slots of dialled connections (lws uses them as their user space; freed at WSI_DESTROY).
    private var clientSlots = Set<UnsafeMutablePointer<ConnectionID>>()
    /// Every accepted connection still alive (HTTP, WebSocket, event stream), for the connection limit
    /// and for answering requests that libwebsockets gives up on.
    private var accepted: [OpaquePointer: AcceptedConnection] = [:]
    private var housekeepingTicks = 0

    public init(configuration: TransportConfiguration, logger: Logger = Logger(label: "browsercloud.transport")) {
        self.configuration = configuration
        self.logger = logger
        self.storage = CStorage(configuration: configuration)
        housekeepingTimer = .allocate(capacity: 1)
        housekeepingTimer.initialize(to: bc_timer_t())
    }

    deinit {
        storage.free()
        housekeepingTimer.deallocate()
    }

    /// The bound TCP port (valid after `start()` returns).
    public var port: Int { lock.withLock { boundPort } }

    /// Creates the lws context on a new service thread and starts serving.
    /// Throws when the address cannot be bound.
    public func start() throws {
        if configuration.port != nil { try Transport.checkLocalAddress(configuration.host, port: configuration.port ?? 0) }
        let ready = DispatchSemaphore(value: 0)
        let ok = LockedBox(false)
        try lock.withLock {
            guard thread == nil else { throw TransportError.alreadyStarted }
            let t = Thread { [self] in
                self.serviceThreadMain(ready: ready, ok: ok)
            }
            t.name = "lws-service"
            t.stackSize = 8 << 20
            thread = t
            t.start()
        }
        ready.wait()
        if !ok.value {
            finished.wait()
            lock.withLock { thread = nil }
            throw TransportError.cannotListen(host: configuration.host, port: configuration.port)
        }
    }

    /// Fails early when `host` is an IP literal that is not an address of this machine: lws 4.1 only logs
    /// the failed bind and would run without a listener.
    static func checkLocalAddress(_ host: String, port: Int) throws {
        let literal = host == "localhost" ? "127.0.0.1" : host
        var v4 = in_addr(), v6 = in6_addr()
        let family: Int32
        if inet_pton(AF_INET, literal, &v4) == 1 { family = AF_INET } else if inet_pton(AF_INET6, literal, &v6) == 1 { family = AF_INET6 } else { return }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        var result: Int32
        if family == AF_INET {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr = v4
            result = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_addr = v6
            result = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
        if result != 0 && errno == EADDRNOTAVAIL { throw TransportError.cannotListen(host: host, port: port) }
    }

    /// Raises the process's soft limit on open files to at least `wanted` (capped by the hard limit), so
    /// that `maxConnections` sockets fit. Call before `start()`.
    public static func raiseFileLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(wanted) else { return }
        limit.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Gives the calling thread a lower priority (a nice value above 0), e.g. for work that must never
    /// compete with a service thread for a core.
    public static func lowerCurrentThreadPriority(nice: Int32) {
        _ = bc_set_thread_nice(nice)
    }

    /// Names the calling thread (up to 15 bytes) for `top -H` and /proc.
    public static func nameCurrentThread(_ name: String) {
        bc_set_thread_name(name)
    }

    /// Runs `work` on the service thread soon. Safe from any thread.
    public func post(_ work: @escaping @Sendable () -> Void) {
        lock.withLock {
            inbox.append(work)
            if let context { lws_cancel_service(context) }
        }
    }

    /// Runs `work` on the service thread and waits for its result. Never call it from the service thread.
    public func sync<T: Sendable>(_ work: @escaping @Sendable () -> T) -> T {
        let box = LockedBox<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        post {
            box.value = work()
            done.signal()
        }
        done.wait()
        return box.value!
    }

    /// Closes every connection, destroys the context and joins the service thread. Safe from any
    /// thread except the service thread; idempotent.
    public func stop() {
        let wasRunning: Bool = lock.withLock {
            guard thread != nil, !stopping else { return false }
            stopping = true
            if let context { lws_cancel_service(context) }
            return true
        }
        if wasRunning { finished.wait() }
    }

    // MARK: Service thread

    private func serviceThreadMain(ready: DispatchSemaphore, ok: LockedBox<Bool>) {
        bc_set_thread_name("lws-service")   // for top -H and /proc/<pid>/task/*/comm
        // lws logs on the thread that calls it: the sink finds this transport through the thread's slot.
        bc_thread_owner_slot().pointee = Unmanaged.passUnretained(self).toOpaque()
        defer { bc_thread_owner_slot().pointee = nil }
        bc_lws_set_log(logger.logLevel <= .debug ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR | LLL_WARN, lwsLogSink)
        var loop: OpaquePointer? = configuration.useLibev ? bc_ev_loop_new() : nil
        var ctx = createContext(loop: loop)
        if ctx == nil, let failed = loop {
            // The lws libev plugin may be missing: fall back to poll().
            bc_ev_loop_destroy(failed)
            loop = nil
            ctx = createContext(loop: nil)
        }
        if let ctx {
            let vhost = lws_get_vhost_by_name(ctx, "default")
            let listening = Int(lws_get_vhost_listen_port(vhost))
            lock.withLock {
                context = ctx
                boundPort = configuration.port == nil ? 0 : listening
            }
            evLoop = loop
            ok.value = configuration.port == nil || listening > 0
            logger.debug("event loop", metadata: ["backend": "\(loop.map { String(cString: bc_ev_backend_name($0)) } ?? "lws poll")"])
        }
        ready.signal()
        guard let ctx, ok.value else {
            if let ctx { lws_context_destroy(ctx) }
            if let loop { bc_ev_loop_destroy(loop) }
            lock.withLock { context = nil }
            finished.signal()
            return
        }
        housekeepingTimer.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        scheduleHousekeeping(ctx)
        while !lock.withLock({ stopping }) {
            if let loop {
                _ = bc_ev_run_once(loop)
            } else if lws_service(ctx, 0) < 0 {
                break
            }
        }
        // Drain posted work so that waiters in `sync` do not hang, then tear down.
        drainInbox()
        lws_context_destroy(ctx)
        evLoop = nil
        if let loop {
            _ = bc_ev_run_nowait(loop)
            bc_ev_loop_destroy(loop)
        }
        lock.withLock { context = nil }
        drainInbox()
        finished.signal()
    }

    private func createContext(loop: OpaquePointer?) -> OpaquePointer? {
        var info = lws_context_creation_info()
        storage.fill(&info)
        // With the request gate (libev, no TLS) the gate enforces `maxHeaderBytes` on the raw bytes; lws's
        // buffer gets room to spare so that lws never drops a head the gate has not judged yet.
        let gated = loop != nil && configuration.tlsCertificatePath == nil
        info.max_http_header_data = UInt16(clamping: configuration.maxHeaderBytes + (gated ? 2048 : 0))
        info.user = Unmanaged.passUnretained(self).toOpaque()
        guard let loop else { return lws_create_context(&info) }
        info.options |= UInt64(LWS_SERVER_OPTION_LIBEV)
        var loops: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(loop)]
        return loops.withUnsafeMutableBufferPointer { buffer in
            info.foreign_loops = buffer.baseAddress
            return lws_create_context(&info)
        }
    }

    /// Dials a WebSocket (service thread). Events arrive as for accepted connections; a failure before the
    /// WebSocket opens is reported by `webSocketConnectFailed`. Returns nil when lws refuses at once.
    public func connect(host: String, port: Int, path: String = "/", subprotocol: String? = nil) -> ConnectionID? {
        guard let ctx = lock.withLock({ context }) else { return nil }
        let id = newID()
        let slot = UnsafeMutablePointer<ConnectionID>.allocate(capacity: 1)
        slot.initialize(to: id)
        clientSlots.insert(slot)
        var info = lws_client_connect_info()
        let wsi: OpaquePointer? = host.withCString { hostC in
            path.withCString { pathC in
                configuration.subprotocol.withCString { localName in
                    withOptionalCString(subprotocol) { protoC in
                        info.context = ctx
                        info.address = hostC
                        info.host = hostC
                        info.origin = hostC
                        info.port = Int32(port)
                        info.path = pathC
                        info.protocol = protoC
                        info.local_protocol_name = localName
                        info.ietf_version_or_minus_one = -1
                        info.userdata = UnsafeMutableRawPointer(slot)
                        return lws_client_connect_via_info(&info)
                    }
                }
            }
        }
        if wsi == nil {
            // lws may already have destroyed the wsi (and run WSI_DESTROY) or never made one.
            if clientSlots.remove(slot) != nil { slot.deallocate() }
            return nil
        }
        return id
    }

    private func scheduleHousekeeping(_ ctx: OpaquePointer) {
        housekeepingTimer.withMemoryRebound(to: lws_sorted_usec_list_t.self, capacity: 1) { sul in
            lws_sul_schedule(ctx, 0, sul, transportHousekeeping, 1_000_000)
        }
    }

    /// Once a second: WebSocket liveness and Server-Sent Event keep-alives.
    ///
    /// Liveness is done here rather than with lws's idle policy because lws 4.1 keeps its timers in one
    /// sorted list and reschedules a connection's timer on every PONG, which costs O(connections) each:
    /// with 10,000 peers that made pings the main source of latency. Here a sweep of all WebSockets
    /// costs O(connections) once a second, and each connection is pinged on its own schedule.
    fileprivate func housekeeping() {
        let now = DispatchTime.now().uptimeNanoseconds
        let pingAfter = UInt64(configuration.pingAfterSeconds) * 1_000_000_000
        let hangupAfter = UInt64(configuration.hangupAfterSeconds) * 1_000_000_000
        for (id, s) in sockets where !s.closing {
            // Control frames: each second where the peer pinged (see writeQueued), and every socket
            // once in ten seconds anyway (two system calls per socket).
            if s.wire != nil && (s.checkWire || id % 10 == UInt64(housekeepingTicks % 10)) {
                s.checkWire = false
                if let frames = s.wire!.unaccountedFrames(consumed: bc_tcp_consumed(lws_get_socket_fd(s.wsi))) {
                    counters.controlFramesIn += frames
                    handler?.webSocketControlFrames(id, count: frames)
                }
            }
            let quiet = now &- s.lastHeard
            if quiet >= hangupAfter {
                s.closing = true
                s.closeCause = .idleTimeout
                lws_set_timeout(s.wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
            } else if quiet >= pingAfter && now &- s.lastPingSent >= pingAfter {
                s.pingDue = true
                s.lastPingSent = now
                lws_callback_on_writable(s.wsi)
            }
        }
        // Event streams whose client closed (where the watcher cannot tell: TLS, the poll loop, or a
        // client that also sent bytes): lws notices only when a write fails.
        for h in https.values {
            if h.isEventStream && streamEnded(lws_get_socket_fd(h.wsi)) {
                lws_set_timeout(h.wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
            } else if h.awaitingAnswer {
                // lws gives a request 10 s to be answered; a deferred one waits as long as it needs
                // (the handler bounds how many wait).
                lws_set_timeout(h.wsi, PENDING_TIMEOUT_HTTP_CONTENT, 10)
            }
        }
        housekeepingTicks += 1
        if housekeepingTicks % max(1, configuration.eventStreamKeepaliveSeconds) == 0 {
            let comment = Array(":\n\n".utf8)
            for (id, h) in https where h.isEventStream { sendEvent(comment, to: id) }
        }
        if let ctx = lock.withLock({ context }) { scheduleHousekeeping(ctx) }
    }

    private func drainInbox() {
        let jobs: [@Sendable () -> Void] = lock.withLock {
            let jobs = inbox
            inbox.removeAll()
            return jobs
        }
        for job in jobs { job() }
    }

    private func newID() -> ConnectionID {
        defer { nextID += 1 }
        return nextID
    }

    // MARK: Sending (service thread)

    /// Queues a text message. A receiver whose queue exceeds its bounds is disconnected with cause
    /// `.slowConsumer` and `false` is returned.
    @discardableResult
    public func send(_ text: [UInt8], to connection: ConnectionID) -> Bool {
        guard let s = sockets[connection], !s.closing else { return false }
        s.queue.append(text)
        s.queuedBytes += text.count
        if s.queue.count > configuration.maxSendQueueMessages || s.queuedBytes > configuration.maxSendQueueBytes {
            disconnectSlowConsumer(s)
            return false
        }
        lws_callback_on_writable(s.wsi)
        return true
    }

    /// Closes a WebSocket after its queued messages are sent, with a close status (RFC 6455 §7.4).
    /// `stopReading`: read nothing more from it (a flood), and give it one second instead of five.
    public func close(_ connection: ConnectionID, status: UInt16 = 1000, reason: String = "", stopReading: Bool = false) {
        guard let s = sockets[connection], !s.closing else { return }
        s.closing = true
        s.closeStatus = status
        s.closeReason = Array(reason.utf8.prefix(120))
        s.closeCause = .closedByServer
        if stopReading { _ = lws_rx_flow_control(s.wsi, 0) }
        lws_callback_on_writable(s.wsi)
        // Do not wait forever for a client that stopped reading.
        lws_set_timeout(s.wsi, PENDING_TIMEOUT_CLOSE_SEND, stopReading ? 1 : 5)
    }

    /// Queues one Server-Sent Event block (already formatted, ending in a blank line).
    public func sendEvent(_ bytes: [UInt8], to connection: ConnectionID) {
        guard let h = https[connection], h.isEventStream else { return }
        h.pending.append(bytes)
        h.pendingBytes += bytes.count
        if h.pending.count > configuration.maxSendQueueMessages || h.pendingBytes > configuration.maxSendQueueBytes {
            counters.slowConsumerDisconnects += 1
            h.pending.removeAll()
            lws_set_timeout(h.wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
            return
        }
        lws_callback_on_writable(h.wsi)
    }

    private func disconnectSlowConsumer(_ s: WebSocketSession) {
        counters.slowConsumerDisconnects += 1
        s.closing = true
        s.closeCause = .slowConsumer
        s.queue.removeAll()
        s.queuedBytes = 0
        lws_set_timeout(s.wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
    }

    /// Writes `bytes` with LWS_PRE headroom through the shared scratch buffer (or a kept copy under deflate).
    private func write(_ wsi: OpaquePointer, _ bytes: some Collection<UInt8>, _ mode: lws_write_protocol,
                       keep: WebSocketSession? = nil) -> Bool {
        let needed = pre + bytes.count
        var buffer: [UInt8] = []
        if keep != nil {
            buffer = [UInt8](repeating: 0, count: needed)
        } else {
            swap(&buffer, &scratch)  // take the scratch buffer uniquely, so writing into it does not copy it
        }
        if buffer.count < needed { buffer = [UInt8](repeating: 0, count: max(needed, 2 * buffer.count)) }
        buffer.replaceSubrange(pre..<(pre + bytes.count), with: bytes)
        let written = buffer.withUnsafeMutableBufferPointer { p in
            lws_write(wsi, p.baseAddress! + pre, bytes.count, mode)
        }
        if let keep { keep.lastWritten = buffer } else { scratch = buffer }
        return Int(written) >= bytes.count
    }

    // MARK: lws log messages (service thread)

    /// A line lws logged while working for this transport. A request head too large for lws's header
    /// buffer is the client's doing, not a server error (the request gate answers it with `431` where
    /// it can see the bytes first; see `gateReadable`).
    fileprivate func lwsLogged(level: Int32, line: String) {
        if line.contains("Ran out of header data space") || line.contains("More hdr frags than we can deal with") {
            logger.debug("request headers too large for libwebsockets' buffer", metadata: ["lws": "\(line)"])
            return
        }
        switch level {
        case LLL_ERR: logger.error("libwebsockets: \(line)")
        case LLL_WARN: logger.warning("libwebsockets: \(line)")
        default: logger.debug("libwebsockets: \(line)")
        }
    }

    // MARK: Callback dispatch (service thread)

    fileprivate func callback(_ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
                              _ input: UnsafeMutableRawPointer?, _ len: Int) -> Int32 {
        let idSlot = user?.assumingMemoryBound(to: ConnectionID.self)
        switch reason {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            drainInbox()
            return 0

        case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
            // A new TCP connection, before any protocol: enforce the connection limit for HTTP and WebSocket alike.
            if accepted.count >= configuration.maxConnections {
                counters.connectionLimitRejections += 1
                return 1
            }
            return 0

        case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
            if let wsi {
                let c = AcceptedConnection()
                accepted[wsi] = c
                // lws 4.1 reports dialled connections here too (their user slot is ours): no gate on
                // those; reading a connecting socket would also take its connect error from lws.
                let dialled = idSlot.map { clientSlots.contains($0) } ?? false
                if let loop = evLoop, lws_is_ssl(wsi) == 0, !dialled {
                    let gate = UnsafeMutablePointer<bc_gate_t>.allocate(capacity: 1)
                    gate.initialize(to: bc_gate_t())
                    gate.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
                    gate.pointee.wsi = UnsafeMutableRawPointer(wsi)
                    c.gate = gate
                    bc_gate_start(loop, gate, lws_get_socket_fd(wsi), transportGateReadable)
                }
            }
            counters.connectionsOpen = accepted.count
            return 0

        case LWS_CALLBACK_RAW_ADOPT, LWS_CALLBACK_RAW_RX:
            // lws turns a CONNECT request into a raw socket (proxy support): no route serves one, so close it.
            return -1

        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            guard let wsi, accepted[wsi]?.refused != true else { return 1 }
            if let allowed = configuration.allowedOrigins {
                let origin = header(wsi, WSI_TOKEN_ORIGIN) ?? ""
                if !allowed.contains(origin) {
                    counters.originRejections += 1
                    handler?.originRejected(origin)
                    return 1
                }
            }
            return 0

        case LWS_CALLBACK_ESTABLISHED, LWS_CALLBACK_CLIENT_ESTABLISHED:
            guard let wsi, let idSlot else { return -1 }
            if idSlot.pointee == 0 { idSlot.pointee = newID() }
            let id = idSlot.pointee
            let s = WebSocketSession(wsi: wsi, maxMessageBytes: configuration.maxMessageBytes)
            sockets[id] = s
            if reason == LWS_CALLBACK_ESTABLISHED {
                // Bytes read so far (the handshake) are not frames.
                s.wire = WireAccount(baseline: bc_tcp_consumed(lws_get_socket_fd(wsi)), tls: lws_is_ssl(wsi) != 0)
            }
            if let c = accepted[wsi], let gate = c.gate {
                // No more request heads on this connection: the request gate's watcher goes.
                if let loop = evLoop { bc_gate_stop(loop, gate) }
                gate.deallocate()
                c.gate = nil
            }
            if configuration.permessageDeflate {
                // Send compressed messages in 16 KiB fragments instead of lws's default 1 KiB ones.
                _ = lws_set_extension_option(wsi, "permessage-deflate", "tx_buf_size", "14")
            }
            counters.webSocketsOpen += 1
            handler?.webSocketOpened(id, remoteAddress: peerAddress(wsi), origin: header(wsi, WSI_TOKEN_ORIGIN))
            return 0

        case LWS_CALLBACK_RECEIVE, LWS_CALLBACK_CLIENT_RECEIVE:
            guard let wsi, let id = idSlot?.pointee, let s = sockets[id] else { return -1 }
            receive(s, id: id, wsi: wsi, input: input, len: len)
            return 0

        case LWS_CALLBACK_RECEIVE_PONG, LWS_CALLBACK_CLIENT_RECEIVE_PONG:
            if let id = idSlot?.pointee, let s = sockets[id] {
                s.lastHeard = DispatchTime.now().uptimeNanoseconds
                s.wire?.frame(payload: len)
            }
            return 0

        case LWS_CALLBACK_SERVER_WRITEABLE, LWS_CALLBACK_CLIENT_WRITEABLE:
            guard let wsi, let id = idSlot?.pointee, let s = sockets[id] else { return 0 }
            return writeQueued(s, wsi: wsi)

        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            if let id = idSlot?.pointee, sockets[id] == nil {
                let reason = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "connection failed"
                handler?.webSocketConnectFailed(id, reason: reason)
            }
            return 0

        case LWS_CALLBACK_WSI_DESTROY:
            if let idSlot, clientSlots.remove(idSlot) != nil { idSlot.deallocate() }
            if let wsi, let c = accepted.removeValue(forKey: wsi) {
                counters.connectionsOpen = accepted.count
                if let gate = c.gate {
                    if let loop = evLoop { bc_gate_stop(loop, gate) }
                    gate.deallocate()
                }
            }

        case LWS_CALLBACK_CLOSED, LWS_CALLBACK_CLIENT_CLOSED:
            guard let id = idSlot?.pointee, let s = sockets.removeValue(forKey: id) else { return 0 }
            counters.webSocketsOpen -= 1
            let stopping = lock.withLock { self.stopping }
            handler?.webSocketClosed(id, cause: stopping ? .shutdown : s.closeCause)
            return 0

        case LWS_CALLBACK_HTTP:
            guard let wsi, let idSlot else { return -1 }
            return handleHTTP(wsi, idSlot: idSlot, input: input, len: len)

        case LWS_CALLBACK_HTTP_BODY:
            // No route takes a request body: it is read and discarded.
            counters.bytesIn += len
            return 0

        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            // The answer was prepared in LWS_CALLBACK_HTTP; lws sends nothing until the body is consumed.
            guard let wsi, let id = idSlot?.pointee, let h = https[id] else { break }
            h.awaitingBody = false
            lws_callback_on_writable(wsi)
            return 0

        case LWS_CALLBACK_HTTP_WRITEABLE:
            guard let wsi, let id = idSlot?.pointee, let h = https[id] else { break }
            return writeHTTP(h, wsi: wsi)

        case LWS_CALLBACK_HTTP_FILE_COMPLETION:
            guard let wsi else { break }
            return completeTransaction(wsi)

        case LWS_CALLBACK_CLOSED_HTTP, LWS_CALLBACK_HTTP_DROP_PROTOCOL:
            if let id = idSlot?.pointee, let h = https.removeValue(forKey: id), h.isEventStream {
                handler?.eventStreamClosed(id)
            }

        default:
            break
        }
        return lws_callback_http_dummy(wsi, reason, user, input, len)
    }

    /// Payload bytes of a data frame: fragments are reassembled by the session's `FrameAssembler`; a
    /// complete message goes to the handler, unless the socket is closing.
    private func receive(_ s: WebSocketSession, id: ConnectionID, wsi: OpaquePointer,
                         input: UnsafeMutableRawPointer?, len: Int) {
        counters.bytesIn += len
        let remaining = Int(lws_remaining_packet_payload(wsi))
        if s.wire != nil {
            // The frame's size is known at its first bytes: its payload so far plus what remains.
            if s.frameStart { s.wire!.frame(payload: len + remaining) }
            s.frameStart = remaining == 0
        }
        s.lastHeard = DispatchTime.now().uptimeNanoseconds
        let bytes = UnsafeRawBufferPointer(start: input, count: input == nil ? 0 : len)
        let outcome = s.assembler.append(bytes, isFinal: lws_is_final_fragment(wsi) != 0,
                                         isBinary: lws_frame_is_binary(wsi) != 0, remaining: remaining)
        if case .incomplete = outcome { return }
        guard !s.closing else { return }
        counters.messagesIn += 1
        switch outcome {
        case .incomplete: break
        case .message(let text): handler?.webSocketReceived(id, text: text)
        case .refused(let problem): handler?.webSocketRejected(id, problem: problem)
        }
    }

    private func writeQueued(_ s: WebSocketSession, wsi: OpaquePointer) -> Int32 {
        // Nothing asked for this callback: lws has just written a PONG, so the peer sent a PING.
        if !s.pingDue && s.queue.isEmpty && !s.closing { s.checkWire = true }
        if configuration.permessageDeflate == false { s.lastWritten = nil }
        if s.pingDue && !s.closing {
            s.pingDue = false
            // A payload: lws 4.1 does not report an empty PONG to the protocol callback.
            guard write(wsi, Array("liveness".utf8), LWS_WRITE_PING) else { return -1 }
            if configuration.permessageDeflate || !s.queue.isEmpty {
                lws_callback_on_writable(wsi)
                return 0
            }
        }
        var sent = 0
        while let message = s.queue.first {
            if sent > 0 && lws_send_pipe_choked(wsi) != 0 { break }
            s.queue.removeFirst()
            s.queuedBytes -= message.count
            guard write(wsi, message, LWS_WRITE_TEXT, keep: configuration.permessageDeflate ? s : nil) else { return -1 }
            counters.bytesOut += message.count
            counters.messagesOut += 1
            sent += 1
            // Under deflate the buffer must stay alive until the next writeable callback: one write per callback.
            if configuration.permessageDeflate || sent >= 32 { break }
        }
        if !s.queue.isEmpty {
            lws_callback_on_writable(wsi)
        } else if s.closing {
            var reason = s.closeReason
            lws_close_reason(wsi, lws_close_status(rawValue: UInt32(s.closeStatus)), &reason, reason.count)
            return -1
        }
        return 0
    }

    // MARK: HTTP (service thread)

    private func handleHTTP(_ wsi: OpaquePointer, idSlot: UnsafeMutablePointer<ConnectionID>,
                            input: UnsafeMutableRawPointer?, len: Int) -> Int32 {
        counters.httpRequests += 1
        if idSlot.pointee == 0 { idSlot.pointee = newID() }
        let id = idSlot.pointee
        if accepted[wsi]?.refused == true { return -1 }   // the request gate answered it already
        var uriPointer: UnsafeMutablePointer<CChar>?
        var uriLength: Int32 = 0
        let methodIndex = lws_http_get_uri_and_method(wsi, &uriPointer, &uriLength)
        let path = input.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: len), as: UTF8.self) } ?? "/"
        let method = Self.method(methodIndex)
        // HEAD is answered like GET without the body (RFC 9110 §9.3.2).
        let request = HTTPRequest(connection: id, method: method == .head ? .get : method, path: path.isEmpty ? "/" : path,
                                  query: queryArguments(wsi), authorization: header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION),
                                  host: header(wsi, WSI_TOKEN_HOST))
        if lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 {
            // lws 4.1 never completes chunked request bodies, and no route takes a body: answer and close.
            let body = Array("chunked request bodies are not accepted\n".utf8)
            if writeHeaders(wsi, status: 411, contentType: "text/plain; charset=utf-8", length: UInt64(body.count),
                            headers: [("connection", "close")]) {
                _ = write(wsi, body, LWS_WRITE_HTTP_FINAL)
            }
            return -1
        }
        let response = handler?.httpRequest(request)
            ?? .body(status: 503, contentType: "text/plain", body: Array("unavailable\n".utf8))

        if method == .head { return answerHead(wsi, id: id, response) }

        switch response {
        case .file(let file, let contentType):
            let n = lws_serve_http_file(wsi, file, contentType, nil, 0)
            if n < 0 { return -1 }
            return n > 0 ? completeTransaction(wsi) : 0

        case .body(let status, let contentType, let body, let headers):
            guard writeHeaders(wsi, status: status, contentType: contentType, length: UInt64(body.count),
                               headers: headers) else { return -1 }
            let h = HTTPSession(wsi: wsi)
            h.pending.append(body)
            https[id] = h
            if Self.hasRequestBody(wsi) {
                h.awaitingBody = true
            } else {
                lws_callback_on_writable(wsi)
            }
            return 0

        case .deferred:
            let h = HTTPSession(wsi: wsi)
            h.awaitingAnswer = true
            h.awaitingBody = Self.hasRequestBody(wsi)
            https[id] = h
            return 0

        case .eventStream:
            guard writeHeaders(wsi, status: 200, contentType: "text/event-stream", length: bc_lws_illegal_content_len(),
                               headers: [("cache-control", "no-cache"), ("x-accel-buffering", "no")]) else { return -1 }
            let h = HTTPSession(wsi: wsi)
            h.isEventStream = true
            https[id] = h
            if lws_get_network_wsi(wsi) != wsi {
                _ = lws_http_mark_sse(wsi)   // an HTTP/2 stream
            } else {
                // HTTP/1.1: lws_http_mark_sse is meant for HTTP/2 streams and logs an error for any
                // other; its HTTP/1.1 part is to free the headers and lift the timeout.
                _ = lws_http_headers_detach(wsi)
                lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0)
            }
            if let c = accepted[wsi], let gate = c.gate, let loop = evLoop {
                // lws does not notice that a stream's client went away until a write fails: the
                // watcher does, as the socket closes.
                c.streaming = true
                bc_gate_start(loop, gate, lws_get_socket_fd(wsi), transportGateReadable)
            }
            handler?.eventStreamOpened(id)
            return 0
        }
    }

    private func answerHead(_ wsi: OpaquePointer, id: ConnectionID, _ response: HTTPResponse) -> Int32 {
        let written: Bool
        switch response {
        case .body(let status, let contentType, let body, let headers):
            written = writeHeaders(wsi, status: status, contentType: contentType, length: UInt64(body.count), headers: headers)
        case .file(let file, let contentType):
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.uint64Value ?? 0
            written = writeHeaders(wsi, status: 200, contentType: contentType, length: size, headers: [])
        case .eventStream:
            written = writeHeaders(wsi, status: 200, contentType: "text/event-stream", length: 0, headers: [])
        case .deferred:
            let h = HTTPSession(wsi: wsi)
            h.awaitingAnswer = true
            h.headOnly = true
            https[id] = h
            return 0
        }
        guard written else { return -1 }
        return completeTransaction(wsi)
    }

    private func writeHeaders(_ wsi: OpaquePointer, status: Int, contentType: String, length: UInt64,
                              headers: [(String, String)]) -> Bool {
        var buffer = [UInt8](repeating: 0, count: pre + 2048)
        return buffer.withUnsafeMutableBufferPointer { b -> Bool in
            let start = b.baseAddress! + pre
            var p: UnsafeMutablePointer<UInt8>? = start
            let end = b.baseAddress! + b.count - 1
            if lws_add_http_common_headers(wsi, UInt32(status), contentType, length, &p, end) != 0 { return false }
            for (name, value) in headers {
                let n = Array((name + ":").utf8) + [0]
                let v = Array(value.utf8)
                if lws_add_http_header_by_name(wsi, n, v, Int32(v.count), &p, end) != 0 { return false }
            }
            return lws_finalize_write_http_header(wsi, start, &p, end) == 0
        }
    }

    /// Whether the request announced a body (Content-Length above zero).
    private static func hasRequestBody(_ wsi: OpaquePointer) -> Bool {
        var buffer = [CChar](repeating: 0, count: 32)
        guard lws_hdr_copy(wsi, &buffer, Int32(buffer.count), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 else { return false }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (Int(text) ?? 1) > 0
    }

    /// Answers a request that got `.deferred` (service thread). Only `.body` answers can be deferred;
    /// nothing happens when the connection has closed meanwhile.
    public func respond(to connection: ConnectionID, with response: HTTPResponse) {
        guard let h = https[connection], h.awaitingAnswer else { return }
        h.awaitingAnswer = false
        lws_set_timeout(h.wsi, PENDING_TIMEOUT_HTTP_CONTENT, 10)
        guard case .body(let status, let contentType, let body, let headers) = response else {
            h.header = (500, "text/plain; charset=utf-8", 0, [("connection", "close")])
            h.pending.append([])
            lws_callback_on_writable(h.wsi)
            return
        }
        h.header = (status, contentType, UInt64(body.count), headers)
        if !h.headOnly { h.pending.append(body) }
        if !h.awaitingBody { lws_callback_on_writable(h.wsi) }
    }

    private func writeHTTP(_ h: HTTPSession, wsi: OpaquePointer) -> Int32 {
        let chunkSize = 16 * 1024
        guard !h.awaitingBody, !h.awaitingAnswer else { return 0 }
        if let header = h.header {
            // A deferred answer: its headers first.
            h.header = nil
            guard writeHeaders(wsi, status: header.status, contentType: header.contentType, length: header.length,
                               headers: header.headers) else { return -1 }
            if h.headOnly {
                https[lws_wsi_user(wsi).assumingMemoryBound(to: ConnectionID.self).pointee] = nil
                return completeTransaction(wsi)
            }
            lws_callback_on_writable(wsi)
            return 0
        }
        if h.isEventStream && h.offset == 0 && h.pending.count > 1 {
            // Events go out together (up to a chunk): one write per stream, not one per event.
            var merged = h.pending.removeFirst()
            while let next = h.pending.first, merged.count + next.count <= chunkSize {
                merged += next
                h.pending.removeFirst()
            }
            h.pending.prepend(merged)
        }
        guard let current = h.pending.first else { return 0 }
        let remaining = current.count - h.offset
        let n = min(chunkSize, remaining)
        let last = !h.isEventStream && n == remaining && h.pending.count == 1
        guard write(wsi, current[h.offset..<(h.offset + n)], last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) else {
            return -1
        }
        counters.bytesOut += n
        h.offset += n
        if h.offset == current.count {
            h.pending.removeFirst()
            h.pendingBytes -= current.count
            h.offset = 0
        }
        if last {
            https[lws_wsi_user(wsi).assumingMemoryBound(to: ConnectionID.self).pointee] = nil
            return completeTransaction(wsi)
        }
        if !h.pending.isEmpty { lws_callback_on_writable(wsi) }
        return 0
    }

    /// The response is complete: lws may read the next request on this connection (keep-alive), which
    /// the request gate checks like the first one.
    private func completeTransaction(_ wsi: OpaquePointer) -> Int32 {
        if let c = accepted[wsi], let gate = c.gate, let loop = evLoop, c.head.resumable {
            c.head = RequestHead(start: c.head.scanned)
            bc_gate_start(loop, gate, lws_get_socket_fd(wsi), transportGateReadable)
        }
        return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
    }

    // MARK: Request gate (service thread)

    /// libwebsockets closes a connection without ever passing its request on, and without an answer,
    /// when the request head is larger than its header buffer or holds something its parser refuses
    /// (a NUL byte in the path or query): the client gets nothing at all (curl: "empty reply";
    /// browsers: a bare 1006 on a WebSocket upgrade). lws has no hook between reading those bytes and
    /// closing, so the transport looks at them first: a libev watcher of higher priority than lws's
    /// own on each plain-TCP HTTP connection peeks at a request head before lws reads it, and answers
    /// `431` (head over `maxHeaderBytes`) or `400` (NUL in the request target) itself. The kernel's
    /// count of bytes read tells where lws is in the stream, so each byte is checked once; when that
    /// count shows bytes the gate never saw (a request body, pipelined requests), the gate stops
    /// checking that connection rather than guess. Off under TLS (the bytes are encrypted) and on the
    /// poll() loop, where lws's header buffer alone bounds the head and such requests get no answer.
    fileprivate func gateReadable(_ gatePointer: UnsafeMutablePointer<bc_gate_t>) {
        guard let raw = gatePointer.pointee.wsi, let loop = evLoop else { return }
        let wsi = OpaquePointer(raw)
        guard let c = accepted[wsi] else { bc_gate_stop(loop, gatePointer); return }
        let fd = lws_get_socket_fd(wsi)
        if c.streaming {
            // An event stream: the client only ever reads, so readable means closed. Bytes from the
            // client are lws's business: the watcher then stops (housekeeping looks once a second).
            var probe: UInt8 = 0
            let n = recv(fd, &probe, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                bc_gate_stop(loop, gatePointer)
                // Now: an asynchronous kill would wait for lws's next timer run (up to a second).
                lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC)
            } else if n > 0 {
                bc_gate_stop(loop, gatePointer)
            }
            return
        }
        let consumed = bc_tcp_consumed(fd)
        guard consumed >= 0, UInt64(consumed) <= c.head.scanned else {
            // lws read bytes the gate never saw: it cannot tell where a request starts any more.
            c.head.lost = true
            bc_gate_stop(loop, gatePointer)
            return
        }
        let skip = Int(c.head.scanned - UInt64(consumed))
        let budget = max(1, configuration.maxHeaderBytes + 1 - c.head.length)
        var buffer = [UInt8](repeating: 0, count: skip + budget)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK | MSG_DONTWAIT)) }
        guard n > skip else {
            // End of stream, an error, or nothing new (lws is not reading yet): lws handles the first
            // two; a watcher that keeps waking with nothing new stops rather than spin.
            c.head.idleWakeups += 1
            if n <= 0 || c.head.idleWakeups >= 8 {
                c.head.lost = n > 0
                bc_gate_stop(loop, gatePointer)
            }
            return
        }
        c.head.idleWakeups = 0
        for i in skip..<n {
            switch c.head.feed(buffer[i], limit: configuration.maxHeaderBytes) {
            case .more:
                continue
            case .complete:
                // lws passes the request on; the next head is checked after the response, if nothing
                // but this head came.
                if i + 1 < n { c.head.lost = true }
                bc_gate_stop(loop, gatePointer)
                return
            case .nulInTarget:
                refuse(wsi, c, gate: gatePointer, fd: fd, status: 400, reason: "Bad Request", code: "bad-request",
                       message: "the request target holds a NUL byte (%00)")
                return
            case .tooLarge:
                refuse(wsi, c, gate: gatePointer, fd: fd, status: 431, reason: "Request Header Fields Too Large",
                       code: "headers-too-large", message: "the request line and headers exceed \(configuration.maxHeaderBytes) bytes")
                return
            }
        }
    }

    /// Answers a request lws would drop, directly on the socket (lws has not read it yet), discards what
    /// the client sent so far (so that closing does not reset the connection before the client reads
    /// the answer), and has lws close the connection.
    private func refuse(_ wsi: OpaquePointer, _ c: AcceptedConnection, gate: UnsafeMutablePointer<bc_gate_t>, fd: Int32,
                        status: Int, reason: String, code: String, message: String) {
        if let loop = evLoop { bc_gate_stop(loop, gate) }
        if status == 431 { counters.headersTooLarge += 1 } else { counters.badRequests += 1 }
        c.refused = true
        c.head.lost = true
        let body = Self.errorBody(code, message)
        let head = "HTTP/1.1 \(status) \(reason)\r\ncontent-type: application/json\r\ncontent-length: \(body.count)\r\nconnection: close\r\n\r\n"
        let answer = Array(head.utf8) + body
        _ = answer.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) }
        counters.bytesOut += body.count
        var sink = [UInt8](repeating: 0, count: 64 * 1024)
        var drained = 0
        while drained < 4 << 20 {
            let n = sink.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n <= 0 { break }
            drained += n
        }
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
    }

    /// Whether the client of an event stream has closed its side (or the connection failed).
    private func streamEnded(_ fd: Int32) -> Bool {
        var probe: UInt8 = 0
        let n = recv(fd, &probe, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    /// `{"error":…,"message":…}` as the API's error answers (docs/api.md).
    static func errorBody(_ code: String, _ message: String) -> [UInt8] {
        Array("{\"error\":\"\(code)\",\"message\":\"\(message)\"}\n".utf8)
    }

    private static func method(_ index: Int32) -> HTTPMethod {
        switch index {
        case Int32(LWSHUMETH_GET): return .get
        case Int32(LWSHUMETH_POST): return .post
        case Int32(LWSHUMETH_PUT): return .put
        case Int32(LWSHUMETH_PATCH): return .patch
        case Int32(LWSHUMETH_DELETE): return .delete
        case Int32(LWSHUMETH_OPTIONS): return .options
        case Int32(LWSHUMETH_HEAD): return .head
        default: return .other
        }
    }

    private func header(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        let length = Int(lws_hdr_total_length(wsi, token))
        guard length > 0, length < 8192 else { return nil }
        var buffer = [CChar](repeating: 0, count: length + 1)
        guard lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token) >= 0 else { return nil }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The URI arguments, which lws has already split at '&' and URL-decoded. At most 32 are read.
    private func queryArguments(_ wsi: OpaquePointer) -> [String: String] {
        var query: [String: String] = [:]
        var buffer = [CChar](repeating: 0, count: 512)
        for n in 0..<32 {
            let length = lws_hdr_copy_fragment(wsi, &buffer, Int32(buffer.count), WSI_TOKEN_HTTP_URI_ARGS, Int32(n))
            guard length >= 0 else { break }
            let text = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            query[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return query
    }

    private func peerAddress(_ wsi: OpaquePointer) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        lws_get_peer_simple(wsi, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The protocol callback: a plain function (C function pointer) that finds its `Transport` through the
/// context user pointer.
private func transportCallback(_ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
                               _ input: UnsafeMutableRawPointer?, _ len: Int) -> Int32 {
    guard let wsi, let raw = lws_context_user(lws_get_context(wsi)) else {
        return lws_callback_http_dummy(wsi, reason, user, input, len)
    }
    return Unmanaged<Transport>.fromOpaque(raw).takeUnretainedValue().callback(wsi, reason, user, input, len)
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

/// The lws log sink (one per process): hands each line to the transport whose service thread logged it.
private func lwsLogSink(_ level: Int32, _ line: UnsafePointer<CChar>?) {
    guard let line else { return }
    let text = String(cString: line).trimmingCharacters(in: .whitespacesAndNewlines)
    if let owner = bc_thread_owner_slot().pointee {
        Unmanaged<Transport>.fromOpaque(owner).takeUnretainedValue().lwsLogged(level: level, line: text)
    } else {
        FileHandle.standardError.write(Data("libwebsockets: \(text)\n".utf8))
    }
}

/// The request gate's libev callback (service thread): a plain-TCP HTTP connection has bytes to read.
private func transportGateReadable(_ loop: OpaquePointer?, _ io: UnsafeMutablePointer<ev_io>?, _ events: Int32) {
    guard let io else { return }
    let gate = UnsafeMutableRawPointer(io).assumingMemoryBound(to: bc_gate_t.self)
    guard let owner = gate.pointee.owner else { return }
    Unmanaged<Transport>.fromOpaque(owner).takeUnretainedValue().gateReadable(gate)
}

/// The housekeeping timer callback (lws service thread).
private func transportHousekeeping(_ sul: UnsafeMutablePointer<lws_sorted_usec_list_t>?) {
    guard let sul else { return }
    let timer = UnsafeMutableRawPointer(sul).assumingMemoryBound(to: bc_timer_t.self)
    guard let owner = timer.pointee.owner else { return }
    Unmanaged<Transport>.fromOpaque(owner).takeUnretainedValue().housekeeping()
}

/// Per-WebSocket state (service thread only).
final class WebSocketSession {
    let wsi: OpaquePointer
    var queue = Deque<[UInt8]>()
    var queuedBytes = 0
    /// The message being received.
    var assembler: FrameAssembler
    var closing = false
    var closeStatus: UInt16 = 1000
    var closeReason: [UInt8] = []
    var closeCause = CloseCause.closed
    /// Monotonic nanoseconds when the peer last sent anything (message or PONG).
    var lastHeard: UInt64 = DispatchTime.now().uptimeNanoseconds
    /// Monotonic nanoseconds of the last PING sent.
    var lastPingSent: UInt64 = 0
    /// A PING is to be written at the next writeable callback.
    var pingDue = false
    /// The last buffer handed to lws_write, kept alive under permessage-deflate.
    var lastWritten: [UInt8]?
    /// The bytes of an accepted WebSocket that are not messages or pongs (nil for dialled ones).
    var wire: WireAccount?
    /// The next payload bytes received start a frame.
    var frameStart = true
    /// Look for control frames at the next housekeeping (the peer pinged).
    var checkWire = false

    init(wsi: OpaquePointer, maxMessageBytes: Int) {
        self.wsi = wsi
        assembler = FrameAssembler(maxMessageBytes: maxMessageBytes)
    }
}

/// Where the bytes read from an accepted WebSocket went, to find the control frames (pings) that lws
/// answers without telling: bytes read (the kernel's count) minus those of data frames and pongs.
struct WireAccount {
    /// Stream offset of the first frame byte (after the handshake); -1 when unknown.
    let baseline: Int64
    /// Bytes of frames accounted for: data frames and pongs, headers included, and control frames reported.
    private var accounted: Int64 = 0
    /// Bytes read that may be no control frame for a while: under TLS, a record OpenSSL holds (up to
    /// 16 KiB) and its overhead. (Without TLS, a data frame's header read before its payload may count
    /// as a control frame for a second; the frame's own bytes then make up for it.)
    private let slack: Int64
    private let perFrame: Int64

    init(baseline: Int64, tls: Bool) {
        self.baseline = baseline
        slack = tls ? 17 * 1024 + 64 : 0
        perFrame = tls ? 29 : 0
    }

    /// A frame from the client with `payload` bytes: its header is 2 bytes, 4 for the mask, and 2 or 8
    /// for a longer length.
    mutating func frame(payload: Int) {
        accounted += Int64(6 + (payload < 126 ? 0 : payload < 65536 ? 2 : 8) + payload) + perFrame
    }

    /// Control frames (6 bytes each at least) among the bytes read beyond those accounted for; nil when
    /// there are none. Reported frames count as accounted.
    mutating func unaccountedFrames(consumed: Int64) -> Int? {
        guard baseline >= 0, consumed >= baseline else { return nil }
        let extra = consumed - baseline - accounted - slack
        guard extra >= 6 else { return nil }
        let frames = extra / 6
        accounted += frames * 6
        return Int(frames)
    }
}

/// Per accepted connection (service thread only).
final class AcceptedConnection {
    /// The request gate's watcher (plain-TCP HTTP connections on the libev loop).
    var gate: UnsafeMutablePointer<bc_gate_t>?
    /// Where the gate is in the current request head.
    var head = RequestHead(start: 0)
    /// The gate answered this connection's request: lws must not pass it on.
    var refused = false
    /// It carries an event stream: the watcher only looks for the client's close.
    var streaming = false
}

/// The request gate's view of one request head: the bytes from its first byte up to the blank line
/// that ends the headers, each checked once. A head is bad when it is longer than the limit or its
/// request target holds a NUL byte, raw or as `%00` (lws drops both without an answer).
struct RequestHead {
    enum Verdict { case more, complete, nulInTarget, tooLarge }
    private enum Phase { case method, target, version, headers, done }

    /// Stream offset of the next byte to check.
    private(set) var scanned: UInt64
    /// Bytes of this head so far.
    private(set) var length = 0
    /// The gate cannot follow this connection any more (bytes it never saw were read).
    var lost = false
    var idleWakeups = 0
    private var phase = Phase.method
    private var percent = 0          // 0: none; 1: after '%'; 2: after "%0"
    private var lineLength = 0

    init(start: UInt64) { scanned = start }

    /// The head ended and nothing followed it: the next request starts right after it.
    var resumable: Bool { phase == .done && !lost }

    mutating func feed(_ byte: UInt8, limit: Int) -> Verdict {
        scanned += 1
        length += 1
        if length > limit { return .tooLarge }
        switch phase {
        case .method:
            if byte == UInt8(ascii: " ") { phase = .target }
        case .target:
            if byte == 0 { return .nulInTarget }
            if byte == UInt8(ascii: " ") { phase = .version; break }
            if byte == UInt8(ascii: "\n") { phase = .headers; lineLength = 0; break }
            switch percent {
            case 0:
                if byte == UInt8(ascii: "%") { percent = 1 }
            case 1:
                percent = byte == UInt8(ascii: "0") ? 2 : (byte == UInt8(ascii: "%") ? 1 : 0)
            default:
                if byte == UInt8(ascii: "0") { return .nulInTarget }
                percent = byte == UInt8(ascii: "%") ? 1 : 0
            }
        case .version:
            if byte == UInt8(ascii: "\n") { phase = .headers; lineLength = 0 }
        case .headers:
            if byte == UInt8(ascii: "\n") {
                if lineLength == 0 { phase = .done; return .complete }
                lineLength = 0
            } else if byte != UInt8(ascii: "\r") {
                lineLength += 1
            }
        case .done:
            return .complete
        }
        return .more
    }
}

/// Per-HTTP-response state (service thread only).
final class HTTPSession {
    let wsi: OpaquePointer
    var pending = Deque<[UInt8]>()
    var pendingBytes = 0
    var offset = 0
    var isEventStream = false
    /// The response waits until lws has consumed the request body.
    var awaitingBody = false
    /// A `.deferred` request: waiting for `Transport.respond(to:with:)`.
    var awaitingAnswer = false
    /// Answer a deferred request with headers only (HEAD).
    var headOnly = false
    /// The headers of a deferred answer, written at the next writeable callback.
    var header: (status: Int, contentType: String, length: UInt64, headers: [(String, String)])?

    init(wsi: OpaquePointer) { self.wsi = wsi }
}

/// A value shared between two threads under a lock.
final class LockedBox<T>: @unchecked Sendable {
    // Safe: every access to `storedValue` goes through `lock`.
    private let lock = NSLock()
    private var storedValue: T
    init(_ value: T) { storedValue = value }
    var value: T {
        get { lock.withLock { storedValue } }
        set { lock.withLock { storedValue = newValue } }
    }
}

/// C memory that libwebsockets keeps pointers to for the life of the context: protocols, names,
/// the retry/idle policy, the default-protocol option and the extensions list.
final class CStorage {
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private let protocols: UnsafeMutablePointer<lws_protocols>
    private let retry: UnsafeMutablePointer<lws_retry_bo_t>
    private let pvoDefault: UnsafeMutablePointer<lws_protocol_vhost_options>
    private let pvo: UnsafeMutablePointer<lws_protocol_vhost_options>
    private let extensions: UnsafeMutablePointer<lws_extension>?
    private let iface: UnsafeMutablePointer<CChar>?
    private let port: Int32?
    private let options: UInt64
    private let certificate: UnsafeMutablePointer<CChar>?
    private let privateKey: UnsafeMutablePointer<CChar>?

    init(configuration c: TransportConfiguration) {
        func keep(_ s: String) -> UnsafeMutablePointer<CChar> { strdup(s)! }
        let name = strdup(c.subprotocol)!
        strings.append(name)

        protocols = .allocate(capacity: 2)
        protocols.initialize(repeating: lws_protocols(), count: 2)
        protocols[0].name = UnsafePointer(name)
        protocols[0].callback = transportCallback
        protocols[0].per_session_data_size = MemoryLayout<ConnectionID>.size
        protocols[0].rx_buffer_size = 0

        retry = .allocate(capacity: 1)
        retry.initialize(to: lws_retry_bo_t())
        // lws's own idle policy stays off (zero): `Transport.housekeeping` pings and hangs up instead.
        retry.pointee.secs_since_valid_ping = 0
        retry.pointee.secs_since_valid_hangup = 0

        // Mark the protocol as the vhost default so clients offering no subprotocol land on it.
        let defaultName = strdup("default")!, one = strdup("1")!, empty = strdup("")!
        strings += [defaultName, one, empty]
        pvoDefault = .allocate(capacity: 1)
        pvoDefault.initialize(to: lws_protocol_vhost_options(next: nil, options: nil, name: defaultName, value: one))
        pvo = .allocate(capacity: 1)
        pvo.initialize(to: lws_protocol_vhost_options(next: nil, options: pvoDefault, name: name, value: empty))

        if c.permessageDeflate {
            let extName = strdup("permessage-deflate")!, extOpts = strdup("permessage-deflate; client_no_context_takeover; client_max_window_bits")!
            strings += [extName, extOpts]
            let e = UnsafeMutablePointer<lws_extension>.allocate(capacity: 2)
            e.initialize(repeating: lws_extension(), count: 2)
            e[0].name = UnsafePointer(extName)
            e[0].callback = lws_extension_callback_pm_deflate
            e[0].client_offer = UnsafePointer(extOpts)
            extensions = e
        } else {
            extensions = nil
        }

        var host = c.host
        var opts = UInt64(LWS_SERVER_OPTION_VALIDATE_UTF8)
        if host == "localhost" { host = "127.0.0.1" }
        let isIPv4Literal = host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
        if isIPv4Literal {
            // lws with IPv6 enabled would listen on every interface for an IPv4 literal: force IPv4.
            opts |= UInt64(LWS_SERVER_OPTION_DISABLE_IPV6)
        }
        if host == "0.0.0.0" || host == "::" || host.isEmpty {
            iface = nil
        } else {
            let s = strdup(host)!
            strings.append(s)
            iface = s
        }
        if let cert = c.tlsCertificatePath, let key = c.tlsPrivateKeyPath {
            // https and wss on the same port (OpenSSL through libwebsockets).
            opts |= UInt64(LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT)
            let certC = strdup(cert)!, keyC = strdup(key)!
            strings += [certC, keyC]
            certificate = certC
            privateKey = keyC
        } else {
            certificate = nil
            privateKey = nil
        }
        options = opts
        port = c.port.map { Int32($0) }
    }

    func fill(_ info: inout lws_context_creation_info) {
        info.port = port ?? -1  // CONTEXT_PORT_NO_LISTEN
        info.iface = UnsafePointer(iface)
        info.protocols = UnsafePointer(protocols)
        info.pvo = UnsafePointer(pvo)
        info.extensions = extensions.map { UnsafePointer($0) }
        info.retry_and_idle_policy = UnsafePointer(retry)
        info.options = options
        // No fd_limit_per_thread: below the process's file limit, lws 4.1 then finds the connection of
        // every socket event by a linear scan of its whole fd table (`wsi_from_fd`), which with 10,000
        // peers took most of the service thread. `maxConnections` is enforced in
        // FILTER_NETWORK_CONNECTION instead; lws sizes its table by the file limit (`raiseFileLimit`).
        info.keepalive_timeout = 5
        info.timeout_secs = 10
        info.ssl_cert_filepath = UnsafePointer(certificate)
        info.ssl_private_key_filepath = UnsafePointer(privateKey)
    }

    func free() {
        for s in strings { Foundation.free(s) }
        protocols.deallocate()
        retry.deallocate()
        pvoDefault.deallocate()
        pvo.deallocate()
        extensions?.deallocate()
    }
}
