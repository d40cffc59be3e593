import ArgumentParser
import Foundation
import Logging
import Rendezvous
import Transport
import Ring

struct BrowserCloud: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "browsercloud",
        abstract: "BrowserCloud: a community cloud on a peer-to-peer overlay of browsers and machines.",
        version: browserCloudVersion,
        subcommands: [Serve.self, PeerCommand.self, Submit.self, Render.self, Simulate.self]
    )

    /// `serve` also takes its settings from the environment and a configuration file (see Settings).
    static func run(_ arguments: [String]) async {
        var arguments = arguments
        if arguments.first == "serve", !arguments.contains("--help"), !arguments.contains("-h") {
            do {
                arguments = ["serve"] + (try Settings.expand(Array(arguments.dropFirst()), command: Serve.self,
                                                              environment: ProcessInfo.processInfo.environment))
            } catch {
                exit(withError: error)
            }
        }
        await main(arguments)
    }
}

/// The process entry point. The main thread starts the command as a task and waits for it; see
/// `LongRunning.prepareSignals` for why the long-running subcommands do not use an async `main`.
@main
enum Entry {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, ["serve", "peer", "submit"].contains(first) { LongRunning.prepareSignals() }
        let done = DispatchSemaphore(value: 0)
        // Detached: `main` is on the main actor, whose queue nothing drains while this thread waits.
        Task.detached {
            await BrowserCloud.run(arguments)
            done.signal()
        }
        done.wait()
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the rendezvous (signalling) server: ring meta-state, SDP relay, REST analytics, static bundle.",
        discussion: """
        Every flag can also be set by an environment variable BROWSERCLOUD_<FLAG> (upper case, '-' as \
        '_', e.g. BROWSERCLOUD_MAX_PEERS=50000) or in a configuration file (--config FILE or \
        BROWSERCLOUD_CONFIG; lines `max-peers = 50000`, `#` comments, `true`/`false` for switches). \
        Precedence: command line > environment > file > defaults. See docs/operations.md.
        """)

    @Option(help: "Configuration file of `name = value` lines (also BROWSERCLOUD_CONFIG).")
    var config: String?

    @Option(help: "Address to bind (IPv4/IPv6 literal, localhost, or 0.0.0.0 for all interfaces).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free port and prints it).")
    var port = 9000

    @Option(help: "Directory served over HTTP (index.html at /).")
    var `public`: String?

    @Option(help: "Finger rows: auto, all, or a comma list of rows in 0...47 such as 0,10,12,20,30,47.")
    var fingers = FingerPolicy.auto

    @Option(help: "Successor list length r pushed to each peer.")
    var successors = 3

    @Option(help: "File holding the token secret (created with a random secret if missing).")
    var secretFile = "browsercloud.secret"

    @Option(help: "Bearer token enabling admin routes (DELETE /api/peers/<id>). Prefer --admin-token-file.")
    var adminToken: String?

    @Option(help: "File holding the admin bearer token.")
    var adminTokenFile: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Largest WebSocket message accepted, in bytes.")
    var maxMessageBytes = 64 * 1024

    @Option(help: "Largest HTTP request head (request line and headers), in bytes; a larger one gets 431.")
    var maxHeaderBytes = 4096

    @Option(help: "Most peers registered at once.")
    var maxPeers = 10_000

    @Option(help: "Most simultaneous connections (WebSocket and HTTP).")
    var maxConnections = 20_000

    @Option(help: "Sustained messages per second per connection.")
    var rateLimit = 50.0

    @Option(help: "Messages a connection may send in a burst.")
    var rateBurst = 200.0

    @Option(help: "Messages dropped in a row for rate limiting before the connection is closed.")
    var abusiveAfter = 1000

    @Option(help: "Seconds of the window in which --abusive-fraction is measured.")
    var abusiveWindow = 10.0

    @Option(help: "Close a connection whose dropped messages within --abusive-window reach this fraction of what --rate-limit allows in it.")
    var abusiveFraction = 0.5

    @Option(help: "Most messages queued for one receiver before it is disconnected as a slow consumer.")
    var sendQueueMessages = 1024

    @Option(help: "Most bytes queued for one receiver before it is disconnected as a slow consumer.")
    var sendQueueBytes = 4 * 1024 * 1024

    @Option(help: "Seconds without traffic before the server pings a peer.")
    var pingAfter = 10

    @Option(help: "Seconds without a pong or message before a peer counts as gone (a leave).")
    var idleTimeout = 30

    @Option(help: "Most /api/network requests waiting for the analytics thread; more are answered 503.")
    var analyticsQueue = 32

    @Option(help: "Seconds between keep-alive comments on /api/events streams.")
    var eventKeepalive = 15

    @Option(help: "Comma list of allowed Origin values for WebSockets (default: allow all).")
    var allowedOrigins: String?

    @Option(help: "Largest 'capabilities' object, in bytes.")
    var maxCapabilitiesBytes = 4096

    @Option(help: "Event loop: epoll (libev; falls back to poll if the lws libev plugin is missing) or poll.")
    var eventLoop: EventLoop = .epoll

    enum EventLoop: String, ExpressibleByArgument { case epoll, poll }

    @Flag(help: "Offer permessage-deflate (about 100 KB of memory per connection).")
    var permessageDeflate = false

    @Option(help: "Seconds to wait, on SIGTERM or SIGINT, for peers to be told the server is going away and to disconnect.")
    var shutdownGrace = 5.0

    @Option(help: "PEM certificate (chain) file: with --tls-key, the port serves https and wss only.")
    var tlsCert: String?

    @Option(help: "PEM private key file of --tls-cert.")
    var tlsKey: String?

    @Option(help: "With TLS: also listen for plain http on this port and redirect every request to https.")
    var redirectPort: Int?

    @Flag(help: "Relay link frames between peers that cannot reach each other (last resort; off by default).")
    var linkRelay = false

    @Option(help: "Relayed link frames per second per connection (sustained).")
    var linkRelayRate = 20.0

    @Option(help: "Relayed link frames a connection may send in a burst.")
    var linkRelayBurst = 100.0

    @Option(help: "Diagnostics: write every event given to the server core and every action it returned to this file, as JSON lines (off by default; replayable, docs/architecture.md).")
    var recordEvents: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard successors >= 1 && successors <= 32 else { throw ValidationError("--successors must be 1...32") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        guard (1024...61440).contains(maxHeaderBytes) else { throw ValidationError("--max-header-bytes must be 1024...61440") }
        guard maxPeers >= 1, maxConnections >= 1 else { throw ValidationError("--max-peers and --max-connections must be positive") }
        guard rateLimit > 0, rateBurst >= 1, abusiveAfter >= 1 else { throw ValidationError("rate limits must be positive") }
        guard abusiveWindow >= 1, abusiveFraction > 0 else { throw ValidationError("--abusive-window must be at least 1 and --abusive-fraction positive") }
        guard analyticsQueue >= 1 else { throw ValidationError("--analytics-queue must be at least 1") }
        guard eventKeepalive >= 1 else { throw ValidationError("--event-keepalive must be at least 1 second") }
        guard sendQueueMessages >= 1, sendQueueBytes >= 1024 else { throw ValidationError("send queue limits too small") }
        guard pingAfter >= 1, idleTimeout > pingAfter, idleTimeout <= 65535 else {
            throw ValidationError("--idle-timeout must exceed --ping-after (both in seconds)")
        }
        if adminToken != nil && adminTokenFile != nil { throw ValidationError("give --admin-token or --admin-token-file, not both") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("give --tls-cert and --tls-key together") }
        guard linkRelayRate > 0, linkRelayBurst >= 1 else { throw ValidationError("--link-relay-rate and --link-relay-burst must be positive") }
        if let redirectPort {
            guard tlsCert != nil else { throw ValidationError("--redirect-port needs --tls-cert and --tls-key") }
            guard (1...65535).contains(redirectPort), redirectPort != port else { throw ValidationError("--redirect-port must be 1...65535 and differ from --port") }
        }
        for path in [tlsCert, tlsKey].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("cannot read \(path)")
        }
    }

    func run() async throws {
        bootstrapLogging(logLevel)
        let logger = Logger(label: "browsercloud")
        Transport.raiseFileLimit(to: maxConnections + 256)

        var config = ServerConfiguration()
        config.transport.host = host
        config.transport.port = port
        config.transport.maxMessageBytes = maxMessageBytes
        config.transport.maxConnections = maxConnections
        config.transport.maxHeaderBytes = maxHeaderBytes
        config.transport.maxSendQueueMessages = sendQueueMessages
        config.transport.maxSendQueueBytes = sendQueueBytes
        config.transport.pingAfterSeconds = pingAfter
        config.transport.hangupAfterSeconds = idleTimeout
        config.transport.permessageDeflate = permessageDeflate
        config.transport.useLibev = eventLoop == .epoll
        config.transport.eventStreamKeepaliveSeconds = eventKeepalive
        config.transport.tlsCertificatePath = tlsCert
        config.transport.tlsPrivateKeyPath = tlsKey
        config.transport.allowedOrigins = allowedOrigins.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        config.fingerPolicy = fingers
        config.successorListLength = successors
        config.maxPeers = maxPeers
        config.rateLimitPerSecond = rateLimit
        config.rateLimitBurst = rateBurst
        config.abusiveAfterDropped = abusiveAfter
        config.maxPendingAnalytics = analyticsQueue
        config.abusiveWindowSeconds = abusiveWindow
        config.abusiveFraction = abusiveFraction
        config.publicDirectory = `public`
        config.linkRelay = linkRelay
        config.linkRelayPerSecond = linkRelayRate
        config.linkRelayBurst = linkRelayBurst
        config.recordEventsPath = recordEvents
        config.decoding.maxCapabilitiesBytes = maxCapabilitiesBytes
        if let adminTokenFile {
            config.adminToken = try String(contentsOfFile: adminTokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            config.adminToken = adminToken
        }
        if let token = config.adminToken, token.count < 16 { throw ValidationError("the admin token must be at least 16 characters") }

        let secret = try TokenAuthority.loadOrCreateSecret(at: secretFile)
        let grace = shutdownGrace
        try await LongRunning.run("serve", grace: grace, logger: logger) { [host, redirectPort, config] in
            let server = try RendezvousServer(configuration: config, secret: secret, logger: logger)
            try server.start()
            var redirect: RedirectServer?
            if let redirectPort {
                let r = RedirectServer(host: host, port: redirectPort, httpsPort: server.port, logger: logger)
                do { try r.start() } catch { server.stop(); throw error }
                redirect = r
            }
            // Machine-readable line for scripts and tests (the port matters with --port 0).
            let shownHost = host.contains(":") ? "[\(host)]" : host
            FileHandle.standardOutput.write(Data("browsercloud: listening on \(shownHost):\(server.port)\n".utf8))
            await untilShutdown()
            logger.info("shutting down")
            try await blocking { [redirect] in
                redirect?.stop()
                server.shutdown(grace: grace)
            }
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension FingerPolicy: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { description }
}
