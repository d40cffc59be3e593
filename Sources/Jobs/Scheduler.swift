/// The scheduling core of a job (docs/jobs.md, "Scheduling"): pure logic, no clock, no network.
/// The same semantics as Public/process/scheduler.js: pull with credits, a deadline per dispatched
/// copy, re-dispatch of lost and late copies (first), speculative duplicates of stragglers when nothing
/// is pending (Dean & Ghemawat's backup tasks), first result wins, and failure codes that fail a task
/// at once ('threw', …) or after `maxAttempts` ('deadline', 'crashed').
///
/// In quorum mode (`quorum` given; docs/jobs.md, "Verification by quorum") a task is done only when
/// its results agree (`Quorum.decide`): each dispatch goes to a peer that holds no copy and gave no
/// result for the task; a task first dispatched to a peer whose check probability (`addPeer`'s `check`)
/// is below the spot-check draw runs once, any other runs twice, and one more copy goes out each time
/// all wanted results are in without agreement, up to `maxReplicas` results (then it fails as
/// `no-quorum`). There are no speculative duplicates in quorum mode.
public struct Scheduler: Sendable {
    public struct Assignment: Equatable, Sendable {
        public var taskId: Int, peer: String, attempt: Int, speculative: Bool
    }
    public struct Counts: Equatable, Sendable, Codable {
        public var dispatched = 0, redispatched = 0, speculative = 0, discarded = 0, mismatches = 0
        public var late = 0, lost = 0, busy = 0, failed = 0
    }
    /// Quorum mode: `maxReplicas` results of a task at most; `seed` of the spot-check draws.
    public struct QuorumMode: Equatable, Sendable {
        public var maxReplicas: Int, seed: UInt64
        public init(maxReplicas: Int = 5, seed: UInt64) { self.maxReplicas = max(2, maxReplicas); self.seed = seed }
    }
    /// Quorum mode's counters: `results` (successful results received, one per peer and task),
    /// `agreed` / `dissented` (results equal to / different from the accepted digest, where at least two
    /// were compared), `spotChecks` (tasks of trusted peers drawn for replication), `unchecked` (tasks
    /// accepted on one result), `noQuorum` (tasks failed without agreement).
    public struct Verification: Equatable, Sendable, Codable {
        public var results = 0, agreed = 0, dissented = 0, spotChecks = 0, unchecked = 0, noQuorum = 0
    }
    enum Status: UInt8 { case pending, running, done, failed }
    struct Copy { var sentAt: Double; var attempt: Int }
    struct PeerSlot { var limit: Int; var running: Set<Int> = []; var won = 0; var pausedUntil = 0.0; var check = 1.0 }

    /// Codes after which a task is dispatched again; any other code fails it at once.
    static let retried: Set<String> = ["busy", "stopped", "need-shared", "need-module", "lost", "corrupt", "cancelled", "deadline", "crashed"]
    /// Of those, the ones that count towards `maxAttempts` (the task itself may be at fault).
    static let counted: Set<String> = ["deadline", "crashed"]
    /// The ones where the peer declined without trying: it pauses, nothing counts against the task.
    static let declined: Set<String> = ["busy", "stopped"]

    public let deadline: Double, maxAttempts: Int, maxRetries: Int, maxCopies: Int, speculateAfter: Double, speculateMin: Double
    var status: [Status]
    var attempts: [Int]      // dispatches (the attempt number sent with a copy)
    var failures: [Int]      // copies that ended in a counted code
    var retries: [Int]       // copies lost in transit, corrupt or cancelled
    var copies: [[String: Copy]]
    var sentTo: [Set<String>]
    var winners: [Int: String] = [:]
    public private(set) var errors: [Int: (code: String, message: String)] = [:]
    var queue: [Int]
    var head = 0
    var retry: [Int] = []
    var peers: [String: PeerSlot] = [:]
    var peerOrder: [String] = []
    var durations: [Double] = []
    public private(set) var remaining: Int
    public private(set) var counts = Counts()
    public let quorum: QuorumMode?
    public private(set) var verification = Verification()
    var results: [[(peer: String, sha256: String)]]   // quorum mode: the results of each task, in arrival order
    var needed: [Int]                                  // quorum mode: results wanted
    var single: [Bool]                                 // quorum mode: exempt from replication

