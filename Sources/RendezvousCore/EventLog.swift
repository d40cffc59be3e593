import ConnectionTypes
import Hex
import Ring
import WireProtocol

/// The line-oriented form of the core's events and actions (JSON lines, UTF-8, one object per line,
/// keys sorted, so equal values give equal bytes), for recording a server run
/// (`browsercloud serve --record-events FILE`) and replaying it (the replay test).
///
/// The first line is the header: `{"format":"browsercloud-rendezvous-events/2","configuration":{...}}`
/// with every `MembershipConfiguration` value (the random seed as a decimal string, being 64 bits).
/// Every further line is one event and the actions the core returned for it:
/// `{"event":{"type":"received","connection":3,"now":12.5,"wallClock":1764480000.25,"text":"..."},"actions":[...]}`.
/// Frame bytes are written as `text` when they are UTF-8, as `hex` otherwise. An action is
/// `{"send":3,"message":"<the frame's text>"}`, `{"close":3,"status":1008,"reason":"..."}` or
/// `{"publish":"join"|"leave"|"replaced"|"updated","peerId":"...",...}` or
/// `{"analytics":"joined"|"left"|"record","peerId":"...","record":{...}}`.
/// The server's private key is not written: a replay must be given the same `CredentialIssuer` (the
/// same server key), so that it signs the same certificates.
public enum EventLog {
    /// Version 2: `opened` carries the challenge nonce, restored bindings their public key.
    public static let format = "browsercloud-rendezvous-events/2"

    /// A malformed log line (its 1-based number and what was wrong).
    public struct Malformed: Error, CustomStringConvertible {
        public var line: Int
        public var problem: String
        public var description: String { "event log line \(line): \(problem)" }
    }

    // MARK: Writing

    /// The header line (with its newline).
    public static func header(_ c: MembershipConfiguration) -> [UInt8] {
        let configuration: JSONValue = .object([
            "fingerPolicy": .string(c.fingerPolicy.description),
            "successorListLength": n(c.successorListLength),
            "maxPeers": n(c.maxPeers),
            "rateLimitPerSecond": .number(c.rateLimitPerSecond),
            "rateLimitBurst": .number(c.rateLimitBurst),
            "abusiveAfterDropped": n(c.abusiveAfterDropped),
            "abusiveWindowSeconds": .number(c.abusiveWindowSeconds),
            "abusiveFraction": .number(c.abusiveFraction),
            "decoding": .object([
                "maxIntentIdLength": n(c.decoding.maxIntentIdLength),
                "maxCapabilitiesBytes": n(c.decoding.maxCapabilitiesBytes),
                "maxReportKeys": n(c.decoding.maxReportKeys),
                "maxKeyLength": n(c.decoding.maxKeyLength),
                "maxReportValue": .number(c.decoding.maxReportValue),
            ]),
            "seed": .string(String(c.seed)),
            "linkRelay": .bool(c.linkRelay),
            "linkRelayPerSecond": .number(c.linkRelayPerSecond),
            "linkRelayBurst": .number(c.linkRelayBurst),
            "maxMessageBytes": n(c.maxMessageBytes),
            "idleTimeoutSeconds": n(c.idleTimeoutSeconds),
            "idLeaseSeconds": .number(c.idLeaseSeconds),
        ])
        return JSONValue.object(["format": .string(format), "configuration": configuration]).encoded() + [0x0A]
    }

    /// One event line (with its newline): the event and the actions the core returned for it.
    public static func line(_ event: Event, _ actions: [Action]) -> [UInt8] {
        JSONValue.object(["event": json(event), "actions": .array(actions.map(json))]).encoded() + [0x0A]
    }

