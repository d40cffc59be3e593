/// An arbitrary JSON value, for the opaque parts of messages (WebRTC signals, capabilities, stats).
///
/// Text becomes a value through `JSONValue(parsing:)` (JSONTree.swift), the module's one tree parser; the
/// value is `Encodable` (for callers that embed it in their own `Codable` types) but deliberately not
/// `Decodable`: decoding goes through the tree parser, never through `JSONDecoder`.
public enum JSONValue: Encodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n.rounded() == n, abs(n) < 9.0e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// Compact JSON text (RFC 8259) with object keys sorted, so equal values give equal bytes.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        write(to: &out, indent: nil)
        return out
    }

    /// Appends the compact JSON text of `self` (the bytes of `encoded()`) to `out`, for writers that
    /// assemble a large document around many small values without building a tree.
    public func append(to out: inout [UInt8]) { write(to: &out, indent: nil) }

    /// Writes JSON text; with `indent`, one member or element per line, two spaces per level.
    /// Non-finite numbers (never produced by the decoder) are written as null.
    func write(to out: inout [UInt8], indent: Int?) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n):
            if !n.isFinite {
                out.append(contentsOf: "null".utf8)
            } else if n.rounded() == n, abs(n) < 9.0e15 {
                out.append(contentsOf: String(Int64(n)).utf8)
            } else {
                out.append(contentsOf: n.description.utf8)
            }
        case .string(let s): appendJSONString(s, to: &out)
        case .array(let a):
            writeContainer(a, open: UInt8(ascii: "["), close: UInt8(ascii: "]"), to: &out, indent: indent) { v, out, i in
                v.write(to: &out, indent: i)
            }
        case .object(let o):
            let members = o.sorted { $0.key < $1.key }
            writeContainer(members, open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), to: &out, indent: indent) { m, out, i in
                appendJSONString(m.key, to: &out)
                if indent == nil { out.append(UInt8(ascii: ":")) } else { out.append(contentsOf: " : ".utf8) }
                m.value.write(to: &out, indent: i)
            }
        }
    }

    private func writeContainer<C: Collection>(_ items: C, open: UInt8, close: UInt8, to out: inout [UInt8], indent: Int?,
                                               _ element: (C.Element, inout [UInt8], Int?) -> Void) {
        out.append(open)
        guard !items.isEmpty else { out.append(close); return }
        let inner = indent.map { $0 + 2 }
        for (k, item) in items.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            if let inner { out.append(0x0A); out += [UInt8](repeating: 0x20, count: inner) }
            element(item, &out, inner)
        }
        if let indent { out.append(0x0A); out += [UInt8](repeating: 0x20, count: indent) }
        out.append(close)
    }
}

extension JSONValue {
    /// Indented JSON text with sorted keys and a final newline (for curl-friendly REST answers).
    public func prettyEncoded() -> [UInt8] {
        var out: [UInt8] = []
        write(to: &out, indent: 0)
        out.append(0x0A)
        return out
    }
}

/// The text of one validated JSON object, carried through the server unchanged (a relayed `signal`).
public struct RawJSON: Equatable, Sendable, CustomStringConvertible {
    /// Valid JSON text of an object.
    public let bytes: [UInt8]

    init(validated bytes: [UInt8]) { self.bytes = bytes }

    /// Encodes a JSON object value.
    public init(_ object: [String: JSONValue]) { bytes = JSONValue.object(object).encoded() }

    /// Parses valid JSON object text; nil otherwise.
    public init?(parsing text: [UInt8]) {
        let ok = text.withUnsafeBufferPointer { JSONScanner.isObject($0) }
        guard ok else { return nil }
        bytes = text
    }

    /// The object as a tree.
    public var value: JSONValue? { JSONValue(parsing: bytes) }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

/// Appends `s` as a JSON string token (RFC 8259 §7 escapes).
func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    let utf8 = s.utf8
    // Fast path (native strings are contiguous): most strings need no escape and are copied at once.
    let copied: Bool? = utf8.withContiguousStorageIfAvailable { bytes in
        for c in bytes where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return false }
        out.append(contentsOf: bytes)
        return true
    }
    if copied == true {
        // written
    } else if copied == nil, !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
        out.append(contentsOf: utf8)
    } else {
        for c in utf8 {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(c)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 0xf)])
            default: out.append(c)
            }
        }
    }
    out.append(UInt8(ascii: "\""))
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
