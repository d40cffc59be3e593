import Foundation
import Hex
import Synchronization
import RendezvousCore
import Signatures

/// The server's Ed25519 key (docs/protocol.md, "Server identity"), the core's `CredentialIssuer`: it
/// checks the clients' registration signatures and signs certificates. The key file (`--server-key-file`)
/// holds the 32-byte private key (RFC 8032 section 5.1.5) as 64 lowercase hex characters and a newline,
/// mode 0600; keep it with the state file (a new key changes every certificate).
///
/// The key is parsed by libcrypto once (`Ed25519.SigningKey`): parsing a seed derives its public key,
/// about half the cost of signing a certificate when done per join (docs/benchmarks.md section 8).
public struct ServerIdentity: CredentialIssuer {
    public let key: Ed25519.PrivateKey
    public let serverKey: String
    /// nil only when libcrypto could not allocate the parsed key; `sign` then parses per call.
    private let parsed: ParsedKey?

    public init(key: Ed25519.PrivateKey) {
        self.key = key
        serverKey = Hex.encode(key.publicKey.bytes)
        parsed = ParsedKey(key)
    }

    public func isValid(signature: String, of message: [UInt8], publicKey: String) -> Bool {
        guard let keyBytes = Hex.decode(publicKey), let signatureBytes = Hex.decode(signature) else { return false }
        // One libcrypto parse of the key (verifying fails for bytes libcrypto refuses as a key).
        return Ed25519.isValidSignature(signatureBytes, for: message, publicKey: keyBytes)
    }

    public func sign(_ message: [UInt8]) -> String {
        Hex.encode(parsed?.signature(for: message) ?? key.signature(for: message))
    }

    /// A fresh challenge nonce: 32 bytes from the system's cryptographic generator (getrandom on Linux),
    /// as 64 lowercase hex characters. Never from the core's seeded generator: it must be unpredictable.
    public static func nonce() -> String {
        var g = SystemRandomNumberGenerator()
        return Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    /// Reads the key file at `path`, or creates it (mode 0600, directories as needed) with a new key.
    public static func loadOrCreate(at path: String) throws -> ServerIdentity {
        ServerIdentity(key: try KeyFile.loadOrCreate(at: path))
    }
}

/// A file holding one Ed25519 private key as 64 lowercase hex characters (the server key file, a native
/// peer's `--key-file`): read when it exists, else created with a new key, mode 0600.
public enum KeyFile {
    public enum Failure: Error, CustomStringConvertible {
        case malformed(String)
        case cannotWrite(String)
        case randomSourceFailed

        public var description: String {
            switch self {
            case .malformed(let p): return "key file \(p) must hold 64 hex characters (an Ed25519 private key)"
            case .cannotWrite(let p): return "cannot write key file \(p)"
            case .randomSourceFailed: return "the system's random source failed"
            }
        }
    }

    public static func loadOrCreate(at path: String) throws(Failure) -> Ed25519.PrivateKey {
        if FileManager.default.fileExists(atPath: path) {
            let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let text, let seed = Hex.decode(text), let key = try? Ed25519.PrivateKey(seed: seed) else {
                throw .malformed(path)
            }
            return key
        }
        guard let key = try? Ed25519.PrivateKey.generate() else { throw .randomSourceFailed }
        // (NSString.deletingLastPathComponent crashes on one-character names in this Foundation.)
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: Data((Hex.encode(key.seed) + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw .cannotWrite(path)
        }
        return key
    }
}

/// The server's parsed signing key, shared by every copy of a `ServerIdentity` (the core and the
/// cluster's replay may run on different threads): libcrypto key objects are not documented as safe for
/// simultaneous use (openssl-threads(7)), so each signature holds the lock (uncontended: the service
/// thread signs).
private final class ParsedKey: Sendable {
    private let key: Mutex<Ed25519.SigningKey>

    /// nil when libcrypto cannot allocate the key object.
    init?(_ privateKey: Ed25519.PrivateKey) {
        guard let parsed = try? Ed25519.SigningKey(privateKey) else { return nil }
        key = Mutex(parsed)
    }

    func signature(for message: [UInt8]) -> [UInt8] { key.withLock { $0.signature(for: message) } }
}
