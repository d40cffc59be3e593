// bc-loadgen: a native WebSocket load generator for the rendezvous server benchmarks (make bench).
// It runs on the same libwebsockets Transport as the server, so the client is not the bottleneck.
// Output: one JSON object per line on stdout.
// `--protocol v2` (the default) speaks the rendezvous protocol (challenge, Ed25519-signed register);
// `--protocol minimal` speaks the minimal relay protocol of the competitor relays in bench/ (no challenge,
// no signature: `{"type":"register"}` → `{"type":"registered","peerId":…}`, `signal` forwarded).
import ArgumentParser
import Foundation
import Hex
import Ring
import Signatures
import Transport
import WireProtocol

@main
struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bc-loadgen", abstract: "Load generator for the BrowserCloud rendezvous server.",
        subcommands: [Hold.self, Relay.self, RingCost.self])
}

func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

/// Whether `needle` occurs in `haystack`: a plain byte loop over the buffers (the generic
/// `firstRange(of:)` cost several instructions per byte, which on the relay's hot path made this load
/// generator the bottleneck).
func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    haystack.withUnsafeBufferPointer { h in
        needle.withUnsafeBufferPointer { n in
            guard let first = n.first else { return true }
            guard n.count <= h.count else { return false }
            for i in 0...(h.count - n.count) where h[i] == first && memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 {
                return true
            }
            return false
        }
    }
}

func peerID(inRegistered text: [UInt8]) -> String? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(text)) as? [String: Any] else { return nil }
    return object["peerId"] as? String
}

