import Ring

/// Limits applied while decoding client messages.
public struct DecodingLimits: Sendable {
    /// Largest `intentId`, in characters.
    public var maxIntentIdLength = 64
    /// Largest encoded `capabilities` object, in bytes.
    public var maxCapabilitiesBytes = 4096
    /// Most keys in a `report` stats object.
    public var maxReportKeys = 32
    /// Longest key in `capabilities` or `report`.
    public var maxKeyLength = 64
    /// Largest accepted number in `report` (2^53, the largest exactly representable integer).
    public var maxReportValue = 9_007_199_254_740_992.0

    public init() {}
}

extension ClientMessage {
    /// Decodes and validates one text frame. Unknown extra fields are ignored (forward compatible).
    ///
    /// A `signal` frame in its usual shape is read by `decodeUsualSignal` (no tree, no key strings).
    /// Every other frame: one pass over the bytes (`JSONTreeParser.members`) validates the whole frame and builds a tree of
    /// every top-level member except `signal`, which is only validated: in a `signal` message (the relay
    /// hot path) its bytes are forwarded as they are. Errors (docs/protocol.md): `bad-json` for text that
    /// is not one JSON object, a repeated top-level key, nesting deeper than 64, or (outside a `signal`
    /// message) a number beyond binary64's range; `bad-field`, `too-large`, `unknown-type`
    /// as each message's checks say. Nested objects keep the first of repeated keys.
    public static func decode(_ bytes: [UInt8], limits: DecodingLimits = DecodingLimits()) throws(ProtocolError)
        -> ClientMessage
    {
        if let usual = bytes.withUnsafeBufferPointer({ decodeUsualSignal($0, limits: limits) }) { return usual }
        return try decodeGeneral(bytes, limits: limits)
    }

