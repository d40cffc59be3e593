import ArgumentParser
import Synchronization
import Foundation
import Jobs
import Logging
import PNG
import Peer
import RayTracer
import Ring
import Transport
import WireProtocol

/// `ws://host:port` of the rendezvous server.
struct ServerAddress: ExpressibleByArgument, Sendable {
    var host: String, port: Int
    init?(argument: String) {
        var s = Substring(argument)
        if s.hasPrefix("ws://") { s = s.dropFirst(5) } else if s.contains("://") { return nil }   // wss:// is not supported yet
        if s.hasSuffix("/") { s = s.dropLast() }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        host = String(s[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { return nil }
        self.port = port
    }
}

/// `host:port` to listen on for links.
struct ListenAddress: ExpressibleByArgument, Sendable {
    var host: String, port: Int
    var defaultValueDescription: String { "\(host):\(port)" }
    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        host = String(argument[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { return nil }
        self.port = port
    }
}

func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// The settings of a native peer from the command line (`peer` and `submit`).
func peerConfiguration(server: ServerAddress, listen: ListenAddress, advertise: String?, workers: Int) -> PeerConfiguration {
    var config = PeerConfiguration()
    config.serverHost = server.host
    config.serverPort = server.port
    config.listenHost = listen.host
    config.listenPort = listen.port
    config.advertisedURL = advertise
    config.capabilities = JobEngine.capabilities(workers: workers)
    return config
}

/// One JSON object per line on stdout (machine-readable events for scripts and tests).
func emitLine(_ value: JSONValue) {
    FileHandle.standardOutput.write(Data(value.encoded() + [UInt8(ascii: "\n")]))
}

/// Loads a scene: a file path, or the name of a shipped scene (in `dir`, or else in Public/scenes of
/// the working directory, of the source tree the executable was built in, or of /usr/local/share/browsercloud).
func loadScene(_ nameOrPath: String, dir: String?) throws -> (json: JSONValue, scene: Scene) {
    let executableDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    let dirs = dir.map { [$0] } ?? ["Public/scenes", "\(executableDir)/../../Public/scenes", "\(executableDir)/../../../Public/scenes",
                                    "/usr/local/share/browsercloud/Public/scenes"]
    let candidates = [nameOrPath] + dirs.map { "\($0)/\(nameOrPath).json" }
    guard let path = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) && !$0.hasSuffix("/") }),
          let data = FileManager.default.contents(atPath: path) else {
        throw Message("no scene file '\(nameOrPath)' (looked in \(dirs.joined(separator: ", ")))")
    }
    guard let value = JSONValue(parsing: [UInt8](data)) else { throw Message("\(path): not valid JSON") }
    return (value, try Scene(value))
}

/// Fails early (before any work) when `path` cannot be written.
func checkWritable(_ path: String) throws {
    let existed = FileManager.default.fileExists(atPath: path)
    guard FileManager.default.isWritableFile(atPath: path) || (!existed && FileManager.default.createFile(atPath: path, contents: nil)) else {
        throw Message("cannot write \(path)")
    }
    if !existed { try? FileManager.default.removeItem(atPath: path) }
}

/// Writes an RGBA image as PNG (or binary PPM when the name ends in .ppm; alpha is dropped) and
/// returns the SHA-256 of the file (what `sha256sum` prints).
@discardableResult
func writeImage(_ rgba: [UInt8], width: Int, height: Int, to path: String) throws -> String {
    let bytes: [UInt8]
    if path.hasSuffix(".ppm") {
        var out = Array("P6\n\(width) \(height)\n255\n".utf8)
        out.reserveCapacity(out.count + width * height * 3)
        for i in stride(from: 0, to: rgba.count, by: 4) { out += rgba[i..<(i + 3)] }
        bytes = out
    } else {
        bytes = try PNG.encode(rgba: rgba, width: width, height: height)
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw Message("cannot write \(path)") }
    return sha256Hex(bytes)
}

// MARK: peer