    /// Times are in seconds on any monotonic clock.
    public init(taskCount: Int, deadline: Double = 120, maxAttempts: Int = 3, maxRetries: Int = 10, maxCopies: Int = 2, speculateAfter: Double = 1.5, speculateMin: Double = 1, quorum: QuorumMode? = nil) {
        self.quorum = quorum
        results = Array(repeating: [], count: quorum == nil ? 0 : taskCount)
        needed = Array(repeating: 0, count: quorum == nil ? 0 : taskCount)
        single = Array(repeating: false, count: quorum == nil ? 0 : taskCount)
        self.deadline = deadline; self.maxAttempts = maxAttempts; self.maxRetries = maxRetries; self.maxCopies = maxCopies
        self.speculateAfter = speculateAfter; self.speculateMin = speculateMin
        status = Array(repeating: .pending, count: taskCount)
        attempts = Array(repeating: 0, count: taskCount)
        failures = Array(repeating: 0, count: taskCount)
        retries = Array(repeating: 0, count: taskCount)
        copies = Array(repeating: [:], count: taskCount)
        sentTo = Array(repeating: [], count: taskCount)
        queue = Array(0..<taskCount)
        remaining = taskCount
    }

    public var taskCount: Int { status.count }
    public var finished: Bool { remaining == 0 }
    public var pending: Int { retry.count + queue.count - head }
    public var peerIDs: [String] { peerOrder }
    public func wins() -> [String: Int] { peers.mapValues(\.won) }

    /// Adds a peer (or updates its limit and check). `check`: in quorum mode, the probability that a
    /// task first dispatched to this peer is replicated (1: always; a trusted peer's spot-check rate;
    /// 0: never, for this peer's own workers).
    public mutating func addPeer(_ peer: String, limit: Int, check: Double = 1) {
        if peers[peer] != nil { peers[peer]!.limit = max(1, limit); peers[peer]!.check = check; return }
        peers[peer] = PeerSlot(limit: max(1, limit), check: check)
        peerOrder.append(peer)
    }

    /// Whether task `t` is neither done nor failed.
    public func isOpen(_ t: Int) -> Bool { t >= 0 && t < taskCount && (status[t] == .pending || status[t] == .running) }

    /// Quorum mode: a peer's new check probability (it became trusted).
    public mutating func setCheck(_ peer: String, _ check: Double) { peers[peer]?.check = check }

    /// The peer left: its running copies go back to pending. Returns their task ids.
    @discardableResult
    public mutating func removePeer(_ peer: String) -> [Int] {
        guard let slot = peers.removeValue(forKey: peer) else { return [] }
        peerOrder.removeAll { $0 == peer }
        let lost = slot.running.sorted()
        for t in lost { counts.lost += 1; dropCopy(t, peer) }
        return lost
    }

    public mutating func assign(now: Double) -> [Assignment] {
        var out: [Assignment] = []
        if quorum != nil {
            for p in peerOrder where peers[p]!.pausedUntil <= now {
                while peers[p]!.running.count < peers[p]!.limit, let t = nextReplica(for: p) {
                    out.append(dispatchReplica(t, p, now))
                }
            }
            return out
        }
        for p in peerOrder where peers[p]!.pausedUntil <= now {
            while peers[p]!.running.count < peers[p]!.limit, let t = nextPending() {
                out.append(dispatch(t, p, now, speculative: false))
            }
        }
        if pending == 0 && maxCopies > 1 && !durations.isEmpty {
            let threshold = max(speculateMin, speculateAfter * median())
            for p in peerOrder where peers[p]!.pausedUntil <= now {
                while peers[p]!.running.count < peers[p]!.limit, let t = straggler(for: p, now: now, threshold: threshold) {
                    out.append(dispatch(t, p, now, speculative: true))
                }
            }
        }
        return out
    }

