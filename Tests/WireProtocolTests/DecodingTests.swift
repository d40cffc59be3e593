import Foundation
import Ring
import Testing
@testable import WireProtocol

private func decode(_ text: String) -> Result<ClientMessage, ProtocolError> {
    do throws(ProtocolError) { return .success(try ClientMessage.decode(Array(text.utf8))) } catch { return .failure(error) }
}

private func code(_ text: String) -> ErrorCode? {
    if case .failure(let e) = decode(text) { return e.code }
    return nil
}

@Suite struct DecodingTests {
    @Test func validMessages() throws {
        #expect(try decode(#"{"type":"register"}"#).get() == .register(peerId: nil, token: nil, capabilities: nil))
        let token = String(repeating: "ab", count: 32)
        #expect(try decode(#"{"type":"register","peerId":"00000000000a","token":"\#(token)","capabilities":{"workers":4}}"#).get()
            == .register(peerId: PeerID(10), token: token, capabilities: ["workers": .number(4)]))
        #expect(try decode(#"{"type":"signal","to":"0000000000ff","intentId":"i1","signal":{"type":"offer","sdp":"v=0"}}"#).get()
            == .signal(to: PeerID(255), intentId: "i1", signal: ["type": "offer", "sdp": "v=0"]))
        #expect(try decode(#"{"type":"leave","extra":1}"#).get() == .leave)
        #expect(try decode(#"{"type":"report","stats":{"tasks":3}}"#).get() == .report(stats: ["tasks": 3]))
    }

    @Test func errors() {
        #expect(code("") == .badJSON)
        #expect(code("{") == .badJSON)
        #expect(code("[1,2]") == .badJSON)
        #expect(code("\"register\"") == .badJSON)
        #expect(code("{}") == .badField)
        #expect(code(#"{"type":5}"#) == .badField)
        #expect(code(#"{"type":"dance"}"#) == .unknownType)
        #expect(code(#"{"type":"register","peerId":"00000000000a"}"#) == .badField)
        #expect(code(#"{"type":"register","peerId":"00000000000A","token":"\#(String(repeating: "a", count: 64))"}"#) == .badField)
        #expect(code(#"{"type":"register","peerId":"00000000000a","token":"short"}"#) == .badToken)
        #expect(code(#"{"type":"register","capabilities":[1]}"#) == .badField)
        #expect(code(#"{"type":"register","capabilities":{"x":"\#(String(repeating: "y", count: 5000))"}}"#) == .tooLarge)
        #expect(code(#"{"type":"signal","intentId":"i","signal":{}}"#) == .badField)
        #expect(code(#"{"type":"signal","to":"xyz","intentId":"i","signal":{}}"#) == .badField)
        #expect(code(#"{"type":"signal","to":"0000000000ff","signal":{}}"#) == .badField)
        #expect(code(#"{"type":"signal","to":"0000000000ff","intentId":"","signal":{}}"#) == .badField)
        #expect(code(#"{"type":"signal","to":"0000000000ff","intentId":"\#(String(repeating: "i", count: 65))","signal":{}}"#) == .badField)
        #expect(code(#"{"type":"signal","to":"0000000000ff","intentId":"i","signal":"offer"}"#) == .badField)
        #expect(code(#"{"type":"report","stats":{"x":-1}}"#) == .badField)
        #expect(code(#"{"type":"report","stats":{"x":1e300}}"#) == .badField)
        #expect(code(#"{"type":"report","stats":{"x":"1"}}"#) == .badField)
        #expect(code(#"{"type":"report"}"#) == .badField)
    }

    @Test func serverMessagesEncode() throws {
        let text = String(decoding: ServerMessage.fingerUpdate(row: 3, start: PeerID(8), peer: nil).encoded(), as: UTF8.self)
        #expect(text == #"{"peerId":null,"row":3,"start":"000000000008","type":"finger-update"}"#)
        let signal = ServerMessage.signal(from: PeerID(1), intentId: "a/b", signal: ["candidate": "x y"]).encoded()
        #expect(String(decoding: signal, as: UTF8.self) == #"{"from":"000000000001","intentId":"a/b","signal":{"candidate":"x y"},"type":"signal"}"#)
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 1)
        for _ in 0..<5000 {
            let n = Int(rng.next() % 40)
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? ClientMessage.decode(bytes)
        }
    }
}
