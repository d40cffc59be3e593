import Foundation
import Hex
import Peer
import Ring
import Signatures
import SignedOverlay
import Testing
import WireProtocol

/// The native peer's signed overlay messages (the SignedOverlay target) against the shared vectors
/// (Tests/vectors/signed-overlay.json, written by make_signed_overlay_vectors.py with Python's
/// `cryptography` from docs/protocol.md, "Signed overlay messages"), which the browser's explorer/signed-message.js also
/// reproduces (Tests/e2e/test_signed_overlay.py).
@Suite struct SignedOverlayVectorTests {
    let file: JSONValue

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/signed-overlay.json")
        file = try #require(JSONValue(parsing: [UInt8](try Data(contentsOf: url))))
    }

    var serverKey: Ed25519.PublicKey {
        get throws { try Ed25519.PublicKey(bytes: try #require(file["serverKey"]?.stringValue.flatMap(Hex.decode))) }
    }

    /// A verdict in the vectors' shape.
    static func shape(_ verdict: OverlayVerifier.Verdict) -> JSONValue {
        switch verdict {
        case .rejected(let reason): return .object(["verdict": "rejected", "reason": .string(reason.rawValue)])
        case .accepted(let m):
            return .object(["verdict": "accepted", "srcId": .string(m.srcId.hex), "id": .string(m.id),
                            "at": .number(Double(m.at)), "epoch": .string(Hex.encode(m.epoch, digits: 16)),
                            "hops": .number(Double(m.hops)), "data": m.data])
        }
    }

    @Test func framesParseAsTheVectorsSay() throws {
        let frames = try #require(file["frames"]?.arrayValue)
        #expect(frames.count >= 40)
        var parsed = 0
        for v in frames {
            let text = try #require(v["frame"]?.stringValue)
            let got: JSONValue = SignedFrame.parse(Array(text.utf8)).map { f in
                parsed += 1
                return .object(["hops": .number(Double(f.hops)), "srcId": .string(f.srcId.hex), "dstId": .string(f.dstId.hex),
                                "id": .string(f.id), "at": .number(Double(f.at)),
                                "relayed": .string(String(decoding: f.relayed().encoded(), as: UTF8.self))])
            } ?? .null
            #expect(got == v["expect"], "\(text.prefix(80))")
        }
        #expect(parsed >= 5)
    }

    @Test func signersWriteTheVectorFramesByteForByte() throws {
        let peers = try #require(file["peers"])
        for v in try #require(file["signing"]?.arrayValue) {
            let name = try #require(v["peer"]?.stringValue)
            let seed = try #require(peers[name]?["seed"]?.stringValue.flatMap(Hex.decode))
            let certificateText = try #require(peers[name]?["certificate"]?.stringValue)
            let certificate = try #require(Certificate(Array(certificateText.utf8)))
            let key = try Ed25519.PrivateKey(seed: seed)
            let signer = try #require(try OverlaySigner(key: key, certificate: certificate))
            let dst = try #require(v["dstId"]?.stringValue.flatMap(PeerID.init(hex:)))
            guard case .number(let atMs)? = v["at"] else { Issue.record("no at"); continue }
            let id = try #require(v["id"]?.stringValue)
            let data = try #require(v["data"])
            let frame = try #require(signer.frame(to: dst, id: id, at: Int64(atMs), data: data))
            #expect(String(decoding: frame, as: UTF8.self) == v["frame"]?.stringValue)
        }
    }

    @Test func sequencesReachTheVectorVerdicts() throws {
        let sequences = try #require(file["sequences"]?.arrayValue)
        #expect(sequences.count >= 12)
        for s in sequences {
            let name = s["name"]?.stringValue ?? "?"
            var limits = OverlayVerifier.Limits()
            if case .number(let t)? = s["timeToleranceMs"] { limits.timeToleranceMs = Int64(t) }
            if case .number(let r)? = s["maxReplayEntries"] { limits.maxReplayEntries = Int(r) }
            var verifier = OverlayVerifier(serverKey: try serverKey, me: s["self"]?.stringValue.flatMap(PeerID.init(hex:)), limits: limits)
            for (n, step) in try #require(s["steps"]?.arrayValue).enumerated() {
                guard case .number(let now)? = step["now"], let frame = step["frame"]?.stringValue else {
                    Issue.record("bad step \(n) of \(name)"); continue
                }
                let verdict = verifier.verify(Array(frame.utf8), nowMs: Int64(now))
                #expect(Self.shape(verdict) == step["expect"], "\(name), step \(n)")
            }
            var counts: [String: JSONValue] = [:]
            if verifier.counters.accepted > 0 { counts["accepted"] = .number(Double(verifier.counters.accepted)) }
            for (reason, c) in verifier.counters.rejected { counts[reason.rawValue] = .number(Double(c)) }
            #expect(JSONValue.object(counts) == s["counts"], "\(name)")
            #expect(JSONValue.number(Double(verifier.counters.certificateChecks)) == s["certificateChecks"], "\(name)")
        }
    }

    /// Every reason of the verifier appears in the vectors, so none of them is untested in either engine.
    @Test func theVectorsCoverEveryReason() throws {
        var reasons = Set<String>()
        for s in try #require(file["sequences"]?.arrayValue) {
            for step in s["steps"]?.arrayValue ?? [] { if let r = step["expect"]?["reason"]?.stringValue { reasons.insert(r) } }
        }
        #expect(reasons == Set(OverlayVerifier.Reason.allCases.map(\.rawValue)))
    }
}