    /// `winner`: the result is the task's (accepted, in quorum mode); `cancel`: peers still running
    /// copies. Quorum mode also gives `agreed` / `dissented` (peers whose results matched / differed from
    /// the accepted digest, compared with at least one other) and `failed` (the task failed: no quorum).
    public struct Completion: Equatable, Sendable {
        public var winner: Bool, mismatch: Bool, unexpected: Bool, cancel: [String]
        public var agreed: [String] = [], dissented: [String] = [], failed = false
    }

    public mutating func complete(_ t: Int, from peer: String, sha256: String, now: Double) -> Completion {
        guard t >= 0, t < taskCount, sentTo[t].contains(peer) else { return Completion(winner: false, mismatch: false, unexpected: true, cancel: []) }
        if quorum != nil { return completeReplica(t, peer, sha256, now) }
        let copy = copies[t][peer]
        if copy != nil { dropCopy(t, peer) }
        peers[peer]?.pausedUntil = 0
        if status[t] == .done {
            counts.discarded += 1
            let mismatch = winners[t] != sha256
            if mismatch { counts.mismatches += 1 }
            return Completion(winner: false, mismatch: mismatch, unexpected: false, cancel: [])
        }
        if status[t] == .failed { return Completion(winner: false, mismatch: false, unexpected: false, cancel: []) }
        status[t] = .done
        remaining -= 1
        winners[t] = sha256
        peers[peer]?.won += 1
        if let copy { durations.append(now - copy.sentAt) }
        let cancel = copies[t].keys.sorted()
        for other in cancel { dropCopy(t, other) }
        retry.removeAll { $0 == t }
        return Completion(winner: true, mismatch: false, unexpected: false, cancel: cancel)
    }

    public struct Failure: Equatable, Sendable { public var failed: Bool, cancel: [String] }

    public mutating func fail(_ t: Int, from peer: String, code: String, message: String, now: Double, pause: Double = 0.5) -> Failure {
        guard t >= 0, t < taskCount, copies[t][peer] != nil else { return Failure(failed: false, cancel: []) }
        dropCopy(t, peer)
        if Self.declined.contains(code) {
            counts.busy += 1
            peers[peer]?.pausedUntil = now + pause
        }
        if code == "deadline" { counts.late += 1 }
        if code == "lost" { counts.lost += 1 }
        if Self.counted.contains(code) { failures[t] += 1 }
        else if Self.retried.contains(code) && !Self.declined.contains(code) && code != "need-shared" && code != "need-module" { retries[t] += 1 }
        let permanent = !Self.retried.contains(code) || failures[t] >= maxAttempts || retries[t] > maxRetries
        guard permanent else { return Failure(failed: false, cancel: []) }
        let cancel = copies[t].keys.sorted()
        failTask(t, code: code, message: message)
        return Failure(failed: true, cancel: cancel)
    }

    public struct Expiry: Equatable, Sendable { public var taskId: Int, peer: String, failure: Failure }

    public mutating func expired(now: Double) -> [Expiry] {
        var late: [(Int, String)] = []
        for p in peerOrder {
            for t in peers[p]!.running.sorted() where now - copies[t][p]!.sentAt > deadline { late.append((t, p)) }
        }
        return late.map { t, p in Expiry(taskId: t, peer: p, failure: fail(t, from: p, code: "deadline", message: "no result within \(Int(deadline)) s", now: now)) }
    }

    public mutating func abort(code: String, message: String) {
        for t in 0..<taskCount where status[t] == .pending || status[t] == .running { failTask(t, code: code, message: message) }
    }

    /// Tasks `peer` runs, dispatched before `before`.
    public func running(on peer: String, before: Double = .infinity) -> [Int] {
        guard let slot = peers[peer] else { return [] }
        return slot.running.filter { copies[$0][peer]!.sentAt < before }.sorted()
    }

    // MARK: internals

    mutating func nextPending() -> Int? {
        while !retry.isEmpty {
            let t = retry.removeFirst()
            if status[t] == .pending { return t }
        }
        while head < queue.count {
            let t = queue[head]
            head += 1
            if status[t] == .pending { return t }
        }
        return nil
    }

