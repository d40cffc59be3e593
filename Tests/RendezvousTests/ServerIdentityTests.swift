import Foundation
import Hex
import Signatures
import Testing
@testable import Rendezvous

/// `ServerIdentity` signs with a key parsed once and verifies with one parse per call: the answers are
/// RFC 8032's, the same as the per-call `PrivateKey` and `PublicKey`, from any thread.
@Suite struct ServerIdentityTests {
    static let key = try! Ed25519.PrivateKey(seed: (0..<32).map { UInt8($0 * 7 & 0xff) })

    @Test func signaturesAreThePrivateKeysAndVerify() throws {
        let identity = ServerIdentity(key: Self.key)
        for n in [0, 1, 100, 1000] {
            let message = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 31) }
            let signature = identity.sign(message)
            #expect(signature == Hex.encode(Self.key.signature(for: message)))
            #expect(identity.isValid(signature: signature, of: message, publicKey: identity.serverKey))
            #expect(!identity.isValid(signature: signature, of: message + [1], publicKey: identity.serverKey))
            #expect(!identity.isValid(signature: String(signature.dropLast(2)), of: message, publicKey: identity.serverKey))
            #expect(!identity.isValid(signature: signature, of: message, publicKey: String(identity.serverKey.dropLast(2))))
            #expect(!identity.isValid(signature: "zz" + signature.dropFirst(2), of: message, publicKey: identity.serverKey))
        }
    }

    @Test func copiesSignFromSeveralThreadsAtOnce() async {
        let identity = ServerIdentity(key: Self.key)
        let expected = Hex.encode(Self.key.signature(for: Array("m".utf8)))
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                let copy = identity
                group.addTask { (0..<20).allSatisfy { _ in copy.sign(Array("m".utf8)) == expected } }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(results)
    }
}
