import CCrypto

extension Ed25519 {
    /// A private key parsed once by libcrypto, for signing many messages: `PrivateKey.signature(for:)`
    /// parses the seed on every call, and parsing an Ed25519 seed derives its public key (a scalar
    /// multiplication, about as costly as the signature itself; `make bench` section 9 measures both).
    /// Signatures are the same bytes as `PrivateKey.signature(for:)` gives.
    ///
    /// Not `Sendable`: the libcrypto key object is used by one thread at a time (its owner's).
    public final class SigningKey {
        /// The matching public key.
        public let publicKey: PublicKey
        private let key: OpaquePointer

        /// Parses `privateKey`'s seed. Throws `KeyError.rejected` when libcrypto refuses it (it only
        /// does when it cannot allocate: the seed's length was checked by `PrivateKey`).
        public init(_ privateKey: PrivateKey) throws(KeyError) {
            guard let key = bc_ed25519_private_key_new(privateKey.seed) else { throw .rejected }
            self.key = key
            publicKey = privateKey.publicKey
        }

        deinit { bc_ed25519_key_free(key) }

        /// The 64-byte signature of `message` (any length, including empty).
        public func signature(for message: [UInt8]) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: Ed25519.signatureCount)
            let ok = bc_ed25519_sign_parsed(key, message, message.count, &out)
            // The key parsed at init; signing fails only when libcrypto cannot allocate.
            precondition(ok == 1, "Ed25519 signing failed in libcrypto")
            return out
        }
    }

    /// A public key parsed once by libcrypto, for verifying many signatures by the same signer (the same
    /// answers as `PublicKey.isValidSignature(_:for:)`).
    ///
    /// Not `Sendable`: the libcrypto key object is used by one thread at a time (its owner's).
    public final class VerifyingKey {
        /// The key's 32 bytes.
        public let publicKey: PublicKey
        private let key: OpaquePointer

        /// Parses `publicKey`. Throws `KeyError.rejected` when libcrypto refuses the bytes.
        public init(_ publicKey: PublicKey) throws(KeyError) {
            guard let key = bc_ed25519_public_key_new(publicKey.bytes) else { throw .rejected }
            self.key = key
            self.publicKey = publicKey
        }

        deinit { bc_ed25519_key_free(key) }

        /// True when `signature` is a valid signature of `message` under this key (RFC 8032 section
        /// 5.1.7). False for a signature that is not 64 bytes long.
        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            guard signature.count == Ed25519.signatureCount else { return false }
            return bc_ed25519_verify_parsed(key, message, message.count, signature) == 1
        }
    }
}
