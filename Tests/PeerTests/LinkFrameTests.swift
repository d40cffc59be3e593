import Peer
import Ring
import Testing

@Test func linkFramesRoundTrip() throws {
    let id = try #require(PeerID(hex: "0123456789ab"))
    for frame: LinkFrame in [.message(Array(#"{"a":1}"#.utf8)), .chunk(id: "x1", index: 2, count: 3, part: Array("abc".utf8)),
                             .retire, .keep, .hello(peerId: id, nonce: "n0"), .welcome(peerId: id)] {
        #expect(LinkFrame.parse(frame.encoded()) == frame)
    }
    for bad in ["", "Q", "C:1:2:x", "Cid:3:2:x", "Cid:-1:2:x", "Cid:a:2:x", "H{}", "H{\"peerId\":\"zz\"}", "XX"] {
        #expect(LinkFrame.parse(Array(bad.utf8)) == nil, "\(bad)")
    }
}

@Test func reassemblyIsBoundedInPartsMessagesAndBytes() {
    var r = Reassembler(maxBytes: 10)
    #expect(r.add(id: "a", index: 1, count: 2, part: Array("world".utf8)) == .pending)
    #expect(r.add(id: "a", index: 0, count: 2, part: Array("hello".utf8)) == .complete(Array("helloworld".utf8)))
    #expect(r.add(id: "b", index: 0, count: 3, part: Array("123456".utf8)) == .pending)
    #expect(r.add(id: "b", index: 1, count: 3, part: Array("78901".utf8)) == .overflow, "more bytes than the budget")
    #expect(LinkFrame.parse(Array("Cc:0:\(Reassembler.maxChunks + 1):x".utf8)) == nil, "more parts than allowed")
    var many = Reassembler(maxBytes: 1 << 20)
    for i in 0..<Reassembler.maxPartialMessages { #expect(many.add(id: "m\(i)", index: 0, count: 2, part: [1]) == .pending) }
    #expect(many.add(id: "one-more", index: 0, count: 2, part: [1]) == .overflow)
}

/// `N` frames (docs/protocol.md, "Neighbour lists"): at most 64 IDs of 12 lowercase hex digits, commas between.
@Test func neighbourListFramesAreBounded() throws {
    let a = try #require(PeerID(hex: "0123456789ab")), b = try #require(PeerID(hex: "ba9876543210"))
    for frame: LinkFrame in [.neighbours([]), .neighbours([a]), .neighbours([a, b]), .neighbours(Array(repeating: b, count: 64))] {
        #expect(LinkFrame.parse(frame.encoded()) == frame)
    }
    #expect(LinkFrame.neighbours([a, b]).encoded() == Array("N0123456789ab,ba9876543210".utf8))
    let tooMany = "N" + Array(repeating: "0123456789ab", count: 65).joined(separator: ",")
    for bad in [tooMany, "N0123456789AB", "N0123456789ab,", "N,0123456789ab", "N0123456789a", "N0123456789ab ba9876543210",
                "N0123456789ab,,ba9876543210", "N0123456789abc"] {
        #expect(LinkFrame.parse(Array(bad.utf8)) == nil, "\(bad)")
    }
}
