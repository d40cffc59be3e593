import Algorithms
import HeapModule

/// The arcs between consecutive ring members, ordered by length, for least-occupied ID assignment.
///
/// A min-max heap of `(length, random tie-break, start)` entries with lazy invalidation:
/// joins and leaves push the arcs they create and never search for the ones they destroy;
/// an entry is checked against the ring when it reaches the top and dropped when stale.
/// The heap is rebuilt from the ring when stale entries outnumber live arcs, so memory stays O(N)
/// and the amortized cost per join or leave is O(log N).
struct GapIndex: Sendable {
    struct Entry: Comparable, Sendable {
        var length: UInt64
        var tieBreak: UInt64
        var start: PeerID

        static func < (a: Entry, b: Entry) -> Bool {
            (a.length, a.tieBreak, a.start.rawValue) < (b.length, b.tieBreak, b.start.rawValue)
        }
    }

    private var heap = Heap<Entry>()

    var entryCount: Int { heap.count }

    mutating func push(start: PeerID, length: UInt64, rng: inout SplitMix64) {
        heap.insert(Entry(length: length, tieBreak: rng.next(), start: start))
    }

    mutating func rebuild(members: [PeerID], rng: inout SplitMix64) {
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for (i, start) in members.enumerated() {
            let next = members[(i + 1) % members.count]
            entries.append(Entry(length: Ring.arcLength(from: start, to: next), tieBreak: rng.next(), start: start))
        }
        heap = Heap(entries)
    }

    /// The largest live arc of the ring whose sorted members are `members`.
    mutating func largest(members: [PeerID]) -> Entry? {
        while let top = heap.max {
            if GapIndex.isLive(top, members: members) { return top }
            heap.removeMax()
        }
        return nil
    }

    /// The smallest live arc.
    mutating func smallest(members: [PeerID]) -> Entry? {
        while let bottom = heap.min {
            if GapIndex.isLive(bottom, members: members) { return bottom }
            heap.removeMin()
        }
        return nil
    }

    /// Whether an entry still describes an arc between consecutive members.
    private static func isLive(_ entry: Entry, members: [PeerID]) -> Bool {
        let lo = members.partitioningIndex { $0 >= entry.start }
        guard lo < members.count, members[lo] == entry.start else { return false }
        return Ring.arcLength(from: entry.start, to: members[(lo + 1) % members.count]) == entry.length
    }
}
