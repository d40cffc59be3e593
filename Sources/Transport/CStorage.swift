import CLibWebSockets
import Foundation

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
        protocols[0].rx_buffer_size = c.receiveBufferBytes > 0 ? max(128, c.receiveBufferBytes) : 0
        // Otherwise lws cuts every socket write at rx_buffer_size and keeps the rest for the next POLLOUT.
        protocols[0].tx_packet_size = max(1024, c.writeBatchBytes)

        retry = .allocate(capacity: 1)
        retry.initialize(to: lws_retry_bo_t())
        // lws's own idle policy stays off (zero): `Transport.checkWebSockets` pings and hangs up instead.
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
