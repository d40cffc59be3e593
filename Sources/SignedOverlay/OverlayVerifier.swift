import Hex
import DequeModule
import HeapModule
import Ring
import Signatures
import WireProtocol

/// The destination's checks of signed overlay messages (docs/protocol.md, "Signed overlay messages"), pure: the time comes
/// with each call (`nowMs`, wall-clock milliseconds since 1970, the clock `at` is compared with); no I/O.
/// Checks, in order, each failure counted under its reason:
///
/// 1. the frame and its body's head parse (`malformed`);
/// 2. the certificate is signed by the trusted server key (`bad-certificate`); a verified certificate is
///    cached (one server-signature check per certificate, not per message);
/// 3. its `peerId` is the body's `srcId` (`wrong-source`);
/// 4. its epoch is not below the highest epoch known for that ID (`stale-epoch`); the highest is raised;
/// 5. the signature, with the certificate's key (`bad-signature`);
/// 6. the body is a JSON object of exactly `srcId`, `dstId`, `id`, `at`, `data`, agreeing with its head
///    (`bad-body`: signed by its source, but not a message);
/// 7. `dstId` is this peer, or a key it is responsible for (`wrong-destination`);
/// 8. `|at − now| ≤ timeToleranceMs` and `at` above the replay memory's floor (`outside-window`);
/// 9. (`srcId`, `id`) was not accepted before within the window (`replayed`).
///
/// Only accepted messages enter the replay memory. Every store is bounded (`Limits`).
///
/// Not `Sendable` (cached libcrypto key objects): one owner, one thread.
public struct OverlayVerifier {
    /// Why a message was refused. The raw values are the reasons of the vectors and of the browser's
    /// `signed-message.js`.
    public enum Reason: String, CaseIterable, Sendable {
        case malformed
        case badCertificate = "bad-certificate"
        case wrongSource = "wrong-source"
        case staleEpoch = "stale-epoch"
        case badSignature = "bad-signature"
        case badBody = "bad-body"
        case wrongDestination = "wrong-destination"
        case outsideWindow = "outside-window"
        case replayed
    }

    /// A message that passed every check.
    public struct Message: Equatable, Sendable {
        public let srcId: PeerID
        public let dstId: PeerID
        public let id: String
        /// The source's clock when it signed (ms since 1970).
        public let at: Int64
        /// The epoch of the source's certificate.
        public let epoch: UInt64
        /// Hops it took (not signed: as the relays counted).
        public let hops: Int
        public let data: JSONValue
    }

    public enum Verdict: Equatable, Sendable {
        case accepted(Message)
        case rejected(Reason)
    }

    /// The bounds. Every limit is named here.
    public struct Limits: Sendable {
        /// Largest difference between a message's `at` and the verifier's clock, in ms (both ways).
        public var timeToleranceMs: Int64 = 300_000
        /// (srcId, id) pairs remembered at most. When full, a message not younger than every remembered one
        /// is refused (`outside-window`); otherwise the oldest leaves and the window's lower edge rises to it.
        public var maxReplayEntries = 65_536
        /// Verified certificates cached at most (the oldest leaves first; it is checked again if it returns).
        public var maxCachedCertificates = 4_096
        /// IDs whose highest epoch is remembered at most (the oldest entry leaves first).
        public var maxKnownEpochs = 65_536

        public init() {}
    }

    /// Messages accepted and refused (by reason), and server-signature checks of certificates made.
    public struct Counters: Equatable, Sendable {
        public var accepted = 0
        public var rejected: [Reason: Int] = [:]
        public var certificateChecks = 0
        /// Every refused message.
        public var forgeries: Int { rejected.values.reduce(0, +) }
    }

    public let serverKey: Ed25519.PublicKey
    public let limits: Limits
    /// This peer's ID (messages for others are `wrong-destination`); nil refuses every message.
    public var me: PeerID?
    public private(set) var counters = Counters()

    private var certificates: [[UInt8]: (certificate: Certificate, key: Ed25519.VerifyingKey)] = [:]
    private var certificateOrder: Deque<[UInt8]> = []
    private var epochs: [PeerID: UInt64] = [:]
    private var epochOrder: Deque<PeerID> = []
    private var replay = ReplayMemory()

    /// `serverKey`: the rendezvous server's key (from `challenge` / `registered`), the one trusted issuer.
    public init(serverKey: Ed25519.PublicKey, me: PeerID?, limits: Limits = Limits()) {
        self.serverKey = serverKey
        self.me = me
        self.limits = limits
    }

    /// Checks one `S` frame (as received, or reassembled from `C` parts).
    public mutating func verify(_ frame: [UInt8], nowMs: Int64) -> Verdict {
        guard let parsed = SignedFrame.parse(frame) else { return reject(.malformed) }
        return verify(parsed, nowMs: nowMs)
    }

    public mutating func verify(_ frame: SignedFrame, nowMs: Int64) -> Verdict {
        let me = self.me
        return verify(frame, nowMs: nowMs, responsible: { $0 == me })
    }

