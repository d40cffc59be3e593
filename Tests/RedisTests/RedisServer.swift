import Foundation
import Redis
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway `redis-server` of one test: its own loopback port, no system service. `start` fails (never
/// skips) when redis-server is missing: CI installs it with scripts/install-deps.sh.
final class RedisServer {
    let port: Int
    let extraArguments: [String]
    /// The running server's process ID, or nil.
    private(set) var pid: pid_t?

    var url: RedisURL { try! RedisURL("redis://127.0.0.1:\(port)") }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts a server on a free port (retrying with another port when the chosen one was taken meanwhile)
    /// and waits, at most `timeout` seconds, until it answers PING as the process we started.
    static func start(_ extraArguments: [String] = [], timeout: Double = 10) throws -> RedisServer {
        var lastError: Error = Failure(description: "no attempt")
        for _ in 0..<5 {
            let server = RedisServer(port: try freePort(), extraArguments: extraArguments)
            do {
                try server.launch(timeout: timeout)
                return server
            } catch {
                server.kill(SIGKILL)
                lastError = error
            }
        }
        throw lastError
    }

    private init(port: Int, extraArguments: [String]) {
        self.port = port
        self.extraArguments = extraArguments
    }

    deinit { kill(SIGKILL) }

    /// Starts (or restarts, after `kill`) the server on this object's port. The child gets an empty signal
    /// mask and default handlers (a test thread may block signals; SIGTERM must reach redis-server).
    func launch(timeout: Double = 10) throws {
        guard let binary = RedisServer.findRedisServer() else {
            throw Failure(description: "redis-server not found on PATH: the Redis tests need it (apt-get install redis-server, or scripts/install-deps.sh)")
        }
        let args = [binary, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--logfile", "/dev/null"] + extraArguments
        let child = try RedisServer.spawn(args)
        pid = child
        let deadline = ContinuousClock.now + .seconds(timeout)
        var lastProblem = "not started"
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child {
                pid = nil
                throw Failure(description: "redis-server on port \(port) exited with status \(status) (port taken?)")
            }
            do {
                let c = try RedisConnection(url: url, connectTimeout: 1, readTimeout: 2)
                // The process that answers must be ours (another test may hold the port).
                let info = try c.command(["INFO", "server"]).string ?? ""
                if info.contains("process_id:\(child)\r\n") { return }
                throw Failure(description: "port \(port) is answered by another redis-server")
            } catch let error as RedisError {
                lastProblem = "\(error)"
            }
            // Polling the port until the server listens: short waits, bounded by the deadline above.
            usleep(20_000)
        }
        throw Failure(description: "redis-server on port \(port) did not answer PING within \(timeout) s: \(lastProblem)")
    }

    /// Sends `signal` and waits until the process is gone (SIGTERM: redis-server shuts down cleanly).
    func kill(_ signal: Int32 = SIGTERM) {
        guard let child = pid else { return }
        Glibc.kill(child, signal)
        var status: Int32 = 0
        while waitpid(child, &status, 0) == -1 && errno == EINTR {}
        pid = nil
    }

    private static func spawn(_ args: [String]) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, args[0], nil, &attr, &cArgs, environ)
        guard rc == 0 else { throw Failure(description: "posix_spawn \(args[0]): error \(rc)") }
        return child
    }

    static func findRedisServer() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/sbin"] {
            let candidate = "\(dir)/redis-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// A loopback TCP port nobody listens on right now: bind port 0, read the port, close.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard bound == 0 else { throw Failure(description: "bind: errno \(errno)") }
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw Failure(description: "getsockname: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
