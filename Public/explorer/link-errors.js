// The error codes of links (explorer/channel-manager.js reports every link failure with one).

/**
 * Error codes of links (as simple-peer names its errors): every failure of a link ends it through the one
 * teardown path, `#destroy(link, error)`, and is reported once through `onLinkError` with one of these.
 */
export const LINK_ERRORS = Object.freeze({
  CONNECT_TIMEOUT: 'ERR_CONNECT_TIMEOUT',       // a WebRTC attempt was still connecting after CONNECT_TIMEOUT_MS
  CONNECTION_FAILURE: 'ERR_CONNECTION_FAILURE', // ICE or DTLS failed (RTCPeerConnection state 'failed')
  SIGNALING: 'ERR_SIGNALING',                   // creating or applying an offer or answer threw
  ICE_CANDIDATE: 'ERR_ADD_ICE_CANDIDATE',       // a remote ICE candidate was refused (the link goes on)
  DIAL: 'ERR_DIAL',                             // a native peer's URL could not be dialled
  DIAL_REFUSED: 'ERR_DIAL_REFUSED',             // a dial-me not naming the sender's vouched URL (not dialled)
  HANDSHAKE: 'ERR_HANDSHAKE',                   // a WebSocket link's welcome was wrong or late
  REASSEMBLY: 'ERR_REASSEMBLY',                 // a peer exceeded the bounds on partial messages
  SEND: 'ERR_SEND',                             // a control frame could not be sent
  SIGNALING_UNREACHABLE: 'ERR_SIGNALING_UNREACHABLE' // the signalling server could not be reached (reconnection follows)
})

/** An Error with a `code` from LINK_ERRORS. */
export class LinkError extends Error {
  constructor (code, message) {
    super(message)
    this.code = code
  }
}
