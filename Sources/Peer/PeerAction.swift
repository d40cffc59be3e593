import Hex
import Logging
import Ring
import Transport
import WireProtocol

/// What the pure cores of a native peer (`PeerSession`, `LinkTable`) ask their I/O shell (`PeerNode`)
/// to do. Events go in, actions come out, in order; the shell performs them in that order.
public enum PeerAction: Equatable, Sendable {
    /// Open the WebSocket to the rendezvous server, then report it with `PeerSession.serverConnecting`.
    case connectToServer
    /// Send one server message on the server connection.
    case sendServer(ConnectionID, ClientMessage)
    /// Dial a peer's link listener (an IP literal), then report it with `PeerSession.dialStarted`.
    case dial(PeerID, WebSocketURL, nonce: String)
    /// Send one text frame on a WebSocket (link frames, hello, welcome, relayed `link` messages).
    case send(ConnectionID, [UInt8])
    /// Send an overlay message's frames on `connection`, in order, stopping at the first refused one.
    /// When one is refused, report `failure` (code, text) if it is set.
    case forward(ConnectionID, frames: [[UInt8]], failure: PeerError?)
    case close(ConnectionID, status: UInt16, reason: String)
    /// The server connection closed after `stop` (the shell stops waiting).
    case serverClosed
    case registered(PeerID, again: Bool)
    case deliver(Envelope)
    case linkUp(PeerID)
    case linkDown(PeerID)
    case ringChanged
    /// The server announced a shutdown; the peer reconnects after this many milliseconds.
    case goingAway(Int)
    case error(PeerError)
    /// A signed overlay message for this peer was refused (or an unsigned one arrived), and counted
    /// (`PeerSession.overlayCounters`): `reason` (docs/protocol.md, "Signed overlay messages"), the source
    /// it claimed (nil when unreadable or unsigned), and the peer whose link carried it.
    case forgery(reason: String, srcId: PeerID?, link: PeerID)
    case log(Logger.Level, String)
}

/// An error the peer reports but cannot act on: a server error code (`server-full`, `bad-signature`, …),
/// `hop-limit` or `no-route`.
public struct PeerError: Equatable, Sendable {
    public var code: String
    public var message: String
    public init(_ code: String, _ message: String) { self.code = code; self.message = message }
}

/// Seconds to the nanoseconds of the monotonic clock the cores are given.
@inline(__always) func nanoseconds(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }

/// `count` random bytes in hex, from an injected generator.
func randomHex(_ count: Int, using random: inout any RandomNumberGenerator) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    while bytes.count < count {
        var word = random.next()
        for _ in 0..<min(8, count - bytes.count) { bytes.append(UInt8(truncatingIfNeeded: word)); word >>= 8 }
    }
    return Hex.encode(bytes)
}
