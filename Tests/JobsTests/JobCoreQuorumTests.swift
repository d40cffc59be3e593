import Digest
import Foundation
@testable import Jobs
import Testing
import WireProtocol

// JobCore with verify: 'quorum' (docs/jobs.md, "Verification by quorum"), messages in, actions out: no
// sockets. The expected dispatches follow from the rules (replicas on distinct peers, majority, penalties).

private func available(_ peer: String, workers: Int = 1) -> JSONValue {
    .object(["peerId": .string(peer), "workers": .number(Double(workers)), "free": .number(Double(workers)), "runtimes": .array(["raytrace"])])
}

private func ok(_ t: Int, _ bytes: [UInt8]) -> [String: JSONValue] {
    ["kind": "result", "jobId": "j", "taskId": .number(Double(t)), "attempt": .number(1), "ok": .bool(true),
     "encoding": "base64", "payload": .string(Data(bytes).base64EncodedString()), "sha256": .string(sha256Hex(bytes))]
}

private func tasks(_ actions: [JobAction]) -> [String] {
    actions.compactMap {
        guard case .post(let peer, let body) = $0, body["kind"] == "task", case .number(let t)? = body["taskId"] else { return nil }
        return "\(Int(t))@\(peer)"
    }
}

private func results(_ actions: [JobAction]) -> [Int] {
    actions.compactMap { if case .result(let t, _, _) = $0 { return t } else { return nil } }
}

private func verdicts(_ actions: [JobAction]) -> [String] {
    actions.compactMap { if case .verdict(let a, let d) = $0 { return "+\(a.joined(separator: ",")) -\(d.joined(separator: ","))" } else { return nil } }
}

private func finished(_ actions: [JobAction]) -> Result<JobStats, JobFailure>? {
    for case .finish(let r) in actions { return r }
    return nil
}

private func quorumCore(tasks n: Int, peers: Int, reputation: Reputation = Reputation(), _ edit: (inout JobOptions) -> Void = { _ in }) -> JobCore {
    var options = JobOptions()
    options.prefetch = 0
    options.verify = .quorum
    options.seed = 1
    edit(&options)
    return JobCore(id: "j", runtime: "raytrace", shared: .object(["scene": "s"]), inputs: (0..<n).map { .number(Double($0)) },
                   nPeers: peers, options: options, me: "me", reputation: reputation)
}

@Suite struct JobCoreQuorumTests {
    @Test func aCheaterIsOutvotedPenalisedDroppedAndAvoidedByTheNextJob() throws {
        var c = quorumCore(tasks: 2, peers: 3)
        _ = c.start(now: 0)
        // Untrusted peers: every task runs on two distinct peers; its replica goes out before the next task.
        #expect(tasks(c.discovered([available("x"), available("p"), available("q")], now: 0)) == ["0@x", "0@p", "1@q"])
        // x returns wrong bytes: nothing is accepted yet, and x, free again, gets task 1's replica.
        let wrong = c.received("x", ok(0, [9]), now: 1)
        #expect(results(wrong).isEmpty && tasks(wrong) == ["1@x"])
        // p disagrees with x: a third copy goes to the one peer that has none (q, once free).
        #expect(results(c.received("p", ok(0, [0]), now: 2)).isEmpty)
        let q1 = c.received("q", ok(1, [1]), now: 3)
        #expect(tasks(q1) == ["0@q"])
        // q agrees with p: accepted; x dissented, is penalised and leaves the job (its task 1 goes to p).
        let accept = c.received("q", ok(0, [0]), now: 4)
        #expect(results(accept) == [0] && verdicts(accept) == ["+p,q -x"])
        #expect(tasks(accept) == ["1@p"])
        #expect(c.reputation.avoided("x") && c.reputation.record("p").agreed == 1)
        #expect(results(c.received("x", ok(1, [9]), now: 4.5)).isEmpty, "a penalised peer's results are ignored")
        let end = c.received("p", ok(1, [1]), now: 5)
        #expect(results(end) == [1] && verdicts(end) == ["+q,p -"])
        let stats = try #require(try finished(end)?.get())
        #expect(stats.penalised == ["x"] && stats.seed == 1 && stats.peersLost == 1)
        #expect(stats.verification == Scheduler.Verification(results: 5, agreed: 4, dissented: 1, spotChecks: 0, unchecked: 0, noQuorum: 0))
        #expect(stats.replication == 2.5)
        // The next job starts from this reputation: discovery leaves x out, and x is not added if found anyway.
        var next = quorumCore(tasks: 1, peers: 3, reputation: c.reputation)
        guard case .discover(3, let exclude)? = next.start(now: 10).first else { Issue.record("no discovery"); return }
        #expect(exclude == ["x"])
        #expect(tasks(next.discovered([available("x"), available("p"), available("q")], now: 10)) == ["0@p", "0@q"])
    }

