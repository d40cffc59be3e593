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

/// Why a native peer does not dial the URL of a `dial-me` (docs/protocol.md, "Vouched URLs").
public enum DialRefusal: String, Error, Equatable, Sendable {
    /// The server relayed no vouched URL for the sender (`fromUrl` missing).
    case notVouched = "the sender has no vouched URL"
    /// The signal's `url` is missing or differs from the vouched one.
    case differs = "the dial-me URL is not the sender's vouched URL"
    /// Not a `ws://` URL with an IP-literal host (host names would be resolved on the service thread).
    case unusable = "the vouched URL is not a ws:// URL with an IP-literal host"
    /// A loopback URL while this peer's server is not on loopback: it cannot mean this machine.
    case loopback = "a loopback URL, but the server is not on this machine"
}

/// Where to dial for a `dial-me`: only the sender's vouched URL (`vouched`, the relayed `fromUrl`), and
/// only when the signal names exactly that URL (`asked`); never a URL taken from the signal alone. A
/// loopback host is dialled only when this peer's server (`serverHost`) is itself on loopback.
public func dialMeTarget(asked: String?, vouched: String?, serverHost: String) -> Result<WebSocketURL, DialRefusal> {
    guard let vouched else { return .failure(.notVouched) }
    guard asked == vouched else { return .failure(.differs) }
    guard let target = WebSocketURL(vouched), isIPLiteral(target.host) else { return .failure(.unusable) }
    if isLoopback(target.host) && !(serverHost == "localhost" || isLoopback(serverHost)) { return .failure(.loopback) }
    return .success(target)
}

/// Whether `host` is a loopback IP literal (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
public func isLoopback(_ host: String) -> Bool {
    var v4 = in_addr(), v6 = in6_addr()
    if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
    guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
    let b = withUnsafeBytes(of: v6) { Array($0) }
    if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return b[12] == 127 }
    return b[0..<15].allSatisfy { $0 == 0 } && b[15] == 1
}