struct PeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Join the ring as a native peer and volunteer this machine's CPU (WebSocket links, native kernels).",
        discussion: """
        With --stdin-commands, reads lines from stdin: `send <peerId> <json>` (route a message), `state` \
        (print the ring state) and `leave`; events are printed as JSON lines on stdout.
        """)

    @Option(help: "Rendezvous server, ws://host:port.") var server: ServerAddress
    @Option(help: "Worker threads offered to jobs (0: none; default: the number of CPUs).") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Address and port for WebSocket links from other peers (port 0: any free port).") var listen = ListenAddress(argument: "127.0.0.1:0")!
    @Option(help: "URL other peers dial (default ws://<listen address>:<port>/); set it when listening on 0.0.0.0.") var advertise: String?
    @Option(help: "Largest link message, in bytes.") var maxLinkMessageBytes = 16 * 1024 * 1024
    @Flag(help: "Read commands from stdin and print events as JSON lines.") var stdinCommands = false
    @Option(help: "Log level.") var logLevel: Logger.Level = .info
    @Option(help: "Seconds to leave the ring on SIGTERM/SIGINT (the leave is flushed to the server), before the exit is forced.") var shutdownGrace = 3.0

    func validate() throws {
        guard (0...256).contains(workers) else { throw ValidationError("--workers must be in [0, 256]") }
        guard shutdownGrace >= 0 else { throw ValidationError("--shutdown-grace must not be negative") }
        if let advertise, !advertise.hasPrefix("ws://") { throw ValidationError("--advertise must be a ws:// URL") }
    }

    func run() async throws {
        bootstrapLogging(logLevel)
        let logger = Logger(label: "browsercloud.peer")
        var config = peerConfiguration(server: server, listen: listen, advertise: advertise, workers: workers)
        config.maxLinkMessageBytes = maxLinkMessageBytes
        let events = stdinCommands, grace = shutdownGrace
        try await LongRunning.run("peer", grace: grace, logger: logger) { [workers, config] in
            let node = PeerNode(configuration: config, logger: logger)
            let engine = JobEngine(node: node, workers: workers, logger: logger)
            node.onRegistered = { id, again in
                if events { emitLine(.object(["event": "registered", "peerId": .string(id.hex), "again": .bool(again), "url": .string(node.url)])) }
            }
            engine.onOtherMessage = { envelope in
                logger.debug("message from \(envelope.srcId.hex) after \(envelope.hops) hops")
                if events { emitLine(.object(["event": "message", "srcId": .string(envelope.srcId.hex), "dstId": .string(envelope.dstId.hex), "hops": .number(Double(envelope.hops)), "data": envelope.data])) }
            }
            node.onGoingAway = { ms in if events { emitLine(.object(["event": "going-away", "retryAfterMs": .number(Double(ms))])) } }
            node.onError = { code, message in if events { emitLine(.object(["event": "error", "code": .string(code), "message": .string(message)])) } }
            let served = ServedJobs()
            engine.onTaskRun = { from, jobId, taskId, code, seconds in
                logger.debug("task \(taskId) of job \(jobId) from \(from): \(code ?? "ok") in \(String(format: "%.3f", seconds)) s")
                served.record(from: from, jobId: jobId, failed: code != nil, seconds: seconds)
            }
            try node.start()
            let (leaves, leave) = AsyncStream<Void>.makeStream()
            if events {
                Thread.detachNewThread { readCommands(node, leave: leave) }
            }
            // Until SIGTERM/SIGINT, or `leave` on stdin; meanwhile one info line per job served.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await untilShutdown() }
                group.addTask { for await _ in leaves { return } }
                group.addTask {
                    while (try? await Task.sleep(for: .seconds(1))) != nil {
                        for line in served.finished(idleSeconds: ServedJobs.idleSeconds) { logger.info("\(line)") }
                    }
                }
                await group.next()
                group.cancelAll()
            }
            for line in served.finished(idleSeconds: 0) { logger.info("\(line)") }
            logger.info("leaving the ring")
            try await blocking {
                engine.pool?.stop()
                node.stop(within: grace)
            }
        }
    }
}

