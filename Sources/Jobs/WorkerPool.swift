import Foundation
import Synchronization

/// Identifies a task held by a worker peer: who sent it, for which job, which task.
public struct TaskKey: Hashable, Sendable {
    public var src: String, jobId: String, taskId: Int
}

/// How a task ended on this peer.
public enum TaskOutcome: Sendable {
    case ok([UInt8])
    case failed(code: String, message: String)
}

/// A pool of native worker threads (docs/jobs.md, "Workers"). Threads cannot be killed safely, so a
/// task is stopped cooperatively: its `isStopped` closure turns true at its deadline or when it is
/// cancelled, and the kernels poll it (the ray tracer once per row).
public final class WorkerPool: Sendable {
    final class Entry: Sendable {
        let key: TaskKey
        let deadline: Double
        let work: @Sendable (@escaping @Sendable () -> Bool) -> TaskOutcome
        let done: @Sendable (TaskOutcome) -> Void
        let cancelled = Atomic<Bool>(false)
        init(key: TaskKey, deadline: Double, work: @escaping @Sendable (@escaping @Sendable () -> Bool) -> TaskOutcome, done: @escaping @Sendable (TaskOutcome) -> Void) {
            self.key = key; self.deadline = deadline; self.work = work; self.done = done
        }
    }
    struct State {
        var queue: [Entry] = []
        var running: [Entry] = []
        var stopped = false
    }

    public let size: Int
    public let maxQueued: Int
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)

    public init(size: Int, maxQueued: Int) {
        self.size = max(1, size)
        self.maxQueued = max(0, maxQueued)
        for i in 0..<self.size {
            let t = Thread { [self] in self.loop() }
            t.name = "browsercloud-worker-\(i)"
            t.start()
        }
    }

    /// Tasks that may still be accepted.
    public var free: Int { state.withLock { size + maxQueued - $0.queue.count - $0.running.count } }

    public func keys() -> [TaskKey] { state.withLock { ($0.queue + $0.running).map(\.key) } }

    /// Queues `work`, which must finish within `seconds` of its start (or see `isStopped` turn true).
    /// `done` runs on a worker thread. Returns false (and does not call `done`) when the pool is full.
    public func run(_ key: TaskKey, seconds: Double, work: @escaping @Sendable (@escaping @Sendable () -> Bool) -> TaskOutcome,
                    done: @escaping @Sendable (TaskOutcome) -> Void) -> Bool {
        let accepted = state.withLock { s -> Bool in
            guard !s.stopped, s.queue.count + s.running.count < size + maxQueued else { return false }
            s.queue.append(Entry(key: key, deadline: seconds, work: work, done: done))
            return true
        }
        if accepted { wakeup.signal() }
        return accepted
    }

    /// Drops queued tasks and stops running ones whose key matches; they end as 'cancelled'.
    public func cancel(_ matches: (TaskKey) -> Bool) {
        let dropped = state.withLock { s -> [Entry] in
            let dropped = s.queue.filter { matches($0.key) }
            s.queue.removeAll { matches($0.key) }
            for e in s.running where matches(e.key) { e.cancelled.store(true, ordering: .relaxed) }
            return dropped
        }
        for e in dropped { e.done(.failed(code: "cancelled", message: "cancelled by the job")) }
    }

    public func stop() {
        let dropped = state.withLock { s -> [Entry] in
            s.stopped = true
            for e in s.running { e.cancelled.store(true, ordering: .relaxed) }
            defer { s.queue.removeAll() }
            return s.queue
        }
        for e in dropped { e.done(.failed(code: "stopped", message: "the worker pool is stopped")) }
        for _ in 0..<size { wakeup.signal() }
    }

    private func loop() {
        while true {
            wakeup.wait()
            let next = state.withLock { s -> Entry?? in
                if s.stopped { return .some(nil) }
                guard !s.queue.isEmpty else { return nil }
                let e = s.queue.removeFirst()
                s.running.append(e)
                return .some(e)
            }
            guard let next else { continue }
            guard let entry = next else { return }
            let start = DispatchTime.now().uptimeNanoseconds
            let limit = UInt64(entry.deadline * 1e9)
            let outcome = entry.work { entry.cancelled.load(ordering: .relaxed) || DispatchTime.now().uptimeNanoseconds - start > limit }
            state.withLock { s in s.running.removeAll { $0 === entry } }
            if entry.cancelled.load(ordering: .relaxed) {
                entry.done(.failed(code: "cancelled", message: "cancelled by the job"))
            } else if case .failed("stopped-by-deadline", _) = outcome {
                entry.done(.failed(code: "deadline", message: "the task ran past its deadline of \(Int(entry.deadline * 1000)) ms and was stopped"))
            } else {
                entry.done(outcome)
            }
        }
    }
}
