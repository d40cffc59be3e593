@_spi(Fuzzing) import WasmKit   // the SPI: `Store.resourceLimiter`, WasmKit's only way to cap memory growth
import WasmParser

/// The limits of a Wasm task (docs/jobs.md, "WebAssembly tasks"); the same on browsers and native peers.
public struct WasmLimits: Sendable, Equatable {
    /// `wasmMaxModuleBytes`: the largest module accepted, in bytes (8 MiB).
    public static let wasmMaxModuleBytes = 8 << 20
    /// `wasmMaxMemoryPages`: the largest memory, in 64 KiB pages (256 pages = 16 MiB).
    public static let wasmMaxMemoryPages = 256
    /// The largest output of one task, in bytes (16 MiB).
    public static let wasmMaxOutputBytes = 16 << 20
    /// Fuel (about one WebAssembly operator each) this process burns per second: measured once, on first
    /// use, by running a small loop of loads, stores and float arithmetic on a budget of 2^20 operators
    /// (docs/jobs.md, "Workers and safety"). A debug build of WasmKit runs 10-20 M operators/s here,
    /// a release build about 30 times that, so the rate cannot be a constant.
    public static let wasmFuelPerSecond: UInt64 = calibrateFuel()

    /// Times `budget` operators of a representative loop; at least 1 M operators/s.
    static func calibrateFuel(budget: UInt64 = 1 << 20) -> UInt64 {
        // (module (memory 1) (func (export "spin") (local $i i32) (local $x f64) (loop $l  mem[i & 1020] += i;
        //   x = x * 1.0000001 + 1; i += 1; br $l)))
        let spin: [UInt8] = [
            0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 8, 1, 4, 115, 112, 105, 110, 0, 0, 10, 65, 1,
            63, 2, 1, 127, 1, 124, 3, 64, 32, 0, 65, 252, 7, 113, 32, 0, 65, 252, 7, 113, 40, 2, 0, 32, 0, 106, 54, 2, 0, 32, 1, 68, 155,
            242, 215, 26, 0, 0, 240, 63, 162, 68, 0, 0, 0, 0, 0, 0, 240, 63, 160, 33, 1, 32, 0, 65, 1, 106, 33, 0, 12, 0, 11, 11,
        ]
        let floor: UInt64 = 1_000_000
        guard let module = try? parseWasm(bytes: spin) else { return floor }
        let store = Store(engine: Engine(configuration: EngineConfiguration(compilationMode: .eager, fuelMetering: true)))
        guard let instance = try? module.instantiate(store: store), let f = instance.exports[function: "spin"] else { return floor }
        store.fuel = Fuel(remaining: budget)
        let clock = ContinuousClock()
        let took = clock.measure { _ = try? f([]) }
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        return max(floor, UInt64(Double(budget) / max(seconds, 1e-6)))
    }

    public var maxModuleBytes = WasmLimits.wasmMaxModuleBytes
    public var maxMemoryPages = WasmLimits.wasmMaxMemoryPages
    public var maxOutputBytes = WasmLimits.wasmMaxOutputBytes
    public var fuelPerSecond = WasmLimits.wasmFuelPerSecond
    public init() {}
}

/// Why a Wasm task did not produce its output, with the bc-job/1 error code it maps to.
public enum WasmTaskError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Refused before running: malformed, too large, imports, wrong exports, memory minimum too large.
    case badTask(String)
    /// It ran and failed: a trap, a bad pointer or length, an output too large.
    case threw(String)
    /// It ran out of its budget (the task's deadline, as fuel).
    case deadline(String)

    /// The task error code (docs/jobs.md): `bad-task`, `threw` or `deadline`.
    public var code: String {
        switch self {
        case .badTask: "bad-task"
        case .threw: "threw"
        case .deadline: "deadline"
        }
    }
    public var message: String {
        switch self {
        case .badTask(let m), .threw(let m), .deadline(let m): m
        }
    }
    public var description: String { "\(code): \(message)" }
}

