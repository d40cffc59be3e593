import Ring

/// Neighbour-of-neighbour routing of `PeerSession` (docs/protocol.md, "Neighbour-of-neighbour routing" and
/// "Neighbour lists"): the routing decision, and the `N` frames that tell the links this peer's list.
extension PeerSession {
    /// Where a message for `dst` goes from `me`, over the open links of the finger table: `routeNoN` with the
    /// lists the links sent (`configuration.routing == .non`), or Chord's greedy `route`.
    func nextHop(from me: PeerID, to dst: PeerID) -> RouteDecision {
        let candidates = Set(linkedPeers)
        switch configuration.routing {
        case .greedy:
            return route(from: me, to: dst, predecessor: ring.predecessor, successors: ring.successors, candidates: candidates)
        case .non:
            return routeNoN(from: me, to: dst, predecessor: ring.predecessor, successors: ring.successors, fingers: ring.fingers,
                            candidates: candidates,
                            neighbours: { neighbourLists.list(of: $0) })
        }
    }

    /// This peer's neighbour list as an `N` frame on every direct link that has not had it yet (a new link)
    /// or had an older one at least `NeighbourLists.minInterval` ago. Not on links relayed by the server:
    /// its rate limit is kept for overlay messages (those links' peers route greedily past this one).
    mutating func sendNeighbourLists(now: UInt64) -> [PeerAction] {
        guard state == .registered, let me = peerId else { return [] }
        let list = ring.neighbourList(of: me)
        let direct = links.links.filter { $0.value.open && $0.value.connection != nil }.map(\.key).sorted()
        let frame = LinkFrame.neighbours(list).encoded()
        return neighbourLists.due(list, open: direct, now: now).flatMap { sendFrame($0, frame) }
    }
}
