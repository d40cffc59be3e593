import ConnectionTypes
import Foundation
import Rendezvous
import RendezvousCore
import Ring
import Signatures
import Testing
import WireProtocol

/// Replays Tests/vectors/rendezvous-events.jsonl (a real server run recorded with `serve --record-events`
/// by record_rendezvous_events.py) into fresh cores: the same events must give the same actions, and the
/// actions the real server returned. A core that read a clock or an unseeded random source, or that
/// ordered its actions by hash order, would not reproduce them.
@Suite struct EventLogReplayTests {
    /// The recording script's server key file holds the private key (seed) 00 01 ... 1f.
    static let serverKeySeed = (0..<32).map { UInt8($0) }

    /// The log's lines (header first), each without its newline.
    let lines: [[UInt8]]
    let recording: EventLog.Recording

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/rendezvous-events.jsonl")
        let data = [UInt8](try Data(contentsOf: url))
        lines = data.split(separator: 0x0A).map(Array.init)
        recording = try EventLog.parse(data)
    }

    var events: [Event] { recording.entries.map(\.event) }

    /// Each event's actions, as log lines, from a fresh core given `events` in order.
    func replay(_ events: [Event], configuration: MembershipConfiguration? = nil, serverKeySeed: [UInt8] = serverKeySeed) -> [String] {
        let identity = ServerIdentity(key: try! Ed25519.PrivateKey(seed: serverKeySeed))
        var core = Membership(configuration: configuration ?? recording.configuration, credentials: identity)
        return events.map { String(decoding: EventLog.line($0, core.handle($0)), as: UTF8.self) }
    }

    @Test func theLogCoversEveryKindOfEvent() {
        #expect(lines.count == recording.entries.count + 1)
        var kinds = Set<String>()
        for e in events { kinds.insert(EventLog.json(e)["type"]?.stringValue ?? "") }
        #expect(kinds == ["opened", "received", "rejected", "control-frames", "closed", "evict", "going-away", "restored"])
        // The header round-trips: the configuration read back writes the same line.
        #expect(EventLog.header(recording.configuration) == lines[0] + [0x0A])
    }

    @Test func twoReplaysGiveTheRecordedActions() {
        print("replaying \(events.count) events with the recorded seed \(recording.configuration.seed)")
        let first = replay(events), second = replay(events)
        #expect(first.count == events.count && second.count == events.count)
        for (i, line) in lines.dropFirst().enumerated() {
            let recorded = String(decoding: line + [0x0A], as: UTF8.self)
            #expect(first[i] == second[i], "event \(i + 1): the two replays differ")
            #expect(first[i] == recorded, "event \(i + 1): the replay differs from the recording")
        }
    }

    @Test func goingAwaySpreadIsSeeded() {
        // After the whole log, a shutdown with a wide spread: the reconnect delays come from the seed.
        let events = self.events.filter { if case .goingAway = $0 { return false } else { return true } }
            + [.goingAway(spreadMs: 10_000)]
        let a = replay(events).last!, b = replay(events).last!
        #expect(a == b)
        var reseeded = recording.configuration
        reseeded.seed &+= 1
        #expect(replay(events, configuration: reseeded).last! != a)
    }

    @Test func perturbingOneEventChangesTheActions() throws {
        // The first registration becomes a leave: that connection is not registered, so it gets an error,
        // and the ring (and every later action that names it) differs.
        var events = self.events
        let index = try #require(events.firstIndex {
            if case .received(_, let text, _, _) = $0 { return String(decoding: text, as: UTF8.self).contains("register") }
            return false
        })
        guard case .received(let c, _, let now, let wallClock) = events[index] else { return }
        events[index] = .received(c, text: Array(#"{"type":"leave"}"#.utf8), now: now, wallClock: wallClock)
        let original = replay(self.events), perturbed = replay(events)
        #expect(original[..<index] == perturbed[..<index])
        #expect(original[index] != perturbed[index])
        // Another server key refuses the recorded signatures (and signs other certificates); another seed
        // allocates other IDs.
        #expect(replay(self.events, serverKeySeed: [UInt8](repeating: 9, count: 32)) != original)
        var reseeded = recording.configuration
        reseeded.seed &+= 1
        #expect(replay(self.events, configuration: reseeded) != original)
    }

    @Test func eventsRoundTripThroughTheLineForm() throws {
        let samples: [Event] = [
            .opened(7, remoteAddress: "::1", nonce: String(repeating: "5e", count: 32), now: 0.1),
            .received(7, text: [0xFF, 0x00, 0x7B], now: 1e-9, wallClock: 1_764_480_000.123456),
            .received(7, text: Array(#"{"type":"register","x":"\u00e9\n"}"#.utf8), now: 12_345.678901234, wallClock: 0),
            .rejected(7, problem: .tooLarge(bytes: 70_000), now: 3),
            .rejected(7, problem: .binary, now: 3.5),
            .controlFrames(7, count: 12, now: 4),
            .closed(7, cause: .idleTimeout, now: 5),
            .evict(PeerID(0xABCDEF), now: 6.25),
            .restored([RestoredBinding(peer: PeerID(0x12), epoch: 1 << 60, publicKey: String(repeating: "ab", count: 32), remaining: 3.5)],
                      nextEpoch: 99, now: 7),
            .goingAway(spreadMs: 42),
        ]
        let log = EventLog.header(MembershipConfiguration()) + samples.flatMap { EventLog.line($0, []) }
        #expect(try EventLog.parse(log).entries.map(\.event) == samples)
        #expect(throws: EventLog.Malformed.self) { try EventLog.event(.object(["type": "teleport"])) }
    }
}
