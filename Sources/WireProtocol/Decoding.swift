import Foundation
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
    public static func decode(_ bytes: some Collection<UInt8>, limits: DecodingLimits = DecodingLimits())
        throws(ProtocolError) -> ClientMessage
    {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw ProtocolError(.badJSON, "message is not valid JSON")
        }
        guard case .object(let object) = value else {
            throw ProtocolError(.badJSON, "message must be a JSON object")
        }
        guard let typeValue = object["type"] else { throw ProtocolError(.badField, "missing field 'type'") }
        guard case .string(let type) = typeValue else { throw ProtocolError(.badField, "'type' must be a string") }

        switch type {
        case "register":
            let peerId = try optionalPeerID(object, "peerId")
            let token = try optionalString(object, "token")
            if (peerId == nil) != (token == nil) {
                throw ProtocolError(.badField, "'peerId' and 'token' must be given together")
            }
            if let token, token.utf8.count != 64 || !token.utf8.allSatisfy(isLowerHex) {
                throw ProtocolError(.badToken, "'token' must be 64 lowercase hex characters")
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
            return .register(peerId: peerId, token: token, capabilities: capabilities)

        case "signal":
            guard let to = try optionalPeerID(object, "to") else { throw ProtocolError(.badField, "missing field 'to'") }
            guard let intentId = try optionalString(object, "intentId") else {
                throw ProtocolError(.badField, "missing field 'intentId'")
            }
            guard !intentId.isEmpty, intentId.count <= limits.maxIntentIdLength else {
                throw ProtocolError(.badField, "'intentId' must be 1 to \(limits.maxIntentIdLength) characters")
            }
            guard let signalValue = object["signal"] else { throw ProtocolError(.badField, "missing field 'signal'") }
            guard case .object(let signal) = signalValue else { throw ProtocolError(.badField, "'signal' must be an object") }
            return .signal(to: to, intentId: intentId, signal: signal)

        case "leave":
            return .leave

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

    private static func isLowerHex(_ b: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b)
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
