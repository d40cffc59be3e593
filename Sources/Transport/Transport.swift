import CLibWebSockets
import Foundation
import Logging

/// An HTTP + WebSocket server on libwebsockets (RFC 6455).
///
/// Threading: one dedicated service thread creates the lws context, runs the event loop (libev on epoll,
/// or lws's poll loop), calls every
/// `TransportHandler` method and owns all connection state. Other threads talk to it only through
/// `post(_:)` (a locked inbox followed by `lws_cancel_service`, the one thread-safe lws call) and `stop()`.
/// Every other method must be called on the service thread, i.e. from a handler callback or a posted job;
/// debug builds assert it (`isOnServiceThread`).
///
/// `@unchecked Sendable` is safe because: the inbox and the stop flag are guarded by `lock`; every other
/// stored property is read and written only on the service thread (the thread is started after `init`,
/// and `stop()` joins it before the object can be released).
///
/// One job per file: this file holds the state and the context's life (start, stop, the service thread,
/// the inbox, the housekeeping timer, writing); `Transport+WebSocket.swift` the WebSocket side,
/// `Transport+HTTP.swift` HTTP answers and event streams, `Transport+RequestGate.swift` accepted
/// connections and the request gate, `TransportCallbacks.swift` the C callbacks (thin dispatchers into
/// these methods), `CStorage.swift` the C memory lws points into, `FrameAssembler.swift` message
/// reassembly (pure).
public final class Transport: @unchecked Sendable {
    public let configuration: TransportConfiguration
    public weak var handler: (any TransportHandler)?
    let logger: Logger

    // Cross-thread state, guarded by `lock`.
    private let lock = NSLock()
    private var inbox: [@Sendable () -> Void] = []
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    private var context: OpaquePointer?
    private var boundPort = 0

    // Service-thread state.
    /// Counters behind `counters`.
    var tally = TransportCounters()
    /// The libev loop lws runs on (nil on lws's poll loop); the request gate's watchers live on it.
    private(set) var evLoop: OpaquePointer?
    private var nextID: ConnectionID = 1
    var sockets: [ConnectionID: WebSocketSession] = [:]
    var https: [ConnectionID: HTTPSession] = [:]
    var scratch: [UInt8] = []
    let pre = Int(bc_lws_pre())
    private let storage: CStorage
    private let housekeepingTimer: UnsafeMutablePointer<bc_timer_t>
    private var housekeepingTicks = 0
    /// Session slots of dialled connections (lws uses them as their user space; freed at WSI_DESTROY).
    var clientSlots = Set<UnsafeMutablePointer<ConnectionID>>()
    /// Every accepted connection still alive that is not a WebSocket (HTTP, event stream), for the
    /// connection limit and for answering requests that libwebsockets gives up on.
    var accepted: [OpaquePointer: AcceptedConnection] = [:]
    /// Connections that became WebSockets, for the connection limit (`connectionUpgraded`).
    var upgraded = Set<OpaquePointer>()

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

    /// Counters the transport keeps (service thread).
    public var counters: TransportCounters {
        assert(isOnServiceThread)
        return tally
    }

    /// The bound TCP port (valid after `start()` returns). Safe from any thread.
    public var port: Int { lock.withLock { boundPort } }

    /// Whether the caller runs on this transport's service thread, for assertions: the thread's owner
    /// slot (a thread-local that `serviceThreadMain` sets for the thread's whole life, and that the lws
    /// log sink reads) names this transport. Lock-free, so safe from any thread.
    public var isOnServiceThread: Bool {
        bc_thread_owner_slot().pointee == Unmanaged.passUnretained(self).toOpaque()
    }

    /// The lws context while the service loop runs (nil before and after).
    var currentContext: OpaquePointer? { lock.withLock { context } }

    /// Whether `stop()` has begun.
    var isStopping: Bool { lock.withLock { stopping } }

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
        assert(!isOnServiceThread, "Transport.sync on the service thread would wait for itself")
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
        assert(!(wasRunning && isOnServiceThread), "Transport.stop on the service thread would wait for itself")
        if wasRunning { finished.wait() }
    }

    // MARK: Service thread

    private func serviceThreadMain(ready: DispatchSemaphore, ok: LockedBox<Bool>) {
        bc_set_thread_name("lws-service")   // for top -H and /proc/<pid>/task/*/comm
        // lws logs on the thread that calls it: the sink finds this transport through the thread's slot.
        // The slot also marks this thread as the service thread (`isOnServiceThread`).
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
        while !isStopping {
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
        assert(isOnServiceThread)
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

    /// Runs the posted work (service thread; lws wakes the loop with EVENT_WAIT_CANCELLED).
    func drainInbox() {
        assert(isOnServiceThread)
        let jobs: [@Sendable () -> Void] = lock.withLock {
            let jobs = inbox
            inbox.removeAll()
            return jobs
        }
        for job in jobs { job() }
    }

    func newID() -> ConnectionID {
        assert(isOnServiceThread)
        defer { nextID += 1 }
        return nextID
    }

    // MARK: Housekeeping timer (service thread)

    private func scheduleHousekeeping(_ ctx: OpaquePointer) {
        assert(isOnServiceThread)
        housekeepingTimer.withMemoryRebound(to: lws_sorted_usec_list_t.self, capacity: 1) { sul in
            lws_sul_schedule(ctx, 0, sul, transportHousekeeping, 1_000_000)
        }
    }

    /// Once a second: WebSocket liveness (`checkWebSockets`), closed and deferred HTTP connections,
    /// Server-Sent Event keep-alives, and every `trimMemorySeconds` the return of free heap memory.
    func housekeeping() {
        assert(isOnServiceThread)
        checkWebSockets(tick: housekeepingTicks)
        checkHTTPConnections()
        housekeepingTicks += 1
        if housekeepingTicks % max(1, configuration.eventStreamKeepaliveSeconds) == 0 { sendEventStreamKeepalives() }
        if configuration.trimMemorySeconds > 0 && housekeepingTicks % configuration.trimMemorySeconds == 0 {
            let start = DispatchTime.now().uptimeNanoseconds
            let released = bc_malloc_trim() == 1
            logger.debug("free heap memory returned", metadata: [
                "released": "\(released)", "ms": "\(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)"])
        }
        if let ctx = currentContext { scheduleHousekeeping(ctx) }
    }

    // MARK: Writing (service thread)

    /// Writes `bytes` with LWS_PRE headroom through the shared scratch buffer (or a kept copy under deflate).
    func write(_ wsi: OpaquePointer, _ bytes: some Collection<UInt8>, _ mode: lws_write_protocol,
               keep: WebSocketSession? = nil) -> Bool {
        assert(isOnServiceThread)
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
    func lwsLogged(level: Int32, line: String) {
        assert(isOnServiceThread)
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
