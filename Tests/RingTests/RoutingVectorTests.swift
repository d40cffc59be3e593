import Foundation
import Ring
import Testing

/// The Swift router against the shared vectors that the JavaScript router also reproduces
/// (Tests/e2e/test_router.py), so the two cannot drift apart.
@Test func theSwiftRouterReproducesTheSharedRoutingVectors() throws {
    struct Vector: Decodable {
        struct Expect: Decodable { let deliver: Bool?; let next: String?; let error: String? }
        enum CodingKeys: String, CodingKey { case source = "self", dst, predecessor, successors, candidates, expect }
        let source: String, dst: String, predecessor: String?, successors: [String], candidates: [String], expect: Expect
    }
    struct File: Decodable { let vectors: [Vector] }
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("vectors/routing.json")
    let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
    #expect(file.vectors.count >= 400)
    func id(_ hex: String) throws -> PeerID { try #require(PeerID(hex: hex)) }
    for (i, v) in file.vectors.enumerated() {
        let got = route(from: try id(v.source), to: try id(v.dst), predecessor: try v.predecessor.map(id),
                        successors: try v.successors.map(id), candidates: Set(try v.candidates.map(id)))
        let want: RouteDecision = v.expect.deliver == true ? .deliver : (v.expect.next.map { .next(PeerID(hex: $0)!) } ?? .noRoute)
        #expect(got == want, "vector \(i)")
    }
}
