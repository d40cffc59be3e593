import Ring

/// The cryptography the core needs for the key-pair identity (docs/protocol.md, "Key-pair identity"),
/// injected by the shell so that the core itself needs no cryptography library: checking a client's
/// Ed25519 signature of its registration text, and signing certificates with the server key.
///
/// The core builds the texts (`Identity` in WireProtocol); an issuer only signs and verifies bytes.
/// Must be deterministic: Ed25519 signatures are (RFC 8032 section 5.1.6), so the same binding always
/// gets the same certificate and a replayed event log gives the same actions.
public protocol CredentialIssuer: Sendable {
    /// The server's Ed25519 public key, 64 lowercase hex characters.
    var serverKey: String { get }
    /// Whether `signature` (128 lowercase hex) is a valid Ed25519 signature of `message` under `publicKey`
    /// (64 lowercase hex). False when either is malformed or libcrypto refuses the key.
    func isValid(signature: String, of message: [UInt8], publicKey: String) -> Bool
    /// The server key's Ed25519 signature of `message`, 128 lowercase hex characters.
    func sign(_ message: [UInt8]) -> String
}
