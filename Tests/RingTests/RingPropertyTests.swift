import Testing
@testable import Ring

/// Brute-force oracle: recomputes a peer's state from the definitions with linear scans.
private func oracleState(of n: PeerID, members: Set<PeerID>, rows: [Int], r: Int) -> PeerState {
    let others = members.subtracting([n])
    let byDistanceFromN = others.sorted { n.distance(to: $0) < n.distance(to: $1) }
    let predecessor = others.max { $1.distance(to: n) < $0.distance(to: n) }
    var fingers: [Int: PeerID?] = [:]
    for row in rows {
        let start = n.fingerStart(row: row)
        let target = members.min { start.distance(to: $0) < start.distance(to: $1) }!
        fingers[row] = target == n ? nil : target
    }
    return PeerState(predecessor: predecessor, successors: Array(byDistanceFromN.prefix(r)), fingers: fingers)
}

private func checkAgainstOracle(_ ring: Ring, views: [PeerID: PeerState], policy: FingerPolicy, r: Int) {
    let members = Set(ring.members)
    #expect(Set(views.keys) == members)
    let rows = policy.rows(forPeerCount: members.count)
    #expect(ring.fingerRows == rows)
    for n in members {
        let expected = oracleState(of: n, members: members, rows: rows, r: r)
        #expect(views[n] == expected, "peer \(n) after \(members.count) members")
        if views[n] != expected { return }
    }
}

@Suite struct RingPropertyTests {
    /// Thousands of random joins and leaves; after each step every peer's pushed state
    /// (its first state plus every update pushed since) equals the oracle's.
    @Test(arguments: [FingerPolicy.auto, .all, .rows([0, 10, 12, 20, 30, 47])], [1, 3])
    func pushedStateMatchesOracle(policy: FingerPolicy, r: Int) throws {
        var rng = SplitMix64(seed: 42 &+ UInt64(r))
        var ring = Ring(policy: policy, successorListLength: r, seed: 7)
        var views: [PeerID: PeerState] = [:]
        for step in 0..<1500 {
            let join = ring.count < 3 || (ring.count < 48 && rng.next() % 100 < 60)
            if join {
                // Mix least-occupied IDs with arbitrary re-registered IDs.
                let id = rng.next() % 4 == 0 ? PeerID(rng.next()) : ring.allocateID()!
                if ring.contains(id) { continue }
                let changes = try ring.join(id)
                #expect(changes[id] == nil)
                for (peer, updates) in changes { views[peer]!.apply(updates) }
                views[id] = ring.state(of: id)
            } else {
                let victim = ring.members[Int(rng.next() % UInt64(ring.count))]
                let changes = try ring.leave(victim)
                views[victim] = nil
                for (peer, updates) in changes {
                    #expect(views[peer] != nil, "update for departed peer at step \(step)")
                    views[peer]?.apply(updates)
                }
            }
            checkAgainstOracle(ring, views: views, policy: policy, r: r)
        }
    }

    /// Dense IDs (adjacent integers) stress the wrap-around and the empty-arc edge cases.
    @Test func denseIdsMatchOracle() throws {
        var rng = SplitMix64(seed: 9)
        var ring = Ring(policy: .all, successorListLength: 2, seed: 1)
        var views: [PeerID: PeerState] = [:]
        for _ in 0..<600 {
            let id = PeerID(PeerID.mask &- 3 &+ rng.next() % 8)
            if ring.contains(id) {
                for (peer, updates) in try ring.leave(id) { views[peer]!.apply(updates) }
                views[id] = nil
            } else {
                for (peer, updates) in try ring.join(id) { views[peer]!.apply(updates) }
                views[id] = ring.state(of: id)
            }
            checkAgainstOracle(ring, views: views, policy: .all, r: 2)
        }
    }
}

