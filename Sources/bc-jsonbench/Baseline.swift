// BASELINE, for the benchmark only: a copy of the client-frame decoding path as it was before the one
// JSON path (WireProtocol at commit c88e7ac: Decoding.swift and the validating part of JSONScanner.swift,
// and JSONValue's Decodable conformance). Every frame is scanned; a frame that is not a `signal` is then
// decoded a second time by Foundation's JSONDecoder through the `try?` cascade below. Not used by the
// server; do not reuse it.

import Foundation
import Ring
import WireProtocol

/// What a decoder made of a frame, comparable between the baseline and the new path.
enum Outcome: Equatable {
    case register(peerId: PeerID?, publicKey: String, signature: String, capabilities: [String: JSONValue]?)
    case signal(to: PeerID, intentId: String, signal: [UInt8])
    case leave
    case report(stats: [String: Double])
    case link(to: PeerID, frame: String)

    init(_ m: ClientMessage) {
        switch m {
        case .register(let p, let k, let s, let c): self = .register(peerId: p, publicKey: k, signature: s, capabilities: c)
        case .signal(let to, let i, let s): self = .signal(to: to, intentId: i, signal: s.bytes)
        case .leave: self = .leave
        case .report(let s): self = .report(stats: s)
        case .link(let to, let f): self = .link(to: to, frame: f)
        }
    }
}

extension JSONValue: Decodable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

enum Baseline {
    /// Decodes and validates one text frame. Unknown extra fields are ignored (forward compatible).
    ///
    /// Every frame is validated once by `BaselineScanner`; a `signal` (the relay hot path) is read straight
    /// from the scan and its `signal` object kept as raw bytes. The rarer messages are decoded into a
    /// `JSONValue` tree with Foundation's `JSONDecoder`.
    static func decode(_ bytes: [UInt8], limits: DecodingLimits = DecodingLimits()) throws(ProtocolError)
        -> Outcome
    {
        let scanned: Result<Outcome?, ProtocolError> = bytes.withUnsafeBufferPointer { buffer in
            guard let members = BaselineScanner.topLevelMembers(buffer) else {
                return .failure(BaselineScanner.isValid(buffer)
                    ? ProtocolError(.badJSON, "message must be a JSON object")
                    : ProtocolError(.badJSON, "message is not valid JSON"))
            }
            let fields = ScannedObject(buffer: buffer, members: members)
            if let duplicate = fields.duplicateKey() {
                return .failure(ProtocolError(.badJSON, "duplicate key '\(duplicate.prefix(64))' in the message"))
            }
            guard let typeMember = fields["type"] else { return .failure(ProtocolError(.badField, "missing field 'type'")) }
            guard typeMember.kind == .string else { return .failure(ProtocolError(.badField, "'type' must be a string")) }
            guard fields.string(typeMember) == "signal" else { return .success(nil) }
            do throws(ProtocolError) {
                return .success(try decodeSignal(fields, limits: limits))
            } catch {
                return .failure(error)
            }
        }
        switch scanned {
        case .failure(let error): throw error
        case .success(let message?): return message
        case .success(nil): break
        }

        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw ProtocolError(.badJSON, "message is not valid JSON")
        }
        guard case .object(let object) = value, case .string(let type)? = object["type"] else {
            throw ProtocolError(.badJSON, "message must be a JSON object")
        }

