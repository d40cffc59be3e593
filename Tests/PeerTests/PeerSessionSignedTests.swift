import Hex
import Peer
import Ring
import Signatures
import SignedOverlay
import Testing
import Transport
import WireProtocol

// Signed overlay messages in the peer's session core (docs/protocol.md, "Signed overlay messages"): real
// Ed25519 keys and certificates, no sockets. `me` is responsible for (pred, me]; `b` reaches it over the
// link on connection 20.

private let me = PeerID(hex: "400000000000")!
private let pred = PeerID(hex: "200000000000")!
private let a = PeerID(hex: "800000000000")!
private let b = PeerID(hex: "c00000000000")!
private let server: ConnectionID = 1
private let nowMs: Int64 = 1_796_000_000_000

private func key(_ byte: UInt8) -> Ed25519.PrivateKey { try! Ed25519.PrivateKey(seed: [UInt8](repeating: byte, count: 32)) }
private let serverPrivate = key(0x22)
private let serverKey = Hex.encode(serverPrivate.publicKey.bytes)
private let myKey = key(0x11), bKey = key(0x33), forgerKey = key(0x44)
private func certificate(_ id: PeerID, _ k: Ed25519.PrivateKey, epoch: UInt64 = 7) -> Certificate {
    Certificate.issue(by: serverPrivate, peerId: id, publicKey: k.publicKey, epoch: epoch)
}
/// Signers are not Sendable (libcrypto key objects): one per use.
private var bSigner: OverlaySigner { try! OverlaySigner(key: bKey, certificate: certificate(b, bKey))! }
private var forgerSigner: OverlaySigner { try! OverlaySigner(key: forgerKey, certificate: certificate(a, forgerKey))! }

