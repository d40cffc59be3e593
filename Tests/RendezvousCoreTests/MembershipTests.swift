import ConnectionTypes
import Foundation
import Hex
import Rendezvous
import Ring
import Signatures
import Testing
import WireProtocol
@testable import RendezvousCore

/// The server key of these tests (seed 07 07 … 07).
let testServer = ServerIdentity(key: try! Ed25519.PrivateKey(seed: [UInt8](repeating: 7, count: 32)))

private func makeMembership(_ edit: (inout MembershipConfiguration) -> Void = { _ in }) -> Membership {
    var config = MembershipConfiguration()
    config.seed = 1
    edit(&config)
    return Membership(configuration: config, credentials: testServer)
}

/// A client key: the 32-byte seed `n n … n`.
func clientKey(_ n: UInt8) -> Ed25519.PrivateKey { try! Ed25519.PrivateKey(seed: [UInt8](repeating: n, count: 32)) }

/// The challenge nonce of connection `c` in these tests (fixed, so that a test is repeatable).
func testNonce(_ c: ConnectionID) -> String { Hex.encode(c, digits: 16) + String(repeating: "ab", count: 24) }

/// A `register` frame signed with `key` for connection `c`'s challenge (and `peerId` when returning).
func signedRegister(_ key: Ed25519.PrivateKey, _ c: ConnectionID, peerId: PeerID? = nil, serverKey: String = testServer.serverKey,
                    nonce: String? = nil, capabilities: [String: JSONValue]? = nil) -> [UInt8] {
    let publicKey = Hex.encode(key.publicKey.bytes)
    let text = Identity.registrationText(serverKey: serverKey, nonce: nonce ?? testNonce(c), peerId: peerId, publicKey: publicKey)
    return ClientMessage.register(peerId: peerId, publicKey: publicKey, signature: Hex.encode(key.signature(for: text)),
                                  capabilities: capabilities).encoded()
}

extension Membership {
    /// A text frame at wall-clock time 0 (these tests do not look at `connectedAt`).
    mutating func received(_ connection: ConnectionID, text: [UInt8], now: Double) -> [Action] {
        received(connection, text: text, now: now, wallClock: 0)
    }

    /// Opens connection `c` with its test nonce.
    @discardableResult
    mutating func opened(_ c: ConnectionID, remoteAddress: String, now: Double) -> [Action] {
        opened(c, remoteAddress: remoteAddress, nonce: testNonce(c), now: now)
    }

    /// A fresh registration on connection `c` with the client key `c` (one key per connection).
    mutating func registerFresh(_ c: ConnectionID, now: Double) -> [Action] {
        received(c, text: signedRegister(clientKey(UInt8(truncatingIfNeeded: c)), c), now: now)
    }
}

private func frame(_ text: String) -> [UInt8] { Array(text.utf8) }

private func sent(_ actions: [Action], to c: ConnectionID) -> [ServerMessage] {
    actions.compactMap { if case .send(c, let m) = $0 { return m } else { return nil } }
}

/// What a client holds after `registered`: its ID, epoch and certificate, and the key it registered with.
private struct Held {
    var id: PeerID
    var epoch: UInt64
    var certificate: String
    var key: Ed25519.PrivateKey
}

private func registeredID(_ actions: [Action], _ c: ConnectionID, key: Ed25519.PrivateKey) -> Held? {
    for m in sent(actions, to: c) {
        if case .registered(let id, let epoch, let certificate, _) = m { return Held(id: id, epoch: epoch, certificate: certificate, key: key) }
    }
    return nil
}

/// Opens `c` and registers it: fresh with the key `key` (default: the client key `c`), or as `held`
/// (its ID, signed with its key).
private func register(_ m: inout Membership, _ c: ConnectionID, now: Double, as held: Held? = nil,
                      key: Ed25519.PrivateKey? = nil) -> [Action] {
    _ = m.handle(.opened(c, remoteAddress: "x", nonce: testNonce(c), now: now))
    let k = key ?? held?.key ?? clientKey(UInt8(truncatingIfNeeded: c))
    return m.handle(.received(c, text: signedRegister(k, c, peerId: held?.id), now: now, wallClock: 0))
}

