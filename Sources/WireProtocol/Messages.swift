import Hex
import Ring

/// Stable error codes of protocol v2 (see docs/protocol.md).
public enum ErrorCode: String, Sendable, CaseIterable, Codable {
    case badJSON = "bad-json"
    case unknownType = "unknown-type"
    case badField = "bad-field"
    case notRegistered = "not-registered"
    case alreadyRegistered = "already-registered"
    case unknownPeer = "unknown-peer"
    case tooLarge = "too-large"
    case rateLimited = "rate-limited"
    case serverFull = "server-full"
    /// A `register` whose signature does not verify (wrong key, nonce, server key or peerId, or a public
    /// key libcrypto refuses). Replaced `bad-token` in protocol v2.
    case badSignature = "bad-signature"
    case binaryFrame = "binary-frame"
    case replaced = "replaced"
    case evicted = "evicted"
    case relayDisabled = "relay-disabled"
    /// The signature is valid but the key does not hold the requested ID (its lease ended, it left, the
    /// ID is bound to another key, or the binding was lost). The peer forgets its ID and registers fresh.
    case idExpired = "id-expired"
    /// Sent after `registered` (the peer is registered): its `capabilities.url` is not vouched for, so
    /// other peers will not dial it (docs/protocol.md, "Vouched URLs"); the message says why.
    case urlNotVouched = "url-not-vouched"
    /// Cluster mode: the server cannot reach the cluster's shared log (Redis), so it cannot register
    /// anyone now, or it lost its place in the cluster. Try again after a delay, or another server
    /// (docs/cluster.md).
    case unavailable = "unavailable"
}

/// A protocol violation: what the server answers with an `error` message.
public struct ProtocolError: Error, Equatable, Sendable {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Messages a peer sends to the rendezvous server.
public enum ClientMessage: Equatable, Sendable {
    /// Join the ring (`peerId` nil) or come back with a previous ID, proving possession of the Ed25519 key
    /// `publicKey` (64 lowercase hex) with `signature` (128 lowercase hex) of
    /// `Identity.registrationText(serverKey:nonce:peerId:publicKey:)` for this connection's challenge.
    case register(peerId: PeerID?, publicKey: String, signature: String, capabilities: [String: JSONValue]?)
    /// Relay an opaque WebRTC signal (offer, answer, ICE candidate) to another peer.
    case signal(to: PeerID, intentId: String, signal: RawJSON)
    /// Leave the ring cleanly.
    case leave
    /// Numbers the peer reports for analytics.
    case report(stats: [String: Double])
    /// One link frame for a peer this one cannot reach directly (the server's link relay).
    case link(to: PeerID, frame: String)
}

/// The configuration a peer gets in `registered` and `config`.
public struct RingConfig: Equatable, Sendable {
    public var fingerRows: [Int]
    public var successors: Int
    public var maxMessageBytes: Int
    public var idleTimeoutSeconds: Int
    /// Whether the server relays link frames (`link`) between peers that cannot reach each other.
    public var linkRelay: Bool
    /// The server's Ed25519 public key (64 lowercase hex), which signs certificates; nil when not sent.
    public var serverKey: String?

    public init(fingerRows: [Int], successors: Int, maxMessageBytes: Int, idleTimeoutSeconds: Int, linkRelay: Bool = false,
                serverKey: String? = nil) {
        self.fingerRows = fingerRows
        self.successors = successors
        self.maxMessageBytes = maxMessageBytes
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.linkRelay = linkRelay
        self.serverKey = serverKey
    }

