import ConnectionTypes
import WireProtocol

/// Vouched URLs (docs/protocol.md, "Vouched URLs"): at registration, a peer's `capabilities.url` becomes
/// its vouched URL when `VouchedURL.check` accepts it for the address its connection came from; relayed
/// signals carry it as `fromUrl`, and receivers dial no other URL.
extension Membership {
    /// The vouched URL of a registration's capabilities, or nil (no `url`, or one the rule refuses).
    static func vouchedURL(_ capabilities: [String: JSONValue]?, clientAddress: String) -> String? {
        guard let url = capabilities?["url"]?.stringValue else { return nil }
        return try? VouchedURL.check(url, clientAddress: clientAddress)
    }

    /// After a successful registration on `connection`: a `url-not-vouched` error when the peer advertised
    /// a `url` the server does not vouch for (it stays registered; nobody will dial it). Nothing otherwise.
    mutating func urlNotVouched(_ connection: ConnectionID, _ capabilities: [String: JSONValue]?) -> [Action] {
        guard let peer = sessions[connection]?.machine.peer, let record = peers[peer], record.connection == connection,
              record.vouchedURL == nil, let url = capabilities?["url"] else { return [] }
        let why: URLRefusal
        if let text = url.stringValue {
            do throws(URLRefusal) { _ = try VouchedURL.check(text, clientAddress: record.remoteAddress); return [] } catch { why = error }
        } else {
            why = .notWebSocketURL
        }
        return fail(connection, ProtocolError(.urlNotVouched,
            "capabilities.url is not vouched for (\(why.rawValue)); other peers will not dial it (it can still dial theirs, and the relay may carry links)"))
    }
}
