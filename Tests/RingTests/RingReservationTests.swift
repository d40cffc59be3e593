import Testing
@testable import Ring

/// Brute-force oracle of allocation with reservations: the largest arcs between consecutive points of
/// members ∪ reserved, by linear scan; the allocated ID must be the midpoint of one of them.
private func oracleLargestArcs(_ points: [PeerID]) -> (length: UInt64, midpoints: Set<PeerID>) {
    let sorted = points.sorted()
    var best: UInt64 = 0
    var mids = Set<PeerID>()
    for (i, start) in sorted.enumerated() {
        let next = sorted[(i + 1) % sorted.count]
        let length = Ring.arcLength(from: start, to: next)
        if length > best { best = length; mids = [] }
        if length == best { mids.insert(start.adding(length / 2)) }
    }
    return (best, mids)
}

@Suite struct RingReservationTests {
    /// Random joins, leaves (some keeping a reservation), reservations and releases: after every step
    /// the members' pushed states equal the oracle's (reserved IDs are not routed to), the allocated ID
    /// is the midpoint of a largest arc between members ∪ reserved, and never a reserved ID or a member.
    @Test(arguments: [UInt64(1), 2, 3])
    func allocationSkipsReservedAndRoutingIgnoresThem(seed: UInt64) throws {
        print("RingReservationTests seed \(seed)")
        var rng = SplitMix64(seed: seed)
        var ring = Ring(policy: .rows([0, 10, 20, 30, 40, 47]), successorListLength: 2, seed: seed &* 31)
        var views: [PeerID: PeerState] = [:]
        for step in 0..<800 {
            let points = ring.members + ring.reserved
            if !points.isEmpty {
                let (_, mids) = oracleLargestArcs(points)
                let id = ring.allocateID()!
                #expect(mids.contains(id), "step \(step): \(id) is not the midpoint of a largest arc")
                #expect(!ring.reserved.contains(id) && !ring.contains(id))
            }
            // Keep the ring small (the oracle is quadratic): past 40 members, members only go.
            let roll = ring.count + ring.reserved.count > 40 ? 6 + rng.next() % 3 : rng.next() % 10
            switch roll {
            case 0...3:   // a newcomer
                let id = ring.allocateID()!
                for (peer, updates) in try ring.join(id) { views[peer]!.apply(updates) }
                views[id] = ring.state(of: id)
            case 4, 5:    // a holder comes back to its reserved ID
                guard let id = ring.reserved.sorted().first(where: { _ in rng.next() % 2 == 0 }) else { continue }
                for (peer, updates) in try ring.join(id) { views[peer]!.apply(updates) }
                views[id] = ring.state(of: id)
                #expect(!ring.reserved.contains(id))
            case 6, 7:    // a member goes, its ID leased (or not)
                guard !ring.isEmpty else { continue }
                let victim = ring.members[Int(rng.next() % UInt64(ring.count))]
                let keep = rng.next() % 3 != 0
                views[victim] = nil
                for (peer, updates) in try ring.leave(victim, reserving: keep) { views[peer]!.apply(updates) }
                #expect(ring.reserved.contains(victim) == keep)
            case 8:       // a lease ends
                guard let id = ring.reserved.sorted().first else { continue }
                ring.release(id)
            default:      // a reservation without a member (restored at start)
                let id = PeerID(rng.next())
                if ring.contains(id) || ring.reserved.contains(id) { continue }
                try ring.reserve(id)
                #expect(throws: RingError.alreadyMember(id)) { try ring.reserve(id) }
            }
            #expect(ring.reserved.isDisjoint(with: ring.members))
            let members = Set(ring.members)
            #expect(Set(views.keys) == members)
            for n in members {
                let others = members.subtracting([n])
                #expect(views[n]?.successors == Array(others.sorted { n.distance(to: $0) < n.distance(to: $1) }.prefix(2)),
                        "step \(step)")
                for row in ring.fingerRows {
                    let start = n.fingerStart(row: row)
                    let target = members.min { start.distance(to: $0) < start.distance(to: $1) }!
                    #expect(views[n]?.fingers[row] == .some(target == n ? nil : target))
                }
            }
        }
    }

    @Test func aLoneReservationKeepsItsIdFromNewcomers() throws {
        var ring = Ring(seed: 4)
        let id = PeerID(1000)
        try ring.reserve(id)
        for _ in 0..<100 {
            let next = ring.allocateID()!
            #expect(next != id)
            _ = try ring.join(next)
        }
        #expect(!ring.contains(id))
        ring.release(id)
        #expect(ring.reserved.isEmpty)
    }
}
