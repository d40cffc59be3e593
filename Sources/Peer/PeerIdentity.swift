import Hex
import Ring
import Signatures
import WireProtocol

/// The Ed25519 key pair a native peer registers with (docs/protocol.md, "Key-pair identity"): the
/// server binds its ID to the public key, and a `register` signed with the private key gets the ID back
/// (after a reconnect, or a restart with `browsercloud peer --key-file`). Signing is deterministic.
public struct PeerIdentity: Sendable {
    public let key: Ed25519.PrivateKey
    /// The public key, 64 lowercase hex characters.
    public let publicKey: String

    public init(key: Ed25519.PrivateKey) {
        self.key = key
        publicKey = Hex.encode(key.publicKey.bytes)
    }

    /// A new key from libcrypto's cryptographically secure generator.
    public static func generate() throws(Ed25519.KeyError) -> PeerIdentity {
        PeerIdentity(key: try Ed25519.PrivateKey.generate())
    }

    /// The 128-hex signature of the registration text for a connection's challenge and the requested ID.
    public func registrationSignature(serverKey: String, nonce: String, peerId: PeerID?) -> String {
        Hex.encode(key.signature(for: Identity.registrationText(serverKey: serverKey, nonce: nonce, peerId: peerId,
                                                                publicKey: publicKey)))
    }
}
