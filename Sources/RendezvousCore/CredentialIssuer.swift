import Ring

/// Issues and checks the credential a peer presents to re-register its ID (today a bearer token that the
/// server signs; the narrow seam where a key-pair identity will replace it). Injected into `Membership`
/// so that the core needs no cryptography library. Must be a pure function of its secret: the same
/// peer always gets the same token, so that a replayed event log gives the same actions.
public protocol CredentialIssuer: Sendable {
    /// The token handed to `peer` in `registered`.
    func token(for peer: PeerID) -> String
    /// Whether `token` was issued for `peer` (a constant-time comparison).
    func verify(_ token: String, for peer: PeerID) -> Bool
}