/// Per-job totals of the tasks this peer ran for others, logged once per job (info) when the job has
/// sent no task for `idleSeconds` (workers are not told when a job ends).
final class ServedJobs: Sendable {
    static let idleSeconds = 5.0
    private struct Totals { var tasks = 0, failed = 0, seconds = 0.0, last = 0.0 }
    private let jobs = Mutex<[String: Totals]>([:])

    func record(from: String, jobId: String, failed: Bool, seconds: Double) {
        jobs.withLock {
            var t = $0["job \(jobId) from \(from)", default: Totals()]
            t.tasks += 1
            t.failed += failed ? 1 : 0
            t.seconds += seconds
            t.last = ProcessInfo.processInfo.systemUptime
            $0["job \(jobId) from \(from)"] = t
        }
    }

    /// Summary lines of the jobs idle for at least `idleSeconds`, which are then forgotten.
    func finished(idleSeconds: Double) -> [String] {
        let now = ProcessInfo.processInfo.systemUptime
        return jobs.withLock { jobs in
            let done = jobs.filter { now - $0.value.last >= idleSeconds }
            for key in done.keys { jobs[key] = nil }
            return done.sorted { $0.key < $1.key }.map { key, t in
                "\(key): \(t.tasks) tasks (\(t.failed) failed), \(String(format: "%.3f", t.seconds)) s of work"
            }
        }
    }
}

/// The --stdin-commands loop (its own thread; every action is posted to the node's service thread).
private func readCommands(_ node: PeerNode, leave: AsyncStream<Void>.Continuation) {
    while let line = readLine() {
        let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
        switch parts.first {
        case "send" where parts.count == 3:
            guard let dst = PeerID(hex: parts[1]), let data = JSONValue(parsing: Array(parts[2].utf8)) else {
                emitLine(.object(["event": "error", "code": "bad-command", "message": .string("send <12 hex> <json>")]))
                continue
            }
            node.transport.post {
                if !node.send(to: dst, data: data) { emitLine(.object(["event": "error", "code": "no-route", "message": .string("no route to \(dst.hex)")])) }
            }
        case "state":
            node.transport.post {
                emitLine(.object([
                    "event": "state", "peerId": node.peerId.map { .string($0.hex) } ?? .null, "ready": .bool(node.isReady),
                    "predecessor": node.ring.predecessor.map { .string($0.hex) } ?? .null,
                    "successors": .array(node.ring.successors.map { .string($0.hex) }),
                    "fingers": .object(Dictionary(uniqueKeysWithValues: node.ring.fingers.map { row, peer in (String(row), peer.map { .string($0.hex) } ?? .null) })),
                    "links": .array(node.linkedPeers.map { .string($0.hex) }.sorted { "\($0)" < "\($1)" }),
                ]))
            }
        case "leave":
            leave.yield()
        default:
            emitLine(.object(["event": "error", "code": "bad-command", "message": .string("commands: send <peerId> <json> | state | leave")]))
        }
    }
}

// MARK: submit

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the ring, submit a job, wait for its result.", subcommands: [SubmitRaytrace.self])
}

