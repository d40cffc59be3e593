import ArgumentParser
import Foundation
import Logging
import Rendezvous
import Ring

/// The settings of `serve`, declared once.
///
/// Each setting is one row of `Settings.serve` (its name, its help text, its unit) plus the property of
/// `ServeSettings` the row's key path names (its type and default). Everything else is derived from the
/// row, so adding a setting is a change in this file only:
/// - the command-line flag `--<name>` (a value, or nothing for a switch);
/// - the environment variable `BROWSERCLOUD_<NAME>` (upper case, `-` as `_`);
/// - the configuration file key `<name>` (`name = value` lines, `#` comments, `true`/`false` for switches);
/// - `serve --help` and the table in docs/operations.md (`browsercloud serve --print-settings markdown`;
///   Tests/integration/test_settings.py fails when the docs differ).
///
/// ArgumentParser still dispatches the subcommand and prints the help, but it does not declare the
/// settings: a second declaration (one `@Option` per setting) would be a second source that can drift
/// from this one. Precedence: command line > environment > configuration file > defaults.
struct ServeSettings: Sendable {
    var host = "127.0.0.1"
    var port = 9000
    var `public`: String?
    var tweetnaclPath = VendorFiles.debianTweetnaclPath
    var cryptojsPath = VendorFiles.debianCryptojsDirectory
    var fingers = FingerPolicy.auto
    var successors = 3
    var secretFile = "browsercloud.secret"
    var serverKeyFile: String?
    var adminToken: String?
    var adminTokenFile: String?
    var logLevel: Logger.Level = .info
    var maxMessageBytes = 64 * 1024
    var maxHeaderBytes = 4096
    var maxPeers = 10_000
    var maxConnections = 20_000
    var rateLimit = 50.0
    var rateBurst = 200.0
    var abusiveAfter = 1000
    var abusiveWindow = 10.0
    var abusiveFraction = 0.5
    var sendQueueMessages = 1024
    var sendQueueBytes = 4 * 1024 * 1024
    var receiveBufferBytes = 512
    var writeBatchBytes = 16 * 1024
    var trimMemory = 10
    var pingAfter = 10
    var idleTimeout = 30
    var analyticsQueue = 32
    var eventKeepalive = 15
    var allowedOrigins: String?
    var maxCapabilitiesBytes = 4096
    var eventLoop = EventLoop.epoll
    var permessageDeflate = false
    var shutdownGrace = 5.0
    var tlsCert: String?
    var tlsKey: String?
    var redirectPort: Int?
    var linkRelay = false
    var linkRelayRate = 20.0
    var linkRelayBurst = 100.0
    var recordEvents: String?
    var idLease = 60.0
    var stateFile: String?
    var startEmpty = false
    var trustedProxies: String?
    var cluster: String?
    var instance: String?
    var clusterPrefix = "browsercloud"
    var heartbeatInterval = 1.0
    var instanceTimeout = 5.0
    var checkpointEntries = 1000
    var clusterQueue = 10_000
    var seed: String?

    enum EventLoop: String, ExpressibleByArgument, CaseIterable, Sendable { case epoll, poll }
}

