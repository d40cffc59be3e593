import Hex
/// A position on the Chord identifier circle of 2^48 points (browserCloud.js uses 48-bit IDs).
///
/// On the wire an ID is exactly 12 lowercase hexadecimal characters, for example `"00ab12cd34ef"`.
public struct PeerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Number of bits of the identifier space.
    public static let bits = 48
    /// Size of the identifier space, 2^48.
    public static let spaceSize: UInt64 = 1 << 48
    /// Mask selecting the low 48 bits.
    public static let mask: UInt64 = spaceSize - 1

    /// The ID as an integer in [0, 2^48).
    public let rawValue: UInt64

    /// Creates an ID; values at or above 2^48 are reduced modulo 2^48.
    public init(_ value: UInt64) { rawValue = value & PeerID.mask }

    /// Parses exactly 12 hexadecimal characters (lowercase on the wire; uppercase is rejected
    /// so that every ID has one spelling). Returns nil for anything else.
    public init?(hex: String) {
        let utf8 = hex.utf8
        guard utf8.count == 12 else { return nil }
        var value: UInt64 = 0
        for byte in utf8 {
            let digit: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt64(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        rawValue = value
    }

    /// The 12-character lowercase hexadecimal spelling.
    public var hex: String {
        Hex.encode(rawValue, digits: 12)
    }

    public var description: String { hex }

    public static func < (lhs: PeerID, rhs: PeerID) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `self + offset` on the circle.
    public func adding(_ offset: UInt64) -> PeerID { PeerID(rawValue &+ offset) }

    /// `self - offset` on the circle.
    public func subtracting(_ offset: UInt64) -> PeerID { PeerID(rawValue &- offset) }

    /// Clockwise distance from `self` to `other`, in [0, 2^48).
    public func distance(to other: PeerID) -> UInt64 { (other.rawValue &- rawValue) & PeerID.mask }

    /// Finger start of row `row` (Chord paper, Stoica et al. 2001, table 1): `(n + 2^row) mod 2^48`.
    public func fingerStart(row: Int) -> PeerID {
        precondition(row >= 0 && row < PeerID.bits, "finger row out of range")
        return adding(1 << UInt64(row))
    }

    /// Whether `self` lies in the half-open interval (lower, upper] on the circle.
    /// When `lower == upper` the interval is the whole circle.
    public func isIn(openLower lower: PeerID, closedUpper upper: PeerID) -> Bool {
        if lower == upper { return true }
        let d = lower.distance(to: self)
        return d != 0 && d <= lower.distance(to: upper)
    }
}
