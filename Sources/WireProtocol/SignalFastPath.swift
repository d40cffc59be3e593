import Ring

extension ClientMessage {
    /// The relay hot path: a `signal` frame in its usual shape, read without building a tree or any
    /// string but `intentId`. nil for every other frame, which `decode` then reads the general way.
    ///
    /// The usual shape: one JSON object whose members are exactly `type`, `to`, `intentId` and `signal`
    /// (any order, each once, whitespace anywhere JSON allows it); keys and the three string values are
    /// printable ASCII without escapes; `type` is "signal", `to` a peer ID of 12 lowercase hex digits,
    /// `intentId` 1 to `maxIntentIdLength` characters, `signal` a valid JSON object (nesting limit as
    /// `decode`'s). For such a frame the result equals `decode`'s; anything else (an error included)
    /// returns nil, so the errors stay `decode`'s. Tests compare the two on generated frames.
    static func decodeUsualSignal(_ bytes: UnsafeBufferPointer<UInt8>, limits: DecodingLimits) -> ClientMessage? {
        var s = JSONScanner(bytes: bytes)
        s.skipWhitespace()
        guard s.peek == UInt8(ascii: "{") else { return nil }
        s.i += 1
        var type: Range<Int>?, to: Range<Int>?, intentId: Range<Int>?, signal: Range<Int>?
        while true {
            s.skipWhitespace()
            guard let key = plainString(&s) else { return nil }
            s.skipWhitespace()
            guard s.peek == UInt8(ascii: ":") else { return nil }
            s.i += 1
            s.skipWhitespace()
            switch key.count {
            case 4 where matches(bytes, key, "type"):
                guard type == nil, let v = plainString(&s) else { return nil }
                type = v
            case 2 where matches(bytes, key, "to"):
                guard to == nil, let v = plainString(&s) else { return nil }
                to = v
            case 8 where matches(bytes, key, "intentId"):
                guard intentId == nil, let v = plainString(&s) else { return nil }
                intentId = v
            case 6 where matches(bytes, key, "signal"):
                let start = s.i
                guard signal == nil, s.peek == UInt8(ascii: "{"), s.value(depth: 2) == .object else { return nil }
                signal = start..<s.i
            default:
                return nil
            }
            s.skipWhitespace()
            guard let c = s.peek else { return nil }
            s.i += 1
            if c == UInt8(ascii: "}") { break }
            guard c == UInt8(ascii: ",") else { return nil }
        }
        s.skipWhitespace()
        guard s.i == bytes.count, let type, let to, let intentId, let signal, matches(bytes, type, "signal"),
              (1...limits.maxIntentIdLength).contains(intentId.count)
        else { return nil }
        guard let id = PeerID(hex: String(decoding: UnsafeBufferPointer(rebasing: bytes[to]), as: UTF8.self)) else { return nil }
        return .signal(to: id, intentId: String(decoding: UnsafeBufferPointer(rebasing: bytes[intentId]), as: UTF8.self),
                       signal: RawJSON(validated: Array(bytes[signal])))
    }

    /// A string token of printable ASCII without escapes at the scanner's position: the range of its
    /// contents (the scanner moves past the closing quote); nil for any other token.
    private static func plainString(_ s: inout JSONScanner) -> Range<Int>? {
        guard s.peek == UInt8(ascii: "\"") else { return nil }
        let start = s.i + 1
        let end = s.plainRun(from: start)
        guard end < s.bytes.count, s.bytes[end] == UInt8(ascii: "\"") else { return nil }
        s.i = end + 1
        return start..<end
    }

    private static func matches(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ word: StaticString) -> Bool {
        guard range.count == word.utf8CodeUnitCount else { return false }
        for k in 0..<range.count where bytes[range.lowerBound + k] != word.utf8Start[k] { return false }
        return true
    }
}
