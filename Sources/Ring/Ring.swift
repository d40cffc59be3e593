import Algorithms

/// What the server tells one peer about its place in the ring.
public struct PeerState: Equatable, Sendable {
    /// The previous member on the circle; nil when the peer is alone.
    public var predecessor: PeerID?
    /// The next `min(r, N - 1)` members clockwise, nearest first.
    public var successors: [PeerID]
    /// Finger row -> `successor(finger start)`; nil when that successor is the peer itself.
    public var fingers: [Int: PeerID?]

    public init(predecessor: PeerID?, successors: [PeerID], fingers: [Int: PeerID?]) {
        self.predecessor = predecessor
        self.successors = successors
        self.fingers = fingers
    }
}

/// One change to push to one peer. Applying a peer's updates in order to its previous
/// `PeerState` yields its new `PeerState`.
public enum RingUpdate: Equatable, Sendable {
    /// The set of finger rows changed (auto policy as N crosses a power of two).
    /// Rows not listed are dropped; newly listed rows follow as `.finger` updates.
    case config(fingerRows: [Int])
    case predecessor(PeerID?)
    case successors([PeerID])
    case finger(row: Int, start: PeerID, peer: PeerID?)
}

/// Updates to push, per peer, after one join or leave. The joining peer is not included:
/// it receives its whole `state(of:)`.
public typealias RingChanges = [PeerID: [RingUpdate]]

public enum RingError: Error, Equatable, Sendable {
    case alreadyMember(PeerID)
    case notMember(PeerID)
}

/// The ring meta-state the rendezvous server holds: the sorted members, the finger policy,
/// and the incremental "what changed for whom" computation on join and leave.
///
/// Chord (Stoica et al., SIGCOMM 2001): peer `p` is responsible for the interval
/// `(predecessor(p), p]`; finger row `i` of `n` is `successor((n + 2^i) mod 2^48)`.
///
/// Cost per join or leave: O(F log N + changes) comparisons, where F is the number of finger
/// rows, plus one memmove of the sorted member array (8 bytes per member) for the insertion
/// or removal. Auto finger policy adds O(N) when the row set changes, i.e. only when N crosses
/// a power of two.
public struct Ring: Sendable {
    /// Sorted members.
    public private(set) var members: [PeerID] = []
    public let policy: FingerPolicy
    /// Successor list length r.
    public let successorListLength: Int
    /// Finger rows currently in force (sorted).
    public private(set) var fingerRows: [Int]

    /// Reserved IDs (leases): not members, so nothing routes to them, but least-occupied allocation treats
    /// them as taken. Disjoint from `members`.
    public private(set) var reserved: Set<PeerID> = []
    /// Sorted `members` ∪ `reserved`: the points the gap index splits.
    private var occupied: [PeerID] = []
    private var gaps = GapIndex()
    private var rng: SplitMix64

    public init(policy: FingerPolicy = .auto, successorListLength: Int = 3, seed: UInt64? = nil) {
        precondition(successorListLength >= 1, "successor list length must be at least 1")
        self.policy = policy
        self.successorListLength = successorListLength
        self.fingerRows = policy.rows(forPeerCount: 0)
        self.rng = seed.map(SplitMix64.init(seed:)) ?? SplitMix64()
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }

    // MARK: Snapshots (replicas of the ring in a cluster: docs/cluster.md)

    /// What a ring is, as far as its future behaviour goes, right after `normalize()`: its members,
    /// its reservations and its generator's state before that normalization.
    public struct Snapshot: Equatable, Sendable {
        public var members: [PeerID]
        public var reserved: [PeerID]
        public var rngState: UInt64
        public init(members: [PeerID], reserved: [PeerID], rngState: UInt64) {
            self.members = members
            self.reserved = reserved
            self.rngState = rngState
        }
    }

    /// The ring's snapshot, to be taken just before `normalize()`: a ring built from it
    /// (`init(policy:successorListLength:restoring:)`) equals this one after `normalize()`.
    public var snapshot: Snapshot { Snapshot(members: members, reserved: reserved.sorted(), rngState: rng.state) }

    /// A ring equal to the one whose `snapshot` this is, after its `normalize()`: the same members,
    /// reservations, generator and gap index, so it allocates the same IDs from here on.
    public init(policy: FingerPolicy, successorListLength: Int, restoring s: Snapshot) {
        self.init(policy: policy, successorListLength: successorListLength, seed: s.rngState)
        members = s.members.sorted()
        reserved = Set(s.reserved).subtracting(members)
        occupied = (members + reserved).sorted()
        fingerRows = policy.rows(forPeerCount: members.count)
        normalize()
    }

    /// Rebuilds the gap index from the occupied points alone (drawing fresh tie-breaks), so that its
    /// state no longer depends on the order of past joins and leaves: two rings with the same members,
    /// reservations and generator state allocate the same IDs after it. Cost O(N).
    public mutating func normalize() {
        gaps.rebuild(members: occupied, rng: &rng)
    }

    // MARK: Lookup

    /// Index of the first member >= `point`, or `members.count` if none.
    private func lowerBound(_ point: PeerID) -> Int {
        members.partitioningIndex { $0 >= point }
    }

