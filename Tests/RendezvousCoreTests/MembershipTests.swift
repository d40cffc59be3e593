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

private func register(_ m: inout Membership, _ c: ConnectionID, now: Double, as held: (PeerID, String)? = nil) -> [Action] {
    _ = m.handle(.opened(c, remoteAddress: "x", now: now))
    let text = held.map { #"{"type":"register","peerId":"\#($0.0.hex)","token":"\#($0.1)"}"# } ?? #"{"type":"register"}"#
    return m.handle(.received(c, text: frame(text), now: now, wallClock: 0))
}

private func errorCode(_ actions: [Action], _ c: ConnectionID) -> ErrorCode? {
    for m in sent(actions, to: c) { if case .error(let code, _) = m { return code } }
    return nil
}

/// Leases and holder epochs (docs/protocol.md, "Tokens, epochs and leases"): the steps of the defect of
/// issue 12 on the pure core.
@Suite struct LeaseTests {
    @Test func aLeasedIdGoesToNoNewcomerAndBackToItsHolder() throws {
        var m = makeMembership { $0.idLeaseSeconds = 30 }
        for c: ConnectionID in 1...3 { _ = register(&m, c, now: 0) }
        let b = try #require(registeredID(register(&m, 4, now: 0), 4))
        _ = m.handle(.closed(4, cause: .closed, now: 1))
        #expect(m.leasesHeld == 1 && !m.ring.contains(b.0) && m.ring.reserved == [b.0])
        // Newcomers during the lease never get B's ID.
        for c: ConnectionID in 10..<40 {
            let (id, _) = try #require(registeredID(register(&m, c, now: 2), c))
            #expect(id != b.0)
        }
        // A signal to the leased ID is answered unknown-peer.
        let signal = m.received(10, text: frame(#"{"type":"signal","to":"\#(b.0.hex)","intentId":"i","signal":{}}"#), now: 3)
        #expect(errorCode(signal, 10) == .unknownPeer)
        // B comes back within the lease: same ID, same token.
        let back = register(&m, 5, now: 30, as: b)
        #expect(registeredID(back, 5)?.0 == b.0 && registeredID(back, 5)?.1 == b.1)
        #expect(m.leasesHeld == 0 && m.counters.leasesClaimed == 1 && m.counters.replacements == 0)
    }

    @Test func afterTheLeaseTheIdIsFreeAndTheOldTokenExpired() throws {
        var m = makeMembership { $0.idLeaseSeconds = 10 }
        let b = try #require(registeredID(register(&m, 1, now: 0), 1))
        _ = m.handle(.closed(1, cause: .closed, now: 1))
        // The lease ends at 11: the first newcomer after it may get any ID (here the ring is empty), and
        // never B's token.
        let n = try #require(registeredID(register(&m, 2, now: 11.5), 2))
        #expect(m.counters.leasesExpired == 1)
        #expect(n.1 != b.1)
        let stale = register(&m, 3, now: 12, as: b)
        #expect(errorCode(stale, 3) == .idExpired)
        #expect(m.counters.errors[.idExpired] == 1 && m.counters.replacements == 0)
        #expect(m.peers[n.0]?.connection == 2)
    }

    @Test func aReissuedIdNeverCarriesTheOldToken() throws {
        // Lease 0: the ID is free at once; the newcomer gets it (the only arc) but with a new epoch.
        var m = makeMembership { $0.idLeaseSeconds = 0 }
        for c: ConnectionID in 1...2 { _ = register(&m, c, now: 0) }
        let b = try #require(registeredID(register(&m, 3, now: 0), 3))
        _ = m.handle(.closed(3, cause: .closed, now: 1))
        let n = try #require(registeredID(register(&m, 4, now: 1), 4))
        #expect(n.0 == b.0 && n.1 != b.1)
        // B's stale token never replaces the newcomer: no ping-pong.
        #expect(errorCode(register(&m, 5, now: 2, as: b), 5) == .idExpired)
        #expect(m.peers[b.0]?.connection == 4 && m.counters.replacements == 0)
        // The newcomer's own token replaces its half-open session (the same holder after a blip).
        let blip = register(&m, 6, now: 3, as: n)
        #expect(registeredID(blip, 6)?.0 == n.0 && m.counters.replacements == 1)
    }

    @Test func anExplicitLeaveEndsTheLeaseAtOnce() throws {
        var m = makeMembership { $0.idLeaseSeconds = 60 }
        let b = try #require(registeredID(register(&m, 1, now: 0), 1))
        _ = m.received(1, text: frame(#"{"type":"leave"}"#), now: 1)
        #expect(m.leasesHeld == 0 && m.ring.reserved.isEmpty)
        #expect(errorCode(register(&m, 2, now: 2, as: b), 2) == .idExpired)
    }

    @Test func evictionLeasesTheIdToTheEvictedHolder() throws {
        var m = makeMembership { $0.idLeaseSeconds = 60 }
        _ = register(&m, 1, now: 0)
        let b = try #require(registeredID(register(&m, 2, now: 0), 2))
        _ = m.handle(.evict(b.0, now: 1))
        _ = m.handle(.closed(2, cause: .closedByServer, now: 1))
        #expect(m.leasesHeld == 1)
        #expect(registeredID(register(&m, 3, now: 5, as: b), 3)?.0 == b.0)
    }

    @Test func restoredBindingsAreLeasesForTheirHolders() throws {
        var first = makeMembership { $0.idLeaseSeconds = 30 }
        let a = try #require(registeredID(register(&first, 1, now: 0), 1))
        let b = try #require(registeredID(register(&first, 2, now: 0), 2))
        _ = first.handle(.closed(2, cause: .closed, now: 10))
        let saved = first.snapshot(now: 20)
        #expect(Set(saved.map(\.peer)) == [a.0, b.0])
        #expect(saved.first { $0.peer == b.0 }?.remaining == 20)
        #expect(saved.first { $0.peer == a.0 }?.remaining == 30)

        var second = makeMembership { $0.idLeaseSeconds = 30; $0.seed = 2 }
        _ = second.handle(.restored(saved, nextEpoch: first.nextEpoch, now: 100))
        #expect(second.leasesHeld == 2 && second.nextEpoch >= first.nextEpoch)
        // A newcomer first: it gets neither ID.
        let n = try #require(registeredID(register(&second, 1, now: 101), 1))
        #expect(n.0 != a.0 && n.0 != b.0 && n.1 != a.1 && n.1 != b.1)
        // The returning holders get theirs back with their tokens.
        #expect(registeredID(register(&second, 2, now: 102, as: a), 2)?.0 == a.0)
        #expect(registeredID(register(&second, 3, now: 102, as: b), 3)?.0 == b.0)
        // B's lease would have ended at 120: replayed expiry is on the events' now.
        _ = second.handle(.closed(3, cause: .closed, now: 103))
        _ = second.handle(.opened(9, remoteAddress: "x", now: 133.1))
        #expect(second.counters.leasesExpired == 1 && second.leasesHeld == 0)
    }

    @Test func leasesAreBoundedByMaxPeers() throws {
        var m = makeMembership { $0.idLeaseSeconds = 1000; $0.maxPeers = 5 }
        for c: ConnectionID in 1...20 {
            _ = register(&m, c, now: Double(c))
            _ = m.handle(.closed(c, cause: .closed, now: Double(c)))
        }
        #expect(m.leasesHeld == 5 && m.ring.reserved.count == 5)
    }
}

@Suite struct MembershipTests {
    @Test func registerWelcomesWithWholeState() throws {
        var m = makeMembership()
        m.opened(1, remoteAddress: "a", now: 0)
        let actions = m.received(1, text: frame(#"{"type":"register"}"#), now: 0)
        let messages = sent(actions, to: 1)
        guard case .registered(let id, let token, let config) = messages.first else { Issue.record("no registered"); return }
        #expect(TokenAuthority(secret: secret).epoch(of: token, for: id) == m.bindings[id]?.epoch)
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
