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

    @Test func tokensVerifyOnlyForTheirPeer() {
        let authority = TokenAuthority(secret: [UInt8](repeating: 7, count: 32))
        let token = authority.token(for: PeerID(1))
        #expect(authority.verify(token, for: PeerID(1)))
        #expect(!authority.verify(token, for: PeerID(2)))
        #expect(!TokenAuthority(secret: [UInt8](repeating: 8, count: 32)).verify(token, for: PeerID(1)))
    }
}