    @Test func trustedPeersAreOnlySpotCheckedAndOwnWorkersNotAtAll() throws {
        var reputation = Reputation()
        for _ in 0..<3 { reputation.agree("t") }
        var c = quorumCore(tasks: 40, peers: 2, reputation: reputation) { $0.trustAfter = 3; $0.spotCheckRate = 0.25; $0.maxInFlightPerPeer = 64 }
        _ = c.start(now: 0)
        var out = c.discovered([available("me", workers: 40), available("t", workers: 40)], now: 0)
        // Own workers: every task on "me" runs once; a task is replicated only when a copy goes to "t"
        // first, so the tasks all go to "me" (listed first) and none is replicated.
        #expect(tasks(out).count == 40 && tasks(out).allSatisfy { $0.hasSuffix("@me") })
        for t in 0..<40 { out = c.received("me", ok(t, [UInt8(t)]), now: 1) }
        let stats = try #require(try finished(out)?.get())
        #expect(stats.verification?.unchecked == 40 && stats.replication == 1)

        // A trusted peer alone: tasks are spot-checked where draw(1, t) < 0.25, each needing a second peer.
        var d = quorumCore(tasks: 40, peers: 2, reputation: reputation) { $0.trustAfter = 3; $0.spotCheckRate = 0.25; $0.maxInFlightPerPeer = 64 }
        _ = d.start(now: 0)
        let first = tasks(d.discovered([available("t", workers: 40), available("u", workers: 40)], now: 0))
        let checked = (0..<40).filter { Quorum.draw(seed: 1, taskId: $0) < 0.25 }
        #expect(!checked.isEmpty && checked.count < 20)
        #expect(first.filter { $0.hasSuffix("@u") } == checked.map { "\($0)@u" })
        #expect(d.scheduler.verification.spotChecks == checked.count)
    }

    @Test func aPenalisedPeersResultsStopCountingAndATaskIsAcceptedOnWhatIsLeft() throws {
        var c = quorumCore(tasks: 2, peers: 4)
        _ = c.start(now: 0)
        #expect(tasks(c.discovered([available("x", workers: 2), available("y"), available("a", workers: 2), available("b")], now: 0))
                == ["0@x", "1@x", "0@y", "1@a"])
        _ = c.received("x", ok(0, [90]), now: 1)
        #expect(tasks(c.received("y", ok(0, [91]), now: 2)) == ["0@a"])       // two cheaters disagree: a third copy
        #expect(tasks(c.received("a", ok(0, [0]), now: 3)) == ["0@b"])        // no majority of three: a fourth
        #expect(results(c.received("b", ok(0, [0]), now: 4)).isEmpty)        // two against two: no strict majority
        #expect(tasks(c.received("x", ok(1, [81]), now: 5)).isEmpty)
        #expect(tasks(c.received("a", ok(1, [1]), now: 6)) == ["1@y"])
        // y agrees on task 1: x dissented and is penalised; without x's result task 0 is 2 against 1: accepted,
        // with b's bytes, and y, which dissented there, is penalised too.
        let end = c.received("y", ok(1, [1]), now: 7)
        let accepted = end.compactMap { if case .result(let t, let from, let bytes) = $0 { return "\(t)@\(from)=\(bytes)" } else { return nil } }
        #expect(accepted == ["1@y=[1]", "0@b=[0]"])
        #expect(verdicts(end) == ["+a,y -x", "+a,b -y"])
        let stats = try #require(try finished(end)?.get())
        #expect(stats.penalised == ["x", "y"] && stats.verification?.noQuorum == 0)
    }

    @Test func noMajorityWithinMaxReplicasFailsTheTaskAsNoQuorum() {
        var c = quorumCore(tasks: 1, peers: 3) { $0.maxReplicas = 3 }
        _ = c.start(now: 0)
        #expect(tasks(c.discovered([available("a"), available("b"), available("c")], now: 0)) == ["0@a", "0@b"])
        _ = c.received("a", ok(0, [1]), now: 1)
        #expect(tasks(c.received("b", ok(0, [2]), now: 2)) == ["0@c"])
        let end = c.received("c", ok(0, [3]), now: 3)
        guard case .failure(let f)? = finished(end) else { Issue.record("expected a failure: \(end)"); return }
        #expect(f.failures.map(\.code) == ["no-quorum"] && f.stats.verification?.noQuorum == 1)
    }

    @Test func tooFewDistinctPeersFailAfterRediscoveryFindsNoOther() {
        var c = quorumCore(tasks: 1, peers: 2)
        _ = c.start(now: 0)
        #expect(tasks(c.discovered([available("a")], now: 0)) == ["0@a"])
        #expect(tasks(c.received("a", ok(0, [1]), now: 1)).isEmpty)
        // The task wants a second copy that only another peer may run: rediscovery, leaving out "a".
        guard case .discover(_, let exclude)? = c.tick(now: 3).first(where: { if case .discover = $0 { true } else { false } }) else {
            Issue.record("no rediscovery"); return
        }
        #expect(exclude == ["a"])
        guard case .failure(let f)? = finished(c.discovered([], now: 6)) else { Issue.record("expected a failure"); return }
        #expect(f.failures.map(\.code) == ["no-quorum"])
    }
}
