import Digest
import Foundation
@testable import Jobs
import Testing
import WireProtocol

// The submitting side of bc-job/1 (docs/jobs.md) without sockets or threads: messages, discovery
// answers and ticks in, actions out. Expected dispatches are worked out from "Scheduling".

private func available(_ peer: String, workers: Int) -> JSONValue {
    .object(["peerId": .string(peer), "workers": .number(Double(workers)), "free": .number(Double(workers)), "runtimes": .array(["raytrace"])])
}

private func ok(_ t: Int, _ bytes: [UInt8], sha: String? = nil) -> [String: JSONValue] {
    ["kind": "result", "jobId": "j", "taskId": .number(Double(t)), "attempt": .number(1), "ok": .bool(true),
     "encoding": "base64", "payload": .string(Data(bytes).base64EncodedString()), "sha256": .string(sha ?? sha256Hex(bytes))]
}

/// The tasks posted, as "task@peer/attempt" plus "+shared" when the shared data goes with it.
private func tasks(_ actions: [JobAction]) -> [String] {
    actions.compactMap {
        guard case .post(let peer, let body) = $0, body["kind"] == "task", case .number(let t)? = body["taskId"],
              case .number(let attempt)? = body["attempt"] else { return nil }
        return "\(Int(t))@\(peer)/\(Int(attempt))\(body["shared"] == nil ? "" : "+shared")"
    }
}

private func results(_ actions: [JobAction]) -> [Int] {
    actions.compactMap { if case .result(let t, _, _) = $0 { return t } else { return nil } }
}

private func finished(_ actions: [JobAction]) -> Result<JobStats, JobFailure>? {
    for case .finish(let r) in actions { return r }
    return nil
}

private func core(tasks n: Int, peers: Int, _ edit: (inout JobOptions) -> Void = { _ in }) -> JobCore {
    var options = JobOptions()
    options.prefetch = 0
    edit(&options)
    return JobCore(id: "j", runtime: "raytrace", shared: .object(["scene": "s"]), inputs: (0..<n).map { .number(Double($0)) },
                   nPeers: peers, options: options, me: "me")
}