    var json: JSONValue {
        var o: [String: JSONValue] = [
            "idBits": .number(Double(PeerID.bits)),
            "fingerRows": .array(fingerRows.map { .number(Double($0)) }),
            "successors": .number(Double(successors)),
            "maxMessageBytes": .number(Double(maxMessageBytes)),
            "idleTimeoutSeconds": .number(Double(idleTimeoutSeconds)),
            "linkRelay": .bool(linkRelay),
        ]
        if let serverKey { o["serverKey"] = .string(serverKey) }
        return .object(o)
    }
}

/// Messages the rendezvous server sends to a peer.
public enum ServerMessage: Equatable, Sendable {
    /// The first frame on every connection: the nonce (64 lowercase hex, 32 random bytes) a `register`
    /// on this connection signs, and the server's public key (64 lowercase hex).
    case challenge(nonce: String, serverKey: String)
    /// The ID, its holder epoch and the server's certificate of (ID, public key, epoch) (`Certificate`).
    case registered(peerId: PeerID, epoch: UInt64, certificate: String, config: RingConfig)
    case config(RingConfig)
    /// A ring update. `epoch`/`epochs`: the holder epoch of each named peer (docs/protocol.md, "Holder
    /// epochs in ring updates"), so that a peer refuses messages signed with an older certificate for that ID;
    /// nil when not sent (older servers). `epochs` is parallel to the peer list (same length).
    case predecessor(PeerID?, epoch: UInt64? = nil)
    case successors([PeerID], epochs: [UInt64]? = nil)
    case fingerUpdate(row: Int, start: PeerID, peer: PeerID?, epoch: UInt64? = nil)
    /// A relayed signal. `fromUrl`: the sender's vouched link URL, from the server's record of the sender
    /// (never from the signal); the only URL a receiver dials for the sender's `dial-me` (nil: none).
    case signal(from: PeerID, intentId: String, signal: RawJSON, fromUrl: String? = nil)
    case error(ErrorCode, String)
    /// The server is shutting down: reconnect after `retryAfterMs` and re-register with the key.
    case goingAway(retryAfterMs: Int)
    /// A link frame relayed from another peer.
    case link(from: PeerID, frame: String)

    public var json: JSONValue {
        func id(_ p: PeerID?) -> JSONValue { p.map { .string($0.hex) } ?? .null }
        func epoch(_ e: UInt64) -> JSONValue { .string(Hex.encode(e, digits: 16)) }
        switch self {
        case .challenge(let nonce, let serverKey):
            return .object(["type": "challenge", "nonce": .string(nonce), "serverKey": .string(serverKey)])
        case .registered(let peerId, let epoch, let certificate, let config):
            return .object(["type": "registered", "peerId": id(peerId), "epoch": .string(Hex.encode(epoch, digits: 16)),
                            "certificate": .string(certificate), "config": config.json])
        case .config(let config):
            var object = config.json.objectValue!
            object["type"] = "config"
            return .object(object)
        case .predecessor(let p, let e):
            var o: [String: JSONValue] = ["type": "predecessor", "peerId": id(p)]
            if let e, p != nil { o["epoch"] = epoch(e) }
            return .object(o)
        case .successors(let list, let epochs):
            var o: [String: JSONValue] = ["type": "successors", "peerIds": .array(list.map { id($0) })]
            if let epochs { o["epochs"] = .array(epochs.map(epoch)) }
            return .object(o)
        case .fingerUpdate(let row, let start, let peer, let e):
            var o: [String: JSONValue] = ["type": "finger-update", "row": .number(Double(row)), "start": id(start), "peerId": id(peer)]
            if let e, peer != nil { o["epoch"] = epoch(e) }
            return .object(o)
        case .signal(let from, let intentId, let signal, let fromUrl):
            var o: [String: JSONValue] = ["type": "signal", "from": id(from), "intentId": .string(intentId), "signal": signal.value ?? .null]
            if let fromUrl { o["fromUrl"] = .string(fromUrl) }
            return .object(o)
        case .error(let code, let message):
            return .object(["type": "error", "code": .string(code.rawValue), "message": .string(message)])
        case .goingAway(let ms):
            return .object(["type": "going-away", "retryAfterMs": .number(Double(ms))])
        case .link(let from, let frame):
            return .object(["type": "link", "from": id(from), "frame": .string(frame)])
        }
    }

