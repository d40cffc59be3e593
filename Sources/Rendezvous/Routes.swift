import CCrypto
import Foundation
import Ring
import Transport
import WireProtocol

/// HTTP routes (docs/api.md). Called on the service thread.
extension RendezvousServer {
    func route(_ request: HTTPRequest) -> HTTPResponse {
        let path = request.path
        if path == "/healthz" || path == "/healthz/" {
            return only(.get, request) { json(200, ["status": "ok", "version": .string(browserCloudVersion), "peersOnline": .number(Double(membership.ring.count))]) }
        }
        if path == "/metrics" || path == "/metrics/" {
            return only(.get, request) {
                .body(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                      body: Array(statsSnapshot().prometheus.utf8))
            }
        }
        if path == "/api" || path.hasPrefix("/api/") {
            return apiRoute(request)
        }
        guard request.method == .get else {
            return .body(status: 405, contentType: "text/plain; charset=utf-8", body: Array("method not allowed\n".utf8),
                         headers: [("allow", "GET, HEAD")])
        }
        if let files, let file = files.resolve(path) {
            return .file(path: file, contentType: StaticFiles.mimeType(for: file))
        }
        return .body(status: 404, contentType: "text/plain; charset=utf-8", body: Array("not found\n".utf8))
    }

    private func apiRoute(_ request: HTTPRequest) -> HTTPResponse {
        let path = request.path.hasSuffix("/") && request.path.count > 1 ? String(request.path.dropLast()) : request.path
        switch path {
        case "/api/stats":
            return only(.get, request) { .body(status: 200, contentType: "application/json", body: statsSnapshot().json.prettyEncoded()) }
        case "/api/network":
            return only(.get, request) { networkPage(request) }
        case "/api/events":
            return only(.get, request) { .eventStream }
        default:
            break
        }
        if path.hasPrefix("/api/peers/") {
            let text = String(path.dropFirst("/api/peers/".count))
            guard let id = PeerID(hex: text) else {
                return error(400, "bad-field", "peer ID must be 12 lowercase hex characters")
            }
            switch request.method {
            case .get:
                guard membership.peers[id] != nil else { return error(404, "unknown-peer", "peer \(id.hex) is not in the ring") }
                let entry = NetworkView.peerJSON(id, ring: membership.ring, record: membership.peers[id], admin: isAdmin(request))
                return .body(status: 200, contentType: "application/json", body: entry.prettyEncoded(),
                             headers: [("vary", "authorization")])
            case .delete:
                if let denied = authorize(request) { return denied }
                guard let actions = membership.evict(id) else { return error(404, "unknown-peer", "peer \(id.hex) is not in the ring") }
                perform(actions)
                return json(200, ["evicted": .string(id.hex)])
            default:
                return methodNotAllowed("GET, HEAD, DELETE")
            }
        }
        return error(404, "not-found", "no API route \(path)")
    }

    /// `GET /api/network[?after=<peerId>][&limit=N]`: checked here, rendered by the analytics thread.
    private func networkPage(_ request: HTTPRequest) -> HTTPResponse {
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
    private func isAdmin(_ request: HTTPRequest) -> Bool {
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

    private func only(_ method: HTTPMethod, _ request: HTTPRequest, _ handler: () -> HTTPResponse) -> HTTPResponse {
        request.method == method ? handler() : methodNotAllowed(method == .get ? "GET, HEAD" : method.rawValue)
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

extension Collection {
    /// The first index whose element satisfies `predicate`, for a predicate that is false then true (binary search).
    func partitioningIndex(where predicate: (Element) -> Bool) -> Index {
        var low = startIndex, count = self.count
        while count > 0 {
            let half = count / 2
            let mid = index(low, offsetBy: half)
            if predicate(self[mid]) { count = half } else { low = index(after: mid); count -= half + 1 }
        }
        return low
    }
}