    public func contains(_ id: PeerID) -> Bool {
        let i = lowerBound(id)
        return i < members.count && members[i] == id
    }

    /// The member responsible for `point`: the first member clockwise from `point`, inclusive.
    public func successor(of point: PeerID) -> PeerID? {
        guard !members.isEmpty else { return nil }
        let i = lowerBound(point)
        return members[i == members.count ? 0 : i]
    }

    /// The first member strictly counter-clockwise from `point`.
    public func predecessor(of point: PeerID) -> PeerID? {
        guard !members.isEmpty else { return nil }
        let i = lowerBound(point)
        return members[i == 0 ? members.count - 1 : i - 1]
    }

    /// Length of the arc `(from, to]`; the whole circle when `from == to` (a lone member).
    static func arcLength(from: PeerID, to: PeerID) -> UInt64 {
        from == to ? PeerID.spaceSize : from.distance(to: to)
    }

    /// Row `row` of member `n`, or nil when it points back at `n`.
    public func finger(of n: PeerID, row: Int) -> PeerID? {
        let target = successor(of: n.fingerStart(row: row))
        return target == n ? nil : target
    }

    /// The successor list of member `n` (nearest first, never containing `n`).
    public func successorList(of n: PeerID) -> [PeerID] {
        let length = min(successorListLength, members.count - 1)
        guard length > 0 else { return [] }
        var i = lowerBound(n)
        var list: [PeerID] = []
        list.reserveCapacity(length)
        for _ in 0..<length {
            i = (i + 1) % members.count
            list.append(members[i])
        }
        return list
    }

    /// The full state of member `n` under the current rows.
    public func state(of n: PeerID) -> PeerState {
        let pred = predecessor(of: n)
        var fingers: [Int: PeerID?] = [:]
        for row in fingerRows { fingers[row] = finger(of: n, row: row) }
        return PeerState(predecessor: pred == n ? nil : pred, successors: successorList(of: n), fingers: fingers)
    }

    // MARK: Least-occupied ID assignment

    /// The ID the next joiner should get: a random ID for the first peer, otherwise the
    /// midpoint of the largest arc between consecutive occupied points (members and reserved IDs;
    /// ties broken at random), so a reserved ID is never handed out.
    /// Nil when no arc can be split (the circle is full). Does not insert the ID.
    public mutating func allocateID() -> PeerID? {
        if occupied.isEmpty { return PeerID(rng.next()) }
        let current = occupied
        guard let largest = gaps.largest(members: current), largest.length >= 2 else { return nil }
        return largest.start.adding(largest.length / 2)
    }

    /// Largest arc / smallest arc and largest arc / mean arc between occupied points (members and
    /// reserved IDs); nil when there is none.
    public mutating func arcRatios() -> (maxMin: Double, maxMean: Double)? {
        guard !occupied.isEmpty else { return nil }
        let current = occupied
        guard let largest = gaps.largest(members: current), let smallest = gaps.smallest(members: current) else { return nil }
        let mean = Double(PeerID.spaceSize) / Double(occupied.count)
        return (Double(largest.length) / Double(smallest.length), Double(largest.length) / mean)
    }

    /// Index of the first occupied point >= `point`, or `occupied.count` if none.
    private func occupiedLowerBound(_ point: PeerID) -> Int {
        occupied.partitioningIndex { $0 >= point }
    }

    /// The arc from `start` (an occupied point) to the next occupied point enters the gap index.
    private mutating func pushGap(after start: PeerID) {
        guard !occupied.isEmpty else { return }
        let i = occupiedLowerBound(start.adding(1))
        let next = occupied[i == occupied.count ? 0 : i]
        gaps.push(start: start, length: Ring.arcLength(from: start, to: next), rng: &rng)
        if gaps.entryCount > 4 * occupied.count + 16 { gaps.rebuild(members: occupied, rng: &rng) }
    }

    /// A new occupied point: the arcs on both sides of it enter the gap index.
    private mutating func occupy(_ id: PeerID) {
        let i = occupiedLowerBound(id)
        occupied.insert(id, at: i)
        pushGap(after: occupied[i == 0 ? occupied.count - 1 : i - 1])
        pushGap(after: id)
    }

    /// A point is no longer occupied: the arc that now spans it enters the gap index.
    private mutating func vacate(_ id: PeerID) {
        let i = occupiedLowerBound(id)
        guard i < occupied.count, occupied[i] == id else { return }
        occupied.remove(at: i)
        if occupied.isEmpty {
            gaps.rebuild(members: occupied, rng: &rng)
        } else {
            pushGap(after: occupied[i == 0 ? occupied.count - 1 : i - 1])
        }
    }

    // MARK: Reservations

    /// Reserves `id` (not a member): allocation skips it until `release(_:)` or a `join(_:)` of `id`.
    /// Throws `alreadyMember` when `id` is a member or already reserved.
    public mutating func reserve(_ id: PeerID) throws(RingError) {
        guard !contains(id), !reserved.contains(id) else { throw .alreadyMember(id) }
        reserved.insert(id)
        occupy(id)
    }

