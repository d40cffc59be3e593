import Foundation
import RendezvousCore
import Ring
import WireProtocol

/// The state file (`--state-file`): the ID bindings (ID, holder epoch, holder's public key, lease end)
/// that a restarted server loads as leases, so returning holders get their IDs back and no newcomer
/// takes them (docs/protocol.md, "Restarts").
///
/// Format (JSON, UTF-8): `{"format":"browsercloud-bindings/2","nextEpoch":"<decimal>","savedAt":<seconds since 1970>,
/// "bindings":[{"peerId":"<12 hex>","epoch":"<decimal>","publicKey":"<64 hex>","leaseEnds":<seconds since 1970>},…]}`.
/// Epochs are decimal strings (64 bits); lease ends are wall-clock times, since monotonic time does not
/// survive a restart. Written atomically (a temporary file in the same directory renamed over it, mode
/// 0600). It holds only public keys. A `browsercloud-bindings/1` file (the token protocol's, without
/// keys) loads with its `nextEpoch` and no bindings: its holders register fresh, once.
public enum BindingStore {
    public static let format = "browsercloud-bindings/2"
    /// The token protocol's format: read for its `nextEpoch` only.
    public static let formatV1 = "browsercloud-bindings/1"

    /// One binding: the ID, its holder epoch and public key (64 lowercase hex), and the wall-clock time
    /// its lease ends.
    public struct Entry: Equatable, Sendable {
        public var peer: PeerID
        public var epoch: UInt64
        public var publicKey: String
        public var leaseEnds: Double
        public init(peer: PeerID, epoch: UInt64, publicKey: String, leaseEnds: Double) {
            self.peer = peer
            self.epoch = epoch
            self.publicKey = publicKey
            self.leaseEnds = leaseEnds
        }
    }

    /// What the file holds: bindings with the wall-clock time their lease ends.
    public struct State: Equatable, Sendable {
        public var nextEpoch: UInt64
        public var bindings: [Entry]
        public init(nextEpoch: UInt64, bindings: [Entry]) {
            self.nextEpoch = nextEpoch
            self.bindings = bindings
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case unreadable(String, String)
        case malformed(String, String)
        case cannotWrite(String, String)

        public var description: String {
            switch self {
            case .unreadable(let p, let why):
                return "state file \(p) cannot be read (\(why)); fix or remove it, or start with --start-empty"
            case .malformed(let p, let why):
                return "state file \(p) is corrupt (\(why)); fix or remove it, or start with --start-empty"
            case .cannotWrite(let p, let why): return "cannot write state file \(p): \(why)"
            }
        }
    }

    /// The file's text for `state` (`savedAt`: seconds since 1970): compact JSON with sorted keys and a
    /// final newline, bindings in ID order. Written member by member (the same bytes as encoding the
    /// document as one `JSONValue` tree, which cost about 10,000 instructions per binding every second).
    public static func encode(_ state: State, savedAt: Double) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + state.bindings.count * 150)
        out.append(contentsOf: #"{"bindings":["#.utf8)
        for (k, b) in state.bindings.sorted(by: { $0.peer < $1.peer }).enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"epoch":""#.utf8)
            out.append(contentsOf: String(b.epoch).utf8)
            out.append(contentsOf: #"","leaseEnds":"#.utf8)
            JSONValue.number(b.leaseEnds).append(to: &out)
            out.append(contentsOf: #","peerId":""#.utf8)
            out.append(contentsOf: b.peer.hex.utf8)
            out.append(contentsOf: #"","publicKey":"#.utf8)
            JSONValue.string(b.publicKey).append(to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"format":"#.utf8)
        JSONValue.string(format).append(to: &out)
        out.append(contentsOf: #","nextEpoch":""#.utf8)
        out.append(contentsOf: String(state.nextEpoch).utf8)
        out.append(contentsOf: #"","savedAt":"#.utf8)
        JSONValue.number(savedAt).append(to: &out)
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    /// Parses a file's bytes; `path` only names it in errors.
    public static func decode(_ data: [UInt8], path: String) throws(Failure) -> State {
        guard let v = JSONValue(parsing: data) else { throw .malformed(path, "not JSON") }
        let version = v["format"]?.stringValue
        guard version == format || version == formatV1 else { throw .malformed(path, "not a \(format) file") }
        guard let next = v["nextEpoch"]?.stringValue.flatMap({ UInt64($0) }) else { throw .malformed(path, "no nextEpoch") }
        guard let list = v["bindings"]?.arrayValue else { throw .malformed(path, "no bindings") }
        // A token-protocol file: its holders have no keys, so they register fresh (epochs go on).
        if version == formatV1 { return State(nextEpoch: next, bindings: []) }
        var bindings: [Entry] = []
        for (i, b) in list.enumerated() {
            guard let peer = b["peerId"]?.stringValue.flatMap(PeerID.init(hex:)),
                  let epoch = b["epoch"]?.stringValue.flatMap({ UInt64($0) }),
                  let key = b["publicKey"]?.stringValue, ClientMessage.isLowerHex(key, count: Identity.publicKeyHexCount),
                  case .number(let ends)? = b["leaseEnds"], ends.isFinite else {
                throw .malformed(path, "binding \(i) needs peerId, epoch, publicKey (64 lowercase hex) and leaseEnds")
            }
            bindings.append(Entry(peer: peer, epoch: epoch, publicKey: key, leaseEnds: ends))
        }
        return State(nextEpoch: next, bindings: bindings)
    }

    /// Reads `path`; nil when it does not exist (a first start).
    public static func load(_ path: String) throws(Failure) -> State? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw .unreadable(path, "\(error)") }
        return try decode([UInt8](data), path: path)
    }

    /// Writes `state` to `path` atomically (write a temporary file, then rename it over `path`).
    public static func save(_ state: State, to path: String, savedAt: Double) throws(Failure) {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(encode(state, savedAt: savedAt)),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw .cannotWrite(path, "cannot create \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw .cannotWrite(path, String(cString: strerror(errno))) }
    }

    /// The state of a core at monotonic time `now` and wall-clock time `wallClock`.
    public static func state(of core: Membership, now: Double, wallClock: Double) -> State {
        state(of: core.bindings, nextEpoch: core.nextEpoch, leaseSeconds: core.configuration.idLeaseSeconds, now: now, wallClock: wallClock)
    }

    /// The state of a copy of a core's bindings (taken on the service thread, made on the save queue).
    public static func state(of bindings: [PeerID: Membership.Binding], nextEpoch: UInt64, leaseSeconds: Double,
                             now: Double, wallClock: Double) -> State {
        State(nextEpoch: nextEpoch,
              bindings: Membership.snapshot(of: bindings, leaseSeconds: leaseSeconds, now: now).map {
                  Entry(peer: $0.peer, epoch: $0.epoch, publicKey: $0.publicKey, leaseEnds: wallClock + $0.remaining) })
    }

    /// The restore event for a loaded state, at monotonic time `now` and wall-clock time `wallClock`.
    public static func restoreEvent(_ state: State, now: Double, wallClock: Double) -> Event {
        .restored(state.bindings.map { RestoredBinding(peer: $0.peer, epoch: $0.epoch, publicKey: $0.publicKey,
                                                       remaining: $0.leaseEnds - wallClock) }
                    .filter { $0.remaining > 0 },
                  nextEpoch: state.nextEpoch, now: now)
    }
}
