/// A validating, non-allocating JSON scanner (RFC 8259): the one reader of JSON text in this module.
///
/// It checks that a text is one well-formed JSON value (UTF-8 included). The tree parser
/// (`JSONTree.swift`) is built on the same scanning steps, so every byte is validated and converted in
/// one pass; a member left as raw bytes (a relayed `signal`) is only validated, never copied into a tree.
/// Containers nested deeper than `maxDepth` (the top level is depth 1) are refused (bounded stack for
/// hostile input); scalars inside a container at depth `maxDepth` are fine.
struct JSONScanner {
    enum Kind: Equatable { case object, array, string, number, literal }

    static let maxDepth = 64

    /// Whether `bytes` is exactly one valid JSON value (any kind).
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var s = JSONScanner(bytes: bytes)
        s.skipWhitespace()
        guard s.value(depth: 1) != nil else { return false }
        s.skipWhitespace()
        return s.i == bytes.count
    }

    /// Whether `bytes` is exactly one valid JSON object.
    static func isObject(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var s = JSONScanner(bytes: bytes)
        s.skipWhitespace()
        guard s.peek == UInt8(ascii: "{"), s.value(depth: 1) == .object else { return false }
        s.skipWhitespace()
        return s.i == bytes.count
    }

    // MARK: Scanner

    let bytes: UnsafeBufferPointer<UInt8>
    var i = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    /// Validates one value starting at `i` (a container at `depth`); its kind, or nil when invalid.
    mutating func value(depth: Int) -> Kind? {
        guard let c = peek else { return nil }
        switch c {
        case UInt8(ascii: "{"):
            return object(depth: depth) ? .object : nil
        case UInt8(ascii: "["): return array(depth: depth) ? .array : nil
        case UInt8(ascii: "\""): return string() ? .string : nil
        case UInt8(ascii: "t"): return literal("true") ? .literal : nil
        case UInt8(ascii: "f"): return literal("false") ? .literal : nil
        case UInt8(ascii: "n"): return literal("null") ? .literal : nil
        default: return number() ? .number : nil
        }
    }

    private mutating func object(depth: Int) -> Bool {
        guard depth <= JSONScanner.maxDepth else { return false }
        i += 1  // {
        skipWhitespace()
        if peek == UInt8(ascii: "}") { i += 1; return true }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\""), string() else { return false }
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { return false }
            i += 1
            skipWhitespace()
            guard value(depth: depth + 1) != nil else { return false }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"): i += 1; return true
            default: return false
            }
        }
    }

    private mutating func array(depth: Int) -> Bool {
        guard depth <= JSONScanner.maxDepth else { return false }
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

    mutating func literal(_ word: StaticString) -> Bool {
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

    mutating func number() -> Bool {
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
    mutating func string() -> Bool {
        i += 1  // "
        let end = bytes.count
        while i < end {
            // The common bytes first: printable ASCII other than the quote and the backslash.
            i = plainRun(from: i)
            guard i < end else { return false }
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

    /// The end of the run of plain string bytes (printable ASCII other than `"` and `\`) from `start`,
    /// eight bytes at a time while it can: a word is plain when none of its bytes is below 0x20, at or
    /// above 0x80, a quote or a backslash (the exact "has a byte less than n" and "has a zero byte" bit
    /// tests on 64-bit words).
    func plainRun(from start: Int) -> Int {
        var j = start
        let end = bytes.count
        if let base = UnsafeRawPointer(bytes.baseAddress) {
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            while j + 8 <= end {
                let x = base.loadUnaligned(fromByteOffset: j, as: UInt64.self)
                let quote = x ^ (ones &* 0x22), backslash = x ^ (ones &* 0x5C)
                let special = ((x &- ones &* 0x20) & ~x) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | x
                if special & highs != 0 { break }
                j += 8
            }
        }
        while j < end, case let b = bytes[j], b >= 0x20, b < 0x80, b != UInt8(ascii: "\""), b != UInt8(ascii: "\\") {
            j += 1
        }
        return j
    }

    /// The code unit of a `\uXXXX` escape starting at `at`, or nil.
    private func escapedUnit(at: Int) -> UInt32? {
        guard at + 6 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else { return nil }
        var v: UInt32 = 0
        for k in (at + 2)..<(at + 6) {
            guard let h = JSONScanner.hexValue(bytes[k]) else { return nil }
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
