import Dispatch
import Foundation
import WireProtocol

/// One job submitted from this peer: discovery, dispatch, probes, deadlines and assembly (docs/jobs.md).
/// Service thread only (see `JobEngine`).
final class Job {
    unowned let engine: JobEngine
    let id: String
    let runtime: String
    let shared: JSONValue
    let inputs: [JSONValue]
    let nPeers: Int
    let options: JobOptions
    var scheduler: Scheduler
    var wins: [String: Int] = [:]
    var probes: [String: (sentAt: Double, misses: Int)] = [:]
    var gone = Set<String>()
    var sharedSent = Set<String>()     // peers that got the job's shared data
    var declines: [String: Int] = [:]  // tasks declined in a row, per peer
    static let maxDeclines = 20
    var everUsed: [String] = []
    var peersLost = 0
    var lastDiscovery = 0.0
    var discovering = false
    var settled = false
    var started = 0.0
    var discoverySeconds = 0.0
    var lastTick = 0.0
    /// Returns false when the result is unusable (then treated as corrupt).
    var onResult: ((Int, [UInt8]) -> Bool)?
    var onProgress: ((Int, Int) -> Void)?
    var onFinish: ((Result<JobStats, JobFailure>) -> Void)?

    init(engine: JobEngine, id: String, runtime: String, shared: JSONValue, inputs: [JSONValue], nPeers: Int, options: JobOptions) {
        self.engine = engine
        self.id = id
        self.runtime = runtime
        self.shared = shared
        self.inputs = inputs
        self.nPeers = max(1, nPeers)
        self.options = options
        scheduler = Scheduler(taskCount: inputs.count, deadline: 2 * options.deadlineSeconds + 2, maxAttempts: options.maxAttempts, maxRetries: options.maxRetries,
                              maxCopies: options.maxCopies, speculateAfter: options.speculateAfter, speculateMin: options.speculateMinSeconds)
    }

    static func clock() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    func start() {
        started = Self.clock()
        if inputs.isEmpty { finish(); return }
        discovering = true   // ticks wait for the first discovery
        lastDiscovery = started
        engine.discover(nPeers, runtime: runtime, seconds: options.discoverySeconds, exclude: []) { [self] found in
            discovering = false
            discoverySeconds = Self.clock() - started
            if found.isEmpty {
                cancel("unsupported", "no peer offers the '\(runtime)' runtime (discovery waited \(options.discoverySeconds) s)")
                return
            }
            for a in found { addPeer(a) }
            pump()
        }
    }

    func cancel(_ code: String, _ message: String) {
        guard !settled else { return }
        scheduler.abort(code: code, message: message)
        finish()
    }

    func addPeer(_ answer: JSONValue) {
        guard let peer = answer["peerId"]?.stringValue else { return }
        let workers = int(answer["workers"]) ?? 1
        scheduler.addPeer(peer, limit: min(options.maxInFlightPerPeer, workers + options.prefetch))
        if !everUsed.contains(peer) { everUsed.append(peer) }
        if peer != engine.node.peerId?.hex { probes[peer] = (0, 0) }
    }

    func lose(_ peer: String, reason: String) {
        guard scheduler.peerIDs.contains(peer) else { return }
        gone.insert(peer)
        sharedSent.remove(peer)
        declines[peer] = nil
        probes[peer] = nil
        peersLost += 1
        scheduler.removePeer(peer)
        engine.logger.info("job \(id): peer \(peer) lost (\(reason)); its tasks go to others")
    }

    func sendFailed(taskId: Int, peer: String) {
        sharedSent.remove(peer)
        _ = scheduler.fail(taskId, from: peer, code: "lost", message: "no route to the peer", now: Self.clock())
    }

    func onMessage(_ src: String, _ m: [String: JSONValue]) {
        guard !settled else { return }
        let now = Self.clock()
        switch m["kind"]?.stringValue {
        case "gone":
            // Only the peer now responsible for the ID says so; nobody reports itself or this peer gone.
            if let p = m["peerId"]?.stringValue, p != src, p != engine.node.peerId?.hex { lose(p, reason: "gone") }
        case "probe-reply":
            guard let probe = probes[src], case .array(let held)? = m["taskIds"] else { return }
            probes[src]!.misses = 0
            let holding = Set(held.compactMap { int($0) })
            for t in scheduler.running(on: src, before: probe.sentAt - options.probeIntervalSeconds) where !holding.contains(t) {
                _ = scheduler.fail(t, from: src, code: "lost", message: "the peer does not hold the task", now: now)
            }
        case "result":
            guard let t = int(m["taskId"]), t >= 0, t < scheduler.taskCount else { return }
            onResult(src, t, m, now)
        default:
            return
        }
        pump()
    }