/// A validated task module: parsed once (the compiled form peers cache by SHA-256), run any number of
/// times, each run on a fresh instance. Immutable, so `Sendable`.
public struct WasmModule: Sendable {
    public let byteCount: Int
    public let limits: WasmLimits
    let module: Module

    /// Parses and validates `bytes` against the task ABI. Throws `WasmTaskError.badTask` when the module
    /// is larger than `limits.maxModuleBytes`, malformed or invalid, imports anything, lacks the exports
    /// `memory`, `bc_alloc: (i32) -> i32` and `bc_run: (i32, i32, i32, i32) -> i64`, or declares a memory
    /// whose minimum exceeds `limits.maxMemoryPages`.
    ///
    /// `compile`: also compile every function (eagerly, so that invalid code is refused here rather than
    /// when a task runs). This is the slow part: seconds for a module of a few MiB in a debug build
    /// (docs/jobs.md, "Workers and safety"); false checks the rest only (a submitter's quick check).
    public init(bytes: [UInt8], limits: WasmLimits = WasmLimits(), compile: Bool = true) throws(WasmTaskError) {
        guard bytes.count <= limits.maxModuleBytes else {
            throw .badTask("the module is \(bytes.count) bytes, above the limit of \(limits.maxModuleBytes) bytes")
        }
        if let pages = try Self.declaredMemoryMinimum(bytes), pages > UInt64(limits.maxMemoryPages) {
            throw .badTask("the module's memory minimum is \(pages) pages, above the limit of \(limits.maxMemoryPages) pages")
        }
        let parsed: Module
        do { parsed = try parseWasm(bytes: bytes) } catch { throw .badTask("malformed module: \(error)") }
        if let i = parsed.imports.first {
            throw .badTask("the module imports \(i.module).\(i.name): a task module must import nothing")
        }
        var memory = false, alloc = false, run = false
        for e in parsed.exports {
            switch (e.name, e.descriptor) {
            case ("memory", .memory(0)): memory = true
            case ("bc_alloc", .function(let i)):
                alloc = parsed.functionType(at: i) == FunctionType(parameters: [.i32], results: [.i32])
            case ("bc_run", .function(let i)):
                run = parsed.functionType(at: i) == FunctionType(parameters: [.i32, .i32, .i32, .i32], results: [.i64])
            default: break
            }
        }
        guard memory else { throw .badTask("the module must export its memory 0 as 'memory'") }
        guard alloc else { throw .badTask("the module must export 'bc_alloc' of type (i32) -> i32") }
        guard run else { throw .badTask("the module must export 'bc_run' of type (i32, i32, i32, i32) -> i64") }
        self.byteCount = bytes.count
        self.limits = limits
        self.module = parsed
        // Compile every function now, so that invalid code is refused here rather than when it runs.
        guard compile else { return }
        do { _ = try instantiate(fuel: nil) } catch let e as WasmTaskError { throw e } catch { throw .badTask("invalid module: \(error)") }
    }

    /// The minimum pages of the module's own memory 0 (section 5), nil when it declares none. Only the
    /// section headers are read; anything malformed is left to the parser (nil), except a bad memory section.
    static func declaredMemoryMinimum(_ bytes: [UInt8]) throws(WasmTaskError) -> UInt64? {
        guard bytes.count >= 8, bytes[0..<4] == [0, 0x61, 0x73, 0x6d] else { return nil }
        var p = 8
        func leb() -> UInt64? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while p < bytes.count, shift < 64 {
                let b = bytes[p]; p += 1
                v |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
            return nil
        }
        while p < bytes.count {
            let id = bytes[p]; p += 1
            guard let size = leb(), size <= UInt64(bytes.count - p) else { return nil }
            let end = p + Int(size)
            if id == 5 {
                guard let count = leb(), count >= 1, p < end else { return nil }
                p += 1   // the limits' flags
                return leb()
            }
            p = end
        }
        return nil
    }