extension Settings {
    /// The table: one row per setting of `serve`, in the order of `--help` and the docs.
    static let serve: [Setting] = [
        .value("host", \.host, "Address to bind (IPv4/IPv6 literal, localhost, or 0.0.0.0 / :: for all interfaces)."),
        .value("port", \.port, "TCP port; 0 picks a free port and prints it on stdout."),
        .optional("public", \.public, "Directory served over HTTP (the browser bundle; index.html at /).", valueName: "directory"),
        .value("tweetnacl-path", \.tweetnaclPath, "TweetNaCl.js file (Debian package node-tweetnacl) served at /vendor/tweetnacl/nacl-fast.min.js: Ed25519 keys for pages without WebCrypto (plain http at a LAN address); 404 and a warning at start when missing; none turns it off.", valueName: "file"),
        .value("cryptojs-path", \.cryptojsPath, "Directory of CryptoJS's components (Debian package libjs-cryptojs), whose core-min.js, lib-typedarrays-min.js and sha256-min.js are served at /vendor/cryptojs/: SHA-256 for pages without WebCrypto; 404 and a warning at start when missing; none turns it off.", valueName: "directory"),
        .value("fingers", \.fingers, "Finger rows: auto, all, or a comma list of rows in 0...47 such as 0,10,12,20,30,47 (docs/overlay.md)."),
        .value("successors", \.successors, "Successor list length r pushed to each peer (1...32)."),
        .value("secret-file", \.secretFile, "Base name of the server's own files: the server key (<secret-file>.ed25519) and the state file (<secret-file>.state), unless --server-key-file and --state-file name them. The file itself is no longer read (re-registration tokens were retired).", valueName: "file"),
        .optional("server-key-file", \.serverKeyFile, "File holding the server's Ed25519 private key (64 hex), created (mode 0600) with a new key if missing; it signs peers' certificates, and its public key is published as serverKey (docs/protocol.md, \"Server identity\"). Keep it across restarts, with the state file.", absent: "<secret-file>.ed25519", valueName: "file"),
        .optional("admin-token", \.adminToken, "Bearer token enabling admin routes (DELETE /api/peers/<id>), at least 16 characters. Prefer --admin-token-file.", absent: "off", valueName: "token"),
        .optional("admin-token-file", \.adminTokenFile, "File holding the admin bearer token (preferred: not in the process list).", absent: "off", valueName: "file"),
        .value("log-level", \.logLevel, "Log level: trace, debug, info, notice, warning, error, critical."),
        .value("max-message-bytes", \.maxMessageBytes, "Largest WebSocket message accepted (at least 1024).", unit: "bytes"),
        .value("max-header-bytes", \.maxHeaderBytes, "Largest HTTP request head (request line and headers, 1024...61440); a larger one gets 431 (docs/api.md).", unit: "bytes"),
        .value("max-peers", \.maxPeers, "Most peers registered at once (server-full beyond)."),
        .value("max-connections", \.maxConnections, "Most simultaneous TCP connections of every kind (WebSocket and HTTP)."),
        .value("rate-limit", \.rateLimit, "Sustained messages per second per connection.", unit: "per second"),
        .value("rate-burst", \.rateBurst, "Messages a connection may send in a burst (the size of that token bucket)."),
        .value("abusive-after", \.abusiveAfter, "Messages dropped in a row for rate limiting before the connection is closed."),
        .value("abusive-window", \.abusiveWindow, "Window in which --abusive-fraction is measured.", unit: "seconds"),
        .value("abusive-fraction", \.abusiveFraction, "Close a connection whose dropped messages within --abusive-window reach this fraction of what --rate-limit allows in it (a steady flood at 1.5 x the limit)."),
        .value("send-queue-messages", \.sendQueueMessages, "Most messages queued for one receiver before it is disconnected as a slow consumer."),
        .value("send-queue-bytes", \.sendQueueBytes, "Most bytes queued for one receiver before it is disconnected as a slow consumer.", unit: "bytes"),
        .value("receive-buffer-bytes", \.receiveBufferBytes, "Receive buffer libwebsockets keeps for each WebSocket for its whole life (128...65536); lws also reads the socket in pieces of this size; larger messages arrive in pieces and are reassembled up to --max-message-bytes. Memory per idle peer against CPU per message: see docs/operations.md, \"Sizing\".", unit: "bytes"),
        .value("write-batch-bytes", \.writeBatchBytes, "Most bytes of queued messages written to one peer in one system call (1024...1048576; a larger message goes alone).", unit: "bytes"),
        .value("trim-memory", \.trimMemory, "Interval at which freed heap memory is returned to the system (glibc malloc_trim; 0: never).", unit: "seconds"),
        .value("ping-after", \.pingAfter, "Quiet time before the server pings a peer.", unit: "seconds"),
        .value("idle-timeout", \.idleTimeout, "Time without a pong or message before a peer counts as gone (a leave); more than --ping-after.", unit: "seconds"),
        .value("analytics-queue", \.analyticsQueue, "Most /api/network requests waiting for the analytics thread; more are answered 503 (docs/api.md)."),
        .value("event-keepalive", \.eventKeepalive, "Time between keep-alive comments on /api/events streams.", unit: "seconds"),
        .optional("allowed-origins", \.allowedOrigins, "Comma list of Origin values allowed to open WebSockets.", absent: "all", valueName: "origins"),
        .value("max-capabilities-bytes", \.maxCapabilitiesBytes, "Largest 'capabilities' object of a peer.", unit: "bytes"),
        .value("event-loop", \.eventLoop, "Event loop: epoll (libev; falls back to poll if the lws libev plugin is missing) or poll."),
        .switch("permessage-deflate", \.permessageDeflate, "Offer permessage-deflate compression (about 100 KB of memory per connection)."),
        .value("shutdown-grace", \.shutdownGrace, "Time, on SIGTERM or SIGINT, to tell peers the server is going away and let them disconnect.", unit: "seconds"),
        .optional("tls-cert", \.tlsCert, "PEM certificate (chain) file: with --tls-key, the port serves https and wss only.", valueName: "file"),
        .optional("tls-key", \.tlsKey, "PEM private key file of --tls-cert.", valueName: "file"),
        .optional("redirect-port", \.redirectPort, "With TLS: also listen for plain http on this port and answer 301 to the https URL."),
        .switch("link-relay", \.linkRelay, "Relay link frames between peers that cannot reach each other (last resort; costs server bandwidth; docs/protocol.md, \"Links\")."),
        .value("link-relay-rate", \.linkRelayRate, "Relayed link frames per second per connection, sustained.", unit: "per second"),
        .value("link-relay-burst", \.linkRelayBurst, "Relayed link frames a connection may send in a burst."),
        .value("id-lease", \.idLease, "Time an ID stays leased to its holder after its session ends: no newcomer gets it, and only a register signed by the holder's key takes it back (0 frees IDs at once). The default covers the clients' reconnect backoff (native peers: at most 10 s +25 %), a few failed attempts and the going-away spread (up to 10.25 s); docs/protocol.md.", unit: "seconds"),
        .optional("state-file", \.stateFile, "File keeping ID bindings (ID, holder epoch, holder's public key, lease end) across restarts: saved every second and on shutdown, loaded at start as leases (docs/protocol.md, \"Restarts\").", absent: "<secret-file>.state", valueName: "file"),
        .optional("trusted-proxies", \.trustedProxies, "Comma list of proxy addresses (IP literals, such as 127.0.0.1 for nginx on this machine) whose X-Forwarded-For gives the client's address. The server vouches for a native peer's link URL only when its host is the address the peer connects from (docs/protocol.md, \"Vouched URLs\"); a connection with X-Forwarded-For from any other address gets no vouched URL.", absent: "none", valueName: "addresses"),
        .switch("start-empty", \.startEmpty, "Start without the previous ID bindings when the state file is unreadable or corrupt (otherwise the server refuses to start)."),
        .optional("cluster", \.cluster, "Cluster mode: share one ring with the other instances using this Redis server, redis://HOST:PORT[/DB] (docs/cluster.md). The ID bindings then live in Redis (no --state-file). Off: one process, all in memory.", absent: "off", valueName: "url"),
        .optional("instance", \.instance, "This instance's name in the cluster (letters, digits, '.', '-', '_'; at most 64). Two running instances must not share a name.", absent: "<host name>-<port>", valueName: "name"),
        .value("cluster-prefix", \.clusterPrefix, "Prefix of the cluster's Redis keys and channels: clusters sharing one Redis server need different prefixes.", valueName: "prefix"),
        .value("heartbeat-interval", \.heartbeatInterval, "Time between an instance's heartbeats in Redis.", unit: "seconds"),
        .value("instance-timeout", \.instanceTimeout, "Time without a heartbeat after which an instance counts as gone: the others lease its peers' IDs, so the peers get them back through another instance. More than --heartbeat-interval.", unit: "seconds"),
        .value("checkpoint-entries", \.checkpointEntries, "Log entries between snapshots of the ring in Redis (the log is trimmed behind each); a new instance loads the latest and applies what follows."),
        .value("cluster-queue", \.clusterQueue, "Most proposals and forwarded messages waiting while Redis is unreachable (the oldest forwarded messages are dropped beyond)."),
        .optional("seed", \.seed, "Seed (a decimal 64-bit number) of the server's random choices: the first ID and the tie-breaks of ID allocation, epochs, the going-away spread. For reproducible tests and simulations; in a cluster the first instance's seed is used by all. Off: drawn from the system generator.", absent: "off", valueName: "number"),
        .optional("record-events", \.recordEvents, "Diagnostics: write every event given to the server core and every action it returned to this file, as JSON lines (replayable; docs/architecture.md). It holds peers' messages and addresses: treat it as sensitive.", absent: "off", valueName: "file"),
    ]
}

