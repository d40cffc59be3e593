import Digest
import Dispatch
import Foundation
import Logging
import Peer
import RayTracer
import WasmTask
import Ring
import WireProtocol

/// Job options (docs/jobs.md); the same defaults as JOB_DEFAULTS in Public/browser-process.js.
public struct JobOptions: Sendable {
    public var deadlineSeconds = 60.0
    public var maxAttempts = 3
    public var maxRetries = 10
    public var maxCopies = 2
    public var speculateAfter = 1.5
    public var speculateMinSeconds = 1.0
    public var prefetch = 2
    public var maxInFlightPerPeer = 16
    public var discoverySeconds = 3.0
    public var probeIntervalSeconds = 1.0
    public var probeMisses = 5
    /// How results are verified (docs/jobs.md, "Verification by quorum").
    public enum Verify: String, Sendable, CaseIterable { case none, quorum }
    public var verify = Verify.none
    /// Quorum: results of one task at most before it fails as `no-quorum`.
    public var maxReplicas = 5
    /// Quorum: validated agreeing results in a row after which a peer is trusted (only spot-checked).
    public var trustAfter = 10
    /// Quorum: the probability that a task first sent to a trusted peer is replicated all the same.
    public var spotCheckRate = 0.1
    /// Quorum: the seed of the spot-check draws (below 2^53; nil: the engine draws one and reports it).
    public var seed: UInt64?
    public init() {}
}

/// What a finished job reports (the same fields as the browser's `stats`).
public struct JobStats: Sendable {
    public var jobId: String
    public var tasks: Int
    public var peers: [String]
    public var makespanSeconds: Double
    public var discoverySeconds: Double
    public var tasksPerPeer: [String: Int]
    public var peersLost: Int
    public var counts: Scheduler.Counts
    /// Quorum mode: its counters, the seed of its spot-check draws, and the peers penalised by this job.
    public var verification: Scheduler.Verification? = nil
    public var seed: UInt64? = nil
    public var penalised: [String] = []
    /// Runtime `wasm`: how many times the module's bytes went to a peer (once per peer lacking it).
    public var modulesSent = 0
    /// Runtime `wasm`: per peer ID, how many times the module's bytes went to it.
    public var modulesSentTo: [String: Int] = [:]
    /// Quorum mode: successful results received per task (1.0: no replication).
    public var replication: Double? {
        guard let v = verification, tasks > 0 else { return nil }
        return Double(v.results) / Double(tasks)
    }
}

public struct JobFailure: Error, CustomStringConvertible, Sendable {
    public var failures: [(task: Int, code: String, message: String)]
    public var stats: JobStats
    public var description: String {
        guard let first = failures.first else { return "job failed" }
        if failures.count == stats.tasks && first.code != "threw" { return "job failed: \(first.message)" }
        return "\(failures.count) of \(stats.tasks) tasks failed; task \(first.task): \(first.code): \(first.message)"
    }
}

/// The job engine of a native peer (docs/jobs.md, protocol bc-job/1): as a worker it answers
/// availability queries and runs `raytrace` tasks on a `WorkerPool`; as a submitter it discovers peers
/// through the overlay and drives each job's pure `JobCore`, performing its actions. Runtimes offered:
/// `raytrace` (native kernel) and `wasm` (WasmKit; modules cached by SHA-256). A `js` task is refused
/// with `unsupported`.
///
/// `@unchecked Sendable`: like `PeerNode`, all mutable state is touched only on the node's transport
/// service thread (the node's callbacks run there, `raytrace` must be called there, and worker threads
/// and the module compile queue hand results back with `transport.post`: the compile queue's closures
/// read only their own captured values, never the engine's state); `onMessage` and `step` assert it.
public final class JobEngine: @unchecked Sendable {
    public static let proto = "bc-job/1"
    public static let runtimes = ["raytrace", "wasm"]

