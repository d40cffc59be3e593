import ArgumentParser
import Synchronization
import Foundation
import Digest
import Jobs
import Logging
import PNG
import Peer
import RayTracer
import Ring
import Transport
import WireProtocol

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the ring, submit a job, wait for its result.", subcommands: [SubmitRaytrace.self, SubmitWasm.self])
}

struct SubmitRaytrace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raytrace",
        abstract: "Render a scene across the ring and write the image (PNG, or PPM for a .ppm name).")

    @Option(help: "Rendezvous server, ws://host:port; or a comma list of the servers of one cluster, tried in turn after a connection fails or closes (docs/cluster.md).") var server: ServerAddress
    @Option(help: "A scene file, or the name of a shipped scene (small, odd, medium, standard).") var scene: String
    @Option(help: "Directory of the shipped scenes (default: Public/scenes of the working directory or of the source tree).") var scenes: String?
    @Option(help: "Tasks (tiles).") var tiles = 400
    @Option(help: "Peers to use at most.") var peers = 8
    @Option(help: "Output image.") var out: String
    @Option(help: "Worker threads this submitting peer also offers (0: submit only).") var workers = 0
    @Option(help: "Seconds a task may run on a worker before it is stopped there.") var deadline = 60.0
    @Option(help: "Seconds the first discovery waits for peers' availability answers at most (it ends sooner once enough peers or every asked peer answered; docs/jobs.md, \"Discovery\").") var discoveryWait = 3.0
    @Option(help: "Address and port for WebSocket links.") var listen = ListenAddress(argument: "127.0.0.1:0")!
    @Option(help: "URL other peers dial.") var advertise: String?
    @Option(help: "Seconds to wait for the ring before giving up.") var joinTimeout = 30.0
    @Option(help: "Log level.") var logLevel: Logger.Level = .warning
    @Option(help: "Seconds to leave the ring on SIGTERM/SIGINT, before the exit is forced.") var shutdownGrace = 3.0
    @Option(help: "Result verification: none, or quorum (each task on at least 2 distinct peers until their SHA-256 agree; docs/jobs.md).")
    var verify: JobOptions.Verify = .none
    @Option(help: "Quorum: results of one task at most before it fails (no-quorum).") var maxReplicas = 5
    @Option(help: "Quorum: agreeing results in a row after which a peer is trusted and only spot-checked.") var trustAfter = 10
    @Option(help: "Quorum: the probability that a task of a trusted peer is replicated all the same.") var spotCheckRate = 0.1
    @Option(help: "Quorum: the seed of the spot-check draws (below 2^53; default: random, printed).") var seed: UInt64?
    @Option(help: "Submit the job this many times in a row from this one peer (quorum: the reputation of the peers carries over); the last image is written.")
    var `repeat` = 1
    @Option(help: "The runtime of the tasks: raytrace (the ray-trace kernel of each peer), or wasm (the ray tracer as a Wasm module, --module; docs/jobs.md, \"The wasm runtime\"). The image is the same.")
    var runtime = "raytrace"
    @Option(help: "--runtime wasm: the ray tracer's Wasm module.") var module = ".build/wasm/raytracer.wasm"

    func validate() throws {
        guard ["raytrace", "wasm"].contains(runtime) else { throw ValidationError("--runtime must be raytrace or wasm") }
        guard shutdownGrace >= 0 else { throw ValidationError("--shutdown-grace must not be negative") }
        guard (1...100_000).contains(tiles) else { throw ValidationError("--tiles must be in [1, 100000]") }
        guard (1...10_000).contains(peers) else { throw ValidationError("--peers must be in [1, 10000]") }
        guard (0...256).contains(workers) else { throw ValidationError("--workers must be in [0, 256]") }
        guard deadline > 0 else { throw ValidationError("--deadline must be positive") }
        guard discoveryWait > 0 && discoveryWait <= 600 else { throw ValidationError("--discovery-wait must be in (0, 600] seconds") }
        guard (2...100).contains(maxReplicas) else { throw ValidationError("--max-replicas must be in [2, 100]") }
        guard trustAfter >= 0 else { throw ValidationError("--trust-after must not be negative") }
        guard (0...1).contains(spotCheckRate) else { throw ValidationError("--spot-check-rate must be in [0, 1]") }
        guard seed.map({ $0 < 1 << 53 }) ?? true else { throw ValidationError("--seed must be below 2^53") }
        guard (1...1000).contains(`repeat`) else { throw ValidationError("--repeat must be in [1, 1000]") }
    }

    func run() async throws {
        bootstrapLogging(logLevel)
        let logger = Logger(label: "browsercloud.submit")
        let (sceneJSON, parsed) = try loadScene(scene, dir: scenes)
        // Runtime wasm: shared = the scene file's bytes, input = the tile (x, y, width, height: u32 LE).
        let wasm = runtime == "wasm" ? WasmRaytrace(module: try readFile(module), scene: try loadSceneFile(scene, dir: scenes).bytes, parsed: parsed) : nil
        try checkWritable(out)
        let config = peerConfiguration(server: server, listen: listen, advertise: advertise, workers: workers)
        let grace = shutdownGrace
        try await LongRunning.run("submit", grace: grace, logger: logger) { [self] in
            let node = try PeerNode(configuration: config, logger: logger)
            let engine = JobEngine(node: node, workers: workers, logger: logger)
            try node.start()
            let outcome = await withTaskGroup(of: Result<([UInt8], JobStats), Message>?.self) { group in
                group.addTask { await untilShutdown(); return nil }
                group.addTask { await submit(node: node, engine: engine, sceneJSON: sceneJSON, wasm: wasm) }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            try await blocking {
                engine.pool?.stop()
                node.stop(within: grace)
            }
            switch outcome {
            case nil:
                FileHandle.standardError.write(Data("browsercloud: stopped before the job finished; \(out) not written\n".utf8))
            case .failure(let failure)?:
                FileHandle.standardError.write(Data("browsercloud: \(failure)\n".utf8))
                throw ExitCode.failure
            case .success(let (image, _))?:
                let sha256 = try writeImage(image, width: parsed.width, height: parsed.height, to: out)
                print("wrote \(out) (\(parsed.width)x\(parsed.height), file sha256 \(sha256), pixels sha256 \(sha256Hex(image)))")
            }
        }
    }

    /// Waits until this peer is in the ring with its links open, then runs the job; nil when cancelled.
    private func submit(node: PeerNode, engine: JobEngine, sceneJSON: JSONValue, wasm: WasmRaytrace?) async -> Result<([UInt8], JobStats), Message>? {
        let joinDeadline = ContinuousClock.now + .milliseconds(Int64(joinTimeout * 1000))
        while !(await onServiceThread(node) { node.isReady }) {
            guard ContinuousClock.now < joinDeadline else {
                return .failure("could not join the ring at \(server.host):\(server.port) within \(joinTimeout) s")
            }
            guard (try? await Task.sleep(for: .milliseconds(50))) != nil else { return nil }
        }
        var jobOptions = JobOptions()
        jobOptions.deadlineSeconds = deadline
        jobOptions.discoverySeconds = discoveryWait
        jobOptions.verify = verify
        jobOptions.maxReplicas = maxReplicas
        jobOptions.trustAfter = trustAfter
        jobOptions.spotCheckRate = spotCheckRate
        jobOptions.seed = seed
        let options = jobOptions
        var last: Result<([UInt8], JobStats), Message>?
        for run in 1...`repeat` {
            if `repeat` > 1 { print("job \(run) of \(`repeat`)") }
            last = await submitOnce(node: node, engine: engine, sceneJSON: sceneJSON, wasm: wasm, options: options)
            guard case .success(let (pixels, stats))? = last else { return last }
            printSummary(stats, pixels: pixels)
        }
        return last
    }

    private func printSummary(_ stats: JobStats, pixels: [UInt8]) {
        let c = stats.counts
        if `repeat` > 1 { print("pixels sha256 \(sha256Hex(pixels))") }
        print(String(format: "makespan %.3f s (discovery %.3f s); %d tasks on %d peers", stats.makespanSeconds, stats.discoverySeconds, stats.tasks, stats.tasksPerPeer.count))
        for (peer, n) in stats.tasksPerPeer.sorted(by: { $0.value > $1.value }) { print("  \(peer)  \(n) tasks") }
        print("peers used: \(stats.peers.joined(separator: " "))")
        print("dispatched \(c.dispatched), re-dispatched \(c.redispatched), speculative \(c.speculative) (discarded \(c.discarded), mismatches \(c.mismatches)), late \(c.late), lost \(c.lost), busy \(c.busy), peers lost \(stats.peersLost)")
        if let v = stats.verification, let seed = stats.seed, let r = stats.replication {
            print(String(format: "verify quorum: seed %llu, replication %.3f (%d results for %d tasks), agreed %d, dissented %d, spot checks %d, unchecked %d, no quorum %d",
                         seed, r, v.results, stats.tasks, v.agreed, v.dissented, v.spotChecks, v.unchecked, v.noQuorum))
            print("penalised: \(stats.penalised.isEmpty ? "none" : stats.penalised.joined(separator: " "))")
        }
        if runtime == "wasm" { print(moduleSummary(stats)) }
    }

    /// One job; nil when cancelled.
    private func submitOnce(node: PeerNode, engine: JobEngine, sceneJSON: JSONValue, wasm: WasmRaytrace?, options: JobOptions) async -> Result<([UInt8], JobStats), Message>? {
        let showBar = isatty(STDERR_FILENO) != 0
        let (tiles, peers) = (tiles, peers)
        // A stream rather than a continuation: waiting on it ends when the task is cancelled (a shutdown).
        let (results, result) = AsyncStream<Result<([UInt8], JobStats), Message>>.makeStream()
        node.transport.post {
            if let wasm {
                let grid = RayTracer.tiles(width: wasm.parsed.width, height: wasm.parsed.height, count: tiles)
                do {
                    try engine.runWasm(module: wasm.module, shared: wasm.scene, inputs: grid.map(WasmRaytrace.input), peers: peers, options: options,
                                       progress: showBar ? drawBar : progressReporter()) { outcome in
                        result.yield(outcome.mapError { Message("\($0)") }.flatMap { r in
                            var image = [UInt8](repeating: 0, count: wasm.parsed.width * wasm.parsed.height * 4)
                            for (i, t) in grid.enumerated() {
                                guard r.outputs[i].count == t.width * t.height * 4 else {
                                    return .failure(Message("task \(i): the module returned \(r.outputs[i].count) bytes for a \(t.width)x\(t.height) tile"))
                                }
                                blit(&image, imageWidth: wasm.parsed.width, tile: t, pixels: r.outputs[i])
                            }
                            return .success((image, r.stats))
                        })
                    }
                } catch {
                    result.yield(.failure(Message("\(error)")))
                }
                return
            }
            do {
                var lastTenth = 0
                try engine.raytrace(sceneJSON: sceneJSON, tiles: tiles, peers: peers, options: options, progress: { done, total in
                    if showBar { drawBar(done, total); return }
                    // Not a terminal: one line per tenth, for logs and scripts.
                    let tenth = done * 10 / max(1, total)
                    if tenth > lastTenth { lastTenth = tenth; FileHandle.standardError.write(Data("progress \(done)/\(total)\n".utf8)) }
                }, completion: { outcome in
                    result.yield(outcome.map { ($0.image, $0.stats) }.mapError { Message("\($0)") })
                })
            } catch {
                result.yield(.failure(Message("\(error)")))
            }
        }
        var outcome: Result<([UInt8], JobStats), Message>?
        for await r in results {
            outcome = r
            break
        }
        if showBar { FileHandle.standardError.write(Data("\n".utf8)) }
        return outcome
    }
}

