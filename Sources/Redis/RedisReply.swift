/// One reply of the Redis protocol (RESP2), as hiredis parses it. A value: no connection behind it.
public enum RedisReply: Equatable, Hashable, Sendable {
    /// A simple string (`+OK`, `+PONG`, the `TYPE` of a key).
    case status(String)
    /// An error reply (`-ERR ...`, `-WRONGTYPE ...`): Redis refused the command; the connection is fine.
    case error(String)
    /// An integer (`:42`).
    case integer(Int)
    /// A bulk string: any bytes, including 0x00 and invalid UTF-8.
    case bulk([UInt8])
    /// A null bulk string or null array (`GET` of a missing key, `XREAD BLOCK` timing out).
    case null
    /// An array of replies (nested as Redis sends it).
    indirect case array([RedisReply])

    /// The text of a `.status`, or of a `.bulk` holding valid UTF-8; nil otherwise.
    public var string: String? {
        switch self {
        case .status(let s): return s
        case .bulk(let bytes): return String(validating: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The bytes of a `.bulk` or `.status`; nil otherwise.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): return bytes
        case .status(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// The value of an `.integer`, or of a `.bulk` holding a decimal integer (what `GET` of a counter
    /// returns); nil otherwise.
    public var int: Int? {
        switch self {
        case .integer(let v): return v
        case .bulk(let bytes): return String(validating: bytes, as: UTF8.self).flatMap { Int($0) }
        default: return nil
        }
    }

    /// The elements of an `.array`; nil otherwise (also for `.null`).
    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The message of an `.error`; nil otherwise.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// True for `.null`.
    public var isNull: Bool { self == .null }

    /// True for `.status("OK")`.
    public var isOK: Bool { self == .status("OK") }
}
