import Testing
@testable import RendezvousCore

/// The session's packed nonce gives back exactly the text it was given.
@Suite struct ChallengeNonceTests {
    @Test func textComesBackExactly() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let hex = (0..<64).map { _ in String("0123456789abcdef".randomElement(using: &rng)!) }.joined()
            let n = ChallengeNonce(hex)
            guard case .packed = n else { Issue.record("not packed: \(hex)"); continue }
            #expect(n.text == hex)
        }
        for other in ["", "n1", String(repeating: "A", count: 64), String(repeating: "a", count: 63), String(repeating: "g", count: 64), "é" + String(repeating: "a", count: 62)] {
            #expect(ChallengeNonce(other) == .text(other))
            #expect(ChallengeNonce(other).text == other)
        }
    }
}
