// The cost of signed overlay messages for `make bench` (bench/signbench.py, section 9): signing and
// verifying one message of 1 KiB and 64 KiB, the certificate check with and without the verifier's cache,
// and Ed25519 through libcrypto with the key parsed per call or once. Prints one JSON object per
// measurement: the median over rounds of µs per operation.
//
//     bc-signbench [--rounds N] [--seed S]
import Foundation
import Hex
import Ring
import Signatures
import SignedOverlay
import WireProtocol

var rounds = 7
var seed: UInt64 = 20261130
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--rounds": rounds = Int(args.popFirst() ?? "") ?? rounds
    case "--seed": seed = UInt64(args.popFirst() ?? "") ?? seed
    default: FileHandle.standardError.write(Data("usage: bc-signbench [--rounds N] [--seed S]\n".utf8)); exit(2)
    }
}

var random = SplitMix64(seed: seed)
@MainActor func key() -> Ed25519.PrivateKey {
    try! Ed25519.PrivateKey(seed: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
}
let server = key(), peer = key()
let src = PeerID(hex: "2aaaaaaaaaaa")!, dst = PeerID(hex: "7fffffffffff")!
let certificate = Certificate.issue(by: server, peerId: src, publicKey: peer.publicKey, epoch: 1)
let signer = try! OverlaySigner(key: peer, certificate: certificate)!
let now: Int64 = 1_796_000_000_000

/// A JSON `data` whose body is about `bytes` long.
func data(_ bytes: Int) -> JSONValue {
    .object(["proto": "bc-job/1", "type": "result", "tile": .string(String(repeating: "0123456789abcdef", count: max(1, (bytes - 120) / 16)))])
}

/// Median over `rounds` of µs per call of `body`, run `n` times per round (one untimed warm-up round).
@MainActor func measure(_ n: Int, _ body: (Int) -> Void) -> Double {
    var samples: [Double] = []
    for r in 0...rounds {
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<n { body(i) }
        let us = Double(DispatchTime.now().uptimeNanoseconds - start) / 1000 / Double(n)
        if r > 0 { samples.append(us) }
    }
    samples.sort()
    return samples[samples.count / 2]
}

@MainActor func emit(_ name: String, bytes: Int? = nil, _ us: Double, _ n: Int) {
    var o: [String: JSONValue] = ["name": .string(name), "us": .number((us * 100).rounded() / 100), "perRound": .number(Double(n)),
                                  "rounds": .number(Double(rounds)), "seed": .string(String(seed))]
    if let bytes { o["bytes"] = .number(Double(bytes)) }
    print(String(decoding: JSONValue.object(o).encoded(), as: UTF8.self))
}

var sink = 0
for size in [1024, 64 * 1024] {
    let n = size <= 1024 ? 2000 : 200
    let d = data(size)
    let body = OverlaySigner.body(srcId: src, dstId: dst, id: "m", at: now, data: d)!
    let bodySize = body.count
    // Frames with distinct IDs, signed once, for the verifier (its replay memory refuses a second copy).
    let frames = (0..<n).map { signer.frame(to: dst, id: "m\($0)", at: now, data: d)! }
    emit("sign (OverlaySigner: body, parsed key, frame)", bytes: bodySize, measure(n) { i in
        sink &+= signer.frame(to: dst, id: "m\(i)", at: now, data: d)!.count
    }, n)
    let signedText = SignedFrame.signedTextPrefix + body
    emit("Ed25519 sign, key parsed per call (PrivateKey)", bytes: bodySize, measure(n) { _ in
        sink &+= Int(peer.signature(for: signedText)[0])
    }, n)
    let signing = try! Ed25519.SigningKey(peer)
    emit("Ed25519 sign, key parsed once (SigningKey)", bytes: bodySize, measure(n) { _ in
        sink &+= Int(signing.signature(for: signedText)[0])
    }, n)
    let signature = peer.signature(for: signedText)
    emit("Ed25519 verify, key parsed per call (PublicKey)", bytes: bodySize, measure(n) { _ in
        sink &+= peer.publicKey.isValidSignature(signature, for: signedText) ? 1 : 0
    }, n)
    let verifying = try! Ed25519.VerifyingKey(peer.publicKey)
    emit("Ed25519 verify, key parsed once (VerifyingKey)", bytes: bodySize, measure(n) { _ in
        sink &+= verifying.isValidSignature(signature, for: signedText) ? 1 : 0
    }, n)
    var verifier = OverlayVerifier(serverKey: server.publicKey, me: dst)
    emit("verify (OverlayVerifier, certificate cached)", bytes: bodySize, measure(n) { i in
        if i == 0 {
            verifier = OverlayVerifier(serverKey: server.publicKey, me: dst)
            _ = verifier.verify(Array(certificateWarmUp()), nowMs: now)
        }
        if case .accepted = verifier.verify(frames[i], nowMs: now) { sink &+= 1 } else { fatalError("refused") }
    }, n)
    emit("verify (OverlayVerifier, certificate not cached: a new verifier per message)", bytes: bodySize, measure(n) { i in
        var fresh = OverlayVerifier(serverKey: server.publicKey, me: dst)
        if case .accepted = fresh.verify(frames[i], nowMs: now) { sink &+= 1 } else { fatalError("refused") }
    }, n)
    emit("relay (SignedFrame.parse + relayed().encoded())", bytes: bodySize, measure(n) { i in
        sink &+= SignedFrame.parse(frames[i])!.relayed().encoded().count
    }, n)
}

/// A frame with another message ID that warms the verifier's certificate cache.
@MainActor func certificateWarmUp() -> [UInt8] { signer.frame(to: dst, id: "warm-up", at: now, data: .null)! }

let text = Array(certificate.text.utf8)
emit("certificate check without cache (parse, server signature, parsed key)", measure(2000) { _ in
    let c = Certificate(text)!
    sink &+= c.isSigned(by: server.publicKey) && (try? Ed25519.VerifyingKey(c.publicKey)) != nil ? 1 : 0
}, 2000)
var cache: [[UInt8]: Int] = [text: 1]
for i in 0..<4095 { cache[Array(Certificate.issue(by: server, peerId: PeerID(UInt64(i)), publicKey: peer.publicKey, epoch: 1).text.utf8)] = i }
emit("certificate check with cache (lookup of the 220 characters among 4,096)", measure(200_000) { _ in
    sink &+= cache[text] ?? 0
}, 200_000)
if sink == 42 { print("") }   // keeps the work from being optimised away