        switch type {
        case "register":
            // The register rules follow protocol v2 (key-pair identity), so that the check compares the
            // JSON paths, not two versions of the protocol.
            if object["token"] != nil {
                throw ProtocolError(.badField, "'token' is retired: sign the challenge with 'publicKey' and 'signature'")
            }
            let peerId = try optionalPeerID(object, "peerId")
            guard let publicKey = try optionalString(object, "publicKey"), ClientMessage.isLowerHex(publicKey, count: 64) else {
                throw ProtocolError(.badField, "'publicKey' must be 64 lowercase hex characters")
            }
            guard let signature = try optionalString(object, "signature"), ClientMessage.isLowerHex(signature, count: 128) else {
                throw ProtocolError(.badField, "'signature' must be 128 lowercase hex characters")
            }
            var capabilities: [String: JSONValue]?
            if let c = object["capabilities"], c != .null {
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
            guard let to = try optionalPeerID(object, "to") else { throw ProtocolError(.badField, "missing field 'to'") }
            guard let frame = try optionalString(object, "frame"), !frame.isEmpty else { throw ProtocolError(.badField, "'frame' must be a non-empty string") }
            return .link(to: to, frame: frame)

        case "report":
            guard case .object(let raw)? = object["stats"] else { throw ProtocolError(.badField, "'stats' must be an object") }
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

    private static func decodeSignal(_ fields: ScannedObject, limits: DecodingLimits) throws(ProtocolError) -> Outcome {
        guard let toText = try fields.optionalString("to") else { throw ProtocolError(.badField, "missing field 'to'") }
        guard let to = PeerID(hex: toText) else {
            throw ProtocolError(.badField, "'to' must be a peer ID of 12 lowercase hex characters")
        }
        guard let intentId = try fields.optionalString("intentId") else {
            throw ProtocolError(.badField, "missing field 'intentId'")
        }
        // Length as JavaScript counts it (UTF-16 code units), so browsers can check it the same way.
        guard !intentId.isEmpty, intentId.utf16.count <= limits.maxIntentIdLength else {
            throw ProtocolError(.badField, "'intentId' must be 1 to \(limits.maxIntentIdLength) characters")
        }
        guard let signal = fields["signal"] else { throw ProtocolError(.badField, "missing field 'signal'") }
        guard signal.kind == .object else { throw ProtocolError(.badField, "'signal' must be an object") }
        return .signal(to: to, intentId: intentId, signal: fields.bytes(signal))
    }

    private static func isLowerHex(_ b: UInt8) -> Bool {
        BaselineScanner.hexValue(b) != nil && !(UInt8(ascii: "A")...UInt8(ascii: "F")).contains(b)
    }

    private static func optionalString(_ object: [String: JSONValue], _ key: String) throws(ProtocolError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw ProtocolError(.badField, "'\(key)' must be a string")
        }
    }

    private static func optionalPeerID(_ object: [String: JSONValue], _ key: String) throws(ProtocolError) -> PeerID? {
        guard let s = try optionalString(object, key) else { return nil }
        guard let id = PeerID(hex: s) else {
            throw ProtocolError(.badField, "'\(key)' must be a peer ID of 12 lowercase hex characters")
        }
        return id
    }
}

/// Field access on a scanned top-level object (duplicate keys are refused before any field is read).
private struct ScannedObject {
    let buffer: UnsafeBufferPointer<UInt8>
    let members: [BaselineScanner.Member]

    subscript(name: String) -> BaselineScanner.Member? {
        members.first { member in
            let inner = buffer[(member.key.lowerBound + 1)..<(member.key.upperBound - 1)]
            if !inner.contains(UInt8(ascii: "\\")) { return inner.elementsEqual(name.utf8) }
            return string(member.key) == name
        }
    }

    /// The first key that appears twice, if any (RFC 8259 §4: names SHOULD be unique; parsers disagree
    /// on which duplicate wins, so the server refuses them rather than read a message two ways).
    func duplicateKey() -> String? {
        let escaped = members.contains { buffer[$0.key].contains(UInt8(ascii: "\\")) }
        if members.count <= 16 && !escaped {
            // The common case (a handful of plain keys): compare the raw bytes pairwise, no allocation.
            for i in members.indices.dropFirst() {
                for j in 0..<i where buffer[members[i].key].elementsEqual(buffer[members[j].key]) {
                    return string(members[i].key)
                }
            }
            return nil
        }
        var seen = Set<String>()
        for m in members {
            let key = string(m.key)
            if !seen.insert(key).inserted { return key }
        }
        return nil
    }

    func string(_ member: BaselineScanner.Member) -> String { string(member.value) }

    func string(_ range: Range<Int>) -> String {
        BaselineScanner.decodeString(UnsafeBufferPointer(rebasing: buffer[range]))
    }

    func bytes(_ member: BaselineScanner.Member) -> [UInt8] { Array(buffer[member.value]) }

    /// A string field; nil when absent or null.
    func optionalString(_ name: String) throws(ProtocolError) -> String? {
        guard let m = self[name] else { return nil }
        if m.kind == .literal && buffer[m.value.lowerBound] == UInt8(ascii: "n") { return nil }
        guard m.kind == .string else { throw ProtocolError(.badField, "'\(name)' must be a string") }
        return string(m)
    }
}
