import Ring
import WireProtocol

// ID leases and holder bindings of the core (docs/protocol.md, "Epochs and leases"): a departed holder's
// ID stays reserved for its key until the lease ends (on the first event at or after its deadline), and
// the state file's bindings come back as leases at start.

extension Membership {
    /// Ends the leases whose deadline is at or before `now` (their IDs become free); called with the
    /// `now` of every event, so expiry needs no clock of its own and replays exactly.
    public mutating func expireLeases(now: Double) {
        latestNow = max(latestNow, now)
        while leaseQueueHead < leaseQueue.count, leaseQueue[leaseQueueHead].deadline <= now {
            endLease(leaseQueue[leaseQueueHead])
            leaseQueueHead += 1
        }
        if leaseQueueHead > 64, leaseQueueHead * 2 > leaseQueue.count {
            leaseQueue.removeFirst(leaseQueueHead)
            leaseQueueHead = 0
        }
    }

    /// Ends one queued lease if its binding is still that lease.
    mutating func endLease(_ entry: (deadline: Double, peer: PeerID, epoch: UInt64)) {
        guard let b = bindings[entry.peer], b.epoch == entry.epoch, b.leaseUntil == entry.deadline else { return }
        unbind(entry.peer)
        ring.release(entry.peer)
        counters.leasesExpired += 1
    }

    /// The holder of `peer` went away: its ID is leased to it for `idLeaseSeconds` from the latest `now`.
    /// At most `maxPeers` leases are held: beyond, the oldest ends early.
    mutating func lease(_ peer: PeerID) -> Bool {
        guard var b = bindings[peer], configuration.idLeaseSeconds > 0 else {
            unbind(peer)
            return false
        }
        let deadline = latestNow + configuration.idLeaseSeconds
        b.leaseUntil = deadline
        bindings[peer] = b
        leaseQueue.append((deadline, peer, b.epoch))
        while leasesHeld > configuration.maxPeers, leaseQueueHead < leaseQueue.count {
            endLease(leaseQueue[leaseQueueHead])
            leaseQueueHead += 1
        }
        return bindings[peer] != nil
    }

    /// The bindings a state file keeps, in no particular order (the writer sorts them off the signalling
    /// thread): live ones as full leases from `now`, leased ones with the time they have left. O(bindings).
    public func snapshot(now: Double) -> [RestoredBinding] {
        Self.snapshot(of: bindings, leaseSeconds: configuration.idLeaseSeconds, now: now)
    }

    /// `snapshot(now:)` of a copy of a core's `bindings` (taken on its thread, made on another one).
    public static func snapshot(of bindings: [PeerID: Binding], leaseSeconds: Double, now: Double) -> [RestoredBinding] {
        bindings.compactMap { peer, b in
            let remaining = b.leaseUntil.map { $0 - now } ?? leaseSeconds
            return remaining > 0 ? RestoredBinding(peer: peer, epoch: b.epoch, publicKey: b.publicKey, remaining: remaining) : nil
        }
    }

    /// Bindings of a previous run become leases (those for IDs or keys already bound, and those whose key
    /// is not 64 lowercase hex, are ignored); see `Event.restored`.
    public mutating func restore(_ list: [RestoredBinding], nextEpoch: UInt64, now: Double) {
        latestNow = max(latestNow, now)
        self.nextEpoch = max(self.nextEpoch, nextEpoch)
        let sorted = list.map { ($0, min($0.remaining, configuration.idLeaseSeconds)) }
            .filter { $0.1 > 0 }.sorted { ($0.1, $0.0.peer) < ($1.1, $1.0.peer) }
        var queued: [(deadline: Double, peer: PeerID, epoch: UInt64)] = []
        for (b, remaining) in sorted where bindings[b.peer] == nil && holders[b.publicKey] == nil
            && ClientMessage.isLowerHex(b.publicKey, count: Identity.publicKeyHexCount) {
            guard (try? ring.reserve(b.peer)) != nil else { continue }
            bind(b.peer, Binding(epoch: b.epoch, publicKey: b.publicKey, leaseUntil: now + remaining))
            queued.append((now + remaining, b.peer, b.epoch))
            self.nextEpoch = max(self.nextEpoch, b.epoch &+ 1)
        }
        leaseQueue = queued + leaseQueue[leaseQueueHead...]
        leaseQueueHead = 0
    }

    /// Binds `id` to `binding` (and its key to `id`).
    mutating func bind(_ id: PeerID, _ binding: Binding) {
        bindings[id] = binding
        holders[binding.publicKey] = id
    }

    /// Ends the binding of `id`: the ID and its key are free.
    mutating func unbind(_ id: PeerID) {
        if let b = bindings.removeValue(forKey: id), holders[b.publicKey] == id { holders[b.publicKey] = nil }
    }
}
