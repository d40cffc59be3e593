import Ring

// The peer's side of protocol v2 (docs/protocol.md): encoding what a peer sends and decoding what the
// server sends, with the same message types as the server.

extension ClientMessage {
    /// The JSON text frame a peer sends.
    public func encoded() -> [UInt8] {
        switch self {
        case .register(let peerId, let publicKey, let signature, let capabilities):
            var o: [String: JSONValue] = ["type": "register", "publicKey": .string(publicKey), "signature": .string(signature)]
            if let peerId { o["peerId"] = .string(peerId.hex) }
            if let capabilities { o["capabilities"] = .object(capabilities) }
            return JSONValue.object(o).encoded()
        case .signal(let to, let intentId, let signal):
            var out: [UInt8] = Array(#"{"type":"signal","to":""#.utf8)
            out += to.hex.utf8
            out += #"","intentId":"#.utf8
            appendJSONString(intentId, to: &out)
            out += #","signal":"#.utf8
            out += signal.bytes
            out.append(UInt8(ascii: "}"))
            return out
        case .leave:
            return Array(#"{"type":"leave"}"#.utf8)
        case .report(let stats):
            return JSONValue.object(["type": "report", "stats": .object(stats.mapValues { .number($0) })]).encoded()
        case .link(let to, let frame):
            return JSONValue.object(["type": "link", "to": .string(to.hex), "frame": .string(frame)]).encoded()
        }
    }
}

extension ServerMessage {
    /// Decodes a frame from the server. Throws `ProtocolError(.badJSON / .badField / .unknownType)`.
    public static func decode(_ bytes: [UInt8]) throws(ProtocolError) -> ServerMessage {
        guard case .object(let o)? = JSONValue(parsing: bytes) else {
            throw ProtocolError(.badJSON, "server message is not a JSON object")
        }
        func id(_ key: String) throws(ProtocolError) -> PeerID? {
            switch o[key] {
            case nil, .null?: return nil
            case .string(let s)?:
                guard let p = PeerID(hex: s) else { throw ProtocolError(.badField, "'\(key)' is not a peer ID") }
                return p
            default: throw ProtocolError(.badField, "'\(key)' is not a peer ID")
            }
        }
        func int(_ v: JSONValue?, _ key: String) throws(ProtocolError) -> Int {
            guard case .number(let n)? = v, n.rounded() == n, abs(n) < 1e15 else { throw ProtocolError(.badField, "'\(key)' must be an integer") }
            return Int(n)
        }
        /// An optional holder epoch (16 lowercase hex); nil when absent.
        func epoch(_ v: JSONValue?, _ key: String) throws(ProtocolError) -> UInt64? {
            switch v {
            case nil, .null?: return nil
            case .string(let s)? where ClientMessage.isLowerHex(s, count: 16): return UInt64(s, radix: 16)
            default: throw ProtocolError(.badField, "'\(key)' must be an epoch (16 lowercase hex)")
            }
        }
        func config(_ c: [String: JSONValue]) throws(ProtocolError) -> RingConfig {
            guard case .array(let rows)? = c["fingerRows"] else { throw ProtocolError(.badField, "'fingerRows' must be an array") }
            var fingerRows: [Int] = []
            for r in rows { fingerRows.append(try int(r, "fingerRows")) }
            return RingConfig(fingerRows: fingerRows, successors: try int(c["successors"], "successors"),
                              maxMessageBytes: try int(c["maxMessageBytes"], "maxMessageBytes"),
                              idleTimeoutSeconds: try int(c["idleTimeoutSeconds"], "idleTimeoutSeconds"),
                              linkRelay: c["linkRelay"] == .bool(true), serverKey: c["serverKey"]?.stringValue)
        }
        switch o["type"]?.stringValue {
        case "challenge":
            guard let nonce = o["nonce"]?.stringValue, ClientMessage.isLowerHex(nonce, count: 64),
                  let key = o["serverKey"]?.stringValue, ClientMessage.isLowerHex(key, count: 64) else {
                throw ProtocolError(.badField, "'challenge' needs nonce and serverKey, 64 lowercase hex each")
            }
            return .challenge(nonce: nonce, serverKey: key)
        case "registered":
            guard let peerId = try id("peerId"), let epochText = o["epoch"]?.stringValue, ClientMessage.isLowerHex(epochText, count: 16),
                  let epoch = UInt64(epochText, radix: 16), let certificate = o["certificate"]?.stringValue,
                  let c = o["config"]?.objectValue else {
                throw ProtocolError(.badField, "'registered' needs peerId, epoch (16 hex), certificate and config")
            }
            return .registered(peerId: peerId, epoch: epoch, certificate: certificate, config: try config(c))
        case "config":
            return .config(try config(o))
        case "predecessor":
            let p = try id("peerId")
            return .predecessor(p, epoch: p == nil ? nil : try epoch(o["epoch"], "epoch"))
        case "successors":
            guard case .array(let list)? = o["peerIds"] else { throw ProtocolError(.badField, "'peerIds' must be an array") }
            var ids: [PeerID] = []
            for v in list {
                guard let s = v.stringValue, let p = PeerID(hex: s) else { throw ProtocolError(.badField, "'peerIds' must hold peer IDs") }
                ids.append(p)
            }
            var epochs: [UInt64]?
            switch o["epochs"] {
            case nil, .null?: break
            case .array(let list)? where list.count == ids.count:
                epochs = []
                for v in list { epochs!.append(try epoch(v, "epochs")!) }
            default: throw ProtocolError(.badField, "'epochs' must be an array of 16 hex epochs, one per peer ID")
            }
            return .successors(ids, epochs: epochs)
        case "finger-update":
            guard let start = try id("start") else { throw ProtocolError(.badField, "'start' is required") }
            let peer = try id("peerId")
            return .fingerUpdate(row: try int(o["row"], "row"), start: start, peer: peer,
                                 epoch: peer == nil ? nil : try epoch(o["epoch"], "epoch"))
        case "signal":
            guard let from = try id("from"), let intentId = o["intentId"]?.stringValue, let signal = o["signal"], signal.objectValue != nil else {
                throw ProtocolError(.badField, "'signal' needs from, intentId and a signal object")
            }
            let fromUrl = o["fromUrl"]?.stringValue
            return .signal(from: from, intentId: intentId, signal: RawJSON(signal.objectValue!), fromUrl: fromUrl)
        case "link":
            guard let from = try id("from"), let frame = o["frame"]?.stringValue else { throw ProtocolError(.badField, "'link' needs from and frame") }
            return .link(from: from, frame: frame)
        case "going-away":
            guard case .number(let ms)? = o["retryAfterMs"], ms >= 0, ms < 3_600_000 else { throw ProtocolError(.badField, "'retryAfterMs' must be a number of milliseconds") }
            return .goingAway(retryAfterMs: Int(ms))
        case "error":
            guard let code = o["code"]?.stringValue else { throw ProtocolError(.badField, "'error' needs a code") }
            return .error(ErrorCode(rawValue: code) ?? .badField, o["message"]?.stringValue ?? code)
        default:
            throw ProtocolError(.unknownType, "unknown server message type")
        }
    }

    /// The ring update this message carries, if it is one.
    public var ringUpdate: RingUpdate? {
        switch self {
        case .config(let c): .config(fingerRows: c.fingerRows)
        case .predecessor(let p, _): .predecessor(p)
        case .successors(let list, _): .successors(list)
        case .fingerUpdate(let row, let start, let peer, _): .finger(row: row, start: start, peer: peer)
        default: nil
        }
    }

    /// The holder epochs this ring update names (peer, epoch), in message order; empty for other messages
    /// and for updates without epochs.
    public var peerEpochs: [(peer: PeerID, epoch: UInt64)] {
        switch self {
        case .predecessor(let p?, let e?): [(p, e)]
        case .successors(let list, let epochs?): Array(zip(list, epochs)).map { (peer: $0.0, epoch: $0.1) }
        case .fingerUpdate(_, _, let p?, let e?): [(p, e)]
        default: []
        }
    }
}
