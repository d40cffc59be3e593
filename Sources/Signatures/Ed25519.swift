import CCrypto
import Hex

/// Ed25519 signatures (RFC 8032, "pure" Ed25519: no pre-hash, no context) through OpenSSL's libcrypto.
///
/// Sizes are RFC 8032's: a private key is its 32-byte seed, a public key is 32 bytes (the encoded point),
/// a signature is 64 bytes (R ‖ S). Signing is deterministic: the same key and message always give the
/// same signature. Values hold raw bytes; their text form on the wire is the caller's business.
public enum Ed25519 {
    /// Bytes in a private key (the seed).
    public static let privateKeyCount = 32
    /// Bytes in a public key.
    public static let publicKeyCount = 32
    /// Bytes in a signature.
    public static let signatureCount = 64

    /// Why a key could not be made from the given bytes.
    public enum KeyError: Error, Equatable, Sendable {
        /// The bytes are not `expected` long.
        case wrongLength(expected: Int, got: Int)
        /// libcrypto refused the bytes (a public key that is not a valid point encoding).
        case rejected
        /// The system's random source failed (key generation only).
        case randomSourceFailed
    }

    /// A private key: the 32-byte seed of RFC 8032 section 5.1.5, with its public key.
    ///
    /// `description` does not show the seed, so a key printed by mistake does not leak.
    public struct PrivateKey: Sendable, CustomStringConvertible {
        /// The 32-byte seed. Keep it secret.
        public let seed: [UInt8]
        /// The matching public key.
        public let publicKey: PublicKey

        /// The key of a 32-byte seed. Throws `KeyError.wrongLength` for any other length.
        public init(seed: [UInt8]) throws(KeyError) {
            guard seed.count == Ed25519.privateKeyCount else {
                throw .wrongLength(expected: Ed25519.privateKeyCount, got: seed.count)
            }
            var point = [UInt8](repeating: 0, count: Ed25519.publicKeyCount)
            guard bc_ed25519_public_key(seed, &point) == 1 else { throw .rejected }
            self.seed = seed
            self.publicKey = PublicKey(checkedBytes: point)
        }

        /// A new key from libcrypto's cryptographically secure generator (RAND_bytes).
        public static func generate() throws(KeyError) -> PrivateKey {
            var seed = [UInt8](repeating: 0, count: Ed25519.privateKeyCount)
            guard bc_random_bytes(&seed, Int32(seed.count)) == 1 else { throw .randomSourceFailed }
            return try PrivateKey(seed: seed)
        }

        /// The 64-byte signature of `message` (any length, including empty).
        public func signature(for message: [UInt8]) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: Ed25519.signatureCount)
            let ok = bc_ed25519_sign(seed, message, message.count, &out)
            // The seed's length was checked at init and libcrypto accepted it there; signing a valid key
            // fails only when libcrypto cannot allocate.
            precondition(ok == 1, "Ed25519 signing failed in libcrypto")
            return out
        }

        public var description: String { "Ed25519.PrivateKey(public: \(publicKey))" }
    }

    /// True when `signature` is a valid signature of `message` under the public key `publicKey` (RFC 8032
    /// section 5.1.7): the answer of `PublicKey(bytes:)` then `isValidSignature(_:for:)`, with one libcrypto
    /// parse of the key instead of two. False when `publicKey` is not 32 bytes or libcrypto refuses it, or
    /// `signature` is not 64 bytes.
    public static func isValidSignature(_ signature: [UInt8], for message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard publicKey.count == publicKeyCount, signature.count == signatureCount else { return false }
        return bc_ed25519_verify(publicKey, message, message.count, signature) == 1
    }

    /// A public key: 32 bytes, the encoded point of RFC 8032 section 5.1.2.
    public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
        /// The 32 bytes.
        public let bytes: [UInt8]

        /// A public key from its 32 bytes. Throws `KeyError.wrongLength` for any other length and
        /// `KeyError.rejected` when libcrypto does not accept the encoding.
        public init(bytes: [UInt8]) throws(KeyError) {
            guard bytes.count == Ed25519.publicKeyCount else {
                throw .wrongLength(expected: Ed25519.publicKeyCount, got: bytes.count)
            }
            // libcrypto only takes the bytes here (OpenSSL 3 accepts any 32); a key that is not a valid
            // point then fails every verification (RFC 8032 section 5.1.7 step 1).
            guard bc_ed25519_key_parses(bytes) == 1 else { throw .rejected }
            self.bytes = bytes
        }

        init(checkedBytes: [UInt8]) { bytes = checkedBytes }

        /// True when `signature` is a valid signature of `message` under this key (RFC 8032 section
        /// 5.1.7). False for a signature that is not 64 bytes long.
        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            guard signature.count == Ed25519.signatureCount else { return false }
            return bc_ed25519_verify(bytes, message, message.count, signature) == 1
        }

        /// The 64 lowercase hex digits of the key.
        public var description: String { Hex.encode(bytes) }
    }
}
