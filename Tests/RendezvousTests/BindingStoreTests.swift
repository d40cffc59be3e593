import Foundation
import Testing
import Hex
import Ring
import RendezvousCore
import Signatures
import WireProtocol
@testable import Rendezvous

@Suite struct BindingStoreTests {
    @Test func stateRoundTripsAndCorruptionIsAnError() throws {
        let k1 = String(repeating: "a1", count: 32), k2 = String(repeating: "b2", count: 32)
        let state = BindingStore.State(nextEpoch: 1 << 60, bindings: [
            .init(peer: PeerID(0xabc), epoch: 42, publicKey: k1, leaseEnds: 1_764_480_000.5),
            .init(peer: PeerID(1), epoch: 7, publicKey: k2, leaseEnds: 3)])
        let decoded = try BindingStore.decode(BindingStore.encode(state, savedAt: 1), path: "x")
        #expect(decoded.nextEpoch == state.nextEpoch)
        #expect(decoded.bindings.map(\.peer) == [PeerID(1), PeerID(0xabc)])
        #expect(decoded.bindings.map(\.epoch) == [7, 42])
        #expect(decoded.bindings.map(\.publicKey) == [k2, k1])
        #expect(throws: BindingStore.Failure.self) { try BindingStore.decode(Array("{not json".utf8), path: "x") }
        #expect(throws: BindingStore.Failure.self) {
            try BindingStore.decode(Array(#"{"format":"browsercloud-bindings/2","nextEpoch":"1","bindings":[{"peerId":"zz"}]}"#.utf8), path: "x")
        }
        // A binding without a well-formed key is corrupt.
        #expect(throws: BindingStore.Failure.self) {
            try BindingStore.decode(Array(#"{"format":"browsercloud-bindings/2","nextEpoch":"1","bindings":[{"peerId":"000000000001","epoch":"1","publicKey":"AB","leaseEnds":5}]}"#.utf8), path: "x")
        }
    }

    /// The file is written member by member; its bytes stay those of the whole document encoded as one
    /// `JSONValue` tree (sorted keys, compact, a final newline), whole and fractional numbers alike.
    @Test func theFileIsTheTreeEncodingOfTheState() {
        let seed = UInt64.random(in: 0...UInt64.max)
        print("theFileIsTheTreeEncodingOfTheState seed \(seed)")
        var rng = SplitMix64(seed: seed)
        for n in [0, 1, 2, 50] {
            let bindings = (0..<n).map { _ in
                BindingStore.Entry(peer: PeerID(rng.next()), epoch: rng.next() >> (rng.next() % 64),
                                   publicKey: Hex.encode(rng.next(), digits: 16) + String(repeating: "0", count: 48),
                                   leaseEnds: rng.next() % 2 == 0 ? Double(rng.next() % 2_000_000_000) : Double(rng.next() % 1_000_000_000_000) / 997)
            }
            let state = BindingStore.State(nextEpoch: rng.next(), bindings: bindings)
            let savedAt = n == 2 ? 1_764_480_000 : 1_764_480_000.25
            let list: [JSONValue] = bindings.sorted { $0.peer < $1.peer }.map {
                .object(["peerId": .string($0.peer.hex), "epoch": .string(String($0.epoch)), "publicKey": .string($0.publicKey),
                         "leaseEnds": .number($0.leaseEnds)])
            }
            let tree = JSONValue.object(["format": .string(BindingStore.format), "nextEpoch": .string(String(state.nextEpoch)),
                                         "savedAt": .number(savedAt), "bindings": .array(list)]).encoded() + [0x0A]
            #expect(BindingStore.encode(state, savedAt: savedAt) == tree, "seed \(seed), \(n) bindings")
        }
    }

    @Test func aTokenProtocolFileLoadsWithItsEpochsAndNoBindings() throws {
        let v1 = #"{"format":"browsercloud-bindings/1","nextEpoch":"500","savedAt":1,"bindings":[{"peerId":"000000000001","epoch":"499","leaseEnds":9e9}]}"#
        let state = try BindingStore.decode(Array(v1.utf8), path: "x")
        #expect(state.nextEpoch == 500 && state.bindings.isEmpty)
    }

    /// The periodic save's cost with 10,000 bindings: the snapshot (on the signalling thread) and the
    /// write (on the save queue). Printed; bounded loosely so that a debug build on a busy machine passes.
    @Test func savingTenThousandBindingsIsCheap() throws {
        var config = MembershipConfiguration()
        config.seed = 3
        let identity = ServerIdentity(key: try Ed25519.PrivateKey(seed: [UInt8](repeating: 1, count: 32)))
        var core = Membership(configuration: config, credentials: identity)
        let state = BindingStore.State(nextEpoch: 1, bindings: (0..<10_000).map {
            .init(peer: PeerID(UInt64($0) * 7919 + 1), epoch: UInt64($0), publicKey: Hex.encode(UInt64($0), digits: 16) + String(repeating: "0", count: 48),
                  leaseEnds: 1e9 + 60) })
        _ = core.handle(BindingStore.restoreEvent(state, now: 0, wallClock: 1e9))
        #expect(core.leasesHeld == 10_000)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bindings-\(getpid()).state").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let snapshot = BindingStore.state(of: core, now: 1, wallClock: 1e9 + 1)
        let t1 = DispatchTime.now().uptimeNanoseconds
        try BindingStore.save(snapshot, to: path, savedAt: 1e9 + 1)
        let t2 = DispatchTime.now().uptimeNanoseconds
        print("10,000 bindings: snapshot \(Double(t1 - t0) / 1e6) ms, encode and write \(Double(t2 - t1) / 1e6) ms")
        #expect(try BindingStore.load(path)?.bindings.count == 10_000)
        #expect(Double(t1 - t0) / 1e9 < 1)
    }
}
