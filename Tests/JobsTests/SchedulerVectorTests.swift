import Foundation
@testable import Jobs
import Testing

/// The native scheduler against the shared vectors (Tests/vectors/scheduler.json, written by
/// make_scheduler_vectors.py from docs/jobs.md), which the browser's process/scheduler.js also reproduces
/// (Tests/e2e/test_scheduler_vectors.py). The vectors' times are milliseconds; the scheduler takes any
/// unit, so they are given as they are (deadline and speculateMin in milliseconds too), which keeps every
/// comparison exact.
@Suite struct SchedulerVectorTests {
    let sequences: [[String: Any]]

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/scheduler.json")
        let file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        sequences = try #require(file["sequences"] as? [[String: Any]])
    }

    /// A JSON number as a Double (Foundation on Linux gives Int or Double, elsewhere NSNumber).
    static func number(_ v: Any?) -> Double? {
        switch v {
        case let i as Int: return Double(i)
        case let d as Double: return d
        case let n as NSNumber: return n.doubleValue
        default: return nil
        }
    }

    /// A JSON value as canonical text, so that expected and actual values compare whatever their types.
    static func canonical(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: ["v": value], options: [.sortedKeys, .fragmentsAllowed]) else { return "<not JSON: \(value)>" }
        return String(decoding: data, as: UTF8.self)
    }

    static func state(_ s: Scheduler, pending: Bool) -> [String: Any] {
        let c = s.counts
        var out: [String: Any] = [
            "remaining": s.remaining, "finished": s.finished,
            "counts": ["dispatched": c.dispatched, "redispatched": c.redispatched, "speculative": c.speculative, "discarded": c.discarded,
                       "mismatches": c.mismatches, "late": c.late, "lost": c.lost, "busy": c.busy, "failed": c.failed],
        ]
        if pending { out["pending"] = s.pending }
        return out
    }

    @Test func theSchedulerReproducesEveryVector() throws {
        #expect(sequences.count >= 60)
        for q in sequences {
            let name = q["name"] as? String ?? "?"
            let o = try #require(q["options"] as? [String: Any])
            func num(_ k: String) -> Double { Self.number(o[k]) ?? .nan }
            var s = Scheduler(taskCount: try #require(q["taskCount"] as? Int), deadline: num("deadlineMs"), maxAttempts: Int(num("maxAttempts").rounded()),
                              maxRetries: Int(num("maxRetries")), maxCopies: Int(num("maxCopies")),
                              speculateAfter: num("speculateAfter"), speculateMin: num("speculateMinMs"))
            let steps = try #require(q["steps"] as? [[String: Any]])
            stepLoop: for (n, step) in steps.enumerated() {
                let op = step["op"] as? String ?? ""
                let now = Self.number(step["now"]) ?? 0
                let task = step["task"] as? Int ?? -1
                let peer = step["peer"] as? String ?? ""
                var out: Any?
                switch op {
                case "addPeer": s.addPeer(peer, limit: step["limit"] as? Int ?? 0)
                case "removePeer": out = s.removePeer(peer)
                case "assign": out = s.assign(now: now).map { [$0.taskId, $0.peer, $0.attempt, $0.speculative] as [Any] }
                case "complete":
                    let r = s.complete(task, from: peer, sha256: step["sha256"] as? String ?? "", now: now)
                    out = ["winner": r.winner, "mismatch": r.mismatch, "unexpected": r.unexpected, "cancel": r.cancel] as [String: Any]
                case "fail":
                    let pause = Self.number(step["pauseMs"]) ?? 500
                    let r = s.fail(task, from: peer, code: step["code"] as? String ?? "", message: "m", now: now, pause: pause)
                    out = ["failed": r.failed, "cancel": r.cancel] as [String: Any]
                case "expired":
                    out = s.expired(now: now).map { ["task": $0.taskId, "peer": $0.peer, "failed": $0.failure.failed, "cancel": $0.failure.cancel] as [String: Any] }
                case "runningOn": out = s.running(on: peer, before: Self.number(step["before"]) ?? 0)
                case "abort": s.abort(code: step["code"] as? String ?? "", message: "m")
                default: Issue.record("\(name): unknown op \(op)"); break stepLoop
                }
                if let want = step["expect"] {
                    let got = Self.canonical(out ?? NSNull()), expected = Self.canonical(want)
                    if got != expected { Issue.record("\(name) step \(n) \(op): got \(got), want \(expected)"); break stepLoop }
                }
                let got = Self.canonical(Self.state(s, pending: op != "abort")), expected = Self.canonical(step["state"] ?? NSNull())
                if got != expected { Issue.record("\(name) step \(n) \(op): state \(got), want \(expected)"); break stepLoop }
            }
            #expect(Self.canonical(s.wins()) == Self.canonical(q["wins"] ?? NSNull()), "\(name): wins")
        }
    }
}
