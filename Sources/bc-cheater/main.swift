// bc-cheater: a TEST TOOL, not shipped (docs/jobs.md, "Cheating volunteers"). It joins the ring as a
// normal native peer (PeerNode + JobEngine, the code of `browsercloud peer`) but corrupts the ray-trace
// results it returns: always, or each with a seeded probability. By default the SHA-256 it claims is
// the digest of the corrupted bytes (a consistent liar, which only a quorum catches); with
// --lie-digest it claims the digest of the true bytes (the submitter's SHA-256 check catches that).
// Prints its seed on stderr and `{"event":"registered","peerId":…}` on stdout; runs until SIGTERM/SIGINT.
import ArgumentParser
import Digest
import Dispatch
import Foundation
import Jobs
import Logging
import Peer
import Ring
import Synchronization

/// The seeded corruption decisions and bytes, shared by the worker threads.
final class Corrupter: Sendable {
    let probability: Double
    let lieDigest: Bool
    private let rng: Mutex<SplitMix64>
    private let counts = Mutex((results: 0, corrupted: 0))

    init(probability: Double, seed: UInt64, lieDigest: Bool) {
        self.probability = probability
        self.lieDigest = lieDigest
        rng = Mutex(SplitMix64(seed: seed))
    }

    /// The payload to send and the SHA-256 to claim.
    func tamper(_ bytes: [UInt8]) -> (payload: [UInt8], sha256: String) {
        let (corrupt, index, flip) = rng.withLock { r -> (Bool, Int, UInt8) in
            let draw = Double(r.next() >> 11) / 9_007_199_254_740_992
            return (draw < probability, Int(r.next() % UInt64(max(1, bytes.count))), UInt8(1 + r.next() % 255))
        }
        counts.withLock { $0.results += 1; if corrupt && !bytes.isEmpty { $0.corrupted += 1 } }
        guard corrupt, !bytes.isEmpty else { return (bytes, sha256Hex(bytes)) }
        var wrong = bytes
        wrong[index] ^= flip
        return (wrong, lieDigest ? sha256Hex(bytes) : sha256Hex(wrong))
    }

    var summary: String { counts.withLock { "\($0.corrupted) of \($0.results) results corrupted" } }
}

@main
struct Cheater: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bc-cheater",
        abstract: "TEST TOOL: a native peer that returns corrupted ray-trace results (for the quorum tests).")

    @Option(help: "Rendezvous server, ws://host:port.") var server: String
    @Option(help: "Worker threads offered to jobs.") var workers = 1
    @Option(help: "Address and port for WebSocket links (host:port).") var listen = "127.0.0.1:0"
    @Option(help: "The probability that a result is corrupted (1: always).") var probability = 1.0
    @Option(help: "Seed of the corruption draws (default: random; printed).") var seed: UInt64?
    @Flag(help: "Claim the SHA-256 of the true bytes (caught by the submitter's digest check).") var lieDigest = false

    func validate() throws {
        guard (0...1).contains(probability) else { throw ValidationError("--probability must be in [0, 1]") }
        guard (0...256).contains(workers) else { throw ValidationError("--workers must be in [0, 256]") }
    }

    func run() throws {
        let seed = self.seed ?? UInt64.random(in: 0..<(1 << 53))
        FileHandle.standardError.write(Data("bc-cheater: seed \(seed), probability \(probability)\(lieDigest ? ", lying about the digest" : "")\n".utf8))
        guard let url = URLComponents(string: server), url.scheme == "ws", let host = url.host, let port = url.port else {
            throw ValidationError("--server must be ws://host:port")
        }
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let listenPort = Int(parts[1]) else { throw ValidationError("--listen must be host:port") }
        var config = PeerConfiguration()
        config.serverHost = host
        config.serverPort = port
        config.listenHost = String(parts[0])
        config.listenPort = listenPort
        config.capabilities = JobEngine.capabilities(workers: workers)
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "bc-cheater")
        logger.logLevel = .warning
        let corrupter = Corrupter(probability: probability, seed: seed, lieDigest: lieDigest)
        let node = try PeerNode(configuration: config, logger: logger)
        let engine = JobEngine(node: node, workers: workers, logger: logger) { _, _, bytes in corrupter.tamper(bytes) }
        node.onRegistered = { id, again in
            let line = "{\"event\":\"registered\",\"peerId\":\"\(id.hex)\",\"again\":\(again)}\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        try node.start()
        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig)
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        FileHandle.standardError.write(Data("bc-cheater: leaving; \(corrupter.summary)\n".utf8))
        engine.pool?.stop()
        node.stop(within: 2)
        withExtendedLifetime((engine, sources)) {}
    }
}
