import Digest
import Foundation
import Logging
import WireProtocol

/// What `JobCore` asks its shell (`JobEngine`) to do, in order.
public enum JobAction: Sendable {
    /// Send a bc-job/1 message to a peer (the shell adds `proto`). When a `task` cannot be routed, the
    /// shell reports it with `JobCore.sendFailed`.
    case post(peer: String, body: [String: JSONValue])
    /// Find up to `count` peers offering the job's runtime, not in `exclude`; report the answers with
    /// `JobCore.discovered`.
    case discover(count: Int, exclude: Set<String>)
    /// Task `taskId` has its first verified result (the shell assembles it).
    case result(taskId: Int, from: String, bytes: [UInt8])
    case progress(done: Int, total: Int)
    /// Quorum mode: results of these peers agreed with / differed from an accepted result (the shell
    /// records it in its `Reputation`, which later jobs start from).
    case verdict(agreed: [String], dissented: [String])
    /// The job is over (success, or the failed tasks); no actions follow.
    case finish(Result<JobStats, JobFailure>)
    case log(Logger.Level, String)
}

/// The pure core of one job submitted from this peer (docs/jobs.md, protocol bc-job/1): it drives a
/// `Scheduler` with peers from discovery, dispatches tasks (the shared data goes with the first task
/// to each peer), verifies results (the SHA-256 of the payload must match the one claimed), probes
/// the peers holding tasks, loses peers that are gone, unreachable or keep declining (their tasks go
/// to others), asks for more peers when too few remain, and finishes. No clock, no network, no
/// threads: events go in with `now` (seconds of a monotonic clock), `JobAction`s come out.
public struct JobCore: Sendable {
    public let id: String
    public let runtime: String
    public let shared: JSONValue
    /// Runtime `wasm`: `shared` with `moduleBase64` added, sent to a peer that answered `need-module`.
    public let sharedWithModule: JSONValue?
    public let inputs: [JSONValue]
    public let nPeers: Int
    public let options: JobOptions
    /// This peer's ID (hex): it is never probed, nor believed gone.
    public let me: String
    public private(set) var scheduler: Scheduler
    /// The engine's reputation when the job started, updated with this job's verdicts (quorum mode).
    public private(set) var reputation: Reputation
    var penalised: [String] = []
    var held: [Int: [String: [UInt8]]] = [:]
    var wins: [String: Int] = [:]
    var probes: [String: (sentAt: Double, misses: Int)] = [:]
    var sharedSent = Set<String>()     // peers that got the job's shared data
    var needsModule = Set<String>()    // runtime `wasm`: peers that answered `need-module`
    // Runtime `wasm`: the tasks posted to each peer are numbered (per peer); the number of each task's
    // last post there, and of the post that carried the module. A `need-module` for a task posted
    // before the module (tasks in flight) is no reason to send the module again; one posted after it is
    // (the peer evicted the module).
    var postsTo: [String: Int] = [:]
    var postNumber: [Int: [String: Int]] = [:]
    var moduleAt: [String: Int] = [:]
    /// Runtime `wasm`: how many times the module's bytes were sent (to peers lacking it).
    public private(set) var modulesSent = 0
    /// Runtime `wasm`: per peer, how many times the module's bytes were sent to it.
    public private(set) var modulesSentTo: [String: Int] = [:]
    var declines: [String: Int] = [:]  // tasks declined in a row, per peer
    static let maxDeclines = 20
    var everUsed: [String] = []
    var peersLost = 0
    var lastDiscovery = 0.0
    var discovering = false
    var firstDiscoveryDone = false
    public private(set) var settled = false
    var started = 0.0
    var discoverySeconds = 0.0
    var lastTick = 0.0

    /// `options.seed` is used for the spot-check draws (0 when nil: the shell draws a seed first);
    /// `reputation` is the engine's record of peers (quorum mode: penalised peers are avoided, trusted
    /// ones only spot-checked).
    /// `sharedWithModule` (runtime `wasm`): the shared data with the module's bytes, for peers that
    /// answer `need-module` (docs/jobs.md, "The `wasm` runtime").
    public init(id: String, runtime: String, shared: JSONValue, sharedWithModule: JSONValue? = nil, inputs: [JSONValue], nPeers: Int,
                options: JobOptions, me: String, reputation: Reputation = Reputation()) {
        self.id = id
        self.sharedWithModule = sharedWithModule
        self.reputation = reputation
        self.runtime = runtime
        self.shared = shared
        self.inputs = inputs
        self.nPeers = max(1, nPeers)
        self.options = options
        self.me = me
        scheduler = Scheduler(taskCount: inputs.count, deadline: 2 * options.deadlineSeconds + 2, maxAttempts: options.maxAttempts, maxRetries: options.maxRetries,
                              maxCopies: options.maxCopies, speculateAfter: options.speculateAfter, speculateMin: options.speculateMinSeconds,
                              quorum: options.verify == .quorum ? Scheduler.QuorumMode(maxReplicas: options.maxReplicas, seed: options.seed ?? 0) : nil)
    }