    public let node: PeerNode
    public let pool: WorkerPool?
    public let workers: Int
    let logger: Logger
    /// Jobs submitted here and not finished: their cores and what their owners asked for.
    var jobs: [String: SubmittedJob] = [:]
    var queries: [String: (JSONValue, String) -> Void] = [:]
    var discoveries: [String: (deadline: UInt64, finish: () -> Void)] = [:]
    /// The shared data of jobs (their scene, parsed), per `src|jobId`, for `sharedCache` jobs.
    var scenes: [String: Scene] = [:]
    var sceneOrder: [String] = []
    static let sharedCache = 16
    /// Runtime `wasm`: the compiled modules held here, and each job's module digest and shared bytes
    /// (per `src|jobId`, for `sharedCache` jobs).
    public internal(set) var wasmModules = WasmModuleCache()
    var wasmShared: [String: (module: String, data: [UInt8])] = [:]
    var wasmSharedOrder: [String] = []
    /// Runtime `wasm`: the modules being decoded, checked and compiled on `wasmCompiler` (by SHA-256), each
    /// with the tasks held until it is ready; and how many tasks are held in all.
    var wasmCompiling: [String: [HeldWasmTask]] = [:]
    var wasmHeldCount = 0
    /// Runtime `wasm`: jobs submitted here whose module is being compiled (`runWasm`); they start after.
    var wasmCompilingJobs: [String: SubmittedJob] = [:]
    /// Runtime `wasm`: compiles received modules one at a time, off the service thread.
    let wasmCompiler = DispatchQueue(label: "browsercloud.wasm.compile", qos: .utility)
    /// Runtime `wasm`: modules received with their bytes (`moduleBase64`) and accepted.
    public internal(set) var modulesReceived = 0
    /// The limits applied to `wasm` tasks run here.
    public var wasmLimits = WasmLimits()
    var counter = 0
    /// Tasks run here, and how they ended (for logs and `report`).
    public internal(set) var tasksRun = 0
    /// Overlay messages that are not job messages (service thread). The engine owns `node.onMessage`.
    public var onOtherMessage: ((Envelope) -> Void)?
    /// Called on the service thread for every task run here: (from, jobId, taskId, code or nil, seconds).
    public var onTaskRun: ((String, String, Int, String?, Double) -> Void)?
    /// The record of the peers whose results this engine verified (quorum mode), across its jobs.
    public internal(set) var reputation = Reputation()
    /// A test tool's hook (bc-cheater): called on the worker thread with (jobId, taskId, result bytes),
    /// it returns the payload to send and the SHA-256 to claim for it. nil (the shipped binary): the
    /// result and its true digest.
    public typealias ResultTamper = @Sendable (_ jobId: String, _ taskId: Int, _ bytes: [UInt8]) -> (payload: [UInt8], sha256: String)
    let tamper: ResultTamper?

    public init(node: PeerNode, workers: Int, logger: Logger = Logger(label: "browsercloud.jobs"), tamper: ResultTamper? = nil) {
        self.tamper = tamper
        self.node = node
        self.workers = workers
        self.pool = workers > 0 ? WorkerPool(size: workers, maxQueued: max(4, workers)) : nil
        self.logger = logger
        node.onMessage = { [unowned self] envelope in
            if envelope.data["proto"]?.stringValue == Self.proto { self.onMessage(envelope) } else { self.onOtherMessage?(envelope) }
        }
        let previousTick = node.onTick
        node.onTick = { [unowned self] t in
            previousTick?(t)
            for (_, d) in self.discoveries where t > d.deadline { d.finish() }
            let now = Double(t) / 1e9
            for id in Array(self.jobs.keys) { self.step(id) { $0.tick(now: now) } }
        }
    }

    /// Capabilities to advertise in `register`.
    public static func capabilities(workers: Int) -> [String: JSONValue] {
        ["runtimes": .array(runtimes.map { .string($0) }), "workers": .number(Double(workers))]
    }