    mutating func dispatch(_ t: Int, _ peer: String, _ now: Double, speculative: Bool) -> Assignment {
        sendCopy(t, peer, now)
        if speculative { counts.speculative += 1 } else if attempts[t] > 1 { counts.redispatched += 1 }
        return Assignment(taskId: t, peer: peer, attempt: attempts[t], speculative: speculative)
    }

    /// Records a copy of task `t` going to `peer` (the bookkeeping every dispatch shares).
    private mutating func sendCopy(_ t: Int, _ peer: String, _ now: Double) {
        attempts[t] += 1
        status[t] = .running
        copies[t][peer] = Copy(sentAt: now, attempt: attempts[t])
        sentTo[t].insert(peer)
        peers[peer]!.running.insert(t)
        counts.dispatched += 1
    }

    func straggler(for peer: String, now: Double, threshold: Double) -> Int? {
        var best: Int?
        var bestAge = threshold
        for other in peerOrder where other != peer {
            for t in peers[other]!.running {
                let c = copies[t]
                if c.count >= maxCopies || c[peer] != nil { continue }
                let age = now - c.values.map(\.sentAt).min()!
                if age > bestAge || (age == bestAge && best.map { t < $0 } == true) { best = t; bestAge = age }
            }
        }
        return best
    }

    mutating func dropCopy(_ t: Int, _ peer: String) {
        copies[t][peer] = nil
        peers[peer]?.running.remove(t)
        if quorum != nil {
            if status[t] == .running && copies[t].isEmpty { status[t] = .pending }
            requeue(t)
            return
        }
        if status[t] == .running && copies[t].isEmpty {
            status[t] = .pending
            retry.append(t)
        }
    }

    mutating func failTask(_ t: Int, code: String, message: String) {
        for other in copies[t].keys.sorted() { dropCopy(t, other) }
        status[t] = .failed
        errors[t] = (code, message)
        counts.failed += 1
        remaining -= 1
        retry.removeAll { $0 == t }
    }

    func median() -> Double {
        let sorted = durations.sorted()
        return sorted[sorted.count / 2]
    }
}

// MARK: quorum mode

extension Scheduler {
    /// Results still wanted and not yet dispatched (0 once the task ended).
    func wanted(_ t: Int) -> Int {
        guard status[t] == .pending || status[t] == .running else { return 0 }
        return max(0, needed[t] - results[t].count - copies[t].count)
    }

    func eligible(_ t: Int, _ peer: String) -> Bool {
        copies[t][peer] == nil && !results[t].contains { $0.peer == peer }
    }

    /// Keeps `retry` (quorum mode: the tasks that want more copies, in the order they came to want them)
    /// in step with `wanted`.
    mutating func requeue(_ t: Int) {
        if wanted(t) > 0 { if !retry.contains(t) { retry.append(t) } } else { retry.removeAll { $0 == t } }
    }

    /// The first task wanting a copy that `peer` may run: those that came back first, then new ones.
    mutating func nextReplica(for peer: String) -> Int? {
        if let t = retry.first(where: { wanted($0) > 0 && eligible($0, peer) }) { return t }
        while head < queue.count {
            let t = queue[head]
            head += 1
            if status[t] == .pending { return t }
        }
        return nil
    }

    mutating func dispatchReplica(_ t: Int, _ peer: String, _ now: Double) -> Assignment {
        if results[t].isEmpty && copies[t].isEmpty {
            // A task with no result and no copy out: decide here whether it is replicated.
            let check = peers[peer]!.check
            if check <= 0 { single[t] = true }
            else if check >= 1 { single[t] = false }
            else {
                single[t] = Quorum.draw(seed: quorum!.seed, taskId: t) >= check
                if !single[t] { verification.spotChecks += 1 }
            }
            needed[t] = single[t] ? 1 : 2
        }
        sendCopy(t, peer, now)
        if attempts[t] > needed[t] { counts.redispatched += 1 }
        requeue(t)
        return Assignment(taskId: t, peer: peer, attempt: attempts[t], speculative: false)
    }

