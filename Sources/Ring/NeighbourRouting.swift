/// Neighbour-of-neighbour (NoN) routing (docs/protocol.md, "Neighbour-of-neighbour routing"; Manku,
/// Naor and Wieder, "Know thy neighbor's neighbor", STOC 2004): greedy routing over the two-hop view,
/// where each link's peer has told this peer its own neighbour list. The same rule as
/// Public/explorer/non-routing.js and the simulator's `--routing non`; all reproduce
/// Tests/vectors/non-routing.json (written by an independent implementation).

/// The routing rules as a choice: Chord's greedy closest preceding finger, or NoN.
public enum RoutingRule: String, Sendable, Codable, CaseIterable {
    case greedy
    case non
}

/// A neighbour list a peer accepts from a link at most holds this many IDs (longer lists are refused).
public let maxNeighbourListLength = 64

/// Where a message for `dst` goes from `me` under NoN routing. `predecessor`, `successors` and
/// `candidates` are those of `route(from:to:predecessor:successors:candidates:)`; `fingers` is the finger
/// table (row -> peer, nil when the row points at `me`); `neighbours(v)` is the neighbour list candidate
/// `v` last sent (nil when none arrived: `v` counts as in greedy routing).
/// 1. to 2.: as greedy routing (deliver; the first successor when `dst` is in (me, successor]);
/// 2b. a peer of the finger table known to hold `dst`, with an open link: the first successor `s_j` with `dst`
///    in (s_(j-1), s_j] (s_0 = me: the list is consecutive), else the finger of the lowest row with `dst`
///    in [start, finger] (row i's finger is the successor of its start `me + 2^i`);
/// 3. for every candidate `v` in (me, dst): its score is the largest `me.distance(to: w)` over `w = v` and
///    the IDs `w` of its list that lie in (v, dst); the candidate with the largest score wins, ties to the
///    one farther from `me` (a candidate's score is at least its own distance, so without lists this is
///    greedy's closest preceding candidate);
/// 4. to 5.: as greedy routing (the first live successor, else no route).
/// Every `.next` of steps 3 and 4 is a candidate in (me, dst), so the distance left to `dst` shrinks
/// strictly at those hops, whatever the lists say (stale or false); steps 2 and 2b go to the peer
/// responsible for `dst` when the finger table is current (the server's), which delivers. Lists never
/// take a message past `dst`. Cost: O(rows + sum of the candidates' list lengths).
public func routeNoN(from me: PeerID, to dst: PeerID, predecessor: PeerID?, successors: [PeerID], fingers: [Int: PeerID?],
                     candidates: Set<PeerID>, neighbours: (PeerID) -> [PeerID]?) -> RouteDecision {
    let (decision, firstLive) = firstSteps(from: me, to: dst, predecessor: predecessor, successors: successors, candidates: candidates)
    if let decision { return decision }
    var previous = me
    for s in successors {
        if candidates.contains(s), dst.isIn(openLower: previous, closedUpper: s) { return .next(s) }
        previous = s
    }
    for row in fingers.keys.sorted() {
        guard case let finger?? = fingers[row], finger != me, candidates.contains(finger) else { continue }
        let start = me.fingerStart(row: row)
        if start.distance(to: dst) <= start.distance(to: finger) { return .next(finger) }
    }
    let span = me.distance(to: dst)
    var best: PeerID?
    var bestScore: UInt64 = 0
    var bestDistance: UInt64 = 0
    for v in candidates where v.isIn(openLower: me, openUpper: dst) {
        let dv = me.distance(to: v)
        var score = dv
        if let list = neighbours(v) {
            for w in list.prefix(maxNeighbourListLength) {
                let dw = me.distance(to: w)
                if dw > score && dw < span { score = dw }
            }
        }
        if best == nil || score > bestScore || (score == bestScore && dv > bestDistance) {
            best = v
            bestScore = score
            bestDistance = dv
        }
    }
    if let best { return .next(best) }
    if let firstLive { return .next(firstLive) }
    return .noRoute
}

extension PeerState {
    /// The neighbour list this peer tells its links (docs/protocol.md, "Neighbour lists"): its fingers,
    /// successors and predecessor, without `me`, distinct, in increasing distance from `me`, at most
    /// `maxNeighbourListLength` IDs (the nearest kept).
    public func neighbourList(of me: PeerID) -> [PeerID] {
        var set = Set(successors)
        for case let f? in fingers.values { set.insert(f) }
        if let predecessor { set.insert(predecessor) }
        set.remove(me)
        return Array(set.sorted { me.distance(to: $0) < me.distance(to: $1) }.prefix(maxNeighbourListLength))
    }
}
