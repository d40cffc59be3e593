import ArgumentParser
import Synchronization
import Foundation
import Digest
import Jobs
import Logging
import PNG
import Peer
import RayTracer
import Ring
import Transport
import WireProtocol

/// `ws://host:port` of the rendezvous server, or a comma list of the servers of one cluster (tried in
/// turn after a connection fails or closes).
struct ServerAddress: ExpressibleByArgument, Sendable {
    var host: String, port: Int
    var more: [ServerEndpoint] = []
    init?(argument: String) {
        let list = argument.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard list.count > 1 else {
            guard let one = ServerAddress(one: argument) else { return nil }
            self = one
            return
        }
        let all = list.compactMap(ServerAddress.init(one:))
        guard all.count == list.count else { return nil }
        host = all[0].host
        port = all[0].port
        more = all.dropFirst().map { ServerEndpoint(host: $0.host, port: $0.port) }
    }

    private init?(one argument: String) {
        var s = Substring(argument)
        if s.hasPrefix("ws://") { s = s.dropFirst(5) } else if s.contains("://") { return nil }   // wss:// is not supported yet
        if s.hasSuffix("/") { s = s.dropLast() }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        host = String(s[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { return nil }
        self.port = port
    }
}

/// `host:port` to listen on for links.
struct ListenAddress: ExpressibleByArgument, Sendable {
    var host: String, port: Int
    var defaultValueDescription: String { "\(host):\(port)" }
    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        host = String(argument[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { return nil }
        self.port = port
    }
}

func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// The settings of a native peer from the command line (`peer` and `submit`).
func peerConfiguration(server: ServerAddress, listen: ListenAddress, advertise: String?, workers: Int) -> PeerConfiguration {
    var config = PeerConfiguration()
    config.serverHost = server.host
    config.serverPort = server.port
    config.moreServers = server.more
    config.listenHost = listen.host
    config.listenPort = listen.port
    config.advertisedURL = advertise
    config.capabilities = JobEngine.capabilities(workers: workers)
    return config
}

/// One JSON object per line on stdout (machine-readable events for scripts and tests).
func emitLine(_ value: JSONValue) {
    FileHandle.standardOutput.write(Data(value.encoded() + [UInt8(ascii: "\n")]))
}

/// Loads a scene: a file path, or the name of a shipped scene (in `dir`, or else in Public/scenes of
/// the working directory, of the source tree the executable was built in, or of /usr/local/share/browsercloud).
func loadScene(_ nameOrPath: String, dir: String?) throws -> (json: JSONValue, scene: Scene) {
    let (path, data) = try loadSceneFile(nameOrPath, dir: dir)
    guard let value = JSONValue(parsing: data) else { throw Message("\(path): not valid JSON") }
    return (value, try Scene(value))
}

/// The path and bytes of a scene file, or of a shipped scene by name.
func loadSceneFile(_ nameOrPath: String, dir: String?) throws -> (path: String, bytes: [UInt8]) {
    let executableDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    let dirs = dir.map { [$0] } ?? ["Public/scenes", "\(executableDir)/../../Public/scenes", "\(executableDir)/../../../Public/scenes",
                                    "/usr/local/share/browsercloud/Public/scenes"]
    let candidates = [nameOrPath] + dirs.map { "\($0)/\(nameOrPath).json" }
    guard let path = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) && !$0.hasSuffix("/") }),
          let data = FileManager.default.contents(atPath: path) else {
        throw Message("no scene file '\(nameOrPath)' (looked in \(dirs.joined(separator: ", ")))")
    }
    return (path, [UInt8](data))
}

/// Fails early (before any work) when `path` cannot be written.
func checkWritable(_ path: String) throws {
    let existed = FileManager.default.fileExists(atPath: path)
    guard FileManager.default.isWritableFile(atPath: path) || (!existed && FileManager.default.createFile(atPath: path, contents: nil)) else {
        throw Message("cannot write \(path)")
    }
    if !existed { try? FileManager.default.removeItem(atPath: path) }
}

/// Writes an RGBA image as PNG (or binary PPM when the name ends in .ppm; alpha is dropped) and
/// returns the SHA-256 of the file (what `sha256sum` prints).
@discardableResult
func writeImage(_ rgba: [UInt8], width: Int, height: Int, to path: String) throws -> String {
    let bytes: [UInt8]
    if path.hasSuffix(".ppm") {
        var out = Array("P6\n\(width) \(height)\n255\n".utf8)
        out.reserveCapacity(out.count + width * height * 3)
        for i in stride(from: 0, to: rgba.count, by: 4) { out += rgba[i..<(i + 3)] }
        bytes = out
    } else {
        bytes = try PNG.encode(rgba: rgba, width: width, height: height)
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw Message("cannot write \(path)") }
    return sha256Hex(bytes)
}


/// Runs `work` on the node's service thread and returns its result.
func onServiceThread<T: Sendable>(_ node: PeerNode, _ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        node.transport.post { continuation.resume(returning: work()) }
    }
}

/// An error message as an Error.
struct Message: Error, CustomStringConvertible, ExpressibleByStringInterpolation {
    let description: String
    init(stringLiteral value: String) { description = value }
    init(_ value: String) { description = value }
}

