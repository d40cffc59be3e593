import Testing
@testable import Transport

/// `isOnServiceThread`, which the service-thread-only methods assert in debug builds.
@Suite struct ServiceThreadTests {
    private func clientOnly() -> Transport {
        var configuration = TransportConfiguration()
        configuration.port = nil
        return Transport(configuration: configuration)
    }

    @Test func onlyTheServiceThreadIsTheServiceThread() throws {
        let a = clientOnly(), b = clientOnly()
        #expect(!a.isOnServiceThread)
        try a.start()
        try b.start()
        defer {
            a.stop()
            b.stop()
        }
        #expect(!a.isOnServiceThread)
        #expect(a.sync { a.isOnServiceThread })
        // Another transport's service thread is not this one's.
        #expect(!a.sync { b.isOnServiceThread })
        #expect(b.sync { b.isOnServiceThread })
    }

    @Test func counterReadsAndSendsWorkOnTheServiceThread() throws {
        let t = clientOnly()
        try t.start()
        defer { t.stop() }
        #expect(t.sync { t.counters.webSocketsOpen } == 0)
        #expect(t.sync { t.send(Array("x".utf8), to: 42) } == false)
    }
}
