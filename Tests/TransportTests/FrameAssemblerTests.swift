import Testing
@testable import Transport

/// What libwebsockets reports on a WebSocket, in order: pieces of data frames (RECEIVE), and control
/// frames, which come apart (RECEIVE_PONG) or not at all (a PING lws answers itself).
private enum Event {
    case data(String, final: Bool = true, binary: Bool = false, remaining: Int = 0)
    case ping
    case pong
}

/// Feeds the events as `transportCallback` routes them: data frames to the assembler, control frames
/// elsewhere (lws answers pings itself; a pong goes to `pongReceived`). Returns every outcome other than
/// `.incomplete`.
private func feed(_ assembler: inout FrameAssembler, _ events: [Event]) -> [FrameAssembler.Outcome] {
    var outcomes: [FrameAssembler.Outcome] = []
    for event in events {
        guard case .data(let text, let final, let binary, let remaining) = event else { continue }
        let outcome = assembler.append(Array(text.utf8), isFinal: final, isBinary: binary, remaining: remaining)
        if outcome != .incomplete { outcomes.append(outcome) }
    }
    return outcomes
}

private func text(_ s: String) -> FrameAssembler.Outcome { .message(Array(s.utf8)) }

@Suite struct FrameAssemblerTests {
    @Test func aSingleFrameIsAMessage() {
        var a = FrameAssembler(maxMessageBytes: 64)
        #expect(a.isIdle)
        #expect(a.append(Array("hello".utf8), isFinal: true, isBinary: false, remaining: 0) == text("hello"))
        #expect(a.isIdle)
        #expect(a.buffered == 0)
    }

    @Test func anEmptyMessageIsAMessage() {
        var a = FrameAssembler(maxMessageBytes: 64)
        #expect(a.append([UInt8](), isFinal: true, isBinary: false, remaining: 0) == .message([]))
    }

    @Test func aFrameDeliveredInPiecesEndsWhenNothingRemains() {
        // lws reports the FIN bit with every piece of the final frame; the message ends with the last piece.
        var a = FrameAssembler(maxMessageBytes: 64)
        #expect(a.append(Array("abc".utf8), isFinal: true, isBinary: false, remaining: 4) == .incomplete)
        #expect(!a.isIdle)
        #expect(a.append(Array("de".utf8), isFinal: true, isBinary: false, remaining: 2) == .incomplete)
        #expect(a.append(Array("fg".utf8), isFinal: true, isBinary: false, remaining: 0) == text("abcdefg"))
        #expect(a.isIdle)
    }

    @Test func manyFragmentsMakeOneMessage() {
        var a = FrameAssembler(maxMessageBytes: 1024)
        let parts = (0..<50).map { "part\($0)," }
        var events = parts.dropLast().map { Event.data($0, final: false) }
        events.append(.data(parts.last!, final: true))
        #expect(feed(&a, events) == [text(parts.joined())])
        #expect(a.isIdle)
    }

    @Test func aMessageExactlyAtTheLimitIsAccepted() {
        var a = FrameAssembler(maxMessageBytes: 16)
        let outcomes = feed(&a, [.data("01234567", final: false), .data("89abcdef", final: true)])
        #expect(outcomes == [text("0123456789abcdef")])
    }

    @Test func oneByteOverTheLimitIsRefusedWithItsTotal() {
        var a = FrameAssembler(maxMessageBytes: 16)
        #expect(a.append(Array("01234567".utf8), isFinal: false, isBinary: false, remaining: 0) == .incomplete)
        #expect(a.append(Array("89abcdef".utf8), isFinal: false, isBinary: false, remaining: 0) == .incomplete)
        #expect(a.buffered == 16)
        #expect(a.append(Array("g".utf8), isFinal: true, isBinary: false, remaining: 0) == .refused(.tooLarge(bytes: 17)))
        #expect(a.isIdle)
        #expect(a.buffered == 0)
    }

    @Test func aLargeMessageIsNeverBufferedBeyondTheLimit() {
        var a = FrameAssembler(maxMessageBytes: 100)
        let piece = [UInt8](repeating: UInt8(ascii: "x"), count: 30)
        for n in 1...99 {
            #expect(a.append(piece, isFinal: false, isBinary: false, remaining: 0) == .incomplete)
            #expect(a.buffered <= 100)
            #expect(a.buffered == min(n, 3) * 30)
        }
        #expect(a.append(piece, isFinal: true, isBinary: false, remaining: 0) == .refused(.tooLarge(bytes: 3000)))
    }

    @Test func aSingleFrameOverTheLimitIsRefusedWithItsTotal() {
        var a = FrameAssembler(maxMessageBytes: 4)
        #expect(a.append(Array("12345".utf8), isFinal: true, isBinary: false, remaining: 0) == .refused(.tooLarge(bytes: 5)))
    }

    @Test func binaryMessagesAreRefusedAndNotKept() {
        var a = FrameAssembler(maxMessageBytes: 64)
        #expect(a.append([1, 2, 3], isFinal: true, isBinary: true, remaining: 0) == .refused(.binary))
        // Fragmented: the type is the first fragment's (continuations may read otherwise).
        #expect(a.append([1, 2], isFinal: false, isBinary: true, remaining: 0) == .incomplete)
        #expect(a.buffered == 0)
        #expect(a.append([3, 4], isFinal: true, isBinary: false, remaining: 0) == .refused(.binary))
    }

    @Test func aBinaryMessageOverTheLimitIsRefusedAsBinary() {
        var a = FrameAssembler(maxMessageBytes: 4)
        #expect(a.append([UInt8](repeating: 0, count: 10), isFinal: true, isBinary: true, remaining: 0) == .refused(.binary))
    }

    @Test func aTextMessageKeepsItsTypeAcrossContinuations() {
        var a = FrameAssembler(maxMessageBytes: 64)
        #expect(feed(&a, [.data("ab", final: false), .data("cd", final: true, binary: true)]) == [text("abcd")])
    }

    @Test func controlFramesBetweenFragmentsDoNotDisturbTheMessage() {
        // The state in the middle of a message is that of the data alone, control frames or not.
        var plain = FrameAssembler(maxMessageBytes: 64), mixed = plain
        _ = feed(&plain, [.data("one ", final: false), .data("tw", final: false, remaining: 2)])
        _ = feed(&mixed, [.ping, .data("one ", final: false), .pong, .ping, .data("tw", final: false, remaining: 2), .pong])
        #expect(mixed == plain)
        #expect(!mixed.isIdle)

        var a = FrameAssembler(maxMessageBytes: 64)
        let outcomes = feed(&a, [
            .data("one ", final: false), .ping, .pong,
            .data("two ", final: false, remaining: 3), .pong,
            .data("ab", final: false, remaining: 1), .data("c", final: false),
            .ping, .data("three", final: true),
            .pong, .data("next", final: true),
        ])
        #expect(outcomes == [text("one two abcthree"), text("next")])
        #expect(a.isIdle)
    }

    @Test func aMessageAfterARefusedOneStartsClean() {
        var a = FrameAssembler(maxMessageBytes: 8)
        let outcomes = feed(&a, [
            .data("0123456", final: false), .data("789", final: true),   // 10 bytes: too large
            .data("fresh", final: true),
            .data("\u{1}\u{2}", final: true, binary: true),           // binary
            .data("te", final: false), .data("xt", final: true),
            .data("12345678", final: true),                            // exactly at the limit
        ])
        #expect(outcomes == [.refused(.tooLarge(bytes: 10)), text("fresh"), .refused(.binary), text("text"), text("12345678")])
        #expect(a.isIdle)
        #expect(a.buffered == 0)
    }
}
