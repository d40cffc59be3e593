import ConnectionTypes
import Foundation
import Rendezvous
import Ring
import Testing
import WireProtocol
@testable import RendezvousCore

private let secret = [UInt8](repeating: 7, count: 32)

private func makeMembership(_ edit: (inout MembershipConfiguration) -> Void = { _ in }) -> Membership {
    var config = MembershipConfiguration()
    config.seed = 1
    edit(&config)
    return Membership(configuration: config, credentials: TokenAuthority(secret: secret))
}

extension Membership {
    /// A text frame at wall-clock time 0 (these tests do not look at `connectedAt`).
    mutating func received(_ connection: ConnectionID, text: [UInt8], now: Double) -> [Action] {
        received(connection, text: text, now: now, wallClock: 0)
    }
}

private func frame(_ text: String) -> [UInt8] { Array(text.utf8) }

private func sent(_ actions: [Action], to c: ConnectionID) -> [ServerMessage] {
    actions.compactMap { if case .send(c, let m) = $0 { return m } else { return nil } }
}

private func registeredID(_ actions: [Action], _ c: ConnectionID) -> (PeerID, String)? {
    for m in sent(actions, to: c) { if case .registered(let id, let token, _) = m { return (id, token) } }
    return nil
}

@Suite struct MembershipTests {
    @Test func registerWelcomesWithWholeState() throws {
        var m = makeMembership()
        m.opened(1, remoteAddress: "a", now: 0)
        let actions = m.received(1, text: frame(#"{"type":"register"}"#), now: 0)
        let messages = sent(actions, to: 1)
        guard case .registered(let id, let token, let config) = messages.first else { Issue.record("no registered"); return }
        #expect(TokenAuthority(secret: secret).verify(token, for: id))
        #expect(messages.count == 3 + config.fingerRows.count)
        #expect(actions.contains(.publish(.join(id))))
    }

    @Test func replacementKeepsTheRingAndClosesTheOldSession() throws {
        var m = makeMembership()
        m.opened(1, remoteAddress: "a", now: 0)
        let (id, token) = registeredID(m.received(1, text: frame(#"{"type":"register"}"#), now: 0), 1)!
        m.opened(2, remoteAddress: "b", now: 0)
        let actions = m.received(2, text: frame(#"{"type":"register","peerId":"\#(id.hex)","token":"\#(token)"}"#), now: 0)
        #expect(sent(actions, to: 1) == [.error(.replaced, "peer \(id.hex) registered on another connection")])
        #expect(actions.contains(.close(1, status: 4000, reason: "replaced")))
        #expect(registeredID(actions, 2)?.0 == id)
        #expect(m.closed(1).isEmpty)            // the old socket's close is not a leave
        #expect(m.ring.members == [id] && m.counters.leaves == 0)
        #expect(m.received(1, text: frame(#"{"type":"leave"}"#), now: 0).isEmpty)
    }

    @Test func closingARegisteredSessionIsALeave() throws {
        var m = makeMembership()
        for c: ConnectionID in 1...3 {
            m.opened(c, remoteAddress: "x", now: 0)
            _ = m.received(c, text: frame(#"{"type":"register"}"#), now: 0)
        }
        let actions = m.closed(2)
        #expect(m.ring.count == 2 && m.counters.leaves == 1)
        #expect(actions.contains { if case .publish(.leave(_, .closed)) = $0 { return true } else { return false } })
        #expect(!sent(actions, to: 1).isEmpty && !sent(actions, to: 3).isEmpty)
    }

    @Test func rateLimitDropsAndNotifiesOncePerSecond() throws {
        var m = makeMembership { $0.rateLimitPerSecond = 1; $0.rateLimitBurst = 2; $0.abusiveAfterDropped = 5 }
        m.opened(1, remoteAddress: "a", now: 0)
        let report = frame(#"{"type":"report","stats":{"x":1}}"#)
        #expect(sent(m.received(1, text: report, now: 0), to: 1).first?.isError(.notRegistered) == true)
        _ = m.received(1, text: report, now: 0)
        #expect(sent(m.received(1, text: report, now: 0), to: 1).first?.isError(.rateLimited) == true)
        #expect(m.received(1, text: report, now: 0.1).isEmpty)   // dropped silently within the second
        #expect(m.received(1, text: report, now: 0.2).isEmpty)
        #expect(m.received(1, text: report, now: 0.3).isEmpty)
        let abusive = m.received(1, text: report, now: 0.4)   // the fifth drop in a row
        #expect(abusive.contains(.close(1, status: 1008, reason: "rate limit")))
        #expect(m.counters.rateLimitedMessages == 5)
        #expect(m.counters.errors[.rateLimited] == 2)   // the notice at 0 and the closing error
    }

    @Test func aSteadyFloodIsClosedAlthoughDropsAreNeverManyInARow() throws {
        // 10 messages/s allowed; closed when 10 are dropped within 2 s (half of the 20 allowed).
        var m = makeMembership { $0.rateLimitPerSecond = 10; $0.rateLimitBurst = 1; $0.abusiveWindowSeconds = 2; $0.abusiveFraction = 0.5 }
        m.opened(1, remoteAddress: "a", now: 0)
        let report = frame(#"{"type":"report","stats":{"x":1}}"#)
        var closedAt: Double?
        for i in 0..<200 where closedAt == nil {   // 20 messages/s: every other one is dropped
            let now = Double(i) * 0.05
            if m.received(1, text: report, now: now).contains(.close(1, status: 1008, reason: "rate limit")) { closedAt = now }
        }
        #expect(closedAt != nil && closedAt! < 1.1)
        #expect(m.counters.abusiveDisconnectsByRule == [.sustainedRate: 1])
        #expect(m.counters.rateLimitedMessages == 10)
    }

    @Test func controlFramesTakeFromTheBudget() throws {
        var m = makeMembership { $0.rateLimitPerSecond = 10; $0.rateLimitBurst = 20 }
        m.opened(1, remoteAddress: "a", now: 0)
        #expect(m.controlFrames(1, count: 15, now: 0).isEmpty)             // within the burst
        let over = m.controlFrames(1, count: 10, now: 0)                    // 5 left: 5 dropped
        #expect(sent(over, to: 1).first?.isError(.rateLimited) == true)
        #expect(m.counters.controlFrames == 25 && m.counters.rateLimitedMessages == 5)
        let flood = m.controlFrames(1, count: 5000, now: 1)                 // 10 refilled, 4990 dropped
        #expect(flood.contains(.close(1, status: 1008, reason: "rate limit")))
        #expect(m.counters.abusiveDisconnectsByRule == [.droppedInARow: 1])
        #expect(m.controlFrames(1, count: 5000, now: 2).isEmpty)           // closing: no second close
    }

    @Test func leaveReasonsFollowTheCloseCause() throws {
        var m = makeMembership()
        for (c, cause) in zip(1...4, [CloseCause.closed, .idleTimeout, .slowConsumer, .closedByServer]) {
            m.opened(ConnectionID(c), remoteAddress: "x", now: 0)
            _ = m.received(ConnectionID(c), text: frame(#"{"type":"register"}"#), now: 0)
            let actions = m.closed(ConnectionID(c), cause: cause)
            #expect(actions.contains { if case .publish(.leave(_, LeaveReason(cause))) = $0 { return true } else { return false } })
        }
        #expect(m.counters.leavesByReason == [.closed: 1, .idleTimeout: 1, .slowConsumer: 1, .closedByServer: 1])
    }

    @Test func stateMachineTransitions() {
        var s = SessionStateMachine()
        #expect(s.acceptsMessages && s.peer == nil)
        s.registered(as: PeerID(1))
        #expect(s.peer == PeerID(1))
        #expect(s.left() == PeerID(1) && s.state == .connected)
        s.registered(as: PeerID(2))
        s.evicted()
        #expect(!s.acceptsMessages && s.closed() == nil)
    }

    @Test func tokenBucketRefills() {
        var b = TokenBucket(rate: 10, burst: 2, now: 0)
        #expect(b.take(now: 0) && b.take(now: 0) && !b.take(now: 0))
        #expect(b.take(now: 0.1) && !b.take(now: 0.1))
        #expect(b.take(now: 100) && b.take(now: 100) && !b.take(now: 100))   // capped at the burst
        #expect(b.take(5, now: 100.25) == 2 && b.take(5, now: 100.25) == 0)  // 2.5 tokens: 2 whole ones
    }
}

extension ServerMessage {
    func isError(_ code: ErrorCode) -> Bool {
        if case .error(code, _) = self { return true }
        return false
    }
}
