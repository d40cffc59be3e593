import CLibWebSockets
import DequeModule
import Foundation

/// The HTTP side of `Transport` (service thread): requests, responses (at once, deferred, files),
/// Server-Sent Event streams and their keep-alives. The request gate is in `Transport+RequestGate.swift`.
extension Transport {
    // MARK: Requests

    /// A request head arrived (LWS_CALLBACK_HTTP): asks the handler and starts the answer.
    func handleHTTP(_ wsi: OpaquePointer, idSlot: UnsafeMutablePointer<ConnectionID>,
                    input: UnsafeMutableRawPointer?, len: Int) -> Int32 {
        assert(isOnServiceThread)
        tally.httpRequests += 1
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
            watchEventStream(wsi)
            handler?.eventStreamOpened(id)
            return 0
        }
    }

    private func answerHead(_ wsi: OpaquePointer, id: ConnectionID, _ response: HTTPResponse) -> Int32 {
        assert(isOnServiceThread)
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

    /// The request body was read and discarded (HTTP_BODY): no route takes one.
    func requestBodyRead(_ len: Int) {
        assert(isOnServiceThread)
        tally.bytesIn += len
    }

    /// lws has consumed the request body (HTTP_BODY_COMPLETION): the answer prepared in `handleHTTP`
    /// may go (lws sends nothing before).
    func requestBodyConsumed(_ h: HTTPSession, wsi: OpaquePointer) {
        assert(isOnServiceThread)
        h.awaitingBody = false
        lws_callback_on_writable(wsi)
    }

    /// Answers a request that got `.deferred` (service thread). Only `.body` answers can be deferred;
    /// nothing happens when the connection has closed meanwhile.
    public func respond(to connection: ConnectionID, with response: HTTPResponse) {
        assert(isOnServiceThread)
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

    /// An HTTP connection closed or left for another protocol (CLOSED_HTTP, HTTP_DROP_PROTOCOL).
    func httpClosed(_ id: ConnectionID) {
        assert(isOnServiceThread)
        if let h = https.removeValue(forKey: id), h.isEventStream {
            handler?.eventStreamClosed(id)
        }
    }

    // MARK: Event streams

    /// Queues one Server-Sent Event block (already formatted, ending in a blank line).
    public func sendEvent(_ bytes: [UInt8], to connection: ConnectionID) {
        assert(isOnServiceThread)
        guard let h = https[connection], h.isEventStream else { return }
        h.pending.append(bytes)
        h.pendingBytes += bytes.count
        if h.pending.count > configuration.maxSendQueueMessages || h.pendingBytes > configuration.maxSendQueueBytes {
            tally.slowConsumerDisconnects += 1
            h.pending.removeAll()
            lws_set_timeout(h.wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
            return
        }
        lws_callback_on_writable(h.wsi)
    }

    /// A keep-alive comment on every event stream (housekeeping).
    func sendEventStreamKeepalives() {
        assert(isOnServiceThread)
        let comment = Array(":\n\n".utf8)
        for (id, h) in https where h.isEventStream { sendEvent(comment, to: id) }
    }

    /// Housekeeping, once a second: event streams whose client closed (where the watcher cannot tell:
    /// TLS, the poll loop, or a client that also sent bytes; lws notices only when a write fails), and
    /// the timeout of deferred requests.
    func checkHTTPConnections() {
        assert(isOnServiceThread)
        for h in https.values {
            if h.isEventStream && streamEnded(lws_get_socket_fd(h.wsi)) {
                lws_set_timeout(h.wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC)
            } else if h.awaitingAnswer {
                // lws gives a request 10 s to be answered; a deferred one waits as long as it needs
                // (the handler bounds how many wait).
                lws_set_timeout(h.wsi, PENDING_TIMEOUT_HTTP_CONTENT, 10)
            }
        }
    }

    // MARK: Writing

    private func writeHeaders(_ wsi: OpaquePointer, status: Int, contentType: String, length: UInt64,
                              headers: [(String, String)]) -> Bool {
        assert(isOnServiceThread)
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

    /// The socket can take more of an answer (HTTP_WRITEABLE): a deferred answer's headers, then the
    /// body (or the pending events) 16 KiB at a time.
    func writeHTTP(_ h: HTTPSession, wsi: OpaquePointer) -> Int32 {
        assert(isOnServiceThread)
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
        tally.bytesOut += n
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

    /// The response is complete (also HTTP_FILE_COMPLETION): lws may read the next request on this
    /// connection (keep-alive), which the request gate checks like the first one.
    func completeTransaction(_ wsi: OpaquePointer) -> Int32 {
        assert(isOnServiceThread)
        rearmGate(wsi)
        return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
    }

    // MARK: Reading the request

    /// Whether the request announced a body (Content-Length above zero).
    private static func hasRequestBody(_ wsi: OpaquePointer) -> Bool {
        var buffer = [CChar](repeating: 0, count: 32)
        guard lws_hdr_copy(wsi, &buffer, Int32(buffer.count), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 else { return false }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (Int(text) ?? 1) > 0
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

    /// A request header (also of a WebSocket upgrade), nil when absent or implausibly long.
    func header(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        assert(isOnServiceThread)
        let length = Int(lws_hdr_total_length(wsi, token))
        guard length > 0, length < 8192 else { return nil }
        var buffer = [CChar](repeating: 0, count: length + 1)
        guard lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token) >= 0 else { return nil }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The URI arguments, which lws has already split at '&' and URL-decoded. At most 32 are read.
    private func queryArguments(_ wsi: OpaquePointer) -> [String: String] {
        assert(isOnServiceThread)
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