/// `submit raytrace --runtime wasm`: the module, the scene file's bytes (the shared data) and the scene.
struct WasmRaytrace: Sendable {
    let module: [UInt8]
    let scene: [UInt8]
    let parsed: Scene
    /// A tile as a task input: x, y, width, height, each a u32 little-endian.
    static func input(_ t: Tile) -> [UInt8] {
        [t.x, t.y, t.width, t.height].flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: UInt32(v) >> (8 * $0)) } }
    }
}

private func drawBar(_ done: Int, _ total: Int) {
    let width = 40
    let filled = total == 0 ? width : done * width / total
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) tiles".utf8))
}

// MARK: render

struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a scene locally in one process on one core (the reference for jobs).")

    @Option(help: "A scene file, or the name of a shipped scene (small, odd, medium, standard).") var scene: String
    @Option(help: "Directory of the shipped scenes (default: Public/scenes of the working directory or of the source tree).") var scenes: String?
    @Option(help: "Output image (PNG, or PPM for a .ppm name).") var out: String
    @Option(help: "Render only this tile: x,y,width,height.") var tile: String?

    func run() throws {
        let (_, parsed) = try loadScene(scene, dir: scenes)
        try checkWritable(out)
        var t = Tile(x: 0, y: 0, width: parsed.width, height: parsed.height)
        if let tile {
            let v = tile.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard v.count == 4 else { throw ValidationError("--tile must be x,y,width,height") }
            t = Tile(x: v[0], y: v[1], width: v[2], height: v[3])
        }
        let start = Date()
        let pixels = try parsed.render(t)
        let seconds = Date().timeIntervalSince(start)
        let sha256 = try writeImage(pixels, width: t.width, height: t.height, to: out)
        print("wrote \(out) (\(t.width)x\(t.height), file sha256 \(sha256), pixels sha256 \(sha256Hex(pixels))) in \(String(format: "%.3f", seconds)) s")
    }
}
extension JobOptions.Verify: ExpressibleByArgument {}
