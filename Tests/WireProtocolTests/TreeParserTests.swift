import Foundation
import Ring
import Testing
@testable import WireProtocol

/// `JSONValue(parsing:)` (the scanner's tree builder) agrees with Foundation's JSONSerialization on valid
/// text and refuses what the validating scanner refuses.
@Test func theTreeParserAgreesWithFoundation() throws {
    let documents = [
        #"{"a":1,"b":[true,false,null,"x\n\u00e9\ud83d\ude00"],"c":{"d":-0.5e-3,"e":1e300,"f":123456789012345678}}"#,
        #"[1, 2.5, -3, 0, 0.1, 1E2, "", {}, []]"#,
        #"  "just a string"  "#,
        #"{"scene":{"width":64,"camera":{"position":[0,1.5,-6]},"objects":[{"type":"sphere","radius":1}]}}"#,
    ]
    for text in documents {
        let mine = try #require(JSONValue(parsing: Array(text.utf8)), "\(text)")
        let foundation = try #require(ReferenceJSON.parse(Array(text.utf8)))
        #expect(mine == foundation, "\(text)")
    }
    // Duplicate keys: the last wins, as in JavaScript's JSON.parse (JSONDecoder kept the first).
    #expect(JSONValue(parsing: Array(#"{"dup":1,"dup":2}"#.utf8)) == .object(["dup": .number(2)]))
    // A random mix of numbers round-trips exactly (correct rounding). TREE_PARSER_SEED=<n> replays a run.
    let seed = ProcessInfo.processInfo.environment["TREE_PARSER_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
    print("TREE_PARSER_SEED=\(seed)")
    var g = SplitMix64(seed: seed)
    for _ in 0..<2000 {
        let d = Double.random(in: -1e6...1e6, using: &g) * (Bool.random(using: &g) ? 1 : 1e-9)
        #expect(JSONValue(parsing: Array("\(d)".utf8)) == .number(d), "TREE_PARSER_SEED=\(seed)")
    }
}

@Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\u{01}\"", "nul", "[1] x", "\"\\x\"",
                  String(repeating: "[", count: 200) + String(repeating: "]", count: 200)])
func theTreeParserRefusesInvalidText(text: String) {
    #expect(JSONValue(parsing: Array(text.utf8)) == nil)
}
