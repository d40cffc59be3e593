import Ring
import SignedOverlay
import Transport
import WireProtocol

/// Transport events and link handling of `PeerSession`.
extension PeerSession {
    // MARK: transport events

    /// A WebSocket opened: the server connection registers, a dialled link says hello, an accepted one
    /// starts its handshake deadline.
    public mutating func opened(_ connection: ConnectionID, now: UInt64) -> [PeerAction] {
        if connection == serverConnection {
            // `register` follows the server's `challenge`.
            state = .registering
            return []
        }
        if let d = links.dialling[connection] {
            guard let me = peerId else { return [] }
            return [.send(connection, LinkFrame.hello(peerId: me, nonce: d.nonce).encoded())]
        }
        links.acceptedOpened(connection, now: now)
        return []
    }

    /// A text frame arrived. `wallClockMs`: the wall clock in ms since 1970, for the time window of signed
    /// overlay messages.
    public mutating func received(_ connection: ConnectionID, text: [UInt8], now: UInt64, wallClockMs: Int64) -> [PeerAction] {
        if connection == serverConnection { return serverMessage(text, now: now, wallClockMs: wallClockMs) }
        if let peer = links.peer(on: connection) { return linkFrame(peer, text, now: now, wallClockMs: wallClockMs) }
        if let d = links.dialling[connection] {
            guard case .welcome(let who)? = LinkFrame.parse(text), who == d.peer else {
                return [.close(connection, status: 1008, reason: "expected a welcome")]
            }
            links.endDial(connection)
            guard let me = peerId else { return [] }
            return linkOpened(who, connection: connection, dialer: me, now: now)
        }
        if links.accepted[connection] != nil {
            guard case .hello(let who, let nonce)? = LinkFrame.parse(text), let me = peerId,
                  links.checkHello(connection, peer: who, nonce: nonce) else {
                links.endAccept(connection)
                return [.close(connection, status: 1008, reason: "bad hello")]
            }
            return [.send(connection, LinkFrame.welcome(peerId: me).encoded())] + linkOpened(who, connection: connection, dialer: who, now: now)
        }
        return []
    }

    /// The transport refused a frame (too large, malformed): a link is closed with 1009.
    public func rejected(_ connection: ConnectionID) -> [PeerAction] {
        links.peer(on: connection) == nil ? [] : [.close(connection, status: 1009, reason: "frame refused")]
    }

    public mutating func closed(_ connection: ConnectionID, cause: String, now: UInt64) -> [PeerAction] {
        if connection == serverConnection { return serverLost("lost the rendezvous server (\(cause))", now: now, dropRelayed: true) }
        guard let peer = links.connectionClosed(connection) else { return [] }
        neighbourLists.forget(peer)
        var actions: [PeerAction] = [.log(.info, "link down: \(peer.hex)"), .linkDown(peer)]
        if state == .registered { actions += reconcileLinks(now: now) }
        return actions
    }

    public mutating func connectFailed(_ connection: ConnectionID, reason: String, now: UInt64) -> [PeerAction] {
        if connection == serverConnection { return serverLost("cannot reach the rendezvous server: \(reason)", now: now, dropRelayed: false) }
        guard let d = links.endDial(connection) else { return [] }
        return [.log(.info, "cannot dial \(d.peer.hex): \(reason)")]
    }

    mutating func serverLost(_ why: String, now: UInt64, dropRelayed: Bool) -> [PeerAction] {
        if state == .stopped { return [.serverClosed] }
        var actions: [PeerAction] = [.log(.warning, why)]
        if dropRelayed { for p in links.relayedPeers { actions += dropLink(p, reason: "the relay went with the server") } }
        scheduleReconnect(now: now)
        return actions
    }

    // MARK: links

