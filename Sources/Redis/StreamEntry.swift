/// One entry of a Redis Stream: its ID and its field/value pairs in the order they were added.
public struct StreamEntry: Equatable, Hashable, Sendable {
    /// The entry's ID.
    public var id: StreamID
    /// The field/value pairs as `XADD` stored them (fields are text; values are any bytes).
    public var fields: [Field]

    /// One field/value pair.
    public struct Field: Equatable, Hashable, Sendable {
        public var name: String
        public var value: [UInt8]
        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    public init(id: StreamID, fields: [Field]) {
        self.id = id
        self.fields = fields
    }

    /// The value of the first field named `name`, or nil.
    public subscript(name: String) -> [UInt8]? {
        fields.first(where: { $0.name == name })?.value
    }

    /// The value of the first field named `name` as UTF-8 text, or nil (absent or not UTF-8).
    public func string(_ name: String) -> String? {
        self[name].flatMap { String(validating: $0, as: UTF8.self) }
    }
}

/// Parsers of the stream replies (pure: replies in, entries out).
public enum StreamReply {
    /// The entries of an `XRANGE` / `XREVRANGE` reply, `[[id, [f1, v1, ...]], ...]`, in reply order.
    /// - Throws: `RedisError.protocol` when the reply has another shape (an `.error` reply included,
    ///   with its message).
    public static func entries(_ reply: RedisReply) throws(RedisError) -> [StreamEntry] {
        if case .error(let message) = reply { throw .protocol("Redis error instead of stream entries: \(message)") }
        guard let items = reply.array else { throw .protocol("stream entries: expected an array, got \(reply)") }
        var out: [StreamEntry] = []
        out.reserveCapacity(items.count)
        for item in items { out.append(try entry(item)) }
        return out
    }

    /// The entries of an `XREAD` / `XREADGROUP` reply, `[[stream, [[id, [f1, v1, ...]], ...]], ...]`,
    /// by stream name (keys as given in the command), each in stream order. A `.null` reply (the `BLOCK`
    /// time passed with nothing new) is an empty dictionary.
    /// - Throws: `RedisError.protocol` when the reply has another shape (an `.error` reply included).
    public static func read(_ reply: RedisReply) throws(RedisError) -> [String: [StreamEntry]] {
        if reply.isNull { return [:] }
        if case .error(let message) = reply { throw .protocol("Redis error instead of XREAD entries: \(message)") }
        guard let streams = reply.array else { throw .protocol("XREAD: expected an array or null, got \(reply)") }
        var out: [String: [StreamEntry]] = [:]
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let name = pair[0].string else {
                throw .protocol("XREAD: expected [stream, entries], got \(stream)")
            }
            out[name, default: []] += try entries(pair[1])
        }
        return out
    }

    /// The entries of a single-stream `XREAD` reply (`XREAD ... STREAMS key id`); empty on `.null`.
    /// - Throws: `RedisError.protocol` on another shape, or when the reply holds another stream.
    public static func read(_ reply: RedisReply, stream: String) throws(RedisError) -> [StreamEntry] {
        let all = try read(reply)
        if let other = all.keys.first(where: { $0 != stream }) {
            throw .protocol("XREAD: expected entries of '\(stream)', got '\(other)'")
        }
        return all[stream] ?? []
    }

    private static func entry(_ item: RedisReply) throws(RedisError) -> StreamEntry {
        guard let pair = item.array, pair.count == 2,
              let idBytes = pair[0].bytes, let id = StreamID(bytes: idBytes) else {
            throw .protocol("stream entry: expected [id, [field, value, ...]], got \(item)")
        }
        guard let flat = pair[1].array, flat.count % 2 == 0 else {
            throw .protocol("stream entry \(id): expected an even list of fields and values, got \(pair[1])")
        }
        var fields: [StreamEntry.Field] = []
        fields.reserveCapacity(flat.count / 2)
        var i = 0
        while i < flat.count {
            guard let name = flat[i].string, let value = flat[i + 1].bytes else {
                throw .protocol("stream entry \(id): field \(i / 2) is not a text name and a bulk value")
            }
            fields.append(StreamEntry.Field(name: name, value: value))
            i += 2
        }
        return StreamEntry(id: id, fields: fields)
    }
}
