/// Why a `RedisConnection` call failed. A Redis error reply is not one of these: it comes back as
/// `RedisReply.error` so callers can tell "Redis said no" from "the connection is gone".
public enum RedisError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Connecting failed (refused, unreachable, name not resolved, connect timeout) or the `SELECT` of the
    /// URL's database was refused. The text says which.
    case connect(String)
    /// The connection broke (closed by the server, reset, read or write timed out in the middle of a
    /// command, or it had already broken before this call). Every later call on the same connection
    /// throws `.io` too: make a new `RedisConnection`.
    case io(String)
    /// hiredis could not parse what the server sent, or a caller passed something Redis cannot take
    /// (an empty command). The connection is unusable after a parse error (later calls throw `.io`).
    case `protocol`(String)

    public var description: String {
        switch self {
        case .connect(let text): return "cannot connect to Redis: \(text)"
        case .io(let text): return "Redis connection broken: \(text)"
        case .protocol(let text): return "Redis protocol error: \(text)"
        }
    }
}