    private func onResult(_ src: String, _ t: Int, _ m: [String: JSONValue], _ now: Double) {
        guard m["ok"] == .bool(true) else {
            let code = m["error"]?["code"]?.stringValue ?? "threw"
            let message = String((m["error"]?["message"]?.stringValue ?? "unknown error").prefix(1000))
            if code == "need-shared" { sharedSent.remove(src) }
            if code == "busy" || code == "stopped" {
                declines[src, default: 0] += 1
                if declines[src]! >= Self.maxDeclines { lose(src, reason: "declining"); return }
            }
            let f = scheduler.fail(t, from: src, code: code, message: message, now: now)
            if f.failed {
                cancelCopies(t, f.cancel)
                engine.logger.warning("job \(id): task \(t) failed: \(code): \(message)")
            }
            return
        }
        guard m["encoding"]?.stringValue == "base64", let payload = m["payload"]?.stringValue,
              let data = Data(base64Encoded: payload), let claimed = m["sha256"]?.stringValue else {
            _ = scheduler.fail(t, from: src, code: "corrupt", message: "a result must carry a base64 payload and its SHA-256", now: now)
            return
        }
        let bytes = [UInt8](data)
        let sha = sha256Hex(bytes)
        guard sha == claimed else {
            _ = scheduler.fail(t, from: src, code: "corrupt", message: "the SHA-256 of the result does not match its bytes", now: now)
            return
        }
        declines[src] = nil
        let c = scheduler.complete(t, from: src, sha256: sha, now: now)
        if c.mismatch { engine.logger.error("job \(id): task \(t): copies from different peers differ") }
        guard c.winner else { return }
        if onResult?(t, bytes) == false { engine.logger.error("job \(id): task \(t): result of the wrong size from \(src)") }
        wins[src, default: 0] += 1
        cancelCopies(t, c.cancel)
        onProgress?(scheduler.taskCount - scheduler.remaining, scheduler.taskCount)
    }

    func pump() {
        guard !settled else { return }
        guard engine.node.peerId != nil else { cancel("stopped", "this peer left the ring"); return }
        for a in scheduler.assign(now: Self.clock()) {
            var task: [String: JSONValue] = ["kind": "task", "jobId": .string(id), "taskId": .number(Double(a.taskId)), "attempt": .number(Double(a.attempt)),
                                             "runtime": .string(runtime), "input": inputs[a.taskId], "deadlineMs": .number(options.deadlineSeconds * 1000)]
            if sharedSent.insert(a.peer).inserted { task["shared"] = shared }
            engine.post(a.peer, task)
        }
        if scheduler.finished { finish() }
    }

    func tick() {
        guard !settled else { return }
        let now = Self.clock()
        guard now - lastTick >= 0.2 else { return }
        lastTick = now
        for e in scheduler.expired(now: now) where e.failure.failed { cancelCopies(e.taskId, e.failure.cancel) }
        for (peer, probe) in probes {
            if now - probe.sentAt < options.probeIntervalSeconds || scheduler.running(on: peer).isEmpty { continue }
            if probe.sentAt > 0 {
                probes[peer]!.misses += 1
                if probes[peer]!.misses >= options.probeMisses { lose(peer, reason: "unreachable"); continue }
            }
            probes[peer]!.sentAt = now
            engine.post(peer, ["kind": "probe", "jobId": .string(id)])
        }
        rediscover(now)
        pump()
    }

    private func rediscover(_ now: Double) {
        let active = scheduler.peerIDs.count
        guard !discovering, active < nPeers, scheduler.pending > 0, now - lastDiscovery >= 2 else { return }
        discovering = true
        lastDiscovery = now
        // Peers reported gone may be found again: a peer that answers discovery is alive.
        let exclude = Set(scheduler.peerIDs)
        engine.discover(nPeers - active, runtime: runtime, seconds: options.discoverySeconds, exclude: exclude) { [self] found in
            discovering = false
            guard !settled else { return }
            for a in found { addPeer(a) }
            if scheduler.peerIDs.isEmpty { cancel("no-peers", "every peer of the job left and discovery found no other") } else { pump() }
        }
    }

    private func cancelCopies(_ t: Int, _ peers: [String]) {
        for p in peers { engine.post(p, ["kind": "cancel", "jobId": .string(id), "taskIds": .array([.number(Double(t))])]) }
    }

    private func finish() {
        guard !settled else { return }
        settled = true
        for p in scheduler.peerIDs where !scheduler.running(on: p).isEmpty { engine.post(p, ["kind": "cancel", "jobId": .string(id)]) }
        let stats = JobStats(jobId: id, tasks: scheduler.taskCount, peers: everUsed, makespanSeconds: Self.clock() - started,
                             discoverySeconds: discoverySeconds, tasksPerPeer: wins, peersLost: peersLost, counts: scheduler.counts)
        let failures = scheduler.errors.sorted { $0.key < $1.key }.map { (task: $0.key, code: $0.value.code, message: $0.value.message) }
        onFinish?(failures.isEmpty ? .success(stats) : .failure(JobFailure(failures: failures, stats: stats)))
    }
}
