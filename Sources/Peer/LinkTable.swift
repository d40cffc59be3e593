import Ring
import Transport

/// The links of a native peer (docs/protocol.md, "Links"): pure bookkeeping, no I/O, no clock (times
/// are nanoseconds of a monotonic clock, passed in). It knows which WebSocket belongs to which peer,
/// the handshakes in progress (dialled connections waiting for a welcome, accepted ones waiting for a
/// hello, the nonces this peer handed out in "dial me" requests), the "dial me" rounds per peer, and
/// which links are being retired. `reconcile` compares the links with the peers the ring needs and
/// says what to do; `PeerSession` turns that into actions.
public struct LinkTable: Sendable {
    /// One link to a peer.
    public struct Link: Sendable {
        /// The WebSocket, or nil for a link relayed through the rendezvous server (last resort).
        public var connection: ConnectionID?
        /// Who dialled it (for the tie break when both sides dial at once).
        public var dialer: PeerID
        public var open = true
        /// Set when this side or the other asked to retire it (nanoseconds).
        public var retiringSince: UInt64?
        /// The other side answered a retire request with "keep".
        public var keptByRemote = false
        var reassembler: Reassembler
    }

    /// A dialled connection waiting to open and for a welcome.
    public struct Dialled: Equatable, Sendable {
        public var peer: PeerID
        public var nonce: String
    }

    /// What `reconcile` decided (each list sorted by peer ID).
    public struct Reconciliation: Equatable, Sendable {
        /// Needed peers without a link after several "dial me" rounds: now linked through the relay.
        public var relayed: [PeerID] = []
        /// Needed peers without a link: send them "dial me" (subject to `dialMeNonce`'s rate).
        public var dialMe: [PeerID] = []
        /// Open links no longer needed: send "retire".
        public var retire: [PeerID] = []
        /// Links being retired that are needed again: send "keep".
        public var keep: [PeerID] = []
    }

    public let maxMessageBytes: Int
    public private(set) var links: [PeerID: Link] = [:]
    /// Dialled connections that are not (yet) a link.
    public private(set) var dialling: [ConnectionID: Dialled] = [:]
    /// Accepted connections waiting for a hello, and when they opened.
    public private(set) var accepted: [ConnectionID: UInt64] = [:]
    var connectionPeer: [ConnectionID: PeerID] = [:]
    var nonces: [String: (peer: PeerID, expires: UInt64)] = [:]
    var lastDialMe: [PeerID: UInt64] = [:]
    /// "Dial me" requests sent since the last link to each peer, and when the first went out.
    var dialAttempts: [PeerID: (count: Int, since: UInt64)] = [:]

    /// `maxMessageBytes`: the largest message a link reassembles from parts.
    public init(maxMessageBytes: Int) { self.maxMessageBytes = maxMessageBytes }

    public func peer(on connection: ConnectionID) -> PeerID? { connectionPeer[connection] }
    public func isDialling(_ peer: PeerID) -> Bool { dialling.values.contains { $0.peer == peer } }
    public func isOpen(_ peer: PeerID) -> Bool { links[peer]?.open == true }

    /// Open links to `needed` peers that are not being retired.
    public func linked(among needed: Set<PeerID>) -> [PeerID] {
        links.filter { $0.value.open && $0.value.retiringSince == nil && needed.contains($0.key) }.map(\.key)
    }

    // MARK: handshakes

    /// Records a "dial me" request to `peer` carrying `nonce` (valid until `expires`). Returns false, and
    /// records nothing, when the last request went out less than `retry` nanoseconds ago (unless `force`).
    public mutating func dialMe(_ peer: PeerID, nonce: String, now: UInt64, retry: UInt64, expires: UInt64, force: Bool) -> Bool {
        if !force, let last = lastDialMe[peer], now - last < retry { return false }
        lastDialMe[peer] = now
        let attempts = dialAttempts[peer] ?? (0, now)
        dialAttempts[peer] = (attempts.count + 1, attempts.since)
        nonces[nonce] = (peer, expires)
        return true
    }

    public mutating func dialStarted(_ connection: ConnectionID, peer: PeerID, nonce: String) {
        dialling[connection] = Dialled(peer: peer, nonce: nonce)
    }

    public mutating func acceptedOpened(_ connection: ConnectionID, now: UInt64) { accepted[connection] = now }

    /// A welcome (or anything else) arrived on a dialled connection: it stops being a handshake.
    @discardableResult
    public mutating func endDial(_ connection: ConnectionID) -> Dialled? { dialling.removeValue(forKey: connection) }

    /// Checks a hello on an accepted connection: its nonce must have been issued to that peer. The
    /// connection stops waiting either way; a good nonce is used up.
    public mutating func checkHello(_ connection: ConnectionID, peer: PeerID, nonce: String) -> Bool {
        accepted[connection] = nil
        guard let issued = nonces[nonce], issued.peer == peer else { return false }
        nonces[nonce] = nil
        return true
    }

    public mutating func endAccept(_ connection: ConnectionID) { accepted[connection] = nil }

    // MARK: links

    /// A relayed link to `peer` (no WebSocket).
    public mutating func openRelayed(_ peer: PeerID, dialer: PeerID) {
        links[peer] = Link(connection: nil, dialer: dialer, reassembler: Reassembler(maxBytes: maxMessageBytes))
    }

