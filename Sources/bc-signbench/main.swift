// The cost of signed overlay messages for `make bench` (bench/signbench.py, section 9): signing and
// verifying one message of 1 KiB and 64 KiB, the certificate check with and without the verifier's cache,
// and Ed25519 through libcrypto with the key parsed per call or once; next to them, the unsigned path the
// peers used before (an `M` message: the envelope's JSON written at the source, parsed and written again at
// each relay, parsed at the destination).
//
//     bc-signbench time [--rounds N] [--seed S]     µs per operation: every operation once per round,
//                                                   interleaved, medians over rounds; one JSON line each
//     bc-signbench run --op NAME --frames M --iterations K [--seed S]
//                                                   prepares M signed frames, runs NAME K times (for
//                                                   callgrind: two runs with the same M differ by the
//                                                   operations alone)
//     bc-signbench list                             the operations, one JSON line each
import Foundation
import Hex
import Peer
import Ring
import Signatures
import SignedOverlay
import WireProtocol

/// One measured operation: `run(i)` does it once (i: which prepared frame to use).
struct Operation {
    let name: String
    let title: String
    let bytes: Int?
    /// Calls per round in `time` mode.
    let perRound: Int
    let run: (Int) -> Int
}

@MainActor
struct Bench {
    let server: Ed25519.PrivateKey
    let peer: Ed25519.PrivateKey
    let src = PeerID(hex: "2aaaaaaaaaaa")!, dst = PeerID(hex: "7fffffffffff")!
    let certificate: Certificate
    let signer: OverlaySigner
    let now: Int64 = 1_796_000_000_000

