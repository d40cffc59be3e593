import CLibWebSockets
import Foundation

// The C callbacks of `Transport`: plain functions (C function pointers cannot capture) that find their
// `Transport` through a pointer lws or libev hands back, and dispatch to its methods. They run on the
// service thread; the methods assert it.

/// The protocol callback: finds its `Transport` through the context user pointer and hands each reason
/// to the method that handles it. Whatever no method answers goes on to lws's HTTP dummy callback, as
/// a default protocol's callback must (or requests for missing files hang).
func transportCallback(_ wsi: OpaquePointer?, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
                       _ input: UnsafeMutableRawPointer?, _ len: Int) -> Int32 {
    guard let wsi, let raw = lws_context_user(lws_get_context(wsi)) else {
        return lws_callback_http_dummy(wsi, reason, user, input, len)
    }
    let transport = Unmanaged<Transport>.fromOpaque(raw).takeUnretainedValue()
    // The per-session user space: the connection's ID (read only for the reasons that carry it).
    let idSlot = user?.assumingMemoryBound(to: ConnectionID.self)
    switch reason {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        transport.drainInbox()
        return 0

    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return transport.admitConnection()

    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        transport.connectionAccepted(wsi, idSlot: idSlot)
        return 0

    case LWS_CALLBACK_RAW_ADOPT, LWS_CALLBACK_RAW_RX:
        // lws turns a CONNECT request into a raw socket (proxy support): no route serves one, so close it.
        return -1

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return transport.filterWebSocketUpgrade(wsi)

    case LWS_CALLBACK_ESTABLISHED, LWS_CALLBACK_CLIENT_ESTABLISHED:
        guard let idSlot else { return -1 }
        transport.webSocketEstablished(wsi, idSlot: idSlot, accepted: reason == LWS_CALLBACK_ESTABLISHED)
        return 0

    case LWS_CALLBACK_RECEIVE, LWS_CALLBACK_CLIENT_RECEIVE:
        guard let id = idSlot?.pointee, let s = transport.sockets[id] else { return -1 }
        transport.receive(s, id: id, wsi: wsi, input: input, len: len)
        return 0

    case LWS_CALLBACK_RECEIVE_PONG, LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if let id = idSlot?.pointee { transport.pongReceived(id, len: len) }
        return 0

    case LWS_CALLBACK_SERVER_WRITEABLE, LWS_CALLBACK_CLIENT_WRITEABLE:
        guard let id = idSlot?.pointee, let s = transport.sockets[id] else { return 0 }
        return transport.writeQueued(s, wsi: wsi)

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if let id = idSlot?.pointee { transport.connectFailed(id, input: input) }
        return 0

    case LWS_CALLBACK_WSI_DESTROY:
        transport.releaseClientSlot(idSlot)
        transport.connectionDestroyed(wsi)

    case LWS_CALLBACK_CLOSED, LWS_CALLBACK_CLIENT_CLOSED:
        if let id = idSlot?.pointee { transport.webSocketClosed(id) }
        return 0

    case LWS_CALLBACK_HTTP:
        guard let idSlot else { return -1 }
        return transport.handleHTTP(wsi, idSlot: idSlot, input: input, len: len)

    case LWS_CALLBACK_HTTP_BODY:
        transport.requestBodyRead(len)
        return 0

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        guard let id = idSlot?.pointee, let h = transport.https[id] else { break }
        transport.requestBodyConsumed(h, wsi: wsi)
        return 0

    case LWS_CALLBACK_HTTP_WRITEABLE:
        guard let id = idSlot?.pointee, let h = transport.https[id] else { break }
        return transport.writeHTTP(h, wsi: wsi)

    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return transport.completeTransaction(wsi)

    case LWS_CALLBACK_CLOSED_HTTP, LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if let id = idSlot?.pointee { transport.httpClosed(id) }

    default:
        break
    }
    return lws_callback_http_dummy(wsi, reason, user, input, len)
}

/// The lws log sink (one per process): hands each line to the transport whose service thread logged it.
func lwsLogSink(_ level: Int32, _ line: UnsafePointer<CChar>?) {
    guard let line else { return }
    let text = String(cString: line).trimmingCharacters(in: .whitespacesAndNewlines)
    if let owner = bc_thread_owner_slot().pointee {
        Unmanaged<Transport>.fromOpaque(owner).takeUnretainedValue().lwsLogged(level: level, line: text)
    } else {
        FileHandle.standardError.write(Data("libwebsockets: \(text)\n".utf8))
    }
}

/// The request gate's libev callback: a plain-TCP HTTP connection has bytes to read.
func transportGateReadable(_ loop: OpaquePointer?, _ io: UnsafeMutablePointer<ev_io>?, _ events: Int32) {
    guard let io else { return }
    let gate = UnsafeMutableRawPointer(io).assumingMemoryBound(to: bc_gate_t.self)
    guard let owner = gate.pointee.owner else { return }
    Unmanaged<Transport>.fromOpaque(owner).takeUnretainedValue().gateReadable(gate)
}

/// The housekeeping timer callback.
func transportHousekeeping(_ sul: UnsafeMutablePointer<lws_sorted_usec_list_t>?) {
    guard let sul else { return }
    let timer = UnsafeMutableRawPointer(sul).assumingMemoryBound(to: bc_timer_t.self)
    guard let owner = timer.pointee.owner else { return }
    Unmanaged<Transport>.fromOpaque(owner).takeUnretainedValue().housekeeping()
}
