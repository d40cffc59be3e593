// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "BrowserCloud",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "browsercloud", targets: ["browsercloud"]),
        .library(name: "Ring", targets: ["Ring"]),
        .library(name: "WireProtocol", targets: ["WireProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-algorithms", from: "1.2.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftwasm/WasmKit", from: "0.4.2"),
    ],
    targets: [
        // Thin C shim over the system libwebsockets (Debian: libwebsockets-dev).
        .systemLibrary(
            name: "CLibWebSockets",
            pkgConfig: "libwebsockets",
            providers: [.apt(["libwebsockets-dev"])]
        ),
        // Thin C shim over OpenSSL's libcrypto (SHA-256, Ed25519, the system's random bytes).
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // Thin C shim over the system zlib (deflate and CRC-32 for PNG).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Thin C shim over the system hiredis (Debian: libhiredis-dev): blocking connections, argv commands.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // Redis client for the cluster mode: URL, connection (commands, pipelines, Pub/Sub), replies,
        // stream IDs and entries. Blocking I/O on the caller's thread; no threads of its own.
        .target(name: "Redis", dependencies: ["CHiredis"]),
        // Hexadecimal text of bytes: the one copy (IDs, tokens, digests, nonces). No dependencies.
        .target(name: "Hex"),
        // SHA-256 (libcrypto) with hex output: result digests of jobs, image files.
        .target(name: "Digest", dependencies: ["CCrypto", "Hex"]),
        // Ed25519 signatures (RFC 8032) over libcrypto: key pairs, sign, verify. The building block of the
        // key-pair identity (docs/protocol.md, "Key-pair identity"): the server key, peers' keys. No I/O but
        // the system's random source.
        .target(name: "Signatures", dependencies: ["CCrypto", "Hex"]),
        // Signed overlay messages (docs/protocol.md, "Signed overlay messages"): the S frame, the source's signer and the
        // destination's verifier (certificate cache, epochs, time window, replay memory). Pure: no I/O, no clock.
        .target(
            name: "SignedOverlay",
            dependencies: [
                "Hex", "Ring", "Signatures", "WireProtocol",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        // Pure Chord ring logic: identifiers, intervals, fingers, ID allocation, change sets. No I/O.
        .target(
            name: "Ring",
            dependencies: [
                "Hex",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Algorithms", package: "swift-algorithms"),
            ]
        ),
        // Wire protocol v2: message types, JSON encoding/decoding and validation. No I/O.
        .target(name: "WireProtocol", dependencies: ["Hex", "Ring"]),
        // The ring simulator (docs/overlay.md): the server's ring and the peers' router on a virtual network.
        .target(name: "Simulator", dependencies: ["Ring"]),
        // The deterministic ray tracer (docs/raytracer.md): the same bytes as Public/raytracer.js. No I/O.
        .target(name: "RayTracer", dependencies: ["WireProtocol"]),
        // WebAssembly tasks (docs/jobs.md, "WebAssembly tasks"): module validation against the task ABI and
        // its limits, and one run per task on a fresh WasmKit instance. No I/O.
        .target(name: "WasmTask", dependencies: [.product(name: "WasmKit", package: "WasmKit"), .product(name: "WasmParser", package: "WasmKit")]),
        // PNG encoding of RGBA images (deterministic: no time chunks).
        .target(name: "PNG", dependencies: ["CZlib"]),
        // A native peer: the session with the rendezvous server, WebSocket links, the Chord router.
        .target(
            name: "Peer",
            dependencies: ["Hex", "Ring", "WireProtocol", "Transport", "Signatures", "SignedOverlay", .product(name: "Logging", package: "swift-log")]
        ),
        // The job engine of native peers (protocol bc-job/1, docs/jobs.md): scheduler, worker pool, kernels.
        .target(
            name: "Jobs",
            dependencies: ["Digest", "Peer", "Ring", "WireProtocol", "RayTracer", "WasmTask", .product(name: "Logging", package: "swift-log")]
        ),
        // Values the transport and the pure rendezvous core share (connection IDs, close causes, frame
        // problems). No dependencies.
        .target(name: "ConnectionTypes"),
        // libwebsockets wrapper: one service thread owns every lws object. Re-exports ConnectionTypes.
        .target(
            name: "Transport",
            dependencies: [
                "CLibWebSockets", "ConnectionTypes",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The pure rendezvous core: sessions, ring membership, registration, signal relay and rate limits.
        // Events in, actions out; no clock, no unseeded randomness, no I/O, no threads (a recorded event
        // log replays to the same actions). Foundation only formats the wall-clock times it is given.
        .target(name: "RendezvousCore", dependencies: ["ConnectionTypes", "Hex", "Ring", "WireProtocol"]),
        // The rendezvous server's I/O shell around RendezvousCore: the transport, the clock and the seed,
        // the server key (Ed25519 signatures and certificates), analytics thread, HTTP routes, static files, event recording.
        // The cluster mode's link to Redis (docs/cluster.md): the log of mutations (reader, writer),
        // heartbeats, snapshots, and the channels of forwarded signals; threads of its own.
        .target(
            name: "Cluster",
            dependencies: ["Redis", "RendezvousCore", "WireProtocol", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Rendezvous",
            dependencies: [
                "Hex", "Ring", "WireProtocol", "Transport", "RendezvousCore", "Signatures", "Cluster",
                .product(name: "Algorithms", package: "swift-algorithms"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "browsercloud",
            dependencies: [
                "Rendezvous", "RendezvousCore", "Cluster", "Redis", "Transport", "Peer", "Jobs", "WasmTask", "Digest", "RayTracer", "PNG", "Ring", "WireProtocol", "Simulator",
                "Signatures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Native WebSocket load generator for `make bench`.
        .executableTarget(
            name: "bc-loadgen",
            dependencies: [
                "Transport", "Ring", "Hex", "Signatures", "WireProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // TEST TOOL (not shipped): a native peer that corrupts its ray-trace results, for the quorum
        // tests (docs/jobs.md, "Cheating volunteers").
        .executableTarget(
            name: "bc-cheater",
            dependencies: [
                "Jobs", "Peer", "Ring", "Digest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The one-JSON-path micro-benchmark for `make bench`: old (scanner + JSONDecoder, a marked copy
        // kept only here) versus new client-frame decoding, ns per frame.
        .executableTarget(name: "bc-jsonbench", dependencies: ["WireProtocol", "Ring"]),
        // The cost of signed overlay messages for `make bench`: sign and verify per message, certificate
        // checks with and without the cache, libcrypto keys parsed per call or once; µs per operation.
        .executableTarget(name: "bc-signbench", dependencies: ["Hex", "Peer", "Ring", "Signatures", "SignedOverlay", "WireProtocol"]),
        // The cost of WasmKit's fuel metering for `make bench` (section 11): one task module run with the
        // engine's fuel metering off and on, alternately, in one process; seconds per run and the output's SHA-256.
        .executableTarget(name: "bc-wasmbench", dependencies: ["Digest", .product(name: "WasmKit", package: "WasmKit")]),
        .testTarget(name: "RingTests", dependencies: ["Ring"]),
        .testTarget(name: "RayTracerTests", dependencies: ["RayTracer", "PNG", "Digest"]),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "Digest", "Peer", "Ring", "WireProtocol"]),
        .testTarget(name: "PeerTests", dependencies: ["Hex", "Peer", "Ring", "Signatures", "SignedOverlay", "WireProtocol", "Transport"]),
        .testTarget(name: "DigestTests", dependencies: ["Digest"]),
        .testTarget(name: "WasmTaskTests", dependencies: ["WasmTask", "Jobs", .product(name: "WAT", package: "WasmKit")]),
        .testTarget(name: "SignaturesTests", dependencies: ["Signatures", "Hex"]),
        .testTarget(name: "SimulatorTests", dependencies: ["Simulator", "Ring"]),
        .testTarget(name: "WireProtocolTests", dependencies: ["WireProtocol"]),
        .testTarget(name: "RendezvousTests", dependencies: ["Hex", "Rendezvous", "RendezvousCore", "Ring", "Signatures"]),
        // Unit tests of the core and the replay of Tests/vectors/rendezvous-events.jsonl (Rendezvous only
        // for ServerIdentity, the Ed25519 credential issuer the recording server used).
        .testTarget(
            name: "RendezvousCoreTests",
            dependencies: ["ConnectionTypes", "Hex", "RendezvousCore", "Rendezvous", "Ring", "Signatures", "WireProtocol"]
        ),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        .testTarget(name: "HexTests", dependencies: ["Hex"]),
        // Starts its own redis-server on a loopback port (redis-server must be installed: fails otherwise).
        .testTarget(name: "RedisTests", dependencies: ["Redis"]),
    ],
    swiftLanguageModes: [.v6]
)
