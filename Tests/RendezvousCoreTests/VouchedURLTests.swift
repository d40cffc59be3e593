import ConnectionTypes
import Rendezvous
import Ring
import Testing
import WireProtocol
@testable import RendezvousCore

// Vouched URLs (docs/protocol.md, "Vouched URLs"): the rule on its own, the client address behind
// proxies, and the core relaying the vouched URL (never the signal's) as `fromUrl`.

@Suite struct VouchedURLTests {
    @Test func ipLiteralsParseStrictlyAndMappedAddressesAreIPv4() {
        #expect(IPAddress("192.0.2.7")?.bytes == [192, 0, 2, 7])
        #expect(IPAddress("::ffff:192.0.2.7") == IPAddress("192.0.2.7"))
        #expect(IPAddress("::FFFF:c000:0207") == IPAddress("192.0.2.7"))
        #expect(IPAddress("::1") == IPAddress("0:0:0:0:0:0:0:1") && IPAddress("::1")!.isLoopback)
        #expect(IPAddress("2001:db8::7")?.bytes == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7])
        #expect(IPAddress("127.200.0.1")!.isLoopback && !IPAddress("0.0.0.0")!.isLoopback && !IPAddress("::")!.isLoopback)
        for bad in ["", "localhost", "example.com", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "0x7f.0.0.1", "1.2.3.4 ",
                    "::1::", "1:2:3:4:5:6:7:8:9", "12345::", "fe80::1%eth0", "[::1]", ":::", "1:2:3:4:5:6:7:8::"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func theURLMustNameTheAddressTheConnectionComesFrom() throws {
        let ok: [(String, String)] = [
            ("ws://192.0.2.7:9100/", "192.0.2.7"), ("ws://192.0.2.7:9100", "192.0.2.7"), ("wss://192.0.2.7/links", "192.0.2.7"),
            ("ws://192.0.2.7:9100/", "::ffff:192.0.2.7"), ("ws://[2001:db8::7]:9100/", "2001:db8::7"),
            ("ws://127.0.0.1:9100/", "127.0.0.1"), ("ws://127.0.0.2:9100/", "127.0.0.1"), ("ws://[::1]:9100/", "127.0.0.1"),
        ]
        for (url, client) in ok { #expect(try VouchedURL.check(url, clientAddress: client) == url, "\(url) from \(client)") }
        let refused: [(String, String, URLRefusal)] = [
            ("ws://192.0.2.8:9100/", "192.0.2.7", .addressMismatch),
            ("ws://127.0.0.1:9100/", "192.0.2.7", .addressMismatch),   // loopback only for loopback clients
            ("ws://0.0.0.0:9100/", "127.0.0.1", .addressMismatch),
            ("ws://192.0.2.7:9100/", "127.0.0.1", .addressMismatch),
            ("ws://192.0.2.7:9100/", "", .addressUnknown),
            ("ws://peer.example:9100/", "192.0.2.7", .hostName),
            ("ws://localhost:9100/", "127.0.0.1", .hostName),
            ("ws://[192.0.2.7]:9100/", "192.0.2.7", .hostName),
            ("ws://2001:db8::7:9100/", "2001:db8::7", .hostName),
            ("ws://u@192.0.2.7:9100/", "192.0.2.7", .userInfo),
            ("ws://192.0.2.7:9100/?x=1", "192.0.2.7", .queryOrFragment),
            ("ws://192.0.2.7:9100/#x", "192.0.2.7", .queryOrFragment),
            ("ws://192.0.2.7:0/", "192.0.2.7", .badPort), ("ws://192.0.2.7:65536/", "192.0.2.7", .badPort),
            ("ws://192.0.2.7:09100/", "192.0.2.7", .badPort), ("ws://192.0.2.7:/", "192.0.2.7", .badPort),
            ("ws://192.0.2.7:+80/", "192.0.2.7", .badPort),
            ("ws://192.0.2.7:9100/a%20b", "192.0.2.7", .badPath),
            ("http://192.0.2.7:9100/", "192.0.2.7", .notWebSocketURL), ("WS://192.0.2.7:9100/", "192.0.2.7", .notWebSocketURL),
            ("ws://192.0.2.7:9100/" + String(repeating: "a", count: 240), "192.0.2.7", .notWebSocketURL),
        ]
        for (url, client, why) in refused {
            #expect(throws: why, "\(url) from \(client)") { try VouchedURL.check(url, clientAddress: client) }
        }
    }

    @Test func onlyTrustedProxiesForwardTheClientAddress() {
        let proxies: Set<IPAddress> = [IPAddress("127.0.0.1")!, IPAddress("10.0.0.1")!]
        #expect(clientAddress(peer: "192.0.2.7", forwardedFor: nil, trustedProxies: proxies) == "192.0.2.7")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: "192.0.2.7", trustedProxies: proxies) == "192.0.2.7")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: "203.0.113.9, 192.0.2.7, 10.0.0.1", trustedProxies: proxies) == "192.0.2.7")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: "10.0.0.1, 127.0.0.1", trustedProxies: proxies) == "10.0.0.1")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: nil, trustedProxies: proxies) == "")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: "", trustedProxies: proxies) == "")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: "unknown", trustedProxies: proxies) == "")
        // A header from anyone else: a proxy the operator did not list, or a client lying.
        #expect(clientAddress(peer: "192.0.2.7", forwardedFor: "127.0.0.1", trustedProxies: proxies) == "")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: "192.0.2.7", trustedProxies: []) == "")
        #expect(clientAddress(peer: "127.0.0.1", forwardedFor: nil, trustedProxies: []) == "127.0.0.1")
    }

    @Test func signalsCarryTheSendersVouchedURLNotTheOneItNames() throws {
        var config = MembershipConfiguration()
        config.seed = 3
        var m = Membership(configuration: config, credentials: testServer)
        func register(_ c: ConnectionID, from address: String, url: String?) -> [Action] {
            _ = m.handle(.opened(c, remoteAddress: address, nonce: testNonce(c), now: 0))
            let text = signedRegister(clientKey(UInt8(truncatingIfNeeded: c)), c, capabilities: url.map { ["url": .string($0)] })
            return m.handle(.received(c, text: text, now: 0, wallClock: 0))
        }
        func messages(_ actions: [Action], _ c: ConnectionID) -> [ServerMessage] {
            actions.compactMap { if case .send(c, let message) = $0 { message } else { nil } }
        }
        func id(_ actions: [Action], _ c: ConnectionID) throws -> PeerID {
            try #require(messages(actions, c).compactMap { if case .registered(let p, _, _, _) = $0 { p } else { nil } }.first)
        }
        let honest = register(1, from: "192.0.2.7", url: "ws://192.0.2.7:9100/")
        #expect(!messages(honest, 1).contains { if case .error = $0 { true } else { false } })
        let liar = register(2, from: "192.0.2.8", url: "ws://192.0.2.99:22/")
        // Registered all the same, then told why its URL is not vouched for.
        guard case .error(.urlNotVouched, let why)? = messages(liar, 2).last else { Issue.record("no url-not-vouched: \(liar)"); return }
        #expect(why.contains("not the address"))
        let browser = register(3, from: "192.0.2.9", url: nil)
        #expect(!messages(browser, 3).contains { if case .error = $0 { true } else { false } })
        let (a, b, c) = (try id(honest, 1), try id(liar, 2), try id(browser, 3))
        #expect(m.peers[a]?.vouchedURL == "ws://192.0.2.7:9100/" && m.peers[b]?.vouchedURL == nil && m.peers[c]?.vouchedURL == nil)
        #expect(m.counters.errors[.urlNotVouched] == 1)

        func signal(_ from: ConnectionID, to: PeerID, url: String) -> [Action] {
            m.handle(.received(from, text: Array(#"{"type":"signal","to":"\#(to.hex)","intentId":"i","signal":{"type":"dial-me","url":"\#(url)","nonce":"n"}}"#.utf8),
                               now: 0, wallClock: 0))
        }
        let fromHonest = messages(signal(1, to: c, url: "ws://10.9.9.9:1/"), 3)
        guard case .signal(a, "i", _, let fromUrl)? = fromHonest.first else { Issue.record("not relayed: \(fromHonest)"); return }
        #expect(fromUrl == "ws://192.0.2.7:9100/")
        let text = String(decoding: fromHonest[0].encoded(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"type":"signal","from":"\#(a.hex)","fromUrl":"ws://192.0.2.7:9100/","intentId":"i","signal":{"#))
        guard case .signal(let decodedFrom, _, _, let decodedURL) = try ServerMessage.decode(fromHonest[0].encoded()) else {
            Issue.record("does not decode"); return
        }
        #expect(decodedFrom == a && decodedURL == fromUrl)
        let fromLiar = messages(signal(2, to: c, url: "ws://192.0.2.99:22/"), 3)
        guard case .signal(b, _, _, nil)? = fromLiar.first else { Issue.record("relayed with a URL: \(fromLiar)"); return }
        #expect(!String(decoding: fromLiar[0].encoded(), as: UTF8.self).contains("fromUrl"))
    }
}
