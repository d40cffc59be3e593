import CCrypto
import Foundation
import RendezvousCore
import Ring
import Transport
import WireProtocol

/// One HTTP route: a method and a path pattern (a trailing slash is ignored) with its handler.
struct Route: Sendable {
    enum Pattern: Sendable {
        /// This path exactly.
        case exact(String)
        /// This prefix followed by one more segment, handed to the handler (`/api/peers/<id>`).
        case parameter(prefix: String)

        /// The parameter (or "" for an exact pattern) when `path` matches.
        func match(_ path: String) -> String? {
            switch self {
            case .exact(let p): return path == p ? "" : nil
            case .parameter(let prefix):
                guard path.hasPrefix(prefix) else { return nil }
                let rest = path.dropFirst(prefix.count)
                return rest.isEmpty || rest.contains("/") ? nil : String(rest)
            }
        }
    }

    let method: HTTPMethod
    let pattern: Pattern
    let handler: @Sendable (RendezvousServer, HTTPRequest, String) -> HTTPResponse
}

/// HTTP routes (docs/api.md), declared in one table; called on the service thread. A path that some
/// route matches with another method gets 405 with `Allow` (GET implies HEAD) from the table; a path no
/// route matches is a vendor file under /vendor/ (`VendorFiles`) or a static file for GET (404 otherwise,
/// JSON under /api).
extension RendezvousServer {
    static let routes: [Route] = [
        Route(method: .get, pattern: .exact("/healthz")) { server, _, _ in server.health() },
        Route(method: .get, pattern: .exact("/metrics")) { server, _, _ in
            .body(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(server.statsSnapshot().prometheus.utf8))
        },
        Route(method: .get, pattern: .exact("/api/stats")) { server, _, _ in
            .body(status: 200, contentType: "application/json", body: server.statsSnapshot().json.prettyEncoded())
        },
        Route(method: .get, pattern: .exact("/api/network")) { server, request, _ in server.networkPage(request) },
        Route(method: .get, pattern: .exact("/api/events")) { server, request, _ in
            // The admin's stream also carries leave reasons (eventStreamOpened takes the mark).
            server.pendingAdminStream = server.isAdmin(request) ? request.connection : nil
            return .eventStream
        },
        Route(method: .get, pattern: .parameter(prefix: "/api/peers/")) { server, request, id in server.peer(id, request) },
        Route(method: .delete, pattern: .parameter(prefix: "/api/peers/")) { server, request, id in server.evict(id, request) },
    ]

    func route(_ request: HTTPRequest) -> HTTPResponse {
        let path = request.path.count > 1 && request.path.hasSuffix("/") ? String(request.path.dropLast()) : request.path
        let matching = Self.routes.compactMap { route in route.pattern.match(path).map { (route, $0) } }
        if let (route, parameter) = matching.first(where: { $0.0.method == request.method }) {
            return route.handler(self, request, parameter)
        }
        if !matching.isEmpty {
            return methodNotAllowed(matching.map { $0.0.method == .get ? "GET, HEAD" : $0.0.method.rawValue }.joined(separator: ", "))
        }
        if path == "/api" || path.hasPrefix("/api/") {
            return error(404, "not-found", "no API route \(path)")
        }
        guard request.method == .get else {
            return .body(status: 405, contentType: "text/plain; charset=utf-8", body: Array("method not allowed\n".utf8),
                         headers: [("allow", "GET, HEAD")])
        }
        if path.hasPrefix("/vendor/") {
            guard let entry = configuration.vendor.entry(for: path) else {
                return .body(status: 404, contentType: "text/plain; charset=utf-8", body: Array("not found\n".utf8))
            }
            guard VendorFiles.available(entry) else {
                return .body(status: 404, contentType: "text/plain; charset=utf-8",
                             body: Array("not found: \(entry.file) is missing on the server (Debian package \(entry.package))\n".utf8))
            }
            return .file(path: entry.file, contentType: StaticFiles.mimeType(for: entry.file))
        }
        if let files, let file = files.resolve(request.path) {
            return .file(path: file, contentType: StaticFiles.mimeType(for: file))
        }
        return .body(status: 404, contentType: "text/plain; charset=utf-8", body: Array("not found\n".utf8))
    }

