import Hex
import CCrypto
import Foundation
import RendezvousCore
import Ring

/// Issues and checks re-registration tokens, 64 lowercase hex characters:
/// `token = hex(epoch as 8 big-endian bytes) + hex(first 24 bytes of HMAC-SHA256(secret, "<peerId as 12 hex chars>:<epoch as 16 hex chars>"))`
/// (RFC 2104 HMAC with SHA-256). The epoch is in the clear so the server checks a token without
/// state; the MAC binds it to the ID, so a token works only for the holder epoch it was issued with
/// (docs/protocol.md, "Tokens, epochs and leases"). A restarted server with the same secret checks old tokens. The core
/// (`Membership`) is given one as its `CredentialIssuer`, so that the core itself needs no libcrypto.
public struct TokenAuthority: CredentialIssuer {
    private let secret: [UInt8]

    public init(secret: [UInt8]) {
        precondition(secret.count >= 16, "secret too short")
        self.secret = secret
    }

    /// A fresh random 32-byte secret from the system's cryptographic generator.
    public static func randomSecret() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    /// Reads the secret from `path` (64 hex characters), or creates the file (mode 0600) with a new one.
    public static func loadOrCreateSecret(at path: String) throws -> [UInt8] {
        if FileManager.default.fileExists(atPath: path) {
            let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let bytes = Hex.decode(text), bytes.count >= 16 else {
                throw SecretFileError.malformed(path)
            }
            return bytes
        }
        let secret = randomSecret()
        // (NSString.deletingLastPathComponent crashes on one-character names in this Foundation.)
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: Data((Hex.encode(secret) + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw SecretFileError.cannotWrite(path)
        }
        return secret
    }

    public func token(for peer: PeerID, epoch: UInt64) -> String {
        let epochHex = Hex.encode(epoch, digits: 16)
        return epochHex + Hex.encode(mac(peer, epochHex))
    }

    /// The first 24 bytes of HMAC-SHA256(secret, "<peer hex>:<epoch hex>").
    private func mac(_ peer: PeerID, _ epochHex: String) -> ArraySlice<UInt8> {
        TokenAuthority.hmacSHA256(key: secret, message: Array((peer.hex + ":" + epochHex).utf8))[..<24]
    }

    /// HMAC-SHA256 (RFC 2104, FIPS 180-4) through OpenSSL's libcrypto.
    static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        let ok = key.withUnsafeBytes { k in
            bc_hmac_sha256(k.baseAddress, Int32(k.count), message, message.count, &mac)
        }
        precondition(ok == 1, "HMAC-SHA256 failed")
        return mac
    }

    /// The epoch of a presented token when its MAC matches `peer` (a constant-time comparison).
    public func epoch(of token: String, for peer: PeerID) -> UInt64? {
        let given = Array(token.utf8)
        guard given.count == 64, let epochBytes = Hex.decode(String(decoding: given[..<16], as: UTF8.self)) else { return nil }
        let epoch = epochBytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let expected = Array(self.token(for: peer, epoch: epoch).utf8)
        return bc_const_time_compare(expected, given, expected.count) == 0 ? epoch : nil
    }
}

public enum SecretFileError: Error, CustomStringConvertible {
    case malformed(String)
    case cannotWrite(String)

    public var description: String {
        switch self {
        case .malformed(let p): return "secret file \(p) must hold at least 32 hex characters"
        case .cannotWrite(let p): return "cannot write secret file \(p)"
        }
    }
}
