/// Link frames of overlay messages (docs/protocol.md, "Links between peers"): pure functions. Routing itself is
/// `PeerSession.nextHop` over Ring's `route` and `routeNoN`.

/// The largest link frame for a message on a link, in bytes. Relayed frames must fit the server's
/// message limit inside a `link` message (escaping may double them); direct ones go whole up to
/// `partBytes`.
public func linkFrameLimit(relayed: Bool, serverMaxMessageBytes: Int, partBytes: Int) -> Int {
    relayed ? max(1024, serverMaxMessageBytes / 2 - 256) : partBytes
}

/// The link frames of one overlay message (its JSON text): one `M` frame when `text.count + 1 <= limit`,
/// otherwise `C` parts named `chunkId` of at most `limit - 64` bytes of text each, as the browsers do.
/// Parts end on UTF-8 character boundaries.
public func linkFrames(_ text: [UInt8], limit: Int, chunkId: String) -> [[UInt8]] {
    guard text.count + 1 > limit else { return [LinkFrame.message(text).encoded()] }
    return chunkFrames(text, limit: limit, chunkId: chunkId)
}

/// The link frames of a frame that stands on its own (a signed `S` frame, docs/protocol.md, "Signed overlay messages"): the
/// frame itself when it fits `limit`, otherwise `C` parts of the whole frame, its letter included, so
/// that the reassembled text is the frame again (a text starting with `S`; an `M` message's parts never
/// do, since its text is a JSON object).
public func linkFrames(whole frame: [UInt8], limit: Int, chunkId: String) -> [[UInt8]] {
    guard frame.count > limit else { return [frame] }
    return chunkFrames(frame, limit: limit, chunkId: chunkId)
}

/// `C` parts named `chunkId` of at most `limit - 64` bytes of `text` each, ending on UTF-8 character
/// boundaries.
func chunkFrames(_ text: [UInt8], limit: Int, chunkId: String) -> [[UInt8]] {
    var parts: [ArraySlice<UInt8>] = []
    var start = 0
    while start < text.count {
        var end = min(text.count, start + limit - 64)
        while end < text.count && end > start + 1 && (text[end] & 0xC0) == 0x80 { end -= 1 }
        parts.append(text[start..<end])
        start = end
    }
    return parts.enumerated().map { i, part in LinkFrame.chunk(id: chunkId, index: i, count: parts.count, part: Array(part)).encoded() }
}
