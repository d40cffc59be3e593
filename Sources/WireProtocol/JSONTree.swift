/// The module's one tree parser: JSON text to `JSONValue`, built in the scanner's single validating pass
/// (each byte is checked and converted once; nothing is parsed twice).
///
/// - Numbers are correctly rounded binary64 values: an exact fast path (at most 2^53 in the significand
///   and a power of ten up to 10^22, Clinger 1990), otherwise the standard library's conversion. A number
///   is *out of range* when it rounds to infinity, or to zero although one of its digits is not zero;
///   the tree keeps ±infinity or ±0 (as JavaScript's `JSON.parse` does) and reports that it saw one, so
///   the client-message decoder can refuse it (`bad-json`). `-0` is negative zero.
/// - Strings: escapes decoded; `\u` surrogate pairs joined (the scanner refuses lone surrogates).
/// - Duplicate keys in an object: the caller chooses which one is kept (`DuplicateKeys`).
/// - Depth: containers nested deeper than `JSONScanner.maxDepth` are refused, as the scanner does.
struct JSONTreeParser {
    /// Which member an object keeps when a key repeats. Keys are compared as Swift strings (the
    /// dictionary's own equality).
    enum DuplicateKeys {
        /// The last one, as JavaScript's `JSON.parse` does.
        case lastWins
        /// The first one, as Foundation's `JSONDecoder` does (what the client decoder always did).
        case firstWins
    }

    /// One member of a top-level object, read by `members(of:raw:duplicates:)`.
    struct Member {
        /// The decoded key.
        var key: String
        /// The value's bytes, as offsets into the text.
        var range: Range<Int>
        /// The value as a tree; nil for the member named `raw`, which is only validated.
        var tree: JSONValue?
    }

    private var s: JSONScanner
    private let duplicates: DuplicateKeys
    /// Whether an out-of-range number was read (see above) in a value the tree keeps (with `.firstWins`,
    /// not in a repeated key's dropped value; with `.lastWins`, also in a value a later key replaced).
    private var outOfRange = false

    private init(_ bytes: UnsafeBufferPointer<UInt8>, duplicates: DuplicateKeys) {
        s = JSONScanner(bytes: bytes)
        self.duplicates = duplicates
    }

    /// Parses one whole JSON text (any value); nil when it is not exactly one valid JSON value.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, duplicates: DuplicateKeys)
        -> (value: JSONValue, outOfRange: Bool)?
    {
        var p = JSONTreeParser(bytes, duplicates: duplicates)
        p.s.skipWhitespace()
        guard let v = p.value(depth: 1) else { return nil }
        p.s.skipWhitespace()
        return p.s.i == bytes.count ? (v, p.outOfRange) : nil
    }

    /// Reads a top-level object in one pass: every member in text order (duplicates included, for the
    /// caller to judge), each value as a tree except the member whose key is `raw`, which is validated
    /// and left as bytes. Nil when the text is not exactly one valid JSON object.
    /// `outOfRange` covers the trees only, not the raw member.
    static func members(of bytes: UnsafeBufferPointer<UInt8>, raw: String, duplicates: DuplicateKeys)
        -> (members: [Member], outOfRange: Bool)?
    {
        var p = JSONTreeParser(bytes, duplicates: duplicates)
        p.s.skipWhitespace()
        guard p.s.peek == UInt8(ascii: "{") else { return nil }
        p.s.i += 1
        var members: [Member] = []
        members.reserveCapacity(8)
        p.s.skipWhitespace()
        if p.s.peek == UInt8(ascii: "}") {
            p.s.i += 1
        } else {
            while true {
                p.s.skipWhitespace()
                guard let key = p.key() else { return nil }
                let start = p.s.i
                if key == raw {
                    guard p.s.value(depth: 2) != nil else { return nil }
                    members.append(Member(key: key, range: start..<p.s.i, tree: nil))
                } else {
                    guard let v = p.value(depth: 2) else { return nil }
                    members.append(Member(key: key, range: start..<p.s.i, tree: v))
                }
                p.s.skipWhitespace()
                guard let c = p.s.peek else { return nil }
                p.s.i += 1
                if c == UInt8(ascii: "}") { break }
                guard c == UInt8(ascii: ",") else { return nil }
            }
        }
        p.s.skipWhitespace()
        return p.s.i == bytes.count ? (members, p.outOfRange) : nil
    }

    /// A key and its colon, whitespace around the colon skipped; nil when invalid.
    private mutating func key() -> String? {
        guard s.peek == UInt8(ascii: "\""), let key = string() else { return nil }
        s.skipWhitespace()
        guard s.peek == UInt8(ascii: ":") else { return nil }
        s.i += 1
        s.skipWhitespace()
        return key
    }

    private mutating func string() -> String? {
        let start = s.i
        guard s.string() else { return nil }
        return JSONTreeParser.decodeString(UnsafeBufferPointer(rebasing: s.bytes[start..<s.i]))
    }

