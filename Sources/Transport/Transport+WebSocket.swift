import CLibWebSockets
import DequeModule
import Foundation

/// The WebSocket side of `Transport` (service thread): dialling, sessions, receiving, send queues,
/// closing, liveness pings and the accounting of control frames.
extension Transport {
    // MARK: Dialling

    /// Dials a WebSocket (service thread). Events arrive as for accepted connections; a failure before the
    /// WebSocket opens is reported by `webSocketConnectFailed`. Returns nil when lws refuses at once.
    public func connect(host: String, port: Int, path: String = "/", subprotocol: String? = nil) -> ConnectionID? {
        assert(isOnServiceThread)
        guard let ctx = currentContext else { return nil }
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

    /// A dialled connection failed before its WebSocket opened (CLIENT_CONNECTION_ERROR).
    func connectFailed(_ id: ConnectionID, input: UnsafeMutableRawPointer?) {
        assert(isOnServiceThread)
        guard sockets[id] == nil else { return }
        let reason = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "connection failed"
        handler?.webSocketConnectFailed(id, reason: reason)
    }

    /// Frees the session slot of a dialled connection (WSI_DESTROY).
    func releaseClientSlot(_ idSlot: UnsafeMutablePointer<ConnectionID>?) {
        assert(isOnServiceThread)
        if let idSlot, clientSlots.remove(idSlot) != nil { idSlot.deallocate() }
    }

    // MARK: Opening and closing

    /// A WebSocket upgrade request (FILTER_PROTOCOL_CONNECTION): non-zero refuses it (a request the
    /// request gate answered, or an origin not allowed).
    func filterWebSocketUpgrade(_ wsi: OpaquePointer) -> Int32 {
        assert(isOnServiceThread)
        guard accepted[wsi]?.refused != true else { return 1 }
        if let allowed = configuration.allowedOrigins {
            let origin = header(wsi, WSI_TOKEN_ORIGIN) ?? ""
            if !allowed.contains(origin) {
                tally.originRejections += 1
                handler?.originRejected(origin)
                return 1
            }
        }
        return 0
    }

    /// An accepted (`accepted` true) or dialled WebSocket opened (ESTABLISHED, CLIENT_ESTABLISHED).
    func webSocketEstablished(_ wsi: OpaquePointer, idSlot: UnsafeMutablePointer<ConnectionID>, accepted isAccepted: Bool) {
        assert(isOnServiceThread)
        if idSlot.pointee == 0 { idSlot.pointee = newID() }
        let id = idSlot.pointee
        let s = WebSocketSession(wsi: wsi, maxMessageBytes: configuration.maxMessageBytes)
        sockets[id] = s
        if isAccepted {
            // Bytes read so far (the handshake) are not frames.
            s.wire = WireAccount(baseline: bc_tcp_consumed(lws_get_socket_fd(wsi)), tls: lws_is_ssl(wsi) != 0)
            s.forwardedFor = header(wsi, WSI_TOKEN_X_FORWARDED_FOR)
            s.framesWrites = !configuration.permessageDeflate
        }
        connectionUpgraded(wsi)
        if configuration.permessageDeflate {
            // Send compressed messages in 16 KiB fragments instead of lws's default 1 KiB ones.
            _ = lws_set_extension_option(wsi, "permessage-deflate", "tx_buf_size", "14")
        }
        tally.webSocketsOpen += 1
        handler?.webSocketOpened(id, remoteAddress: peerAddress(wsi), origin: header(wsi, WSI_TOKEN_ORIGIN))
    }

    /// The `X-Forwarded-For` header of an accepted WebSocket's upgrade request (nil: none, or not an
    /// accepted WebSocket that is open). Whether to believe it is the caller's decision (a trusted proxy).
    public func forwardedFor(_ connection: ConnectionID) -> String? {
        assert(isOnServiceThread)
        return sockets[connection]?.forwardedFor
    }

    /// A WebSocket closed (CLOSED, CLIENT_CLOSED).
    func webSocketClosed(_ id: ConnectionID) {
        assert(isOnServiceThread)
        guard let s = sockets.removeValue(forKey: id) else { return }
        tally.webSocketsOpen -= 1
        handler?.webSocketClosed(id, cause: isStopping ? .shutdown : s.closeCause)
    }

    /// Closes a WebSocket after its queued messages are sent, with a close status (RFC 6455 §7.4).
    /// `stopReading`: read nothing more from it (a flood), and give it one second instead of five.
    public func close(_ connection: ConnectionID, status: UInt16 = 1000, reason: String = "", stopReading: Bool = false) {
        assert(isOnServiceThread)
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

    // MARK: Receiving

    /// Payload bytes of a data frame (RECEIVE, CLIENT_RECEIVE): fragments are reassembled by the
    /// session's `FrameAssembler`; a complete message goes to the handler, unless the socket is closing.
    func receive(_ s: WebSocketSession, id: ConnectionID, wsi: OpaquePointer, input: UnsafeMutableRawPointer?, len: Int) {
        assert(isOnServiceThread)
        tally.bytesIn += len
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
        tally.messagesIn += 1
        switch outcome {
        case .incomplete: break
        case .message(let text): handler?.webSocketReceived(id, text: text)
        case .refused(let problem): handler?.webSocketRejected(id, problem: problem)
        }
    }

    /// A PONG came (RECEIVE_PONG, CLIENT_RECEIVE_PONG): the peer is alive. Messages under way are not
    /// affected (lws reports control frames apart from the data frames they interleave).
    func pongReceived(_ id: ConnectionID, len: Int) {
        assert(isOnServiceThread)
        guard let s = sockets[id] else { return }
        s.lastHeard = DispatchTime.now().uptimeNanoseconds
        s.wire?.frame(payload: len)
    }

    // MARK: Sending

    /// Queues a text message. A receiver whose queue exceeds its bounds is disconnected with cause
    /// `.slowConsumer` and `false` is returned.
    @discardableResult
    public func send(_ text: [UInt8], to connection: ConnectionID) -> Bool {
        assert(isOnServiceThread)
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

    private func disconnectSlowConsumer(_ s: WebSocketSession) {
        assert(isOnServiceThread)
        tally.slowConsumerDisconnects += 1
        s.closing = true
        s.closeCause = .slowConsumer
        s.queue.removeAll()
        s.queuedBytes = 0
        lws_set_timeout(s.wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
    }

    /// The socket can take more (SERVER_WRITEABLE, CLIENT_WRITEABLE): a due PING, then queued messages,
    /// then the close frame once the queue is empty.
    func writeQueued(_ s: WebSocketSession, wsi: OpaquePointer) -> Int32 {
        assert(isOnServiceThread)
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
        guard s.framesWrites ? writeFramed(s, wsi: wsi) : writeEach(s, wsi: wsi) else { return -1 }
        if !s.queue.isEmpty {
            lws_callback_on_writable(wsi)
        } else if s.closing {
            var reason = s.closeReason
            lws_close_reason(wsi, lws_close_status(rawValue: UInt32(s.closeStatus)), &reason, reason.count)
            return -1
        }
        return 0
    }

    /// Writes queued messages one `lws_write` each (lws frames them: dialled WebSockets, whose frames a
    /// client masks, and permessage-deflate), while the socket takes them; false when a write failed.
    private func writeEach(_ s: WebSocketSession, wsi: OpaquePointer) -> Bool {
        assert(isOnServiceThread)
        var sent = 0
        while let message = s.queue.first {
            if sent > 0 && lws_send_pipe_choked(wsi) != 0 { break }
            s.queue.removeFirst()
            s.queuedBytes -= message.count
            guard write(wsi, message, LWS_WRITE_TEXT, keep: configuration.permessageDeflate ? s : nil) else { return false }
            tally.bytesOut += message.count
            tally.messagesOut += 1
            sent += 1
            // Under deflate the buffer must stay alive until the next writeable callback: one write per callback.
            if configuration.permessageDeflate || sent >= 32 { break }
        }
        return true
    }

    /// Writes queued messages of an accepted WebSocket without permessage-deflate as text frames framed
    /// here (RFC 6455 §5.2: FIN set, opcode 1, no mask from a server; the length in 7, 7+16 or 7+64
    /// bits), as many as fit in `writeBatchBytes` (at least one), in one raw lws write. lws keeps what
    /// the socket does not take and sends it before anything written later. False when the write failed.
    private func writeFramed(_ s: WebSocketSession, wsi: OpaquePointer) -> Bool {
        assert(isOnServiceThread)
        var batch: [UInt8] = []
        swap(&batch, &scratch)   // the shared buffer, held uniquely while it is filled
        batch.removeAll(keepingCapacity: true)
        var sent = 0
        while let message = s.queue.first, sent == 0 || batch.count + message.count + 10 <= configuration.writeBatchBytes {
            s.queue.removeFirst()
            s.queuedBytes -= message.count
            batch.append(0x81)
            switch message.count {
            case ..<126:
                batch.append(UInt8(message.count))
            case ..<65536:
                batch.append(126)
                batch.append(UInt8(message.count >> 8))
                batch.append(UInt8(message.count & 0xff))
            default:
                batch.append(127)
                for shift in stride(from: 56, through: 0, by: -8) { batch.append(UInt8((message.count >> shift) & 0xff)) }
            }
            batch.append(contentsOf: message)
            tally.bytesOut += message.count
            tally.messagesOut += 1
            sent += 1
        }
        // LWS_WRITE_RAW (a macro Swift does not import) is LWS_WRITE_HTTP: the bytes as they are.
        let written = sent == 0 ? 0 : batch.withUnsafeMutableBufferPointer { lws_write(wsi, $0.baseAddress, $0.count, LWS_WRITE_HTTP) }
        let complete = Int(written) >= batch.count
        scratch = batch
        return complete
    }

    // MARK: Liveness (housekeeping, once a second)

    /// Pings quiet WebSockets, hangs up dead ones and reports the control frames peers sent.
    ///
    /// Liveness is done here rather than with lws's idle policy because lws 4.1 keeps its timers in one
    /// sorted list and reschedules a connection's timer on every PONG, which costs O(connections) each:
    /// with 10,000 peers that made pings the main source of latency. Here a sweep of all WebSockets
    /// costs O(connections) once a second, and each connection is pinged on its own schedule.
    func checkWebSockets(tick: Int) {
        assert(isOnServiceThread)
        let now = DispatchTime.now().uptimeNanoseconds
        let pingAfter = UInt64(configuration.pingAfterSeconds) * 1_000_000_000
        let hangupAfter = UInt64(configuration.hangupAfterSeconds) * 1_000_000_000
        for (id, s) in sockets where !s.closing {
            // A drained send queue gives its storage back (an idle peer would otherwise keep the capacity
            // its busiest moment needed, about 200 bytes after the messages of a join).
            if s.queue.isEmpty { s.queue = Deque() }
            // Control frames: each second where the peer pinged (see writeQueued), and every socket
            // once in ten seconds anyway (two system calls per socket).
            if s.wire != nil && (s.checkWire || id % 10 == UInt64(tick % 10)) {
                s.checkWire = false
                if let frames = s.wire!.unaccountedFrames(consumed: bc_tcp_consumed(lws_get_socket_fd(s.wsi))) {
                    tally.controlFramesIn += frames
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
    }

    private func peerAddress(_ wsi: OpaquePointer) -> String {
        assert(isOnServiceThread)
        var buffer = [CChar](repeating: 0, count: 128)
        lws_get_peer_simple(wsi, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
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
    /// The upgrade request's `X-Forwarded-For` header (accepted WebSockets; nil when absent).
    var forwardedFor: String?
    /// Messages are framed by `Transport.writeFramed` (accepted WebSockets without permessage-deflate);
    /// otherwise each goes through `lws_write` (dialled ones: a client masks its frames).
    var framesWrites = false

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
