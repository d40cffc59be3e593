// A WebSocket link to a native peer's listener (docs/protocol.md, "Links between peers"): the browser
// dials the peer's vouched URL with subprotocol `bc-link.v1` and says hello with the dial-me nonce; the
// first frame back must be the welcome of the peer it meant to reach. Afterwards the link carries the same
// frames as a data channel. The caller keeps the link table and the one teardown path (`onEnd`).

import { parseFrame } from './link-frame.js'
import { LINK_ERRORS, LinkError } from './link-errors.js'
import { Link, SocketChannel, randomId } from './link-channels.js'

const LINK_SUBPROTOCOL = 'bc-link.v1'
/** Piece size on WebSocket links (native peers accept 16 MiB messages by default). */
const SOCKET_CHUNK = 256 * 1024
/** A dialled link without a welcome after this long has failed (ERR_HANDSHAKE). */
const SOCKET_HANDSHAKE_MS = 10000

/**
 * Dials `url` for `peerId`.
 * @param {string} peerId the native peer meant to answer
 * @param {string} url its vouched URL (never one taken from an overlay message)
 * @param {object} o
 * @param {string} o.selfId this peer's ID, o.nonce the dial-me nonce (both go in the hello)
 * @param {number} o.lowWater the channel's bufferedAmountLowThreshold, in bytes
 * @param {(link: Link) => boolean} o.isCurrent whether `link` is still the caller's link to peerId
 * @param {(link: Link) => void} o.onOpen welcomed: the link is open
 * @param {(link: Link, data: string) => void} o.onFrame every frame after the welcome
 * @param {(link: Link, error?: LinkError) => void} o.onEnd the link failed (with a LinkError) or closed
 * @returns {Link} the new link (role 'socket', state 'connecting')
 * @throws {LinkError} ERR_DIAL when the browser refuses to create the WebSocket
 */
export function dialSocketLink (peerId, url, o) {
  let ws
  try {
    ws = new WebSocket(url, LINK_SUBPROTOCOL)
  } catch (error) {
    throw new LinkError(LINK_ERRORS.DIAL, `cannot dial ${url}: ${error.message}`)
  }
  const link = new Link(peerId, randomId(), 'socket', null)
  const dc = new SocketChannel(ws)
  link.dc = dc
  dc.bufferedAmountLowThreshold = o.lowWater
  link.chunkSize = SOCKET_CHUNK
  const timer = setTimeout(() => {
    if (link.state === 'connecting') o.onEnd(link, new LinkError(LINK_ERRORS.HANDSHAKE, `no welcome from ${peerId} after ${SOCKET_HANDSHAKE_MS} ms`))
  }, SOCKET_HANDSHAKE_MS)
  ws.onopen = () => ws.send('H' + JSON.stringify({ peerId: o.selfId, nonce: o.nonce }))
  dc.onmessage = (e) => {
    if (link.state !== 'connecting') { o.onFrame(link, e.data); return }
    // The first frame must be the welcome of the peer we meant to reach.
    const welcome = parseFrame(e.data)
    clearTimeout(timer)
    if (!o.isCurrent(link)) o.onEnd(link)
    else if (welcome?.kind !== 'welcome' || welcome.peerId !== peerId) o.onEnd(link, new LinkError(LINK_ERRORS.HANDSHAKE, `${url} did not welcome us as ${peerId}`))
    else o.onOpen(link)
  }
  dc.onclose = () => { clearTimeout(timer); o.onEnd(link) }
  return link
}
