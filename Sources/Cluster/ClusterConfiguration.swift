import Redis

/// How an instance takes part in a cluster (`browsercloud serve --cluster redis://HOST:PORT`,
/// docs/cluster.md). Every limit has a flag of the same name.
public struct ClusterConfiguration: Sendable {
    /// The Redis server holding the cluster's log, snapshot, heartbeats and channels.
    public var url: RedisURL
    /// This instance's name (`--instance`; default: the host name and port). Two instances must not
    /// run under one name at once; a restarted instance keeps its name and gets a new incarnation.
    public var name: String
    /// Prefix of every Redis key and channel of the cluster (`--cluster-prefix`): several clusters
    /// can share one Redis server under different prefixes.
    public var prefix = "browsercloud"
    /// Seconds between heartbeats (`--heartbeat-interval`).
    public var heartbeatInterval = 1.0
    /// Seconds without a heartbeat after which an instance counts as gone (`--instance-timeout`): its
    /// heartbeat key's time to live. The others notice within this plus one heartbeat interval.
    public var instanceTimeout = 5.0
    /// A checkpoint (snapshot of the replica in Redis, log trimmed behind it) after this many log
    /// entries (`--checkpoint-entries`).
    public var checkpointEntries = 1000
    /// Mutations and forwarded messages waiting for Redis at most (`--cluster-queue`); beyond, the
    /// oldest forwarded messages are dropped first, then proposals (the peers they concern are put right
    /// by the reconciliation after the log is back).
    public var maxQueued = 10_000
    /// Seconds to wait for Redis to accept a connection.
    public var connectTimeout = 2.0

    public init(url: RedisURL, name: String) {
        self.url = url
        self.name = name
    }

    /// The Redis keys and channels of this cluster.
    public var keys: ClusterKeys { ClusterKeys(prefix: prefix) }
}

/// The names of a cluster's Redis keys (docs/cluster.md, "What is in Redis").
public struct ClusterKeys: Sendable {
    public let prefix: String
    /// The log: a stream of `{n, m}` entries (n: the entry's number, 1, 2, 3…; m: a mutation's JSON).
    public var log: String { "\(prefix):log" }
    /// The number of the last entry appended (INCR'd by the append script).
    public var sequence: String { "\(prefix):seq" }
    /// The cluster's configuration (JSON), set by the first instance; the others must agree with it.
    public var config: String { "\(prefix):config" }
    /// The latest snapshot: `{entry, n, replica}` JSON.
    public var snapshot: String { "\(prefix):snapshot" }
    /// Held (SET NX PX) by the instance writing a checkpoint.
    public var checkpointLock: String { "\(prefix):checkpoint-lock" }
    /// An instance's heartbeat (time to live: the instance timeout); its value is the instance's stats JSON.
    public func alive(_ instance: String) -> String { "\(prefix):alive:\(instance)" }
    /// The instances that ever sent a heartbeat (a set; members without a heartbeat key are removed).
    public var instances: String { "\(prefix):instances" }
    /// Where other instances send an instance's forwarded signals and link frames (Pub/Sub).
    public func channel(_ instance: String) -> String { "\(prefix):to:\(instance)" }
}