    /// What `opened` did with a new WebSocket link.
    public enum Opening: Equatable, Sendable {
        /// Both sides dialled and the existing link is the one to keep: close the new connection.
        case duplicate
        /// The link is up; `replaced` is the older connection to close (the other duplicate), and
        /// `wasRelayed` says it replaced a relayed link (no new "link up").
        case up(replaced: ConnectionID?, wasRelayed: Bool)
    }

    /// A handshake completed: `connection` is the link to `peer`, dialled by `dialer`. When both sides
    /// dialled, the link dialled by the smaller ID is kept (both ends choose the same).
    public mutating func opened(_ peer: PeerID, connection: ConnectionID, dialer: PeerID, me: PeerID) -> Opening {
        var replaced: ConnectionID?
        if let existing = links[peer], let old = existing.connection, old != connection {
            let keeper = min(peer, me)
            if existing.dialer == keeper && existing.open { return .duplicate }
            connectionPeer[old] = nil
            replaced = old
        }
        let wasRelayed = links[peer] != nil && links[peer]?.connection == nil
        links[peer] = Link(connection: connection, dialer: dialer, reassembler: Reassembler(maxBytes: maxMessageBytes))
        connectionPeer[connection] = peer
        dialAttempts[peer] = nil
        return .up(replaced: replaced, wasRelayed: wasRelayed)
    }

    /// Removes the link to `peer`; returns it (its connection is for the caller to close).
    public mutating func remove(_ peer: PeerID) -> Link? {
        guard let link = links.removeValue(forKey: peer) else { return nil }
        if let c = link.connection { connectionPeer[c] = nil }
        return link
    }

    /// A WebSocket closed: forgets its handshake, and returns the peer whose link it was (the link is
    /// gone, and the next "dial me" to that peer may go at once).
    public mutating func connectionClosed(_ connection: ConnectionID) -> PeerID? {
        dialling[connection] = nil
        accepted[connection] = nil
        guard let peer = connectionPeer.removeValue(forKey: connection), links[peer]?.connection == connection else { return nil }
        links[peer] = nil
        lastDialMe[peer] = nil
        return peer
    }

    /// Relayed links (they end with the server connection).
    public var relayedPeers: [PeerID] { links.filter { $0.value.connection == nil }.map(\.key).sorted() }

    /// Adds a part of a message to the link's reassembler.
    mutating func addPart(_ peer: PeerID, id: String, index: Int, count: Int, part: [UInt8]) -> Reassembler.Outcome? {
        links[peer]?.reassembler.add(id: id, index: index, count: count, part: part)
    }

    /// The other side asked to retire the link: starts the grace period unless already retiring.
    mutating func remoteRetire(_ peer: PeerID, now: UInt64) {
        if links[peer] != nil, links[peer]?.retiringSince == nil { links[peer]?.retiringSince = now }
    }

    /// The other side wants to keep the link.
    mutating func remoteKeep(_ peer: PeerID) {
        links[peer]?.retiringSince = nil
        links[peer]?.keptByRemote = true
    }

    // MARK: reconciliation and expiry

    /// Compares the links with the `needed` peers (successors and fingers) and updates retiring marks.
    /// A needed peer gets a relayed link when `relayAllowed` and at least three "dial me" requests over
    /// more than two `dialRetry` periods produced none.
    public mutating func reconcile(needed: Set<PeerID>, me: PeerID, relayAllowed: Bool, now: UInt64, dialRetry: UInt64) -> Reconciliation {
        var r = Reconciliation()
        for p in needed.sorted() where !isOpen(p) && !isDialling(p) {
            if relayAllowed, let a = dialAttempts[p], a.count >= 3, now - a.since > 2 * dialRetry {
                openRelayed(p, dialer: me)
                r.relayed.append(p)
                continue
            }
            r.dialMe.append(p)
        }
        for (p, link) in links.sorted(by: { $0.key < $1.key }) where link.open && !needed.contains(p) && link.retiringSince == nil && !link.keptByRemote {
            links[p]?.retiringSince = now
            r.retire.append(p)
        }
        // Needed again while being retired (the ring changed back): keep it, and tell the other side,
        // which may have marked it as retiring too.
        for (p, link) in links.sorted(by: { $0.key < $1.key }) where link.open && needed.contains(p) && link.retiringSince != nil {
            links[p]?.retiringSince = nil
            r.keep.append(p)
        }
        return r
    }

    /// Housekeeping at `now`: forgets expired nonces, and returns the accepted connections that did not
    /// say hello within `handshake` (to close) and the retired links past `grace` that are not
    /// `needed` (to drop), both sorted.
    public mutating func expire(now: UInt64, handshake: UInt64, grace: UInt64, needed: Set<PeerID>) -> (silent: [ConnectionID], retired: [PeerID]) {
        let silent = accepted.filter { now - $0.value > handshake }.map(\.key).sorted()
        for c in silent { accepted[c] = nil }
        nonces = nonces.filter { $0.value.expires > now }
        let retired = links.filter { p, link in
            if let since = link.retiringSince, now - since > grace, !needed.contains(p) { return true }
            return false
        }.map(\.key).sorted()
        return (silent, retired)
    }
}
