/// Which finger rows the server computes and pushes to peers.
///
/// Row `i` of peer `n` points at `successor((n + 2^i) mod 2^48)`.
public enum FingerPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Row 0 plus the top `ceil(log2 N) + 2` rows, recomputed as the ring size N changes:
    /// rows below `48 - log2 N` almost always point at the successor anyway.
    case auto
    /// Every row, 0 through 47.
    case all
    /// Exactly these rows (the thesis used 0,10,12,20,30,47).
    case rows([Int])

    /// Parses `auto`, `all` or a comma-separated list of rows in [0, 48).
    public init?(parsing text: String) {
        switch text {
        case "auto": self = .auto
        case "all": self = .all
        default:
            var rows: [Int] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let row = Int(part.trimmingCharacters(in: " ")), row >= 0, row < PeerID.bits else { return nil }
                rows.append(row)
            }
            guard !rows.isEmpty else { return nil }
            self = .rows(Array(Set(rows)).sorted())
        }
    }

    /// The sorted rows in force for a ring of `peerCount` peers.
    public func rows(forPeerCount peerCount: Int) -> [Int] {
        switch self {
        case .all: return Array(0..<PeerID.bits)
        case .rows(let rows): return rows
        case .auto:
            let n = max(peerCount, 1)
            var log2Ceil = 0
            while (1 << log2Ceil) < n { log2Ceil += 1 }
            let top = min(PeerID.bits - 1, log2Ceil + 2)
            return [0] + Array((PeerID.bits - top)..<PeerID.bits)
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .all: return "all"
        case .rows(let rows): return rows.map(String.init).joined(separator: ",")
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}
