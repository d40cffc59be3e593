import Ring

/// The neighbour lists of a native peer's links, both ways (docs/protocol.md, "Neighbour lists"): the
/// lists its links sent (used by `routeNoN`), and which of its own list each link was last sent, so that
/// a link gets the list when it opens and again when the list changes, at most once per `minInterval`.
/// Pure: time comes in as `now` (monotonic nanoseconds). Memory: at most `maxNeighbourListLength` IDs
/// per link, whatever a link sends.
public struct NeighbourLists: Sendable {
    /// The shortest time between two lists sent on one link, in nanoseconds.
    public let minInterval: UInt64
    /// The list each link last sent (at most `maxNeighbourListLength` IDs).
    public private(set) var received: [PeerID: [PeerID]] = [:]
    private var sent: [PeerID: (list: [PeerID], at: UInt64)] = [:]

    public init(minInterval: UInt64 = 1_000_000_000) { self.minInterval = minInterval }

    /// The list `peer` last sent, or nil (none yet, or its link went down).
    public func list(of peer: PeerID) -> [PeerID]? { received[peer] }

    /// `peer` sent its list (an `N` frame already parsed, so at most `maxNeighbourListLength` IDs).
    public mutating func receive(_ list: [PeerID], from peer: PeerID) {
        received[peer] = Array(list.prefix(maxNeighbourListLength))
    }

    /// The link to `peer` is gone: its list, and what it was sent, are forgotten (a new link gets the list again).
    public mutating func forget(_ peer: PeerID) {
        received[peer] = nil
        sent[peer] = nil
    }

    /// The links among `open` that should be sent `list` now: those that never got it on this link, or
    /// got another one at least `minInterval` ago. Marks them as sent.
    public mutating func due(_ list: [PeerID], open: [PeerID], now: UInt64) -> [PeerID] {
        var out: [PeerID] = []
        for peer in open {
            if let s = sent[peer], s.list == list || now < s.at + minInterval { continue }
            sent[peer] = (list, now)
            out.append(peer)
        }
        for peer in sent.keys where !open.contains(peer) { sent[peer] = nil }
        return out
    }
}