    /// One value starting at the current byte (a container at `depth`); nil when invalid.
    private mutating func value(depth: Int) -> JSONValue? {
        guard let c = s.peek else { return nil }
        switch c {
        case UInt8(ascii: "{"):
            guard depth <= JSONScanner.maxDepth else { return nil }
            s.i += 1
            var object: [String: JSONValue] = [:]
            s.skipWhitespace()
            if s.peek == UInt8(ascii: "}") { s.i += 1; return .object(object) }
            while true {
                s.skipWhitespace()
                guard let key = key() else { return nil }
                if duplicates == .firstWins, object[key] != nil {
                    // A repeated key's value is validated but dropped, and so are its numbers' ranges
                    // (JSONDecoder never converted them either).
                    let before = outOfRange
                    guard value(depth: depth + 1) != nil else { return nil }
                    outOfRange = before
                } else {
                    guard let v = value(depth: depth + 1) else { return nil }
                    object[key] = v
                }
                s.skipWhitespace()
                guard let c = s.peek else { return nil }
                s.i += 1
                if c == UInt8(ascii: "}") { return .object(object) }
                guard c == UInt8(ascii: ",") else { return nil }
            }
        case UInt8(ascii: "["):
            guard depth <= JSONScanner.maxDepth else { return nil }
            s.i += 1
            var array: [JSONValue] = []
            s.skipWhitespace()
            if s.peek == UInt8(ascii: "]") { s.i += 1; return .array(array) }
            while true {
                s.skipWhitespace()
                guard let v = value(depth: depth + 1) else { return nil }
                array.append(v)
                s.skipWhitespace()
                guard let c = s.peek else { return nil }
                s.i += 1
                if c == UInt8(ascii: "]") { return .array(array) }
                guard c == UInt8(ascii: ",") else { return nil }
            }
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return s.literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return s.literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return s.literal("null") ? .null : nil
        default:
            let start = s.i
            guard s.number() else { return nil }
            let n = JSONTreeParser.number(UnsafeBufferPointer(rebasing: s.bytes[start..<s.i]))
            if n.outOfRange { outOfRange = true }
            return .number(n.value)
        }
    }

    /// Exact powers of ten (every one up to 10^22 is a binary64 value).
    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The correctly rounded binary64 value of a number token the scanner has validated, and whether it
    /// is out of range (rounds to infinity, or to zero although a digit is not zero).
    static func number(_ token: UnsafeBufferPointer<UInt8>) -> (value: Double, outOfRange: Bool) {
        var k = token.startIndex
        let negative = token[k] == UInt8(ascii: "-")
        if negative { k += 1 }
        var significand: UInt64 = 0   // the digits read, while they stay below 2^53
        var exact = true              // every digit went into `significand`
        var nonZero = false
        var exponent = 0
        func digit(_ c: UInt8) -> UInt64? {
            c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? UInt64(c - UInt8(ascii: "0")) : nil
        }
        func add(_ d: UInt64) {
            if d != 0 { nonZero = true }
            // 900_719_925_474_098 × 10 + 9 < 2^53: the significand stays exactly representable.
            if significand <= 900_719_925_474_098 { significand = significand * 10 + d } else { exact = false }
        }
        // `exponent` is only used while `exact` holds; otherwise the standard library converts the token.
        while k < token.endIndex, let d = digit(token[k]) { add(d); k += 1 }
        if k < token.endIndex, token[k] == UInt8(ascii: ".") {
            k += 1
            while k < token.endIndex, let d = digit(token[k]) { add(d); exponent -= 1; k += 1 }
        }
        if k < token.endIndex {  // e or E
            k += 1
            var sign = 1
            if token[k] == UInt8(ascii: "-") { sign = -1; k += 1 } else if token[k] == UInt8(ascii: "+") { k += 1 }
            var e = 0
            while k < token.endIndex, let d = digit(token[k]) { e = min(e * 10 + Int(d), 1_000_000); k += 1 }
            exponent += sign * e
        }
        if !nonZero { return (negative ? -0.0 : 0.0, false) }
        if exact, (-22...22).contains(exponent) {
            let m = Double(significand)
            let v = exponent < 0 ? m / powersOfTen[-exponent] : m * powersOfTen[exponent]
            return (negative ? -v : v, false)
        }
        let v = Double(String(decoding: token, as: UTF8.self)) ?? .nan
        return (v, v.isInfinite || v == 0)
    }

    /// Decodes a string token (quotes included) that the scanner has validated.
    static func decodeString(_ token: UnsafeBufferPointer<UInt8>) -> String {
        let inner = UnsafeBufferPointer(rebasing: token[(token.startIndex + 1)..<(token.endIndex - 1)])
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(inner.count)
        var k = inner.startIndex
        func hex4(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for j in at..<(at + 4) { v = v << 4 | UInt32(JSONScanner.hexValue(inner[j]) ?? 0) }
            return v
        }
        while k < inner.endIndex {
            let c = inner[k]
            guard c == UInt8(ascii: "\\") else { out.append(c); k += 1; continue }
            let e = inner[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var scalar = hex4(k)
                k += 4
                if (0xD800..<0xDC00).contains(scalar), k + 6 <= inner.endIndex, inner[k] == UInt8(ascii: "\\"),
                   inner[k + 1] == UInt8(ascii: "u") {
                    let low = hex4(k + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        k += 6
                    }
                }
                // A lone surrogate (which the scanner refuses anyway) would become U+FFFD.
                UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}") { out.append($0) }
            default: out.append(e)  // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension JSONValue {
    /// Parses JSON text (RFC 8259, any value) with the module's tree parser; nil when it is not exactly
    /// one valid JSON value. Duplicate keys: the last one wins, as in JavaScript's `JSON.parse`. Numbers
    /// beyond binary64's range become ±infinity (and ±0 below it), as in `JSON.parse`.
    public init?(parsing text: [UInt8]) {
        guard let v = text.withUnsafeBufferPointer({ JSONTreeParser.parse($0, duplicates: .lastWins) }) else {
            return nil
        }
        self = v.value
    }
}
