import Redis
import Testing

@Test func streamIDParsing() {
    #expect(StreamID("123-4") == StreamID(ms: 123, seq: 4))
    #expect(StreamID("0-0") == .zero)
    #expect(StreamID("18446744073709551615-18446744073709551615") == StreamID(ms: .max, seq: .max))
    for bad in ["", "1", "1-", "-1", "a-1", "1-2-3", "18446744073709551616-0", "+1-0", " 1-0", "*", "$", "1-0 "] {
        #expect(StreamID(bad) == nil, "\(bad)")
    }
    #expect(StreamID(ms: 1700000000000, seq: 3).text == "1700000000000-3")
    #expect(StreamID(bytes: Array("5-6".utf8)) == StreamID(ms: 5, seq: 6))
}

@Test func streamIDOrder() {
    let ids = [StreamID(ms: 2, seq: 0), StreamID(ms: 1, seq: 9), .zero, StreamID(ms: 1, seq: 10), StreamID(ms: 1, seq: 0)]
    #expect(ids.sorted().map(\.text) == ["0-0", "1-0", "1-9", "1-10", "2-0"])
    #expect(StreamID(ms: 1, seq: .max) < StreamID(ms: 2, seq: 0))
}

private func b(_ s: String) -> RedisReply { .bulk(Array(s.utf8)) }

@Test func parseRangeAndReadReplies() throws {
    let e1: RedisReply = .array([b("1-0"), .array([b("op"), b("join"), b("id"), .bulk([0, 255])])])
    let e2: RedisReply = .array([b("1-1"), .array([])])
    let entries = try StreamReply.entries(.array([e1, e2]))
    #expect(entries == [
        StreamEntry(id: StreamID(ms: 1, seq: 0), fields: [.init(name: "op", value: Array("join".utf8)), .init(name: "id", value: [0, 255])]),
        StreamEntry(id: StreamID(ms: 1, seq: 1), fields: []),
    ])
    #expect(entries[0].string("op") == "join")
    #expect(entries[0]["id"] == [0, 255])
    #expect(entries[0].string("id") == nil)   // not UTF-8
    #expect(entries[0]["missing"] == nil)

    let read = try StreamReply.read(.array([.array([b("ring"), .array([e1, e2])])]))
    #expect(read["ring"] == entries)
    #expect(try StreamReply.read(.null).isEmpty)
    #expect(try StreamReply.read(.null, stream: "ring").isEmpty)
    #expect(try StreamReply.read(.array([.array([b("ring"), .array([e2])])]), stream: "ring").map(\.id) == [StreamID(ms: 1, seq: 1)])
}

@Test func malformedStreamReplies() {
    let bad: [RedisReply] = [
        .integer(3), .error("ERR x"), .array([.array([b("nope"), .array([])])]),
        .array([.array([b("1-0"), .array([b("odd")])])]), .array([.array([b("1-0")])]),
        .array([.array([b("1-0"), .array([.integer(1), b("v")])])]),
    ]
    for reply in bad {
        #expect(throws: RedisError.self, "\(reply)") { try StreamReply.entries(reply) }
    }
    #expect(throws: RedisError.self) { try StreamReply.read(.array([b("ring")])) }
    #expect(throws: RedisError.self) { try StreamReply.read(.error("WRONGTYPE")) }
    #expect(throws: RedisError.self) { try StreamReply.read(.array([.array([b("other"), .array([])])]), stream: "ring") }
}

@Test func replyAccessors() {
    #expect(RedisReply.status("OK").isOK)
    #expect(RedisReply.status("PONG").string == "PONG")
    #expect(RedisReply.bulk([0xff]).string == nil)
    #expect(RedisReply.bulk([0xff]).bytes == [0xff])
    #expect(RedisReply.bulk(Array("42".utf8)).int == 42)
    #expect(RedisReply.integer(-7).int == -7)
    #expect(RedisReply.error("ERR x").int == nil)
    #expect(RedisReply.error("ERR x").errorMessage == "ERR x")
    #expect(RedisReply.null.isNull && RedisReply.null.array == nil)
    #expect(RedisReply.array([.null]).array == [.null])
}
