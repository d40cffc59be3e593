// bc-jsonbench: the micro-benchmark of the one JSON path (`make bench`, docs/benchmarks.md section 7).
//
// It decodes a fixed mix of real protocol v2 client frames with (a) the old path (Baseline.swift: the
// scanner, then Foundation's JSONDecoder for every frame that is not a `signal`) and (b) the new single
// path (`ClientMessage.decode`). Every line of output is one JSON object.
//
//   bc-jsonbench time [--iterations N] [--rounds R]   ns per frame, old and new, per kind of frame and for the mix
//   bc-jsonbench run --path old|new [--frame K] [--iterations N]   one path only (for callgrind)
//   bc-jsonbench check [--fuzz N] [--seed S]          both paths give the same result (message, or error
//                                                     code and text) on the mix and on N mutated frames

import Foundation
import Ring
import WireProtocol

/// One kind of frame in the mix: what a server receives from browsers and native peers.
struct Frame {
    let name: String
    let bytes: [UInt8]
    init(_ name: String, _ text: String) {
        self.name = name
        bytes = Array(text.utf8)
    }
}

let publicKey = String(repeating: "5a", count: 32)
let signature = String(repeating: "c3", count: 64)
let sdp = String(repeating: "a", count: 200)  // the relay benchmark's 200-byte SDP (bc-loadgen relay)
let mix: [Frame] = [
    Frame("register", #"{"type":"register","publicKey":"\#(publicKey)","signature":"\#(signature)"}"#),
    Frame("register again", #"{"type":"register","peerId":"00ab12cd34ef","publicKey":"\#(publicKey)","signature":"\#(signature)","capabilities":{"workers":2,"runtimes":["raytrace"],"native":true}}"#),
    Frame("signal (200-byte SDP)", #"{"type":"signal","to":"00ab12cd34ef","intentId":"bench","signal":{"type":"offer","sdp":"\#(sdp)"}}"#),
    Frame("signal (ICE candidate)", #"{"type":"signal","to":"00ab12cd34ef","intentId":"i-17","signal":{"candidate":"candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host","sdpMid":"0","sdpMLineIndex":0}}"#),
    Frame("report", #"{"type":"report","stats":{"tasks":12,"ms":1534.5,"bytesIn":48213,"bytesOut":9120}}"#),
    Frame("link", #"{"type":"link","to":"00ab12cd34ef","frame":"M{\"srcId\":\"000000000001\",\"dstId\":\"00ab12cd34ef\",\"data\":{\"k\":1},\"hops\":0,\"id\":7}"}"#),
    Frame("leave", #"{"type":"leave"}"#),
    Frame("bad: not JSON", #"{"type":"register","#),
    Frame("bad: unknown type", #"{"type":"dance","to":"00ab12cd34ef"}"#),
    Frame("bad: duplicate key", #"{"type":"signal","to":"00ab12cd34ef","to":"00ab12cd34ee","intentId":"i","signal":{}}"#),
    Frame("bad: peer ID", #"{"type":"link","to":"00AB12CD34EF","frame":"M{}"}"#),
]

@inline(never) func consume<T>(_ x: T) { withExtendedLifetime(x) {} }

func decodeOld(_ bytes: [UInt8]) -> Int {
    do throws(ProtocolError) {
        consume(try Baseline.decode(bytes))
        return 1
    } catch {
        return error.message.utf8.count
    }
}

func decodeNew(_ bytes: [UInt8]) -> Int {
    do throws(ProtocolError) {
        consume(try ClientMessage.decode(bytes))
        return 1
    } catch {
        return error.message.utf8.count
    }
}

func option(_ name: String, _ fallback: String) -> String {
    let args = CommandLine.arguments
    guard let k = args.firstIndex(of: "--\(name)"), k + 1 < args.count else { return fallback }
    return args[k + 1]
}

func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// Nanoseconds per decode of `bytes`, `iterations` times in a row.
func nanoseconds(_ bytes: [UInt8], _ iterations: Int, _ decode: ([UInt8]) -> Int) -> Double {
    var sink = 0
    let clock = ContinuousClock()
    let elapsed = clock.measure {
        for _ in 0..<iterations { sink &+= decode(bytes) }
    }
    consume(sink)
    let (seconds, attoseconds) = elapsed.components
    return (Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(iterations)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func time() {
    let iterations = Int(option("iterations", "20000"))!
    let rounds = Int(option("rounds", "5"))!
    var oldMix = [Double](repeating: 0, count: rounds), newMix = oldMix
    for frame in mix {
        _ = decodeOld(frame.bytes); _ = decodeNew(frame.bytes)  // warm up
        var old: [Double] = [], new: [Double] = []
        // Old and new alternate within each round, so drift on a shared machine hits both alike.
        for r in 0..<rounds {
            old.append(nanoseconds(frame.bytes, iterations, decodeOld))
            new.append(nanoseconds(frame.bytes, iterations, decodeNew))
            oldMix[r] += old[r] / Double(mix.count)
            newMix[r] += new[r] / Double(mix.count)
        }
        emit(["frame": frame.name, "bytes": frame.bytes.count, "oldNs": median(old), "newNs": median(new),
              "ratio": median(zip(old, new).map { $0 / $1 })])
    }
    emit(["frame": "mix", "kinds": mix.count, "oldNs": median(oldMix), "newNs": median(newMix),
          "ratio": median(zip(oldMix, newMix).map { $0 / $1 }), "iterations": iterations, "rounds": rounds])
}

func run() {
    let iterations = Int(option("iterations", "1000"))!
    let path = option("path", "new")
    let name = option("frame", "")
    let frames = name.isEmpty ? mix : mix.filter { $0.name == name }
    guard !frames.isEmpty, path == "old" || path == "new" else { fatalError("unknown --frame or --path") }
    var sink = 0
    for _ in 0..<iterations {
        for f in frames { sink &+= path == "old" ? decodeOld(f.bytes) : decodeNew(f.bytes) }
    }
    emit(["path": path, "frames": frames.count, "iterations": iterations, "sink": sink])
}

/// Both paths give the same answer: the same message, or the same error code and text.
func check() -> Bool {
    let fuzz = Int(option("fuzz", "100000"))!
    let seed = UInt64(option("seed", "1"))!
    func outcome(_ bytes: [UInt8], old: Bool) -> Result<Outcome, ProtocolError> {
        do throws(ProtocolError) {
            return .success(old ? try Baseline.decode(bytes) : Outcome(try ClientMessage.decode(bytes)))
        } catch { return .failure(error) }
    }
    // Mutations reach every rule: structure, escapes, UTF-8, numbers (range included), duplicates.
    let pieces: [[UInt8]] = (Array(#"{}[]":,.-+eE0123456789 \abcdefnrtu/"#.utf8) + [0x09, 0x0A, 0x80, 0xC3, 0xA9, 0xFF, 0x00])
        .map { [$0] } + [#"1e400"#, #"1e-400"#, #"-0"#, #"\u00e9"#, #"\ud83d\ude00"#, #"\ud800"#, #","type":"leave""#,
                         #","x":{"a":1,"a":2}"#, #""signal""#, #"null"#, #""stats":{"x":1,"x":2}"#]
        .map { Array($0.utf8) }
    // The mix, plus frames at the edges of the rules, to mutate.
    let seeds = mix.map(\.bytes) + [
        #"{"type":"report","stats":{"x":1,"x":2,"y":1e-400,"z":-0}}"#,
        #"{"type":"register","capabilities":{"a":{"b":1,"b":[2]},"c":"\u00e9"},"n":1e400}"#,
        #"{"type":"leave","signal":{"x":1e400},"typ\u0065":"x"}"#,
        #"{"type":"signal","to":"00ab12cd34ef","intentId":"\ud83d\ude00","signal":{"x":1e400},"e":-0}"#,
        #"{"type":"link","to":"00ab12cd34ef","frame":"\u0000","stats":{"k":[[[]]]}}"#,
    ].map { Array($0.utf8) }
    var rng = SplitMix64(seed: seed)
    var checked = 0, mismatches = 0, accepted = 0
    var examples: [String] = []
    for k in 0..<(seeds.count + fuzz) {
        var text = seeds[k % seeds.count]
        if k >= seeds.count {
            for _ in 0..<(1 + rng.next() % 3) {
                let at = Int(rng.next() % UInt64(text.count + 1))
                let piece = pieces[Int(rng.next() % UInt64(pieces.count))]
                switch rng.next() % 3 {
                case 0: text.insert(contentsOf: piece, at: at)
                case 1: if at < text.count { text.remove(at: at) }
                default: if at < text.count { text.replaceSubrange(at..<(at + 1), with: piece) }
                }
            }
        }
        let old = outcome(text, old: true), new = outcome(text, old: false)
        checked += 1
        if case .success = new { accepted += 1 }
        if old != new {
            mismatches += 1
            if examples.count < 5 { examples.append("\(String(decoding: text, as: UTF8.self)): old \(old), new \(new)") }
        }
    }
    emit(["checked": checked, "seeds": seeds.count, "fuzz": fuzz, "accepted": accepted, "mismatches": mismatches,
          "seed": seed, "examples": examples])
    return mismatches == 0
}

switch CommandLine.arguments.dropFirst().first {
case "time": time()
case "run": run()
case "check": if !check() { exit(1) }
default:
    FileHandle.standardError.write(Data("usage: bc-jsonbench time|run|check [options] (see main.swift)\n".utf8))
    exit(2)
}
