/// The scheduling core of a job (docs/jobs.md, "Scheduling"): pure logic, no clock, no network.
/// The same semantics as Public/process/scheduler.js: pull with credits, a deadline per dispatched
/// copy, re-dispatch of lost and late copies (first), speculative duplicates of stragglers when nothing
/// is pending (Dean & Ghemawat's backup tasks), first result wins, and failure codes that fail a task
/// at once ('threw', …) or after `maxAttempts` ('deadline', 'crashed').
public struct Scheduler: Sendable {
    public struct Assignment: Equatable, Sendable {
        public var taskId: Int, peer: String, attempt: Int, speculative: Bool
    }
    public struct Counts: Equatable, Sendable, Codable {
        public var dispatched = 0, redispatched = 0, speculative = 0, discarded = 0, mismatches = 0
        public var late = 0, lost = 0, busy = 0, failed = 0
    }
    enum Status: UInt8 { case pending, running, done, failed }
    struct Copy { var sentAt: Double; var attempt: Int }
    struct PeerSlot { var limit: Int; var running: Set<Int> = []; var won = 0; var pausedUntil = 0.0 }

    /// Codes after which a task is dispatched again; any other code fails it at once.
    static let retried: Set<String> = ["busy", "stopped", "need-shared", "lost", "corrupt", "cancelled", "deadline", "crashed"]
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

    /// Times are in seconds on any monotonic clock.
    public init(taskCount: Int, deadline: Double = 120, maxAttempts: Int = 3, maxRetries: Int = 10, maxCopies: Int = 2, speculateAfter: Double = 1.5, speculateMin: Double = 1) {
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

    public mutating func addPeer(_ peer: String, limit: Int) {
        if peers[peer] != nil { peers[peer]!.limit = max(1, limit); return }
        peers[peer] = PeerSlot(limit: max(1, limit))
        peerOrder.append(peer)
    }

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

    public struct Completion: Equatable, Sendable { public var winner: Bool, mismatch: Bool, unexpected: Bool, cancel: [String] }

    public mutating func complete(_ t: Int, from peer: String, sha256: String, now: Double) -> Completion {
        guard t >= 0, t < taskCount, sentTo[t].contains(peer) else { return Completion(winner: false, mismatch: false, unexpected: true, cancel: []) }
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
        else if Self.retried.contains(code) && !Self.declined.contains(code) && code != "need-shared" { retries[t] += 1 }
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
        attempts[t] += 1
        status[t] = .running
        copies[t][peer] = Copy(sentAt: now, attempt: attempts[t])
        sentTo[t].insert(peer)
        peers[peer]!.running.insert(t)
        counts.dispatched += 1
        if speculative { counts.speculative += 1 } else if attempts[t] > 1 { counts.redispatched += 1 }
        return Assignment(taskId: t, peer: peer, attempt: attempts[t], speculative: speculative)
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
