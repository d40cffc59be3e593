import ConnectionTypes
import Ring
import Testing
import WireProtocol
@testable import RendezvousCore

/// Cluster mode without sockets or Redis (docs/cluster.md): instances are cores with names, the log is an
/// array that every core applies in order; the expected values come from a single server fed the same
/// registrations (the same decisions, made at once) and from the brute-force definitions of the ring.
struct ClusterReplicaTests {
    /// A cluster of cores and its log.
    struct Cluster {
        var cores: [Membership]
        var log: [Mutation] = []
        /// Entries each core applied so far.
        var applied: [Int]
        var time = 1_000.0

        init(_ names: [String], seed: UInt64 = 5) {
            var config = MembershipConfiguration()
            config.seed = seed
            cores = names.map { Membership(configuration: config, credentials: testServer, instance: $0) }
            applied = Array(repeating: 0, count: names.count)
            for i in cores.indices { _ = cores[i].handle(.logAvailability(true)) }
        }

        /// Hands an event to core `i`; its proposals go to the end of the log. Returns the other actions.
        mutating func handle(_ i: Int, _ event: Event) -> [Action] {
            route(cores[i].handle(event))
        }

        private mutating func route(_ actions: [Action]) -> [Action] {
            actions.filter {
                if case .propose(let m) = $0 { log.append(m); return false }
                return true
            }
        }

        /// Core `i` applies the log entries it has not applied yet; returns what it did.
        mutating func catchUp(_ i: Int) -> [Action] {
            var out: [Action] = []
            while applied[i] < log.count {
                let m = log[applied[i]]
                applied[i] += 1
                time += 0.001
                out += route(cores[i].handle(.applied(m, at: time)))
            }
            return out
        }

        /// Every core applies the whole log (repeatedly, since applying can propose more).
        mutating func settle() -> [[Action]] {
            var out = Array(repeating: [Action](), count: cores.count)
            while applied.contains(where: { $0 < log.count }) {
                for i in cores.indices { out[i] += catchUp(i) }
            }
            return out
        }
    }

    private static func registered(_ actions: [Action], _ c: ConnectionID) -> PeerID? {
        for a in actions { if case .send(c, .registered(let id, _, _, _)) = a { return id } }
        return nil
    }

    private static func sends(_ actions: [Action]) -> [ConnectionID] {
        actions.compactMap { if case .send(let c, _) = $0 { c } else { nil } }
    }

