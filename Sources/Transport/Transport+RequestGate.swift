import CLibWebSockets
import Foundation

/// Accepted connections of `Transport` (service thread): the connection limit, and the request gate
/// that answers the requests libwebsockets would drop without a word.
///
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
extension Transport {
    // MARK: Accepted connections

    /// A new TCP connection, before any protocol (FILTER_NETWORK_CONNECTION): non-zero refuses it. The
    /// connection limit holds for HTTP and WebSocket alike.
    func admitConnection() -> Int32 {
        assert(isOnServiceThread)
        if accepted.count + upgraded.count >= configuration.maxConnections {
            tally.connectionLimitRejections += 1
            return 1
        }
        return 0
    }

    /// lws made a connection object for an accepted socket (SERVER_NEW_CLIENT_INSTANTIATED): it is
    /// counted, and on the libev loop without TLS the gate starts watching it.
    func connectionAccepted(_ wsi: OpaquePointer, idSlot: UnsafeMutablePointer<ConnectionID>?) {
        assert(isOnServiceThread)
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
        tally.connectionsOpen = accepted.count + upgraded.count
    }

    /// A connection became a WebSocket: no more request heads on it, so the gate's state goes and only
    /// its place in the connection count stays (about 100 bytes less per peer).
    func connectionUpgraded(_ wsi: OpaquePointer) {
        assert(isOnServiceThread)
        guard let c = accepted.removeValue(forKey: wsi) else { return }
        releaseGate(of: c)
        upgraded.insert(wsi)
    }

    /// lws is freeing a connection object (WSI_DESTROY): an accepted connection is gone.
    func connectionDestroyed(_ wsi: OpaquePointer) {
        assert(isOnServiceThread)
        if let c = accepted.removeValue(forKey: wsi) {
            releaseGate(of: c)
        } else if upgraded.remove(wsi) == nil {
            return
        }
        tally.connectionsOpen = accepted.count + upgraded.count
    }

    // MARK: The gate's watcher

    /// Stops and frees a connection's watcher: it will carry no more request heads.
    func releaseGate(of c: AcceptedConnection) {
        assert(isOnServiceThread)
        guard let gate = c.gate else { return }
        if let loop = evLoop { bc_gate_stop(loop, gate) }
        gate.deallocate()
        c.gate = nil
    }

    /// A response is complete: the gate checks the next request head, if nothing but this head came.
    func rearmGate(_ wsi: OpaquePointer) {
        assert(isOnServiceThread)
        if let c = accepted[wsi], let gate = c.gate, let loop = evLoop, c.head.resumable {
            c.head = RequestHead(start: c.head.scanned)
            bc_gate_start(loop, gate, lws_get_socket_fd(wsi), transportGateReadable)
        }
    }

    /// The connection now carries an event stream: lws does not notice that a stream's client went
    /// away until a write fails, so the watcher looks for the socket's close.
    func watchEventStream(_ wsi: OpaquePointer) {
        assert(isOnServiceThread)
        if let c = accepted[wsi], let gate = c.gate, let loop = evLoop {
            c.streaming = true
            bc_gate_start(loop, gate, lws_get_socket_fd(wsi), transportGateReadable)
        }
    }

    /// The watcher's socket is readable (see the comment of this extension).
    func gateReadable(_ gatePointer: UnsafeMutablePointer<bc_gate_t>) {
        assert(isOnServiceThread)
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
    /// the answer), ends the sending side at once (the client reads the answer, then the end of the
    /// stream, whatever lws's timers do next) and has lws close the connection.
    private func refuse(_ wsi: OpaquePointer, _ c: AcceptedConnection, gate: UnsafeMutablePointer<bc_gate_t>, fd: Int32,
                        status: Int, reason: String, code: String, message: String) {
        assert(isOnServiceThread)
        if let loop = evLoop { bc_gate_stop(loop, gate) }
        if status == 431 { tally.headersTooLarge += 1 } else { tally.badRequests += 1 }
        c.refused = true
        c.head.lost = true
        let body = Self.errorBody(code, message)
        let head = "HTTP/1.1 \(status) \(reason)\r\ncontent-type: application/json\r\ncontent-length: \(body.count)\r\nconnection: close\r\n\r\n"
        let answer = Array(head.utf8) + body
        _ = answer.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) }
        tally.bytesOut += body.count
        var sink = [UInt8](repeating: 0, count: 64 * 1024)
        var drained = 0
        while drained < 4 << 20 {
            let n = sink.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n <= 0 { break }
            drained += n
        }
        // lws may set a keep-alive timeout on this connection after ours (its transaction of the previous
        // request completing): the FIN does not depend on which of them wins.
        Glibc.shutdown(fd, Int32(SHUT_WR))
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
    }

    /// Whether the client of an event stream has closed its side (or the connection failed).
    func streamEnded(_ fd: Int32) -> Bool {
        var probe: UInt8 = 0
        let n = recv(fd, &probe, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    /// `{"error":…,"message":…}` as the API's error answers (docs/api.md).
    static func errorBody(_ code: String, _ message: String) -> [UInt8] {
        Array("{\"error\":\"\(code)\",\"message\":\"\(message)\"}\n".utf8)
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
