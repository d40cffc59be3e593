import Hex
import Ring

/// The texts of the key-pair identity (docs/protocol.md, "Key-pair identity") that Ed25519 signs, and
/// the certificate's fixed layout. Pure: no cryptography here (the signing and checking is the caller's,
/// through the `Signatures` target), so that the server core and the peers build byte-identical texts.
///
/// Every text is lines joined with a single `\n` (no final newline), starting with a domain prefix that
/// names its kind and version, so a signature of one kind is never valid as another; every field has a
/// fixed length, so the text is unambiguous.
public enum Identity {
    /// Hex characters of a public key (32 bytes), a signature (64 bytes), a nonce (32 bytes), an epoch.
    public static let publicKeyHexCount = 64
    public static let signatureHexCount = 128
    public static let nonceHexCount = 64
    public static let epochHexCount = 16
    /// Hex characters of a certificate: peerId (12) + publicKey (64) + epoch (16) + signature (128).
    public static let certificateHexCount = 12 + 64 + 16 + 128

    /// The UTF-8 bytes a client signs in `register`: the server key and nonce of its connection's
    /// `challenge`, the requested ID (`-` for a fresh registration) and its own public key.
    public static func registrationText(serverKey: String, nonce: String, peerId: PeerID?, publicKey: String) -> [UInt8] {
        Array("browsercloud-register/1\n\(serverKey)\n\(nonce)\n\(peerId?.hex ?? "-")\n\(publicKey)".utf8)
    }

    /// The UTF-8 bytes the server key signs in a certificate of (peerId, publicKey, epoch).
    public static func certificateText(serverKey: String, peerId: PeerID, publicKey: String, epoch: UInt64) -> [UInt8] {
        Array("browsercloud-certificate/1\n\(serverKey)\n\(peerId.hex)\n\(publicKey)\n\(Hex.encode(epoch, digits: 16))".utf8)
    }

    /// A certificate's fields: `peerId ‖ publicKey ‖ epoch ‖ serverSignature`, 220 lowercase hex characters.
    public struct Certificate: Equatable, Sendable {
        public var peerId: PeerID
        /// 64 lowercase hex.
        public var publicKey: String
        public var epoch: UInt64
        /// 128 lowercase hex: the server key's signature of `certificateText`.
        public var signature: String

        public init(peerId: PeerID, publicKey: String, epoch: UInt64, signature: String) {
            self.peerId = peerId
            self.publicKey = publicKey
            self.epoch = epoch
            self.signature = signature
        }

        /// Splits a certificate at its fixed offsets; nil unless it is exactly 220 lowercase hex characters.
        public init?(text: String) {
            guard ClientMessage.isLowerHex(text, count: Identity.certificateHexCount) else { return nil }
            let b = Array(text.utf8)
            func part(_ from: Int, _ count: Int) -> String { String(decoding: b[from..<(from + count)], as: UTF8.self) }
            guard let id = PeerID(hex: part(0, 12)), let epoch = UInt64(part(76, 16), radix: 16) else { return nil }
            self.init(peerId: id, publicKey: part(12, 64), epoch: epoch, signature: part(92, 128))
        }

        /// The 220-character text.
        public var text: String { peerId.hex + publicKey + Hex.encode(epoch, digits: 16) + signature }

        /// What the server key signed for this certificate.
        public func signedText(serverKey: String) -> [UInt8] {
            Identity.certificateText(serverKey: serverKey, peerId: peerId, publicKey: publicKey, epoch: epoch)
        }
    }
}