    /// The JSON text frame, compact. A relayed signal is assembled around the sender's bytes (its
    /// `type` first); every other message is the bytes of `json.encoded()` (keys sorted), and the ring updates a join pushes to its neighbours
    /// (`predecessor`, `successors`, `finger-update`, several per join) are written directly, without
    /// building a tree (hot paths; tests check that the bytes equal the tree's).
    public func encoded() -> [UInt8] {
        switch self {
        case .signal(let from, let intentId, let signal, let fromUrl):
            return Self.signalFrame(from: from, intentId: intentId, signal: signal, fromUrl: fromUrl)
        case .predecessor(let p, let e):
            var out: [UInt8] = []
            out.reserveCapacity(80)
            out.append(UInt8(ascii: "{"))
            if let e, p != nil { Self.appendEpoch(e, to: &out); out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #""peerId":"#.utf8)
            Self.appendID(p, to: &out)
            out.append(contentsOf: #","type":"predecessor"}"#.utf8)
            return out
        case .successors(let list, let epochs):
            var out: [UInt8] = []
            out.reserveCapacity(48 + list.count * 15 + (epochs?.count ?? 0) * 19)
            out.append(contentsOf: #"{"#.utf8)
            if let epochs {
                out.append(contentsOf: #""epochs":["#.utf8)
                for (k, e) in epochs.enumerated() {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    Self.appendQuotedHex(e, digits: 16, to: &out)
                }
                out.append(contentsOf: #"],"#.utf8)
            }
            out.append(contentsOf: #""peerIds":["#.utf8)
            for (k, p) in list.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                Self.appendQuotedHex(p.rawValue, digits: 12, to: &out)
            }
            out.append(contentsOf: #"],"type":"successors"}"#.utf8)
            return out
        case .fingerUpdate(let row, let start, let peer, let e):
            var out: [UInt8] = []
            out.reserveCapacity(112)
            out.append(UInt8(ascii: "{"))
            if let e, peer != nil { Self.appendEpoch(e, to: &out); out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #""peerId":"#.utf8)
            Self.appendID(peer, to: &out)
            out.append(contentsOf: #","row":"#.utf8)
            out.append(contentsOf: String(row).utf8)
            out.append(contentsOf: #","start":"#.utf8)
            Self.appendQuotedHex(start.rawValue, digits: 12, to: &out)
            out.append(contentsOf: #","type":"finger-update"}"#.utf8)
            return out
        default:
            return json.encoded()
        }
    }

    /// `"epoch":"<16 hex digits>"`.
    private static func appendEpoch(_ e: UInt64, to out: inout [UInt8]) {
        out.append(contentsOf: #""epoch":"#.utf8)
        appendQuotedHex(e, digits: 16, to: &out)
    }

    /// A peer ID as a JSON string, or `null`.
    private static func appendID(_ p: PeerID?, to out: inout [UInt8]) {
        if let p { appendQuotedHex(p.rawValue, digits: 12, to: &out) } else { out.append(contentsOf: "null".utf8) }
    }

    /// The low `count` lowercase hex digits of `value` between double quotes (no escaping needed).
    private static func appendQuotedHex(_ value: UInt64, digits count: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var shift = 4 * (count - 1)
        while shift >= 0 {
            out.append(lowerHexDigit(UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xf))
            shift -= 4
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func lowerHexDigit(_ d: UInt8) -> UInt8 { d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10 }

    private static func signalFrame(from: PeerID, intentId: String, signal: RawJSON, fromUrl: String?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(signal.bytes.count + intentId.utf8.count + (fromUrl.map { $0.utf8.count + 16 } ?? 0) + 72)
        appendStatic(#"{"type":"signal","from":"#, to: &out)
        appendQuotedHex(from.rawValue, digits: 12, to: &out)
        if let fromUrl {
            appendStatic(#","fromUrl":"#, to: &out)
            appendJSONString(fromUrl, to: &out)
        }
        appendStatic(#","intentId":"#, to: &out)
        appendJSONString(intentId, to: &out)
        appendStatic(#","signal":"#, to: &out)
        out.append(contentsOf: signal.bytes)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Appends a literal's bytes (a plain copy; appending a `String.UTF8View` costs several times more).
    private static func appendStatic(_ s: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// The message that tells a peer about one ring update; `epoch` gives each named peer's holder epoch
    /// (nil: not sent for that peer; `successors` carries `epochs` only when every peer has one).
    public init(_ update: RingUpdate, config: (([Int]) -> RingConfig), epoch: (PeerID) -> UInt64? = { _ in nil }) {
        switch update {
        case .config(let rows): self = .config(config(rows))
        case .predecessor(let p): self = .predecessor(p, epoch: p.flatMap(epoch))
        case .successors(let list):
            let epochs = list.compactMap(epoch)
            self = .successors(list, epochs: epochs.count == list.count ? epochs : nil)
        case .finger(let row, let start, let peer): self = .fingerUpdate(row: row, start: start, peer: peer, epoch: peer.flatMap(epoch))
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}
