import Logging
import Transport

/// A plain-http listener that sends every request to the https port (`serve --redirect-port`):
/// `301 Location: https://<Host without port>:<httpsPort><path>`. WebSockets on it are closed.
public final class RedirectServer: TransportHandler, @unchecked Sendable {
    // `@unchecked Sendable`: `transport` is set once before start; the handler methods run on the
    // transport's service thread only and keep no state.
    public let transport: Transport
    let httpsPort: Int

    public init(host: String, port: Int, httpsPort: Int, logger: Logger) {
        var config = TransportConfiguration()
        config.host = host
        config.port = port
        config.maxConnections = 1024
        transport = Transport(configuration: config, logger: logger)
        self.httpsPort = httpsPort
    }

    public func start() throws {
        transport.handler = self
        try transport.start()
    }

    public func stop() { transport.stop() }

    /// The redirect target of a request (pure, for tests).
    static func location(host: String?, httpsPort: Int, path: String, query: [String: String]) -> String {
        var name = host ?? "localhost"
        if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
            name = String(name[...close])                       // [IPv6]:port → [IPv6]
        } else if let colon = name.lastIndex(of: ":") {
            name = String(name[..<colon])
        }
        let port = httpsPort == 443 ? "" : ":\(httpsPort)"
        let q = query.isEmpty ? "" : "?" + query.sorted { $0.key < $1.key }.map { "\(percent($0.key))=\(percent($0.value))" }.joined(separator: "&")
        return "https://\(name)\(port)\(percent(path, keepSlashes: true))\(q)"
    }

    private static func percent(_ s: String, keepSlashes: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(UnicodeScalar(b))
            if c.isLetter && b < 128 || c.isNumber && b < 128 || "-._~".contains(c) || (keepSlashes && c == "/") { out.append(c) }
            else { out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2) }
        }
        return out
    }

    public func httpRequest(_ request: HTTPRequest) -> HTTPResponse {
        let target = Self.location(host: request.host, httpsPort: httpsPort, path: request.path, query: request.query)
        return .body(status: 301, contentType: "text/plain; charset=utf-8", body: Array("moved to \(target)\n".utf8), headers: [("Location", target)])
    }

    public func webSocketOpened(_ connection: ConnectionID, remoteAddress: String, origin: String?) {
        transport.close(connection, status: 1008, reason: "use wss://")
    }
    public func webSocketReceived(_ connection: ConnectionID, text: [UInt8]) {}
    public func webSocketRejected(_ connection: ConnectionID, problem: FrameProblem) {}
    public func webSocketClosed(_ connection: ConnectionID, cause: CloseCause) {}
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