    /// `GET /healthz`: 200 `ok`; in cluster mode 503 `unavailable` with the problem while the cluster's log
    /// is unreachable (the instance refuses registrations then: a load balancer should prefer the others).
    private func health() -> HTTPResponse {
        var body: [String: JSONValue] = ["status": "ok", "version": .string(browserCloudVersion), "peersOnline": .number(Double(membership.ring.count)),
                                         "serverKey": .string(identity.serverKey)]
        guard let cluster else { return json(200, body) }
        let status = cluster.status
        body["instance"] = .string(cluster.instanceID)
        body["logAvailable"] = .bool(status.available)
        guard status.available else {
            body["status"] = "unavailable"
            body["problem"] = .string(status.problem ?? "the cluster's log is unreachable")
            return json(503, body)
        }
        return json(200, body)
    }

    /// `GET /api/peers/<id>`: the peer's ring entry (its address only for the admin).
    private func peer(_ text: String, _ request: HTTPRequest) -> HTTPResponse {
        guard let id = PeerID(hex: text) else { return error(400, "bad-field", "peer ID must be 12 lowercase hex characters") }
        guard membership.peers[id] != nil else { return error(404, "unknown-peer", "peer \(id.hex) is not in the ring") }
        let entry = NetworkView.peerJSON(id, ring: membership.ring, record: membership.peers[id], admin: isAdmin(request))
        return .body(status: 200, contentType: "application/json", body: entry.prettyEncoded(), headers: [("vary", "authorization")])
    }

    /// `DELETE /api/peers/<id>` (admin): the peer is evicted (a leave with reason `evicted`).
    private func evict(_ text: String, _ request: HTTPRequest) -> HTTPResponse {
        guard let id = PeerID(hex: text) else { return error(400, "bad-field", "peer ID must be 12 lowercase hex characters") }
        if let denied = authorize(request) { return denied }
        guard membership.peers[id] != nil else { return error(404, "unknown-peer", "peer \(id.hex) is not in the ring") }
        perform(handle(.evict(id, now: now)))
        return json(200, ["evicted": .string(id.hex)])
    }

    /// `GET /api/network[?after=<peerId>][&limit=N]`: checked here, rendered by the analytics thread.
    fileprivate func networkPage(_ request: HTTPRequest) -> HTTPResponse {
        var limit = NetworkView.pageDefault
        if let text = request.query["limit"] {
            guard let n = Int(text), n >= 1, n <= NetworkView.pageMax else {
                return error(400, "bad-field", "limit must be 1...\(NetworkView.pageMax)")
            }
            limit = n
        }
        var after: PeerID?
        if let text = request.query["after"] {
            guard let id = PeerID(hex: text) else { return error(400, "bad-field", "after must be a peer ID") }
            after = id
        }
        guard analytics.requestPage(for: request.connection, after: after, limit: limit, admin: isAdmin(request)) else {
            return error(503, "busy", "too many analytics requests are waiting; retry shortly", headers: [("retry-after", "1")])
        }
        return .deferred
    }

    /// Whether the request carries the admin bearer token (false when admin routes are off). A missing
    /// or wrong token is not an error on read routes: the caller gets the anonymous view.
    func isAdmin(_ request: HTTPRequest) -> Bool {
        guard let adminToken = configuration.adminToken, let authorization = request.authorization else { return false }
        let expected = Array("Bearer \(adminToken)".utf8)
        let given = Array(authorization.utf8)
        return given.count == expected.count && bc_const_time_compare(given, expected, given.count) == 0
    }

    /// Nil when the request carries the admin bearer token; otherwise the refusal.
    private func authorize(_ request: HTTPRequest) -> HTTPResponse? {
        guard configuration.adminToken != nil else {
            return error(403, "admin-disabled", "admin routes are off; start the server with --admin-token or --admin-token-file")
        }
        if isAdmin(request) { return nil }
        return error(401, "unauthorized", "missing or wrong 'Authorization: Bearer <admin token>'",
                     headers: [("www-authenticate", "Bearer")])
    }

    private func methodNotAllowed(_ allow: String) -> HTTPResponse {
        error(405, "method-not-allowed", "allowed: \(allow)", headers: [("allow", allow)])
    }

    private func json(_ status: Int, _ object: [String: JSONValue], headers: [(String, String)] = []) -> HTTPResponse {
        .body(status: status, contentType: "application/json", body: JSONValue.object(object).prettyEncoded(), headers: headers)
    }

    private func error(_ status: Int, _ code: String, _ message: String, headers: [(String, String)] = []) -> HTTPResponse {
        json(status, ["error": .string(code), "message": .string(message)], headers: headers)
    }
}
