import Foundation
import RendezvousCore

/// Writes the core's events and actions to a file as JSON lines (`EventLog`; `serve --record-events`):
/// the header when created, then one line per event, flushed at once so a crash loses nothing.
/// A diagnostic: every line costs a write system call. Write errors are ignored (recording never stops
/// the server).
///
/// `@unchecked Sendable`: `file` is used only on the transport's service thread (`record`) and by
/// `close`, which runs after the service thread stopped.
final class EventRecorder: @unchecked Sendable {
    private var file: UnsafeMutablePointer<FILE>?

    /// Creates (or truncates) the file at `path` and writes the header of `configuration`.
    init(path: String, configuration: MembershipConfiguration) throws {
        guard let f = fopen(path, "w") else { throw RecorderError.cannotOpen(path) }
        file = f
        write(EventLog.header(configuration))
    }

    func record(_ event: Event, _ actions: [Action]) {
        write(EventLog.line(event, actions))
    }

    func close() {
        if let file { fclose(file) }
        file = nil
    }

    deinit { close() }

    private func write(_ bytes: [UInt8]) {
        guard let file else { return }
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
        fflush(file)
    }
}

public enum RecorderError: Error, CustomStringConvertible {
    case cannotOpen(String)

    public var description: String {
        switch self {
        case .cannotOpen(let p): return "cannot write the event log \(p)"
        }
    }
}