/// `register` and the `Held` it got (nil on an error).
private func registered(_ m: inout Membership, _ c: ConnectionID, now: Double, as held: Held? = nil,
                        key: Ed25519.PrivateKey? = nil) -> Held? {
    let k = key ?? held?.key ?? clientKey(UInt8(truncatingIfNeeded: c))
    return registeredID(register(&m, c, now: now, as: held, key: k), c, key: k)
}

private func errorCode(_ actions: [Action], _ c: ConnectionID) -> ErrorCode? {
    for m in sent(actions, to: c) { if case .error(let code, _) = m { return code } }
    return nil
}

/// Leases, holder epochs and keys (docs/protocol.md, "Key-pair identity"): the steps of the defect of
/// issue 12 on the pure core.
@Suite struct LeaseTests {
    @Test func aLeasedIdGoesToNoNewcomerAndBackToItsHolder() throws {
        var m = makeMembership { $0.idLeaseSeconds = 30 }
        for c: ConnectionID in 1...3 { _ = register(&m, c, now: 0) }
        let b = try #require(registered(&m, 4, now: 0))
        _ = m.handle(.closed(4, cause: .closed, now: 1))
        #expect(m.leasesHeld == 1 && !m.ring.contains(b.id) && m.ring.reserved == [b.id])
        // Newcomers during the lease never get B's ID.
        for c: ConnectionID in 10..<40 {
            let n = try #require(registered(&m, c, now: 2))
            #expect(n.id != b.id)
        }
        // A signal to the leased ID is answered unknown-peer.
        let signal = m.received(10, text: frame(#"{"type":"signal","to":"\#(b.id.hex)","intentId":"i","signal":{}}"#), now: 3)
        #expect(errorCode(signal, 10) == .unknownPeer)
        // B comes back within the lease with its key: same ID, epoch and certificate.
        let back = try #require(registered(&m, 5, now: 30, as: b))
        #expect(back.id == b.id && back.epoch == b.epoch && back.certificate == b.certificate)
        #expect(m.leasesHeld == 0 && m.counters.leasesClaimed == 1 && m.counters.replacements == 0)
    }

    @Test func afterTheLeaseTheIdIsFreeAndTheOldKeyExpired() throws {
        var m = makeMembership { $0.idLeaseSeconds = 10 }
        let b = try #require(registered(&m, 1, now: 0))
        _ = m.handle(.closed(1, cause: .closed, now: 1))
        // The lease ends at 11: the first newcomer after it may get any ID (here the ring is empty) with a
        // new epoch and its own key.
        let n = try #require(registered(&m, 2, now: 11.5))
        #expect(m.counters.leasesExpired == 1)
        #expect(n.epoch != b.epoch && n.certificate != b.certificate)
        let stale = register(&m, 3, now: 12, as: b)
        #expect(errorCode(stale, 3) == .idExpired)
        #expect(m.counters.errors[.idExpired] == 1 && m.counters.replacements == 0)
        #expect(m.peers[n.id]?.connection == 2)
    }

    @Test func aReissuedIdNeverWorksForTheOldKey() throws {
        // Lease 0: the ID is free at once; the newcomer gets it (the only arc) but with a new epoch.
        var m = makeMembership { $0.idLeaseSeconds = 0 }
        for c: ConnectionID in 1...2 { _ = register(&m, c, now: 0) }
        let b = try #require(registered(&m, 3, now: 0))
        _ = m.handle(.closed(3, cause: .closed, now: 1))
        let n = try #require(registered(&m, 4, now: 1))
        #expect(n.id == b.id && n.epoch != b.epoch)
        // B's key never replaces the newcomer: no ping-pong.
        #expect(errorCode(register(&m, 5, now: 2, as: b), 5) == .idExpired)
        #expect(m.peers[b.id]?.connection == 4 && m.counters.replacements == 0)
        // The newcomer's own key replaces its half-open session (the same holder after a blip).
        let blip = try #require(registered(&m, 6, now: 3, as: n))
        #expect(blip.id == n.id && m.counters.replacements == 1)
    }

    @Test func ringUpdatesCarryTheHolderEpochOfEveryPeerTheyName() throws {
        // Lease 0: B's ID goes to the newcomer N at once, with a higher epoch; the peers whose ring state
        // names the ID learn N's epoch from their updates (so they refuse B's old certificate).
        var m = makeMembership { $0.idLeaseSeconds = 0 }
        for c: ConnectionID in 1...2 { _ = register(&m, c, now: 0) }
        let b = try #require(registered(&m, 3, now: 0))
        _ = m.handle(.closed(3, cause: .closed, now: 1))
        let joined = register(&m, 4, now: 1)
        let n = try #require(registeredID(joined, 4, key: clientKey(4)))
        #expect(n.id == b.id && n.epoch > b.epoch)
        var named = 0
        for c: ConnectionID in [1, 2, 4] {
            for message in sent(joined, to: c) {
                switch message {
                case .predecessor(let p?, let e), .fingerUpdate(_, _, let p?, let e):
                    #expect(e == m.bindings[p]?.epoch)
                    if p == n.id, c != 4 { named += 1 }
                case .successors(let list, let epochs):
                    #expect(epochs == list.map { m.bindings[$0]!.epoch })
                    if list.contains(n.id), c != 4 { named += 1 }
                case .predecessor(nil, let e), .fingerUpdate(_, _, nil, let e):
                    #expect(e == nil)
                default: break
                }
            }
        }
        #expect(named > 0)
        // On the wire: the epoch as 16 hex, which a peer decodes back.
        let update = try #require(sent(joined, to: 1).first { !$0.peerEpochs.isEmpty })
        #expect(try ServerMessage.decode(update.encoded()) == update)
        #expect(update.peerEpochs.allSatisfy { m.bindings[$0.peer]?.epoch == $0.epoch })
    }

    @Test func aWrongKeyClaimingAnIdIsIdExpired() throws {
        var m = makeMembership { $0.idLeaseSeconds = 60 }
        let b = try #require(registered(&m, 1, now: 0))
        _ = m.handle(.closed(1, cause: .closed, now: 1))
        // A valid signature by another key, asking for B's leased ID.
        var thief = b
        thief.key = clientKey(200)
        #expect(errorCode(register(&m, 2, now: 2, as: thief), 2) == .idExpired)
        #expect(m.leasesHeld == 1 && m.counters.badSignatures == 0)
        #expect(try #require(registered(&m, 3, now: 3, as: b)).id == b.id)
    }

    @Test func badSignaturesAreRefusedAndCounted() throws {
        var m = makeMembership()
        let b = try #require(registered(&m, 1, now: 0))
        m.opened(2, remoteAddress: "x", now: 1)
        // Replayed from another connection (another nonce), for another ID, for another server key,
        // with altered bytes.
        let other = PeerID(b.id.rawValue + 1)
        let frames = [
            signedRegister(b.key, 2, peerId: b.id, nonce: testNonce(1)),
            signedRegister(b.key, 2, peerId: other).replacing(Array(other.hex.utf8), with: Array(b.id.hex.utf8)),
            signedRegister(b.key, 2, peerId: b.id, serverKey: String(repeating: "0", count: 64)),
        ]
        for f in frames { #expect(errorCode(m.received(2, text: f, now: 1), 2) == .badSignature) }
        #expect(m.counters.badSignatures == 3 && m.peers[b.id]?.connection == 1 && m.counters.replacements == 0)
        // The same connection may still register with a right signature (one nonce per connection).
        #expect(registeredID(m.received(2, text: signedRegister(b.key, 2, peerId: b.id), now: 1), 2, key: b.key)?.id == b.id)
    }

    @Test func aKeyHoldsAtMostOneId() throws {
        var m = makeMembership { $0.idLeaseSeconds = 60 }
        let b = try #require(registered(&m, 1, now: 0))
        // A fresh register with B's key: B's ID (a replacement of its live session), never a second ID.
        let again = try #require(registered(&m, 2, now: 1, key: b.key))
        #expect(again.id == b.id && m.ring.count == 1 && m.counters.replacements == 1)
        _ = m.handle(.closed(2, cause: .closed, now: 2))
        let back = try #require(registered(&m, 3, now: 3, key: b.key))
        #expect(back.id == b.id && m.counters.leasesClaimed == 1 && m.holders.count == 1)
    }

    @Test func certificatesAreTheServerKeysSignatureOfTheBinding() throws {
        var m = makeMembership()
        let b = try #require(registered(&m, 1, now: 0))
        let cert = try #require(Identity.Certificate(text: b.certificate))
        #expect(cert.peerId == b.id && cert.epoch == b.epoch && cert.publicKey == Hex.encode(b.key.publicKey.bytes))
        #expect(testServer.isValid(signature: cert.signature, of: cert.signedText(serverKey: testServer.serverKey),
                                   publicKey: testServer.serverKey))
        var forged = cert
        forged.epoch += 1
        #expect(!testServer.isValid(signature: forged.signature, of: forged.signedText(serverKey: testServer.serverKey),
                                    publicKey: testServer.serverKey))
    }

    @Test func anExplicitLeaveEndsTheLeaseAtOnce() throws {
        var m = makeMembership { $0.idLeaseSeconds = 60 }
        let b = try #require(registered(&m, 1, now: 0))
        _ = m.received(1, text: frame(#"{"type":"leave"}"#), now: 1)
        #expect(m.leasesHeld == 0 && m.ring.reserved.isEmpty && m.holders.isEmpty)
        #expect(errorCode(register(&m, 2, now: 2, as: b), 2) == .idExpired)
    }

    @Test func evictionLeasesTheIdToTheEvictedHolder() throws {
        var m = makeMembership { $0.idLeaseSeconds = 60 }
        _ = register(&m, 1, now: 0)
        let b = try #require(registered(&m, 2, now: 0))
        _ = m.handle(.evict(b.id, now: 1))
        _ = m.handle(.closed(2, cause: .closedByServer, now: 1))
        #expect(m.leasesHeld == 1)
        #expect(try #require(registered(&m, 3, now: 5, as: b)).id == b.id)
    }

    @Test func restoredBindingsAreLeasesForTheirHolders() throws {
        var first = makeMembership { $0.idLeaseSeconds = 30 }
        let a = try #require(registered(&first, 1, now: 0))
        let b = try #require(registered(&first, 2, now: 0))
        _ = first.handle(.closed(2, cause: .closed, now: 10))
        let saved = first.snapshot(now: 20)
        #expect(Set(saved.map(\.peer)) == [a.id, b.id])
        #expect(saved.first { $0.peer == b.id }?.remaining == 20)
        #expect(saved.first { $0.peer == a.id }?.remaining == 30)
        #expect(saved.first { $0.peer == a.id }?.publicKey == Hex.encode(a.key.publicKey.bytes))

        var second = makeMembership { $0.idLeaseSeconds = 30; $0.seed = 2 }
        _ = second.handle(.restored(saved, nextEpoch: first.nextEpoch, now: 100))
        #expect(second.leasesHeld == 2 && second.nextEpoch >= first.nextEpoch)
        // A newcomer first: it gets neither ID.
        let n = try #require(registered(&second, 5, now: 101))
        #expect(n.id != a.id && n.id != b.id && n.epoch != a.epoch && n.epoch != b.epoch)
        // The returning holders get theirs back with their keys, with the same certificates.
        #expect(try #require(registered(&second, 6, now: 102, as: a)).certificate == a.certificate)
        #expect(try #require(registered(&second, 7, now: 102, as: b)).id == b.id)
        // B's lease would have ended at 120: replayed expiry is on the events' now.
        _ = second.handle(.closed(7, cause: .closed, now: 103))
        _ = second.handle(.opened(9, remoteAddress: "x", nonce: testNonce(9), now: 133.1))
        #expect(second.counters.leasesExpired == 1 && second.leasesHeld == 0)
    }

    @Test func leasesAreBoundedByMaxPeers() throws {
        var m = makeMembership { $0.idLeaseSeconds = 1000; $0.maxPeers = 5 }
        for c: ConnectionID in 1...20 {
            _ = register(&m, c, now: Double(c))
            _ = m.handle(.closed(c, cause: .closed, now: Double(c)))
        }
        #expect(m.leasesHeld == 5 && m.ring.reserved.count == 5 && m.holders.count == 5)
    }
}

@Suite struct MembershipTests {
    @Test func registerWelcomesWithWholeState() throws {
        var m = makeMembership()
        let challenge = m.opened(1, remoteAddress: "a", now: 0)
        #expect(challenge == [.send(1, .challenge(nonce: testNonce(1), serverKey: testServer.serverKey))])
        let actions = m.registerFresh(1, now: 0)
        let messages = sent(actions, to: 1)
        guard case .registered(let id, let epoch, let certificate, let config) = messages.first else { Issue.record("no registered"); return }
        #expect(epoch == m.bindings[id]?.epoch && Identity.Certificate(text: certificate)?.peerId == id)
        #expect(config.serverKey == testServer.serverKey)
        #expect(messages.count == 3 + config.fingerRows.count)
        #expect(actions.contains(.publish(.join(id))))
    }

    @Test func replacementKeepsTheRingAndClosesTheOldSession() throws {
        var m = makeMembership()
        m.opened(1, remoteAddress: "a", now: 0)
        let id = registeredID(m.registerFresh(1, now: 0), 1, key: clientKey(1))!.id
        m.opened(2, remoteAddress: "b", now: 0)
        let actions = m.received(2, text: signedRegister(clientKey(1), 2, peerId: id), now: 0)
        #expect(sent(actions, to: 1) == [.error(.replaced, "peer \(id.hex) registered on another connection")])
        #expect(actions.contains(.close(1, status: 4000, reason: "replaced")))
        #expect(registeredID(actions, 2, key: clientKey(1))?.id == id)
        #expect(m.closed(1).isEmpty)            // the old socket's close is not a leave
        #expect(m.ring.members == [id] && m.counters.leaves == 0)
        #expect(m.received(1, text: frame(#"{"type":"leave"}"#), now: 0).isEmpty)
    }

    @Test func closingARegisteredSessionIsALeave() throws {
        var m = makeMembership()
        for c: ConnectionID in 1...3 {
            m.opened(c, remoteAddress: "x", now: 0)
            _ = m.registerFresh(c, now: 0)
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
            _ = m.registerFresh(ConnectionID(c), now: 0)
            let actions = m.closed(ConnectionID(c), cause: cause)
            #expect(actions.contains { if case .publish(.leave(_, LeaveReason(cause))) = $0 { return true } else { return false } })
        }
        #expect(m.counters.leavesByReason == [.closed: 1, .idleTimeout: 1, .slowConsumer: 1, .closedByServer: 1])
    }

    @Test func stateMachineTransitions() {
        var s = SessionStateMachine()
        #expect(s.acceptsMessages && s.peer == nil)
        s.joining()
        #expect(s.isJoining && s.acceptsMessages && s.peer == nil)
        s.refused()
        #expect(s.state == .connected)
        s.joining()
        s.registered(as: PeerID(1))
        #expect(s.peer == PeerID(1))
        #expect(s.left() == PeerID(1) && s.state == .connected)
        s.joining()
        #expect(s.closed() == nil)   // closed while joining: no ring position to give up
        s = SessionStateMachine()
        s.joining()
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
