import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// The process lifecycle of every long-running subcommand (`serve`, `peer`, `submit`), on
/// swift-service-lifecycle.
///
/// - The first SIGTERM or SIGINT starts the `ServiceGroup`'s graceful shutdown: `body` sees it through
///   `gracefulShutdown()` / `Task.isShuttingDownGracefully`, tears down within `grace` seconds and returns;
///   the process then exits 0.
/// - A second signal, or `grace` plus a margin without `body` returning, forces the exit (status 1).
/// - A `body` that ends by itself (a job done) ends the group; its error is the command's error.
///
/// No signal handler or disposition is set by hand; `prepareSignals` only blocks the two signals (see there).
struct LongRunning: Service {
    /// Seconds after which teardown is overdue and the exit is forced, on top of `grace`.
    static let overdueMargin = 2.0

    let name: String
    let grace: Double
    let logger: Logger
    let body: @Sendable () async throws -> Void

    /// Blocks SIGTERM and SIGINT in the calling thread, which must be the main thread before any other
    /// thread exists, so that every thread of the process inherits the mask.
    ///
    /// Why: on Linux, libdispatch's signal sources (which swift-service-lifecycle uses) read a `signalfd`
    /// on its manager thread, and a `signalfd` sees a signal only while no thread accepts it. A thread
    /// that accepts it (an lws service thread, a worker thread, or the main thread parked by an async
    /// `main` in `sigsuspend` with an empty mask) runs libdispatch's fallback handler instead, which
    /// forwards the signal to the thread that first registered a source; when that thread is not the one
    /// reading the `signalfd`, the signal stays pending there for ever (measured: about one process in
    /// thirty ignored SIGTERM). With the signals blocked everywhere they stay pending for the process
    /// until the group's sources read them, and one that arrives before the sources exist (while the
    /// command line is parsed) is read as soon as they do: every stop is a graceful one.
    static func prepareSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Runs `body` as the one service of a group that turns SIGTERM and SIGINT into a graceful shutdown.
    static func run(_ name: String, grace: Double, logger: Logger, _ body: @escaping @Sendable () async throws -> Void) async throws {
        // Registered before anything else: a signal that came before is still pending and is read now.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let service = LongRunning(name: name, grace: grace, logger: logger, body: body)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: name)],
            logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // The first signal starts the graceful shutdown (remembered if the group has not started yet);
            // the second forces the exit.
            tasks.addTask {
                var seen = 0
                for await signal in signals {
                    seen += 1
                    guard seen == 1 else { force("second signal (\(signal))", logger: logger) }
                    logger.info("\(signal): stopping (again to force)")
                    await group.triggerGracefulShutdown()
                }
            }
            defer { tasks.cancelAll() }
            try await group.run()
        }
    }

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            // Teardown is overdue `grace` plus a margin after the shutdown began: the exit is forced.
            tasks.addTask { [logger, grace] in
                try await gracefulShutdown()
                try await Task.sleep(for: .milliseconds(Int64((grace + LongRunning.overdueMargin) * 1000)))
                LongRunning.force("still running \(grace + LongRunning.overdueMargin) s after the shutdown began", logger: logger)
            }
            defer { tasks.cancelAll() }
            try await body()
        }
    }

    private static func force(_ why: String, logger: Logger) -> Never {
        logger.error("forced exit: \(why)")
        exit(1)
    }
}

/// Runs blocking work (joining threads, waiting on a socket to flush) on a thread of its own, so that
/// it never holds one of the few threads of Swift's cooperative pool.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try work() })
        }
    }
}

/// Waits until the process is asked to stop (first SIGTERM/SIGINT, or `ServiceGroup.triggerGracefulShutdown`).
func untilShutdown() async {
    // `gracefulShutdown()` throws only on cancellation, which also means "stop".
    try? await gracefulShutdown()
}
