import Ring
import Testing
@testable import WireProtocol

/// The ring updates a join pushes (`predecessor`, `successors`, `finger-update`) are written directly by
/// `ServerMessage.encoded()`; their bytes must stay those of the tree encoder (`json.encoded()`, keys
/// sorted), with and without epochs and for absent peers.
@Suite struct PushEncodingTests {
    static func cases(seed: UInt64) -> [ServerMessage] {
        var rng = SplitMix64(seed: seed)
        func id() -> PeerID { PeerID(rng.next()) }
        var out: [ServerMessage] = [
            .predecessor(nil), .predecessor(nil, epoch: 3), .predecessor(PeerID(0)), .predecessor(PeerID.init(PeerID.mask), epoch: 0),
            .predecessor(PeerID(0xabc), epoch: UInt64.max),
            .successors([]), .successors([], epochs: []), .successors([PeerID(1)]), .successors([PeerID(1), PeerID(2)], epochs: [7, 0]),
            .fingerUpdate(row: 0, start: PeerID(0), peer: nil), .fingerUpdate(row: 47, start: PeerID(PeerID.mask), peer: nil, epoch: 9),
            .fingerUpdate(row: 12, start: PeerID(5), peer: PeerID(6), epoch: 1 << 40), .fingerUpdate(row: 3, start: PeerID(5), peer: PeerID(6)),
        ]
        for _ in 0..<200 {
            let n = Int(rng.next() % 12)
            let list = (0..<n).map { _ in id() }
            let withEpochs = rng.next() % 2 == 0
            out.append(.successors(list, epochs: withEpochs ? list.map { _ in rng.next() } : nil))
            out.append(.predecessor(rng.next() % 5 == 0 ? nil : id(), epoch: rng.next() % 2 == 0 ? rng.next() : nil))
            out.append(.fingerUpdate(row: Int(rng.next() % 48), start: id(), peer: rng.next() % 5 == 0 ? nil : id(),
                                     epoch: rng.next() % 2 == 0 ? rng.next() : nil))
        }
        return out
    }

    @Test func directPushEncodingEqualsTheTreeEncoding() {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("PushEncodingTests seed \(seed)")
        for message in Self.cases(seed: seed) {
            #expect(message.encoded() == message.json.encoded(), "\(message) (seed \(seed))")
        }
    }

    @Test func aKnownFingerUpdateIsWrittenExactly() {
        let m = ServerMessage.fingerUpdate(row: 5, start: PeerID(0x10), peer: PeerID(0xabcdef), epoch: 2)
        #expect(String(decoding: m.encoded(), as: UTF8.self)
                == #"{"epoch":"0000000000000002","peerId":"000000abcdef","row":5,"start":"000000000010","type":"finger-update"}"#)
    }

    /// `appendJSONString`'s fast path (no escape needed) and its escaping path give RFC 8259 text.
    @Test func stringsAreEscapedOnlyWhenNeeded() {
        for (s, json) in [("", #""""#), ("plain", #""plain""#), ("a longer string of forty characters ....", #""a longer string of forty characters ....""#),
                          ("q\"b\\", #""q\"b\\""#), ("\n\t\u{1}", #""\n\t\u0001""#), ("é✓", "\"é✓\"")] {
            #expect(String(decoding: JSONValue.string(s).encoded(), as: UTF8.self) == json)
        }
    }
}
