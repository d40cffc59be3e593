/// Lowercase hexadecimal text of bytes, and back (the one copy every target uses: peer IDs, tokens,
/// digests, nonces).
public enum Hex {
    @usableFromInline static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Two lowercase digits per byte. Inlinable so that callers get it specialized for their sequence
    /// type (an unspecialized generic loop cost a quarter of the server's instructions on joins).
    @inlinable
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The low `count` hex digits of `value` (most significant first), e.g. a 48-bit peer ID as 12
    /// digits. At most 16 digits; no heap allocation for up to 15 (Swift's small strings).
    @inlinable
    public static func encode(_ value: UInt64, digits count: Int) -> String {
        precondition((1...16).contains(count), "1...16 hex digits")
        return String(unsafeUninitializedCapacity: count) { out in
            var v = value
            for i in stride(from: count - 1, through: 0, by: -1) {
                out[i] = digits[Int(v & 0xf)]
                v >>= 4
            }
            return count
        }
    }

    /// The bytes of an even number of hex digits (either case), or nil.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        for i in stride(from: 0, to: chars.count, by: 2) {
            guard let hi = value(of: chars[i]), let lo = value(of: chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    /// The value of one hex digit (either case), or nil.
    public static func value(of c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