@Suite struct JobCoreTests {
    @Test func aPeerLostMidTaskHasItsTaskDispatchedAgainElsewhere() throws {
        var c = core(tasks: 6, peers: 3) { $0.maxCopies = 1 }
        let start = c.start(now: 0)
        guard case .discover(3, let exclude)? = start.first, exclude.isEmpty else { Issue.record("no discovery: \(start)"); return }
        // One worker each, no prefetch: one task in flight per peer; the shared data with the first task.
        #expect(tasks(c.discovered([available("p1", workers: 1), available("p2", workers: 1), available("p3", workers: 1)], now: 0.1))
                == ["0@p1/1+shared", "1@p2/1+shared", "2@p3/1+shared"])
        let first = c.received("p1", ok(0, [0]), now: 1)
        #expect(results(first) == [0] && tasks(first) == ["3@p1/1"])
        #expect(first.contains { if case .progress(1, 6) = $0 { true } else { false } })
        // p2 is reported gone (by another peer) while it runs task 1: task 1 waits for a free peer.
        let gone = c.received("p1", ["kind": "gone", "jobId": "j", "peerId": "p2"], now: 2)
        #expect(tasks(gone).isEmpty)
        #expect(tasks(c.received("p3", ok(2, [2]), now: 3)) == ["1@p3/2"], "the lost task goes first, as attempt 2")
        #expect(tasks(c.received("p1", ok(3, [3]), now: 4)) == ["4@p1/1"])
        #expect(tasks(c.received("p3", ok(1, [1]), now: 5)) == ["5@p3/1"])
        #expect(tasks(c.received("p1", ok(4, [4]), now: 6)).isEmpty)
        // A late result from the lost peer is not expected any more.
        #expect(results(c.received("p2", ok(1, [1]), now: 6.5)).isEmpty)
        let end = c.received("p3", ok(5, [5]), now: 7)
        let stats = try #require(try finished(end)?.get())
        #expect(stats.tasksPerPeer == ["p1": 3, "p3": 3] && stats.peersLost == 1 && stats.peers == ["p1", "p2", "p3"])
        #expect(stats.counts.lost == 1 && stats.counts.redispatched == 1 && stats.counts.dispatched == 7)
        #expect(stats.makespanSeconds == 7 && stats.discoverySeconds == 0.1)
        #expect(c.received("p3", ok(5, [5]), now: 8).isEmpty, "settled")
    }

    @Test func aResultThatDoesNotMatchItsDigestIsRejectedAndTheTaskRunsAgain() {
        var c = core(tasks: 1, peers: 1)
        _ = c.start(now: 0)
        #expect(tasks(c.discovered([available("p1", workers: 1)], now: 0)) == ["0@p1/1+shared"])
        let forged = c.received("p1", ok(0, [1, 2, 3], sha: sha256Hex([9])), now: 1)
        #expect(results(forged).isEmpty && tasks(forged) == ["0@p1/2"])
        let good = c.received("p1", ok(0, [1, 2, 3]), now: 2)
        #expect(results(good) == [0])
        #expect((try? finished(good)?.get())?.counts.dispatched == 2)
    }

    @Test func copiesThatDisagreeAreCaughtWhenBothReturn() throws {
        var c = core(tasks: 4, peers: 3) { $0.speculateMinSeconds = 0; $0.speculateAfter = 1.5 }
        _ = c.start(now: 0)
        #expect(tasks(c.discovered([available("p1", workers: 1), available("p2", workers: 1), available("p3", workers: 1)], now: 0))
                == ["0@p1/1+shared", "1@p2/1+shared", "2@p3/1+shared"])
        #expect(tasks(c.received("p1", ok(0, [0]), now: 1)) == ["3@p1/1"])
        // Nothing pending; tasks 1 and 2 are 2 s old, past 1.5 × the median (1 s): task 1 is duplicated on p1.
        #expect(tasks(c.received("p1", ok(3, [3]), now: 2)) == ["1@p1/2"])
        let win = c.received("p1", ok(1, [1, 1]), now: 2.5)
        #expect(results(win) == [1])
        #expect(win.contains { if case .post("p2", let body) = $0 { body["kind"] == "cancel" } else { false } })
        let other = c.received("p2", ok(1, [6, 6]), now: 2.6)
        #expect(results(other).isEmpty)
        #expect(other.contains { if case .log(.error, let text) = $0 { text.contains("differ") } else { false } })
        let end = c.received("p3", ok(2, [2]), now: 3)
        let stats = try #require(try finished(end)?.get())
        #expect(stats.counts.mismatches == 1 && stats.counts.discarded == 1)
    }

    @Test func failuresEndTheJobWithTheirCodes() {
        var c = core(tasks: 2, peers: 1)
        _ = c.start(now: 0)
        _ = c.discovered([available("p1", workers: 2)], now: 0)
        let failed = c.received("p1", ["kind": "result", "jobId": "j", "taskId": .number(0), "attempt": .number(1), "ok": .bool(false),
                                       "error": .object(["code": "threw", "message": "boom"])], now: 1)
        #expect(finished(failed) == nil)
        let end = c.received("p1", ok(1, [1]), now: 2)
        guard case .failure(let f)? = finished(end) else { Issue.record("expected a failure"); return }
        #expect(f.failures.count == 1 && f.failures[0].task == 0 && f.failures[0].code == "threw" && f.failures[0].message == "boom")
    }

    @Test func noPeerFoundFailsTheJobAsUnsupported() {
        var c = core(tasks: 2, peers: 2)
        _ = c.start(now: 0)
        guard case .failure(let f)? = finished(c.discovered([], now: 3)) else { Issue.record("expected a failure"); return }
        #expect(f.failures.map(\.code) == ["unsupported", "unsupported"])
    }

    @Test func unreachablePeerIsLostAfterItsProbesGoUnanswered() {
        var c = core(tasks: 2, peers: 2) { $0.probeIntervalSeconds = 1; $0.probeMisses = 2 }
        _ = c.start(now: 0)
        #expect(tasks(c.discovered([available("p1", workers: 1), available("p2", workers: 1)], now: 0)) == ["0@p1/1+shared", "1@p2/1+shared"])
        func probes(_ a: [JobAction]) -> [String] { a.compactMap { if case .post(let p, let b) = $0, b["kind"] == "probe" { p } else { nil } } }
        #expect(probes(c.tick(now: 1)) == ["p1", "p2"])
        _ = c.received("p1", ["kind": "probe-reply", "jobId": "j", "taskIds": .array([.number(0)])], now: 1.1)
        #expect(probes(c.tick(now: 2)) == ["p1", "p2"])   // p2: one miss
        _ = c.received("p1", ["kind": "probe-reply", "jobId": "j", "taskIds": .array([.number(0)])], now: 2.1)
        let third = c.tick(now: 3)                           // p2: second miss, lost; its task goes to p1 once free
        #expect(probes(third) == ["p1"])
        #expect(tasks(c.received("p1", ok(0, [0]), now: 3.5)) == ["1@p1/2"])
    }
}