/// One setting: its name (the flag without `--` and the file key), help, unit, and how a text value
/// becomes the typed property of `ServeSettings`.
struct Setting: Sendable {
    let name: String
    let help: String
    /// The unit of the value (`seconds`, `bytes`, …), shown in the help and the docs; nil when none.
    let unit: String?
    /// The placeholder of the value in `--help` (`<file>`); nil for a switch, which takes no value.
    let valueName: String?
    /// The default as the docs show it.
    let defaultText: String
    /// The value kinds `--print-settings json` reports: `switch`, `integer`, `number`, `text`, or a choice list.
    let kind: String
    let choices: [String]
    /// Sets the property from a text value; nil when the text is not a valid value.
    let assign: @Sendable (inout ServeSettings, String) -> Bool
    /// The current value of the property as text (`none` when absent).
    let read: @Sendable (ServeSettings) -> String

    var isSwitch: Bool { valueName == nil }
    var flag: String { "--" + name }
    var environmentName: String { Settings.environmentName(name) }

    static func value<T: ExpressibleByArgument & Sendable>(_ name: String, _ key: WritableKeyPath<ServeSettings, T> & Sendable, _ help: String,
                                                           unit: String? = nil, valueName: String? = nil) -> Setting {
        let (kind, choices) = describe(T.self)
        return Setting(name: name, help: help, unit: unit, valueName: valueName ?? name.split(separator: "-").last.map(String.init) ?? name,
                       defaultText: text(ServeSettings()[keyPath: key]), kind: kind, choices: choices,
                       assign: { s, v in guard let x = T(argument: v) else { return false }; s[keyPath: key] = x; return true },
                       read: { text($0[keyPath: key]) })
    }

