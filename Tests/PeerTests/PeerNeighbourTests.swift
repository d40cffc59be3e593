import Hex
import Peer
import Ring
import Signatures
import Testing
import Transport
import WireProtocol

// Neighbour lists on a native peer's links (docs/protocol.md, "Neighbour lists"): sent when a link opens and
// when the list changes (at most once a second per link), kept per link, forgotten with the link, and used
// by the router.

private let me = PeerID(hex: "400000000000")!
private let a = PeerID(hex: "800000000000")!
private let server: ConnectionID = 1
private let ms: UInt64 = 1_000_000
private let serverKey = String(repeating: "5e", count: 32)
private let certificate = "400000000000" + String(repeating: "ab", count: 32) + "00000000000000a1" + String(repeating: "cd", count: 64)
private let identity = PeerIdentity(key: try! Ed25519.PrivateKey(seed: [UInt8](repeating: 0x11, count: 32)))
private func text(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A session registered as `me` with an open accepted link to `a` (connection 20), its first successor.
private func linked(routing: RoutingRule = .non) -> (PeerSession, [PeerAction]) {
    let seed: UInt64 = 0x5EED_0043
    print("PeerNeighbourTests: random seed \(seed)")
    var config = PeerConfiguration()
    config.routing = routing
    var s = PeerSession(configuration: config, url: "ws://127.0.0.1:7001/", identity: identity, random: SplitMix64(seed: seed))
    _ = s.connect()
    s.serverConnecting(server, now: 0)
    _ = s.opened(server, now: 0)
    _ = s.received(server, text: text(#"{"type":"challenge","nonce":"\#(String(repeating: "01", count: 32))","serverKey":"\#(serverKey)"}"#), now: 0, wallClockMs: 0)
    let registered = #"{"type":"registered","peerId":"400000000000","epoch":"00000000000000a1","certificate":"\#(certificate)","config":{"idBits":48,"fingerRows":[0,46,47],"successors":3,"maxMessageBytes":65536,"idleTimeoutSeconds":30,"linkRelay":false,"serverKey":"\#(serverKey)"}}"#
    _ = s.received(server, text: text(registered), now: 0, wallClockMs: 0)
    let signal = s.received(server, text: text(#"{"type":"successors","peerIds":["800000000000"]}"#), now: 0, wallClockMs: 0)
    let nonce = signal.compactMap { action -> String? in
        guard case .sendServer(_, .signal(_, _, let raw)) = action else { return nil }
        return raw.value?["nonce"]?.stringValue
    }.first!
    _ = s.opened(20, now: 0)
    let up = s.received(20, text: LinkFrame.hello(peerId: a, nonce: nonce).encoded(), now: 0, wallClockMs: 0)
    return (s, up)
}

@Test func aNewLinkGetsTheListAfterTheWelcomeAndAChangeAtMostOnceASecond() {
    var (s, up) = linked()
    #expect(up.first == .send(20, LinkFrame.welcome(peerId: me).encoded()))
    #expect(up.contains(.send(20, LinkFrame.neighbours([a]).encoded())), "\(up)")
    #expect(!s.tick(now: 100 * ms).contains { if case .send(20, _) = $0 { return true } else { return false } }, "the same list is not sent again")
    // The predecessor arrives: the list changes, but the link had one less than a second ago.
    let pred = PeerID(hex: "200000000000")!
    _ = s.received(server, text: text(#"{"type":"predecessor","peerId":"200000000000"}"#), now: 200 * ms, wallClockMs: 0)
    let changed = LinkFrame.neighbours([a, pred]).encoded()
    #expect(!s.tick(now: 900 * ms).contains(.send(20, changed)))
    #expect(s.tick(now: 1_000 * ms).contains(.send(20, changed)))
    #expect(!s.tick(now: 2_500 * ms).contains(.send(20, changed)))
}

@Test func listsAreKeptPerLinkUsedByTheRouterAndForgottenWithTheLink() {
    var (s, _) = linked()
    let far = PeerID(hex: "bfffffffffff")!
    #expect(s.received(20, text: LinkFrame.neighbours([far]).encoded(), now: 0, wallClockMs: 0).isEmpty)
    #expect(s.neighbourLists.list(of: a) == [far])
    // A malformed list is not a frame: ignored, the old list stays.
    _ = s.received(20, text: text("N800000000000,"), now: 0, wallClockMs: 0)
    #expect(s.neighbourLists.list(of: a) == [far])
    _ = s.closed(20, cause: "test", now: 0)
    #expect(s.neighbourLists.list(of: a) == nil)
}

@Test func greedyPeersStillSendTheirList() {
    let (_, up) = linked(routing: .greedy)
    #expect(up.contains(.send(20, LinkFrame.neighbours([a]).encoded())))
}
