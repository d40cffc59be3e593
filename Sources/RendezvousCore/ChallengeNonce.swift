import Hex

/// A connection's challenge nonce as its session keeps it: the 64 lowercase hex digits the server draws
/// are packed into 32 bytes inside the session (a string of that length is a heap object of 112 bytes
/// per peer); any other text is kept as it is. `text` gives back exactly what was given.
enum ChallengeNonce: Equatable, Sendable {
    case packed(UInt64, UInt64, UInt64, UInt64)
    case text(String)

    init(_ text: String) {
        let digits = Array(text.utf8)
        func word(_ k: Int) -> UInt64? {
            var v: UInt64 = 0
            for c in digits[(k * 16)..<(k * 16 + 16)] {
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): v = v << 4 | UInt64(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): v = v << 4 | UInt64(c - UInt8(ascii: "a") + 10)
                default: return nil
                }
            }
            return v
        }
        if digits.count == 64, let a = word(0), let b = word(1), let c = word(2), let d = word(3) {
            self = .packed(a, b, c, d)
        } else {
            self = .text(text)
        }
    }

    var text: String {
        switch self {
        case .packed(let a, let b, let c, let d):
            return Hex.encode(a, digits: 16) + Hex.encode(b, digits: 16) + Hex.encode(c, digits: 16) + Hex.encode(d, digits: 16)
        case .text(let t):
            return t
        }
    }
}
