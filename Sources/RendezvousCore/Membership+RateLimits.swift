import ConnectionTypes
import WireProtocol

/// Errors and rate limits of the core: the token buckets admit a message or not, dropped messages are
/// answered `rate-limited` at most once a second, and a flood is closed as abusive.
extension Membership {
    mutating func fail(_ connection: ConnectionID, _ error: ProtocolError) -> [Action] {
        counters.count(error.code)
        return [.send(connection, .error(error.code, error.message))]
    }

    mutating func admit(_ connection: ConnectionID, now: Double) -> Bool {
        guard let index = sessions.index(forKey: connection) else { return false }
        guard sessions.values[index].bucket.take(now: now) else { return false }
        sessions.values[index].droppedInARow = 0
        return true
    }

    /// Dropped messages: at most one `rate-limited` error per second; close when abusive (too many
    /// dropped in a row, or too many dropped within a window: see `ServerConfiguration`).
    mutating func rateLimitActions(_ connection: ConnectionID, now: Double, dropped: Int = 1) -> [Action] {
        guard var session = sessions[connection], session.closing == nil else { return [] }
        counters.rateLimitedMessages += dropped
        session.droppedInARow += dropped
        if now - session.windowStart >= configuration.abusiveWindowSeconds {
            session.windowStart = now
            session.droppedInWindow = 0
        }
        session.droppedInWindow += dropped
        let sustained = Double(session.droppedInWindow)
            >= configuration.abusiveFraction * configuration.rateLimitPerSecond * configuration.abusiveWindowSeconds
        var actions: [Action] = []
        if session.droppedInARow >= configuration.abusiveAfterDropped || sustained {
            let rule: AbuseRule = session.droppedInARow >= configuration.abusiveAfterDropped ? .droppedInARow : .sustainedRate
            counters.abusiveDisconnects += 1
            counters.abusiveDisconnectsByRule[rule, default: 0] += 1
            counters.count(.rateLimited)
            actions = [.send(connection, .error(.rateLimited, "too many messages; closing")),
                       .close(connection, status: 1008, reason: Membership.abusiveCloseReason)]
            session.droppedInARow = 0
            session.closing = .rateLimited
        } else if now - session.lastRateLimitNotice >= 1 {
            session.lastRateLimitNotice = now
            counters.count(.rateLimited)
            actions = [.send(connection, .error(.rateLimited,
                "more than \(configuration.rateLimitPerSecond) messages/s (burst \(Int(configuration.rateLimitBurst))); message dropped"))]
        }
        sessions[connection] = session
        return actions
    }
}