@Suite struct AllocatorTests {
    @Test func joinsAloneKeepArcsWithinFactorTwo() throws {
        var ring = Ring(seed: 3)
        for _ in 0..<2000 {
            _ = try ring.join(ring.allocateID()!)
            let ratios = ring.arcRatios()!
            #expect(ratios.maxMin <= 2.0)
        }
    }

    @Test func joinsAfterDeparturesFillLargestGapFirst() throws {
        var ring = Ring(seed: 5)
        for _ in 0..<64 { _ = try ring.join(ring.allocateID()!) }
        var rng = SplitMix64(seed: 11)
        for _ in 0..<20 { _ = try ring.leave(ring.members[Int(rng.next() % UInt64(ring.count))]) }
        for _ in 0..<40 {
            let largest = zip(ring.members, ring.members.dropFirst() + [ring.members[0]])
                .map { Ring.arcLength(from: $0, to: $1) }.max()!
            let id = ring.allocateID()!
            let pred = ring.predecessor(of: id)!, succ = ring.successor(of: id)!
            #expect(Ring.arcLength(from: pred, to: succ) == largest)
            #expect(pred.distance(to: id) == largest / 2)
            _ = try ring.join(id)
        }
    }

    @Test func tiesAreBrokenAtRandom() throws {
        // Four equal arcs: over many seeds, every arc gets picked.
        var picked = Set<PeerID>()
        for seed in 0..<64 as Range<UInt64> {
            var ring = Ring(seed: seed)
            for k in 0..<4 as Range<UInt64> { _ = try ring.join(PeerID(k << 46)) }
            picked.insert(ring.allocateID()!)
        }
        #expect(picked.count == 4)
    }

    @Test func joiningTwiceIsAnError() throws {
        var ring = Ring(seed: 1)
        let id = PeerID(5)
        _ = try ring.join(id)
        #expect(throws: RingError.alreadyMember(id)) { try ring.join(id) }
        _ = try ring.leave(id)
        #expect(throws: RingError.notMember(id)) { try ring.leave(id) }
    }
}

@Suite struct PeerIDTests {
    @Test func hexRoundTrip() {
        #expect(PeerID(hex: "00ab12cd34ef")?.rawValue == 0x00ab12cd34ef)
        #expect(PeerID(0xffff_ffff_ffff).hex == "ffffffffffff")
        #expect(PeerID(1 << 48).rawValue == 0)
        for bad in ["", "abc", "00AB12CD34EF", "00ab12cd34e", "00ab12cd34efa", "00ab12cd34eg", "-0ab12cd34ef"] {
            #expect(PeerID(hex: bad) == nil, "\(bad)")
        }
    }

    @Test func intervals() {
        let a = PeerID(10), b = PeerID(20)
        #expect(PeerID(15).isIn(openLower: a, closedUpper: b))
        #expect(PeerID(20).isIn(openLower: a, closedUpper: b))
        #expect(!PeerID(10).isIn(openLower: a, closedUpper: b))
        #expect(PeerID(5).isIn(openLower: b, closedUpper: a))   // wraps
        #expect(PeerID(25).isIn(openLower: b, closedUpper: a))
        #expect(PeerID(99).isIn(openLower: a, closedUpper: a))  // whole circle
        #expect(PeerID(PeerID.mask).fingerStart(row: 0) == PeerID(0))
    }

    @Test func fingerPolicies() {
        #expect(FingerPolicy(parsing: "auto") == .auto)
        #expect(FingerPolicy(parsing: "all")?.rows(forPeerCount: 5).count == 48)
        #expect(FingerPolicy(parsing: "0,10,12,20,30,47") == .rows([0, 10, 12, 20, 30, 47]))
        #expect(FingerPolicy(parsing: "48") == nil)
        #expect(FingerPolicy(parsing: "1,,2") == nil)
        #expect(FingerPolicy(parsing: "-1") == nil)
        #expect(FingerPolicy.auto.rows(forPeerCount: 1) == [0, 46, 47])
        #expect(FingerPolicy.auto.rows(forPeerCount: 1000) == [0] + Array(36..<48))
    }
}