    public static func json(_ event: Event) -> JSONValue {
        switch event {
        case .opened(let c, let remoteAddress, let nonce, let now):
            return .object(["type": "opened", "connection": id(c), "remoteAddress": .string(remoteAddress), "nonce": .string(nonce),
                            "now": .number(now)])
        case .received(let c, let text, let now, let wallClock):
            var o: [String: JSONValue] = ["type": "received", "connection": id(c), "now": .number(now), "wallClock": .number(wallClock)]
            bytes(text, into: &o, textKey: "text", hexKey: "hex")
            return .object(o)
        case .rejected(let c, let problem, let now):
            var o: [String: JSONValue] = ["type": "rejected", "connection": id(c), "now": .number(now)]
            switch problem {
            case .binary: o["problem"] = "binary"
            case .tooLarge(let size): o["problem"] = "too-large"; o["bytes"] = n(size)
            }
            return .object(o)
        case .controlFrames(let c, let count, let now):
            return .object(["type": "control-frames", "connection": id(c), "count": n(count), "now": .number(now)])
        case .closed(let c, let cause, let now):
            return .object(["type": "closed", "connection": id(c), "cause": .string(cause.rawValue), "now": .number(now)])
        case .evict(let peer, let now):
            return .object(["type": "evict", "peerId": .string(peer.hex), "now": .number(now)])
        case .restored(let list, let nextEpoch, let now):
            return .object(["type": "restored", "nextEpoch": .string(String(nextEpoch)), "now": .number(now),
                            "bindings": .array(list.map { .object(["peerId": .string($0.peer.hex), "epoch": .string(String($0.epoch)),
                                                                   "publicKey": .string($0.publicKey),
                                                                   "remaining": .number($0.remaining)]) })])
        case .goingAway(let spreadMs):
            return .object(["type": "going-away", "spreadMs": n(spreadMs)])
        case .applied(let mutation, let at):
            return .object(["type": "applied", "mutation": mutation.json, "at": .number(at)])
        case .forwarded(let message):
            return .object(["type": "forwarded", "message": message.json])
        case .logAvailability(let available):
            return .object(["type": "log-availability", "available": .bool(available)])
        case .loadedSnapshot(let snapshot):
            return .object(["type": "loaded-snapshot", "snapshot": snapshot.json])
        }
    }

    public static func json(_ action: Action) -> JSONValue {
        switch action {
        case .send(let c, let message):
            var o: [String: JSONValue] = ["send": id(c)]
            bytes(message.encoded(), into: &o, textKey: "message", hexKey: "messageHex")
            return .object(o)
        case .close(let c, let status, let reason):
            return .object(["close": id(c), "status": n(Int(status)), "reason": .string(reason)])
        case .publish(let event):
            switch event {
            case .join(let p):
                return .object(["publish": "join", "peerId": .string(p.hex)])
            case .leave(let p, let reason):
                return .object(["publish": "leave", "peerId": .string(p.hex), "reason": .string(reason.rawValue)])
            case .replaced(let p):
                return .object(["publish": "replaced", "peerId": .string(p.hex)])
            case .updated(let p, let updates):
                return .object(["publish": "updated", "peerId": .string(p.hex), "updates": .array(updates.map(json))])
            }
        case .analytics(let change):
            func record(_ r: PeerRecord) -> JSONValue {
                var o: [String: JSONValue] = ["connection": id(r.connection), "connectedAt": .string(r.connectedAt),
                         "remoteAddress": .string(r.remoteAddress), "capabilities": r.capabilities.map(JSONValue.object) ?? .null,
                         "stats": .object(r.stats.mapValues(JSONValue.number))]
                if let url = r.vouchedURL { o["vouchedUrl"] = .string(url) }
                if !r.instance.isEmpty { o["instance"] = .string(r.instance) }
                return .object(o)
            }
            switch change {
            case .joined(let p, let r): return .object(["analytics": "joined", "peerId": .string(p.hex), "record": record(r)])
            case .left(let p): return .object(["analytics": "left", "peerId": .string(p.hex)])
            case .record(let p, let r): return .object(["analytics": "record", "peerId": .string(p.hex), "record": record(r)])
            }
        case .propose(let mutation):
            return .object(["propose": mutation.json])
        case .forward(let instance, let message):
            return .object(["forward": .string(instance), "message": message.json])
        case .snapshot(let snapshot):
            return .object(["snapshot": snapshot.json])
        }
    }

    static func json(_ update: RingUpdate) -> JSONValue {
        func peer(_ p: PeerID?) -> JSONValue { p.map { .string($0.hex) } ?? .null }
        switch update {
        case .config(let rows): return .object(["config": .array(rows.map(n))])
        case .predecessor(let p): return .object(["predecessor": peer(p)])
        case .successors(let list): return .object(["successors": .array(list.map(peer))])
        case .finger(let row, let start, let p): return .object(["finger": n(row), "start": peer(start), "peerId": peer(p)])
        }
    }

    // MARK: Reading

