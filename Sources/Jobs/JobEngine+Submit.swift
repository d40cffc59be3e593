import Dispatch
import Foundation
import Peer
import RayTracer
import Ring
import WireProtocol

/// The submitting side of `JobEngine` (docs/jobs.md): discovery through the overlay, and the shell of
/// each job's `JobCore` (it feeds the core messages, ticks and discovery answers, and performs the
/// actions that come back).
extension JobEngine {
    // MARK: submitting

    /// Finds up to `n` peers offering `runtime` through the overlay (docs/jobs.md, "Discovery").
    /// `done` runs on the service thread with the answers, this peer first when it offers workers.
    func discover(_ n: Int, runtime: String, seconds: Double, exclude: Set<String>, done: @escaping ([JSONValue]) -> Void) {
        guard let me = node.peerId?.hex else { done([]); return }
        var found: [String: JSONValue] = [:]
        if pool != nil, !exclude.contains(me) {
            found[me] = .object(["peerId": .string(me), "workers": .number(Double(workers)), "free": .number(Double(pool!.free)),
                                 "runtimes": .array(Self.runtimes.map { .string($0) })])
        }
        func eligible() -> [JSONValue] {
            found.values.filter { a in
                guard case .number(let w)? = a["workers"], w > 0, case .array(let rs)? = a["runtimes"],
                      rs.contains(.string(runtime)), let id = a["peerId"]?.stringValue, !exclude.contains(id) else { return false }
                return true
            }
        }
        counter += 1
        let qid = "\(me)-q\(counter)"
        var asked = Set<String>()
        var answered = Set<String>()
        let k = min(64, max(n, 4))
        let maxQueries = 2 * k + 2 * n
        var outstanding = 0
        var finished = false
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        func finish() {
            guard !finished else { return }
            finished = true
            queries[qid] = nil
            discoveries[qid] = nil
            let list = eligible()
            let mine = list.filter { $0["peerId"]?.stringValue == me }
            let others = list.filter { $0["peerId"]?.stringValue != me }.sorted { free($0) > free($1) }
            done(Array((mine + others).prefix(n)))
        }
        func ask(_ target: String) {
            guard !asked.contains(target), asked.count < maxQueries else { return }
            asked.insert(target)
            outstanding += 1
            post(target, ["kind": "query", "qid": .string(qid)])
        }
        queries[qid] = { answer, src in
            guard answered.insert(src).inserted else { return }   // one answer per peer
            outstanding -= 1
            if answer["peerId"]?.stringValue == src { found[src] = answer }
            if eligible().count < n, case .array(let s)? = answer["successors"] {
                for case .string(let id) in s.prefix(16) where PeerID(hex: id) != nil && found[id] == nil && id != me { ask(id) }
            }
            if eligible().count >= n || outstanding <= 0 { finish() }
        }
        discoveries[qid] = (deadline, finish)
        if eligible().count >= n { finish(); return }
        let base = UInt64.random(in: 0..<PeerID.spaceSize)
        for i in 0..<k {
            ask(PeerID(base &+ UInt64(i) * (PeerID.spaceSize / UInt64(k))).hex)
        }
    }

    /// Renders `sceneJSON` as `tiles` tasks on up to `peers` peers. `progress(done, total)` and the
    /// completion run on the service thread. The image is assembled in place; its bytes do not depend
    /// on the tiling or on who rendered what.
    public func raytrace(sceneJSON: JSONValue, tiles count: Int, peers: Int, options: JobOptions = JobOptions(),
                         progress: @escaping (Int, Int) -> Void = { _, _ in },
                         completion: @escaping (Result<(image: [UInt8], width: Int, height: Int, stats: JobStats), JobFailure>) -> Void) throws {
        let scene = try Scene(sceneJSON)
        let grid = tiles(width: scene.width, height: scene.height, count: count)
        var image = [UInt8](repeating: 0, count: scene.width * scene.height * 4)
        let inputs: [JSONValue] = grid.map { t in
            .object(["tile": .object(["x": .number(Double(t.x)), "y": .number(Double(t.y)),
                                      "width": .number(Double(t.width)), "height": .number(Double(t.height))])])
        }
        counter += 1
        let me = node.peerId?.hex ?? "0"
        let jobId = "\(me)-\(counter)-\(UInt32.random(in: 0...UInt32.max))"
        var options = options
        if options.verify == .quorum && options.seed == nil { options.seed = UInt64.random(in: 0..<(1 << 53)) }
        var core = JobCore(id: jobId, runtime: "raytrace", shared: .object(["scene": sceneJSON]), inputs: inputs, nPeers: peers, options: options, me: me,
                           reputation: reputation)
        let actions = core.start(now: Self.clock())
        jobs[jobId] = SubmittedJob(core: core, onResult: { i, bytes in
            guard bytes.count == grid[i].width * grid[i].height * 4 else { return false }
            blit(&image, imageWidth: scene.width, tile: grid[i], pixels: bytes)
            return true
        }, onProgress: progress, onFinish: { result in
            switch result {
            case .success(let stats): completion(.success((image, scene.width, scene.height, stats)))
            case .failure(let f): completion(.failure(f))
            }
        })
        perform(jobId, actions)
    }

    /// Feeds one event to a job's core and performs its actions. A job whose peer left the ring
    /// (no peer ID) is cancelled instead.
    func step(_ id: String, _ event: (inout JobCore) -> [JobAction]) {
        assert(node.transport.isOnServiceThread, "JobEngine used off its node's service thread")
        guard var job = jobs[id] else { return }
        let actions = node.peerId == nil ? job.core.cancel("stopped", "this peer left the ring", now: Self.clock()) : event(&job.core)
        jobs[id] = job
        perform(id, actions)
    }

    func perform(_ id: String, _ actions: [JobAction]) {
        for action in actions {
            guard let job = jobs[id] else { return }
            switch action {
            case .post(let peer, let body):
                post(peer, body)
            case .discover(let count, let exclude):
                discover(count, runtime: job.core.runtime, seconds: job.core.options.discoverySeconds, exclude: exclude) { [unowned self] found in
                    step(id) { $0.discovered(found, now: Self.clock()) }
                }
            case .result(let t, let from, let bytes):
                if !job.onResult(t, bytes) { logger.error("job \(id): task \(t): result of the wrong size from \(from)") }
            case .progress(let done, let total):
                job.onProgress(done, total)
            case .verdict(let agreed, let dissented):
                for p in agreed where p != node.peerId?.hex { reputation.agree(p) }
                for p in dissented where p != node.peerId?.hex { reputation.penalise(p) }
            case .finish(let result):
                jobs[id] = nil
                job.onFinish(result)
            case .log(let level, let text):
                logger.log(level: level, "\(text)")
            }
        }
    }

    /// Seconds of the monotonic clock (the cores' `now`).
    static func clock() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A job submitted from this peer: its core, and where its results, progress and end go (service
/// thread only).
struct SubmittedJob {
    var core: JobCore
    /// Assembles a verified result; false when it is unusable (logged).
    let onResult: (Int, [UInt8]) -> Bool
    let onProgress: (Int, Int) -> Void
    let onFinish: (Result<JobStats, JobFailure>) -> Void
}
