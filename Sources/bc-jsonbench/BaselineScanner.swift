// BASELINE, for the benchmark only: the validating scanner as it was before the one JSON path (the part
// of WireProtocol's JSONScanner.swift at commit c88e7ac that the old decoder used). See Baseline.swift.

/// A validating, non-allocating JSON scanner (RFC 8259) for the relay hot path.
///
/// It checks that a text is one well-formed JSON value (UTF-8 included) and reports the members of a
/// top-level object as byte ranges, so the server can read `type`, `to` and `intentId` and forward the
/// opaque `signal` object byte for byte, without building a tree or re-encoding it.
/// Nesting deeper than `maxDepth` is refused (bounded stack for hostile input).
struct BaselineScanner {
    enum Kind: Equatable { case object, array, string, number, literal }

    struct Member {
        var key: Range<Int>      // the key's string token, quotes included
        var value: Range<Int>    // the value's bytes
        var kind: Kind
    }

    static let maxDepth = 64

    /// The top-level object's members, or nil if `bytes` is not one valid JSON object.
    static func topLevelMembers(_ bytes: UnsafeBufferPointer<UInt8>) -> [Member]? {
        var s = BaselineScanner(bytes: bytes)
        s.skipWhitespace()
        guard s.peek == UInt8(ascii: "{") else { return nil }
        var members: [Member] = []
        guard s.object(depth: 1, members: &members) else { return nil }
        s.skipWhitespace()
        return s.i == bytes.count ? members : nil
    }

    /// Whether `bytes` is exactly one valid JSON value (any kind).
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var s = BaselineScanner(bytes: bytes)
        s.skipWhitespace()
        guard s.value(depth: 1) != nil else { return false }
        s.skipWhitespace()
        return s.i == bytes.count
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
            for j in at..<(at + 4) { v = v << 4 | UInt32(hexValue(inner[j])!) }
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
                // A lone surrogate becomes U+FFFD, as JSON.parse + TextEncoder would produce.
                out.append(contentsOf: Array(String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8))
            default: out.append(e)  // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Scanner

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func value(depth: Int) -> Kind? {
        guard let c = peek else { return nil }
        switch c {
        case UInt8(ascii: "{"):
            var ignored: [Member] = []
            return object(depth: depth, members: &ignored, record: false) ? .object : nil
        case UInt8(ascii: "["): return array(depth: depth) ? .array : nil
        case UInt8(ascii: "\""): return string() ? .string : nil
        case UInt8(ascii: "t"): return literal("true") ? .literal : nil
        case UInt8(ascii: "f"): return literal("false") ? .literal : nil
        case UInt8(ascii: "n"): return literal("null") ? .literal : nil
        default: return number() ? .number : nil
        }
    }

    private mutating func object(depth: Int, members: inout [Member], record: Bool = true) -> Bool {
        guard depth <= BaselineScanner.maxDepth else { return false }
        i += 1  // {
        skipWhitespace()
        if peek == UInt8(ascii: "}") { i += 1; return true }
        while true {
            skipWhitespace()
            let keyStart = i
            guard peek == UInt8(ascii: "\""), string() else { return false }
            let key = keyStart..<i
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { return false }
            i += 1
            skipWhitespace()
            let valueStart = i
            guard let kind = value(depth: depth + 1) else { return false }
            if record { members.append(Member(key: key, value: valueStart..<i, kind: kind)) }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"): i += 1; return true
            default: return false
            }
        }
    }

    private mutating func array(depth: Int) -> Bool {
        guard depth <= BaselineScanner.maxDepth else { return false }
        i += 1  // [
        skipWhitespace()
        if peek == UInt8(ascii: "]") { i += 1; return true }
        while true {
            skipWhitespace()
            guard value(depth: depth + 1) != nil else { return false }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "]"): i += 1; return true
            default: return false
            }
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    private mutating func digits() -> Int {
        let start = i
        while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        return i - start
    }

    private mutating func number() -> Bool {
        if peek == UInt8(ascii: "-") { i += 1 }
        if peek == UInt8(ascii: "0") {
            i += 1
        } else {
            guard let c = peek, (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(c) else { return false }
            _ = digits()
        }
        if peek == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { return false }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }

    /// A string token: escapes checked, control characters refused, UTF-8 validated.
    private mutating func string() -> Bool {
        i += 1  // "
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return true
            case UInt8(ascii: "\\"):
                guard i + 1 < bytes.count else { return false }
                switch bytes[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard let unit = escapedUnit(at: i) else { return false }
                    i += 6
                    // UTF-16 surrogates must come as a high + low pair (ill-formed text is refused).
                    if (0xDC00..<0xE000).contains(unit) { return false }
                    if (0xD800..<0xDC00).contains(unit) {
                        guard let low = escapedUnit(at: i), (0xDC00..<0xE000).contains(low) else { return false }
                        i += 6
                    }
                default:
                    return false
                }
            case 0..<0x20:
                return false
            case 0x80...:
                guard utf8Sequence() else { return false }
            default:
                i += 1
            }
        }
        return false
    }

    /// The code unit of a `\uXXXX` escape starting at `at`, or nil.
    private func escapedUnit(at: Int) -> UInt32? {
        guard at + 6 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else { return nil }
        var v: UInt32 = 0
        for k in (at + 2)..<(at + 6) {
            guard let h = BaselineScanner.hexValue(bytes[k]) else { return nil }
            v = v << 4 | UInt32(h)
        }
        return v
    }

    /// One multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
    private mutating func utf8Sequence() -> Bool {
        let c = bytes[i]
        let length: Int
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: return false
        }
        guard i + length <= bytes.count else { return false }
        guard (lower...upper).contains(bytes[i + 1]) else { return false }
        for k in 2..<length where !(0x80...0xBF).contains(bytes[i + k]) { return false }
        i += length
        return true
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
