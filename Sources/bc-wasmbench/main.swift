// bc-wasmbench: the cost of WasmKit's fuel metering (`make bench`, docs/benchmarks.md section 11).
//
// Runs one task of a task module (the ABI of docs/jobs.md, "WebAssembly tasks") on WasmKit, alternately
// with the engine's fuel metering off and on, `rounds` times each, in this one process. Both modes take
// the same steps (parse, instantiate with eager compilation, bc_alloc and copy the shared bytes and the
// input, bc_run, copy the output out); only `EngineConfiguration.fuelMetering` differs, and with metering
// on the store gets an unbounded budget (UInt64.max operators), so the metering is paid but never stops
// the run. The peers' own path (WasmTask's `WasmModule.run`) always meters fuel: that is what
// `browsercloud wasm-run` times.
//
//   bc-wasmbench --module FILE [--shared FILE] --tile x,y,width,height [--rounds R] [--modes off,on]
//
// Input: the tile as four u32 little-endian (the ray tracer module's input). Output: one JSON object
// per run on stdout: {"fuel": Bool, "round": Int, "compileSeconds": Double (parse + instantiate),
// "runSeconds": Double (the ABI calls and copies), "outputBytes": Int, "sha256": hex of the output}.
// Any failure (unreadable file, trap, ABI violation) prints {"error": "..."} and exits 1.

import Digest
import Foundation
import WasmKit

struct Failure: Error { let message: String }

/// Writes one line to stdout at once (unbuffered: the bench reads each line as its run ends).
func emit(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

func fail(_ message: String) -> Never {
    emit(#"{"error":"\#(message.replacingOccurrences(of: "\"", with: "'"))"}"#)
    exit(1)
}

func readBytes(_ path: String) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    return [UInt8](data)
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

/// One run: returns (compile seconds, run seconds, output bytes).
func runOnce(module bytes: [UInt8], shared: [UInt8], input: [UInt8], fuel: Bool) throws -> (Double, Double, [UInt8]) {
    let clock = ContinuousClock()
    let t0 = clock.now
    let module = try parseWasm(bytes: bytes)
    let store = Store(engine: Engine(configuration: EngineConfiguration(compilationMode: .eager, fuelMetering: fuel)))
    if fuel { store.fuel = Fuel(remaining: .max) }
    let instance = try module.instantiate(store: store)
    let t1 = clock.now
    guard let memory = instance.exports[memory: "memory"], let alloc = instance.exports[function: "bc_alloc"],
          let entry = instance.exports[function: "bc_run"] else { throw Failure(message: "the module lacks memory, bc_alloc or bc_run") }
    func place(_ data: [UInt8]) throws -> UInt32 {
        guard case .i32(let ptr)? = try alloc([.i32(UInt32(data.count))]).first, ptr != 0,
              Int(ptr) + data.count <= memory.byteCount else { throw Failure(message: "bc_alloc(\(data.count)) failed") }
        if !data.isEmpty { memory.withUnsafeMutableBufferPointer(offset: UInt(ptr), count: data.count) { $0.copyBytes(from: data) } }
        return ptr
    }
    let sp = try place(shared)
    let ip = try place(input)
    guard case .i64(let packed)? = try entry([.i32(sp), .i32(UInt32(shared.count)), .i32(ip), .i32(UInt32(input.count))]).first else {
        throw Failure(message: "bc_run returned no i64")
    }
    let ptr = Int(packed & 0xffff_ffff), len = Int(packed >> 32)
    guard ptr + len <= memory.byteCount else { throw Failure(message: "the output is outside memory") }
    let output = len == 0 ? [] : memory.withUnsafeBufferPointer(offset: UInt(ptr), count: len) { [UInt8]($0) }
    let t2 = clock.now
    return (seconds(t1 - t0), seconds(t2 - t1), output)
}

var options: [String: String] = [:]
var args = CommandLine.arguments.dropFirst()
while let name = args.popFirst() {
    guard name.hasPrefix("--"), let value = args.popFirst() else { fail("usage: bc-wasmbench --module FILE [--shared FILE] --tile x,y,w,h [--rounds R] [--modes off,on]") }
    options[String(name.dropFirst(2))] = value
}
guard let modulePath = options["module"], let tileText = options["tile"] else { fail("--module and --tile are required") }
let tile = tileText.split(separator: ",").compactMap { UInt32($0) }
guard tile.count == 4 else { fail("--tile must be x,y,width,height") }
let input = tile.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
let moduleBytes = readBytes(modulePath)
let shared = options["shared"].map(readBytes) ?? []
guard let rounds = Int(options["rounds"] ?? "1"), rounds >= 1 else { fail("--rounds must be a positive integer") }
let modes = (options["modes"] ?? "off,on").split(separator: ",").map { m -> Bool in
    switch m {
    case "off": return false
    case "on": return true
    default: fail("--modes is a comma list of off and on")
    }
}

for round in 1...rounds {
    for fuel in modes {
        do {
            let (compile, run, output) = try runOnce(module: moduleBytes, shared: shared, input: input, fuel: fuel)
            emit(#"{"fuel":\#(fuel),"round":\#(round),"compileSeconds":\#(compile),"runSeconds":\#(run),"outputBytes":\#(output.count),"sha256":"\#(sha256Hex(output))"}"#)
        } catch {
            fail("\(error)")
        }
    }
}