    func post(_ dst: String, _ body: [String: JSONValue]) {
        guard let d = PeerID(hex: dst) else { return }
        var data = body
        data["proto"] = .string(Self.proto)
        if d == node.peerId {
            let envelope = Envelope(srcId: d, dstId: d, data: .object(data), hops: 0, id: "local")
            node.transport.post { [self] in onMessage(envelope) }
            return
        }
        if !node.send(to: d, data: .object(data)), case .string(let jobId)? = body["jobId"], jobs[jobId] != nil,
           case .number(let t)? = body["taskId"], body["kind"]?.stringValue == "task" {
            jobs[jobId]!.core.sendFailed(taskId: Int(t), peer: dst, now: Self.clock())
        }
    }

    // MARK: messages

    func onMessage(_ envelope: Envelope) {
        assert(node.transport.isOnServiceThread, "JobEngine used off its node's service thread")
        guard case .object(let m) = envelope.data, let kind = m["kind"]?.stringValue, let me = node.peerId else { return }
        let src = envelope.srcId.hex
        switch kind {
        case "query":
            guard case .string? = m["qid"] else { return }
            post(src, ["kind": "available", "qid": m["qid"]!, "peerId": .string(me.hex),
                       "workers": .number(Double(pool == nil ? 0 : workers)), "free": .number(Double(max(0, (pool?.free ?? 0) - wasmHeldCount))),
                       "runtimes": .array(Self.runtimes.map { .string($0) }),
                       "successors": .array(node.ring.successors.map { .string($0.hex) })])
        case "available":
            if let qid = m["qid"]?.stringValue { queries[qid]?(envelope.data, src) }
        case "task", "probe":
            if envelope.dstId != me {
                post(src, ["kind": "gone", "jobId": m["jobId"] ?? .null, "peerId": .string(envelope.dstId.hex)])
                return
            }
            if kind == "task" { runTask(src, m) } else {
                let jobId = m["jobId"]?.stringValue ?? ""
                let held = ((pool?.keys() ?? []) + heldWasmTaskKeys).filter { $0.src == src && $0.jobId == jobId }.map { JSONValue.number(Double($0.taskId)) }
                post(src, ["kind": "probe-reply", "jobId": .string(jobId), "taskIds": .array(held)])
            }
        case "cancel":
            let jobId = m["jobId"]?.stringValue ?? ""
            let only: Set<Int>? = m["taskIds"].flatMap { v -> Set<Int>? in
                guard case .array(let a) = v else { return nil }
                return Set(a.compactMap { if case .number(let n) = $0 { return Int(exactly: n) } else { return nil } })
            }
            pool?.cancel { $0.src == src && $0.jobId == jobId && (only == nil || only!.contains($0.taskId)) }
            cancelHeldWasmTasks { $0.src == src && $0.jobId == jobId && (only == nil || only!.contains($0.taskId)) }
        case "result", "gone", "probe-reply":
            if let jobId = m["jobId"]?.stringValue { step(jobId) { $0.received(src, m, now: Self.clock()) } }
        default:
            break
        }
    }

