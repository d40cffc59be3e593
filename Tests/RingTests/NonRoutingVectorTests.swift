import Foundation
import Ring
import Testing

/// The Swift NoN router (`routeNoN`, used by the native peers and the simulator) against the shared
/// vectors of Tests/vectors/make_non_vectors.py, an independent model of docs/protocol.md's rule; the
/// JavaScript router reproduces the same file (Tests/e2e/test_non_router.py).
private struct NonFile: Decodable {
    struct Expect: Decodable { let deliver: Bool?; let next: String?; let error: String? }
    struct Vector: Decodable {
        enum CodingKeys: String, CodingKey { case source = "self", dst, predecessor, successors, fingers, candidates, neighbours, expect, kind }
        let source: String, dst: String, predecessor: String?, successors: [String], fingers: [String: String?], candidates: [String]
        let neighbours: [String: [String]], expect: Expect, kind: String
    }
    struct Table: Decodable { let predecessor: String, successors: [String], fingers: [String: String?], candidates: [String], neighbours: [String] }
    struct Path: Decodable { let ring: String, source: String, dst: String, path: [String] }
    let vectors: [Vector]
    let rings: [String: [String: Table]]
    let paths: [Path]

    static func load() throws -> NonFile {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/non-routing.json")
        return try JSONDecoder().decode(NonFile.self, from: Data(contentsOf: url))
    }
}

private func id(_ hex: String) throws -> PeerID { try #require(PeerID(hex: hex)) }

private func fingers(_ rows: [String: String?]) throws -> [Int: PeerID?] {
    var out: [Int: PeerID?] = [:]
    for (row, peer) in rows { out[try #require(Int(row))] = .some(try peer.map(id)) }
    return out
}

@Test func theSwiftNoNRouterReproducesEverySharedDecision() throws {
    let file = try NonFile.load()
    #expect(file.vectors.count >= 150)
    #expect(Set(file.vectors.map(\.kind)).isSuperset(of: ["full", "missing", "stale", "liar", "down", "tie", "two-hop", "no-route"]))
    for (i, v) in file.vectors.enumerated() {
        var lists: [PeerID: [PeerID]] = [:]
        for (k, ws) in v.neighbours { lists[try id(k)] = try ws.map(id) }
        let got = routeNoN(from: try id(v.source), to: try id(v.dst), predecessor: try v.predecessor.map(id),
                           successors: try v.successors.map(id), fingers: try fingers(v.fingers), candidates: Set(try v.candidates.map(id)), neighbours: { lists[$0] })
        let want: RouteDecision = v.expect.deliver == true ? .deliver : (try v.expect.next.map { .next(try id($0)) } ?? .noRoute)
        #expect(got == want, "vector \(i) (\(v.kind))")
    }
}

@Test func theSwiftNoNRouterWalksEverySharedPath() throws {
    let file = try NonFile.load()
    #expect(file.paths.count >= 100)
    var tables: [String: [PeerID: NonFile.Table]] = [:]
    var lists: [String: [PeerID: [PeerID]]] = [:]
    for (name, ring) in file.rings {
        for (k, t) in ring {
            tables[name, default: [:]][try id(k)] = t
            lists[name, default: [:]][try id(k)] = try t.neighbours.map(id)
        }
    }
    for (i, p) in file.paths.enumerated() {
        let table = try #require(tables[p.ring]), known = try #require(lists[p.ring])
        let dst = try id(p.dst)
        var at = try id(p.source)
        var walked = [at]
        while walked.count <= table.count + 1 {
            let t = try #require(table[at])
            let d = routeNoN(from: at, to: dst, predecessor: try id(t.predecessor), successors: try t.successors.map(id),
                             fingers: try fingers(t.fingers), candidates: Set(try t.candidates.map(id)), neighbours: { known[$0] })
            guard case .next(let next) = d else { break }
            at = next
            walked.append(at)
        }
        #expect(walked.map(\.hex) == p.path, "path \(i)")
    }
}

/// Without any list and without fingers NoN is greedy routing but for step 2b's successors: every shared greedy
/// vector whose key no successor after the first holds gives the same decision.
@Test func withoutListsNoNIsGreedy() throws {
    struct Vector: Decodable {
        enum CodingKeys: String, CodingKey { case source = "self", dst, predecessor, successors, candidates }
        let source: String, dst: String, predecessor: String?, successors: [String], candidates: [String]
    }
    struct File: Decodable { let vectors: [Vector] }
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("vectors/routing.json")
    let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
    var compared = 0
    defer { #expect(compared >= 200) }
    for (i, v) in file.vectors.enumerated() {
        let args = (try id(v.source), try id(v.dst), try v.predecessor.map(id), try v.successors.map(id), Set(try v.candidates.map(id)))
        if let first = args.3.first, let last = args.3.last, args.1.isIn(openLower: first, closedUpper: last) { continue }
        compared += 1
        let greedy = route(from: args.0, to: args.1, predecessor: args.2, successors: args.3, candidates: args.4)
        let non = routeNoN(from: args.0, to: args.1, predecessor: args.2, successors: args.3, fingers: [:], candidates: args.4, neighbours: { _ in nil })
        #expect(greedy == non, "vector \(i)")
    }
}

/// Whatever the lists say (random, possibly false IDs), every NoN hop moves strictly closer to the key,
/// so lookups on a real ring end at the key's successor. Seeded; the seed is printed.
@Test func falseListsNeverMakeALookupLoop() throws {
    let seed: UInt64 = 0x15_0000 + UInt64(Date().timeIntervalSince1970) % 1000
    print("falseListsNeverMakeALookupLoop seed \(seed)")
    var rng = SplitMix64(seed: seed)
    var ring = Ring(policy: .auto, successorListLength: 3, seed: seed)
    for _ in 0..<200 { if let i = ring.allocateID() { _ = try ring.join(i) } }
    var lists: [PeerID: [PeerID]] = [:]
    for m in ring.members { lists[m] = (0..<10).map { _ in PeerID(rng.next()) } }
    for _ in 0..<500 {
        let key = PeerID(rng.next())
        var at = ring.members[Int(rng.next() % UInt64(ring.count))]
        var hops = 0
        while hops <= ring.count {
            let s = ring.state(of: at)
            var c = Set(s.successors)
            for case let f? in s.fingers.values { c.insert(f) }
            let before = at.distance(to: key)
            guard case .next(let next) = routeNoN(from: at, to: key, predecessor: s.predecessor, successors: s.successors, fingers: s.fingers,
                                                 candidates: c, neighbours: { lists[$0] }) else { break }
            // Closer to the key, or (steps 2 and 2b) the peer responsible for it.
            #expect(next.distance(to: key) < before || next == ring.successor(of: key), "seed \(seed)")
            at = next
            hops += 1
        }
        #expect(at == ring.successor(of: key), "seed \(seed)")
        #expect(hops <= ring.count, "seed \(seed)")
    }
}
