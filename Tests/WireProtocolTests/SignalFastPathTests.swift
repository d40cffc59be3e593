import Ring
import Testing
@testable import WireProtocol

/// `ClientMessage.decodeUsualSignal` (the relay's hot path) against `decodeGeneral` (the reader of every
/// frame): on seeded generated `signal` frames, usual and not, whenever the hot path answers it must give
/// what the general reader gives; it must answer for the usual shapes, and leave every error to the
/// general reader.
@Suite struct SignalFastPathTests {
    private let limits = DecodingLimits()

    private func general(_ frame: [UInt8]) -> Result<ClientMessage, ProtocolError> {
        do throws(ProtocolError) { return .success(try ClientMessage.decodeGeneral(frame, limits: limits)) } catch { return .failure(error) }
    }

    private func fast(_ frame: [UInt8]) -> ClientMessage? {
        frame.withUnsafeBufferPointer { ClientMessage.decodeUsualSignal($0, limits: limits) }
    }

    @Test func theUsualShapeTakesTheHotPathWithTheSameResult() throws {
        let frames = [
            #"{"type":"signal","to":"0123456789ab","intentId":"i","signal":{"type":"offer","sdp":"v=0\r\n"}}"#,
            #" { "signal" : {} , "intentId":"x" ,"to":"ffffffffffff","type":"signal" } "#,
            "{\"type\":\"signal\",\n\"to\":\"000000000000\",\t\"intentId\":\"\(String(repeating: "z", count: 64))\",\"signal\":{\"a\":[1,2,{\"b\":null}]}}",
        ]
        for text in frames {
            let frame = Array(text.utf8)
            let hot = try #require(fast(frame), "not taken: \(text)")
            #expect(Result.success(hot) == general(frame), "\(text)")
        }
    }

    @Test func unusualAndBadFramesAreLeftToTheGeneralReader() {
        let frames = [
            #"{"type":"signal","to":"0123456789ab","intentId":"i","signal":{},"extra":1}"#,       // an extra key
            #"{"type":"signal","to":"0123456789ab","intentId":"i","signal":{},"to":"0123456789ab"}"#,   // repeated key
            #"{"t\u0079pe":"signal","to":"0123456789ab","intentId":"i","signal":{}}"#,           // escaped key
            #"{"type":"sign\u0061l","to":"0123456789ab","intentId":"i","signal":{}}"#,           // escaped value
            #"{"type":"signal","to":"0123456789AB","intentId":"i","signal":{}}"#,                // uppercase ID
            #"{"type":"signal","to":"0123456789a","intentId":"i","signal":{}}"#,                 // short ID
            #"{"type":"signal","to":"0123456789ab","intentId":"","signal":{}}"#,                 // empty intent
            "{\"type\":\"signal\",\"to\":\"0123456789ab\",\"intentId\":\"\(String(repeating: "z", count: 65))\",\"signal\":{}}",
            #"{"type":"signal","to":"0123456789ab","intentId":"é","signal":{}}"#,                // non-ASCII intent
            #"{"type":"signal","to":"0123456789ab","intentId":"i","signal":[]}"#,                // not an object
            #"{"type":"signal","to":"0123456789ab","intentId":"i","signal":{"a":1,}}"#,          // invalid JSON
            #"{"type":"signal","to":"0123456789ab","intentId":"i","signal":{}} x"#,              // trailing bytes
            #"{"type":"signal","to":"0123456789ab","intentId":"i"}"#,                            // missing signal
            #"{"type":"register","to":"0123456789ab","intentId":"i","signal":{}}"#,              // another type
            #"{"type":"signal","to":null,"intentId":"i","signal":{}}"#,
            #"{}"#, #"[]"#, "",
        ]
        for text in frames {
            #expect(fast(Array(text.utf8)) == nil, "taken: \(text)")
        }
    }

    @Test func theNestingLimitIsTheGeneralReaders() {
        // The top-level object is depth 1: `signal` at depth 2 may hold containers down to depth 64.
        for depth in 60...66 {
            let inner = String(repeating: "[", count: depth - 2) + String(repeating: "]", count: depth - 2)
            let frame = Array(#"{"type":"signal","to":"0123456789ab","intentId":"i","signal":{"a":\#(inner)}}"#.utf8)
            let hot = fast(frame), reference = general(frame)
            if let hot { #expect(Result.success(hot) == reference, "depth \(depth)") }
            #expect((hot != nil) == ((try? reference.get()) != nil), "depth \(depth)")
        }
    }

    /// Mutated frames: each generated frame is a usual one with random edits (bytes replaced, inserted,
    /// deleted, keys reordered, whitespace added). Wherever the hot path answers, it equals the general
    /// reader; and it answers for a good share of them (else the comparison would prove nothing).
    @Test func generatedFramesAgreeWithTheGeneralReader() {
        let seed = UInt64.random(in: 0 ... .max)
        print("SignalFastPathTests seed \(seed)")
        var rng = SplitMix64(seed: seed)
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        let alphabet = Array(#"{}[]",:\ 0123456789abcdefABCDEFtypesignaltointentIdnullrue-.eE"#.utf8) + [0x09, 0x0A, 0xC3, 0xA9, 0x00, 0x7F]
        var taken = 0, total = 0
        for _ in 0..<20_000 {
            let members = [#""type":"signal""#, #""to":"\#(pick(["0123456789ab", "ffffffffffff", "0000000000a1"]))""#,
                           #""intentId":"\#(pick(["i", "intent-1", "a b", String(repeating: "q", count: 64)]))""#,
                           #""signal":\#(pick([#"{}"#, #"{"type":"offer","sdp":"v=0\r\n"}"#, #"{"candidate":{"c":[1,2.5e3,null,true]}}"#]))"#]
            var order = members
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            var frame = Array(("{" + order.joined(separator: pick([",", " , ", ",\n"])) + "}").utf8)
            for _ in 0..<Int(rng.next() % 3) where !frame.isEmpty {
                let at = Int(rng.next() % UInt64(frame.count))
                switch rng.next() % 3 {
                case 0: frame[at] = pick(alphabet)
                case 1: frame.insert(pick(alphabet), at: at)
                default: frame.remove(at: at)
                }
            }
            total += 1
            guard let hot = fast(frame) else { continue }
            taken += 1
            let reference = general(frame)
            #expect(Result.success(hot) == reference, "seed \(seed): \(String(decoding: frame, as: UTF8.self))")
        }
        #expect(taken > total / 4, "the hot path answered \(taken) of \(total)")
    }
}
