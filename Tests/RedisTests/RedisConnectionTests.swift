import Foundation
import Redis
import Testing

/// Every test runs its own redis-server (RedisServer) and ends by stopping it.
@Suite struct RedisConnectionTests {
    @Test func binarySafeSetAndGet() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let c = try RedisConnection(url: server.url, readTimeout: 5)
        let value: [UInt8] = [0x00, 0xff, 0xfe, 0x80, 0x41, 0x00, 0xc3, 0x28]   // NULs and invalid UTF-8
        let key: [UInt8] = [0x6b, 0x00, 0x01]
        #expect(try c.command(bytes: [Array("SET".utf8), key, value]) == .status("OK"))
        let got = try c.command(bytes: [Array("GET".utf8), key])
        #expect(got == .bulk(value))
        #expect(got.string == nil)
        #expect(try c.command(["STRLEN", "missing"]) == .integer(0))
        #expect(try c.command(bytes: [Array("STRLEN".utf8), key]) == .integer(value.count))
        #expect(try c.command(["SET", "empty", ""]).isOK)
        #expect(try c.command(["GET", "empty"]) == .bulk([]))
        #expect(try c.command(["GET", "missing"]) == .null)
        #expect(try c.command(["SET", "text", "grüße"]).isOK)
        #expect(try c.command(["GET", "text"]).string == "grüße")
    }

    @Test func integerArrayNullAndErrorReplies() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let c = try RedisConnection(url: server.url, readTimeout: 5)
        #expect(try c.command(["INCR", "n"]) == .integer(1))
        #expect(try c.command(["INCRBY", "n", "-43"]) == .integer(-42))
        #expect(try c.command(["RPUSH", "l", "a", "b", "c"]) == .integer(3))
        #expect(try c.command(["LRANGE", "l", "0", "-1"]) == .array([.bulk([0x61]), .bulk([0x62]), .bulk([0x63])]))
        #expect(try c.command(["LRANGE", "nothing", "0", "-1"]) == .array([]))
        #expect(try c.command(["MGET", "l", "nothing", "n"]) == .array([.null, .null, .bulk(Array("-42".utf8))]))
        #expect(try c.command(["PING"]) == .status("PONG"))
        let wrongType = try c.command(["INCR", "l"])
        #expect(wrongType.errorMessage?.hasPrefix("WRONGTYPE") == true)
        let unknown = try c.command(["NO-SUCH-COMMAND", "x"])
        #expect(unknown.errorMessage?.hasPrefix("ERR") == true)
        // An error reply leaves the connection usable.
        #expect(!c.isBroken)
        #expect(try c.command(["GET", "n"]).int == -42)
        #expect(throws: RedisError.protocol("empty command")) { try c.command([String]()) }
        #expect(!c.isBroken)
    }

    @Test func databaseFromTheURL() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let db3 = try RedisConnection(url: RedisURL("redis://127.0.0.1:\(server.port)/3"), readTimeout: 5)
        #expect(try db3.command(["SET", "k", "in3"]).isOK)
        let db0 = try RedisConnection(url: server.url, readTimeout: 5)
        #expect(try db0.command(["GET", "k"]) == .null)
        let again = try RedisConnection(url: RedisURL("redis://localhost:\(server.port)/3"), readTimeout: 5)
        #expect(try again.command(["GET", "k"]).string == "in3")
        // redis-server has 16 databases by default: SELECT 99 is refused at connect time.
        #expect(throws: RedisError.self) { try RedisConnection(url: RedisURL("redis://127.0.0.1:\(server.port)/99")) }
        let db99 = try RedisURL("redis://127.0.0.1:\(server.port)/99")
        do {
            _ = try RedisConnection(url: db99)
        } catch {
            guard case .connect(let text) = error else { Issue.record("expected .connect, got \(error)"); return }
            #expect(text.contains("SELECT 99"))
        }
    }

    @Test func connectFailures() throws {
        let port = try RedisServer.freePort()   // nobody listens there
        let closed = try RedisURL("redis://127.0.0.1:\(port)")
        do {
            _ = try RedisConnection(url: closed, connectTimeout: 2)
            Issue.record("connected to a closed port")
        } catch {
            guard case .connect(let text) = error else { Issue.record("expected .connect, got \(error)"); return }
            #expect(text.contains("127.0.0.1:\(port)"))
        }
        #expect(throws: RedisError.self) {
            try RedisConnection(url: RedisURL("redis://no-such-host.invalid:6379"), connectTimeout: 2)
        }
    }

    @Test func streamsAddReadRangeTrim() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let c = try RedisConnection(url: server.url, readTimeout: 5)
        var ids: [StreamID] = []
        for i in 0..<5 {
            let reply = try c.command(bytes: [Array("XADD".utf8), Array("ring".utf8), [0x2a], Array("op".utf8), Array("op\(i)".utf8), Array("blob".utf8), [UInt8(i), 0x00, 0xff]])
            let id = try #require(reply.bytes.flatMap { StreamID(bytes: $0) }, "\(reply)")
            ids.append(id)
        }
        #expect(ids == ids.sorted() && Set(ids).count == 5)

        let all = try StreamReply.read(try c.command(["XREAD", "STREAMS", "ring", StreamID.zero.text]), stream: "ring")
        #expect(all.map(\.id) == ids)
        #expect(all.map { $0.string("op") } == (0..<5).map { "op\($0)" })
        #expect(all.map { $0["blob"] } == (0..<5).map { [UInt8($0), 0x00, 0xff] })

        // Reading after the second entry gives the last three, in order.
        let after = try StreamReply.read(try c.command(["XREAD", "COUNT", "10", "STREAMS", "ring", ids[1].text]), stream: "ring")
        #expect(after.map(\.id) == Array(ids[2...]))
        // Nothing after the last entry: null without BLOCK.
        #expect(try c.command(["XREAD", "STREAMS", "ring", ids[4].text]) == .null)

        let range = try StreamReply.entries(try c.command(["XRANGE", "ring", "-", "+"]))
        #expect(range == all)
        let two = try StreamReply.entries(try c.command(["XRANGE", "ring", ids[1].text, "+", "COUNT", "2"]))
        #expect(two.map(\.id) == [ids[1], ids[2]])

        // XTRIM MINID drops the entries before the given ID.
        #expect(try c.command(["XTRIM", "ring", "MINID", ids[3].text]) == .integer(3))
        #expect(try StreamReply.entries(try c.command(["XRANGE", "ring", "-", "+"])).map(\.id) == [ids[3], ids[4]])
        #expect(try c.command(["XLEN", "ring"]) == .integer(2))

        // Explicit IDs must increase: Redis refuses an older one with an error reply.
        let stale = try c.command(["XADD", "ring", ids[0].text, "op", "late"])
        #expect(stale.errorMessage != nil)
    }

    @Test func xreadBlockTimesOutWithNullAndWakesOnAnAppend() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let reader = try RedisConnection(url: server.url, readTimeout: 5)
        let start = ContinuousClock.now
        #expect(try reader.command(["XREAD", "BLOCK", "150", "STREAMS", "ring", "$"]) == .null)
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(140) && waited < .seconds(4), "\(waited)")
        #expect(!reader.isBroken)

        // A blocked XREAD returns the entry another connection appends meanwhile. The writer waits until
        // the reader is blocked (CLIENT LIST shows a client in xread), then appends.
        let url = server.url
        let writer = Thread {
            guard let w = try? RedisConnection(url: url, readTimeout: 5) else { return }
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                if (try? w.command(["CLIENT", "LIST"]))?.string?.contains("cmd=xread") == true { break }
                Thread.sleep(forTimeInterval: 0.01)   // polling CLIENT LIST, bounded by the deadline
            }
            _ = try? w.command(["XADD", "ring", "*", "op", "wake"])
        }
        writer.start()
        let woke = try StreamReply.read(try reader.command(["XREAD", "BLOCK", "4000", "STREAMS", "ring", "$"]), stream: "ring")
        #expect(woke.map { $0.string("op") } == ["wake"])
    }

    @Test func commandSlowerThanTheReadTimeoutBreaksTheConnection() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let c = try RedisConnection(url: server.url, readTimeout: 0.1)
        do {
            _ = try c.command(["XREAD", "BLOCK", "3000", "STREAMS", "s", "$"])
            Issue.record("a 3 s XREAD returned within a 0.1 s read timeout")
        } catch {
            guard case .io = error else { Issue.record("expected .io, got \(error)"); return }
        }
        #expect(c.isBroken)
        #expect(throws: RedisError.self) { try c.command(["PING"]) }
        try c.reconnect()
        try c.setReadTimeout(seconds: 5)
        #expect(try c.command(["PING"]) == .status("PONG"))
    }

    @Test func publishSubscribeInOrderWithTimeouts() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let sub = try RedisConnection(url: server.url, readTimeout: 5)
        let pub = try RedisConnection(url: server.url, readTimeout: 5)
        #expect(try sub.command(["SUBSCRIBE", "node.a"]) == .array([.bulk(Array("subscribe".utf8)), .bulk(Array("node.a".utf8)), .integer(1)]))
        try sub.setReadTimeout(seconds: 0.2)

        // Nothing published: nil after about the read timeout, and the connection stays usable.
        for _ in 0..<2 {
            let start = ContinuousClock.now
            #expect(try sub.nextReply() == nil)
            let waited = ContinuousClock.now - start
            #expect(waited >= .milliseconds(150) && waited < .seconds(4), "\(waited)")
            #expect(!sub.isBroken)
        }

        var expected: [[UInt8]] = []
        for i in 0..<200 {
            let payload: [UInt8] = Array("signal \(i) ".utf8) + [0x00, UInt8(i & 0xff)]
            expected.append(payload)
            #expect(try pub.command(bytes: [Array("PUBLISH".utf8), Array("node.a".utf8), payload]) == .integer(1))
        }
        #expect(try pub.command(["PUBLISH", "node.b", "not subscribed"]) == .integer(0))
        var received: [[UInt8]] = []
        while received.count < expected.count, let message = try sub.nextReply() {
            let parts = try #require(message.array)
            #expect(parts.count == 3 && parts[0].string == "message" && parts[1].string == "node.a")
            received.append(parts[2].bytes ?? [])
        }
        #expect(received == expected)
        #expect(try sub.nextReply() == nil)

        // A message published after a timeout still arrives.
        #expect(try pub.command(["PUBLISH", "node.a", "late"]) == .integer(1))
        try sub.setReadTimeout(seconds: 5)
        #expect(try sub.nextReply()?.array?.last?.string == "late")
    }

    @Test func pipelineRepliesInOrder() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let c = try RedisConnection(url: server.url, readTimeout: 5)
        let replies = try c.pipeline([
            ["SET", "hb:node1", "alive", "PX", "3000"],
            ["INCR", "stats:signals"],
            ["INCRBY", "stats:signals", "9"],
            ["BOGUS"],
            ["GET", "hb:node1"],
            ["PTTL", "hb:node1"],
        ])
        #expect(replies.count == 6)
        #expect(replies[0].isOK && replies[1] == .integer(1) && replies[2] == .integer(10))
        #expect(replies[3].errorMessage != nil)
        #expect(replies[4].string == "alive")
        #expect((1...3000).contains(replies[5].int ?? -1), "\(replies[5])")
        #expect(try c.pipeline([]) == [])

        let many = try c.pipeline((0..<1000).map { ["RPUSH", "log", String($0)] })
        #expect(many == (1...1000).map { .integer($0) })
        #expect(try c.command(["LINDEX", "log", "999"]).string == "999")
        #expect(throws: RedisError.protocol("empty command in a pipeline")) { try c.pipeline([["PING"], []]) }
    }

    @Test func serverDeathThenRestart() throws {
        let server = try RedisServer.start()
        defer { server.kill() }
        let c = try RedisConnection(url: server.url, readTimeout: 5)
        let sub = try RedisConnection(url: server.url, readTimeout: 5)
        #expect(try sub.command(["SUBSCRIBE", "x"]).array?.count == 3)
        #expect(try c.command(["SET", "k", "v"]).isOK)
        server.kill(SIGKILL)

        for _ in 0..<2 {
            do {
                _ = try c.command(["GET", "k"])
                Issue.record("a command succeeded on a dead server")
            } catch {
                guard case .io = error else { Issue.record("expected .io, got \(error)"); return }
            }
        }
        #expect(c.isBroken)
        do {
            _ = try sub.nextReply()
            Issue.record("nextReply succeeded on a dead server")
        } catch {
            guard case .io = error else { Issue.record("expected .io, got \(error)"); return }
        }
        #expect(throws: RedisError.self) { try c.pipeline([["PING"]]) }
        #expect(throws: RedisError.self) { try c.reconnect() }   // nobody listens yet

        try server.launch()
        try c.reconnect()
        #expect(!c.isBroken)
        #expect(try c.command(["GET", "k"]) == .null)   // no persistence: a fresh server
        let fresh = try RedisConnection(url: server.url, readTimeout: 5)
        #expect(try fresh.command(["PING"]) == .status("PONG"))
    }

    @Test func appendOnlyStreamSurvivesARestart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("redis-aof-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try RedisServer.start(["--appendonly", "yes", "--appendfsync", "always", "--dir", dir.path])
        defer { server.kill() }
        let c = try RedisConnection(url: server.url, readTimeout: 5)
        let ids = try (0..<3).map { i in
            try #require(try c.command(["XADD", "ring", "*", "op", "m\(i)"]).bytes.flatMap { StreamID(bytes: $0) })
        }
        server.kill(SIGKILL)
        try server.launch()
        try c.reconnect()
        let entries = try StreamReply.entries(try c.command(["XRANGE", "ring", "-", "+"]))
        #expect(entries.map(\.id) == ids)
        #expect(entries.map { $0.string("op") } == ["m0", "m1", "m2"])
        // New entries still get larger IDs than the recovered ones.
        let next = try #require(try c.command(["XADD", "ring", "*", "op", "m3"]).bytes.flatMap { StreamID(bytes: $0) })
        #expect(next > ids[2])
    }
}
