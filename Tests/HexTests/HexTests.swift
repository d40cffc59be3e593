import Hex
import Testing

/// RFC 4648, section 10: the base16 test vectors (upper case there; this encoder writes lower case).
@Test(arguments: [("", ""), ("f", "66"), ("fo", "666f"), ("foo", "666f6f"), ("foob", "666f6f62"),
                  ("fooba", "666f6f6261"), ("foobar", "666f6f626172")])
func rfc4648Vectors(text: String, hex: String) {
    #expect(Hex.encode(Array(text.utf8)) == hex)
    #expect(Hex.decode(hex) == Array(text.utf8))
    #expect(Hex.decode(hex.uppercased()) == Array(text.utf8))
}

@Test func everyByteAndBadText() {
    let all = (0...255).map { UInt8($0) }
    let text = Hex.encode(all)
    #expect(text.count == 512 && text.hasPrefix("000102") && text.hasSuffix("fdfeff"))
    #expect(Hex.decode(text) == all)
    for bad in ["0", "0g", "zz", " 0", "000"] { #expect(Hex.decode(bad) == nil, "\(bad)") }
}

/// Fixed-width integers: the same digits as Foundation-free `String(value, radix: 16)` left-padded with
/// zeros (the standard library's own formatting as the reference), at the edges and for a seeded sample.
@Test func integersAsFixedDigits() {
    func reference(_ v: UInt64, _ n: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, n - s.count)) + s.suffix(n)
    }
    #expect(Hex.encode(0x00ab_12cd_34ef, digits: 12) == "00ab12cd34ef")
    #expect(Hex.encode(UInt64.max, digits: 16) == "ffffffffffffffff")
    #expect(Hex.encode(0x1_0000_0000_0000, digits: 12) == "000000000000")   // only the low 12 digits
    var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    print("HexTests seed \(seed)")
    for _ in 0..<2000 {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        for n in [1, 2, 11, 12, 15, 16] { #expect(Hex.encode(seed, digits: n) == reference(seed, n)) }
    }
}