    init(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        func key() -> Ed25519.PrivateKey {
            try! Ed25519.PrivateKey(seed: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
        server = key()
        peer = key()
        certificate = Certificate.issue(by: server, peerId: src, publicKey: peer.publicKey, epoch: 1)
        signer = try! OverlaySigner(key: peer, certificate: certificate)!
    }

    /// A JSON `data` whose body is about `bytes` long.
    func data(_ bytes: Int) -> JSONValue {
        .object(["proto": "bc-job/1", "type": "result", "tile": .string(String(repeating: "0123456789abcdef", count: max(1, (bytes - 120) / 16)))])
    }

    /// The operations whose names `wanted` accepts; `frames` signed frames (distinct IDs) are prepared for
    /// each size that has a wanted operation.
    func operations(frames: Int, wanted: (String) -> Bool = { _ in true }) -> [Operation] {
        var ops: [Operation] = []
        let (signer, peer, src, dst, now, server) = (self.signer, self.peer, self.src, self.dst, self.now, self.server)
        for (label, size, perRound) in [("1k", 1024, 200), ("64k", 64 * 1024, 20)] where
            ["sign", "ed25519-sign-per-call", "ed25519-sign-parsed", "ed25519-verify-per-call", "ed25519-verify-parsed",
             "verify-cached", "verify-uncached", "relay", "unsigned-send", "unsigned-relay", "unsigned-receive"].contains(where: { wanted("\($0)-\(label)") }) {
            let d = data(size)
            let body = OverlaySigner.body(srcId: src, dstId: dst, id: "m", at: now, data: d)!
            let n = body.count
            let prepared = (0..<frames).map { signer.frame(to: dst, id: "m\($0)", at: now, data: d)! }
            let signedText = SignedFrame.signedTextPrefix + body
            let signature = peer.signature(for: signedText)
            let signing = try! Ed25519.SigningKey(peer)
            let verifying = try! Ed25519.VerifyingKey(peer.publicKey)
            // The cached verifier checks the certificate once, on a frame that is not among the prepared ones.
            var cached = OverlayVerifier(serverKey: server.publicKey, me: dst)
            _ = cached.verify(signer.frame(to: dst, id: "warm-up", at: now, data: .null)!, nowMs: now)
            var nextCached = 0
            // The unsigned path: the envelope of an `M` message (docs/protocol.md before signing).
            let unsigned = Envelope(srcId: src, dstId: dst, data: d, hops: 0, id: "m").json.encoded()
            ops += [
                Operation(name: "unsigned-send-\(label)", title: "unsigned: send (envelope JSON, M frame)", bytes: unsigned.count, perRound: perRound) { i in
                    LinkFrame.message(Envelope(srcId: src, dstId: dst, data: d, hops: 0, id: "m\(i)").json.encoded()).encoded().count
                },
                Operation(name: "unsigned-relay-\(label)", title: "unsigned: relay (parse the envelope, hops + 1, write it again)", bytes: unsigned.count, perRound: perRound) { _ in
                    var e = Envelope(unsigned)!
                    e.hops += 1
                    return LinkFrame.message(e.json.encoded()).encoded().count
                },
                Operation(name: "unsigned-receive-\(label)", title: "unsigned: receive (parse the envelope)", bytes: unsigned.count, perRound: perRound) { _ in
                    Envelope(unsigned)!.hops
                },

                Operation(name: "sign-\(label)", title: "sign (OverlaySigner: body, signature, frame)", bytes: n, perRound: perRound) { i in
                    signer.frame(to: dst, id: "m\(i)", at: now, data: d)!.count
                },
                Operation(name: "ed25519-sign-per-call-\(label)", title: "Ed25519 sign, key parsed per call (PrivateKey)", bytes: n, perRound: perRound) { _ in
                    Int(peer.signature(for: signedText)[0])
                },
                Operation(name: "ed25519-sign-parsed-\(label)", title: "Ed25519 sign, key parsed once (SigningKey)", bytes: n, perRound: perRound) { _ in
                    Int(signing.signature(for: signedText)[0])
                },
                Operation(name: "ed25519-verify-per-call-\(label)", title: "Ed25519 verify, key parsed per call (PublicKey)", bytes: n, perRound: perRound) { _ in
                    peer.publicKey.isValidSignature(signature, for: signedText) ? 1 : 0
                },
                Operation(name: "ed25519-verify-parsed-\(label)", title: "Ed25519 verify, key parsed once (VerifyingKey)", bytes: n, perRound: perRound) { _ in
                    verifying.isValidSignature(signature, for: signedText) ? 1 : 0
                },
                Operation(name: "verify-cached-\(label)", title: "verify (OverlayVerifier: every check, certificate cached)", bytes: n, perRound: perRound) { _ in
                    // Each prepared frame once per verifier (a second copy would be refused as a replay).
                    if nextCached == prepared.count {
                        cached = OverlayVerifier(serverKey: server.publicKey, me: dst)
                        _ = cached.verify(signer.frame(to: dst, id: "warm-up", at: now, data: .null)!, nowMs: now)
                        nextCached = 0
                    }
                    defer { nextCached += 1 }
                    guard case .accepted = cached.verify(prepared[nextCached], nowMs: now) else { fatalError("refused") }
                    return 1
                },
                Operation(name: "verify-uncached-\(label)", title: "verify (a new OverlayVerifier: every check and the certificate's)", bytes: n, perRound: perRound) { i in
                    var fresh = OverlayVerifier(serverKey: server.publicKey, me: dst)
                    guard case .accepted = fresh.verify(prepared[i % prepared.count], nowMs: now) else { fatalError("refused") }
                    return 1
                },
                Operation(name: "relay-\(label)", title: "relay (SignedFrame.parse, relayed().encoded())", bytes: n, perRound: perRound * 10) { i in
                    SignedFrame.parse(prepared[i % prepared.count])!.relayed().encoded().count
                },
            ]
        }
        let text = Array(certificate.text.utf8)
        var cache: [[UInt8]: Int] = [text: 1]
        for i in 0..<(wanted("certificate-cached") ? 1023 : 0) { cache[Array(Certificate.issue(by: server, peerId: PeerID(UInt64(i)), publicKey: peer.publicKey, epoch: 1).text.utf8)] = i }
        ops += [
            Operation(name: "certificate-uncached", title: "certificate check without cache (parse, server signature, parsed key)", bytes: nil, perRound: 200) { _ in
                let c = Certificate(text)!
                return c.isSigned(by: server.publicKey) && (try? Ed25519.VerifyingKey(c.publicKey)) != nil ? 1 : 0
            },
            Operation(name: "certificate-cached", title: "certificate check with cache (lookup of the 220 characters among 1,024)", bytes: nil, perRound: 20_000) { _ in
                cache[text] ?? 0
            },
        ]
        return ops
    }
}

func json(_ o: [String: JSONValue]) -> String { String(decoding: JSONValue.object(o).encoded(), as: UTF8.self) }

@MainActor func main() {
    var args = Array(CommandLine.arguments.dropFirst())
    let mode = args.isEmpty ? "time" : args.removeFirst()
    var options: [String: String] = [:]
    while args.count >= 2 { options[args.removeFirst()] = args.removeFirst() }
    let seed = UInt64(options["--seed"] ?? "") ?? 20261130
    let bench = Bench(seed: seed)
    var sink = 0
    switch mode {
    case "list":
        for op in bench.operations(frames: 1) { print(json(["name": .string(op.name), "title": .string(op.title)])) }
    case "run":
        let frames = Int(options["--frames"] ?? "") ?? 100, iterations = Int(options["--iterations"] ?? "") ?? 100
        guard let op = bench.operations(frames: frames, wanted: { $0 == options["--op"] }).first(where: { $0.name == options["--op"] }) else {
            FileHandle.standardError.write(Data("unknown --op (see bc-signbench list)\n".utf8)); exit(2)
        }
        for i in 0..<iterations { sink &+= op.run(i) }
    case "time":
        let rounds = Int(options["--rounds"] ?? "") ?? 7
        let ops = bench.operations(frames: 2000)
        var samples = [[Double]](repeating: [], count: ops.count)
        var next = [Int](repeating: 0, count: ops.count)
        for round in 0...rounds {
            // Every operation once per round, so the machine's changing load spreads over all of them.
            for (k, op) in ops.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<op.perRound { sink &+= op.run(next[k]); next[k] += 1 }
                if round > 0 { samples[k].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000 / Double(op.perRound)) }
            }
        }
        for (k, op) in ops.enumerated() {
            let sorted = samples[k].sorted()
            var o: [String: JSONValue] = ["name": .string(op.name), "title": .string(op.title), "us": .number((sorted[sorted.count / 2] * 100).rounded() / 100),
                                          "perRound": .number(Double(op.perRound)), "rounds": .number(Double(rounds)), "seed": .string(String(seed))]
            if let b = op.bytes { o["bytes"] = .number(Double(b)) }
            print(json(o))
        }
    default:
        FileHandle.standardError.write(Data("usage: bc-signbench time|run|list [options]\n".utf8)); exit(2)
    }
    if sink == 42 { print("") }   // keeps the work from being optimised away
}

main()
