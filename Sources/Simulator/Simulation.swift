import Foundation
import Ring

/// The ring simulator (docs/overlay.md): a virtual network built with the same `Ring` target as the
/// server (ID assignment, finger computation) and routed with the same `route` as the native peers,
/// so what it measures is what runs; with
/// `routing = .non`, the peers' neighbour-of-neighbour rule (`routeNoN`). Deterministic for a given seed. No I/O.
public struct Simulation {
    public enum IDPolicy: String, Sendable, Codable, CaseIterable {
        /// The server's policy: the midpoint of the largest arc.
        case leastOccupied = "least-occupied"
        /// Uniformly random IDs (what Chord assumes with hashed IDs).
        case random
    }

    public struct Configuration: Sendable {
        public var peers: Int
        public var fingers: FingerPolicy = .auto
        public var ids: IDPolicy = .leastOccupied
        public var lookups = 10_000
        public var seed: UInt64 = 1
        public var churn = 0
        public var successors = 3
        /// How peers route: greedy (Chord's closest preceding finger) or neighbour-of-neighbour, where every
        /// peer knows each link's neighbour list (fingers, successors, predecessor), all up to date.
        public var routing: RoutingRule = .greedy
        /// NoN routing without any neighbour list (only its step 2b, the finger known to hold the key), to
        /// tell what the lists add.
        public var withoutLists = false
        public init(peers: Int) { self.peers = peers }
    }

    /// Measurements of one ring state.
    public struct Metrics: Sendable, Codable, Equatable {
        public var peers: Int
        public var fingerRows: Int
        public var lookups: Int
        /// Lookups that did not end at the key's successor (0 when routing is correct).
        public var misrouted: Int
        public var hopsMean: Double, hopsP50: Int, hopsP99: Int, hopsMax: Int
        /// The Chord paper's expected mean path length, ½·log2 N.
        public var chordMean: Double
        /// Distinct peers each peer links to (fingers, successors and predecessor).
        public var linksMean: Double, linksMax: Int
        /// Largest arc between consecutive peers over the smallest, and over the mean 2^48/N.
        public var arcMaxMin: Double, arcMaxMean: Double
    }

    public struct Report: Sendable, Codable {
        public var peers: Int, fingers: String, ids: String, routing: String, lookups: Int, seed: UInt64, churn: Int
        public var initial: Metrics
        /// The same after `churn` random leave + join steps.
        public var afterChurn: Metrics?
        /// The final ring, as `GET /api/network` shows peers (only up to `networkLimit` peers).
        public var network: [PeerEntry]?
    }

    public struct PeerEntry: Sendable, Codable, Equatable {
        public var peerId: String, predecessor: String?, successors: [String], fingers: [String: String?]
    }

    /// Rings up to this size are included in the report (for the visualizer).
    public static let networkLimit = 10_000

    public let configuration: Configuration
    private var ring: Ring
    private var rng: SplitMix64

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        ring = Ring(policy: configuration.fingers, successorListLength: configuration.successors, seed: configuration.seed)
        rng = SplitMix64(seed: configuration.seed ^ 0x5EED)
    }

    /// Builds the ring, measures, churns, measures again.
    public mutating func run(includeNetwork: Bool = false) -> Report {
        for _ in 0..<configuration.peers { join() }
        let initial = measure()
        var after: Metrics?
        if configuration.churn > 0 {
            for _ in 0..<configuration.churn {
                let victim = ring.members[Int.random(in: 0..<ring.members.count, using: &rng)]
                _ = try? ring.leave(victim)
                join()
            }
            after = measure()
        }
        var network: [PeerEntry]?
        if includeNetwork && ring.count <= Self.networkLimit {
            network = ring.members.map { id in
                let s = ring.state(of: id)
                return PeerEntry(peerId: id.hex, predecessor: s.predecessor?.hex, successors: s.successors.map(\.hex),
                                 fingers: Dictionary(uniqueKeysWithValues: s.fingers.map { (String($0.key), $0.value?.hex) }))
            }
        }
        return Report(peers: configuration.peers, fingers: configuration.fingers.description, ids: configuration.ids.rawValue,
                      routing: configuration.routing.rawValue, lookups: configuration.lookups, seed: configuration.seed, churn: configuration.churn,
                      initial: initial, afterChurn: after, network: network)
    }

    private mutating func join() {
        while true {
            let id: PeerID?
            switch configuration.ids {
            case .leastOccupied: id = ring.allocateID()
            case .random: id = PeerID(rng.next())
            }
            guard let id else { return }   // the circle is full
            if !ring.contains(id) { _ = try? ring.join(id); return }
        }
    }

    /// The peer's links when every link is up: successors and fingers (the router's candidates).
    private func candidates(_ s: PeerState, of id: PeerID) -> Set<PeerID> {
        var c = Set(s.successors)
        for case let f? in s.fingers.values { c.insert(f) }
        c.remove(id)
        return c
    }

    private mutating func measure() -> Metrics {
        let members = ring.members
        let n = members.count
        var hops: [Int] = []
        hops.reserveCapacity(configuration.lookups)
        var misrouted = 0
        // NoN: every peer's neighbour list, as its links would have received it.
        var lists: [PeerID: [PeerID]] = [:]
        if configuration.routing == .non && !configuration.withoutLists {
            lists.reserveCapacity(n)
            for id in members { lists[id] = ring.state(of: id).neighbourList(of: id) }
        }
        for _ in 0..<configuration.lookups {
            let source = members[Int.random(in: 0..<n, using: &rng)]
            let key = PeerID(rng.next())
            var at = source
            var count = 0
            while true {
                let s = ring.state(of: at)
                let decision: RouteDecision
                switch configuration.routing {
                case .greedy:
                    decision = route(from: at, to: key, predecessor: s.predecessor, successors: s.successors, candidates: candidates(s, of: at))
                case .non:
                    decision = routeNoN(from: at, to: key, predecessor: s.predecessor, successors: s.successors, fingers: s.fingers,
                                        candidates: candidates(s, of: at), neighbours: { lists[$0] })
                }
                guard case .next(let next) = decision, count <= 2 * n + 64 else { break }
                at = next
                count += 1
            }
            if at != ring.successor(of: key) { misrouted += 1 }
            hops.append(count)
        }
        hops.sort()
        var linksTotal = 0, linksMax = 0
        for id in members {
            let s = ring.state(of: id)
            var links = candidates(s, of: id)
            if let p = s.predecessor, p != id { links.insert(p) }
            linksTotal += links.count
            linksMax = max(linksMax, links.count)
        }
        let arcs = ring.arcRatios() ?? (1, 1)
        func pct(_ p: Double) -> Int { hops.isEmpty ? 0 : hops[min(hops.count - 1, Int(Double(hops.count) * p))] }
        return Metrics(
            peers: n, fingerRows: ring.fingerRows.count, lookups: hops.count, misrouted: misrouted,
            hopsMean: hops.isEmpty ? 0 : Double(hops.reduce(0, +)) / Double(hops.count),
            hopsP50: pct(0.5), hopsP99: pct(0.99), hopsMax: hops.last ?? 0,
            chordMean: n > 1 ? 0.5 * log2(Double(n)) : 0,
            linksMean: n == 0 ? 0 : Double(linksTotal) / Double(n), linksMax: linksMax,
            arcMaxMin: arcs.maxMin, arcMaxMean: arcs.maxMean)
    }
}
