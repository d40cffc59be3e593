/// The address of a Redis server: `redis://HOST[:PORT][/DB]`.
///
/// - HOST: an IPv4 address (`10.0.0.5`), an IPv6 address in brackets (`[::1]`) or a host name (letters,
///   digits, `-`, `_` and dots; at most 253 characters, labels of 1 to 63).
/// - PORT: 1 to 65535; 6379 when absent.
/// - DB: a database number, 0 to 2147483647, selected with `SELECT` after each connect; absent (or a
///   bare `/`) keeps the server's default, database 0.
///
/// Refused, each with an error that says why: another scheme (`rediss://` is TLS, which this client does
/// not speak; `unix://` sockets), credentials (`redis://user:password@host`: this client sends no `AUTH`,
/// and a password in a URL ends up in process listings and logs; keep Redis on a private network
/// instead), a query (`?...`) or a fragment (`#...`), and anything else after the database number.
public struct RedisURL: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The host as written, without brackets for IPv6 (hiredis resolves names and takes IPv6 as is).
    public let host: String
    /// The TCP port, 1...65535.
    public let port: Int
    /// The database to `SELECT` after connecting, or nil for the server's default.
    public let database: Int?

    /// The default Redis port.
    public static let defaultPort = 6379

    /// Parses `text` (see the type's documentation for the accepted form).
    /// - Throws: `RedisURLError` saying what is wrong with `text`.
    public init(_ text: String) throws(RedisURLError) {
        let scheme = "redis://"
        guard text.lowercased().hasPrefix(scheme) else {
            if let end = text.firstRange(of: "://") {
                throw .unsupportedScheme(String(text[..<end.lowerBound]))
            }
            throw .notARedisURL(text)
        }
        var rest = Substring(text.dropFirst(scheme.count))
        if rest.contains("?") { throw .queryOrFragment }
        if rest.contains("#") { throw .queryOrFragment }
        // The authority ends at the first "/".
        let authority: Substring
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
        }
        rest = authority
        if rest.contains("@") { throw .credentialsNotSupported }
        guard !rest.isEmpty else { throw .missingHost }

        var hostPart: Substring
        var portPart: Substring? = nil
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .invalidHost(String(rest)) }
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidHost(String(rest)) }
                portPart = after.dropFirst()
            }
            guard RedisURL.isIPv6(hostPart) else { throw .invalidHost(String(hostPart)) }
        } else {
            if let colon = rest.firstIndex(of: ":") {
                hostPart = rest[..<colon]
                portPart = rest[rest.index(after: colon)...]
                if portPart!.contains(":") { throw .invalidHost(String(rest) + " (an IPv6 address goes in brackets: [::1])") }
            } else {
                hostPart = rest
            }
            guard !hostPart.isEmpty else { throw .missingHost }
            guard RedisURL.isNameOrIPv4(hostPart) else { throw .invalidHost(String(hostPart)) }
        }

        var port = RedisURL.defaultPort
        if let portPart {
            guard let value = RedisURL.decimal(portPart, max: 65535), value >= 1 else {
                throw .invalidPort(String(portPart))
            }
            port = value
        }

        var database: Int? = nil
        if !path.isEmpty {
            guard let value = RedisURL.decimal(path, max: Int(Int32.max)) else { throw .invalidDatabase(String(path)) }
            database = value
        }
        self.host = String(hostPart)
        self.port = port
        self.database = database
    }

    /// The URL in canonical form: `redis://host:port` plus `/db` when a database is set.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "redis://\(shownHost):\(port)" + (database.map { "/\($0)" } ?? "")
    }

    /// Digits only (1 to 10 of them), at most `max`.
    private static func decimal(_ text: Substring, max: Int) -> Int? {
        guard !text.isEmpty, text.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        guard let value = Int(text), value <= max else { return nil }
        return value
    }

    private static func isNameOrIPv4(_ host: Substring) -> Bool {
        guard host.utf8.count <= 253 else { return false }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) {
            // All-digit labels: must be a dotted IPv4 address.
            return labels.count == 4 && labels.allSatisfy { $0.count <= 3 && Int($0)! <= 255 }
        }
        for label in labels {
            guard (1...63).contains(label.utf8.count) else { return false }
            guard label.utf8.allSatisfy({ isNameByte($0) }) else { return false }
            guard label.first != "-", label.last != "-" else { return false }
        }
        return true
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x5f
    }

    /// Hex groups and colons (at most one "::"), optionally ending in a dotted IPv4 address.
    private static func isIPv6(_ host: Substring) -> Bool {
        guard host.contains(":"), host.utf8.count <= 45 else { return false }
        var text = host
        var groupsBudget = 8
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            let v4 = text[text.index(after: lastColon)...]
            guard isNameOrIPv4(v4), v4.split(separator: ".").allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) else { return false }
            text = text[...lastColon]
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
            groupsBudget = 6
        }
        let doubles = text.ranges(of: "::").count
        guard doubles <= 1 else { return false }
        let groups = text.split(separator: ":", omittingEmptySubsequences: true)
        guard groups.allSatisfy({ (1...4).contains($0.count) && $0.allSatisfy { $0.isHexDigit } }) else { return false }
        // Single colons at either end are not allowed (only as part of "::").
        if text.hasPrefix(":") && !text.hasPrefix("::") { return false }
        if text.hasSuffix(":") && !text.hasSuffix("::") { return false }
        return doubles == 1 ? groups.count < groupsBudget : groups.count == groupsBudget
    }
}

/// Why a text is not a usable `RedisURL`; `description` tells the user what to write instead.
public enum RedisURLError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text does not start with `redis://`.
    case notARedisURL(String)
    /// A scheme other than `redis` (the scheme given).
    case unsupportedScheme(String)
    /// Nothing between `redis://` and the port or path.
    case missingHost
    /// The host (as given) is neither an IPv4 address, a bracketed IPv6 address nor a host name.
    case invalidHost(String)
    /// The port (as given) is not a number in 1...65535.
    case invalidPort(String)
    /// The path (as given, without the leading `/`) is not a database number.
    case invalidDatabase(String)
    /// `user:password@` in the URL.
    case credentialsNotSupported
    /// A `?query` or `#fragment` in the URL.
    case queryOrFragment

    public var description: String {
        let form = "expected redis://HOST[:PORT][/DB], e.g. redis://127.0.0.1:6379 or redis://[::1]:6380/2"
        switch self {
        case .notARedisURL(let text):
            return "'\(text)' is not a Redis URL: \(form)"
        case .unsupportedScheme(let scheme):
            let why = scheme.lowercased() == "rediss" ? " (TLS is not supported; reach Redis over a private network)" : ""
            return "unsupported scheme '\(scheme)://'\(why): \(form)"
        case .missingHost:
            return "the Redis URL has no host: \(form)"
        case .invalidHost(let host):
            return "invalid host '\(host)' in the Redis URL: use an IPv4 address, a host name or an IPv6 address in brackets; \(form)"
        case .invalidPort(let port):
            return "invalid port '\(port)' in the Redis URL: the port is a number from 1 to 65535 (default 6379)"
        case .invalidDatabase(let db):
            return "invalid database '\(db)' in the Redis URL: after the '/' comes only a database number (0, 1, ...)"
        case .credentialsNotSupported:
            return "credentials in the Redis URL are not supported (this client sends no AUTH, and a password in a URL shows up in process listings and logs): keep Redis on a private network and give redis://HOST[:PORT][/DB]"
        case .queryOrFragment:
            return "the Redis URL has a '?' or '#' part, which this client does not understand: \(form)"
        }
    }
}
