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
