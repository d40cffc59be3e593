import CHiredis

/// One blocking TCP connection to a Redis server (hiredis underneath), for commands, pipelines and
/// Pub/Sub.
///
/// Thread rules: a connection is used from one thread at a time and is deliberately not `Sendable`
/// (hiredis contexts are not thread-safe). Make it on the thread that uses it, or hand it over once with
/// `sending`; a blocked call (`nextReply`, `XREAD BLOCK`) cannot be woken from another thread, so loops
/// that must stop set a read timeout and check their stop flag between calls. Use separate connections
/// for a SUBSCRIBE reader, for blocking reads and for writes: a connection in SUBSCRIBE mode only takes
/// (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING and QUIT, and a blocking read holds its connection.
///
/// Errors: Redis refusing a command is a reply, `RedisReply.error(...)`, never a throw. A throw is a
/// `RedisError`: `.connect` from `init`/`reconnect`, `.io` once the connection is broken (and from every
/// later call until `reconnect()`), `.protocol` for unparsable server data or an empty command.
/// SIGPIPE is blocked on the calling thread during writes, so a closed peer is an `.io` error, not a
/// dead process.
public final class RedisConnection {
    /// The server this connection talks to (and `reconnect()` connects to again).
    public let url: RedisURL
    /// The connect timeout in seconds (`init`, `reconnect()`).
    public let connectTimeout: Double
    /// The current read/write timeout in seconds; nil for none (block until the server answers).
    public private(set) var readTimeout: Double?

    private var context: UnsafeMutablePointer<redisContext>?
    private var brokenReason: String?

