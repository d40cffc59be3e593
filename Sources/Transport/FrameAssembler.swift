/// Reassembles WebSocket messages (RFC 6455 §5.4) from the payload pieces libwebsockets reports, and
/// enforces the largest message size (lws has none built in). Pure: no lws, no clock.
///
/// lws hands a data frame's payload over in one or more pieces, each with the frame's FIN bit
/// (`lws_is_final_fragment`), what is left of the frame's payload (`lws_remaining_packet_payload`) and
/// the message's type (`lws_frame_is_binary`). A message is complete when a piece is final and nothing
/// remains. Control frames (ping, pong, close) may come between the fragments of a message; lws reports
/// them apart (or not at all), so they never reach the assembler.
///
/// A message's type is the one reported with its first piece. Binary messages are refused (their bytes
/// are not kept); a text message larger than `maxMessageBytes` is refused with its total size, and
/// bytes are kept only while the message is within the limit, so a message never buffers beyond it.
struct FrameAssembler: Equatable, Sendable {
    /// What a piece of payload completed.
    enum Outcome: Equatable, Sendable {
        /// The message goes on.
        case incomplete
        /// A complete text message.
        case message([UInt8])
        /// A complete message that is refused; nothing of it is kept.
        case refused(FrameProblem)
    }

    /// The largest text message accepted, in bytes.
    let maxMessageBytes: Int
    /// The message so far (empty for a binary one, at most `maxMessageBytes`).
    private var buffer: [UInt8] = []
    /// Payload bytes of the message so far, kept or not.
    private var total = 0
    private var binary = false
    /// No piece of the current message has come yet.
    private var fresh = true

    init(maxMessageBytes: Int) { self.maxMessageBytes = maxMessageBytes }

    /// Whether no message is under way.
    var isIdle: Bool { fresh }

    /// Bytes kept of the message under way.
    var buffered: Int { buffer.count }

    /// Takes the next piece of payload with the flags lws reports with it: `isFinal` (the frame's FIN
    /// bit), `isBinary` (the message's type; read at a message's first piece only) and `remaining` (the
    /// bytes of this frame lws has yet to deliver).
    mutating func append(_ bytes: some Collection<UInt8>, isFinal: Bool, isBinary: Bool, remaining: Int) -> Outcome {
        if fresh {
            fresh = false
            binary = isBinary
        }
        total += bytes.count
        if !binary && total <= maxMessageBytes && !bytes.isEmpty {
            buffer.append(contentsOf: bytes)
        }
        guard isFinal && remaining == 0 else { return .incomplete }
        let message = buffer, size = total, wasBinary = binary
        buffer = []
        total = 0
        fresh = true
        if wasBinary { return .refused(.binary) }
        if size > maxMessageBytes { return .refused(.tooLarge(bytes: size)) }
        return .message(message)
    }
}
