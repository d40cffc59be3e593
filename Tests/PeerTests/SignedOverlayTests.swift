import Hex
import Peer
import Ring
import Signatures
import SignedOverlay
import Testing
import WireProtocol

/// Signing and verifying overlay messages with keys made here (seeded, printed) and the Peer target's
/// link frames: a large signed message is signed once, split into `C` parts, relayed, and verified.
@Suite struct SignedOverlayTests {
    struct Cast {
        let server: Ed25519.PrivateKey
        let a: Ed25519.PrivateKey, b: Ed25519.PrivateKey
        let idA = PeerID(hex: "2aaaaaaaaaaa")!, idB = PeerID(hex: "7fffffffffff")!
        let certA: Certificate
        let signerA: OverlaySigner

        init(seed: UInt64) throws {
            print("SignedOverlayTests seed \(seed)")
            var random = SplitMix64(seed: seed)
            func key() throws -> Ed25519.PrivateKey {
                try Ed25519.PrivateKey(seed: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
            }
            server = try key(); a = try key(); b = try key()
            certA = Certificate.issue(by: server, peerId: idA, publicKey: a.publicKey, epoch: 7)
            signerA = try #require(try OverlaySigner(key: a, certificate: certA))
        }
    }

    let now: Int64 = 1_796_000_000_000

    @Test func parsedKeysSignAndVerifyLikeThePerCallFunctions() throws {
        let c = try Cast(seed: 11)
        let signing = try Ed25519.SigningKey(c.a)
        let verifying = try Ed25519.VerifyingKey(c.a.publicKey)
        for message in [[], [1], Array(repeating: UInt8(7), count: 70_000)] as [[UInt8]] {
            let s = signing.signature(for: message)
            #expect(s == c.a.signature(for: message))
            #expect(verifying.isValidSignature(s, for: message))
            #expect(!verifying.isValidSignature(s, for: message + [0]))
            #expect(!verifying.isValidSignature(Array(s.dropLast()), for: message))
        }
    }

    @Test func certificatesRoundTripAndAreSignedByTheirServerOnly() throws {
        let c = try Cast(seed: 12)
        let text = c.certA.text
        #expect(text.utf8.count == 220)
        let parsed = try #require(Certificate(Array(text.utf8)))
        #expect(parsed == c.certA)
        #expect(parsed.isSigned(by: c.server.publicKey))
        #expect(!parsed.isSigned(by: c.b.publicKey))
        #expect(Certificate(Array(text.uppercased().utf8)) == nil)
        #expect(Certificate(Array(text.dropLast().utf8)) == nil)
    }

    @Test func aSignerRefusesAKeyThatIsNotItsCertificates() throws {
        let c = try Cast(seed: 13)
        #expect(try OverlaySigner(key: c.b, certificate: c.certA) == nil)
        #expect(c.signerA.frame(to: c.idB, id: "has space", at: now, data: .number(1)) == nil)
        #expect(c.signerA.frame(to: c.idB, id: "", at: now, data: .number(1)) == nil)
        #expect(c.signerA.frame(to: c.idB, id: "ok", at: -1, data: .number(1)) == nil)
    }

    @Test func oneCertificateCheckForManyMessagesAndEveryMessageOnce() throws {
        let c = try Cast(seed: 14)
        var verifier = OverlayVerifier(serverKey: c.server.publicKey, me: c.idB)
        for n in 0..<20 {
            let frame = try #require(c.signerA.frame(to: c.idB, id: "m\(n)", at: now + Int64(n), data: .object(["n": .number(Double(n))])))
            guard case .accepted(let m) = verifier.verify(frame, nowMs: now) else { Issue.record("message \(n) refused"); return }
            #expect(m.srcId == c.idA && m.epoch == 7 && m.data == .object(["n": .number(Double(n))]))
            #expect(verifier.verify(frame, nowMs: now) == .rejected(.replayed))
        }
        #expect(verifier.counters.certificateChecks == 1)
        #expect(verifier.counters.accepted == 20)
        #expect(verifier.counters.rejected == [.replayed: 20])
        #expect(verifier.counters.forgeries == 20)
    }

    @Test func aVerifierWithoutAnIDAcceptsNothing() throws {
        let c = try Cast(seed: 15)
        var verifier = OverlayVerifier(serverKey: c.server.publicKey, me: nil)
        let frame = try #require(c.signerA.frame(to: c.idB, id: "x", at: now, data: .number(1)))
        #expect(verifier.verify(frame, nowMs: now) == .rejected(.wrongDestination))
        verifier.me = c.idB
        guard case .accepted = verifier.verify(frame, nowMs: now) else { Issue.record("refused once registered"); return }
    }

