import Foundation
import Jobs
import Testing
import WAT
import WasmTask

// The task ABI and its limits (docs/jobs.md, "WebAssembly tasks") on tiny modules written here in
// WebAssembly text (assembled by WasmKit's WAT).

/// A bump allocator from 1024 and `bc_run` from `body` (params $sp $sl $ip $il, locals $i $k $out; i64 result).
private func abi(_ body: String, memory: String = "(memory (export \"memory\") 1)", extra: String = "") -> String {
    """
    (module
      \(memory)
      (global $top (mut i32) (i32.const 1024))
      (global $runs (mut i32) (i32.const 0))
      (func $alloc (export "bc_alloc") (param $n i32) (result i32)
        (local $p i32)
        (local.set $p (global.get $top))
        (global.set $top (i32.add (global.get $top) (local.get $n)))
        (local.get $p))
      (func (export "bc_run") (param $sp i32) (param $sl i32) (param $ip i32) (param $il i32) (result i64)
        (local $i i32) (local $k i32) (local $out i32)
        \(body))
      \(extra)
    )
    """
}

/// out[i] = input[i] + shared[0] (0 without shared bytes).
private let addModule = abi("""
    (if (i32.gt_u (local.get $sl) (i32.const 0)) (then (local.set $k (i32.load8_u (local.get $sp)))))
    (local.set $out (call $alloc (local.get $il)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $il)))
      (i32.store8 (i32.add (local.get $out) (local.get $i))
        (i32.add (i32.load8_u (i32.add (local.get $ip) (local.get $i))) (local.get $k)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $il)) (i64.const 32)) (i64.extend_i32_u (local.get $out)))
    """)

private func module(_ wat: String, limits: WasmLimits = WasmLimits()) throws -> WasmModule {
    try WasmModule(bytes: try wat2wasm(wat), limits: limits)
}

private func refusal(_ bytes: [UInt8], limits: WasmLimits = WasmLimits()) -> WasmTaskError? {
    do { _ = try WasmModule(bytes: bytes, limits: limits); return nil } catch { return error }
}

private func failure(_ m: WasmModule, shared: [UInt8] = [], input: [UInt8] = [], seconds: Double = 10) -> WasmTaskError? {
    do { _ = try m.run(shared: shared, input: input, seconds: seconds); return nil } catch { return error }
}

@Test func runsTheABI() throws {
    let m = try module(addModule)
    #expect(try m.run(shared: [3], input: [1, 2, 250], seconds: 10) == [4, 5, 253])
    #expect(try m.run(shared: [], input: [7], seconds: 10) == [7])
    #expect(try m.run(shared: [9], input: [], seconds: 10) == [])
}

