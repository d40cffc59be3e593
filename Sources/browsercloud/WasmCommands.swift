import ArgumentParser
import Digest
import Foundation
import Jobs
import Logging
import Peer
import Synchronization
import Transport
import WasmTask

// MARK: the line encoding of inputs and outputs

/// Inputs and outputs files of `submit wasm` and `wasm-run` (docs/jobs.md, "The `wasm` runtime"): one
/// task's bytes per line, as standard base64 (an empty line: no bytes); lines end with "\n" (a "\r"
/// before it is ignored), and the last line's newline is optional.
enum WasmLines {
    static func read(_ path: String) throws -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Message("cannot read \(path)") }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        return try lines.enumerated().map { i, raw in
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            guard let bytes = Data(base64Encoded: String(line)) else { throw Message("\(path):\(i + 1): not base64") }
            return [UInt8](bytes)
        }
    }

    static func write(_ outputs: [[UInt8]], to path: String) throws {
        let text = outputs.map { Data($0).base64EncodedString() + "\n" }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else { throw Message("cannot write \(path)") }
    }
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw Message("cannot read \(path)") }
    return [UInt8](data)
}

// MARK: wasm-run

struct WasmRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm-run",
        abstract: "Run a Wasm task module locally on one core, once per input line (the reference for `submit wasm`).",
        discussion: "Inputs and outputs: one task's bytes per line, in base64 (docs/jobs.md, \"The wasm runtime\").")

    @Option(help: "The task module (.wasm).") var module: String
    @Option(help: "Inputs: one line per task, base64.") var inputs: String
    @Option(help: "Outputs: one line per task, base64.") var out: String
    @Option(help: "The job's shared bytes (default: none).") var shared: String?
    @Option(help: "Seconds a task may run (as a fuel budget) before it is stopped.") var deadline = 60.0

    func validate() throws {
        guard deadline > 0 else { throw ValidationError("--deadline must be positive") }
    }

    func run() throws {
        let bytes = try readFile(module)
        let sharedBytes = try shared.map(readFile) ?? []
        let inputLines = try WasmLines.read(inputs)
        try checkWritable(out)
        let start = Date()
        let compiled: WasmModule
        do { compiled = try WasmModule(bytes: bytes) } catch {
            FileHandle.standardError.write(Data("browsercloud: \(module): \(error)\n".utf8))
            throw ExitCode.failure
        }
        var outputs: [[UInt8]] = []
        for (i, input) in inputLines.enumerated() {
            do { outputs.append(try compiled.run(shared: sharedBytes, input: input, seconds: deadline)) } catch {
                FileHandle.standardError.write(Data("browsercloud: task \(i): \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
        try WasmLines.write(outputs, to: out)
        print("wrote \(out) (\(outputs.count) outputs, module sha256 \(sha256Hex(bytes))) in \(String(format: "%.3f", Date().timeIntervalSince(start))) s")
    }
}

// MARK: submit wasm

struct SubmitWasm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wasm",
        abstract: "Run a Wasm task module across the ring, once per input line, and write the outputs.",
        discussion: "Inputs and outputs: one task's bytes per line, in base64 (docs/jobs.md, \"The wasm runtime\").")

    @Option(help: "Rendezvous server, ws://host:port; or a comma list of the servers of one cluster.") var server: ServerAddress
    @Option(help: "The task module (.wasm).") var module: String
    @Option(help: "Inputs: one line per task, base64.") var inputs: String
    @Option(help: "Outputs: one line per task, base64.") var out: String
    @Option(help: "The job's shared bytes (default: none).") var shared: String?
    @Option(help: "Peers to use at most.") var peers = 8
    @Option(help: "Worker threads this submitting peer also offers (0: submit only).") var workers = 0
    @Option(help: "Seconds a task may run on a worker before it is stopped there.") var deadline = 60.0
    @Option(help: "Seconds the first discovery waits for peers' availability answers at most.") var discoveryWait = 3.0
    @Option(help: "Address and port for WebSocket links.") var listen = ListenAddress(argument: "127.0.0.1:0")!
    @Option(help: "URL other peers dial.") var advertise: String?
    @Option(help: "Seconds to wait for the ring before giving up.") var joinTimeout = 30.0
    @Option(help: "Log level.") var logLevel: Logger.Level = .warning
    @Option(help: "Seconds to leave the ring on SIGTERM/SIGINT, before the exit is forced.") var shutdownGrace = 3.0
    @Option(help: "Submit the job this many times in a row from this one peer (the module goes once to each peer); the last outputs are written.")
    var `repeat` = 1

    func validate() throws {
        guard (1...10_000).contains(peers) else { throw ValidationError("--peers must be in [1, 10000]") }
        guard (0...256).contains(workers) else { throw ValidationError("--workers must be in [0, 256]") }
        guard deadline > 0 else { throw ValidationError("--deadline must be positive") }
        guard discoveryWait > 0 && discoveryWait <= 600 else { throw ValidationError("--discovery-wait must be in (0, 600] seconds") }
        guard shutdownGrace >= 0 else { throw ValidationError("--shutdown-grace must not be negative") }
        guard (1...1000).contains(`repeat`) else { throw ValidationError("--repeat must be in [1, 1000]") }
    }

    func run() async throws {
        bootstrapLogging(logLevel)
        let logger = Logger(label: "browsercloud.submit")
        let moduleBytes = try readFile(module)
        let sharedBytes = try shared.map(readFile) ?? []
        let inputLines = try WasmLines.read(inputs)
        try checkWritable(out)
        var jobOptions = JobOptions()
        jobOptions.deadlineSeconds = deadline
        jobOptions.discoverySeconds = discoveryWait
        let options = jobOptions
        let config = peerConfiguration(server: server, listen: listen, advertise: advertise, workers: workers)
        let (peers, times) = (peers, `repeat`)
        let outcome = try await runJobs(config: config, workers: workers, joinTimeout: joinTimeout, grace: shutdownGrace, logger: logger,
                                        times: times) { engine, done in
            do {
                try engine.runWasm(module: moduleBytes, shared: sharedBytes, inputs: inputLines, peers: peers, options: options,
                                   progress: progressReporter()) { result in
                    done(result.map { ($0.outputs, $0.stats) }.mapError { Message("\($0)") })
                }
            } catch {
                done(.failure(Message("\(module): \(error)")))
            }
        }
        guard let outputs = outcome else { return }
        try WasmLines.write(outputs, to: out)
        print("wrote \(out) (\(outputs.count) outputs)")
    }
}

/// One line per tenth of the tasks on stderr.
func progressReporter() -> (Int, Int) -> Void {
    var lastTenth = 0
    return { done, total in
        let tenth = done * 10 / max(1, total)
        if tenth > lastTenth { lastTenth = tenth; FileHandle.standardError.write(Data("progress \(done)/\(total)\n".utf8)) }
    }
}

/// Joins the ring as a peer, runs `start` `times` times in a row on the service thread (each reports
/// its end once with `done`), prints each job's summary, leaves. nil: stopped by a signal first.
/// A failed job prints its failure and exits with failure.
func runJobs<T: Sendable>(config: PeerConfiguration, workers: Int, joinTimeout: Double, grace: Double, logger: Logger, times: Int,
                          start: @escaping @Sendable (JobEngine, @escaping (Result<(T, JobStats), Message>) -> Void) -> Void) async throws -> T? {
    let result = Mutex<T?>(nil)
    try await LongRunning.run("submit", grace: grace, logger: logger) {
        let node = try PeerNode(configuration: config, logger: logger)
        let engine = JobEngine(node: node, workers: workers, logger: logger)
        try node.start()
        let outcome = await withTaskGroup(of: Result<(T, JobStats), Message>?.self) { group in
            group.addTask { await untilShutdown(); return nil }
            group.addTask {
                let joinDeadline = ContinuousClock.now + .milliseconds(Int64(joinTimeout * 1000))
                while !(await onServiceThread(node) { node.isReady }) {
                    guard ContinuousClock.now < joinDeadline else {
                        return .failure(Message("could not join the ring at \(config.serverHost):\(config.serverPort) within \(joinTimeout) s"))
                    }
                    guard (try? await Task.sleep(for: .milliseconds(50))) != nil else { return nil }
                }
                var last: Result<(T, JobStats), Message>?
                for run in 1...times {
                    if times > 1 { print("job \(run) of \(times)") }
                    let (stream, continuation) = AsyncStream<Result<(T, JobStats), Message>>.makeStream()
                    node.transport.post { start(engine, { continuation.yield($0) }) }
                    last = nil
                    for await r in stream { last = r; break }
                    guard case .success(let (_, stats))? = last else { return last }
                    printJobSummary(stats)
                }
                return last
            }
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
            FileHandle.standardError.write(Data("browsercloud: stopped before the job finished; nothing written\n".utf8))
        case .failure(let failure)?:
            FileHandle.standardError.write(Data("browsercloud: \(failure)\n".utf8))
            throw ExitCode.failure
        case .success(let (value, _))?:
            result.withLock { $0 = value }
        }
    }
    return result.withLock { $0 }
}

func printJobSummary(_ stats: JobStats) {
    let c = stats.counts
    print(String(format: "makespan %.3f s (discovery %.3f s); %d tasks on %d peers", stats.makespanSeconds, stats.discoverySeconds, stats.tasks, stats.tasksPerPeer.count))
    for (peer, n) in stats.tasksPerPeer.sorted(by: { $0.value > $1.value }) { print("  \(peer)  \(n) tasks") }
    print("peers used: \(stats.peers.joined(separator: " "))")
    print("dispatched \(c.dispatched), re-dispatched \(c.redispatched), speculative \(c.speculative) (discarded \(c.discarded), mismatches \(c.mismatches)), late \(c.late), lost \(c.lost), busy \(c.busy), peers lost \(stats.peersLost)")
    print(moduleSummary(stats))
}

/// `module sent N times`, then `: <peerId>` for each peer it went to (`×k` when more than once).
func moduleSummary(_ stats: JobStats) -> String {
    let to = stats.modulesSentTo.sorted { $0.key < $1.key }.map { $0.value == 1 ? $0.key : "\($0.key)×\($0.value)" }
    return "module sent \(stats.modulesSent) times" + (to.isEmpty ? "" : ": " + to.joined(separator: " "))
}