    /// Ends the reservation of `id` (nothing when it has none): allocation may hand it out again.
    public mutating func release(_ id: PeerID) {
        guard reserved.remove(id) != nil else { return }
        vacate(id)
    }

    // MARK: Join and leave

    /// Inserts `id` and returns what changed for every other member. A reservation of `id` ends (its
    /// holder is back).
    public mutating func join(_ id: PeerID) throws(RingError) -> RingChanges {
        let i = lowerBound(id)
        if i < members.count && members[i] == id { throw .alreadyMember(id) }
        members.insert(id, at: i)
        if reserved.remove(id) == nil { occupy(id) }

        var changes = RingChanges()
        guard members.count > 1 else {
            fingerRows = policy.rows(forPeerCount: 1)
            return changes
        }
        let pred = predecessor(of: id)!
        let succ = successor(of: id.adding(1))!
        changes[succ, default: []].append(.predecessor(id))
        collectSuccessorListChanges(around: id, excluding: id, into: &changes)
        collectFingerChanges(arcFrom: pred, to: id, excluding: id, into: &changes)
        return changes
    }

    /// Removes `id` and returns what changed for every remaining member. With `reserving`, `id` stays
    /// reserved (`reserve(_:)`): nothing routes to it, and allocation skips it.
    public mutating func leave(_ id: PeerID, reserving: Bool = false) throws(RingError) -> RingChanges {
        let i = lowerBound(id)
        guard i < members.count, members[i] == id else { throw .notMember(id) }
        var changes = RingChanges()
        if reserving { reserved.insert(id) }
        guard members.count > 1 else {
            members.remove(at: i)
            fingerRows = policy.rows(forPeerCount: 0)
            if !reserving { vacate(id) }
            return changes
        }
        let pred = predecessor(of: id)!
        // Members whose successor list contained `id`, found before it goes.
        var listOwners: [PeerID] = []
        var k = i
        for _ in 0..<min(successorListLength, members.count - 1) {
            k = (k - 1 + members.count) % members.count
            listOwners.append(members[k])
        }
        members.remove(at: i)
        if !reserving { vacate(id) }

        let succ = successor(of: id)!
        changes[succ, default: []].append(.predecessor(pred == succ ? nil : pred))
        for owner in listOwners { changes[owner, default: []].append(.successors(successorList(of: owner))) }
        collectFingerChanges(arcFrom: pred, to: id, excluding: nil, into: &changes)
        return changes
    }

    /// After `id` was inserted: the r members before it now list it among their successors.
    private func collectSuccessorListChanges(around id: PeerID, excluding: PeerID, into changes: inout RingChanges) {
        var k = lowerBound(id)
        for _ in 0..<min(successorListLength, members.count - 1) {
            k = (k - 1 + members.count) % members.count
            let owner = members[k]
            if owner == excluding { break }
            changes[owner, default: []].append(.successors(successorList(of: owner)))
        }
    }

    /// A join or leave of `id` with predecessor `pred` changes `successor(t)` exactly for the
    /// points t in (pred, id]. Row i of n moves iff `n + 2^i` is in that arc, i.e. n is in
    /// (pred - 2^i, id - 2^i]: a range query per row. Also applies an auto-policy row change.
    private mutating func collectFingerChanges(arcFrom pred: PeerID, to id: PeerID, excluding: PeerID?,
                                               into changes: inout RingChanges) {
        let oldRows = fingerRows
        let newRows = policy.rows(forPeerCount: members.count)
        let kept = Set(oldRows)
        for row in newRows where kept.contains(row) {
            let offset: UInt64 = 1 << UInt64(row)
            let lower = pred.subtracting(offset), upper = id.subtracting(offset)
            let arc = lower.distance(to: upper)
            var k = lowerBound(lower.adding(1)) % members.count
            for _ in 0..<members.count {
                let n = members[k]
                let d = lower.distance(to: n)
                guard d != 0, d <= arc else { break }
                if n != excluding {
                    changes[n, default: []].append(.finger(row: row, start: n.fingerStart(row: row),
                                                           peer: finger(of: n, row: row)))
                }
                k = (k + 1) % members.count
            }
        }
        guard newRows != oldRows else { return }
        fingerRows = newRows
        let added = newRows.filter { !kept.contains($0) }
        for n in members where n != excluding {
            changes[n, default: []].append(.config(fingerRows: newRows))
            for row in added {
                changes[n, default: []].append(.finger(row: row, start: n.fingerStart(row: row),
                                                       peer: finger(of: n, row: row)))
            }
        }
    }
}

extension PeerState {
    /// Applies updates in order (what a peer does with the messages it is pushed).
    public mutating func apply(_ updates: [RingUpdate]) {
        for update in updates {
            switch update {
            case .config(let rows):
                let keep = Set(rows)
                fingers = fingers.filter { keep.contains($0.key) }
            case .predecessor(let p): predecessor = p
            case .successors(let list): successors = list
            case .finger(let row, _, let peer): fingers[row] = .some(peer)
            }
        }
    }
}
