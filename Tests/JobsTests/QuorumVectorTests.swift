import Foundation
@testable import Jobs
import Testing

/// The native quorum rules against the shared vectors (Tests/vectors/quorum.json, written by
/// make_quorum_vectors.py from docs/jobs.md, "Verification by quorum"), which the browser's
/// process/scheduler.js also reproduces (Tests/e2e/test_scheduler_vectors.py). Times are milliseconds,
/// given to the scheduler as they are (see SchedulerVectorTests).
@Suite struct QuorumVectorTests {
    let file: [String: Any]

    init() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/quorum.json")
        file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static let number = SchedulerVectorTests.number
    static let canonical = SchedulerVectorTests.canonical

    @Test func drawsAndDecisions() throws {
        let draws = try #require(file["draws"] as? [[String: Any]])
        #expect(draws.count >= 50)
        for d in draws {
            let seed = try #require(d["seed"] as? Int), task = try #require(d["task"] as? Int)
            // The 53 bits, exact (Foundation's JSON reader may round the last digit of the float).
            #expect(Quorum.draw(seed: UInt64(seed), taskId: task) * 9_007_199_254_740_992 == Self.number(d["bits"]), "draw(\(seed), \(task))")
        }
        let decisions = try #require(file["decisions"] as? [[String: Any]])
        for d in decisions {
            let digests = try #require(d["digests"] as? [String]), single = try #require(d["single"] as? Bool)
            #expect(Quorum.decide(digests, single: single) == d["accepted"] as? String, "decide(\(digests), single: \(single))")
        }
    }

    @Test func reputation() throws {
        for q in try #require(file["reputation"] as? [[String: Any]]) {
            let trustAfter = try #require(q["trustAfter"] as? Int), rate = try #require(Self.number(q["spotCheckRate"]))
            var r = Reputation()
            for step in try #require(q["steps"] as? [[String: Any]]) {
                if step["op"] as? String == "agree" { r.agree("p") } else { r.penalise("p") }
                #expect(r.record("p").agreed == step["agreed"] as? Int && r.record("p").penalties == step["penalties"] as? Int)
                #expect(r.trusted("p", trustAfter: trustAfter) == step["trusted"] as? Bool)
                #expect(r.check("p", trustAfter: trustAfter, spotCheckRate: rate) == Self.number(step["check"]))
                #expect(r.avoided("p") == step["avoided"] as? Bool && r.avoidedPeers == (r.avoided("p") ? ["p"] : []))
            }
        }
    }

    static func state(_ s: Scheduler) -> [String: Any] {
        let c = s.counts, v = s.verification
        return ["remaining": s.remaining, "finished": s.finished, "pending": s.pending,
                "counts": ["dispatched": c.dispatched, "redispatched": c.redispatched, "speculative": c.speculative, "discarded": c.discarded,
                           "mismatches": c.mismatches, "late": c.late, "lost": c.lost, "busy": c.busy, "failed": c.failed],
                "verification": ["results": v.results, "agreed": v.agreed, "dissented": v.dissented, "spotChecks": v.spotChecks,
                                 "unchecked": v.unchecked, "noQuorum": v.noQuorum]]
    }

    @Test func theSchedulerInQuorumModeReproducesEveryVector() throws {
        let sequences = try #require(file["sequences"] as? [[String: Any]])
        #expect(sequences.count >= 50)
        for q in sequences {
            let name = q["name"] as? String ?? "?"
            let o = try #require(q["options"] as? [String: Any]), qo = try #require(q["quorum"] as? [String: Any])
            func num(_ k: String) -> Double { Self.number(o[k]) ?? .nan }
            var s = Scheduler(taskCount: try #require(q["taskCount"] as? Int), deadline: num("deadlineMs"), maxAttempts: Int(num("maxAttempts")),
                              maxRetries: Int(num("maxRetries")), maxCopies: Int(num("maxCopies")), speculateAfter: num("speculateAfter"),
                              speculateMin: num("speculateMinMs"),
                              quorum: .init(maxReplicas: try #require(qo["maxReplicas"] as? Int), seed: UInt64(try #require(qo["seed"] as? Int))))
            stepLoop: for (n, step) in try #require(q["steps"] as? [[String: Any]]).enumerated() {
                let op = step["op"] as? String ?? ""
                let now = Self.number(step["now"]) ?? 0
                let task = step["task"] as? Int ?? -1
                let peer = step["peer"] as? String ?? ""
                var out: Any?
                switch op {
                case "addPeer": s.addPeer(peer, limit: step["limit"] as? Int ?? 0, check: Self.number(step["check"]) ?? 1)
                case "setCheck": s.setCheck(peer, Self.number(step["check"]) ?? 1)
                case "removePeer": out = s.removePeer(peer)
                case "assign": out = s.assign(now: now).map { [$0.taskId, $0.peer, $0.attempt, $0.speculative] as [Any] }
                case "complete":
                    let r = s.complete(task, from: peer, sha256: step["sha256"] as? String ?? "", now: now)
                    out = ["winner": r.winner, "mismatch": r.mismatch, "unexpected": r.unexpected, "cancel": r.cancel,
                           "agreed": r.agreed, "dissented": r.dissented, "failed": r.failed] as [String: Any]
                case "fail":
                    let r = s.fail(task, from: peer, code: step["code"] as? String ?? "", message: "m", now: now, pause: Self.number(step["pauseMs"]) ?? 500)
                    out = ["failed": r.failed, "cancel": r.cancel] as [String: Any]
                case "expired":
                    out = s.expired(now: now).map { ["task": $0.taskId, "peer": $0.peer, "failed": $0.failure.failed, "cancel": $0.failure.cancel] as [String: Any] }
                case "starved": out = s.starved()
                case "failStarved": out = s.failStarved(task, message: "m")
                case "discount":
                    out = s.discount(peer).map { r -> [String: Any] in
                        let c = r.completion
                        return ["task": r.taskId, "accepted": r.accepted, "winner": r.winner,
                                "completion": ["winner": c.winner, "mismatch": c.mismatch, "unexpected": c.unexpected, "cancel": c.cancel,
                                               "agreed": c.agreed, "dissented": c.dissented, "failed": c.failed] as [String: Any]]
                    }
                default: Issue.record("\(name): unknown op \(op)"); break stepLoop
                }
                if let want = step["expect"] {
                    let got = Self.canonical(out ?? NSNull()), expected = Self.canonical(want)
                    if got != expected { Issue.record("\(name) step \(n) \(op): got \(got), want \(expected)"); break stepLoop }
                }
                let got = Self.canonical(Self.state(s)), expected = Self.canonical(step["state"] ?? NSNull())
                if got != expected { Issue.record("\(name) step \(n) \(op): state \(got), want \(expected)"); break stepLoop }
            }
            #expect(Self.canonical(s.wins()) == Self.canonical(q["wins"] ?? NSNull()), "\(name): wins")
        }
    }
}