struct SubmitRaytrace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raytrace",
        abstract: "Render a scene across the ring and write the image (PNG, or PPM for a .ppm name).")

    @Option(help: "Rendezvous server, ws://host:port.") var server: ServerAddress
    @Option(help: "A scene file, or the name of a shipped scene (small, odd, medium, standard).") var scene: String
    @Option(help: "Directory of the shipped scenes (default: Public/scenes of the working directory or of the source tree).") var scenes: String?
    @Option(help: "Tasks (tiles).") var tiles = 400
    @Option(help: "Peers to use at most.") var peers = 8
    @Option(help: "Output image.") var out: String
    @Option(help: "Worker threads this submitting peer also offers (0: submit only).") var workers = 0
    @Option(help: "Seconds a task may run on a worker before it is stopped there.") var deadline = 60.0
    @Option(help: "Address and port for WebSocket links.") var listen = ListenAddress(argument: "127.0.0.1:0")!
    @Option(help: "URL other peers dial.") var advertise: String?
    @Option(help: "Seconds to wait for the ring before giving up.") var joinTimeout = 30.0
    @Option(help: "Log level.") var logLevel: Logger.Level = .warning
    @Option(help: "Seconds to leave the ring on SIGTERM/SIGINT, before the exit is forced.") var shutdownGrace = 3.0

    func validate() throws {
        guard shutdownGrace >= 0 else { throw ValidationError("--shutdown-grace must not be negative") }
        guard (1...100_000).contains(tiles) else { throw ValidationError("--tiles must be in [1, 100000]") }
        guard (1...10_000).contains(peers) else { throw ValidationError("--peers must be in [1, 10000]") }
        guard (0...256).contains(workers) else { throw ValidationError("--workers must be in [0, 256]") }
        guard deadline > 0 else { throw ValidationError("--deadline must be positive") }
    }

    func run() async throws {
        bootstrapLogging(logLevel)
        let logger = Logger(label: "browsercloud.submit")
        let (sceneJSON, parsed) = try loadScene(scene, dir: scenes)
        try checkWritable(out)
        let config = peerConfiguration(server: server, listen: listen, advertise: advertise, workers: workers)
        let grace = shutdownGrace
        try await LongRunning.run("submit", grace: grace, logger: logger) { [self] in
            let node = PeerNode(configuration: config, logger: logger)
            let engine = JobEngine(node: node, workers: workers, logger: logger)
            try node.start()
            let outcome = await withTaskGroup(of: Result<([UInt8], JobStats), Message>?.self) { group in
                group.addTask { await untilShutdown(); return nil }
                group.addTask { await submit(node: node, engine: engine, sceneJSON: sceneJSON) }
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
            case .success(let (image, stats))?:
                let sha256 = try writeImage(image, width: parsed.width, height: parsed.height, to: out)
                let c = stats.counts
                print("wrote \(out) (\(parsed.width)x\(parsed.height), file sha256 \(sha256), pixels sha256 \(sha256Hex(image)))")
                print(String(format: "makespan %.3f s (discovery %.3f s); %d tasks on %d peers", stats.makespanSeconds, stats.discoverySeconds, stats.tasks, stats.tasksPerPeer.count))
                for (peer, n) in stats.tasksPerPeer.sorted(by: { $0.value > $1.value }) { print("  \(peer)  \(n) tasks") }
                print("dispatched \(c.dispatched), re-dispatched \(c.redispatched), speculative \(c.speculative) (discarded \(c.discarded), mismatches \(c.mismatches)), late \(c.late), lost \(c.lost), busy \(c.busy), peers lost \(stats.peersLost)")
            }
        }
    }

    /// Waits until this peer is in the ring with its links open, then runs the job; nil when cancelled.
    private func submit(node: PeerNode, engine: JobEngine, sceneJSON: JSONValue) async -> Result<([UInt8], JobStats), Message>? {
        let joinDeadline = ContinuousClock.now + .milliseconds(Int64(joinTimeout * 1000))
        while !(await onServiceThread(node) { node.isReady }) {
            guard ContinuousClock.now < joinDeadline else {
                return .failure("could not join the ring at \(server.host):\(server.port) within \(joinTimeout) s")
            }
            guard (try? await Task.sleep(for: .milliseconds(50))) != nil else { return nil }
        }
        let showBar = isatty(STDERR_FILENO) != 0
        var jobOptions = JobOptions()
        jobOptions.deadlineSeconds = deadline
        let options = jobOptions
        let (tiles, peers) = (tiles, peers)
        // A stream rather than a continuation: waiting on it ends when the task is cancelled (a shutdown).
        let (results, result) = AsyncStream<Result<([UInt8], JobStats), Message>>.makeStream()
        node.transport.post {
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

/// Runs `work` on the node's service thread and returns its result.
func onServiceThread<T: Sendable>(_ node: PeerNode, _ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        node.transport.post { continuation.resume(returning: work()) }
    }
}

/// An error message as an Error.
struct Message: Error, CustomStringConvertible, ExpressibleByStringInterpolation {
    let description: String
    init(stringLiteral value: String) { description = value }
    init(_ value: String) { description = value }
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
