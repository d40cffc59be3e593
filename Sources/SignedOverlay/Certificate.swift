import Hex
import Ring
import Signatures

/// The server's certificate of an ID binding (docs/protocol.md, "Key-pair identity", "Certificate"): 220
/// lowercase hex characters,
///
///     peerId (12) ‖ publicKey (64) ‖ epoch (16, big-endian) ‖ serverSignature (128)
///
/// where `serverSignature` is the server key's Ed25519 signature of the UTF-8 bytes of
/// `"browsercloud-certificate/1\n<serverKey>\n<peerId>\n<publicKey>\n<epoch>"` (every field in hex).
public struct Certificate: Equatable, Sendable {
    public let peerId: PeerID
    public let publicKey: Ed25519.PublicKey
    /// The holder epoch; a later holder of the same ID has a higher one.
    public let epoch: UInt64
    /// 64 bytes.
    public let serverSignature: [UInt8]

    /// The 220 hex characters.
    public var text: String {
        peerId.hex + Hex.encode(publicKey.bytes) + Hex.encode(epoch, digits: 16) + Hex.encode(serverSignature)
    }

    /// Splits a certificate at its fixed offsets; nil unless it is 220 lowercase hex characters with a
    /// public key libcrypto accepts. The server signature is not checked here (`isSigned(by:)`).
    public init?(_ text: some Collection<UInt8>) {
        let t = Array(text)
        guard t.count == 220, isLowerHex(t[...]),
              let id = PeerID(hex: String(decoding: t[0..<12], as: UTF8.self)),
              let key = Hex.decode(String(decoding: t[12..<76], as: UTF8.self)),
              let publicKey = try? Ed25519.PublicKey(bytes: key),
              let epochBytes = Hex.decode(String(decoding: t[76..<92], as: UTF8.self)),
              let signature = Hex.decode(String(decoding: t[92..<220], as: UTF8.self))
        else { return nil }
        peerId = id
        self.publicKey = publicKey
        epoch = epochBytes.reduce(0) { $0 << 8 | UInt64($1) }
        serverSignature = signature
    }

    /// The text the server signs for this binding under `serverKey`.
    public static func signedText(serverKey: Ed25519.PublicKey, peerId: PeerID, publicKey: Ed25519.PublicKey, epoch: UInt64) -> [UInt8] {
        Array(["browsercloud-certificate/1", Hex.encode(serverKey.bytes), peerId.hex, Hex.encode(publicKey.bytes),
               Hex.encode(epoch, digits: 16)].joined(separator: "\n").utf8)
    }

    /// Whether the server whose public key is `serverKey` signed this binding.
    public func isSigned(by serverKey: Ed25519.PublicKey) -> Bool {
        serverKey.isValidSignature(serverSignature, for: Self.signedText(serverKey: serverKey, peerId: peerId, publicKey: publicKey, epoch: epoch))
    }

    /// The certificate `server` issues for a binding (tests, benchmarks; the rendezvous server's own issuer
    /// writes the same bytes).
    public static func issue(by server: Ed25519.PrivateKey, peerId: PeerID, publicKey: Ed25519.PublicKey, epoch: UInt64) -> Certificate {
        let signature = server.signature(for: signedText(serverKey: server.publicKey, peerId: peerId, publicKey: publicKey, epoch: epoch))
        return Certificate(peerId: peerId, publicKey: publicKey, epoch: epoch, serverSignature: signature)
    }

    init(peerId: PeerID, publicKey: Ed25519.PublicKey, epoch: UInt64, serverSignature: [UInt8]) {
        self.peerId = peerId; self.publicKey = publicKey; self.epoch = epoch; self.serverSignature = serverSignature
    }
}