    static func optional<T: ExpressibleByArgument & Sendable>(_ name: String, _ key: WritableKeyPath<ServeSettings, T?> & Sendable, _ help: String,
                                                              absent: String = "none", unit: String? = nil, valueName: String? = nil) -> Setting {
        let (kind, choices) = describe(T.self)
        return Setting(name: name, help: help, unit: unit, valueName: valueName ?? name.split(separator: "-").last.map(String.init) ?? name,
                       defaultText: absent, kind: kind, choices: choices,
                       assign: { s, v in guard let x = T(argument: v) else { return false }; s[keyPath: key] = x; return true },
                       read: { $0[keyPath: key].map(text) ?? "none" })
    }

    static func `switch`(_ name: String, _ key: WritableKeyPath<ServeSettings, Bool> & Sendable, _ help: String) -> Setting {
        Setting(name: name, help: help, unit: nil, valueName: nil, defaultText: "false", kind: "switch", choices: [],
                assign: { s, v in guard let b = Settings.truth(v) else { return false }; s[keyPath: key] = b; return true },
                read: { $0[keyPath: key] ? "true" : "false" })
    }

    private static func describe(_ type: Any.Type) -> (String, [String]) {
        if type == Int.self { return ("integer", []) }
        if type == Double.self { return ("number", []) }
        if let t = type as? any ExpressibleByArgument.Type, !t.allValueStrings.isEmpty { return ("choice", t.allValueStrings) }
        return ("text", [])
    }

    /// A value as the docs and `--print-settings values` show it (`50`, not `50.0`).
    private static func text<T: ExpressibleByArgument>(_ value: T) -> String {
        if let d = value as? Double, d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return value.defaultValueDescription
    }
}

/// Resolution of the settings of `serve` from the command line, the environment and a configuration
/// file (see `ServeSettings` for the table and the derived names).
enum Settings {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// The file setting: names the configuration file; not a file key itself.
    static let configFlag = "--config", configEnvironment = "BROWSERCLOUD_CONFIG"

