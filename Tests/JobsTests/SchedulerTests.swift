@testable import Jobs
import Testing

// The same cases as the JavaScript scheduler's tests (Tests/e2e/test_process.py): both schedulers
// implement docs/jobs.md, "Scheduling".

private func pairs(_ a: [Scheduler.Assignment]) -> [String] { a.map { "\($0.taskId)@\($0.peer)" } }

@Test func pullWithABoundedNumberInFlightPerPeerAndInOrder() {
    var s = Scheduler(taskCount: 5)
    s.addPeer("a", limit: 2); s.addPeer("b", limit: 1)
    #expect(pairs(s.assign(now: 0)) == ["0@a", "1@a", "2@b"])
    #expect(s.assign(now: 1).isEmpty)
    #expect(s.complete(1, from: "a", sha256: "h1", now: 10).winner)
    #expect(pairs(s.assign(now: 11)) == ["3@a"])
    for (t, p) in [(0, "a"), (2, "b"), (3, "a")] { _ = s.complete(t, from: p, sha256: "h", now: 20) }
    #expect(pairs(s.assign(now: 21)) == ["4@a"])
    _ = s.complete(4, from: "a", sha256: "h", now: 30)
    #expect(s.finished)
    #expect(s.wins() == ["a": 4, "b": 1])
}

@Test func aPeerThatLeavesHasItsTasksDispatchedAgainFirst() {
    var s = Scheduler(taskCount: 4)
    s.addPeer("a", limit: 2); s.addPeer("b", limit: 1)
    _ = s.assign(now: 0)
    #expect(s.removePeer("a") == [0, 1])
    _ = s.complete(2, from: "b", sha256: "h", now: 5)
    let again = s.assign(now: 6)
    #expect(again.map(\.taskId) == [0] && again[0].attempt == 2)
    #expect(s.counts.redispatched == 1 && s.counts.lost == 2)
    #expect(s.complete(1, from: "x", sha256: "h", now: 7).unexpected)
    #expect(s.complete(0, from: "a", sha256: "h", now: 8).winner)
}

@Test func deadlinesErrorsAndDecliningPeers() {
    var s = Scheduler(taskCount: 3, deadline: 0.1, maxAttempts: 2, maxCopies: 1)
    s.addPeer("a", limit: 3)
    _ = s.assign(now: 0)
    #expect(s.fail(1, from: "a", code: "threw", message: "boom", now: 0.001) == Scheduler.Failure(failed: true, cancel: []))
    #expect(s.expired(now: 0.05).isEmpty)
    #expect(s.expired(now: 0.101).map { "\($0.taskId):\($0.failure.failed)" } == ["0:false", "2:false"])
    #expect(s.assign(now: 0.102).map { "\($0.taskId)/\($0.attempt)" } == ["0/2", "2/2"])
    _ = s.complete(2, from: "a", sha256: "h", now: 0.11)
    #expect(s.expired(now: 0.203).map { "\($0.taskId):\($0.failure.failed)" } == ["0:true"])
    #expect(s.finished && s.counts.failed == 2)
    var b = Scheduler(taskCount: 2)
    b.addPeer("a", limit: 1)
    _ = b.assign(now: 0)
    _ = b.fail(0, from: "a", code: "busy", message: "full", now: 0, pause: 0.5)
    #expect(b.assign(now: 0.1).isEmpty)
    #expect(pairs(b.assign(now: 0.6)) == ["0@a"])
    for i in 0..<50 { _ = b.assign(now: 2 + Double(i)); _ = b.fail(0, from: "a", code: "busy", message: "full", now: 2 + Double(i)) }
    #expect(!b.finished, "declines never fail the task")
}

@Test func lossesAreBoundedAndOnlyDeadlinesAndCrashesCountAsAttempts() {
    var s = Scheduler(taskCount: 1, maxAttempts: 2, maxRetries: 3)
    s.addPeer("a", limit: 1); s.addPeer("b", limit: 1); s.addPeer("c", limit: 1)
    _ = s.assign(now: 0); s.removePeer("a")
    _ = s.assign(now: 1); s.removePeer("b")
    _ = s.assign(now: 2)
    #expect(!s.fail(0, from: "c", code: "crashed", message: "x", now: 3).failed)
    for i in 0..<3 { _ = s.assign(now: 10 + Double(i)); #expect(!s.fail(0, from: "c", code: "lost", message: "x", now: 10 + Double(i)).failed) }
    _ = s.assign(now: 20)
    #expect(s.fail(0, from: "c", code: "corrupt", message: "x", now: 20).failed)
    #expect(s.errors[0]?.code == "corrupt" && s.counts.lost == 5)
}

@Test func speculativeDuplicatesOfStragglersFirstResultWins() {
    var s = Scheduler(taskCount: 3, speculateAfter: 2, speculateMin: 0)
    s.addPeer("a", limit: 1); s.addPeer("b", limit: 1); s.addPeer("c", limit: 1)
    _ = s.assign(now: 0)
    _ = s.complete(0, from: "a", sha256: "h0", now: 10)
    #expect(s.assign(now: 11).isEmpty)
    let dup = s.assign(now: 25)
    #expect(pairs(dup) == ["1@a"] && dup[0].speculative)
    #expect(s.complete(1, from: "a", sha256: "h1", now: 30) == Scheduler.Completion(winner: true, mismatch: false, unexpected: false, cancel: ["b"]))
    #expect(s.complete(1, from: "b", sha256: "hX", now: 31) == Scheduler.Completion(winner: false, mismatch: true, unexpected: false, cancel: []))
    #expect(s.counts.mismatches == 1 && s.counts.speculative == 1)
    var n = Scheduler(taskCount: 2, speculateMin: 1)
    n.addPeer("a", limit: 1); n.addPeer("b", limit: 1)
    _ = n.assign(now: 0); _ = n.complete(0, from: "a", sha256: "h", now: 0.001)
    #expect(n.assign(now: 0.5).isEmpty)
    #expect(n.assign(now: 1.002).count == 1)
}