    mutating func reconcileLinks(now: UInt64) -> [PeerAction] {
        guard let me = peerId else { return [] }
        let r = links.reconcile(needed: neededPeers(), me: me, relayAllowed: relayAllowed, now: now, dialRetry: nanoseconds(configuration.dialRetrySeconds))
        var actions: [PeerAction] = []
        for p in r.relayed {
            // Last resort: after a few "dial me" rounds without a link, relay through the server.
            actions += [.log(.info, "link up (relayed by the server, no direct connection): \(p.hex)"), .linkUp(p)]
        }
        for p in r.dialMe { actions += sendDialMe(to: p, now: now) }
        for p in r.retire { actions += sendFrame(p, LinkFrame.retire.encoded()) }
        for p in r.keep { actions += sendFrame(p, LinkFrame.keep.encoded()) }
        return actions
    }

    mutating func linkOpened(_ peer: PeerID, connection: ConnectionID, dialer: PeerID, now: UInt64) -> [PeerAction] {
        guard let me = peerId else { return [] }
        switch links.opened(peer, connection: connection, dialer: dialer, me: me) {
        case .duplicate:
            return [.close(connection, status: 1000, reason: "duplicate link")]
        case .up(let replaced, let wasRelayed):
            var actions: [PeerAction] = []
            if let replaced { actions.append(.close(replaced, status: 1000, reason: "duplicate link")) }
            actions.append(.log(.info, "link up: \(peer.hex)\(wasRelayed ? " (direct, replacing the relayed one)" : "")"))
            if !wasRelayed { actions.append(.linkUp(peer)) }
            if !neededPeers().contains(peer) { actions += reconcileLinks(now: now) }
            return actions + sendNeighbourLists(now: now)
        }
    }

    mutating func linkFrame(_ peer: PeerID, _ bytes: [UInt8], now: UInt64, wallClockMs: Int64) -> [PeerAction] {
        // A signed overlay message (docs/protocol.md, "Signed overlay messages") is not a LinkFrame.
        if bytes.first == UInt8(ascii: "S") { return receive(signed: bytes, from: peer, wallClockMs: wallClockMs) }
        guard let frame = LinkFrame.parse(bytes) else { return [] }
        switch frame {
        case .message:
            return refuseUnsigned(from: peer)
        case .chunk(let id, let index, let count, let part):
            switch links.addPart(peer, id: id, index: index, count: count, part: part) {
            case .complete(let text)?:
                // The parts of a signed frame carry the whole frame, its `S` included.
                return text.first == UInt8(ascii: "S") ? receive(signed: text, from: peer, wallClockMs: wallClockMs) : refuseUnsigned(from: peer)
            case .overflow?: return dropLink(peer, reason: "too many partial messages")
            default: return []
            }
        case .retire:
            if neededPeers().contains(peer) { return sendFrame(peer, LinkFrame.keep.encoded()) }
            links.remoteRetire(peer, now: now)
            return []
        case .keep:
            links.remoteKeep(peer)
            return []
        case .neighbours(let list):
            neighbourLists.receive(list, from: peer)
            return []
        case .hello, .welcome:
            return []
        }
    }

    /// Where the frames of a link go: its WebSocket, or the server connection wrapped in `link`
    /// messages (relayed links, while registered).
    func channel(_ peer: PeerID, _ frames: [[UInt8]]) -> (ConnectionID, [[UInt8]])? {
        guard let link = links.links[peer] else { return nil }
        if let c = link.connection { return (c, frames) }
        guard let server = serverConnection, state == .registered else { return nil }
        return (server, frames.map { ClientMessage.link(to: peer, frame: String(decoding: $0, as: UTF8.self)).encoded() })
    }

    /// Sends one link frame (its failure is not reported).
    func sendFrame(_ peer: PeerID, _ frame: [UInt8]) -> [PeerAction] {
        guard let (c, frames) = channel(peer, [frame]) else { return [] }
        return frames.map { .send(c, $0) }
    }

    /// Ends a link (closing its WebSocket, if any).
    mutating func dropLink(_ peer: PeerID, reason: String) -> [PeerAction] {
        guard let link = links.remove(peer) else { return [] }
        neighbourLists.forget(peer)
        var actions: [PeerAction] = []
        if let c = link.connection { actions.append(.close(c, status: reason == "retired" ? 1000 : 1009, reason: reason)) }
        return actions + [.linkDown(peer)]
    }
}
