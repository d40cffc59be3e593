import Ring
import WireProtocol

/// Frames on a link between two peers (docs/protocol.md, "Links"). The same text frames travel on
/// WebRTC data channels (browser to browser) and on WebSocket links (to and between native peers):
///
///     M<message>                  one whole overlay message (JSON text)
///     C<id>:<index>:<count>:<part> one part of a message split in `count` parts
///     X / K                       retire request / keep answer (a link neither side needs is closed)
///     H{"peerId":…,"nonce":…}     hello: the dialling side of a WebSocket link names itself
///     W{"peerId":…}               welcome: the listening side accepts the hello
///     N<id>,<id>,…                the sender's neighbour list (docs/protocol.md, "Neighbour lists")
public enum LinkFrame: Equatable, Sendable {
    case message([UInt8])
    case chunk(id: String, index: Int, count: Int, part: [UInt8])
    case retire
    case keep
    case hello(peerId: PeerID, nonce: String)
    case welcome(peerId: PeerID)
    /// At most `maxNeighbourListLength` IDs, each 12 lowercase hex digits, separated by commas; `N` alone
    /// is an empty list. Any other `N` text is not a frame.
    case neighbours([PeerID])

    public static func parse(_ bytes: [UInt8]) -> LinkFrame? {
        guard let first = bytes.first else { return nil }
        switch first {
        case UInt8(ascii: "M"): return .message(Array(bytes.dropFirst()))
        case UInt8(ascii: "X") where bytes.count == 1: return .retire
        case UInt8(ascii: "K") where bytes.count == 1: return .keep
        case UInt8(ascii: "C"):
            // C<id>:<index>:<count>:<part>: an id of 1 to 64 bytes, decimal digits, 1 <= count <= maxChunks.
            var colons: [Int] = []
            for i in bytes.indices.dropFirst() where bytes[i] == UInt8(ascii: ":") {
                colons.append(i)
                if colons.count == 3 { break }
            }
            guard colons.count == 3, (2...65).contains(colons[0]),
                  let index = decimal(bytes[(colons[0] + 1)..<colons[1]]),
                  let count = decimal(bytes[(colons[1] + 1)..<colons[2]]),
                  (1...Reassembler.maxChunks).contains(count), index < count
            else { return nil }
            let id = String(decoding: bytes[1..<colons[0]], as: UTF8.self)
            return .chunk(id: id, index: index, count: count, part: Array(bytes[(colons[2] + 1)...]))
        case UInt8(ascii: "H"), UInt8(ascii: "W"):
            guard case .object(let o)? = JSONValue(parsing: Array(bytes.dropFirst())),
                  let hex = o["peerId"]?.stringValue, let peerId = PeerID(hex: hex) else { return nil }
            if first == UInt8(ascii: "W") { return .welcome(peerId: peerId) }
            guard let nonce = o["nonce"]?.stringValue, nonce.utf8.count <= 64 else { return nil }
            return .hello(peerId: peerId, nonce: nonce)
        case UInt8(ascii: "N"):
            return neighbourList(bytes.dropFirst()).map { .neighbours($0) }
        default:
            return nil
        }
    }

    /// `<id>,<id>,…` of at most `maxNeighbourListLength` IDs of 12 lowercase hex digits, or nil.
    private static func neighbourList(_ text: ArraySlice<UInt8>) -> [PeerID]? {
        if text.isEmpty { return [] }
        guard text.count <= maxNeighbourListLength * 13 - 1, (text.count + 1) % 13 == 0 else { return nil }
        var ids: [PeerID] = []
        var i = text.startIndex
        while i < text.endIndex {
            let hex = text[i..<(i + 12)]
            guard let id = PeerID(hex: String(decoding: hex, as: UTF8.self)) else { return nil }
            ids.append(id)
            i += 12
            if i < text.endIndex {
                guard text[i] == UInt8(ascii: ","), i + 1 < text.endIndex else { return nil }
                i += 1
            }
        }
        return ids
    }

    /// A run of decimal digits (no sign, no spaces) as a number, or nil (also beyond Int's range).
    private static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    public func encoded() -> [UInt8] {
        switch self {
        case .message(let text): return [UInt8(ascii: "M")] + text
        case .chunk(let id, let index, let count, let part): return Array("C\(id):\(index):\(count):".utf8) + part
        case .retire: return [UInt8(ascii: "X")]
        case .keep: return [UInt8(ascii: "K")]
        case .hello(let peerId, let nonce):
            return [UInt8(ascii: "H")] + JSONValue.object(["peerId": .string(peerId.hex), "nonce": .string(nonce)]).encoded()
        case .welcome(let peerId):
            return [UInt8(ascii: "W")] + JSONValue.object(["peerId": .string(peerId.hex)]).encoded()
        case .neighbours(let ids):
            return Array(("N" + ids.map(\.hex).joined(separator: ",")).utf8)
        }
    }
}

/// Reassembles chunked messages of one link, within bounds so that a faulty or hostile peer cannot
/// make this peer hold unbounded memory (the same bounds as the browser's channel manager).
public struct Reassembler: Sendable {
    public static let maxChunks = 8192
    public static let maxPartialMessages = 16
    /// Bytes held in partial messages at most (the link's message size limit).
    public let maxBytes: Int
    private var partial: [String: (parts: [[UInt8]?], received: Int)] = [:]
    private var held = 0

    public init(maxBytes: Int) { self.maxBytes = maxBytes }

    public enum Outcome: Equatable { case pending, complete([UInt8]), overflow }

    /// Adds part `index` of `count` (as `LinkFrame.parse` gives them: 0 <= index < count <= maxChunks).
    /// A part for a new message when `maxPartialMessages` are partial, or a new part that would take the
    /// bytes held over `maxBytes`, is an overflow (drop the link); a part whose count differs from its
    /// message's, or one already held, is ignored. The rules of Tests/vectors/link-frames.json.
    public mutating func add(id: String, index: Int, count: Int, part: [UInt8]) -> Outcome {
        guard index >= 0, index < count, count <= Self.maxChunks else { return .pending }
        if partial[id] == nil {
            guard partial.count < Self.maxPartialMessages else { return .overflow }
            partial[id] = (Array(repeating: nil, count: count), 0)
        }
        guard var entry = partial[id], entry.parts.count == count, entry.parts[index] == nil else { return .pending }
        guard part.count <= maxBytes - held else { return .overflow }
        entry.parts[index] = part
        entry.received += 1
        held += part.count
        if entry.received == count {
            partial[id] = nil
            let whole = entry.parts.flatMap { $0! }
            held -= whole.count
            return .complete(whole)
        }
        partial[id] = entry
        return .pending
    }
}
