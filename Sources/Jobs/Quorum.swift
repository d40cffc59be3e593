/// Result verification by quorum (docs/jobs.md, "Verification by quorum"): the pure rules shared by the
/// scheduler (`Scheduler` in quorum mode), the job core (`JobCore`) and the engine (`JobEngine`, which
/// keeps a `Reputation` across jobs). The browser has the same rules in Public/process/scheduler.js;
/// both reproduce Tests/vectors/quorum.json (written by Tests/vectors/make_quorum_vectors.py).
public enum Quorum {
    /// The spot-check draw of task `taskId` of a job seeded with `seed`: a number in [0, 1), from the
    /// SplitMix64 finalizer of `seed + (taskId + 1) × 0x9E3779B97F4A7C15` (mod 2^64), top 53 bits.
    /// A task first dispatched to a peer with check probability `p` is replicated iff `draw < p`.
    public static func draw(seed: UInt64, taskId: Int) -> Double {
        var z = seed &+ UInt64(truncatingIfNeeded: taskId + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / 9_007_199_254_740_992   // 2^53
    }

    /// What the results of one task decide: `accepted` carries the agreeing digest; `nil` means more
    /// results are needed. `single`: the task was exempt (its first copy went to a trusted peer and
    /// was not drawn for a spot check), so one result is enough.
    /// The rule: with n results, the most common digest h (count c) is accepted iff
    /// (single and n = 1) or (c ≥ 2 and 2c > n): at least two agree, and they are a strict majority.
    public static func decide(_ digests: [String], single: Bool) -> String? {
        if single && digests.count == 1 { return digests[0] }
        var counts: [String: Int] = [:]
        for d in digests { counts[d, default: 0] += 1 }
        for d in digests where counts[d]! >= 2 && 2 * counts[d]! > digests.count { return d }
        return nil
    }
}

/// The record of the peers whose results this engine verified (docs/jobs.md, "Reputation"): kept by
/// the submitting engine across its jobs (in memory, per process). A peer is *trusted* once it has
/// `trustAfter` validated agreeing results in a row and no penalty; trusted peers are only spot-checked
/// at `spotCheckRate`. A peer whose result disagreed with an accepted one is penalised: it is never
/// trusted again and later jobs avoid it (discovery excludes it, jobs do not add it).
public struct Reputation: Sendable, Equatable {
    public struct Record: Sendable, Equatable {
        /// Validated results that agreed with the accepted digest since the last penalty.
        public var agreed = 0
        /// Results that disagreed with an accepted digest.
        public var penalties = 0
    }
    public private(set) var records: [String: Record] = [:]

    public init() {}

    public func record(_ peer: String) -> Record { records[peer] ?? Record() }
    public mutating func agree(_ peer: String) { records[peer, default: Record()].agreed += 1 }
    public mutating func penalise(_ peer: String) {
        records[peer, default: Record()].penalties += 1
        records[peer]!.agreed = 0
    }
    /// Whether later jobs avoid the peer (it was penalised at least once).
    public func avoided(_ peer: String) -> Bool { record(peer).penalties > 0 }
    public func trusted(_ peer: String, trustAfter: Int) -> Bool {
        let r = record(peer)
        return r.penalties == 0 && r.agreed >= trustAfter
    }
    /// The probability that a task first dispatched to `peer` is replicated: 1 for an untrusted
    /// peer, `spotCheckRate` for a trusted one.
    public func check(_ peer: String, trustAfter: Int, spotCheckRate: Double) -> Double {
        trusted(peer, trustAfter: trustAfter) ? spotCheckRate : 1
    }
    /// Peers avoided, sorted.
    public var avoidedPeers: [String] { records.filter { $0.value.penalties > 0 }.keys.sorted() }
}
