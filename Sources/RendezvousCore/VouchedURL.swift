// The address a peer can be dialled at, as the server vouches for it (docs/protocol.md, "Vouched URLs"):
// pure parsing of IP literals and link URLs, with no name resolution and no Foundation.

/// An IPv4 or IPv6 address parsed from its text, with no name resolution. IPv4-mapped IPv6 addresses
/// (`::ffff:192.0.2.7`) are the IPv4 address they map, so both spellings compare equal.
public struct IPAddress: Equatable, Hashable, Sendable {
    /// 4 bytes (IPv4) or 16 (IPv6), in network order.
    public let bytes: [UInt8]

    /// Parses a literal without brackets: dotted-quad IPv4 (four decimal parts 0...255 without leading
    /// zeros) or RFC 4291 IPv6 text (with `::` and an optional dotted-quad tail; no zone). Nil otherwise,
    /// in particular for host names.
    public init?(_ text: some StringProtocol) {
        let s = Substring(text)
        if let v4 = Self.parseV4(s) {
            bytes = v4
        } else if let v6 = Self.parseV6(s) {
            bytes = v6[0..<10].allSatisfy { $0 == 0 } && v6[10] == 0xff && v6[11] == 0xff ? Array(v6[12...]) : v6
        } else {
            return nil
        }
    }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool { bytes.count == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1] }

    private static func parseV4(_ s: Substring) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard (1...3).contains(p.utf8.count), p.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  p.utf8.count == 1 || p.utf8.first != 0x30, let v = Int(p), v <= 255 else { return nil }
            out.append(UInt8(v))
        }
        return out
    }

    private static func parseV6(_ s: Substring) -> [UInt8]? {
        guard s.utf8.count >= 2, s.utf8.count <= 45 else { return nil }
        // Split at "::" (at most once): the groups before it, and after it.
        let halves = s.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        if halves.count == 2, halves[1].contains("::") { return nil }
        func groups(_ part: Substring, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt8] = []
            for (i, item) in items.enumerated() {
                if allowV4Tail, i == items.count - 1, item.contains(".") {
                    guard let v4 = parseV4(item) else { return nil }
                    out += v4
                    continue
                }
                guard (1...4).contains(item.utf8.count), let v = UInt16(item, radix: 16),
                      item.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) })
                else { return nil }
                out += [UInt8(v >> 8), UInt8(v & 0xff)]
            }
            return out
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowV4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
              head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

/// Why a peer's advertised link URL is not vouched for (the `url-not-vouched` error's message names it).
public enum URLRefusal: String, Error, Equatable, Sendable {
    /// Not a string, longer than `VouchedURL.maxLength`, or not `ws://`/`wss://`.
    case notWebSocketURL = "not a ws:// or wss:// URL of at most 256 characters"
    /// The host is a name, not an IP literal.
    case hostName = "the host is not an IP literal"
    /// `user@` before the host.
    case userInfo = "the URL holds user information"
    /// `?query` or `#fragment`.
    case queryOrFragment = "the URL holds a query or fragment"
    /// A port outside 1...65535, or not decimal digits.
    case badPort = "the port is not 1...65535"
    /// A path character outside letters, digits and `-._~/`.
    case badPath = "the path holds characters other than letters, digits and -._~/"
    /// The host is not the address the peer's server connection came from.
    case addressMismatch = "the host is not the address this connection comes from"
    /// The server does not know where the connection came from (a proxy not in --trusted-proxies).
    case addressUnknown = "the server does not know this connection's address (forwarded by a proxy not in --trusted-proxies)"
}

/// The rule by which the server vouches for a peer's link URL (`capabilities.url` in `register`).
public enum VouchedURL {
    public static let maxLength = 256

    /// `url` itself (unchanged) when it is `ws://` or `wss://` with an IP-literal host equal to
    /// `clientAddress` (the address the peer's server connection came from; "" when unknown), an
    /// optional port 1...65535 and an optional path of letters, digits and `-._~/`, without user
    /// information, query or fragment. A loopback client may name any loopback host (127.0.0.0/8, ::1).
    /// Throws why not otherwise.
    public static func check(_ url: String, clientAddress: String) throws(URLRefusal) -> String {
        guard url.utf8.count <= maxLength else { throw .notWebSocketURL }
        let rest: Substring
        if url.hasPrefix("ws://") { rest = url.dropFirst(5) } else if url.hasPrefix("wss://") { rest = url.dropFirst(6) } else { throw .notWebSocketURL }
        if rest.contains("?") || rest.contains("#") { throw .queryOrFragment }
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        if authority.contains("@") { throw .userInfo }
        let hostText: Substring, portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .hostName }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.isEmpty { portText = nil } else if after.hasPrefix(":") { portText = after.dropFirst() } else { throw .badPort }
        } else {
            let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            hostText = parts[0]
            portText = parts.count == 2 ? parts[1] : nil
        }
        guard let host = IPAddress(hostText), authority.hasPrefix("[") == (host.bytes.count == 16 || hostText.contains(":")) else {
            throw .hostName
        }
        if let portText {
            guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  portText.utf8.first != 0x30, let port = Int(portText), (1...65535).contains(port) else { throw .badPort }
        }
        let pathOK = path.utf8.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x41...0x5a).contains(c) || (0x61...0x7a).contains(c) || [0x2d, 0x2e, 0x5f, 0x7e, 0x2f].contains(c)
        }
        guard pathOK else { throw .badPath }
        guard let client = IPAddress(clientAddress) else { throw .addressUnknown }
        guard host == client || (host.isLoopback && client.isLoopback) else { throw .addressMismatch }
        return url
    }
}

/// The address a client connection comes from, as far as the server can tell (docs/protocol.md,
/// "Vouched URLs"): the socket's peer address, or, when that peer is a trusted proxy, the address the
/// proxy forwarded (`X-Forwarded-For`, read from the right: the first entry that is not itself a trusted
/// proxy, or the leftmost when all are). "" when it cannot be told: a trusted proxy that forwarded nothing usable, or an
/// `X-Forwarded-For` header from a peer that is not a trusted proxy (a proxy the operator did not list:
/// every client behind it would otherwise share the proxy's address).
public func clientAddress(peer: String, forwardedFor: String?, trustedProxies: Set<IPAddress>) -> String {
    guard let peerIP = IPAddress(peer) else { return "" }
    guard trustedProxies.contains(peerIP) else { return forwardedFor == nil ? peer : "" }
    guard let forwardedFor else { return "" }
    let entries = forwardedFor.split(separator: ",").map { $0.trimmedSpaces() }
    for entry in entries.reversed() {
        guard let ip = IPAddress(entry) else { return "" }
        if !trustedProxies.contains(ip) { return String(entry) }
    }
    return entries.first.map(String.init) ?? ""
}

extension Substring {
    /// Without leading and trailing spaces and tabs (no Foundation here).
    fileprivate func trimmedSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
