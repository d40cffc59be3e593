import Hex
import Ring
import Testing
@testable import Rendezvous

@Suite struct TokenAuthorityTests {
    @Test func hmacMatchesRFC4231() {
        // RFC 4231, test case 2.
        let mac = TokenAuthority.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Hex.encode(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func tokensVerifyOnlyForTheirPeerAndEpoch() {
        let authority = TokenAuthority(secret: [UInt8](repeating: 7, count: 32))
        let token = authority.token(for: PeerID(1), epoch: 5)
        #expect(token.count == 64 && token.hasPrefix("0000000000000005"))
        #expect(authority.epoch(of: token, for: PeerID(1)) == 5)
        #expect(authority.epoch(of: token, for: PeerID(2)) == nil)
        #expect(authority.token(for: PeerID(1), epoch: 6) != token)
        // Another epoch written over the clear text does not carry the MAC with it.
        #expect(authority.epoch(of: "0000000000000006" + token.dropFirst(16), for: PeerID(1)) == nil)
        #expect(TokenAuthority(secret: [UInt8](repeating: 8, count: 32)).epoch(of: token, for: PeerID(1)) == nil)
        #expect(authority.epoch(of: "zz" + token.dropFirst(2), for: PeerID(1)) == nil)
    }
}
