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

/// SIGINT and SIGTERM, caught from creation on: `wait()` returns once one arrived.
final class TerminationSignals {
    private let done = DispatchSemaphore(value: 0)
    private let sources: [any DispatchSourceSignal]

    init() {
        let queue = DispatchQueue(label: "signals")
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            // The dispatch source is armed before the default action is turned off.
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [done] in done.signal() }
            source.resume()
            signal(sig, SIG_IGN)
            sources.append(source)
        }
        self.sources = sources
    }

    func wait() { done.wait() }
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

/// Writes an RGBA image as PNG (or binary PPM when the name ends in .ppm; alpha is dropped).
func writeImage(_ rgba: [UInt8], width: Int, height: Int, to path: String) throws {
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
}

// MARK: peer

struct PeerCommand: ParsableCommand {
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

    func validate() throws {
        guard (0...256).contains(workers) else { throw ValidationError("--workers must be in [0, 256]") }
        if let advertise, !advertise.hasPrefix("ws://") { throw ValidationError("--advertise must be a ws:// URL") }
    }

    func run() throws {
        bootstrapLogging(logLevel)
        let logger = Logger(label: "browsercloud.peer")
        var config = peerConfiguration(server: server, listen: listen, advertise: advertise, workers: workers)
        config.maxLinkMessageBytes = maxLinkMessageBytes
        let node = PeerNode(configuration: config, logger: logger)
        let engine = JobEngine(node: node, workers: workers, logger: logger)
        let events = stdinCommands
        node.onRegistered = { id, again in
            if events { emitLine(.object(["event": "registered", "peerId": .string(id.hex), "again": .bool(again), "url": .string(node.url)])) }
        }
        engine.onOtherMessage = { envelope in
            logger.debug("message from \(envelope.srcId.hex) after \(envelope.hops) hops")
            if events { emitLine(.object(["event": "message", "srcId": .string(envelope.srcId.hex), "dstId": .string(envelope.dstId.hex), "hops": .number(Double(envelope.hops)), "data": envelope.data])) }
        }
        node.onGoingAway = { ms in if events { emitLine(.object(["event": "going-away", "retryAfterMs": .number(Double(ms))])) } }
        node.onError = { code, message in if events { emitLine(.object(["event": "error", "code": .string(code), "message": .string(message)])) } }
        engine.onTaskRun = { from, jobId, taskId, code, seconds in
            logger.info("task \(taskId) of job \(jobId) from \(from): \(code ?? "ok") in \(String(format: "%.3f", seconds)) s")
        }
        let termination = TerminationSignals()
        try node.start()
        if stdinCommands {
            Thread.detachNewThread { readCommands(node) }
        }
        termination.wait()
        logger.info("leaving the ring")
        engine.pool?.stop()
        node.stop()
    }
}

/// The --stdin-commands loop (its own thread; every action is posted to the node's service thread).
private func readCommands(_ node: PeerNode) {
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
            kill(getpid(), SIGTERM)
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

struct SubmitRaytrace: ParsableCommand {
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

    func validate() throws {
        guard (1...100_000).contains(tiles) else { throw ValidationError("--tiles must be in [1, 100000]") }
        guard (1...10_000).contains(peers) else { throw ValidationError("--peers must be in [1, 10000]") }
        guard (0...256).contains(workers) else { throw ValidationError("--workers must be in [0, 256]") }
        guard deadline > 0 else { throw ValidationError("--deadline must be positive") }
    }

    func run() throws {
        bootstrapLogging(logLevel)
        let logger = Logger(label: "browsercloud.submit")
        let (sceneJSON, parsed) = try loadScene(scene, dir: scenes)
        try checkWritable(out)
        let node = PeerNode(configuration: peerConfiguration(server: server, listen: listen, advertise: advertise, workers: workers), logger: logger)
        let engine = JobEngine(node: node, workers: workers, logger: logger)
        try node.start()
        defer { engine.pool?.stop(); node.stop() }

        // Wait until this peer is in the ring with its links open.
        let joinDeadline = Date().addingTimeInterval(joinTimeout)
        while !node.transport.sync({ node.isReady }) {
            guard Date() < joinDeadline else { throw Message("could not join the ring at \(server.host):\(server.port) within \(joinTimeout) s") }
            usleep(50_000)
        }
        let showBar = isatty(STDERR_FILENO) != 0
        let finished = DispatchSemaphore(value: 0)
        let box = ResultBox()
        var jobOptions = JobOptions()
        jobOptions.deadlineSeconds = deadline
        let options = jobOptions
        node.transport.post {
            do {
                var lastTenth = 0
                try engine.raytrace(sceneJSON: sceneJSON, tiles: tiles, peers: peers, options: options, progress: { done, total in
                    if showBar { drawBar(done, total); return }
                    // Not a terminal: one line per tenth, for logs and scripts.
                    let tenth = done * 10 / max(1, total)
                    if tenth > lastTenth { lastTenth = tenth; FileHandle.standardError.write(Data("progress \(done)/\(total)\n".utf8)) }
                }, completion: { result in
                    box.set(result.map { ($0.image, $0.stats) }.mapError { "\($0)" })
                    finished.signal()
                })
            } catch {
                box.set(.failure("\(error)"))
                finished.signal()
            }
        }
        finished.wait()
        if showBar { FileHandle.standardError.write(Data("\n".utf8)) }
        switch box.get()! {
        case .failure(let failure):
            FileHandle.standardError.write(Data("browsercloud: \(failure)\n".utf8))
            throw ExitCode.failure
        case .success(let (image, stats)):
            try writeImage(image, width: parsed.width, height: parsed.height, to: out)
            let c = stats.counts
            print("wrote \(out) (\(parsed.width)x\(parsed.height), sha256 \(sha256Hex(image)))")
            print(String(format: "makespan %.3f s (discovery %.3f s); %d tasks on %d peers", stats.makespanSeconds, stats.discoverySeconds, stats.tasks, stats.tasksPerPeer.count))
            for (peer, n) in stats.tasksPerPeer.sorted(by: { $0.value > $1.value }) { print("  \(peer)  \(n) tasks") }
            print("dispatched \(c.dispatched), re-dispatched \(c.redispatched), speculative \(c.speculative) (discarded \(c.discarded), mismatches \(c.mismatches)), late \(c.late), lost \(c.lost), busy \(c.busy), peers lost \(stats.peersLost)")
        }
    }
}

/// The job's outcome, handed from the service thread to the main thread.
private final class ResultBox: Sendable {
    private let value = Mutex<Result<([UInt8], JobStats), Message>?>(nil)
    func set(_ r: Result<([UInt8], JobStats), Message>) { value.withLock { $0 = r } }
    func get() -> Result<([UInt8], JobStats), Message>? { value.withLock { $0 } }
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
        try writeImage(pixels, width: t.width, height: t.height, to: out)
        print("wrote \(out) (\(t.width)x\(t.height), sha256 \(sha256Hex(pixels))) in \(String(format: "%.3f", seconds)) s")
    }
}
