import Ring

/// Issues and checks the credential a peer presents to re-register its ID (today a bearer token that the
/// server signs; the narrow seam where a key-pair identity will replace it). Injected into `Membership`
/// so that the core needs no cryptography library. Must be a pure function of its secret: the same
/// (peer, epoch) always gets the same token, so that a replayed event log gives the same actions.
///
/// A credential binds an ID and a holder epoch (`Membership` gives every new holder of an ID a new
/// epoch), so a token issued to one holder never works for a later holder of the same ID.
public protocol CredentialIssuer: Sendable {
    /// The token handed to the holder of `peer` with holder epoch `epoch` in `registered`.
    func token(for peer: PeerID, epoch: UInt64) -> String
    /// The epoch `token` was issued with for `peer`, or nil when it was not issued for `peer` by this
    /// issuer (a constant-time check of its signature).
    func epoch(of token: String, for peer: PeerID) -> UInt64?
}
