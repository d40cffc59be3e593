import Peer
import Testing
import WireProtocol

@Test func largeMessagesGoInPartsThatEndOnCharacterBoundaries() {
    #expect(linkFrames(Array("hello".utf8), limit: 100, chunkId: "c") == [Array("Mhello".utf8)])
    // 35 ASCII bytes, then "é" (2 bytes) across the 36-byte part boundary, then 100 more.
    let text = Array((String(repeating: "a", count: 35) + "é" + String(repeating: "b", count: 100)).utf8)
    let frames = linkFrames(text, limit: 100, chunkId: "c")
    var parts: [[UInt8]] = []
    for f in frames {
        guard case .chunk("c", let index, let count, let part)? = LinkFrame.parse(f) else { Issue.record("not a part"); return }
        #expect(index == parts.count && count == frames.count)
        parts.append(part)
    }
    #expect(parts.map(\.count) == [35, 36, 36, 30])
    #expect(parts.joined().elementsEqual(text))
    #expect(linkFrameLimit(relayed: true, serverMaxMessageBytes: 65536, partBytes: 1 << 20) == 32512)
    #expect(linkFrameLimit(relayed: true, serverMaxMessageBytes: 1000, partBytes: 1 << 20) == 1024)
    #expect(linkFrameLimit(relayed: false, serverMaxMessageBytes: 65536, partBytes: 4096) == 4096)
}

@Test func webSocketURLs() {
    #expect(WebSocketURL("ws://127.0.0.1:9000/") == WebSocketURL(host: "127.0.0.1", port: 9000, path: "/"))
    #expect(WebSocketURL("ws://127.0.0.1") == WebSocketURL(host: "127.0.0.1", port: 80, path: "/"))
    #expect(WebSocketURL("ws://[::1]:9001/a/b?x=1") == WebSocketURL(host: "::1", port: 9001, path: "/a/b?x=1"))
    #expect(WebSocketURL("ws://[::1]/") == WebSocketURL(host: "::1", port: 80, path: "/"))
    for bad in ["wss://127.0.0.1/", "http://127.0.0.1/", "127.0.0.1:9000", "ws://user@127.0.0.1:9000/", "ws://u:p@127.0.0.1/",
                "ws://127.0.0.1:0/", "ws://127.0.0.1:65536/", "ws://:9000/", "ws:///x", "ws://[]:1/", ""] {
        #expect(WebSocketURL(bad) == nil, "\(bad)")
    }
    #expect(isIPLiteral("::1") && isIPLiteral("10.0.0.1") && !isIPLiteral("localhost") && !isIPLiteral("[::1]"))
}