    /// A parsed log: the configuration of its header and, per event, the actions recorded for it.
    public struct Recording: Sendable {
        public var configuration: MembershipConfiguration
        public var entries: [(event: Event, actions: [JSONValue])]
    }

    /// Parses a whole log (the header, then one event per line; empty lines are skipped).
    public static func parse(_ data: [UInt8]) throws(Malformed) -> Recording {
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
            .filter { !$0.element.isEmpty }.makeIterator()
        guard let (index, first) = lines.next() else { throw Malformed(line: 1, problem: "empty log") }
        let header = try value(Array(first), line: index + 1)
        guard header["format"]?.stringValue == format else { throw Malformed(line: index + 1, problem: "not a \(format) header") }
        guard let c = header["configuration"] else { throw Malformed(line: index + 1, problem: "no configuration") }
        var recording = Recording(configuration: try configuration(c, line: index + 1), entries: [])
        while let (index, text) = lines.next() {
            let v = try value(Array(text), line: index + 1)
            guard let e = v["event"], let actions = v["actions"]?.arrayValue else {
                throw Malformed(line: index + 1, problem: "expected {\"event\":...,\"actions\":[...]}")
            }
            recording.entries.append((try event(e, line: index + 1), actions))
        }
        return recording
    }

    /// The event of a `json(_:)` value.
    public static func event(_ v: JSONValue, line: Int = 0) throws(Malformed) -> Event {
        func bad(_ what: String) -> Malformed { Malformed(line: line, problem: what) }
        func number(_ key: String) throws(Malformed) -> Double {
            guard case .number(let x)? = v[key] else { throw bad("event needs a number \(key)") }
            return x
        }
        func integer(_ key: String) throws(Malformed) -> Int {
            let x = try number(key)
            guard let i = Int(exactly: x) else { throw bad("\(key) must be an integer") }
            return i
        }
        func connection() throws(Malformed) -> ConnectionID {
            let x = try number("connection")
            guard let c = ConnectionID(exactly: x) else { throw bad("connection must be a non-negative integer") }
            return c
        }
        switch v["type"]?.stringValue {
        case "opened":
            guard let remote = v["remoteAddress"]?.stringValue, let nonce = v["nonce"]?.stringValue else {
                throw bad("opened needs remoteAddress and nonce")
            }
            return .opened(try connection(), remoteAddress: remote, nonce: nonce, now: try number("now"))
        case "received":
            let text: [UInt8]
            if let s = v["text"]?.stringValue {
                text = Array(s.utf8)
            } else if let h = v["hex"]?.stringValue, let b = Hex.decode(h) {
                text = b
            } else {
                throw bad("received needs text or hex")
            }
            return .received(try connection(), text: text, now: try number("now"), wallClock: try number("wallClock"))
        case "rejected":
            let problem: FrameProblem
            switch v["problem"]?.stringValue {
            case "binary": problem = .binary
            case "too-large": problem = .tooLarge(bytes: try integer("bytes"))
            default: throw bad("rejected needs problem binary or too-large")
            }
            return .rejected(try connection(), problem: problem, now: try number("now"))
        case "control-frames":
            return .controlFrames(try connection(), count: try integer("count"), now: try number("now"))
        case "closed":
            guard let cause = v["cause"]?.stringValue.flatMap(CloseCause.init(rawValue:)) else { throw bad("closed needs a cause") }
            return .closed(try connection(), cause: cause, now: try number("now"))
        case "evict":
            guard let peer = v["peerId"]?.stringValue.flatMap(PeerID.init(hex:)) else { throw bad("evict needs peerId") }
            return .evict(peer, now: try number("now"))
        case "restored":
            guard let next = v["nextEpoch"]?.stringValue.flatMap({ UInt64($0) }), let list = v["bindings"]?.arrayValue else {
                throw bad("restored needs nextEpoch (a decimal string) and bindings")
            }
            var bindings: [RestoredBinding] = []
            for b in list {
                guard let peer = b["peerId"]?.stringValue.flatMap(PeerID.init(hex:)),
                      let epoch = b["epoch"]?.stringValue.flatMap({ UInt64($0) }), let key = b["publicKey"]?.stringValue,
                      case .number(let remaining)? = b["remaining"] else {
                    throw bad("a restored binding needs peerId, epoch (a decimal string), publicKey and remaining")
                }
                bindings.append(RestoredBinding(peer: peer, epoch: epoch, publicKey: key, remaining: remaining))
            }
            return .restored(bindings, nextEpoch: next, now: try number("now"))
        case "going-away":
            return .goingAway(spreadMs: try integer("spreadMs"))
        case "applied":
            guard let m = v["mutation"].flatMap(Mutation.init(json:)) else { throw bad("applied needs a mutation") }
            return .applied(m, at: try number("at"))
        case "forwarded":
            guard let m = v["message"].flatMap(Forwarded.init(json:)) else { throw bad("forwarded needs a message") }
            return .forwarded(m)
        case "log-availability":
            guard case .bool(let available)? = v["available"] else { throw bad("log-availability needs available") }
            return .logAvailability(available)
        case "loaded-snapshot":
            guard let snapshot = v["snapshot"].flatMap(ReplicaSnapshot.init(json:)) else { throw bad("loaded-snapshot needs a snapshot") }
            return .loadedSnapshot(snapshot)
        default:
            throw bad("unknown event type")
        }
    }