    @Test func epochsLearnedElsewhereRefuseAnOldHolder() throws {
        let c = try Cast(seed: 16)
        var verifier = OverlayVerifier(serverKey: c.server.publicKey, me: c.idB)
        verifier.noteEpoch(8, for: c.idA)
        verifier.noteEpoch(3, for: c.idA)
        #expect(verifier.highestEpoch(of: c.idA) == 8)
        let frame = try #require(c.signerA.frame(to: c.idB, id: "x", at: now, data: .number(1)))
        #expect(verifier.verify(frame, nowMs: now) == .rejected(.staleEpoch))
    }

    @Test func boundedStoresForgetTheOldestFirst() throws {
        let c = try Cast(seed: 17)
        var limits = OverlayVerifier.Limits()
        limits.maxCachedCertificates = 2
        limits.maxKnownEpochs = 2
        var verifier = OverlayVerifier(serverKey: c.server.publicKey, me: c.idB, limits: limits)
        var signers: [OverlaySigner] = []
        for n in 1...3 {
            let cert = Certificate.issue(by: c.server, peerId: PeerID(UInt64(n)), publicKey: c.a.publicKey, epoch: 1)
            signers.append(try #require(try OverlaySigner(key: c.a, certificate: cert)))
        }
        for (n, s) in signers.enumerated() {
            guard case .accepted = verifier.verify(try #require(s.frame(to: c.idB, id: "a", at: now, data: .number(1))), nowMs: now) else {
                Issue.record("signer \(n) refused"); return
            }
        }
        #expect(verifier.counters.certificateChecks == 3)
        #expect(verifier.highestEpoch(of: PeerID(1)) == nil && verifier.highestEpoch(of: PeerID(3)) == 1)
        // The first certificate left the cache: checked again; the third is still cached.
        _ = verifier.verify(try #require(signers[2].frame(to: c.idB, id: "b", at: now, data: .number(1))), nowMs: now)
        #expect(verifier.counters.certificateChecks == 3)
        _ = verifier.verify(try #require(signers[0].frame(to: c.idB, id: "b", at: now, data: .number(1))), nowMs: now)
        #expect(verifier.counters.certificateChecks == 4)
    }

    /// A 3 MiB message: signed once, split into 1 MiB `C` parts by the Peer target's link frames,
    /// reassembled, relayed (hops + 1, split again under another part ID), reassembled and verified.
    @Test func aLargeSignedMessageIsSignedOnceSplitRelayedAndVerified() throws {
        let c = try Cast(seed: 18)
        let data = JSONValue.object(["tile": .string(String(repeating: "é0123456789abcdef", count: 3 * 1024 * 1024 / 18))])
        let frame = try #require(c.signerA.frame(to: c.idB, id: "big", at: now, data: data))
        #expect(frame.count > 3 * 1024 * 1024)
        func carry(_ frame: [UInt8], chunkId: String) throws -> [UInt8] {
            let frames = linkFrames(whole: frame, limit: 1024 * 1024, chunkId: chunkId)
            #expect(frames.count == 4)
            var reassembler = Reassembler(maxBytes: 16 * 1024 * 1024)
            var whole: [UInt8]?
            for f in frames.reversed() {
                guard case .chunk(let id, let index, let count, let part)? = LinkFrame.parse(f) else { Issue.record("not a part"); continue }
                if case .complete(let text) = reassembler.add(id: id, index: index, count: count, part: part) { whole = text }
            }
            return try #require(whole)
        }
        let atRelay = try carry(frame, chunkId: "p1")
        #expect(atRelay == frame)
        let parsed = try #require(SignedFrame.parse(atRelay))
        #expect(parsed.dstId == c.idB && parsed.hops == 0)
        let atDestination = try carry(parsed.relayed().encoded(), chunkId: "p2")
        var verifier = OverlayVerifier(serverKey: c.server.publicKey, me: c.idB)
        guard case .accepted(let m) = verifier.verify(atDestination, nowMs: now) else { Issue.record("refused"); return }
        #expect(m.hops == 1 && m.data == data)
        // A small signed frame goes whole.
        let small = try #require(c.signerA.frame(to: c.idB, id: "small", at: now, data: .number(1)))
        #expect(linkFrames(whole: small, limit: 1024 * 1024, chunkId: "p3") == [small])
    }

    @Test func relayingChangesOnlyTheHops() throws {
        let c = try Cast(seed: 19)
        let frame = try #require(c.signerA.frame(to: c.idB, id: "r", at: now, data: .array([.number(1), "x"])))
        var f = try #require(SignedFrame.parse(frame))
        for _ in 0..<12 { f = try #require(SignedFrame.parse(f.relayed().encoded())) }
        let text = String(decoding: f.encoded(), as: UTF8.self)
        let original = String(decoding: frame, as: UTF8.self)
        #expect(text.hasPrefix("S12:") && text.dropFirst(4) == original.dropFirst(3))
    }
}