private func text(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A session registered as `me` with a genuine certificate, with `pred` as predecessor and an open link
/// to `b` (its successor) on connection 20.
private func linked() -> PeerSession {
    let seed: UInt64 = 0x5EED_0043
    print("PeerSessionSignedTests: random seed \(seed)")
    var s = PeerSession(configuration: PeerConfiguration(), url: "ws://127.0.0.1:7001/", identity: PeerIdentity(key: myKey),
                        random: SplitMix64(seed: seed))
    _ = s.connect()
    s.serverConnecting(server, now: 0)
    _ = s.opened(server, now: 0)
    _ = s.received(server, text: text(#"{"type":"challenge","nonce":"\#(String(repeating: "01", count: 32))","serverKey":"\#(serverKey)"}"#), now: 0, wallClockMs: nowMs)
    let registered = #"{"type":"registered","peerId":"\#(me.hex)","epoch":"0000000000000007","certificate":"\#(certificate(me, myKey).text)","config":{"idBits":48,"fingerRows":[0,46,47],"successors":3,"maxMessageBytes":65536,"idleTimeoutSeconds":30,"linkRelay":false,"serverKey":"\#(serverKey)"}}"#
    _ = s.received(server, text: text(registered), now: 0, wallClockMs: nowMs)
    _ = s.received(server, text: text(#"{"type":"predecessor","peerId":"\#(pred.hex)"}"#), now: 0, wallClockMs: nowMs)
    let signals = s.received(server, text: text(#"{"type":"successors","peerIds":["\#(b.hex)"]}"#), now: 0, wallClockMs: nowMs)
    let nonce = signals.compactMap { action -> String? in
        guard case .sendServer(_, .signal(_, _, let raw)) = action else { return nil }
        return raw.value?["nonce"]?.stringValue
    }.first ?? ""
    _ = s.opened(20, now: 0)
    _ = s.received(20, text: LinkFrame.hello(peerId: b, nonce: nonce).encoded(), now: 0, wallClockMs: nowMs)
    return s
}

private func reasons(_ actions: [PeerAction]) -> [String] {
    actions.compactMap { if case .forgery(let reason, _, _) = $0 { reason } else { nil } }
}

@Suite struct PeerSessionSignedTests {
    @Test func signedMessagesAreDeliveredRelayedByteIdenticalOrDropped() {
        var s = linked()
        let mine = bSigner.frame(to: me, id: "m1", at: nowMs, data: .object(["x": .number(1)]))!
        #expect(s.received(20, text: mine, now: 0, wallClockMs: nowMs)
            == [.deliver(Envelope(srcId: b, dstId: me, data: .object(["x": .number(1)]), hops: 1, id: "m1"))])
        // Not for this peer: forwarded to the successor with one more hop, the rest byte-identical, unverified.
        var onward = SignedFrame.parse(bSigner.frame(to: a, id: "m2", at: nowMs, data: .string("é"))!)!
        onward.hops = 5
        let out = s.received(20, text: onward.encoded(), now: 0, wallClockMs: nowMs)
        guard case .forward(20, let frames, let failure)? = out.first, out.count == 1 else { Issue.record("not forwarded: \(out)"); return }
        #expect(frames == [onward.relayed().encoded()] && failure?.code == "no-route")
        onward.hops = 64
        #expect(s.received(20, text: onward.encoded(), now: 0, wallClockMs: nowMs).map { if case .error(let e) = $0 { e.code } else { "" } } == ["hop-limit"])
        #expect(s.overlayCounters.accepted == 1 && s.overlayCounters.forgeries == 0)
    }

    @Test func forgeriesAndUnsignedMessagesAreRefusedAndCounted() {
        var s = linked()
        let genuine = bSigner.frame(to: me, id: "g1", at: nowMs, data: .object(["n": .number(1)]))!
        // A relay rewrites srcId, keeping b's certificate; or writes as `a` with its own key and a's ID.
        let rewritten = text(String(decoding: genuine, as: UTF8.self).replacingOccurrences(of: #"{"srcId":"c00000000000""#, with: #"{"srcId":"800000000000""#))
        #expect(reasons(s.received(20, text: rewritten, now: 0, wallClockMs: nowMs)) == ["wrong-source"])
        var altered = genuine
        altered[altered.count - 3] = UInt8(ascii: "2")   // "n":1 → "n":2
        #expect(reasons(s.received(20, text: altered, now: 0, wallClockMs: nowMs)) == ["bad-signature"])
        // b's key with a certificate of another server (another ring).
        let foreign = try! OverlaySigner(key: bKey, certificate: Certificate.issue(by: key(0x55), peerId: b, publicKey: bKey.publicKey, epoch: 9))!
        #expect(reasons(s.received(20, text: foreign.frame(to: me, id: "f1", at: nowMs, data: .null)!, now: 0, wallClockMs: nowMs)) == ["bad-certificate"])
        // A genuine message delivered twice.
        #expect(s.received(20, text: genuine, now: 0, wallClockMs: nowMs).count == 1)
        #expect(reasons(s.received(20, text: genuine, now: 0, wallClockMs: nowMs)) == ["replayed"])
        // A key of this peer's range (pred, me], as discovery queries are addressed: delivered here.
        let key = PeerID(hex: "300000000000")!
        #expect(s.received(20, text: bSigner.frame(to: key, id: "g2", at: nowMs, data: .null)!, now: 0, wallClockMs: nowMs)
            == [.deliver(Envelope(srcId: b, dstId: key, data: .null, hops: 1, id: "g2"))])
        #expect(reasons(s.received(20, text: genuine, now: 0, wallClockMs: nowMs + 400_000)) == ["outside-window"])
        let unsigned = LinkFrame.message(text(#"{"srcId":"c00000000000","dstId":"400000000000","data":{},"hops":0,"id":"u"}"#)).encoded()
        #expect(reasons(s.received(20, text: unsigned, now: 0, wallClockMs: nowMs)) == ["unsigned"])
        #expect(reasons(s.received(20, text: text("S1:zz"), now: 0, wallClockMs: nowMs)) == ["malformed"])
        let c = s.overlayCounters
        #expect(c.accepted == 2)
        #expect(c.refused["wrong-source"] == 1 && c.refused["bad-signature"] == 1 && c.refused["replayed"] == 1
            && c.refused["outside-window"] == 1 && c.refused["unsigned"] == 1
            && c.refused["malformed"] == 1 && c.refused["bad-certificate"] == 1 && c.forgeries == 7)
    }

    @Test func ringUpdateEpochsMakeADepartedHoldersCertificateStale() {
        // b holds its ID at epoch 7 and its messages are accepted; then b's lease ends and a newcomer with
        // another key gets b's ID at epoch 8. The ring update naming it carries epoch 8: b's old (genuine)
        // certificate is refused as stale from then on, before any message of the newcomer arrived.
        var s = linked()
        #expect(s.received(20, text: bSigner.frame(to: me, id: "b1", at: nowMs, data: .null)!, now: 0, wallClockMs: nowMs).count == 1)
        _ = s.received(server, text: text(#"{"type":"successors","peerIds":["\#(b.hex)"],"epochs":["0000000000000008"]}"#), now: 0, wallClockMs: nowMs)
        #expect(reasons(s.received(20, text: bSigner.frame(to: me, id: "b2", at: nowMs, data: .null)!, now: 0, wallClockMs: nowMs)) == ["stale-epoch"])
        let newcomerKey = key(0x66)
        let newcomer = try! OverlaySigner(key: newcomerKey, certificate: certificate(b, newcomerKey, epoch: 8))!
        #expect(s.received(20, text: newcomer.frame(to: me, id: "n1", at: nowMs, data: .null)!, now: 0, wallClockMs: nowMs)
            == [.deliver(Envelope(srcId: b, dstId: me, data: .null, hops: 1, id: "n1"))])
        // `predecessor` and `finger-update` carry epochs too; a lower epoch never lowers what is known.
        _ = s.received(server, text: text(#"{"type":"finger-update","row":46,"start":"c00000000000","peerId":"\#(a.hex)","epoch":"0000000000000009"}"#), now: 0, wallClockMs: nowMs)
        #expect(reasons(s.received(20, text: forgerSigner.frame(to: me, id: "a1", at: nowMs, data: .null)!, now: 0, wallClockMs: nowMs)) == ["stale-epoch"])
        _ = s.received(server, text: text(#"{"type":"predecessor","peerId":"\#(b.hex)","epoch":"0000000000000001"}"#), now: 0, wallClockMs: nowMs)
        #expect(reasons(s.received(20, text: bSigner.frame(to: me, id: "b3", at: nowMs, data: .null)!, now: 0, wallClockMs: nowMs)) == ["stale-epoch"])
        let c = s.overlayCounters
        #expect(c.accepted == 2 && c.refused["stale-epoch"] == 3 && c.forgeries == 3)
    }

    @Test func aCertificateOfTheIDWithAnotherKeyDoesNotVerify() {
        // The forger holds a genuine certificate for `a` with its own key and signs as `a`; rewriting srcId
        // to b while keeping its own certificate is `wrong-source`, and b's certificate with the forger's
        // signature is `bad-signature`.
        var s = linked()
        let own = forgerSigner.frame(to: me, id: "f1", at: nowMs, data: .null)!
        #expect(s.received(20, text: own, now: 0, wallClockMs: nowMs).count == 1)   // genuine for `a`: accepted
        let f = SignedFrame.parse(forgerSigner.frame(to: me, id: "f2", at: nowMs, data: .null)!)!
        let bCertificate = certificate(b, bKey).text
        let swapped = "S0:\(bCertificate):\(String(decoding: f.signature, as: UTF8.self)):" + String(decoding: f.body, as: UTF8.self).replacingOccurrences(of: a.hex, with: b.hex)
        #expect(reasons(s.received(20, text: text(swapped), now: 0, wallClockMs: nowMs)) == ["bad-signature"])
    }

    @Test func sendSignsOnceWithTheCertificateAndTheDestinationAccepts() {
        var s = linked()
        let (routed, actions) = s.send(to: b, data: .object(["k": .string("v")]), wallClockMs: nowMs)
        guard routed, case .forward(20, let frames, _)? = actions.first, frames.count == 1 else { Issue.record("\(actions)"); return }
        var verifier = OverlayVerifier(serverKey: serverPrivate.publicKey, me: b)
        guard case .accepted(let m) = verifier.verify(frames[0], nowMs: nowMs + 10) else { Issue.record("refused"); return }
        #expect(m.srcId == me && m.data == .object(["k": .string("v")]) && m.hops == 0)
        // Larger than a part: C parts of the whole frame, which reassemble to the frame.
        let big = JSONValue.string(String(repeating: "x", count: 3 * 1024 * 1024))
        let (_, parts) = s.send(to: b, data: big, wallClockMs: nowMs)
        guard case .forward(_, let chunks, _)? = parts.first else { Issue.record("\(parts)"); return }
        #expect(chunks.count == 4 && chunks.allSatisfy { $0.first == UInt8(ascii: "C") })
    }
}