@Test func eachTaskRunsOnAFreshInstance() throws {
    // Output: the number of runs this instance has seen (a global), as one byte.
    let m = try module(abi("""
        (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
        (local.set $out (call $alloc (i32.const 1)))
        (i32.store8 (local.get $out) (global.get $runs))
        (i64.or (i64.shl (i64.const 1) (i64.const 32)) (i64.extend_i32_u (local.get $out)))
        """))
    for _ in 0..<3 { #expect(try m.run(shared: [], input: [], seconds: 10) == [1]) }
}

@Test func aTrapIsThrewWithItsMessage() throws {
    let e = failure(try module(abi("(unreachable)")))
    #expect(e?.code == "threw")
    #expect(e?.message.contains("unreachable") == true)
    let div = failure(try module(abi("(drop (i32.div_u (i32.const 1) (local.get $sl))) (i64.const 0)")))
    #expect(div?.code == "threw")
    #expect(div?.message.contains("divide") == true || div?.message.contains("zero") == true)
    let oob = failure(try module(abi("(drop (i32.load (i32.const 70000))) (i64.const 0)")))
    #expect(oob?.code == "threw")
}

@Test func anEndlessLoopEndsAtItsDeadline() throws {
    let m = try module(abi("(loop $l (br $l)) (i64.const 0)"))
    let start = Date()
    let e = failure(m, seconds: 0.2)
    let took = Date().timeIntervalSince(start)
    #expect(e?.code == "deadline")
    // The budget is fuel, not time: on a slow machine it may run longer than 0.2 s, but not without end.
    #expect(took < 20, "an endless task took \(took) s to stop")
}

@Test func memoryGrowsUpToTheLimitOnly() throws {
    // Grows one page at a time until memory.grow returns -1, then returns the page count (4 bytes LE).
    let m = try module(abi("""
        (block $done (loop $l
          (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br $l)))
        (local.set $out (call $alloc (i32.const 4)))
        (i32.store (local.get $out) (memory.size))
        (i64.or (i64.shl (i64.const 4) (i64.const 32)) (i64.extend_i32_u (local.get $out)))
        """))
    #expect(try m.run(shared: [], input: [], seconds: 10) == [0, 1, 0, 0])   // 256 pages
    var small = WasmLimits()
    small.maxMemoryPages = 4
    let m4 = try module(abi("""
        (block $done (loop $l
          (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br $l)))
        (local.set $out (call $alloc (i32.const 4)))
        (i32.store (local.get $out) (memory.size))
        (i64.or (i64.shl (i64.const 4) (i64.const 32)) (i64.extend_i32_u (local.get $out)))
        """), limits: small)
    #expect(try m4.run(shared: [], input: [], seconds: 10) == [4, 0, 0, 0])
    // Grows until refused, then traps: threw.
    let hog = try module(abi("""
        (block $done (loop $l
          (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
          (br $l)))
        (unreachable)
        """))
    #expect(failure(hog)?.code == "threw")
}

@Test func modulesTheABIRefusesAreBadTask() throws {
    // A memory minimum above the limit.
    let big = refusal(try wat2wasm(abi("", memory: "(memory (export \"memory\") 257)")))
    #expect(big?.code == "bad-task")
    #expect(big?.message.contains("257") == true)
    // An import (even one never called).
    let imp = refusal(try wat2wasm("""
        (module (import "env" "now" (func $now (result i32)))
          (memory (export "memory") 1)
          (func (export "bc_alloc") (param i32) (result i32) (i32.const 8))
          (func (export "bc_run") (param i32 i32 i32 i32) (result i64) (i64.const 0)))
        """))
    #expect(imp?.code == "bad-task")
    #expect(imp?.message.contains("env.now") == true)
    // Malformed bytes, a truncated module, nothing.
    #expect(refusal([1, 2, 3, 4, 5, 6, 7, 8, 9])?.code == "bad-task")
    let good = try wat2wasm(addModule)
    #expect(refusal(Array(good.prefix(good.count - 3)))?.code == "bad-task")
    #expect(refusal([])?.code == "bad-task")
    // Too large.
    var tiny = WasmLimits()
    tiny.maxModuleBytes = good.count - 1
    #expect(refusal(good, limits: tiny)?.message.contains("above the limit") == true)
    #expect(refusal(good) == nil)
    // Missing or mistyped exports.
    #expect(refusal(try wat2wasm("(module (memory (export \"memory\") 1) (func (export \"bc_alloc\") (param i32) (result i32) (i32.const 8)))"))?.message.contains("bc_run") == true)
    #expect(refusal(try wat2wasm(abi("(i64.const 0)", memory: "(memory 1)")))?.message.contains("memory") == true)
    let mistyped = try wat2wasm("""
        (module (memory (export "memory") 1)
          (func (export "bc_alloc") (param i32) (result i32) (i32.const 8))
          (func (export "bc_run") (param i32 i32 i32 i32) (result i32) (i32.const 0)))
        """)
    #expect(refusal(mistyped)?.code == "bad-task")
}

@Test func badPointersAndLengthsAreThrew() throws {
    // Output outside memory.
    let outside = failure(try module(abi("(i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 65530))")))
    #expect(outside?.code == "threw")
    #expect(outside?.message.contains("outside memory") == true)
    // Output above the limit.
    var small = WasmLimits()
    small.maxOutputBytes = 8
    let large = failure(try module(abi("(i64.or (i64.shl (i64.const 9) (i64.const 32)) (i64.const 1024))"), limits: small))
    #expect(large?.message.contains("above the limit") == true)
    // bc_alloc returning 0, and a pointer outside memory.
    let zero = try module("""
        (module (memory (export "memory") 1)
          (func (export "bc_alloc") (param i32) (result i32) (i32.const 0))
          (func (export "bc_run") (param i32 i32 i32 i32) (result i64) (i64.const 0)))
        """)
    #expect(failure(zero, input: [1])?.message.contains("returned 0") == true)
    let far = try module("""
        (module (memory (export "memory") 1)
          (func (export "bc_alloc") (param i32) (result i32) (i32.const 65535))
          (func (export "bc_run") (param i32 i32 i32 i32) (result i64) (i64.const 0)))
        """)
    #expect(failure(far, input: [1, 2])?.message.contains("outside memory") == true)
}

@Test func theModuleCacheKeepsTheMostRecentlyUsed() throws {
    let a = try module(addModule)
    var cache = WasmModuleCache(maxModules: 2, maxBytes: 3 * a.byteCount)
    cache.put("a", a)
    cache.put("b", a)
    #expect(cache.get("a") != nil)    // a is now the most recent
    cache.put("c", a)                 // b goes
    #expect(cache.get("b") == nil)
    #expect(cache.digests == ["a", "c"])
    var bytes = WasmModuleCache(maxModules: 16, maxBytes: 2 * a.byteCount)
    for k in ["x", "y", "z"] { bytes.put(k, a) }
    #expect(bytes.digests == ["y", "z"])
    #expect(bytes.bytes == 2 * a.byteCount)
}