    final class Limiter: ResourceLimiter {
        let maxBytes: Int
        init(maxBytes: Int) { self.maxBytes = maxBytes }
        func limitMemoryGrowth(to desired: Int) throws -> Bool { desired <= maxBytes }
        func limitTableGrowth(to desired: Int) throws -> Bool { desired <= 1 << 20 }
    }

    func instantiate(fuel: UInt64?) throws -> (Store, Instance) {
        let engine = Engine(configuration: EngineConfiguration(compilationMode: .eager, fuelMetering: true))
        let store = Store(engine: engine)
        store.resourceLimiter = Limiter(maxBytes: limits.maxMemoryPages * 65536)
        store.fuel = Fuel(remaining: fuel ?? .max)
        let instance = try module.instantiate(store: store)
        return (store, instance)
    }

    /// Runs one task per the ABI (docs/jobs.md, "WebAssembly tasks") on a fresh instance: `bc_alloc` and
    /// copy `shared`, `bc_alloc` and copy `input`, `bc_run`, copy the output out. `seconds` is the
    /// task's deadline, enforced as a fuel budget of `seconds × limits.fuelPerSecond` operators.
    /// Throws `.threw` (a trap, with its message; a pointer or length outside memory; `bc_alloc`
    /// returning 0; an output above `limits.maxOutputBytes`) or `.deadline` (the budget ran out).
    public func run(shared: [UInt8], input: [UInt8], seconds: Double) throws(WasmTaskError) -> [UInt8] {
        let fuel = seconds.isFinite && seconds > 0 ? UInt64(min(seconds * Double(limits.fuelPerSecond), 1.8e19)) : UInt64.max
        do {
            let (store, instance) = try instantiate(fuel: fuel)
            _ = store
            guard let memory = instance.exports[memory: "memory"], let alloc = instance.exports[function: "bc_alloc"],
                  let entry = instance.exports[function: "bc_run"] else { throw WasmTaskError.badTask("missing exports") }
            func place(_ bytes: [UInt8], _ what: String) throws -> UInt32 {
                guard case .i32(let ptr)? = try alloc([.i32(UInt32(bytes.count))]).first else { throw WasmTaskError.threw("bc_alloc returned no i32") }
                guard ptr != 0 else { throw WasmTaskError.threw("bc_alloc(\(bytes.count)) for the \(what) returned 0") }
                guard Int(ptr) + bytes.count <= memory.byteCount else {
                    throw WasmTaskError.threw("bc_alloc(\(bytes.count)) for the \(what) returned \(ptr), outside memory (\(memory.byteCount) bytes)")
                }
                if !bytes.isEmpty {
                    memory.withUnsafeMutableBufferPointer(offset: UInt(ptr), count: bytes.count) { $0.copyBytes(from: bytes) }
                }
                return ptr
            }
            let sp = try place(shared, "shared data")
            let ip = try place(input, "input")
            guard case .i64(let packed)? = try entry([.i32(sp), .i32(UInt32(shared.count)), .i32(ip), .i32(UInt32(input.count))]).first else {
                throw WasmTaskError.threw("bc_run returned no i64")
            }
            let ptr = Int(packed & 0xffff_ffff), len = Int(packed >> 32)
            guard len <= limits.maxOutputBytes else {
                throw WasmTaskError.threw("the output is \(len) bytes, above the limit of \(limits.maxOutputBytes) bytes")
            }
            guard ptr + len <= memory.byteCount else {
                throw WasmTaskError.threw("bc_run returned output at \(ptr) of \(len) bytes, outside memory (\(memory.byteCount) bytes)")
            }
            if len == 0 { return [] }
            return memory.withUnsafeBufferPointer(offset: UInt(ptr), count: len) { [UInt8]($0) }
        } catch let e as WasmTaskError {
            throw e
        } catch let trap as Trap {
            let text = trap.description.split(separator: "\n").first.map(String.init) ?? "\(trap)"
            if text.contains("out of fuel") {
                throw .deadline("the task ran past its deadline of \(Int(seconds * 1000)) ms (\(fuel) operators) and was stopped")
            }
            throw .threw(text)
        } catch {
            throw .threw("\(error)")
        }
    }
}