    private func runTask(_ src: String, _ m: [String: JSONValue]) {
        guard case .string(let jobId)? = m["jobId"], case .number(let t)? = m["taskId"], let taskId = Int(exactly: t),
              case .number(let a)? = m["attempt"], let attempt = Int(exactly: a) else { return }
        let header: [String: JSONValue] = ["kind": "result", "jobId": .string(jobId), "taskId": .number(Double(taskId)), "attempt": .number(Double(attempt))]
        func refuse(_ code: String, _ message: String) {
            post(src, header.merging(["ok": .bool(false), "error": .object(["code": .string(code), "message": .string(message)])]) { $1 })
        }
        guard let pool else { refuse("stopped", "this peer does not offer its CPU"); return }
        guard case .string(let runtime)? = m["runtime"] else { return }
        if runtime == "wasm" {
            runWasmTask(src, m, jobId: jobId, taskId: taskId, header: header, pool: pool, refuse: refuse)
            return
        }
        guard runtime == "raytrace" else {
            refuse("unsupported", "this peer does not offer the '\(runtime.prefix(32))' runtime")
            return
        }
        // The job's shared data (the scene) comes with the first task to this peer; it is parsed once
        // and kept for `sharedCache` jobs.
        let sceneKey = "\(src)|\(jobId)"
        if let shared = m["shared"] {
            do {
                let parsed = try Scene(shared["scene"] ?? .null)
                if scenes.updateValue(parsed, forKey: sceneKey) == nil { sceneOrder.append(sceneKey) }
                if sceneOrder.count > Self.sharedCache { scenes[sceneOrder.removeFirst()] = nil }
            } catch {
                refuse("threw", "\(error)")
                return
            }
        }
        guard let scene = scenes[sceneKey] else {
            refuse("need-shared", "this peer does not hold the job's shared data")
            return
        }
        guard case .object(let tile)? = m["input"]?["tile"], let x = int(tile["x"]), let y = int(tile["y"]),
              let w = int(tile["width"]), let h = int(tile["height"]) else {
            refuse("bad-task", "input.tile must be {x, y, width, height} in integers")
            return
        }
        // The result travels as one overlay message (base64): refuse what no link would carry.
        let resultBytes = Double(max(0, w)) * Double(max(0, h)) * 4 * 4 / 3 + 4096
        guard resultBytes <= Double(node.configuration.maxLinkMessageBytes) else {
            refuse("too-large", "a \(w)x\(h) tile's result exceeds the link message limit of \(node.configuration.maxLinkMessageBytes) bytes: use more tiles")
            return
        }
        let deadline = Self.deadline(m)
        dispatch(src, jobId: jobId, taskId: taskId, header: header, pool: pool, deadline: deadline, refuse: refuse) { isStopped in
            do { return .ok(try scene.render(Tile(x: x, y: y, width: w, height: h), isCancelled: isStopped)) }
            catch RenderError.cancelled { return .failed(code: "stopped-by-deadline", message: "") }
            catch { return .failed(code: "threw", message: "\(error)") }
        }
    }

    static func deadline(_ m: [String: JSONValue]) -> Double {
        if case .number(let ms)? = m["deadlineMs"], ms.isFinite, ms > 0 { return min(ms / 1000, 600) }
        return JobOptions().deadlineSeconds
    }

    /// Runs `work` on the pool and posts its `result` (bytes as base64 with their SHA-256, or the error).
    func dispatch(_ src: String, jobId: String, taskId: Int, header: [String: JSONValue], pool: WorkerPool, deadline: Double,
                  refuse: (String, String) -> Void, work: @escaping @Sendable (@escaping @Sendable () -> Bool) -> TaskOutcome) {
        let key = TaskKey(src: src, jobId: jobId, taskId: taskId)
        let started = DispatchTime.now().uptimeNanoseconds
        let transport = node.transport
        let tamper = tamper
        let accepted = pool.run(key, seconds: deadline, work: work, done: { outcome in
            // Encode on the worker thread; hand the message to the service thread.
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            var body: [String: JSONValue] = ["ms": .number((seconds * 1000).rounded())]
            var code: String?
            switch outcome {
            case .ok(let bytes):
                let (payload, sha256) = tamper?(jobId, taskId, bytes) ?? (bytes, sha256Hex(bytes))
                body["ok"] = .bool(true)
                body["encoding"] = "base64"
                body["payload"] = .string(Data(payload).base64EncodedString())
                body["sha256"] = .string(sha256)
            case .failed(let c, let message):
                code = c
                body["ok"] = .bool(false)
                body["error"] = .object(["code": .string(c), "message": .string(message)])
            }
            let message = header.merging(body) { $1 }
            transport.post { [self, code] in
                tasksRun += 1
                onTaskRun?(src, jobId, taskId, code, seconds)
                if code != "cancelled" { post(src, message) }
            }
        })
        if !accepted { refuse("busy", "every worker is busy and the queue is full") }
    }
}

func int(_ v: JSONValue?) -> Int? {
    guard case .number(let n)? = v, let i = Int(exactly: n) else { return nil }
    return i
}

func free(_ a: JSONValue) -> Double {
    if case .number(let n)? = a["free"] { return n }
    return 0
}