let registeredMarker = Array(#""type":"registered""#.utf8)
let signalMarker = Array(#""type":"signal""#.utf8)
let challengeMarker = Array(#""type":"challenge""#.utf8)

/// The protocol the load generator speaks (`--protocol`).
enum WireMode: String, ExpressibleByArgument, Sendable {
    /// Protocol v2 (docs/protocol.md): the server sends `challenge`, the client a signed `register`.
    case v2
    /// The minimal relay protocol of bench/node-relay.js and bench/python-relay.py: the client sends
    /// `{"type":"register"}` as soon as the WebSocket opens; `signal` frames as in v2.
    case minimal

    /// The WebSocket subprotocol asked for.
    var subprotocol: String { self == .v2 ? "webrtc-explorer.v2" : "bc-minimal" }
}

/// The minimal protocol's register frame (`--protocol minimal`).
let minimalRegister = Array(#"{"type":"register"}"#.utf8)

/// The `register` answering a `challenge` frame (protocol v2): a new Ed25519 key per connection (a key
/// holds at most one ID), signing the registration text. Nil when the frame is not a challenge.
func signedRegister(_ challenge: [UInt8]) -> [UInt8]? {
    guard contains(challenge, challengeMarker), case .challenge(let nonce, let serverKey)? = try? ServerMessage.decode(challenge),
          let key = try? Ed25519.PrivateKey.generate() else { return nil }
    let publicKey = Hex.encode(key.publicKey.bytes)
    let signature = Hex.encode(key.signature(for: Identity.registrationText(serverKey: serverKey, nonce: nonce, peerId: nil,
                                                                            publicKey: publicKey)))
    return ClientMessage.register(peerId: nil, publicKey: publicKey, signature: signature, capabilities: nil).encoded()
}

func clientTransport() -> Transport {
    var config = TransportConfiguration()
    config.port = nil
    config.maxConnections = 30_000
    config.maxSendQueueMessages = 100_000
    config.maxSendQueueBytes = 1 << 30
    config.hangupAfterSeconds = 600
    config.pingAfterSeconds = 300
    return Transport(configuration: config)
}

/// The server ports to connect to: `--ports` (a comma list) if given, else `--port`.
/// Throws a validation error when neither gives at least one port in 1...65535.
func serverPorts(port: Int?, ports: String?) throws -> [Int] {
    let list = ports.map { $0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } } ?? port.map { [$0] } ?? []
    guard !list.isEmpty, list.allSatisfy({ (1...65_535).contains($0) }) else {
        throw ValidationError("give --port, or --ports as a comma list of ports")
    }
    return list
}

/// Waits on the calling (main) thread until `done` returns true on the service thread, or a deadline.
func wait(_ transport: Transport, timeout: Double, _ done: @escaping @Sendable () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if transport.sync(done) { return true }
        usleep(20_000)
    }
    return false
}

// MARK: hold

/// Holds N registered peers, then measures the latency of joins at that size, one at a time.
struct Hold: ParsableCommand {
    @Option var host = "127.0.0.1"
    @Option(help: "Server port.") var port: Int?
    @Option(help: "Comma list of server ports (instances of one cluster): peers and samples go to them in turn.") var ports: String?
    @Option(help: "Peers to register and hold.") var peers = 10_000
    @Option(help: "Connections being set up at once.") var concurrency = 64
    @Option(help: "Joins measured one at a time once all peers are held.") var samples = 500
    @Option(help: "Seconds to wait for all peers.") var timeout = 300.0
    @Option(name: .customLong("protocol"), help: "v2 (the rendezvous server) or minimal (the competitor relays in bench/).")
    var wireMode: WireMode = .v2
    @Flag(help: "Also report each sample's latency (latenciesUs: WebSocket open → registered) and the latency from the register frame sent to registered (register: percentiles and registerLatenciesUs), in µs.")
    var allLatencies = false

    func run() throws {
        Transport.raiseFileLimit(to: peers + 1024)
        let transport = clientTransport()
        let state = HoldState(transport: transport, host: host, ports: try serverPorts(port: port, ports: ports), target: peers,
                              concurrency: concurrency, wireMode: wireMode)
        transport.handler = state
        try transport.start()
        let t0 = nowNanos()
        transport.post { state.fill() }
        guard wait(transport, timeout: timeout, { state.registered >= state.target }) else {
            let (r, f, early) = transport.sync { (state.registered, state.failures, state.closedEarly) }
            emit(["phase": "hold", "error": "timed out", "registered": r, "failures": f, "closedBeforeRegistered": early])
            throw ExitCode.failure
        }
        let seconds = Double(nowNanos() - t0) / 1e9
        emit(["phase": "hold", "peers": peers, "seconds": seconds, "joinsPerSecond": Double(peers) / seconds,
              "failures": transport.sync { state.failures }, "closedBeforeRegistered": transport.sync { state.closedEarly }])
        // The orchestrator reads the server's memory now; it tells us to go on with a line on stdin,
        // and may ask for more rounds of samples (one "go" line each, e.g. under different loads).
        while readLine() == "go" {
            transport.sync { state.latencies = []; state.registerLatencies = [] }
            transport.post { state.startSampling(samples) }
            guard wait(transport, timeout: timeout, { state.latencies.count >= samples }) else {
                emit(["phase": "join-latency", "error": "timed out"])
                throw ExitCode.failure
            }
            let (fromOpen, fromRegister) = transport.sync { (state.latencies, state.registerLatencies) }
            let latencies = fromOpen.map { $0 / 1000 }  // microseconds
            var line = ["phase": "join-latency", "samples": latencies.count, "peersHeld": peers] as [String: Any]
            line.merge(percentiles(latencies)) { $1 }
            if allLatencies {
                line["heldLost"] = transport.sync { state.heldLost }
                let registerLatencies = fromRegister.map { $0 / 1000 }
                line["latenciesUs"] = latencies
                line["registerLatenciesUs"] = registerLatencies
                line["register"] = percentiles(registerLatencies)
            }
            emit(line)
        }
        transport.stop()
    }
}

/// p50, p90, p99 and the maximum of `values` (any order; empty gives zeros), keyed p50us, p90us, p99us, maxus:
/// the value at index ⌊count × p⌋ of the sorted values.
func percentiles(_ values: [Double]) -> [String: Double] {
    let sorted = values.sorted()
    func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    return ["p50us": pct(0.50), "p90us": pct(0.90), "p99us": pct(0.99), "maxus": sorted.last ?? 0]
}

/// Service-thread state of `hold`. `@unchecked Sendable`: only touched on the transport's service thread.
final class HoldState: TransportHandler, @unchecked Sendable {
    let transport: Transport
    let host: String, ports: [Int], target: Int, concurrency: Int
    let wireMode: WireMode
    var pending = 0, registered = 0, failures = 0
    /// Fill connections closed before their `registered` (counted in `failures` too, and replaced), by cause.
    var closedEarly: [String: Int] = [:]
    /// Fill connections not yet registered.
    var unregistered: Set<ConnectionID> = []
    /// Registered fill connections that closed or failed since (held peers lost; reported with --all-latencies).
    var heldLost = 0
    /// Connections made so far: the next goes to `ports[connects % ports.count]`.
    var connects = 0
    var sampling = false, samplesLeft = 0
    var sampleConnection: ConnectionID = 0
    var sampleStart: UInt64 = 0
    /// When the sample connection's register frame was handed to the transport.
    var sampleRegisterSent: UInt64 = 0
    /// Sample latencies in ns: WebSocket open → registered, and register sent → registered.
    var latencies: [Double] = []
    var registerLatencies: [Double] = []

    init(transport: Transport, host: String, ports: [Int], target: Int, concurrency: Int, wireMode: WireMode) {
        self.transport = transport
        self.host = host; self.ports = ports; self.target = target; self.concurrency = concurrency
        self.wireMode = wireMode
    }

    /// Connects to the next port in turn.
    func connect() -> ConnectionID? {
        let port = ports[connects % ports.count]
        connects += 1
        return transport.connect(host: host, port: port, subprotocol: wireMode.subprotocol)
    }

    func fill() {
        while pending < concurrency && registered + pending < target {
            guard let c = connect() else {
                failures += 1
                return
            }
            unregistered.insert(c)
            pending += 1
        }
    }

    func startSampling(_ n: Int) {
        sampling = true
        samplesLeft = n
        nextSample()
    }

    func nextSample() {
        guard samplesLeft > 0 else { return }
        samplesLeft -= 1
        sampleConnection = connect() ?? 0
    }

    func webSocketOpened(_ c: ConnectionID, remoteAddress: String, origin: String?) {
        let isSample = sampling && c == sampleConnection
        if isSample { sampleStart = nowNanos() }
        if wireMode == .minimal {
            if isSample { sampleRegisterSent = nowNanos() }
            transport.send(minimalRegister, to: c)
        }
    }

    func webSocketReceived(_ c: ConnectionID, text: [UInt8]) {
        if wireMode == .v2, let register = signedRegister(text) {
            if sampling && c == sampleConnection { sampleRegisterSent = nowNanos() }
            transport.send(register, to: c)
            return
        }
        guard contains(text, registeredMarker) else { return }
        if sampling && c == sampleConnection {
            let now = nowNanos()
            latencies.append(Double(now - sampleStart))
            registerLatencies.append(Double(now - sampleRegisterSent))
            transport.close(c)
            return
        }
        guard unregistered.remove(c) != nil else { return }
        pending -= 1
        registered += 1
        fill()
    }

    func webSocketClosed(_ c: ConnectionID, cause: CloseCause) {
        if sampling && c == sampleConnection { nextSample(); return }
        // A fill connection the server closed before registering it (refused, full, unavailable): replaced.
        guard unregistered.remove(c) != nil else { heldLost += 1; return }
        closedEarly["\(cause)", default: 0] += 1
        failures += 1
        pending -= 1
        fill()
    }

    func webSocketConnectFailed(_ c: ConnectionID, reason: String) {
        failures += 1
        if sampling && c == sampleConnection { nextSample(); return }
        guard unregistered.remove(c) != nil else { return }
        pending -= 1
        fill()
    }

    func webSocketRejected(_ c: ConnectionID, problem: FrameProblem) {}
}

// MARK: relay

/// Closed-loop throughput: pairs of connections keep `window` messages in flight each way.
/// `signal` mode sends protocol v2 signals through the rendezvous server's relay (with `--protocol minimal`,
/// through a competitor relay of bench/); `echo` mode sends the same frames to an echo server, which sends
/// each back to its sender.
/// With `--ports A,B` the first connection of each pair goes to port A and its partner to port B
/// (instances of one cluster: signals between instances); `--wait-for-go` lets the caller check the
/// servers before the messages start.
struct Relay: ParsableCommand {
    enum Mode: String, ExpressibleByArgument { case signal, echo }

    @Option var host = "127.0.0.1"
    @Option(help: "Server port.") var port: Int?
    @Option(help: "Comma list of two server ports: each pair's first connection goes to the first, its partner to the second.") var ports: String?
    @Flag(help: "Once all connections are registered, print {\"phase\":\"ready\"} and wait for a line \"go\" on stdin.") var waitForGo = false
    @Option var mode: Mode = .signal
    @Option(help: "Connection pairs.") var pairs = 50
    @Option(help: "Messages in flight per connection.") var window = 16
    @Option(help: "Bytes of SDP-like payload per message.") var payload = 200
    @Option(help: "Seconds of measurement (after one second of warm-up).") var seconds = 5.0
    @Option(name: .customLong("protocol"), help: "signal mode: v2 (the rendezvous server) or minimal (the competitor relays in bench/).")
    var wireMode: WireMode = .v2

    func run() throws {
        Transport.raiseFileLimit(to: 2 * pairs + 1024)
        let transport = clientTransport()
        let state = RelayState(transport: transport, mode: mode, wireMode: wireMode, pairs: pairs, window: window, payload: payload)
        transport.handler = state
        try transport.start()
        let list = try serverPorts(port: port, ports: ports)
        let (sidePorts, subprotocol) = ((list[0], list[list.count > 1 ? 1 : 0]), mode == .signal ? wireMode.subprotocol : "echo")
        transport.post {
            for _ in 0..<pairs {
                if let a = transport.connect(host: host, port: sidePorts.0, subprotocol: subprotocol),
                   let b = transport.connect(host: host, port: sidePorts.1, subprotocol: subprotocol) {
                    state.pairsConnected.append((a, b))
                } else {
                    state.errors += 1
                }
            }
        }
        guard wait(transport, timeout: 60, { state.ready == 2 * pairs }) else {
            emit(["phase": "relay", "error": "connections not ready", "ready": transport.sync { state.ready }])
            throw ExitCode.failure
        }
        if waitForGo {
            emit(["phase": "ready"])
            guard readLine() == "go" else { transport.stop(); return }
        }
        transport.post { state.start() }
        usleep(1_000_000)
        let (c0, t0) = transport.sync { (state.received, nowNanos()) }
        if waitForGo { emit(["phase": "measuring"]) }
        usleep(UInt32(seconds * 1_000_000))
        let (c1, t1, errors) = transport.sync { (state.received, nowNanos(), state.errors) }
        let rate = Double(c1 - c0) / (Double(t1 - t0) / 1e9)
        emit(["phase": "relay", "mode": mode.rawValue, "pairs": pairs, "window": window, "payloadBytes": payload,
              "messagesPerSecond": rate, "messages": c1 - c0, "seconds": Double(t1 - t0) / 1e9, "errors": errors])
        transport.stop()
    }
}

/// Service-thread state of `relay`. `@unchecked Sendable`: only touched on the transport's service thread.
final class RelayState: TransportHandler, @unchecked Sendable {
    let transport: Transport
    let mode: Relay.Mode
    let wireMode: WireMode
    let pairs: Int, window: Int, payload: Int
    var connections: [ConnectionID] = []
    /// Each pair's two connections in the order they were made (first to the first port).
    var pairsConnected: [(ConnectionID, ConnectionID)] = []
    var peerIDs: [ConnectionID: String] = [:]
    var partner: [ConnectionID: ConnectionID] = [:]
    var frames: [ConnectionID: [UInt8]] = [:]
    var ready = 0, received = 0, errors = 0

    init(transport: Transport, mode: Relay.Mode, wireMode: WireMode, pairs: Int, window: Int, payload: Int) {
        self.transport = transport
        self.mode = mode; self.wireMode = wireMode; self.pairs = pairs; self.window = window; self.payload = payload
    }

    func webSocketOpened(_ c: ConnectionID, remoteAddress: String, origin: String?) {
        connections.append(c)
        // Signal mode registers when the challenge arrives (v2) or at once (minimal).
        if mode != .signal { ready += 1 } else if wireMode == .minimal { transport.send(minimalRegister, to: c) }
    }

    func start() {
        let sdp = String(repeating: "a", count: payload)
        for (a, b) in pairsConnected {
            partner[a] = b
            partner[b] = a
        }
        for c in connections {
            let to = peerIDs[partner[c]!] ?? "000000000000"
            frames[c] = Array(#"{"type":"signal","to":"\#(to)","intentId":"bench","signal":{"type":"offer","sdp":"\#(sdp)"}}"#.utf8)
        }
        for c in connections {
            for _ in 0..<window { transport.send(frames[c]!, to: c) }
        }
    }

    func webSocketReceived(_ c: ConnectionID, text: [UInt8]) {
        switch mode {
        case .signal:
            // The relayed signal first: it is almost every frame, for every server measured.
            if contains(text, signalMarker) {
                received += 1
                // Answer the partner that sent it: keeps `window` messages in flight each way.
                transport.send(frames[c]!, to: c)
            } else if wireMode == .v2, let register = signedRegister(text) {
                transport.send(register, to: c)
            } else if contains(text, registeredMarker) {
                peerIDs[c] = peerID(inRegistered: text)
                ready += 1
            } else if contains(text, Array(#""type":"error""#.utf8)) {
                errors += 1
            }
        case .echo:
            received += 1
            transport.send(frames[c]!, to: c)
        }
    }

    func webSocketClosed(_ c: ConnectionID, cause: CloseCause) { errors += 1 }
    func webSocketConnectFailed(_ c: ConnectionID, reason: String) { errors += 1 }
    func webSocketRejected(_ c: ConnectionID, problem: FrameProblem) {}
}

// MARK: ring

/// Cost of one join + one leave on the pure `Ring` (ID allocation, insertion, change sets) at several
/// ring sizes: it should grow like F log N, not like N.
struct RingCost: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ring")

    @Option(help: "Comma list of ring sizes.") var sizes = "1000,10000,100000"
    @Option(help: "Join/leave pairs timed per size.") var operations = 20_000

    func run() throws {
        for size in sizes.split(separator: ",").compactMap({ Int($0) }) {
            var ring = Ring(policy: .auto, successorListLength: 3, seed: 1)
            for _ in 0..<size { _ = try ring.join(ring.allocateID()!) }
            var rng = SplitMix64(seed: 2)
            var changes = 0
            let t0 = nowNanos()
            for _ in 0..<operations {
                let id = ring.allocateID()!
                changes += try ring.join(id).values.reduce(0) { $0 + $1.count }
                let victim = ring.members[Int(rng.next() % UInt64(ring.count))]
                changes += try ring.leave(victim).values.reduce(0) { $0 + $1.count }
            }
            let ns = Double(nowNanos() - t0) / Double(operations)
            emit(["phase": "ring", "peers": size, "nsPerJoinAndLeave": ns, "updatesPerJoinAndLeave": Double(changes) / Double(operations),
                  "fingerRows": ring.fingerRows.count])
        }
    }
}