    static func configuration(_ v: JSONValue, line: Int) throws(Malformed) -> MembershipConfiguration {
        func bad(_ key: String) -> Malformed { Malformed(line: line, problem: "configuration needs \(key)") }
        func number(_ v: JSONValue, _ key: String) throws(Malformed) -> Double {
            guard case .number(let x)? = v[key] else { throw bad(key) }
            return x
        }
        func integer(_ v: JSONValue, _ key: String) throws(Malformed) -> Int {
            guard let i = Int(exactly: try number(v, key)) else { throw bad("an integer \(key)") }
            return i
        }
        var c = MembershipConfiguration()
        guard let policy = v["fingerPolicy"]?.stringValue.flatMap(FingerPolicy.init(parsing:)) else { throw bad("fingerPolicy") }
        guard let seed = v["seed"]?.stringValue.flatMap({ UInt64($0) }) else { throw bad("seed (a decimal string)") }
        guard case .bool(let relay)? = v["linkRelay"] else { throw bad("linkRelay") }
        guard let d = v["decoding"] else { throw bad("decoding") }
        c.fingerPolicy = policy
        c.seed = seed
        c.linkRelay = relay
        c.successorListLength = try integer(v, "successorListLength")
        c.maxPeers = try integer(v, "maxPeers")
        c.rateLimitPerSecond = try number(v, "rateLimitPerSecond")
        c.rateLimitBurst = try number(v, "rateLimitBurst")
        c.abusiveAfterDropped = try integer(v, "abusiveAfterDropped")
        c.abusiveWindowSeconds = try number(v, "abusiveWindowSeconds")
        c.abusiveFraction = try number(v, "abusiveFraction")
        c.linkRelayPerSecond = try number(v, "linkRelayPerSecond")
        c.linkRelayBurst = try number(v, "linkRelayBurst")
        c.maxMessageBytes = try integer(v, "maxMessageBytes")
        c.idleTimeoutSeconds = try integer(v, "idleTimeoutSeconds")
        c.idLeaseSeconds = try number(v, "idLeaseSeconds")
        c.decoding.maxIntentIdLength = try integer(d, "maxIntentIdLength")
        c.decoding.maxCapabilitiesBytes = try integer(d, "maxCapabilitiesBytes")
        c.decoding.maxReportKeys = try integer(d, "maxReportKeys")
        c.decoding.maxKeyLength = try integer(d, "maxKeyLength")
        c.decoding.maxReportValue = try number(d, "maxReportValue")
        return c
    }

    // MARK: Helpers

    private static func value(_ line: [UInt8], line number: Int) throws(Malformed) -> JSONValue {
        guard let v = JSONValue(parsing: line) else { throw Malformed(line: number, problem: "not JSON") }
        return v
    }

    private static func n(_ i: Int) -> JSONValue { .number(Double(i)) }
    private static func id(_ c: ConnectionID) -> JSONValue { .number(Double(c)) }

    /// Bytes as a string under `textKey` when they are UTF-8, else as lowercase hex under `hexKey`.
    private static func bytes(_ b: [UInt8], into o: inout [String: JSONValue], textKey: String, hexKey: String) {
        if let s = String(validating: b, as: UTF8.self) {
            o[textKey] = .string(s)
        } else {
            o[hexKey] = .string(Hex.encode(b))
        }
    }
}
