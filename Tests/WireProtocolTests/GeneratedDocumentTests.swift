import Foundation
import Ring
import Testing
@testable import WireProtocol

/// The tree parser against independent references on generated documents: Foundation's
/// JSONSerialization for whole documents, the standard library's `Double(String)` (strtod) for every
/// number. JSON_SEED=<n> replays a run; the seed is printed.
@Suite struct GeneratedDocumentTests {
    static let seed: UInt64 = {
        let seed = ProcessInfo.processInfo.environment["JSON_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        print("JSON_SEED=\(seed)")
        return seed
    }()

    /// Writes random JSON text: numbers at the 2^53 edge, with exponents, negative zero, subnormals and
    /// long significands; every escape, surrogate pairs, raw multi-byte UTF-8; repeated keys; whitespace
    /// (all four kinds) between every token.
    struct Writer {
        var rng: SplitMix64
        var numbers: [String] = []

        mutating func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }

        mutating func space() -> String {
            (0..<(rng.next() % 3)).map { _ in pick([" ", "\t", "\n", "\r"]) }.joined()
        }

        mutating func digits(_ n: Int) -> String { (0..<n).map { _ in String(rng.next() % 10) }.joined() }

        mutating func number() -> String {
            let sign = rng.next() % 3 == 0 ? "-" : ""
            let text: String
            switch rng.next() % 9 {
            case 0: text = String(9_007_199_254_740_992 + Int64(rng.next() % 7) - 3)          // 2^53 ± 3
            case 1: text = pick(["0", "-0", "0.0", "-0.0", "0e5", "-0E-7", "0.000"])          // zeros
            case 2: text = String(rng.next() % 1_000_000_000)
            case 3: text = "\(1 + rng.next() % 9)" + digits(Int(rng.next() % 25))              // long integers
            case 4: text = "\(rng.next() % 1000).\(digits(1 + Int(rng.next() % 20)))"
            case 5: text = "\(1 + rng.next() % 9).\(digits(1 + Int(rng.next() % 17)))\(pick(["e", "E"]))\(pick(["", "+", "-"]))\(rng.next() % 308)"
            case 6: text = pick(["5e-324", "4.9e-324", "2.2250738585072011e-308", "2.2250738585072014e-308",
                                 "1.7976931348623157e308", "1e22", "1e23", "9007199254740993e-22", "0.1", "1e-7"])
            case 7: text = "0.\(String(repeating: "0", count: Int(rng.next() % 30)))\(1 + rng.next() % 9)\(digits(Int(rng.next() % 8)))"
            default: text = "\(rng.next() % 100)e\(pick(["", "-", "+"]))\(rng.next() % 40)"
            }
            let full = text.hasPrefix("-") ? text : sign + text
            numbers.append(full)
            return full
        }

        mutating func string() -> String {
            var out = "\""
            for _ in 0..<(rng.next() % 8) {
                switch rng.next() % 8 {
                case 0: out += pick(["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
                case 1: out += String(format: "\\u%04x", UInt32(rng.next() % 0xD800))            // BMP below the surrogates
                case 2:                                                                            // a surrogate pair
                    let scalar = 0x10000 + UInt32(rng.next() % 0x100000)
                    out += String(format: "\\u%04X\\u%04x", 0xD800 + ((scalar - 0x10000) >> 10), 0xDC00 + ((scalar - 0x10000) & 0x3FF))
                case 3: out += pick(["é", "€", "𝄞", "ü", "\u{FFFD}", "\u{10FFFF}", "\u{7F}"])     // raw UTF-8
                case 4: out += String(format: "\\u%04X", 0xE000 + UInt32(rng.next() % 0x2000))
                default: out += pick(["a", "b", "type", " ", "x y", "0"])
                }
            }
            return out + "\""
        }

        mutating func value(_ depth: Int) -> String {
            switch rng.next() % (depth > 4 ? 4 : 6) {
            case 0: return pick(["true", "false", "null"])
            case 1, 2: return number()
            case 3: return string()
            case 4: return "[" + space() + (0..<(rng.next() % 4)).map { _ in value(depth + 1) + space() }.joined(separator: "," + space()) + "]"
            default:
                // Keys from a small set, so objects repeat keys now and then.
                let members = (0..<(rng.next() % 5)).map { _ in
                    "\"\(pick(["a", "b", "c", "\\u0061", "é"]))\"" + space() + ":" + space() + value(depth + 1) + space()
                }
                return "{" + space() + members.joined(separator: "," + space()) + "}"
            }
        }
    }

    /// Same value as JSONSerialization (repeated keys: the last wins in both) on every document, and every
    /// number equal, bit for bit, to `Double(String)`, with out-of-range exactly when that rounds to
    /// infinity or to zero from non-zero digits.
    @Test func documentsAgreeWithJSONSerialization() {
        var w = Writer(rng: SplitMix64(seed: Self.seed))
        var compared = 0
        for _ in 0..<3000 {
            let text = w.space() + w.value(0) + w.space()
            let bytes = Array(text.utf8)
            let ours = JSONValue(parsing: bytes)
            #expect(ours != nil, "JSON_SEED=\(Self.seed): \(text)")
            // JSONSerialization refuses numbers that round to infinity; none are generated (significands
            // below 10, exponents below 308).
            let reference = ReferenceJSON.parse(bytes)
            #expect(ours == reference, "JSON_SEED=\(Self.seed): \(text)")
            compared += 1
        }
        for text in w.numbers {
            let token = Array(text.utf8)
            let ours = token.withUnsafeBufferPointer { JSONTreeParser.number($0) }
            let reference = Double(text)!
            #expect(ours.value.bitPattern == reference.bitPattern, "JSON_SEED=\(Self.seed): \(text) → \(ours.value), strtod \(reference)")
            let nonZeroDigits = text.split(whereSeparator: { $0 == "e" || $0 == "E" })[0].contains { ("1"..."9").contains($0) }
            #expect(ours.outOfRange == (reference.isInfinite || (reference == 0 && nonZeroDigits)), "\(text)")
        }
        #expect(compared == 3000 && w.numbers.count > 1000)
    }

    @Test func numbersAtTheEdges() {
        func n(_ text: String) -> (value: Double, outOfRange: Bool) {
            Array(text.utf8).withUnsafeBufferPointer { JSONTreeParser.number($0) }
        }
        // Integers at 2^53: exact up to it, then rounded to even.
        #expect(n("9007199254740992").value == 9_007_199_254_740_992)
        #expect(n("9007199254740993").value == 9_007_199_254_740_992)
        #expect(n("9007199254740995").value == 9_007_199_254_740_996)
        #expect(n("-9007199254740993").value == -9_007_199_254_740_992)
        // Negative zero keeps its sign; zero with any exponent is not out of range.
        #expect(n("-0").value.sign == .minus && n("-0.0e-999").value.sign == .minus && n("0e999").value.sign == .plus)
        #expect(!n("0e999").outOfRange && !n("-0").outOfRange)
        // Overflow and underflow are reported; the value is what JSON.parse gives.
        #expect(n("1e400") == (.infinity, true) && n("-1e400") == (-.infinity, true))
        #expect(n("1e-400") == (0, true) && n("2.4703282292062327e-324") == (0, true))
        #expect(n("2.4703282292062328e-324") == (.leastNonzeroMagnitude, false) && n("1.7976931348623157e308") == (.greatestFiniteMagnitude, false))
        // The exact fast path and the slow path meet: 10^22 is exact, 10^23 is not.
        #expect(n("1e22").value == 1e22 && n("1e23").value == 1e23 && n("123456789012345.6e7").value == 123456789012345.6e7)
        // Through the parser: JSONSerialization refuses what rounds to infinity; the tree keeps JSON.parse's value.
        #expect(JSONValue(parsing: Array("[1e400]".utf8)) == .array([.number(.infinity)]))
        #expect(ReferenceJSON.parse(Array("[1e400]".utf8)) == nil)
    }

    /// Strings: escapes, surrogate pairs, and every kind of invalid UTF-8 or lone surrogate refused, as
    /// JSONSerialization refuses them.
    @Test func stringsAndInvalidUTF8() {
        let valid = [#""\u00e9\ud83d\ude00\uD834\uDD1E\u0000\/""#, "\"é€𝄞\u{10FFFF}\"", #""\"\\\b\f\n\r\t""#]
        for text in valid {
            #expect(JSONValue(parsing: Array(text.utf8)) == ReferenceJSON.parse(Array(text.utf8)), "\(text)")
        }
        #expect(JSONValue(parsing: Array(#""\ud83d\ude00""#.utf8)) == .string("😀"))
        let invalid: [[UInt8]] = [
            [0xFF], [0x80], [0xC0, 0x80], [0xC1, 0xBF],           // bad lead bytes, overlong 2-byte
            [0xE0, 0x80, 0x80], [0xF0, 0x80, 0x80, 0x80],          // overlong 3- and 4-byte
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],                // UTF-16 surrogates encoded in UTF-8
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],    // beyond U+10FFFF
            [0xE2, 0x82], [0xC3],                                  // truncated
            Array(#"\ud800"#.utf8), Array(#"\udc00"#.utf8), Array(#"\ud800\u0041"#.utf8), Array(#"\ud800x"#.utf8),
            [0x01], [0x1F], Array(#"\x"#.utf8), Array(#"\u12g4"#.utf8),
        ]
        for middle in invalid {
            let bytes = Array(#"{"k":"a"#.utf8) + middle + Array(#"b"}"#.utf8)
            #expect(JSONValue(parsing: bytes) == nil, "\(middle)")
            #expect(ReferenceJSON.parse(bytes) == nil, "JSONSerialization accepted \(middle)")
        }
    }

    /// The string scan reads plain bytes eight at a time: a special byte at every offset of strings of
    /// every length up to 40 is still seen (and a string without one still decodes to its bytes).
    @Test func stringScanAtEveryOffset() {
        let plain: [UInt8] = [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E, 0x7F]
        let refused: [UInt8] = [0x00, 0x09, 0x1F, 0x22, 0x5C, 0x80, 0xBF, 0xC3, 0xFF]
        for length in 1...40 {
            for at in 0..<length {
                for (byte, ok) in plain.map({ ($0, true) }) + refused.map({ ($0, false) }) {
                    var inner = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    inner[at] = byte
                    let text = [UInt8(ascii: "\"")] + inner + [UInt8(ascii: "\"")]
                    #expect(text.withUnsafeBufferPointer { JSONScanner.isValid($0) } == ok, "\(length) \(at) \(byte)")
                    #expect(JSONValue(parsing: text) == (ok ? .string(String(decoding: inner, as: UTF8.self)) : nil))
                }
                var two = [UInt8](repeating: UInt8(ascii: "a"), count: length + 1)
                two.replaceSubrange(at..<(at + 2), with: [0xC3, 0xA9])  // é, split across words at some offsets
                #expect(JSONValue(parsing: [0x22] + two + [0x22]) == .string(String(decoding: two, as: UTF8.self)))
            }
        }
    }

    /// Depth: 64 nested containers (scalars inside the innermost) are accepted, 65 refused, by the tree
    /// parser, the scanner and the client decoder alike. JSONSerialization has no such limit.
    @Test func depthLimit() throws {
        for (depth, ok) in [(64, true), (65, false)] {
            let text = Array((String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)).utf8)
            #expect((JSONValue(parsing: text) != nil) == ok)
            #expect(text.withUnsafeBufferPointer { JSONScanner.isValid($0) } == ok)
            if ok { #expect(JSONValue(parsing: text) == ReferenceJSON.parse(text)) }
            // In a client frame the top-level object is depth 1 and `capabilities` depth 2.
            let arrays = String(repeating: "[", count: depth - 2) + "1" + String(repeating: "]", count: depth - 2)
            let keys = #""publicKey":"\#(String(repeating: "ab", count: 32))","signature":"\#(String(repeating: "cd", count: 64))","#
            let frame = Array(#"{"type":"register",\#(keys)"capabilities":{"x":"#.utf8) + Array(arrays.utf8) + Array("}}".utf8)
            var accepted = true
            do { _ = try ClientMessage.decode(frame) } catch {
                accepted = false
                #expect(error.code == .badJSON)
            }
            #expect(accepted == ok)
        }
    }

    /// Whitespace: exactly the four RFC 8259 characters, anywhere between tokens.
    @Test func whitespace() {
        let ok = " \t\n\r{ \t\n\r\"a\" \t\n\r: \t\n\r[ \t\n\r1 \t\n\r, \t\n\rtrue \t\n\r] \t\n\r} \t\n\r"
        #expect(JSONValue(parsing: Array(ok.utf8)) == .object(["a": .array([.number(1), .bool(true)])]))
        #expect(JSONValue(parsing: Array(ok.utf8)) == ReferenceJSON.parse(Array(ok.utf8)))
        for bad in ["\u{0B}1", "\u{0C}1", "\u{A0}1", "\u{FEFF}1", "1\u{2028}", "\u{00}1"] {
            #expect(JSONValue(parsing: Array(bad.utf8)) == nil, "\(bad.unicodeScalars.map(\.value))")
        }
    }
}
