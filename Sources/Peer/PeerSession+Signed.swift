import Hex
import Ring
import Signatures
import SignedOverlay
import WireProtocol

/// Signed overlay messages in the peer's session (docs/protocol.md, "Signed overlay messages"): this peer
/// signs what it originates with its key and certificate; relays forward `S` frames with one more hop,
/// everything else byte-identical; the destination verifies (`OverlayVerifier`, trusting the server key of
/// its own `challenge`) before anything is delivered. Refusals are dropped and counted by reason
/// (`overlayCounters`); unsigned `M` messages are refused as `unsigned`.
extension PeerSession {
    /// Messages accepted, and refused by reason (the verifier's reasons and `unsigned`), since the start.
    public var overlayCounters: OverlayCounters {
        var c = refusedElsewhere
        if let v = verifier?.counters { c.add(v) }
        return c
    }

    /// The server key of a `challenge` becomes the one trusted issuer of certificates (a new verifier
    /// when it changed: a server with another key is another ring).
    mutating func trustServerKey(_ hex: String) {
        guard hex.utf8.count == 64, let bytes = Hex.decode(hex), let key = try? Ed25519.PublicKey(bytes: bytes) else {
            if let v = verifier { refusedElsewhere.add(v.counters) }
            verifier = nil
            return
        }
        if verifier?.serverKey == key { return }
        if let v = verifier { refusedElsewhere.add(v.counters) }
        verifier = OverlayVerifier(serverKey: key, me: peerId)
    }

    /// After `registered`: sign as `id` with the certificate, and accept messages for `id`.
    mutating func startSigning(as id: PeerID, certificate: String) -> [PeerAction] {
        verifier?.me = id
        messageIdNonce = randomHex(4, using: &random)
        guard let c = Certificate(certificate.utf8), c.peerId == id,
              let s = try? OverlaySigner(key: identity.key, certificate: c) else {
            signer = nil
            return [.log(.warning, "the server's certificate does not bind \(id.hex) to this peer's key: messages cannot be signed")]
        }
        signer = s
        return []
    }

    /// A ring update's holder epochs raise the verifier's highest epoch per ID: a departed holder's older
    /// certificate for an ID a newcomer now holds is refused as `stale-epoch` from then on, even before a
    /// message of the newcomer arrives (docs/protocol.md, "Holder epochs in ring updates").
    mutating func noteEpochs(of message: ServerMessage) {
        for (peer, epoch) in message.peerEpochs { verifier?.noteEpoch(epoch, for: peer) }
    }

    /// The ID is gone (`id-expired`): nothing is signed or accepted for it any more.
    mutating func stopSigning() {
        signer = nil
        verifier?.me = nil
    }

    /// An `S` frame arrived on the link to `link` (whole, or reassembled from `C` parts): relay it by its
    /// `dstId` (one more hop, byte-identical otherwise), or verify and deliver it here.
    mutating func receive(signed bytes: [UInt8], from link: PeerID, wallClockMs: Int64) -> [PeerAction] {
        guard let frame = SignedFrame.parse(bytes)?.relayed() else { return refuse(.malformed, srcId: nil, link: link) }
        if frame.hops > configuration.maxHops {
            return [.error(PeerError("hop-limit", "dropped a message for \(frame.dstId.hex) after \(frame.hops) hops"))]
        }
        let noRoute = PeerError("no-route", "no route to \(frame.dstId.hex)")
        guard let me = peerId else { return [.error(noRoute)] }
        switch nextHop(from: me, to: frame.dstId) {
        case .noRoute:
            return [.error(noRoute)]
        case .next(let next):
            let (routed, actions) = forward(whole: frame.encoded(), to: next, failure: noRoute)
            return routed ? actions : [.error(noRoute)]
        case .deliver:
            guard verifier != nil else { return refuse(.badCertificate, srcId: frame.srcId, link: link) }
            // The routing rules deliver here: this peer is responsible for dstId (its own ID, or a key of its range).
            switch verifier!.verify(frame, nowMs: wallClockMs, responsible: { $0 == frame.dstId }) {
            case .accepted(let m):
                return [.deliver(Envelope(srcId: m.srcId, dstId: m.dstId, data: m.data, hops: m.hops, id: m.id))]
            case .rejected(let reason):
                return forgery(reason.rawValue, srcId: frame.srcId, link: link)
            }
        }
    }

    /// An unsigned `M` message (or `C` parts of one): refused and counted, never relayed.
    mutating func refuseUnsigned(from link: PeerID) -> [PeerAction] {
        refusedElsewhere.refused[OverlayCounters.unsigned, default: 0] += 1
        return forgery(OverlayCounters.unsigned, srcId: nil, link: link)
    }

    mutating func refuse(_ reason: OverlayVerifier.Reason, srcId: PeerID?, link: PeerID) -> [PeerAction] {
        refusedElsewhere.refused[reason.rawValue, default: 0] += 1
        return forgery(reason.rawValue, srcId: srcId, link: link)
    }

    func forgery(_ reason: String, srcId: PeerID?, link: PeerID) -> [PeerAction] {
        [.log(.warning, "refused an overlay message (\(reason)) claiming \(srcId?.hex ?? "?") from the link to \(link.hex)"),
         .forgery(reason: reason, srcId: srcId, link: link)]
    }

    /// Sends a frame that stands on its own (an `S` frame) to `next`, in `C` parts when it is larger than
    /// the link's limit; false when there is no link to `next`.
    mutating func forward(whole frame: [UInt8], to next: PeerID, failure: PeerError?) -> (routed: Bool, actions: [PeerAction]) {
        guard let link = links.links[next] else { return (false, []) }
        let limit = linkFrameLimit(relayed: link.connection == nil, serverMaxMessageBytes: serverMaxMessageBytes, partBytes: configuration.partBytes)
        let chunkId = frame.count > limit ? randomHex(8, using: &random) : ""
        guard let (c, frames) = channel(next, linkFrames(whole: frame, limit: limit, chunkId: chunkId)) else { return (false, []) }
        return (true, [.forward(c, frames: frames, failure: failure)])
    }
}

/// Overlay messages a native peer accepted and refused (docs/protocol.md, "Signed overlay messages").
public struct OverlayCounters: Equatable, Sendable {
    /// The reason of unsigned `M` messages (refused since both engines sign).
    public static let unsigned = "unsigned"

    /// Messages that passed every check and were delivered here.
    public var accepted = 0
    /// Refused messages by reason: the verifier's (`malformed`, `bad-certificate`, `wrong-source`,
    /// `stale-epoch`, `bad-signature`, `bad-body`, `wrong-destination`, `outside-window`, `replayed`) and
    /// `unsigned`. Reasons that never occurred are absent.
    public var refused: [String: Int] = [:]
    /// Server-signature checks of certificates made (one per certificate not in the cache).
    public var certificateChecks = 0

    public init() {}

    /// Every refused message.
    public var forgeries: Int { refused.values.reduce(0, +) }

    mutating func add(_ c: OverlayVerifier.Counters) {
        accepted += c.accepted
        certificateChecks += c.certificateChecks
        for (reason, n) in c.rejected where n > 0 { refused[reason.rawValue, default: 0] += n }
    }

    /// `{"accepted":n,"refused":{reason:n},"forgeries":n,"certificateChecks":n}`.
    public var json: JSONValue {
        .object(["accepted": .number(Double(accepted)), "forgeries": .number(Double(forgeries)),
                 "certificateChecks": .number(Double(certificateChecks)),
                 "refused": .object(refused.mapValues { .number(Double($0)) })])
    }
}
