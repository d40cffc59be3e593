/// SplitMix64 (Steele, Lea, Flood 2014): a small, fast, seedable generator, so that
/// ring decisions (first ID, tie breaks) are reproducible in tests and the simulator.
/// Not for secrets: tokens and server secrets use the system generator.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state: `SplitMix64(seed: g.state)` continues where `g` is (replicas, snapshots).
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// Seeds from the system's cryptographic generator.
    public init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
