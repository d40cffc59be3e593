import Foundation

/// A `ws://` URL split for `Transport.connect`.
public struct WebSocketURL: Equatable, Sendable {
    /// The host without brackets (an IPv6 literal is `::1`, not `[::1]`).
    public var host: String
    /// 1…65535; 80 when the URL names none.
    public var port: Int
    /// The path and query, starting with "/" ("/" when the URL has none).
    public var path: String

    public init(host: String, port: Int, path: String) {
        self.host = host; self.port = port; self.path = path
    }

    /// Parses `ws://host[:port][/path][?query]` with Foundation's `URLComponents`. Nil for any other
    /// scheme (`wss://` links are not supported yet), an empty host, a port outside 1…65535, or
    /// user information (`ws://user@host/`), which is refused rather than ignored.
    public init?(_ text: String) {
        guard let c = URLComponents(string: text), c.scheme == "ws",
              c.user == nil, c.password == nil, c.fragment == nil,
              var host = c.host, !host.isEmpty else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        let port = c.port ?? 80
        guard (1...65535).contains(port) else { return nil }
        var path = c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath
        if let query = c.percentEncodedQuery { path += "?" + query }
        self.init(host: host, port: port, path: path)
    }
}

/// Whether `host` is an IPv4 or IPv6 literal (no name resolution).
public func isIPLiteral(_ host: String) -> Bool {
    var v4 = in_addr(), v6 = in6_addr()
    return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
}