    /// Connects to `url` (resolving names, IPv4 or IPv6), then sets the read/write timeout and `SELECT`s
    /// the URL's database if it has one.
    /// - Parameters:
    ///   - connectTimeout: seconds to wait for the TCP connection (> 0).
    ///   - readTimeout: seconds any later read or write of the socket may wait (> 0), or nil for none.
    ///     A command whose reply takes longer breaks the connection (`.io`); `nextReply()` returns nil
    ///     instead. With `XREAD BLOCK ms`, keep it above the block time.
    /// - Throws: `RedisError.connect` with hiredis's reason (or Redis's refusal of `SELECT`).
    /// - Precondition: the timeouts are positive and finite.
    public init(url: RedisURL, connectTimeout: Double = 5, readTimeout: Double? = nil) throws(RedisError) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        try open()
    }

    deinit {
        bc_redis_free(context)
    }

    /// True once the connection broke (or `close()` was called); every call but `reconnect()` then throws
    /// `RedisError.io`.
    public var isBroken: Bool { brokenReason != nil }

    /// Closes this connection and connects again with the same URL and timeouts (subscriptions and the
    /// state of the old connection are gone: re-subscribe). Usable on a broken or a healthy connection.
    /// - Throws: `RedisError.connect`; the connection stays broken then.
    public func reconnect() throws(RedisError) {
        bc_redis_free(context)
        context = nil
        brokenReason = "reconnecting"
        try open()
    }

    /// Closes the connection; later calls throw `.io("closed")` until `reconnect()`.
    public func close() {
        bc_redis_free(context)
        context = nil
        brokenReason = "closed"
    }

    /// Sets the socket's read and write timeout in seconds (> 0), or none with nil. See `init`.
    /// - Throws: `RedisError.io` when the connection is broken or the socket refuses the option.
    public func setReadTimeout(seconds: Double?) throws(RedisError) {
        let context = try live()
        if bc_redis_set_timeout(context, RedisConnection.milliseconds(seconds)) != 0 {
            throw fail(context, "setting the read timeout")
        }
        readTimeout = seconds
    }

    /// Sends one command and waits for its reply. `args` are the command and its arguments, each sent as
    /// its UTF-8 bytes (e.g. `["SET", "k", "v", "PX", "3000"]`).
    /// - Returns: the reply; a Redis error reply is `.error(message)`.
    /// - Throws: `RedisError.io` (connection broken or timed out: it is unusable now), `.protocol`
    ///   (empty `args`, unparsable reply).
    public func command(_ args: [String]) throws(RedisError) -> RedisReply {
        try command(bytes: args.map { Array($0.utf8) })
    }

    /// Sends one command given as raw byte strings (binary-safe: values may hold 0x00 or any byte) and
    /// waits for its reply. Errors as `command(_:)`.
    public func command(bytes args: [[UInt8]]) throws(RedisError) -> RedisReply {
        let context = try live()
        guard !args.isEmpty else { throw .protocol("empty command") }
        let reply: UnsafeMutablePointer<redisReply>? = RedisConnection.withArgv(args) { argc, argv, lens in
            bc_redis_command(context, argc, argv, lens)
        }
        guard let reply else { throw fail(context, "command \(RedisConnection.name(args))") }
        defer { bc_reply_free(reply) }
        return RedisConnection.convert(UnsafePointer(reply))
    }

    /// Sends several commands in one write, then reads their replies: one round trip. Replies are in
    /// command order; each may be `.error(...)` on its own (there is no transaction: use MULTI/EXEC
    /// inside the pipeline for one).
    /// - Throws: as `command(_:)`; after a throw the connection is broken (replies of the rest are lost).
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        try pipeline(bytes: commands.map { $0.map { Array($0.utf8) } })
    }

    /// `pipeline(_:)` with commands as raw byte strings.
    public func pipeline(bytes commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        let context = try live()
        guard !commands.contains(where: { $0.isEmpty }) else { throw .protocol("empty command in a pipeline") }
        for args in commands {
            let status = RedisConnection.withArgv(args) { argc, argv, lens in
                bc_redis_append(context, argc, argv, lens)
            }
            if status != 0 { throw fail(context, "queueing \(RedisConnection.name(args))") }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for args in commands {
            var reply: UnsafeMutablePointer<redisReply>? = nil
            if bc_redis_get_reply(context, &reply, nil) != 0 || reply == nil {
                bc_reply_free(reply)
                throw fail(context, "pipeline reply to \(RedisConnection.name(args))")
            }
            replies.append(RedisConnection.convert(UnsafePointer(reply!)))
            bc_reply_free(reply)
        }
        return replies
    }

    /// Waits for the next message pushed to a connection in SUBSCRIBE mode (after `SUBSCRIBE`/`PSUBSCRIBE`
    /// through `command`), up to the read timeout. Messages come in the order the server sent them:
    /// `.array([.bulk("message"), .bulk(channel), .bulk(payload)])`, or `["pmessage", pattern, channel,
    /// payload]`, and the confirmations of later (un)subscribe commands (`["subscribe", channel, count]`).
    /// - Returns: the message, or nil when the read timeout passed with no complete message (the
    ///   connection stays usable: call again; bytes of a message partly received are kept).
    /// - Throws: `RedisError.io` when the connection broke, `.protocol` on unparsable data.
    public func nextReply() throws(RedisError) -> RedisReply? {
        let context = try live()
        var reply: UnsafeMutablePointer<redisReply>? = nil
        var timedOut: Int32 = 0
        if bc_redis_get_reply(context, &reply, &timedOut) != 0 {
            bc_reply_free(reply)
            throw fail(context, "waiting for a message")
        }
        if timedOut != 0 { return nil }
        guard let reply else { throw fail(context, "waiting for a message (no reply)") }
        defer { bc_reply_free(reply) }
        return RedisConnection.convert(UnsafePointer(reply))
    }

    // MARK: - Internals

    private func open() throws(RedisError) {
        precondition(connectTimeout > 0 && connectTimeout.isFinite, "connectTimeout must be positive")
        let ms = RedisConnection.milliseconds(connectTimeout)
        guard let context = bc_redis_connect(url.host, Int32(url.port), ms) else {
            throw .connect("\(url): out of memory")
        }
        if bc_redis_err(context) != 0 {
            let reason = String(cString: bc_redis_errstr(context))
            bc_redis_free(context)
            throw .connect("\(url): \(reason)")
        }
        self.context = context
        brokenReason = nil
        do throws(RedisError) {
            try setReadTimeout(seconds: readTimeout)
            if let db = url.database {
                let reply = try command(["SELECT", String(db)])
                guard reply.isOK else { throw RedisError.connect("\(url): SELECT \(db) refused: \(reply)") }
            }
        } catch {
            close()
            brokenReason = "\(error)"
            if case .connect = error { throw error }
            throw .connect("\(url): \(error)")
        }
    }

    private func live() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let brokenReason { throw .io("connection to \(url) is unusable (\(brokenReason))") }
        guard let context else { throw .io("connection to \(url) is not open") }
        return context
    }

    /// Marks the connection broken after a failed hiredis call, frees it and returns the error to throw.
    private func fail(_ context: UnsafeMutablePointer<redisContext>, _ doing: String) -> RedisError {
        let code = bc_redis_err(context)
        var text = String(cString: bc_redis_errstr(context))
        if text.isEmpty { text = "error \(code)" }
        let reason = "\(doing): \(text)"
        bc_redis_free(context)
        self.context = nil
        brokenReason = reason
        // REDIS_ERR_PROTOCOL is 4 (hiredis read.h); everything else (I/O, EOF, OOM, other) is I/O.
        return code == 4 ? .protocol(reason) : .io(reason)
    }

    /// Seconds to whole milliseconds, rounding up (0 for nil: no timeout).
    private static func milliseconds(_ seconds: Double?) -> Int {
        guard let seconds else { return 0 }
        precondition(seconds > 0 && seconds.isFinite, "timeouts must be positive and finite")
        return max(1, Int((seconds * 1000).rounded(.up)))
    }

    /// The command's name for error texts (its first argument, never the values).
    private static func name(_ args: [[UInt8]]) -> String {
        args.first.map { String(decoding: $0.prefix(32), as: UTF8.self) } ?? "(empty)"
    }

    /// Calls `body` with hiredis's argument vector for `args`: argc, argv pointers and their lengths,
    /// all pointing into one buffer that lives for the call.
    private static func withArgv<R>(
        _ args: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(args.reduce(1) { $0 + $1.count })
        var offsets: [Int] = []
        var lens: [Int] = []
        for arg in args {
            offsets.append(buffer.count)
            lens.append(arg.count)
            buffer.append(contentsOf: arg)
        }
        buffer.append(0)   // never empty, so the base address exists even when every argument is empty
        return buffer.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lens.withUnsafeBufferPointer { lensBuffer in
                    body(Int32(args.count), argvBuffer.baseAddress!, lensBuffer.baseAddress!)
                }
            }
        }
    }

    /// A hiredis reply tree to a `RedisReply` (copies every byte; the caller frees the tree).
    private static func convert(_ reply: UnsafePointer<redisReply>) -> RedisReply {
        func bytes() -> [UInt8] {
            var len = 0
            guard let str = bc_reply_str(reply, &len), len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: str, count: len))
        }
        switch bc_reply_type(reply) {
        case 1: return .bulk(bytes())                                        // REDIS_REPLY_STRING
        case 2:                                                              // REDIS_REPLY_ARRAY
            let count = bc_reply_elements(reply)
            var elements: [RedisReply] = []
            elements.reserveCapacity(count)
            for i in 0..<count { elements.append(convert(bc_reply_element(reply, i))) }
            return .array(elements)
        case 3: return .integer(Int(truncatingIfNeeded: bc_reply_integer(reply)))  // REDIS_REPLY_INTEGER
        case 5: return .status(String(decoding: bytes(), as: UTF8.self))     // REDIS_REPLY_STATUS
        case 6: return .error(String(decoding: bytes(), as: UTF8.self))      // REDIS_REPLY_ERROR
        default: return .null                                                // REDIS_REPLY_NIL
        }
    }
}

@available(*, unavailable, message: "a RedisConnection is used from one thread at a time; hand it over with `sending`")
extension RedisConnection: Sendable {}
