import Cluster
import Redis
import ArgumentParser
import Foundation
import Logging
import Rendezvous
import RendezvousCore
import Ring
import Transport

/// `browsercloud serve`. Its settings are declared once, in Settings.swift (`Settings.serve`): this
/// command takes the arguments as they come and lets `Settings.resolve` read them with the environment
/// and the configuration file; the help lists the same table.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the rendezvous (signalling) server: ring meta-state, SDP relay, REST analytics, static bundle.",
        usage: "browsercloud serve [--config <file>] [--<setting> <value> | --<switch>] ... [--print-settings markdown|json|values]",
        discussion: """
        Every setting can also be set by an environment variable BROWSERCLOUD_<NAME> (upper case, '-' as \
        '_', e.g. BROWSERCLOUD_MAX_PEERS=50000) or in a configuration file (--config FILE or \
        BROWSERCLOUD_CONFIG; lines `max-peers = 50000`, `#` comments, `true`/`false` for switches). \
        Precedence: command line > environment > file > defaults. `--print-settings markdown|json|values` \
        prints the table (or the resolved values) and exits. See docs/operations.md.

        \(Settings.helpText)
        """)

    /// The settings as given (`--name value`, `--name=value`, `--switch`); see Settings.swift.
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var arguments: [String] = []

    func run() async throws {
        var arguments = arguments
        var printFormat: String?
        if let i = arguments.firstIndex(where: { $0 == "--print-settings" || $0.hasPrefix("--print-settings=") }) {
            if arguments[i] == "--print-settings" {
                guard i + 1 < arguments.count else { throw ValidationError("--print-settings takes markdown, json or values") }
                printFormat = arguments[i + 1]
                arguments.removeSubrange(i...(i + 1))
            } else {
                printFormat = String(arguments[i].dropFirst("--print-settings=".count))
                arguments.remove(at: i)
            }
        }
        let settings: ServeSettings
        do {
            settings = try Settings.resolve(arguments, environment: ProcessInfo.processInfo.environment)
            if let printFormat {
                FileHandle.standardOutput.write(Data(try Settings.render(printFormat, resolved: settings).utf8))
                return
            }
            try settings.validate()
        } catch let failure as Settings.Failure {
            throw ValidationError(failure.description)
        }
        try await serve(settings)
    }

    func serve(_ s: ServeSettings) async throws {
        bootstrapLogging(s.logLevel)
        let logger = Logger(label: "browsercloud")
        Transport.raiseFileLimit(to: s.maxConnections + 256)

        var config = ServerConfiguration()
        config.transport.host = s.host
        config.transport.port = s.port
        config.transport.maxMessageBytes = s.maxMessageBytes
        config.transport.maxConnections = s.maxConnections
        config.transport.maxHeaderBytes = s.maxHeaderBytes
        config.transport.maxSendQueueMessages = s.sendQueueMessages
        config.transport.maxSendQueueBytes = s.sendQueueBytes
        config.transport.receiveBufferBytes = s.receiveBufferBytes
        config.transport.writeBatchBytes = s.writeBatchBytes
        config.transport.trimMemorySeconds = s.trimMemory
        config.transport.pingAfterSeconds = s.pingAfter
        config.transport.hangupAfterSeconds = s.idleTimeout
        config.transport.permessageDeflate = s.permessageDeflate
        config.transport.useLibev = s.eventLoop == .epoll
        config.transport.eventStreamKeepaliveSeconds = s.eventKeepalive
        config.transport.tlsCertificatePath = s.tlsCert
        config.transport.tlsPrivateKeyPath = s.tlsKey
        config.transport.allowedOrigins = s.allowedOrigins.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        config.core.fingerPolicy = s.fingers
        config.core.successorListLength = s.successors
        config.core.maxPeers = s.maxPeers
        config.core.rateLimitPerSecond = s.rateLimit
        config.core.rateLimitBurst = s.rateBurst
        config.core.abusiveAfterDropped = s.abusiveAfter
        config.maxPendingAnalytics = s.analyticsQueue
        config.core.abusiveWindowSeconds = s.abusiveWindow
        config.core.abusiveFraction = s.abusiveFraction
        config.publicDirectory = s.public
        config.vendor = VendorFiles(tweetnaclPath: s.tweetnaclPath == "none" ? nil : s.tweetnaclPath,
                                    cryptojsDirectory: s.cryptojsPath == "none" ? nil : s.cryptojsPath)
        config.core.linkRelay = s.linkRelay
        config.core.linkRelayPerSecond = s.linkRelayRate
        config.core.linkRelayBurst = s.linkRelayBurst
        config.recordEventsPath = s.recordEvents
        config.seed = s.seed.flatMap { UInt64($0) }
        config.core.idLeaseSeconds = s.idLease
        config.stateFilePath = s.cluster == nil ? s.stateFile ?? s.secretFile + ".state" : nil
        if let url = s.cluster {
            var c = ClusterConfiguration(url: try RedisURL(url), name: s.instance ?? s.defaultInstanceName)
            c.prefix = s.clusterPrefix
            c.heartbeatInterval = s.heartbeatInterval
            c.instanceTimeout = s.instanceTimeout
            c.checkpointEntries = s.checkpointEntries
            c.maxQueued = s.clusterQueue
            config.cluster = c
        }
        config.startEmpty = s.startEmpty
        config.trustedProxies = Set(s.trustedProxyAddresses ?? [])
        config.core.decoding.maxCapabilitiesBytes = s.maxCapabilitiesBytes
        if let adminTokenFile = s.adminTokenFile {
            config.adminToken = try String(contentsOfFile: adminTokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            config.adminToken = s.adminToken
        }
        if let token = config.adminToken, token.count < 16 { throw ValidationError("the admin token must be at least 16 characters") }

        let identity = try ServerIdentity.loadOrCreate(at: s.serverKeyFile ?? s.secretFile + ".ed25519")
        logger.info("server key", metadata: ["serverKey": "\(identity.serverKey)"])
        let grace = s.shutdownGrace
        try await LongRunning.run("serve", grace: grace, logger: logger) { [host = s.host, redirectPort = s.redirectPort, config] in
            let server = try RendezvousServer(configuration: config, identity: identity, logger: logger)
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

extension ServeSettings {
    static func isInstanceName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// `<host name>-<port>`, cleaned to an instance name.
    var defaultInstanceName: String {
        let host = ProcessInfo.processInfo.hostName.map { Self.isInstanceName(String($0)) ? $0 : "-" }
        return String((String(host.prefix(50)) + "-\(port)").prefix(64))
    }

    /// `--trusted-proxies` parsed; nil when absent or when an entry is not an IP literal.
    var trustedProxyAddresses: [IPAddress]? {
        guard let trustedProxies else { return nil }
        let list = trustedProxies.split(separator: ",").map { IPAddress($0.trimmingCharacters(in: .whitespaces)) }
        return list.contains(nil) ? nil : list.compactMap { $0 }
    }

    /// The checks that involve more than one value's syntax; throws `Settings.Failure`.
    func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw Settings.Failure(description: message) } }
        try check((0...65535).contains(port), "--port must be 0...65535")
        try check(successors >= 1 && successors <= 32, "--successors must be 1...32")
        try check(maxMessageBytes >= 1024, "--max-message-bytes must be at least 1024")
        try check((1024...61440).contains(maxHeaderBytes), "--max-header-bytes must be 1024...61440")
        try check(maxPeers >= 1 && maxConnections >= 1, "--max-peers and --max-connections must be positive")
        try check(rateLimit > 0 && rateBurst >= 1 && abusiveAfter >= 1, "rate limits must be positive")
        try check(abusiveWindow >= 1 && abusiveFraction > 0, "--abusive-window must be at least 1 and --abusive-fraction positive")
        try check(analyticsQueue >= 1, "--analytics-queue must be at least 1")
        try check(eventKeepalive >= 1, "--event-keepalive must be at least 1 second")
        try check(sendQueueMessages >= 1 && sendQueueBytes >= 1024, "send queue limits too small")
        try check((128...65536).contains(receiveBufferBytes), "--receive-buffer-bytes must be 128...65536")
        try check((1024...1_048_576).contains(writeBatchBytes), "--write-batch-bytes must be 1024...1048576")
        try check(trimMemory >= 0, "--trim-memory must be 0 (never) or more seconds")
        try check(pingAfter >= 1 && idleTimeout > pingAfter && idleTimeout <= 65535, "--idle-timeout must exceed --ping-after (both in seconds)")
        try check(adminToken == nil || adminTokenFile == nil, "give --admin-token or --admin-token-file, not both")
        try check((tlsCert == nil) == (tlsKey == nil), "give --tls-cert and --tls-key together")
        try check(idLease >= 0 && idLease <= 86_400, "--id-lease must be 0...86400 seconds")
        try check(linkRelayRate > 0 && linkRelayBurst >= 1, "--link-relay-rate and --link-relay-burst must be positive")
        try check(trustedProxies == nil || trustedProxyAddresses != nil, "--trusted-proxies takes a comma list of IP addresses")
        try check(seed.map { UInt64($0) != nil } ?? true, "--seed takes a decimal number 0...18446744073709551615")
        if let cluster {
            do throws(RedisURLError) { _ = try RedisURL(cluster) } catch { throw Settings.Failure(description: "--cluster: \(error)") }
            try check(stateFile == nil, "--state-file does not apply with --cluster: the cluster keeps ID bindings in Redis")
        }
        try check(instance.map(Self.isInstanceName) ?? true, "--instance takes 1 to 64 letters, digits, '.', '-' or '_'")
        try check(clusterPrefix.count >= 1 && clusterPrefix.count <= 64 && !clusterPrefix.contains(where: { $0.isWhitespace }), "--cluster-prefix takes 1 to 64 characters without spaces")
        try check(heartbeatInterval >= 0.1 && instanceTimeout > heartbeatInterval && instanceTimeout <= 3600, "--instance-timeout must exceed --heartbeat-interval (at least 0.1 s), at most 3600 s")
        try check(checkpointEntries >= 10 && clusterQueue >= 100, "--checkpoint-entries must be at least 10 and --cluster-queue at least 100")
        if let redirectPort {
            try check(tlsCert != nil, "--redirect-port needs --tls-cert and --tls-key")
            try check((1...65535).contains(redirectPort) && redirectPort != port, "--redirect-port must be 1...65535 and differ from --port")
        }
        for path in [tlsCert, tlsKey].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: path) {
            throw Settings.Failure(description: "cannot read \(path)")
        }
    }
}
