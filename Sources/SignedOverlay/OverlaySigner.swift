import Hex
import Ring
import Signatures
import WireProtocol

/// Signs overlay messages as their source (docs/protocol.md, "Signed overlay messages"): writes the body once, signs it once
/// (however many `C` parts the frame is later split into), and gives the `S` frame with 0 hops.
///
/// Not `Sendable` (it holds a libcrypto key object): one owner, one thread.
public struct OverlaySigner {
    /// This peer's certificate, from `registered`.
    public let certificate: Certificate
    private let certificateText: [UInt8]
    private let key: Ed25519.SigningKey

    /// Throws `Ed25519.KeyError.rejected` when libcrypto refuses the key; `nil` when the key is not the
    /// certificate's (signing with it would only produce `bad-signature` everywhere).
    public init?(key: Ed25519.PrivateKey, certificate: Certificate) throws(Ed25519.KeyError) {
        guard key.publicKey == certificate.publicKey else { return nil }
        self.key = try Ed25519.SigningKey(key)
        self.certificate = certificate
        certificateText = Array(certificate.text.utf8)
    }

    /// The body of a message: the fixed head, then `data` as compact JSON (sorted keys). `id` must be 1 to
    /// 64 characters of `[0-9A-Za-z_.-]` and `at` (ms since 1970) within 0 ..< 10^15; nil otherwise.
    public static func body(srcId: PeerID, dstId: PeerID, id: String, at: Int64, data: JSONValue) -> [UInt8]? {
        guard (1...SignedFrame.maxIdLength).contains(id.utf8.count), id.utf8.allSatisfy(isIdCharacter),
              (0..<1_000_000_000_000_000).contains(at) else { return nil }
        let json = data.encoded()
        var out: [UInt8] = []
        out.reserveCapacity(96 + id.utf8.count + json.count)
        for piece in [#"{"srcId":""#, srcId.hex, #"","dstId":""#, dstId.hex, #"","id":""#, id, #"","at":"#, String(at), #","data":"#] {
            out.append(contentsOf: piece.utf8)
        }
        out.append(contentsOf: json)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The `S` frame (0 hops) of a message from this peer to `dstId`; nil when `id` or `at` is outside the
    /// grammar (see `body`).
    public func frame(to dstId: PeerID, id: String, at: Int64, data: JSONValue) -> [UInt8]? {
        guard let body = Self.body(srcId: certificate.peerId, dstId: dstId, id: id, at: at, data: data) else { return nil }
        return frame(body: body)
    }

    /// The `S` frame (0 hops) of a body written elsewhere (its head is not checked here).
    public func frame(body: [UInt8]) -> [UInt8] {
        let signature = key.signature(for: SignedFrame.signedTextPrefix + body)
        var out: [UInt8] = []
        out.reserveCapacity(4 + certificateText.count + 2 * signature.count + body.count)
        out += Array("S0:".utf8)
        out += certificateText
        out.append(UInt8(ascii: ":"))
        out += Array(Hex.encode(signature).utf8)
        out.append(UInt8(ascii: ":"))
        out += body
        return out
    }
}
