// Which URL a browser dials for a native peer's "dial me" (docs/protocol.md, "Vouched URLs"): only the
// sender's link URL as the server vouches for it (`fromUrl`, which the server adds to every signal it
// relays from that peer, from its own record), and only when the signal names exactly that URL. A URL
// taken from a signal alone is never dialled: any peer could aim browsers at any address.

/** True for a ws:// or wss:// URL whose host is loopback (127.0.0.0/8, ::1, localhost). */
export function isLoopbackURL (text) {
  let host
  try { host = new URL(text).hostname } catch (error) { return false }
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host) ||
    host === 'localhost' || host.endsWith('.localhost')
}

/**
 * Why a dial-me must not be dialled, or null when `fromUrl` may be.
 * @param {object} o
 * @param {unknown} o.url the URL the signal names
 * @param {unknown} o.fromUrl the sender's vouched URL, as relayed by the server (undefined: none)
 * @param {string} o.signalingURL this page's rendezvous server: a loopback URL is dialled only when it is
 *   loopback too (otherwise it would reach this machine, not the sender's)
 * @returns {string|null}
 */
export function dialMeRefusal ({ url, fromUrl, signalingURL }) {
  if (typeof fromUrl !== 'string') return 'the sender has no vouched URL'
  if (url !== fromUrl) return "the dial-me URL is not the sender's vouched URL"
  if (!/^wss?:\/\//.test(fromUrl)) return 'the vouched URL is not ws:// or wss://'
  if (isLoopbackURL(fromUrl) && !isLoopbackURL(signalingURL)) return 'a loopback URL, but the server is not on this machine'
  return null
}
