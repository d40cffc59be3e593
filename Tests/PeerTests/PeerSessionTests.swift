import Hex
import Peer
import Ring
import Signatures
import Testing
import Transport
import WireProtocol

// The peer's session core without sockets: transport events in, actions out (docs/protocol.md).
// IDs are 48 bits; `me` is responsible for (pred, me].

let seed: UInt64 = 0x5EED_0042
private let me = PeerID(hex: "400000000000")!
private let pred = PeerID(hex: "200000000000")!
private let a = PeerID(hex: "800000000000")!
private let b = PeerID(hex: "c00000000000")!
private let url = "ws://127.0.0.1:7001/"
private let server: ConnectionID = 1
private let ms: UInt64 = 1_000_000
private let certificate = "400000000000abababababababababababababababababababababababababababababababab00000000000000a1cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
private let registeredText = #"{"type":"registered","peerId":"400000000000","epoch":"00000000000000a1","certificate":"\#(certificate)","config":{"idBits":48,"fingerRows":[0,46,47],"successors":3,"maxMessageBytes":65536,"idleTimeoutSeconds":30,"linkRelay":false,"serverKey":"\#(serverKey)"}}"#
/// The peer's key (seed 11 11 … 11), the server's public key and the challenge nonces of the tests.
private let identity = PeerIdentity(key: try! Ed25519.PrivateKey(seed: [UInt8](repeating: 0x11, count: 32)))
private let serverKey = String(repeating: "5e", count: 32)
private func nonce(_ n: UInt8) -> String { String(repeating: Hex.encode([n]), count: 32) }
private func challenge(_ n: UInt8) -> [UInt8] { text(#"{"type":"challenge","nonce":"\#(nonce(n))","serverKey":"\#(serverKey)"}"#) }
/// The `register` the peer must send for challenge `n` (signed for `peerId`).
private func expectedRegister(_ c: ConnectionID, _ n: UInt8, peerId: PeerID?) -> PeerAction {
    let caps: [String: JSONValue] = ["workers": .number(2), "transports": .array([.string("websocket")]), "url": .string(url)]
    return .sendServer(c, .register(peerId: peerId, publicKey: identity.publicKey,
                                    signature: identity.registrationSignature(serverKey: serverKey, nonce: nonce(n), peerId: peerId),
                                    capabilities: caps))
}

private func text(_ s: String) -> [UInt8] { Array(s.utf8) }

private func session() -> PeerSession {
    print("PeerSessionTests: random seed \(seed)")
    var config = PeerConfiguration()
    config.capabilities = ["workers": .number(2)]
    return PeerSession(configuration: config, url: url, identity: identity, random: SplitMix64(seed: seed))
}

/// A session registered as `me` at time 0 on connection 1.
private func registered() -> PeerSession {
    var s = session()
    _ = s.connect()
    s.serverConnecting(server, now: 0)
    _ = s.opened(server, now: 0)
    _ = s.received(server, text: challenge(1), now: 0, wallClockMs: 0)
    _ = s.received(server, text: text(registeredText), now: 0, wallClockMs: 0)
    return s
}

/// The "dial me" signals among `actions`: (to, url, nonce).
private func dialMes(_ actions: [PeerAction]) -> [(PeerID, String, String)] {
    actions.compactMap {
        guard case .sendServer(server, .signal(let to, _, let raw)) = $0, let v = raw.value, v["type"]?.stringValue == "dial-me" else { return nil }
        return (to, v["url"]?.stringValue ?? "", v["nonce"]?.stringValue ?? "")
    }
}

@Suite struct PeerSessionTests {
    @Test func registersWithItsCapabilitiesAndURL() {
        var s = session()
        #expect(s.state == .idle)
        #expect(s.connect() == [.connectToServer])
        #expect(s.state == .connecting)
        s.serverConnecting(server, now: 0)
        #expect(s.opened(server, now: 0) == [], "register waits for the challenge")
        #expect(s.state == .registering)
        #expect(s.received(server, text: challenge(1), now: 0, wallClockMs: 0) == [expectedRegister(server, 1, peerId: nil)])
        let actions = s.received(server, text: text(registeredText), now: 0, wallClockMs: 0)
        #expect(actions.contains(.registered(me, again: false)))
        #expect(s.state == .registered && s.peerId == me && s.certificate == certificate && s.epoch == 0xa1 && s.serverKey == serverKey)
        #expect(s.isReady, "alone: nothing needed")
    }

    @Test func theSignatureVerifiesWithThePeersKey() throws {
        var s = session()
        _ = s.connect()
        s.serverConnecting(server, now: 0)
        _ = s.opened(server, now: 0)
        let actions = s.received(server, text: challenge(3), now: 0, wallClockMs: 0)
        guard case .sendServer(_, .register(nil, let publicKey, let signature, _))? = actions.first else { Issue.record("no register"); return }
        let key = try Ed25519.PublicKey(bytes: Hex.decode(publicKey)!)
        let signed = Identity.registrationText(serverKey: serverKey, nonce: nonce(3), peerId: nil, publicKey: publicKey)
        #expect(key.isValidSignature(Hex.decode(signature)!, for: signed))
        #expect(!key.isValidSignature(Hex.decode(signature)!, for: Identity.registrationText(serverKey: serverKey, nonce: nonce(4), peerId: nil, publicKey: publicKey)))
    }

    @Test func lostServerReconnectsWithBackoffAndReRegistersWithTheKey() {
        var s = registered()
        _ = s.closed(server, cause: "closed", now: 10_000 * ms)
        #expect(s.state == .idle)
        // First retry: 0.25 s with ±25 % jitter.
        let at = s.reconnectAt!
        #expect(at >= 10_000 * ms + 187 * ms && at <= 10_000 * ms + 313 * ms)
        #expect(!s.tick(now: at - 1).contains(.connectToServer))
        #expect(s.tick(now: at).contains(.connectToServer))
        s.serverConnecting(2, now: at)
        #expect(s.opened(2, now: at) == [])
        // The new connection's challenge is signed for the held ID.
        #expect(s.received(2, text: challenge(2), now: at, wallClockMs: 0) == [expectedRegister(2, 2, peerId: me)])
        #expect(s.received(2, text: text(registeredText), now: at, wallClockMs: 0).contains(.registered(me, again: true)))
    }

    @Test func backoffDoublesUpToTenSecondsAndResetsOnRegistration() {
        var s = session()
        var now: UInt64 = 0
        for base in [0.25, 0.5, 1, 2, 4, 8, 10, 10] {
            _ = s.connect()
            s.serverConnecting(7, now: now)
            _ = s.connectFailed(7, reason: "refused", now: now)
            let delay = Double(s.reconnectAt! - now) / 1e9
            #expect(delay >= 0.75 * base - 1e-6 && delay <= 1.25 * base + 1e-6, "base \(base): \(delay)")
            now = s.reconnectAt!
        }
        _ = s.connect()
        s.serverConnecting(server, now: now)
        _ = s.opened(server, now: now)
        _ = s.received(server, text: challenge(1), now: now, wallClockMs: 0)
        _ = s.received(server, text: text(registeredText), now: now, wallClockMs: 0)
        _ = s.closed(server, cause: "closed", now: now)
        #expect(s.reconnectAt! - now <= 313 * ms)
    }

    @Test func transportThatCannotConnectSchedulesARetry() {
        var s = session()
        _ = s.connect()
        s.serverConnecting(nil, now: 5 * ms)
        #expect(s.state == .idle && s.reconnectAt != nil)
    }

    @Test func goingAwayWaitsExactlyTheAskedDelayOnce() {
        var s = registered()
        #expect(s.received(server, text: text(#"{"type":"going-away","retryAfterMs":1500}"#), now: 0, wallClockMs: 0).contains(.goingAway(1500)))
        _ = s.closed(server, cause: "going away", now: 10_000 * ms)
        #expect(s.reconnectAt == 11_500 * ms)
        _ = s.tick(now: 11_500 * ms)
        s.serverConnecting(2, now: 11_500 * ms)
        _ = s.connectFailed(2, reason: "refused", now: 12_000 * ms)
        #expect(s.reconnectAt! - 12_000 * ms <= 313 * ms, "back to the backoff")
    }

    @Test func badSignatureIsReportedAndNotRetried() {
        var s = session()
        _ = s.connect()
        s.serverConnecting(server, now: 0)
        _ = s.opened(server, now: 0)
        _ = s.received(server, text: challenge(1), now: 0, wallClockMs: 0)
        let actions = s.received(server, text: text(#"{"type":"error","code":"bad-signature","message":"no"}"#), now: 0, wallClockMs: 0)
        #expect(actions.contains(.error(PeerError("bad-signature", "no"))))
        #expect(!actions.contains { if case .sendServer = $0 { return true } else { return false } })
    }

    @Test func idExpiredRegistersAfreshOnTheSameConnection() {
        var s = registered()
        _ = s.closed(server, cause: "closed", now: 0)
        _ = s.tick(now: s.reconnectAt!)
        s.serverConnecting(2, now: 1_000 * ms)
        _ = s.opened(2, now: 1_000 * ms)
        #expect(s.received(2, text: challenge(2), now: 1_000 * ms, wallClockMs: 0) == [expectedRegister(2, 2, peerId: me)])
        let actions = s.received(2, text: text(#"{"type":"error","code":"id-expired","message":"lease ended"}"#), now: 1_000 * ms, wallClockMs: 0)
        #expect(actions.contains(.error(PeerError("id-expired", "lease ended"))))
        #expect(actions.contains(expectedRegister(2, 2, peerId: nil)), "the same challenge, signed for a fresh ID")
        #expect(s.peerId == nil && s.certificate == nil && s.epoch == nil)
    }

    @Test func ringUpdateAsksEachNeededPeerToDialAtMostEveryRetryPeriod() {
        var s = registered()
        let actions = s.received(server, text: text(#"{"type":"successors","peerIds":["800000000000","c00000000000"]}"#), now: 0, wallClockMs: 0)
        let asked = dialMes(actions)
        #expect(asked.map(\.0) == [a, b])
        #expect(asked.allSatisfy { $0.1 == url && $0.2.count == 32 })
        #expect(Set(asked.map(\.2)).count == 2, "one nonce per request")
        #expect(actions.last == .ringChanged)
        #expect(!s.isReady)
        #expect(dialMes(s.tick(now: 2_900 * ms)).isEmpty)
        #expect(dialMes(s.tick(now: 3_001 * ms)).map(\.0) == [a, b])
    }

    @Test func dialMeSignalDialsTheVouchedURLAndSaysHello() {
        var s = registered()
        let signal = #"{"type":"signal","from":"800000000000","fromUrl":"ws://127.0.0.1:7002/x","intentId":"i1","signal":{"type":"dial-me","url":"ws://127.0.0.1:7002/x","nonce":"n1"}}"#
        #expect(s.received(server, text: text(signal), now: 0, wallClockMs: 0) == [.dial(a, WebSocketURL(host: "127.0.0.1", port: 7002, path: "/x"), nonce: "n1")])
        let named = #"{"type":"signal","from":"800000000000","fromUrl":"ws://example.com:7002/","intentId":"i2","signal":{"type":"dial-me","url":"ws://example.com:7002/","nonce":"n1"}}"#
        #expect(!s.received(server, text: text(named), now: 0, wallClockMs: 0).contains { if case .dial = $0 { return true } else { return false } })
        #expect(s.dialMeRefused == 1)
        s.dialStarted(10, peer: a, nonce: "n1")
        #expect(s.opened(10, now: 0) == [.send(10, LinkFrame.hello(peerId: me, nonce: "n1").encoded())])
        #expect(s.received(10, text: LinkFrame.welcome(peerId: a).encoded(), now: 0, wallClockMs: 0).contains(.linkUp(a)))
        #expect(s.links.isOpen(a))
        // A welcome from the wrong peer ends the attempt.
        s.dialStarted(11, peer: b, nonce: "n2")
        _ = s.opened(11, now: 0)
        #expect(s.received(11, text: LinkFrame.welcome(peerId: a).encoded(), now: 0, wallClockMs: 0) == [.close(11, status: 1008, reason: "expected a welcome")])
    }

    @Test func dialMeToAnyURLButTheVouchedOneIsRefusedAndCounted() {
        var s = registered()
        func dialMe(fromUrl: String?, url: String?) -> [PeerAction] {
            let from = fromUrl.map { #","fromUrl":"\#($0)""# } ?? ""
            let named = url.map { #","url":"\#($0)""# } ?? ""
            return s.received(server, text: text(#"{"type":"signal","from":"800000000000"\#(from),"intentId":"i","signal":{"type":"dial-me"\#(named),"nonce":"n1"}}"#), now: 0, wallClockMs: 0)
        }
        let refusals: [(String?, String?)] = [
            (nil, "ws://127.0.0.1:7002/"),                       // the sender has no vouched URL
            ("ws://127.0.0.1:7002/", "ws://127.0.0.2:7002/"),     // another address
            ("ws://127.0.0.1:7002/", "ws://127.0.0.1:7003/"),     // another port
            ("ws://127.0.0.1:7002/", nil),                        // no URL in the signal
            ("wss://127.0.0.1:7002/", "wss://127.0.0.1:7002/"),   // not dialable by a native peer
        ]
        for (n, (vouched, asked)) in refusals.enumerated() {
            let actions = dialMe(fromUrl: vouched, url: asked)
            #expect(!actions.contains { if case .dial = $0 { true } else { false } }, "\(vouched ?? "-") \(asked ?? "-")")
            #expect(actions.contains { if case .error(let e) = $0 { e.code == "dial-refused" } else { false } })
            #expect(s.dialMeRefused == n + 1)
        }
        #expect(dialMe(fromUrl: "ws://127.0.0.1:7002/", url: "ws://127.0.0.1:7002/") == [.dial(a, WebSocketURL(host: "127.0.0.1", port: 7002, path: "/"), nonce: "n1")])
        #expect(s.dialMeRefused == refusals.count)
    }

    @Test func loopbackURLsAreDialledOnlyWhenTheServerIsOnLoopbackToo() {
        #expect(throws: Never.self) { try dialMeTarget(asked: "ws://127.0.0.1:1/", vouched: "ws://127.0.0.1:1/", serverHost: "127.0.0.1").get() }
        #expect(throws: Never.self) { try dialMeTarget(asked: "ws://[::1]:1/", vouched: "ws://[::1]:1/", serverHost: "localhost").get() }
        #expect(dialMeTarget(asked: "ws://127.0.0.1:1/", vouched: "ws://127.0.0.1:1/", serverHost: "10.0.0.1") == .failure(.loopback))
        #expect(dialMeTarget(asked: "ws://[::ffff:127.0.0.1]:1/", vouched: "ws://[::ffff:127.0.0.1]:1/", serverHost: "192.0.2.1") == .failure(.loopback))
        #expect(throws: Never.self) { try dialMeTarget(asked: "ws://10.0.0.2:1/", vouched: "ws://10.0.0.2:1/", serverHost: "10.0.0.1").get() }
        #expect(isLoopback("127.9.9.9") && isLoopback("::1") && !isLoopback("::") && !isLoopback("0.0.0.0") && !isLoopback("128.0.0.1"))
    }

    @Test func acceptedLinkNeedsAHelloWithAnIssuedNonceWithinTheHandshakeTime() {
        var s = registered()
        let nonce = dialMes(s.received(server, text: text(#"{"type":"successors","peerIds":["800000000000"]}"#), now: 0, wallClockMs: 0))[0].2
        #expect(s.opened(20, now: 0).isEmpty)
        let up = s.received(20, text: LinkFrame.hello(peerId: a, nonce: nonce).encoded(), now: 0, wallClockMs: 0)
        #expect(up.first == .send(20, LinkFrame.welcome(peerId: me).encoded()) && up.contains(.linkUp(a)))
        #expect(s.isReady)
        // The nonce was used up.
        _ = s.opened(21, now: 0)
        #expect(s.received(21, text: LinkFrame.hello(peerId: a, nonce: nonce).encoded(), now: 0, wallClockMs: 0) == [.close(21, status: 1008, reason: "bad hello")])
        // Silence: closed after 5 s.
        _ = s.opened(22, now: 1_000 * ms)
        #expect(!s.tick(now: 5_900 * ms).contains(.close(22, status: 1008, reason: "no hello")))
        #expect(s.tick(now: 6_001 * ms).contains(.close(22, status: 1008, reason: "no hello")))
    }

    @Test func linkNoLongerNeededIsRetiredThenClosedAfterTheGrace() {
        var s = registered()
        let nonce = dialMes(s.received(server, text: text(#"{"type":"successors","peerIds":["800000000000"]}"#), now: 0, wallClockMs: 0))[0].2
        _ = s.opened(20, now: 0)
        _ = s.received(20, text: LinkFrame.hello(peerId: a, nonce: nonce).encoded(), now: 0, wallClockMs: 0)
        let update = s.received(server, text: text(#"{"type":"successors","peerIds":["c00000000000"]}"#), now: 1_000 * ms, wallClockMs: 0)
        #expect(update.contains(.send(20, LinkFrame.retire.encoded())))
        #expect(!s.tick(now: 2_900 * ms).contains(.linkDown(a)))
        let late = s.tick(now: 3_001 * ms)
        #expect(late.contains(.close(20, status: 1000, reason: "retired")) && late.contains(.linkDown(a)))
        // The socket's close after that changes nothing.
        #expect(s.closed(20, cause: "closed", now: 3_100 * ms).isEmpty)
    }

    @Test func closedLinkIsAskedForAgainAtOnce() {
        var s = registered()
        let nonce = dialMes(s.received(server, text: text(#"{"type":"successors","peerIds":["800000000000"]}"#), now: 0, wallClockMs: 0))[0].2
        _ = s.opened(20, now: 0)
        _ = s.received(20, text: LinkFrame.hello(peerId: a, nonce: nonce).encoded(), now: 0, wallClockMs: 0)
        let down = s.closed(20, cause: "closed", now: 100 * ms)
        #expect(down.contains(.linkDown(a)))
        #expect(dialMes(down).map(\.0) == [a])
    }

    @Test func stopLeavesAndWaitsForTheServerClose() {
        var s = registered()
        let (actions, wait) = s.stop()
        #expect(actions == [.sendServer(server, .leave), .close(server, status: 1000, reason: "leaving")] && wait)
        #expect(s.closed(server, cause: "closed", now: 0) == [.serverClosed])
        #expect(s.connect().isEmpty && s.state == .stopped)
        var idle = session()
        #expect(idle.stop().awaitServerClose == false)
    }
}