    @Test func replicasAgreeWithASingleServerFedTheSameRegistrations() {
        var cluster = Cluster(["a", "b", "c"])
        var config = MembershipConfiguration()
        config.seed = 5
        var single = Membership(configuration: config, credentials: testServer)
        var clusterIDs: [PeerID] = []
        var singleIDs: [PeerID] = []
        for k in 1...12 {
            let c = ConnectionID(k)
            let i = k % 3
            _ = cluster.handle(i, .opened(c, remoteAddress: "x", nonce: testNonce(c), now: 1))
            let proposed = cluster.handle(i, .received(c, text: signedRegister(clientKey(UInt8(k)), c), now: 1, wallClock: 0))
            #expect(Self.registered(proposed, c) == nil, "nothing is decided before the log is applied")
            let outcome = cluster.settle()
            clusterIDs.append(Self.registered(outcome[i], c)!)
            // No other instance sends anything to a connection it does not hold.
            for j in cluster.cores.indices where j != i { #expect(!Self.sends(outcome[j]).contains(c)) }
            _ = single.handle(.opened(c, remoteAddress: "x", nonce: testNonce(c), now: 1))
            singleIDs.append(Self.registered(single.handle(.received(c, text: signedRegister(clientKey(UInt8(k)), c), now: 1, wallClock: 0)), c)!)
        }
        #expect(clusterIDs == singleIDs)
        for core in cluster.cores { #expect(core.ring.members == single.ring.members) }
        // Pushes: every peer's state on every replica is the brute-force one.
        let members = single.ring.members
        for core in cluster.cores {
            for id in members {
                let state = core.ring.state(of: id)
                let others = members.filter { $0 != id }
                #expect(state.predecessor == others.max { id.distance(to: $0) < id.distance(to: $1) })
            }
        }
    }

    @Test func aLeaveAppliesOnceEverywhereAndAStaleLeaveIsIgnored() {
        var cluster = Cluster(["a", "b"])
        let key = clientKey(9)
        _ = cluster.handle(0, .opened(1, remoteAddress: "x", nonce: testNonce(1), now: 1))
        _ = cluster.handle(0, .received(1, text: signedRegister(key, 1), now: 1, wallClock: 0))
        let id = Self.registered(cluster.settle()[0], 1)!
        // The key comes back on instance b (a half-open session on a): b's registration replaces a's.
        _ = cluster.handle(1, .opened(7, remoteAddress: "x", nonce: testNonce(7), now: 2))
        _ = cluster.handle(1, .received(7, text: signedRegister(key, 7, peerId: id), now: 2, wallClock: 0))
        // Before a applies that, its old session closes: a proposes a leave for its (old) session.
        _ = cluster.handle(0, .closed(1, cause: .closed, now: 2))
        let outcome = cluster.settle()
        #expect(Self.registered(outcome[1], 7) == id)
        // The join came first in the log, so the leave of the replaced session changes nothing.
        for core in cluster.cores {
            #expect(core.ring.members == [id])
            #expect(core.peers[id]?.instance == "b" && core.peers[id]?.connection == 7)
        }
    }

    @Test func aJoinAppliedTwiceIsAppliedOnce() {
        var cluster = Cluster(["a"])
        _ = cluster.handle(0, .opened(1, remoteAddress: "x", nonce: testNonce(1), now: 1))
        _ = cluster.handle(0, .received(1, text: signedRegister(clientKey(3), 1), now: 1, wallClock: 0))
        cluster.log.append(cluster.log[0])   // the writer sent it again after a reconnection
        let out = cluster.settle()[0]
        #expect(out.filter { if case .send(1, .registered) = $0 { true } else { false } }.count == 1)
        #expect(!out.contains { if case .close = $0 { true } else { false } })
        #expect(cluster.cores[0].ring.count == 1)
    }

    @Test func forwardedSignalsReachOnlyTheHolderAtTheEpochTheSenderSaw() {
        var cluster = Cluster(["a", "b"])
        for (i, c) in [(0, ConnectionID(1)), (1, ConnectionID(2))] {
            _ = cluster.handle(i, .opened(c, remoteAddress: "x", nonce: testNonce(c), now: 1))
            _ = cluster.handle(i, .received(c, text: signedRegister(clientKey(UInt8(c)), c), now: 1, wallClock: 0))
        }
        let outcome = cluster.settle()
        let a = Self.registered(outcome[0], 1)!, b = Self.registered(outcome[1], 2)!
        let signal = ClientMessage.signal(to: b, intentId: "i", signal: RawJSON(["sdp": .string("x")])).encoded()
        let actions = cluster.handle(0, .received(1, text: signal, now: 2, wallClock: 0))
        guard case .forward(let instance, let message)? = actions.first else { Issue.record("not forwarded: \(actions)"); return }
        #expect(instance == "b" && message.from == a && message.to == b)
        // Delivered at the epoch the sender saw…
        let delivered = cluster.cores[1].handle(.forwarded(message))
        #expect(Self.sends(delivered) == [2])
        // …and dropped for another epoch (a later holder of the same ID), and when the target is not here.
        var stale = message
        stale.toEpoch &+= 1
        #expect(cluster.cores[1].handle(.forwarded(stale)).isEmpty)
        #expect(cluster.cores[0].handle(.forwarded(message)).isEmpty)
        #expect(cluster.cores[1].counters.forwardsDropped == 1 && cluster.cores[0].counters.forwardsDropped == 1)
    }

    @Test func registrationsAreRefusedWhileTheLogIsUnavailable() {
        var config = MembershipConfiguration()
        config.seed = 5
        var core = Membership(configuration: config, credentials: testServer, instance: "a")
        _ = core.handle(.opened(1, remoteAddress: "x", nonce: testNonce(1), now: 1))
        // Not yet caught up with the log (the instance starts unavailable).
        let actions = core.handle(.received(1, text: signedRegister(clientKey(1), 1), now: 1, wallClock: 0))
        #expect(actions.contains { if case .send(1, .error(.unavailable, _)) = $0 { true } else { false } })
        #expect(actions.contains { if case .close(1, 1013, _) = $0 { true } else { false } })
        #expect(!actions.contains { if case .propose = $0 { true } else { false } })
    }

    @Test func aReplicaLoadedFromASnapshotAllocatesWhatTheOthersAllocate() {
        var cluster = Cluster(["a", "b"])
        var c: ConnectionID = 0
        func join(_ i: Int, _ cluster: inout Cluster) -> PeerID? {
            c += 1
            _ = cluster.handle(i, .opened(c, remoteAddress: "x", nonce: testNonce(c), now: 1))
            _ = cluster.handle(i, .received(c, text: signedRegister(clientKey(UInt8(c)), c), now: 1, wallClock: 0))
            return Self.registered(cluster.settle()[i], c)
        }
        for k in 0..<9 { _ = join(k % 2, &cluster) }
        // Leaves with leases (reserved IDs) and a freed ID, so that the snapshot holds all kinds of state.
        _ = cluster.handle(0, .closed(1, cause: .closed, now: 3))
        _ = cluster.handle(1, .received(2, text: ClientMessage.leave.encoded(), now: 3, wallClock: 0))
        _ = cluster.settle()
        cluster.log.append(.checkpoint(by: "a"))
        let out = cluster.settle()
        guard case .snapshot(let snapshot)? = out[0].first(where: { if case .snapshot = $0 { true } else { false } }) else {
            Issue.record("no snapshot"); return
        }
        #expect(!out[1].contains { if case .snapshot = $0 { true } else { false } }, "only the proposer writes it")
        // The snapshot goes through its JSON form, as through Redis.
        let stored = ReplicaSnapshot(json: JSONValue(parsing: snapshot.json.encoded())!)!
        #expect(stored == snapshot)
        var late = Membership(configuration: cluster.cores[0].configuration, credentials: testServer, instance: "c")
        _ = late.handle(.loadedSnapshot(stored))
        #expect(late.ring.members == cluster.cores[0].ring.members && late.bindings == cluster.cores[0].bindings)
        // From here on the late replica applies the same entries and gets the same ring.
        cluster.cores.append(late)
        cluster.applied.append(cluster.log.count)
        for k in 0..<6 { _ = join(k % 2, &cluster) }
        cluster.time += 100   // every lease ends
        _ = join(0, &cluster)
        #expect(cluster.cores[2].ring.members == cluster.cores[0].ring.members)
        #expect(cluster.cores[2].ring.reserved == cluster.cores[0].ring.reserved)
        #expect(cluster.cores[2].bindings == cluster.cores[0].bindings)
    }

    @Test func anInstanceDeclaredGoneClosesItsSessionsAndLostLeavesAreReconciled() {
        var cluster = Cluster(["a", "b"])
        for (i, c) in [(0, ConnectionID(1)), (0, ConnectionID(2)), (1, ConnectionID(3))] {
            _ = cluster.handle(i, .opened(c, remoteAddress: "x", nonce: testNonce(c), now: 1))
            _ = cluster.handle(i, .received(c, text: signedRegister(clientKey(UInt8(c)), c), now: 1, wallClock: 0))
        }
        _ = cluster.settle()
        // Connection 2 closes, but its leave never reaches the log (dropped while Redis was away).
        _ = cluster.handle(0, .closed(2, cause: .closed, now: 2))
        cluster.log.removeLast()
        #expect(cluster.cores[1].ring.count == 3)
        _ = cluster.handle(0, .logAvailability(false))
        _ = cluster.handle(0, .logAvailability(true))   // reconciliation: the leave is proposed again
        _ = cluster.settle()
        #expect(cluster.cores.allSatisfy { $0.ring.count == 2 })
        // Instance a is declared gone: b leases its peers; a closes its remaining session (1) with 1012.
        cluster.log.append(.instanceGone("a"))
        let out = cluster.settle()
        #expect(out[0].contains { if case .send(1, .error(.unavailable, _)) = $0 { true } else { false } })
        #expect(out[0].contains { if case .close(1, 1012, _) = $0 { true } else { false } })
        #expect(cluster.cores.allSatisfy { $0.ring.count == 1 && $0.leasesHeld == 2 })
        #expect(cluster.cores[0].counters.leavesByReason[.instanceGone] == 1)
    }

    @Test func mutationsAndForwardedMessagesReadBackFromTheirJSON() {
        let mutations: [Mutation] = [
            .join(Origin(instance: "a/1f", connection: 42), Joining(publicKey: String(repeating: "ab", count: 32), requested: PeerID(7),
                  connectedAt: "2026-11-30T00:00:00Z", remoteAddress: "10.0.0.1", capabilities: ["workers": .number(2)], vouchedURL: "ws://10.0.0.1:5/")),
            .join(Origin(instance: "b", connection: 1), Joining(publicKey: "k", requested: nil, connectedAt: "", remoteAddress: "",
                  capabilities: nil, vouchedURL: nil)),
            .leave(PeerID(9), origin: Origin(instance: "a", connection: 3), reason: .idleTimeout, keepLease: true),
            .evict(PeerID(1)), .instanceGone("x/2"), .checkpoint(by: "a"),
        ]
        for m in mutations { #expect(Mutation(json: JSONValue(parsing: m.json.encoded())!) == m) }
        let f = Forwarded(from: PeerID(1), to: PeerID(2), toEpoch: UInt64.max, payload: .signal(intentId: "i", signal: RawJSON(parsing: Array(#"{"b":1,"a":"é"}"#.utf8))!, fromUrl: nil))
        #expect(Forwarded(json: JSONValue(parsing: f.json.encoded())!) == f)
        #expect(Mutation(json: .object(["type": "join"])) == nil && Mutation(json: .object(["type": "reboot"])) == nil)
    }
}
