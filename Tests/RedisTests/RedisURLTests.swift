import Redis
import Testing

@Test(arguments: [
    ("redis://127.0.0.1", "127.0.0.1", 6379, nil),
    ("redis://127.0.0.1:6380", "127.0.0.1", 6380, nil),
    ("REDIS://localhost:1/", "localhost", 1, nil),
    ("redis://redis-1.internal.example:65535/0", "redis-1.internal.example", 65535, 0),
    ("redis://cache_a:7000/15", "cache_a", 7000, 15),
    ("redis://[::1]", "::1", 6379, nil),
    ("redis://[::1]:6381/2", "::1", 6381, 2),
    ("redis://[fe80::1:2:3:4]:9", "fe80::1:2:3:4", 9, nil),
    ("redis://[2001:db8:0:0:0:0:2:1]", "2001:db8:0:0:0:0:2:1", 6379, nil),
    ("redis://[::ffff:10.1.2.3]:6379", "::ffff:10.1.2.3", 6379, nil),
    ("redis://10.0.0.5:6379/2147483647", "10.0.0.5", 6379, 2147483647),
] as [(String, String, Int, Int?)])
func goodURLs(text: String, host: String, port: Int, database: Int?) throws {
    let url = try RedisURL(text)
    #expect(url.host == host)
    #expect(url.port == port)
    #expect(url.database == database)
    // The canonical text parses back to the same value.
    #expect(try RedisURL(url.description) == url)
}

@Test func canonicalText() throws {
    #expect(try RedisURL("redis://[::1]").description == "redis://[::1]:6379")
    #expect(try RedisURL("redis://h:7/3").description == "redis://h:7/3")
}

@Test(arguments: [
    ("", RedisURLError.notARedisURL("")),
    ("127.0.0.1:6379", .notARedisURL("127.0.0.1:6379")),
    ("http://127.0.0.1:6379", .unsupportedScheme("http")),
    ("rediss://127.0.0.1:6379", .unsupportedScheme("rediss")),
    ("unix:///tmp/redis.sock", .unsupportedScheme("unix")),
    ("redis://", .missingHost),
    ("redis://:6379", .missingHost),
    ("redis:///0", .missingHost),
    ("redis://user:secret@127.0.0.1:6379", .credentialsNotSupported),
    ("redis://:secret@127.0.0.1", .credentialsNotSupported),
    ("redis://h:6379?timeout=3", .queryOrFragment),
    ("redis://h#x", .queryOrFragment),
    ("redis://h:0", .invalidPort("0")),
    ("redis://h:65536", .invalidPort("65536")),
    ("redis://h:", .invalidPort("")),
    ("redis://h:+80", .invalidPort("+80")),
    ("redis://h:80a", .invalidPort("80a")),
    ("redis://h:99999999999", .invalidPort("99999999999")),
    ("redis://h/x", .invalidDatabase("x")),
    ("redis://h/-1", .invalidDatabase("-1")),
    ("redis://h/1/2", .invalidDatabase("1/2")),
    ("redis://h/2147483648", .invalidDatabase("2147483648")),
    ("redis://256.1.1.1", .invalidHost("256.1.1.1")),
    ("redis://1.2.3", .invalidHost("1.2.3")),
    ("redis://a..b", .invalidHost("a..b")),
    ("redis://-a.b", .invalidHost("-a.b")),
    ("redis://a b", .invalidHost("a b")),
    ("redis://[::1", .invalidHost("[::1")),
    ("redis://[1:2:3]", .invalidHost("1:2:3")),
    ("redis://[::1::2]", .invalidHost("::1::2")),
    ("redis://[g::1]", .invalidHost("g::1")),
    ("redis://[::1]x", .invalidHost("[::1]x")),
] as [(String, RedisURLError)])
func badURLs(text: String, expected: RedisURLError) {
    #expect(throws: expected) { try RedisURL(text) }
}

@Test func errorTextsSayWhatToDo() {
    #expect(RedisURLError.credentialsNotSupported.description.contains("not supported"))
    #expect(RedisURLError.invalidPort("0").description.contains("1 to 65535"))
    #expect(RedisURLError.unsupportedScheme("rediss").description.contains("TLS"))
    #expect(RedisURLError.notARedisURL("x").description.contains("redis://HOST[:PORT][/DB]"))
    #expect(RedisURLError.invalidHost("::1").description.contains("brackets"))
}
