/// A token bucket rate limiter (Turner 1986): `rate` tokens per second up to `burst`; each message costs one.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var last: Double

    init(rate: Double, burst: Double, now: Double) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now
    }

    /// Takes one token if available. `now` is monotonic time in seconds.
    mutating func take(now: Double) -> Bool {
        take(1, now: now) == 1
    }

    /// Takes up to `count` tokens; returns how many it took.
    mutating func take(_ count: Int, now: Double) -> Int {
        tokens = min(burst, tokens + max(0, now - last) * rate)
        last = now
        let taken = min(count, Int(tokens))
        tokens -= Double(taken)
        return taken
    }
}