    /// Starts the job: the first discovery (ticks wait for it), or the end of a job without tasks.
    public mutating func start(now: Double) -> [JobAction] {
        started = now
        if inputs.isEmpty { return finish(now: now) }
        discovering = true
        lastDiscovery = now
        return [.discover(count: nPeers, exclude: avoided)]
    }

    /// The answers of the discovery asked for (`available` messages, this peer first if it works).
    public mutating func discovered(_ found: [JSONValue], now: Double) -> [JobAction] {
        discovering = false
        guard !settled else { return [] }
        if !firstDiscoveryDone {
            firstDiscoveryDone = true
            discoverySeconds = now - started
            if found.isEmpty {
                return cancel("unsupported", "no peer offers the '\(runtime)' runtime (discovery waited \(options.discoverySeconds) s)", now: now)
            }
            for a in found { addPeer(a) }
            return pump(now: now)
        }
        for a in found { addPeer(a) }
        if scheduler.peerIDs.isEmpty { return cancel("no-peers", "every peer of the job left and discovery found no other", now: now) }
        var actions: [JobAction] = []
        for t in scheduler.starved() {
            let cancel = scheduler.failStarved(t, message: "not enough distinct peers to reach a quorum (discovery found no other)")
            actions += cancelCopies(t, cancel) + [.log(.warning, "job \(id): task \(t) failed: no-quorum: not enough distinct peers")]
        }
        return actions + pump(now: now)
    }

    /// Fails every unfinished task with `code` and finishes.
    public mutating func cancel(_ code: String, _ message: String, now: Double) -> [JobAction] {
        guard !settled else { return [] }
        scheduler.abort(code: code, message: message)
        return finish(now: now)
    }

    var quorum: Bool { options.verify == .quorum }
    /// Peers discovery leaves out: in quorum mode, those penalised.
    var avoided: Set<String> { quorum ? Set(reputation.avoidedPeers) : [] }

    /// Quorum mode: the probability that a task first sent to `peer` is replicated (0 for this peer).
    func check(_ peer: String) -> Double {
        peer == me ? 0 : reputation.check(peer, trustAfter: options.trustAfter, spotCheckRate: options.spotCheckRate)
    }

    mutating func addPeer(_ answer: JSONValue) {
        guard let peer = answer["peerId"]?.stringValue, !(quorum && reputation.avoided(peer)) else { return }
        let workers = int(answer["workers"]) ?? 1
        scheduler.addPeer(peer, limit: min(options.maxInFlightPerPeer, workers + options.prefetch), check: check(peer))
        if !everUsed.contains(peer) { everUsed.append(peer) }
        if peer != me { probes[peer] = (0, 0) }
    }

    /// The peer is lost: its running tasks go back to pending.
    public mutating func lose(_ peer: String, reason: String) -> [JobAction] {
        guard scheduler.peerIDs.contains(peer) else { return [] }
        sharedSent.remove(peer)
        declines[peer] = nil
        probes[peer] = nil
        peersLost += 1
        scheduler.removePeer(peer)
        return [.log(.info, "job \(id): peer \(peer) lost (\(reason)); its tasks go to others")]
    }

    /// A `task` message could not be routed to `peer`.
    public mutating func sendFailed(taskId: Int, peer: String, now: Double) {
        sharedSent.remove(peer)
        _ = scheduler.fail(taskId, from: peer, code: "lost", message: "no route to the peer", now: now)
    }

    /// A bc-job/1 message for this job from `src`: `gone`, `probe-reply` or `result`.
    public mutating func received(_ src: String, _ m: [String: JSONValue], now: Double) -> [JobAction] {
        guard !settled else { return [] }
        var actions: [JobAction] = []
        switch m["kind"]?.stringValue {
        case "gone":
            // Only the peer now responsible for the ID says so; nobody reports itself or this peer gone.
            if let p = m["peerId"]?.stringValue, p != src, p != me { actions += lose(p, reason: "gone") }
        case "probe-reply":
            guard let probe = probes[src], case .array(let held)? = m["taskIds"] else { return [] }
            probes[src]!.misses = 0
            let holding = Set(held.compactMap { int($0) })
            for t in scheduler.running(on: src, before: probe.sentAt - options.probeIntervalSeconds) where !holding.contains(t) {
                _ = scheduler.fail(t, from: src, code: "lost", message: "the peer does not hold the task", now: now)
            }
        case "result":
            guard let t = int(m["taskId"]), t >= 0, t < scheduler.taskCount else { return [] }
            actions += result(src, t, m, now)
        default:
            return []
        }
        return actions + pump(now: now)
    }

