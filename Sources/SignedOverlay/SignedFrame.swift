import Ring

/// A signed overlay message as a link frame (docs/protocol.md, "Signed overlay messages"):
///
///     S<hops>:<certificate>:<signature>:<body>
///
/// `hops`: 1 to 6 decimal digits (not signed: relays raise it). `certificate`: 220 lowercase hex (the
/// source's, `Certificate`). `signature`: 128 lowercase hex, the source's Ed25519 signature of the UTF-8
/// bytes of `"browsercloud-overlay/1\n"` + body. `body`: the JSON text the source wrote once, whose
/// *head* has a fixed layout so that a relay reads `dstId` without parsing the rest:
///
///     {"srcId":"<12 hex>","dstId":"<12 hex>","id":"<1…64 of [0-9A-Za-z_.-]>","at":<ms>,"data":<JSON>}
///
/// `at`: the source's wall clock in milliseconds since 1970, digits without a leading zero ("0" alone is
/// allowed), at most 15 of them. The body must end with `}`; whether `data` is valid JSON is checked
/// only by the destination, after the signature (`OverlayVerifier`). Parsing is the relay's whole job:
/// it forwards `relayed()` (hops + 1; certificate, signature and body byte-identical).
public struct SignedFrame: Equatable, Sendable {
    /// Hops so far (0 at the source).
    public var hops: Int
    /// The frame from the certificate on: `<certificate>:<signature>:<body>`, forwarded unchanged.
    public let signedPart: ArraySlice<UInt8>
    public let srcId: PeerID
    public let dstId: PeerID
    /// The message's ID (unique per source within the time window).
    public let id: String
    /// The source's wall clock when it signed, in ms since 1970.
    public let at: Int64

    /// The prefix of the signed text.
    public static let signedTextPrefix: [UInt8] = Array("browsercloud-overlay/1\n".utf8)
    /// Largest `hops` the grammar carries (6 digits).
    public static let maxHops = 999_999
    /// Length limits of the fields, in characters.
    public static let certificateLength = 220, signatureLength = 128, maxIdLength = 64, maxAtDigits = 15

    /// The 220 characters of the certificate.
    public var certificate: ArraySlice<UInt8> { signedPart.prefix(Self.certificateLength) }
    /// The 128 hex characters of the signature.
    public var signature: ArraySlice<UInt8> {
        signedPart.dropFirst(Self.certificateLength + 1).prefix(Self.signatureLength)
    }
    /// The body: the exact JSON text the source signed.
    public var body: ArraySlice<UInt8> { signedPart.dropFirst(Self.certificateLength + Self.signatureLength + 2) }

    /// The bytes the signature covers: the prefix and the body.
    public var signedText: [UInt8] { Self.signedTextPrefix + body }

    /// The frame's bytes.
    public func encoded() -> [UInt8] { Array("S\(hops):".utf8) + signedPart }

    /// The frame a relay forwards: one more hop, everything else byte-identical.
    public func relayed() -> SignedFrame {
        var f = self
        f.hops += 1
        return f
    }

    /// Parses a frame; nil when it is not an `S` frame of the grammar above (the reason `malformed`).
    public static func parse(_ bytes: [UInt8]) -> SignedFrame? {
        parse(bytes[...])
    }

    public static func parse(_ bytes: ArraySlice<UInt8>) -> SignedFrame? {
        var i = bytes.startIndex
        guard i < bytes.endIndex, bytes[i] == UInt8(ascii: "S") else { return nil }
        i += 1
        var hops = 0, digits = 0
        while i < bytes.endIndex, let d = digit(bytes[i]) {
            hops = hops * 10 + d
            digits += 1
            i += 1
            if digits > 6 { return nil }
        }
        guard digits >= 1, i < bytes.endIndex, bytes[i] == UInt8(ascii: ":") else { return nil }
        let signedStart = i + 1
        // certificate ":" signature ":"
        let certEnd = signedStart + certificateLength
        let sigEnd = certEnd + 1 + signatureLength
        guard sigEnd < bytes.endIndex,
              bytes[certEnd] == UInt8(ascii: ":"), bytes[sigEnd] == UInt8(ascii: ":"),
              isLowerHex(bytes[signedStart..<certEnd]), isLowerHex(bytes[(certEnd + 1)..<sigEnd])
        else { return nil }
        let body = bytes[(sigEnd + 1)...]
        guard let head = Head(body) else { return nil }
        return SignedFrame(hops: hops, signedPart: bytes[signedStart...], srcId: head.srcId, dstId: head.dstId,
                           id: head.id, at: head.at)
    }

    /// The fixed-layout head of a body.
    struct Head {
        let srcId: PeerID, dstId: PeerID, id: String, at: Int64

        init?(_ body: ArraySlice<UInt8>) {
            var r = Reader(bytes: body, i: body.startIndex)
            guard body.last == UInt8(ascii: "}"),
                  r.literal(#"{"srcId":""#), let src = r.peerId(),
                  r.literal(#"","dstId":""#), let dst = r.peerId(),
                  r.literal(#"","id":""#), let id = r.id(),
                  r.literal(#"","at":"#), let at = r.at(),
                  r.literal(#","data":"#)
            else { return nil }
            srcId = src; dstId = dst; self.id = id; self.at = at
        }
    }

    struct Reader {
        let bytes: ArraySlice<UInt8>
        var i: Int

        mutating func literal(_ s: StaticString) -> Bool {
            let n = s.utf8CodeUnitCount
            guard bytes.endIndex - i >= n else { return false }
            let ok = s.withUTF8Buffer { buf in buf.indices.allSatisfy { bytes[i + $0] == buf[$0] } }
            if ok { i += n }
            return ok
        }

        mutating func peerId() -> PeerID? {
            guard bytes.endIndex - i >= 12, isLowerHex(bytes[i..<(i + 12)]) else { return nil }
            defer { i += 12 }
            return PeerID(hex: String(decoding: bytes[i..<(i + 12)], as: UTF8.self))
        }

        mutating func id() -> String? {
            let start = i
            while i < bytes.endIndex, isIdCharacter(bytes[i]) {
                i += 1
                if i - start > SignedFrame.maxIdLength { return nil }
            }
            guard i > start else { return nil }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        mutating func at() -> Int64? {
            let start = i
            var value: Int64 = 0
            while i < bytes.endIndex, let d = digit(bytes[i]) {
                value = value * 10 + Int64(d)
                i += 1
                if i - start > SignedFrame.maxAtDigits { return nil }
            }
            let count = i - start
            guard count >= 1, !(count > 1 && bytes[start] == UInt8(ascii: "0")) else { return nil }
            return value
        }
    }
}

func digit(_ c: UInt8) -> Int? {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) ? Int(c - UInt8(ascii: "0")) : nil
}

func isLowerHex(_ s: ArraySlice<UInt8>) -> Bool {
    s.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
}

func isIdCharacter(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
         UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
        return true
    default:
        return false
    }
}
