import Signatures
import Testing

/// `Ed25519.SigningKey` and `VerifyingKey` (keys parsed once by libcrypto) give RFC 8032's answers, the
/// same as the per-call `PrivateKey` and `PublicKey`.
@Suite struct ParsedKeyTests {
    @Test(arguments: try RFC8032Vector.all())
    func parsedKeysReproduceRFC8032(_ v: RFC8032Vector) throws {
        let signing = try Ed25519.SigningKey(try Ed25519.PrivateKey(seed: v.secretKey))
        #expect(signing.publicKey.bytes == v.publicKey)
        #expect(signing.signature(for: v.message) == v.signature)
        #expect(signing.signature(for: v.message) == v.signature)   // the same key object, again
        let verifying = try Ed25519.VerifyingKey(try Ed25519.PublicKey(bytes: v.publicKey))
        #expect(verifying.isValidSignature(v.signature, for: v.message))
        #expect(!verifying.isValidSignature(v.signature, for: v.message + [0]))
        var flipped = v.signature
        flipped[flipped.count / 2] ^= 1
        #expect(!verifying.isValidSignature(flipped, for: v.message))
        #expect(!verifying.isValidSignature(Array(v.signature.dropLast()), for: v.message))
    }

    /// `Ed25519.isValidSignature(_:for:publicKey:)` (one parse of the key) answers as `PublicKey(bytes:)`
    /// then `isValidSignature`, including for keys and signatures of the wrong length.
    @Test(arguments: try RFC8032Vector.all())
    func verifyingFromKeyBytesAgreesWithPublicKey(_ v: RFC8032Vector) {
        #expect(Ed25519.isValidSignature(v.signature, for: v.message, publicKey: v.publicKey))
        #expect(!Ed25519.isValidSignature(v.signature, for: v.message + [0], publicKey: v.publicKey))
        var flipped = v.signature
        flipped[0] ^= 1
        #expect(!Ed25519.isValidSignature(flipped, for: v.message, publicKey: v.publicKey))
        #expect(!Ed25519.isValidSignature(Array(v.signature.dropLast()), for: v.message, publicKey: v.publicKey))
        #expect(!Ed25519.isValidSignature(v.signature, for: v.message, publicKey: Array(v.publicKey.dropLast())))
        #expect(!Ed25519.isValidSignature(v.signature, for: v.message, publicKey: v.publicKey + [0]))
    }
}