    mutating func result(_ src: String, _ t: Int, _ m: [String: JSONValue], _ now: Double) -> [JobAction] {
        guard m["ok"] == .bool(true) else {
            let code = m["error"]?["code"]?.stringValue ?? "threw"
            let message = String((m["error"]?["message"]?.stringValue ?? "unknown error").prefix(1000))
            if code == "need-shared" { sharedSent.remove(src) }
            if code == "need-module", sharedWithModule != nil, (postNumber[t]?[src] ?? 0) >= (moduleAt[src] ?? 0) {
                sharedSent.remove(src)
                needsModule.insert(src)
            }
            if code == "busy" || code == "stopped" {
                declines[src, default: 0] += 1
                if declines[src]! >= Self.maxDeclines { return lose(src, reason: "declining") }
            }
            let f = scheduler.fail(t, from: src, code: code, message: message, now: now)
            guard f.failed else { return [] }
            return cancelCopies(t, f.cancel) + [.log(.warning, "job \(id): task \(t) failed: \(code): \(message)")]
        }
        guard m["encoding"]?.stringValue == "base64", let payload = m["payload"]?.stringValue,
              let data = Data(base64Encoded: payload), let claimed = m["sha256"]?.stringValue else {
            _ = scheduler.fail(t, from: src, code: "corrupt", message: "a result must carry a base64 payload and its SHA-256", now: now)
            return []
        }
        let bytes = [UInt8](data)
        let sha = sha256Hex(bytes)
        guard sha == claimed else {
            _ = scheduler.fail(t, from: src, code: "corrupt", message: "the SHA-256 of the result does not match its bytes", now: now)
            return []
        }
        declines[src] = nil
        if quorum && reputation.avoided(src) { return [] }   // penalised: its results no longer count
        // The bytes of each digest of a task not decided yet (quorum mode: a later verdict may accept them).
        held[t, default: [:]][sha] = bytes
        let c = scheduler.complete(t, from: src, sha256: sha, now: now)
        var actions: [JobAction] = []
        if c.mismatch && !quorum { actions.append(.log(.error, "job \(id): task \(t): copies from different peers differ")) }
        if c.winner { actions += accepted(t, from: src, digest: sha) + cancelCopies(t, c.cancel) }
        if !scheduler.isOpen(t) { held[t] = nil }
        if !c.agreed.isEmpty || !c.dissented.isEmpty { actions += verdict(t, agreed: c.agreed, dissented: c.dissented) }
        if c.failed {
            actions += cancelCopies(t, c.cancel) + [.log(.warning, "job \(id): task \(t) failed: no-quorum: its results disagree")]
        }
        return actions
    }

    /// Task `t` has its result: the bytes of `digest` from `peer`.
    mutating func accepted(_ t: Int, from peer: String, digest: String) -> [JobAction] {
        guard let bytes = held.removeValue(forKey: t)?[digest] else { return [.log(.error, "job \(id): task \(t): no bytes for the accepted digest")] }
        wins[peer, default: 0] += 1
        return [.result(taskId: t, from: peer, bytes: bytes), .progress(done: scheduler.taskCount - scheduler.remaining, total: scheduler.taskCount)]
    }

    /// Quorum mode: records agreement and penalties. A penalised peer leaves the job (its copies go to
    /// others), its results stop counting in the tasks not decided yet (which are judged again: some may
    /// be accepted now), and later jobs avoid it; a peer that became trusted is only spot-checked from now on.
    mutating func verdict(_ t: Int, agreed: [String], dissented: [String]) -> [JobAction] {
        var actions: [JobAction] = [.verdict(agreed: agreed, dissented: dissented)]
        for p in agreed where p != me {
            reputation.agree(p)
            if scheduler.peerIDs.contains(p) { scheduler.setCheck(p, check(p)) }
        }
        for p in dissented where p != me {
            reputation.penalise(p)
            guard !penalised.contains(p) else { continue }
            penalised.append(p)
            actions.append(.log(.warning, "job \(id): task \(t): the result of \(p) differs from the accepted one: penalised"))
            actions += lose(p, reason: "penalised")
            for r in scheduler.discount(p) {
                actions += accepted(r.taskId, from: r.winner, digest: r.accepted) + cancelCopies(r.taskId, r.completion.cancel)
                actions += verdict(r.taskId, agreed: r.completion.agreed, dissented: r.completion.dissented)
            }
        }
        return actions
    }