    /// `decode` for every frame, without the hot path for usual `signal` frames (which tests compare to it).
    static func decodeGeneral(_ bytes: [UInt8], limits: DecodingLimits) throws(ProtocolError) -> ClientMessage {
        let read = bytes.withUnsafeBufferPointer {
            JSONTreeParser.members(of: $0, raw: "signal", duplicates: .firstWins)
        }
        guard let read else {
            let isObjectText = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) } == UInt8(ascii: "{")
            let isJSON = !isObjectText && bytes.withUnsafeBufferPointer { JSONScanner.isValid($0) }
            throw ProtocolError(.badJSON, isJSON ? "message must be a JSON object" : "message is not valid JSON")
        }
        let fields = Fields(members: read.members)
        if let duplicate = fields.duplicateKey() {
            throw ProtocolError(.badJSON, "duplicate key '\(duplicate.prefix(64))' in the message")
        }
        guard let typeMember = fields[member: "type"] else { throw ProtocolError(.badField, "missing field 'type'") }
        guard case .string(let type)? = typeMember.tree else { throw ProtocolError(.badField, "'type' must be a string") }
        if type == "signal" { return try decodeSignal(fields, bytes: bytes, limits: limits) }

        // Outside a relayed signal every number must fit binary64 (Foundation's JSONDecoder, which this
        // path used before, refused the others). A `signal` member in another message is only validated
        // by the pass, so its numbers are checked here (an unusual frame: the one second look at bytes).
        let rawOutOfRange = fields[member: "signal"].map { member in
            bytes.withUnsafeBufferPointer {
                JSONTreeParser.parse(UnsafeBufferPointer(rebasing: $0[member.range]), duplicates: .firstWins)?.outOfRange ?? true
            }
        } ?? false
        if read.outOfRange || rawOutOfRange { throw ProtocolError(.badJSON, "message is not valid JSON") }

        switch type {
        case "register":
            // Key-pair identity (docs/protocol.md, "Key-pair identity"): a public key and a signature of
            // the connection's challenge; the bearer tokens of protocol v1 are refused.
            if fields["token"] != nil {
                throw ProtocolError(.badField, "'token' is retired: sign the challenge with 'publicKey' and 'signature'")
            }
            let peerId = try optionalPeerID(fields, "peerId")
            guard let publicKey = try optionalString(fields, "publicKey"), isLowerHex(publicKey, count: 64) else {
                throw ProtocolError(.badField, "'publicKey' must be 64 lowercase hex characters")
            }
            guard let signature = try optionalString(fields, "signature"), isLowerHex(signature, count: 128) else {
                throw ProtocolError(.badField, "'signature' must be 128 lowercase hex characters")
            }
            var capabilities: [String: JSONValue]?
            if let c = fields["capabilities"], c != .null {
                guard case .object(let caps) = c else { throw ProtocolError(.badField, "'capabilities' must be an object") }
                if caps.keys.contains(where: { $0.utf8.count > limits.maxKeyLength }) {
                    throw ProtocolError(.badField, "'capabilities' keys are limited to \(limits.maxKeyLength) bytes")
                }
                if c.encoded().count > limits.maxCapabilitiesBytes {
                    throw ProtocolError(.tooLarge, "'capabilities' exceeds \(limits.maxCapabilitiesBytes) bytes")
                }
                capabilities = caps
            }
            return .register(peerId: peerId, publicKey: publicKey, signature: signature, capabilities: capabilities)

        case "leave":
            return .leave

        case "link":
            guard let to = try optionalPeerID(fields, "to") else { throw ProtocolError(.badField, "missing field 'to'") }
            guard let frame = try optionalString(fields, "frame"), !frame.isEmpty else { throw ProtocolError(.badField, "'frame' must be a non-empty string") }
            return .link(to: to, frame: frame)

        case "report":
            guard case .object(let raw)? = fields["stats"] else { throw ProtocolError(.badField, "'stats' must be an object") }
            guard raw.count <= limits.maxReportKeys else {
                throw ProtocolError(.tooLarge, "'stats' has more than \(limits.maxReportKeys) keys")
            }
            var stats: [String: Double] = [:]
            for (key, v) in raw {
                guard !key.isEmpty, key.utf8.count <= limits.maxKeyLength else {
                    throw ProtocolError(.badField, "'stats' keys must be 1 to \(limits.maxKeyLength) bytes")
                }
                guard case .number(let n) = v, n.isFinite, n >= 0, n <= limits.maxReportValue else {
                    throw ProtocolError(.badField, "'stats.\(key)' must be a number in [0, 2^53]")
                }
                stats[key] = n
            }
            return .report(stats: stats)

        default:
            throw ProtocolError(.unknownType, "unknown message type '\(type.prefix(64))'")
        }
    }

    private static func decodeSignal(_ fields: Fields, bytes: [UInt8], limits: DecodingLimits) throws(ProtocolError)
        -> ClientMessage
    {
        guard let toText = try optionalString(fields, "to") else { throw ProtocolError(.badField, "missing field 'to'") }
        guard let to = PeerID(hex: toText) else {
            throw ProtocolError(.badField, "'to' must be a peer ID of 12 lowercase hex characters")
        }
        guard let intentId = try optionalString(fields, "intentId") else {
            throw ProtocolError(.badField, "missing field 'intentId'")
        }
        // Length as JavaScript counts it (UTF-16 code units), so browsers can check it the same way.
        guard !intentId.isEmpty, intentId.utf16.count <= limits.maxIntentIdLength else {
            throw ProtocolError(.badField, "'intentId' must be 1 to \(limits.maxIntentIdLength) characters")
        }
        guard let signal = fields[member: "signal"] else { throw ProtocolError(.badField, "missing field 'signal'") }
        guard bytes[signal.range.lowerBound] == UInt8(ascii: "{") else {
            throw ProtocolError(.badField, "'signal' must be an object")
        }
        return .signal(to: to, intentId: intentId, signal: RawJSON(validated: Array(bytes[signal.range])))
    }

    private static func isLowerHex(_ b: UInt8) -> Bool {
        JSONScanner.hexValue(b) != nil && !(UInt8(ascii: "A")...UInt8(ascii: "F")).contains(b)
    }

    /// Whether `s` is exactly `count` lowercase hex digits.
    public static func isLowerHex(_ s: String, count: Int) -> Bool {
        s.utf8.count == count && s.utf8.allSatisfy(isLowerHex)
    }

    private static func optionalString(_ fields: Fields, _ key: String) throws(ProtocolError) -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw ProtocolError(.badField, "'\(key)' must be a string")
        }
    }

    private static func optionalPeerID(_ fields: Fields, _ key: String) throws(ProtocolError) -> PeerID? {
        guard let s = try optionalString(fields, key) else { return nil }
        guard let id = PeerID(hex: s) else {
            throw ProtocolError(.badField, "'\(key)' must be a peer ID of 12 lowercase hex characters")
        }
        return id
    }
}

/// Field access on a top-level object read in one pass (duplicate keys are refused before any field is
/// read). Keys are compared as Swift strings (Unicode canonical equivalence), the equality the nested
/// objects' dictionaries use too.
private struct Fields {
    let members: [JSONTreeParser.Member]

    /// The member named `name`, raw or not.
    subscript(member name: String) -> JSONTreeParser.Member? {
        members.first { $0.key == name }
    }

    /// The tree of the field `name`; nil when absent (the raw `signal` member is looked up by `member:`).
    subscript(name: String) -> JSONValue? { self[member: name]?.tree }

    /// The first key that appears twice, if any (RFC 8259 §4: names SHOULD be unique; parsers disagree
    /// on which duplicate wins, so the server refuses them rather than read a message two ways).
    func duplicateKey() -> String? {
        if members.count <= 16 {
            // The common case (a handful of keys): compare pairwise, no allocation.
            for i in members.indices.dropFirst() {
                for j in 0..<i where members[i].key == members[j].key { return members[i].key }
            }
            return nil
        }
        var seen = Set<String>()
        for m in members where !seen.insert(m.key).inserted { return m.key }
        return nil
    }
}
