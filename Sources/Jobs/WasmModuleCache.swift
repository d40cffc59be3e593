import WasmTask

/// The compiled Wasm modules a worker peer keeps, by the SHA-256 (hex) of their bytes (docs/jobs.md,
/// "The `wasm` runtime"): at most `maxModules` modules and `maxBytes` module bytes, the least recently
/// used out first. Pure value; the engine keeps one on its service thread.
public struct WasmModuleCache: Sendable {
    /// At most 16 modules.
    public static let defaultMaxModules = 16
    /// At most 64 MiB of module bytes.
    public static let defaultMaxBytes = 64 << 20

    public let maxModules: Int
    public let maxBytes: Int
    var modules: [String: WasmModule] = [:]
    /// Digests, least recently used first.
    var order: [String] = []
    public private(set) var bytes = 0

    public init(maxModules: Int = defaultMaxModules, maxBytes: Int = defaultMaxBytes) {
        self.maxModules = max(1, maxModules)
        self.maxBytes = max(0, maxBytes)
    }

    public var count: Int { modules.count }
    public var digests: [String] { order }

    /// The module of `sha256`, now the most recently used; nil when not held.
    public mutating func get(_ sha256: String) -> WasmModule? {
        guard let m = modules[sha256] else { return nil }
        order.removeAll { $0 == sha256 }
        order.append(sha256)
        return m
    }

    /// Keeps `module` as `sha256`, evicting the least recently used until the limits hold (a module
    /// larger than `maxBytes` alone is kept until the next insertion).
    public mutating func put(_ sha256: String, _ module: WasmModule) {
        if let old = modules.updateValue(module, forKey: sha256) {
            bytes -= old.byteCount
            order.removeAll { $0 == sha256 }
        }
        bytes += module.byteCount
        order.append(sha256)
        while order.count > 1 && (order.count > maxModules || bytes > maxBytes) {
            let victim = order.removeFirst()
            bytes -= modules.removeValue(forKey: victim)?.byteCount ?? 0
        }
    }
}