    mutating func completeReplica(_ t: Int, _ peer: String, _ sha256: String, _ now: Double) -> Completion {
        var c = Completion(winner: false, mismatch: false, unexpected: false, cancel: [])
        if results[t].contains(where: { $0.peer == peer }) || status[t] == .failed { return c }
        let copy = copies[t][peer]
        peers[peer]?.pausedUntil = 0
        results[t].append((peer, sha256))
        verification.results += 1
        if status[t] == .done {
            // After acceptance: compared with the accepted digest.
            counts.discarded += 1
            if winners[t] == sha256 { c.agreed = [peer]; verification.agreed += 1 } else {
                counts.mismatches += 1
                c.mismatch = true
                c.dissented = [peer]
                verification.dissented += 1
            }
            return c
        }
        if copy != nil { copies[t][peer] = nil; peers[peer]?.running.remove(t) }
        if let h = Quorum.decide(results[t].map(\.sha256), single: single[t]) {
            // Every task is judged after each change of its results, so the digest accepted now is this result's.
            if let copy { durations.append(now - copy.sentAt) }
            return accept(t, h, winner: peer)
        }
        if results[t].count >= needed[t] {
            guard results[t].count < quorum!.maxReplicas else {
                c.cancel = copies[t].keys.sorted()
                c.failed = true
                verification.noQuorum += 1
                failTask(t, code: "no-quorum", message: "no strict majority of \(results[t].count) results agrees (at most \(quorum!.maxReplicas) copies)")
                return c
            }
            needed[t] = results[t].count + 1
        }
        if copies[t].isEmpty { status[t] = .pending }
        requeue(t)
        return c
    }

    mutating func accept(_ t: Int, _ h: String, winner: String) -> Completion {
        var c = Completion(winner: true, mismatch: false, unexpected: false, cancel: [])
        status[t] = .done
        remaining -= 1
        winners[t] = h
        peers[winner]?.won += 1
        if results[t].count == 1 { verification.unchecked += 1 } else {
            c.agreed = results[t].filter { $0.sha256 == h }.map(\.peer)
            c.dissented = results[t].filter { $0.sha256 != h }.map(\.peer)
            verification.agreed += c.agreed.count
            verification.dissented += c.dissented.count
        }
        c.cancel = copies[t].keys.sorted()
        for other in c.cancel { dropCopy(t, other) }
        retry.removeAll { $0 == t }
        return c
    }

    /// A task accepted when the results of a penalised peer stopped counting (`discount`): its digest,
    /// the peer of its latest result with that digest (whose bytes are used), and the completion.
    public struct Rejudged: Equatable, Sendable { public var taskId: Int, accepted: String, winner: String, completion: Completion }

    /// Quorum mode: `peer` was penalised, so its results no longer count in the tasks not decided yet:
    /// they are removed and each such task (in task order) is judged again on the results left. Returns
    /// the tasks accepted by that; the others want more copies.
    public mutating func discount(_ peer: String) -> [Rejudged] {
        guard quorum != nil else { return [] }
        var out: [Rejudged] = []
        for t in 0..<taskCount where (status[t] == .pending || status[t] == .running) && results[t].contains(where: { $0.peer == peer }) {
            results[t].removeAll { $0.peer == peer }
            if let h = Quorum.decide(results[t].map(\.sha256), single: single[t]) {
                let winner = results[t].last { $0.sha256 == h }!.peer
                out.append(Rejudged(taskId: t, accepted: h, winner: winner, completion: accept(t, h, winner: winner)))
            } else {
                needed[t] = max(single[t] ? 1 : 2, results[t].count + 1)
                requeue(t)
            }
        }
        return out
    }

    /// Quorum mode: tasks that want another copy that none of the job's peers may run (each holds a
    /// copy or gave a result), in task order.
    public func starved() -> [Int] {
        guard quorum != nil else { return [] }
        return retry.filter { t in wanted(t) > 0 && !peerOrder.contains { eligible(t, $0) } }.sorted()
    }

    /// Fails task `t` (quorum mode: no quorum can be reached). Returns the peers still running copies.
    public mutating func failStarved(_ t: Int, message: String) -> [String] {
        guard status[t] == .pending || status[t] == .running else { return [] }
        let cancel = copies[t].keys.sorted()
        verification.noQuorum += 1
        failTask(t, code: "no-quorum", message: message)
        return cancel
    }
}
