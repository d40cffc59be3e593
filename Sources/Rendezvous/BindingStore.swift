import Foundation
import RendezvousCore
import Ring
import WireProtocol

/// The state file (`--state-file`): the ID bindings (ID, holder epoch, lease end) that a restarted
/// server loads as leases, so returning holders get their IDs back and no newcomer takes them
/// (docs/protocol.md, "Restarts").
///
/// Format (JSON, UTF-8): `{"format":"browsercloud-bindings/1","nextEpoch":"<decimal>","savedAt":<seconds since 1970>,
/// "bindings":[{"peerId":"<12 hex>","epoch":"<decimal>","leaseEnds":<seconds since 1970>},…]}`. Epochs are
/// decimal strings (64 bits); lease ends are wall-clock times, since monotonic time does not survive a
/// restart. Written atomically (a temporary file in the same directory renamed over it, mode 0600).
public enum BindingStore {
    public static let format = "browsercloud-bindings/1"

    /// What the file holds: bindings with the wall-clock time their lease ends.
    public struct State: Equatable, Sendable {
        public var nextEpoch: UInt64
        public var bindings: [(peer: PeerID, epoch: UInt64, leaseEnds: Double)]
        public init(nextEpoch: UInt64, bindings: [(peer: PeerID, epoch: UInt64, leaseEnds: Double)]) {
            self.nextEpoch = nextEpoch
            self.bindings = bindings
        }
        public static func == (a: State, b: State) -> Bool {
            a.nextEpoch == b.nextEpoch && a.bindings.elementsEqual(b.bindings) { $0 == $1 }
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

    /// The file's text for `state` (`savedAt`: seconds since 1970).
    public static func encode(_ state: State, savedAt: Double) -> [UInt8] {
        let list: [JSONValue] = state.bindings.sorted { $0.peer < $1.peer }.map {
            .object(["peerId": .string($0.peer.hex), "epoch": .string(String($0.epoch)), "leaseEnds": .number($0.leaseEnds)])
        }
        return JSONValue.object(["format": .string(format), "nextEpoch": .string(String(state.nextEpoch)),
                                 "savedAt": .number(savedAt), "bindings": .array(list)]).encoded() + [0x0A]
    }

    /// Parses a file's bytes; `path` only names it in errors.
    public static func decode(_ data: [UInt8], path: String) throws(Failure) -> State {
        guard let v = JSONValue(parsing: data) else { throw .malformed(path, "not JSON") }
        guard v["format"]?.stringValue == format else { throw .malformed(path, "not a \(format) file") }
        guard let next = v["nextEpoch"]?.stringValue.flatMap({ UInt64($0) }) else { throw .malformed(path, "no nextEpoch") }
        guard let list = v["bindings"]?.arrayValue else { throw .malformed(path, "no bindings") }
        var bindings: [(peer: PeerID, epoch: UInt64, leaseEnds: Double)] = []
        for (i, b) in list.enumerated() {
            guard let peer = b["peerId"]?.stringValue.flatMap(PeerID.init(hex:)),
                  let epoch = b["epoch"]?.stringValue.flatMap({ UInt64($0) }),
                  case .number(let ends)? = b["leaseEnds"], ends.isFinite else {
                throw .malformed(path, "binding \(i) needs peerId, epoch and leaseEnds")
            }
            bindings.append((peer, epoch, ends))
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
        State(nextEpoch: core.nextEpoch,
              bindings: core.snapshot(now: now).map { ($0.peer, $0.epoch, wallClock + $0.remaining) })
    }

    /// The restore event for a loaded state, at monotonic time `now` and wall-clock time `wallClock`.
    public static func restoreEvent(_ state: State, now: Double, wallClock: Double) -> Event {
        .restored(state.bindings.map { RestoredBinding(peer: $0.peer, epoch: $0.epoch, remaining: $0.leaseEnds - wallClock) }
                    .filter { $0.remaining > 0 },
                  nextEpoch: state.nextEpoch, now: now)
    }
}
