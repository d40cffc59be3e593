/// The routing decision of a peer (docs/protocol.md, "Routing between peers"; Chord's closest
/// preceding finger, Stoica et al., SIGCOMM 2001). The same algorithm as `route` in
/// Public/explorer/ring.js: both reproduce Tests/vectors/routing.json.
public enum RouteDecision: Equatable, Sendable {
    /// `dst` is in (predecessor, self], or the peer is alone: deliver here.
    case deliver
    /// Forward to this peer.
    case next(PeerID)
    /// No candidate link is up.
    case noRoute
}

extension PeerID {
    /// Whether `self` lies in the open interval (lower, upper); the circle minus `lower` when lower == upper.
    public func isIn(openLower lower: PeerID, openUpper upper: PeerID) -> Bool {
        let d = lower.distance(to: self)
        return d != 0 && (lower == upper || d < lower.distance(to: upper))
    }
}

/// Where a message for `dst` goes from `me`. `candidates` are the peers of the finger table
/// (fingers and successors) with an open link; `successors` is the ordered successor list.
/// 1. deliver when `dst` is in (predecessor, me], or when alone (no predecessor, no successors);
/// 2. the first successor, if its link is up and `dst` is in (me, successor];
/// 3. the candidate in (me, dst) farthest from `me`;
/// 4. the first successor with an open link;
/// 5. no route.
public func route(from me: PeerID, to dst: PeerID, predecessor: PeerID?, successors: [PeerID], candidates: Set<PeerID>) -> RouteDecision {
    let (decision, firstLive) = firstSteps(from: me, to: dst, predecessor: predecessor, successors: successors, candidates: candidates)
    if let decision { return decision }
    var best: PeerID?
    var bestDistance: UInt64 = 0
    for c in candidates where c.isIn(openLower: me, openUpper: dst) {
        let d = me.distance(to: c)
        if best == nil || d > bestDistance { best = c; bestDistance = d }
    }
    if let best { return .next(best) }
    if let firstLive { return .next(firstLive) }
    return .noRoute
}

/// Steps 1 and 2, which `route` and `routeNoN` share: `.deliver` when `dst` is in (predecessor, me] or
/// the peer is alone, `.next(successor)` when `dst` is in (me, successor] and that successor's link is
/// up; otherwise nil, with the first successor that has an open link for the later steps.
func firstSteps(from me: PeerID, to dst: PeerID, predecessor: PeerID?, successors: [PeerID],
                candidates: Set<PeerID>) -> (decision: RouteDecision?, firstLive: PeerID?) {
    if let predecessor {
        if dst.isIn(openLower: predecessor, closedUpper: me) { return (.deliver, nil) }
    } else if successors.isEmpty {
        return (.deliver, nil)
    }
    let firstLive = successors.first { candidates.contains($0) }
    if let firstLive, successors.first == firstLive, dst.isIn(openLower: me, closedUpper: firstLive) { return (.next(firstLive), firstLive) }
    return (nil, firstLive)
}
