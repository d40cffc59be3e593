import ArgumentParser
import Synchronization
import Foundation
import Digest
import Jobs
import Logging
import PNG
import Peer
import Rendezvous
import RayTracer
import Ring
import Transport
import WireProtocol

struct PeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Join the ring as a native peer and volunteer this machine's CPU (WebSocket links, native kernels).",
        discussion: """
        With --stdin-commands, reads lines from stdin: `send <peerId> <json>` (route a message), `state` \
        (print the ring state) and `leave`; events are printed as JSON lines on stdout.
        """)

    @Option(help: "Rendezvous server, ws://host:port; or a comma list of the servers of one cluster, tried in turn after a connection fails or closes (docs/cluster.md).") var server: ServerAddress
    @Option(help: "Worker threads offered to jobs (0: none; default: the number of CPUs).") var workers = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Address and port for WebSocket links from other peers (port 0: any free port).") var listen = ListenAddress(argument: "127.0.0.1:0")!
    @Option(help: "URL other peers dial (default ws://<listen address>:<port>/); set it when listening on 0.0.0.0.") var advertise: String?
    @Option(help: "Largest link message, in bytes.") var maxLinkMessageBytes = 16 * 1024 * 1024
    @Flag(help: "Read commands from stdin and print events as JSON lines.") var stdinCommands = false
    @Option(help: "Log level.") var logLevel: Logger.Level = .info
    @Option(help: "File holding this peer's Ed25519 private key (64 hex), created (mode 0600) with a new key if missing: a restarted peer signs with the same key and gets its ID back within the server's --id-lease. Default: a new key in memory for each run.") var keyFile: String?
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
        let identity = try keyFile.map { PeerIdentity(key: try KeyFile.loadOrCreate(at: $0)) }
        try await LongRunning.run("peer", grace: grace, logger: logger) { [workers, config] in
            let node = try PeerNode(configuration: config, identity: identity, logger: logger)
            let engine = JobEngine(node: node, workers: workers, logger: logger)
            node.onRegistered = { id, again in
                if events {
                    emitLine(.object(["event": "registered", "peerId": .string(id.hex), "again": .bool(again), "url": .string(node.url),
                                      "publicKey": .string(node.publicKey), "certificate": node.certificate.map(JSONValue.string) ?? .null]))
                }
            }
            engine.onOtherMessage = { envelope in
                logger.debug("message from \(envelope.srcId.hex) after \(envelope.hops) hops")
                if events { emitLine(.object(["event": "message", "srcId": .string(envelope.srcId.hex), "dstId": .string(envelope.dstId.hex), "hops": .number(Double(envelope.hops)), "data": envelope.data])) }
            }
            node.onGoingAway = { ms in if events { emitLine(.object(["event": "going-away", "retryAfterMs": .number(Double(ms))])) } }
            node.onError = { code, message in if events { emitLine(.object(["event": "error", "code": .string(code), "message": .string(message)])) } }
            node.onForgery = { reason, srcId, link in
                if events {
                    emitLine(.object(["event": "forgery", "reason": .string(reason), "srcId": srcId.map { .string($0.hex) } ?? .null,
                                      "link": .string(link.hex)]))
                }
            }
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
                    "dialMeRefused": .number(Double(node.dialMeRefused)),
                    "overlay": node.overlayCounters.json,
                ]))
            }
        case "leave":
            leave.yield()
        default:
            emitLine(.object(["event": "error", "code": "bad-command", "message": .string("commands: send <peerId> <json> | state | leave")]))
        }
    }
}