    static func environmentName(_ name: String) -> String {
        "BROWSERCLOUD_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    static func truth(_ v: String) -> Bool? {
        switch v.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off", "": return false
        default: return nil
        }
    }

    static func setting(named name: String) -> Setting? { serve.first { $0.name == name } }

    /// The settings from `arguments` (the command line after `serve`), `environment` and the
    /// configuration file they name, read with `readFile` (nil: unreadable). Throws `Failure` naming the
    /// source (the command line, the variable, or `file:line`) of an unknown name or a bad value.
    static func resolve(_ arguments: [String], environment: [String: String],
                        readFile: (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }) throws -> ServeSettings {
        // The command line: `--name value`, `--name=value`, `--switch`.
        var cli: [(Setting, String)] = []
        var configPath = environment[configEnvironment]
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            guard arg.hasPrefix("--") else { throw Failure(description: "unexpected argument '\(arg)'") }
            let body = arg.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            var inline: String? = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
            if "--" + name == configFlag || name != "" && setting(named: name)?.isSwitch == false {
                if inline == nil {
                    guard i < arguments.count else { throw Failure(description: "--\(name) needs a value") }
                    inline = arguments[i]
                    i += 1
                }
                if "--" + name == configFlag { configPath = inline } else { cli.append((setting(named: name)!, inline!)) }
            } else if let s = setting(named: name) {
                guard inline == nil else { throw Failure(description: "--\(name) is a switch and takes no value") }
                cli.append((s, "true"))
            } else {
                throw Failure(description: "unknown option '--\(name)' (browsercloud serve --help lists the settings)")
            }
        }

        var file: [(Setting, String, String)] = []
        if let configPath {
            guard let text = readFile(configPath) else { throw Failure(description: "cannot read the configuration file \(configPath)") }
            for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                    .trimmingCharacters(in: .whitespaces) ?? ""
                if line.isEmpty { continue }
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let place = "\(configPath):\(n + 1)"
                guard parts.count == 2, !parts[0].isEmpty else { throw Failure(description: "\(place): expected `name = value`") }
                guard let s = setting(named: parts[0]) else { throw Failure(description: "\(place): unknown setting '\(parts[0])'") }
                file.append((s, parts[1], place))
            }
        }

        var out = ServeSettings()
        func apply(_ s: Setting, _ value: String, from source: String) throws {
            guard s.assign(&out, value) else {
                let wanted = s.isSwitch ? "true or false" : !s.choices.isEmpty ? "one of " + s.choices.joined(separator: ", ")
                    : ["integer": "an integer", "number": "a number"][s.kind] ?? "a valid value"
                throw Failure(description: "\(source): '\(s.name)' takes \(wanted), not '\(value)'")
            }
        }
        for (s, value, place) in file { try apply(s, value, from: place) }
        for s in serve { if let v = environment[s.environmentName] { try apply(s, v, from: s.environmentName) } }
        for (s, value) in cli { try apply(s, value, from: "the command line") }
        return out
    }

    /// The settings as `--print-settings` shows them: `markdown` (the docs table), `json` (the table
    /// with its derived names, for tests), or `values` (the resolved `name = value` lines, a valid
    /// configuration file).
    static func render(_ format: String, resolved: ServeSettings? = nil) throws -> String {
        switch format {
        case "markdown":
            var lines = ["| flag | environment | default | unit | meaning |", "|---|---|---|---|---|",
                         "| `\(configFlag)` | `\(configEnvironment)` | none | | configuration file of `name = value` lines |"]
            for s in serve {
                let flag = s.isSwitch ? "`\(s.flag)`" : "`\(s.flag) <\(s.valueName!)>`"
                lines.append("| \(flag) | `\(s.environmentName)` | \(s.defaultText) | \(s.unit ?? "") | \(s.help.replacingOccurrences(of: "|", with: "\\|")) |")
            }
            return lines.joined(separator: "\n") + "\n"
        case "json":
            let rows: [[String: Any]] = serve.map {
                ["name": $0.name, "flag": $0.flag, "environment": $0.environmentName, "fileKey": $0.name, "kind": $0.kind,
                 "choices": $0.choices, "default": $0.defaultText, "unit": $0.unit ?? NSNull(), "help": $0.help]
            }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            return String(decoding: data, as: UTF8.self) + "\n"
        case "values":
            let s = resolved ?? ServeSettings()
            return serve.map { "\($0.name) = \($0.read(s))" }.joined(separator: "\n") + "\n"
        default:
            throw Failure(description: "--print-settings takes markdown, json or values, not '\(format)'")
        }
    }

    /// The settings part of `serve --help`: each flag on its own line, its help below it, wrapped to
    /// fit 80 columns (so ArgumentParser does not wrap it again).
    static var helpText: String {
        func wrap(_ text: String) -> [String] {
            var lines: [String] = [], line = ""
            for word in text.split(separator: " ") {
                if !line.isEmpty && line.count + 1 + word.count > 70 { lines.append("      " + line); line = "" }
                line += (line.isEmpty ? "" : " ") + word
            }
            return lines + ["      " + line]
        }
        var lines = ["SETTINGS (each also BROWSERCLOUD_<NAME> in the environment and `name = value`",
                     "in the --config file):", "  --config <file>"] + wrap("Configuration file of `name = value` lines (also BROWSERCLOUD_CONFIG).")
        for s in serve {
            lines.append("  " + (s.isSwitch ? s.flag : "\(s.flag) <\(s.valueName!)>"))
            lines += wrap("\(s.help) (default: \(s.defaultText)\(s.unit.map { ", \($0)" } ?? ""))")
        }
        return lines.joined(separator: "\n")
    }
}
