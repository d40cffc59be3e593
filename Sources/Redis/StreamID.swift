/// The ID of a Redis Stream entry, `MS-SEQ`: the server's clock in milliseconds when the entry was added
/// and a sequence number among entries of the same millisecond. IDs of one stream strictly increase.
public struct StreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Milliseconds since the Unix epoch (the Redis server's clock).
    public var ms: UInt64
    /// The sequence number within `ms`.
    public var seq: UInt64

    public init(ms: UInt64, seq: UInt64) {
        self.ms = ms
        self.seq = seq
    }

    /// `0-0`: before every entry (`XREAD ... STREAMS key 0-0` reads from the start).
    public static let zero = StreamID(ms: 0, seq: 0)

    /// Parses `MS-SEQ` (two decimal numbers that fit UInt64, e.g. `1700000000000-3`); nil for anything
    /// else, including the special IDs `*`, `$`, `-`, `+` and the bare `MS` form.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2,
              parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
              let ms = UInt64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
        self.init(ms: ms, seq: seq)
    }

    /// Parses the bytes of a bulk reply holding an ID.
    public init?(bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        self.init(text)
    }

    /// `MS-SEQ`, the form Redis takes as an argument.
    public var text: String { "\(ms)-\(seq)" }

    public var description: String { text }

    public static func < (a: StreamID, b: StreamID) -> Bool {
        (a.ms, a.seq) < (b.ms, b.seq)
    }
}