    /// Checks one frame at the peer responsible for its `dstId`: check 7 asks `responsible(dstId)` instead
    /// of comparing with `me` (a peer takes the messages for the keys of its range, (predecessor, me]:
    /// discovery queries, a task for a peer that left reaching its successor). A verifier without `me`
    /// still refuses every message (`wrong-destination`).
    public mutating func verify(_ frame: SignedFrame, nowMs: Int64, responsible: (PeerID) -> Bool) -> Verdict {
        guard let (certificate, key) = checkedCertificate(Array(frame.certificate)) else { return reject(.badCertificate) }
        guard certificate.peerId == frame.srcId else { return reject(.wrongSource) }
        if let highest = epochs[certificate.peerId], certificate.epoch < highest { return reject(.staleEpoch) }
        noteEpoch(certificate.epoch, for: certificate.peerId)
        guard let signature = Hex.decodeLower(frame.signature),
              key.isValidSignature(signature, for: frame.signedText) else { return reject(.badSignature) }
        guard case .object(let o)? = JSONValue(parsing: Array(frame.body)), o.count == 5,
              o["srcId"] == .string(frame.srcId.hex), o["dstId"] == .string(frame.dstId.hex),
              o["id"] == .string(frame.id), o["at"] == .number(Double(frame.at)), let data = o["data"]
        else { return reject(.badBody) }
        guard me != nil, responsible(frame.dstId) else { return reject(.wrongDestination) }
        switch replay.admit(source: frame.srcId, id: frame.id, at: frame.at, now: nowMs, tolerance: limits.timeToleranceMs,
                            capacity: limits.maxReplayEntries) {
        case .outsideWindow: return reject(.outsideWindow)
        case .replayed: return reject(.replayed)
        case .admitted: break
        }
        counters.accepted += 1
        return .accepted(Message(srcId: frame.srcId, dstId: frame.dstId, id: frame.id, at: frame.at,
                                 epoch: certificate.epoch, hops: frame.hops, data: data))
    }

    /// Raises the highest epoch known for `peerId` (from a certificate, or from another source such as
    /// ring updates carrying epochs). Lower epochs are ignored.
    public mutating func noteEpoch(_ epoch: UInt64, for peerId: PeerID) {
        if let known = epochs[peerId] {
            if epoch > known { epochs[peerId] = epoch }
            return
        }
        if epochs.count >= limits.maxKnownEpochs, let oldest = epochOrder.popFirst() { epochs[oldest] = nil }
        epochs[peerId] = epoch
        epochOrder.append(peerId)
    }

    /// The highest epoch known for `peerId`.
    public func highestEpoch(of peerId: PeerID) -> UInt64? { epochs[peerId] }

    private mutating func checkedCertificate(_ text: [UInt8]) -> (Certificate, Ed25519.VerifyingKey)? {
        if let hit = certificates[text] { return hit }
        counters.certificateChecks += 1
        guard let certificate = Certificate(text), certificate.isSigned(by: serverKey),
              let key = try? Ed25519.VerifyingKey(certificate.publicKey) else { return nil }
        if certificates.count >= limits.maxCachedCertificates, let oldest = certificateOrder.popFirst() {
            certificates[oldest] = nil
        }
        certificates[text] = (certificate, key)
        certificateOrder.append(text)
        return (certificate, key)
    }

    private mutating func reject(_ reason: Reason) -> Verdict {
        counters.rejected[reason, default: 0] += 1
        return .rejected(reason)
    }
}

/// The (source, id) pairs of accepted messages within the time window, ordered by `at`, with a floor that
/// rises when the memory is full (docs/protocol.md, "State, and its bounds").
struct ReplayMemory {
    struct Key: Hashable { let source: PeerID; let id: String }
    struct Entry: Comparable {
        let at: Int64
        let key: Key
        static func < (a: Entry, b: Entry) -> Bool { a.at < b.at }
        static func == (a: Entry, b: Entry) -> Bool { a.at == b.at && a.key == b.key }
    }
    enum Outcome { case admitted, replayed, outsideWindow }

    private var seen: [Key: Int64] = [:]
    private var byAge = Heap<Entry>()
    /// Messages with `at` at or below this are refused (nothing is known about them any more).
    private(set) var floor: Int64 = -1

    var count: Int { seen.count }

    mutating func admit(source: PeerID, id: String, at: Int64, now: Int64, tolerance: Int64, capacity: Int) -> Outcome {
        while let oldest = byAge.min, oldest.at < now - tolerance {
            byAge.removeMin()
            seen[oldest.key] = nil
        }
        guard abs(at - now) <= tolerance, at > floor else { return .outsideWindow }
        let key = Key(source: source, id: id)
        if seen[key] != nil { return .replayed }
        if seen.count >= capacity {
            guard let oldest = byAge.min, at > oldest.at else { return .outsideWindow }
            byAge.removeMin()
            seen[oldest.key] = nil
            floor = max(floor, oldest.at)
        }
        seen[key] = at
        byAge.insert(Entry(at: at, key: key))
        return .admitted
    }
}

extension Hex {
    /// The bytes of lowercase hex digits, or nil (uppercase is not the canonical spelling).
    static func decodeLower(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count % 2 == 0, isLowerHex(text) else { return nil }
        return Hex.decode(String(decoding: text, as: UTF8.self))
    }
}
