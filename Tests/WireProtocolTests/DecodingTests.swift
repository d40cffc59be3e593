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

extension ClientMessage {
    /// The wire name of the message's type (docs/protocol.md).
    var typeName: String {
        switch self {
        case .register: "register"
        case .signal: "signal"
        case .leave: "leave"
        case .report: "report"
        case .link: "link"
        }
    }
}

/// A well-formed public key and signature (their values are the server's business, not the decoder's).
private let pk = String(repeating: "ab", count: 32)
private let sig = String(repeating: "cd", count: 64)
private let keyFields = #""publicKey":"\#(pk)","signature":"\#(sig)""#

@Suite struct DecodingTests {
    @Test func validMessages() throws {
        #expect(try decode(#"{"type":"register",\#(keyFields)}"#).get() == .register(peerId: nil, publicKey: pk, signature: sig, capabilities: nil))
        #expect(try decode(#"{"type":"register","peerId":"00000000000a",\#(keyFields),"capabilities":{"workers":4}}"#).get()
            == .register(peerId: PeerID(10), publicKey: pk, signature: sig, capabilities: ["workers": .number(4)]))
        let raw = #"{ "type" : "offer", "sdp":"v=0\r\n", "n": [1, 2.5e3, null, true] }"#
        let signal = try decode(#"{"type":"signal","to":"0000000000ff","intentId":"i1","signal":\#(raw)}"#).get()
        #expect(signal == .signal(to: PeerID(255), intentId: "i1", signal: RawJSON(parsing: Array(raw.utf8))!))
        // Escaped keys and values are understood.
        let escaped = try decode(#"{"typ\u0065":"signal","to":"0000000000fe","intentId":"\u00e9\ud83d\ude00","signal":{}}"#).get()
        #expect(escaped == .signal(to: PeerID(254), intentId: "é😀", signal: RawJSON([:])))
        // Duplicate top-level keys are refused, also when spelled differently.
        #expect(code(#"{"type":"signal","to":"0000000000ff","to":"0000000000fe","intentId":"i","signal":{}}"#) == .badJSON)
        #expect(code(#"{"type":"leave","typ\u0065":"signal"}"#) == .badJSON)
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
        // Key-pair registration: publicKey (64) and signature (128) lowercase hex; tokens are retired.
        #expect(code(#"{"type":"register"}"#) == .badField)
        #expect(code(#"{"type":"register","peerId":"00000000000a"}"#) == .badField)
        #expect(code(#"{"type":"register","peerId":"00000000000A",\#(keyFields)}"#) == .badField)
        #expect(code(#"{"type":"register","publicKey":"\#(pk.uppercased())","signature":"\#(sig)"}"#) == .badField)
        #expect(code(#"{"type":"register","publicKey":"\#(pk)","signature":"\#(sig.dropLast())"}"#) == .badField)
        #expect(code(#"{"type":"register","publicKey":"\#(pk)"}"#) == .badField)
        #expect(code(#"{"type":"register","peerId":"00000000000a","token":"\#(String(repeating: "a", count: 64))",\#(keyFields)}"#) == .badField)
        #expect(code(#"{"type":"register",\#(keyFields),"capabilities":[1]}"#) == .badField)
        #expect(code(#"{"type":"register",\#(keyFields),"capabilities":{"x":"\#(String(repeating: "y", count: 5000))"}}"#) == .tooLarge)
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

    /// The rules the single path keeps from the old one (scanner, then JSONDecoder for other messages).
    @Test func numberRangeAndNestedDuplicates() throws {
        // Outside a signal message, a number that rounds to infinity or underflows to zero is bad-json,
        // wherever it is (also in unknown fields, and in a field named "signal").
        for n in ["1e400", "-1e400", "1e-400", "2.4e-324"] {
            #expect(code(#"{"type":"report","stats":{"x":\#(n)}}"#) == .badJSON, "\(n)")
            #expect(code(#"{"type":"leave","extra":[\#(n)]}"#) == .badJSON, "\(n)")
            #expect(code(#"{"type":"register","signal":{"a":\#(n)}}"#) == .badJSON, "\(n)")
            // A signal message is relayed as it is: its numbers are not the server's business.
            #expect(try decode(#"{"type":"signal","to":"0000000000ff","intentId":"i","signal":{"a":\#(n)},"x":\#(n)}"#).get().typeName == "signal")
        }
        #expect(try decode(#"{"type":"report","stats":{"x":0e400,"y":5e-324,"z":-0}}"#).get() == .report(stats: ["x": 0, "y": .leastNonzeroMagnitude, "z": 0]))
        // The type is checked before the numbers, as before.
        #expect(code(#"{"type":5,"x":1e400}"#) == .badField)
        // Nested repeated keys: the first one wins (JSONDecoder's rule, kept).
        #expect(try decode(#"{"type":"report","stats":{"x":1,"x":-1}}"#).get() == .report(stats: ["x": 1]))
        // ... and the dropped value's numbers are not judged (JSONDecoder never converted them).
        #expect(try decode(#"{"type":"report","stats":{"x":1,"x":1e400}}"#).get() == .report(stats: ["x": 1]))
        #expect(code(#"{"type":"report","stats":{"x":1e400,"x":1}}"#) == .badJSON)
        #expect(try decode(#"{"type":"register",\#(keyFields),"capabilities":{"w":{"a":1,"a":2}}}"#).get()
            == .register(peerId: nil, publicKey: pk, signature: sig, capabilities: ["w": .object(["a": .number(1)])]))
        // Top-level repeated keys are refused, with more than 16 keys too.
        let many = (0..<20).map { #""k\#($0)":0"# }.joined(separator: ",")
        #expect(code(#"{"type":"leave",\#(many),"k3":1}"#) == .badJSON)
        #expect(try decode(#"{"type":"leave",\#(many)}"#).get() == .leave)
        // Whitespace around everything; the not-an-object and not-JSON messages.
        #expect(try decode(" \t\r\n{ \"type\" : \"leave\" }\n").get() == .leave)
        if case .failure(let e) = decode("[1]") { #expect(e.message == "message must be a JSON object") } else { Issue.record("accepted") }
        if case .failure(let e) = decode("{]") { #expect(e.message == "message is not valid JSON") } else { Issue.record("accepted") }
        if case .failure(let e) = decode("[1") { #expect(e.message == "message is not valid JSON") } else { Issue.record("accepted") }
    }

    @Test func serverMessagesEncode() throws {
        let text = String(decoding: ServerMessage.fingerUpdate(row: 3, start: PeerID(8), peer: nil).encoded(), as: UTF8.self)
        #expect(text == #"{"peerId":null,"row":3,"start":"000000000008","type":"finger-update"}"#)
        let signal = ServerMessage.signal(from: PeerID(1), intentId: "a/\"b\n", signal: RawJSON(["candidate": "x y"])).encoded()
        #expect(String(decoding: signal, as: UTF8.self) == #"{"type":"signal","from":"000000000001","intentId":"a/\"b\n","signal":{"candidate":"x y"}}"#)
        #expect(ReferenceJSON.parse(signal)?["intentId"] == .string("a/\"b\n"))
        let vouched = ServerMessage.signal(from: PeerID(0xabc), intentId: "i", signal: RawJSON([:]), fromUrl: "wss://h.example/\"x").encoded()
        #expect(String(decoding: vouched, as: UTF8.self) == #"{"type":"signal","from":"000000000abc","fromUrl":"wss://h.example/\"x","intentId":"i","signal":{}}"#)
    }

    @Test func ringUpdatesCarryOptionalHolderEpochs() throws {
        func decode(_ text: String) throws(ProtocolError) -> ServerMessage { try ServerMessage.decode(Array(text.utf8)) }
        let a = PeerID(0xa), b = PeerID(0xb)
        let messages: [ServerMessage] = [
            .predecessor(a, epoch: 0x1_0000_0002), .predecessor(nil), .successors([a, b], epochs: [1, UInt64.max]),
            .successors([]), .fingerUpdate(row: 3, start: PeerID(8), peer: b, epoch: 7), .fingerUpdate(row: 3, start: PeerID(8), peer: nil),
        ]
        for m in messages { #expect(try decode(String(decoding: m.encoded(), as: UTF8.self)) == m) }
        #expect(String(decoding: ServerMessage.predecessor(a, epoch: 0x1_0000_0002).encoded(), as: UTF8.self)
            == #"{"epoch":"0000000100000002","peerId":"00000000000a","type":"predecessor"}"#)
        #expect(ServerMessage.successors([a, b], epochs: [1, 2]).peerEpochs.map(\.epoch) == [1, 2])
        #expect(ServerMessage.successors([a, b], epochs: [1, 2]).peerEpochs.map(\.peer) == [a, b])
        // Without epochs (an older server): decoded, nothing to note.
        #expect(try decode(#"{"type":"predecessor","peerId":"00000000000a"}"#) == .predecessor(a))
        #expect(try decode(#"{"type":"successors","peerIds":["00000000000a"]}"#).peerEpochs.isEmpty)
        // Malformed epochs are bad-field (wrong length, uppercase, not parallel, not a string).
        for bad in [#"{"type":"predecessor","peerId":"00000000000a","epoch":"01"}"#,
                    #"{"type":"predecessor","peerId":"00000000000a","epoch":"000000000000000A"}"#,
                    #"{"type":"successors","peerIds":["00000000000a"],"epochs":[]}"#,
                    #"{"type":"finger-update","row":1,"start":"000000000001","peerId":"00000000000a","epoch":7}"#] {
            #expect(throws: ProtocolError.self) { try decode(bad) }
        }
    }

    /// Mutated client frames: whatever the decoder answers agrees with an independent reading of the same
    /// bytes by Foundation. Text Foundation cannot parse is `bad-json`; a frame the decoder accepts is a JSON
    /// object whose "type" names the decoded message. Both outcomes must occur many times.
    @Test func mutatedFramesDecodeAsFoundationReadsThem() {
        let frames = [
            #"{"type":"register","capabilities":{"workers":4,"runtimes":["raytrace"]}}"#,
            #"{"type":"signal","to":"0000000000ff","intentId":"i1","signal":{"type":"offer","sdp":"v=0\r\n"}}"#,
            #"{"type":"leave"}"#,
            #"{"type":"report","stats":{"tasks":3,"ms":12.5}}"#,
        ]
        let alphabet = Array(#"{}[]":,.-+eE0123456789 abcdefnrtu\/"#.utf8) + [0x09, 0x80, 0xC3, 0xFF, 0x00]
        var rng = SplitMix64(seed: 1)
        var accepted = 0, refused = 0
        for _ in 0..<5000 {
            var text = Array(frames[Int(rng.next() % UInt64(frames.count))].utf8)
            for _ in 0..<(rng.next() % 3) {
                let at = Int(rng.next() % UInt64(text.count + 1))
                switch rng.next() % 3 {
                case 0: text.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                case 1: if at < text.count { text.remove(at: at) }
                default: if at < text.count { text[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                }
            }
            let shown = String(decoding: text, as: UTF8.self)
            let foundation = try? JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed])
            let trailingComma = shown.range(of: #",\s*[}\]]"#, options: .regularExpression) != nil
            do {
                let message = try ClientMessage.decode(text)
                accepted += 1
                let object = foundation as? [String: Any]
                #expect(object?["type"] as? String == message.typeName, "\(shown)")
            } catch {
                refused += 1
                // Foundation also accepts trailing commas, which RFC 8259 refuses.
                if foundation == nil && !trailingComma { #expect(error.code == .badJSON, "\(shown): \(error.code)") }
            }
        }
        #expect(accepted > 500 && refused > 500, "accepted \(accepted), refused \(refused)")
    }

    /// The scanner accepts exactly what Foundation's JSON parser accepts, on valid and mutated texts.
    @Test func scannerAgreesWithFoundation() {
        let seeds = [
            #"{"type":"signal","to":"0000000000ff","intentId":"i","signal":{"sdp":"v=0\r\n","c":[1,-2.5e-3,true,false,null]}}"#,
            #"{"a":"\u00e9\"\\\/\b\f\n\r\t","b":{"c":[[],{}]},"d":0,"e":-0.0,"f":1E+2}"#,
            #"{"ü":"€𝄞","x":"\ud83d\ude00"}"#,
        ]
        let alphabet = Array(#"{}[]":,.-+eE0123456789 abcdefnrtu\/"#.utf8) + [0x09, 0x80, 0xC3, 0xA9, 0xF0, 0x00, 0x1F]
        var rng = SplitMix64(seed: 3)
        var valid = 0, invalid = 0
        for _ in 0..<20000 {
            var text = Array(seeds[Int(rng.next() % UInt64(seeds.count))].utf8)
            for _ in 0..<(1 + rng.next() % 3) {
                let at = Int(rng.next() % UInt64(text.count + 1))
                switch rng.next() % 3 {
                case 0: text.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                case 1: if at < text.count { text.remove(at: at) }
                default: if at < text.count { text[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                }
            }
            let ours = text.withUnsafeBufferPointer { JSONScanner.isValid($0) }
            let foundation = (try? JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed])) != nil
            // Known, intended differences: Foundation refuses numbers beyond Double's range, which RFC 8259
            // syntax allows; Foundation accepts trailing commas, which RFC 8259 (and JSON.parse) refuse.
            let string = String(decoding: text, as: UTF8.self)
            let trailingComma = string.range(of: #",\s*[}\]]"#, options: .regularExpression) != nil
            let hugeExponent = string.range(of: #"[0-9][eE][+-]?[0-9]{3,}"#, options: .regularExpression) != nil
            if ours != foundation && !(ours && hugeExponent) && !(!ours && trailingComma) {
                Issue.record("disagree on \(String(decoding: text, as: UTF8.self)): scanner \(ours), Foundation \(foundation)")
            }
            if ours { valid += 1 } else { invalid += 1 }
        }
        // The mutations reach both sides of the question many times.
        #expect(valid > 2000 && invalid > 2000, "valid \(valid), invalid \(invalid)")
    }

    /// The writer's output (compact and indented) parses back to the same value.
    @Test func writerRoundTrips() throws {
        var rng = SplitMix64(seed: 8)
        func random(_ depth: Int) -> JSONValue {
            switch rng.next() % (depth > 3 ? 4 : 6) {
            case 0: return .null
            case 1: return .bool(rng.next() % 2 == 0)
            case 2: return .number([0, -1, 1.5, 1e-7, 123456789012, -2.25e300][Int(rng.next() % 6)])
            case 3: return .string(["", "a\"b\\c", "\u{1}\n\t\r", "é😀/", "x y"][Int(rng.next() % 5)])
            case 4: return .array((0..<(rng.next() % 4)).map { _ in random(depth + 1) })
            default:
                var o: [String: JSONValue] = [:]
                for k in 0..<(rng.next() % 4) { o["k\(k)\u{7}"] = random(depth + 1) }
                return .object(o)
            }
        }
        for _ in 0..<2000 {
            let v = random(0)
            for bytes in [v.encoded(), v.prettyEncoded()] {
                #expect(ReferenceJSON.parse(bytes) == v)
                #expect(JSONValue(parsing: bytes) == v)
                #expect(bytes.withUnsafeBufferPointer { JSONScanner.isValid($0) })
            }
        }
        #expect(String(decoding: JSONValue.object(["b": .array([]), "a": .number(2)]).encoded(), as: UTF8.self) == #"{"a":2,"b":[]}"#)
    }

    @Test func deepNestingIsRefusedWithoutCrashing() {
        let deep = Array(String(repeating: "[", count: 100_000).utf8)
        #expect(deep.withUnsafeBufferPointer { JSONScanner.isValid($0) } == false)
        #expect(code(#"{"type":"signal","to":"0000000000ff","intentId":"i","signal":"# + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}") == .badJSON)
    }
}
