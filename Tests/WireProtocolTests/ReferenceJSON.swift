import Foundation
@testable import WireProtocol

/// Foundation's `JSONSerialization` as an independent reference reader, its answer as a `JSONValue`.
///
/// Its known, intended differences from the tree parser: it accepts trailing commas (RFC 8259 and
/// JSON.parse refuse them), refuses numbers that round to infinity (the tree keeps ±infinity, as
/// JSON.parse does), has no depth limit of 64, and reads `-0` as the integer 0. Repeated keys: it keeps
/// the last one, as `JSONValue(parsing:)` does.
enum ReferenceJSON {
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        guard let any = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return nil }
        return value(any)
    }

    private static func value(_ any: Any) -> JSONValue {
        switch any {
        case is NSNull: return .null
        case let n as NSNumber:
            if String(describing: type(of: n)) == "__NSCFBoolean" { return .bool(n.boolValue) }
            // Integers and decimals through their exact decimal text, so the rounding to binary64 is the
            // standard library's (strtod), not NSNumber's.
            if n is NSDecimalNumber || String(cString: n.objCType) != "d" { return .number(Double(n.stringValue)!) }
            return .number(n.doubleValue)
        case let s as String: return .string(s)
        case let a as [Any]: return .array(a.map(value))
        case let o as [String: Any]: return .object(o.mapValues(value))
        default: fatalError("JSONSerialization returned \(type(of: any))")
        }
    }
}
