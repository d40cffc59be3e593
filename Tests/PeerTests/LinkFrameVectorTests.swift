import Foundation
import Peer
import Ring
import Testing
import WireProtocol

/// The native peer's link frames against the shared vectors (Tests/vectors/link-frames.json, written by
/// make_link_frame_vectors.py from docs/protocol.md), which the browser's explorer/link-frame.js also
/// reproduces (Tests/e2e/test_link_frames.py), so the two cannot drift apart.
@Suite struct LinkFrameVectorTests {
    let file: JSONValue

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/link-frames.json")
        file = try #require(JSONValue(parsing: [UInt8](try Data(contentsOf: url))))
    }

    /// A parsed frame in the vectors' shape.
    static func shape(_ frame: LinkFrame?) -> JSONValue {
        func text(_ bytes: [UInt8]) -> JSONValue { .string(String(decoding: bytes, as: UTF8.self)) }
        switch frame {
        case nil: return .null
        case .message(let m)?: return .object(["kind": "message", "text": text(m)])
        case .chunk(let id, let index, let count, let part)?:
            return .object(["kind": "chunk", "id": .string(id), "index": .number(Double(index)), "count": .number(Double(count)), "part": text(part)])
        case .retire?: return .object(["kind": "retire"])
        case .keep?: return .object(["kind": "keep"])
        case .hello(let peerId, let nonce)?: return .object(["kind": "hello", "peerId": .string(peerId.hex), "nonce": .string(nonce)])
        case .welcome(let peerId)?: return .object(["kind": "welcome", "peerId": .string(peerId.hex)])
        case .neighbours(let ids)?: return .object(["kind": "neighbours", "ids": .array(ids.map { .string($0.hex) })])
        }
    }

    @Test func framesParseAsTheVectorsSay() throws {
        let frames = try #require(file["frames"]?.arrayValue)
        #expect(frames.count >= 300)
        for v in frames {
            let text = try #require(v["frame"]?.stringValue)
            #expect(Self.shape(LinkFrame.parse(Array(text.utf8))) == v["expect"], "\(text)")
        }
    }

    @Test func reassemblyOutcomesAreTheVectors() throws {
        let sequences = try #require(file["sequences"]?.arrayValue)
        #expect(sequences.count >= 60)
        for (n, s) in sequences.enumerated() {
            guard case .number(let max)? = s["maxChars"], let parts = s["parts"]?.arrayValue else { Issue.record("sequence \(n)"); continue }
            var r = Reassembler(maxBytes: Int(max))
            var got: [JSONValue] = []
            for p in parts {
                guard let f = p.arrayValue, f.count == 4, let id = f[0].stringValue, case .number(let i) = f[1],
                      case .number(let c) = f[2], let part = f[3].stringValue else { Issue.record("sequence \(n)"); break }
                switch r.add(id: id, index: Int(i), count: Int(c), part: Array(part.utf8)) {
                case .pending: got.append(.object(["status": "pending"]))
                case .complete(let whole): got.append(.object(["status": "complete", "text": .string(String(decoding: whole, as: UTF8.self))]))
                case .overflow: got.append(.object(["status": "overflow"]))
                }
                if got.last?["status"] == "overflow" { break }
            }
            #expect(JSONValue.array(got) == s["expect"], "sequence \(n)")
        }
    }
}