    /// Dispatches what the scheduler assigns; finishes when every task has ended.
    mutating func pump(now: Double) -> [JobAction] {
        guard !settled else { return [] }
        var actions: [JobAction] = []
        for a in scheduler.assign(now: now) {
            var task: [String: JSONValue] = ["kind": "task", "jobId": .string(id), "taskId": .number(Double(a.taskId)), "attempt": .number(Double(a.attempt)),
                                             "runtime": .string(runtime), "input": inputs[a.taskId], "deadlineMs": .number(options.deadlineSeconds * 1000)]
            if sharedWithModule != nil {
                postsTo[a.peer, default: 0] += 1
                postNumber[a.taskId, default: [:]][a.peer] = postsTo[a.peer]!
            }
            if sharedSent.insert(a.peer).inserted {
                if let withModule = sharedWithModule, needsModule.remove(a.peer) != nil {
                    task["shared"] = withModule
                    modulesSent += 1
                    modulesSentTo[a.peer, default: 0] += 1
                    moduleAt[a.peer] = postsTo[a.peer]!
                } else {
                    task["shared"] = shared
                }
            }
            actions.append(.post(peer: a.peer, body: task))
        }
        if scheduler.finished { actions += finish(now: now) }
        return actions
    }

    /// Housekeeping (at most every 0.2 s): deadlines, probes of the peers holding tasks, rediscovery.
    public mutating func tick(now: Double) -> [JobAction] {
        guard !settled, now - lastTick >= 0.2 else { return [] }
        lastTick = now
        var actions: [JobAction] = []
        for e in scheduler.expired(now: now) where e.failure.failed { actions += cancelCopies(e.taskId, e.failure.cancel) }
        for (peer, probe) in probes.sorted(by: { $0.key < $1.key }) {
            if now - probe.sentAt < options.probeIntervalSeconds || scheduler.running(on: peer).isEmpty { continue }
            if probe.sentAt > 0 {
                probes[peer]!.misses += 1
                if probes[peer]!.misses >= options.probeMisses { actions += lose(peer, reason: "unreachable"); continue }
            }
            probes[peer]!.sentAt = now
            actions.append(.post(peer: peer, body: ["kind": "probe", "jobId": .string(id)]))
        }
        actions += rediscover(now)
        return actions + pump(now: now)
    }

    mutating func rediscover(_ now: Double) -> [JobAction] {
        let active = scheduler.peerIDs.count
        let starved = !scheduler.starved().isEmpty
        guard !discovering, (active < nPeers && scheduler.pending > 0) || starved, now - lastDiscovery >= 2 else { return [] }
        discovering = true
        lastDiscovery = now
        // Peers reported gone may be found again: a peer that answers discovery is alive.
        return [.discover(count: max(1, nPeers - active), exclude: Set(scheduler.peerIDs).union(avoided))]
    }

    func cancelCopies(_ t: Int, _ peers: [String]) -> [JobAction] {
        peers.map { .post(peer: $0, body: ["kind": "cancel", "jobId": .string(id), "taskIds": .array([.number(Double(t))])]) }
    }

    mutating func finish(now: Double) -> [JobAction] {
        guard !settled else { return [] }
        settled = true
        var actions: [JobAction] = scheduler.peerIDs.filter { !scheduler.running(on: $0).isEmpty }
            .map { .post(peer: $0, body: ["kind": "cancel", "jobId": .string(id)]) }
        let stats = JobStats(jobId: id, tasks: scheduler.taskCount, peers: everUsed, makespanSeconds: now - started,
                             discoverySeconds: discoverySeconds, tasksPerPeer: wins, peersLost: peersLost, counts: scheduler.counts,
                             verification: quorum ? scheduler.verification : nil, seed: quorum ? scheduler.quorum!.seed : nil, penalised: penalised,
                             modulesSent: modulesSent, modulesSentTo: modulesSentTo)
        let failures = scheduler.errors.sorted { $0.key < $1.key }.map { (task: $0.key, code: $0.value.code, message: $0.value.message) }
        actions.append(.finish(failures.isEmpty ? .success(stats) : .failure(JobFailure(failures: failures, stats: stats))))
        return actions
    }
}
