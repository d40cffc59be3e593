// The BrowserCloud page: join the ring, show this peer's place in it, send messages over the overlay.
import { Explorer } from '/webrtc-explorer.js'

const $ = (id) => document.getElementById(id)
const SPACE = 2 ** 48
let peer = null
let network = []

function position (id, radius) {
  const angle = (parseInt(id, 16) / SPACE) * 2 * Math.PI - Math.PI / 2
  return [radius * Math.cos(angle), radius * Math.sin(angle)]
}

function drawRing () {
  const svg = $('ring')
  const snap = peer?.snapshot()
  const links = new Set(snap?.links ?? [])
  const parts = ['<circle r="100" fill="none" stroke="#c5cbe0" stroke-width="1.5"/>']
  if (snap?.peerId) {
    const [x0, y0] = position(snap.peerId, 100)
    for (const other of links) {
      const [x, y] = position(other, 100)
      parts.push(`<line x1="${x0}" y1="${y0}" x2="${x}" y2="${y}" stroke="#3b5bdb" stroke-opacity=".45"/>`)
    }
  }
  for (const id of network) {
    const [x, y] = position(id, 100)
    const me = id === snap?.peerId
    parts.push(`<circle cx="${x}" cy="${y}" r="${me ? 6 : 4}" fill="${me ? '#e8590c' : '#1d2433'}"><title>${id}</title></circle>`)
  }
  svg.innerHTML = parts.join('')
  $('ring-size').textContent = network.length ? `(${network.length} peer${network.length === 1 ? '' : 's'})` : ''
}

function render () {
  const snap = peer?.snapshot()
  $('peer-id').textContent = snap?.peerId ?? '–'
  $('predecessor').textContent = snap?.predecessor ?? '–'
  $('successors').textContent = snap?.successors?.join(', ') || '–'
  const links = new Set(snap?.links ?? [])
  $('fingers').innerHTML = Object.entries(snap?.fingers ?? {}).map(([row, id]) =>
    `<tr><td>${row}</td><td class="mono">${id ?? '(self)'}</td><td class="${id && links.has(id) ? 'up' : 'down'}">${id ? (links.has(id) ? 'open' : 'connecting') : '–'}</td></tr>`).join('')
  drawRing()
}

async function refreshNetwork () {
  try {
    const r = await fetch('/api/network?limit=10000')
    network = (await r.json()).peers.map((p) => p.peerId)
  } catch { network = [] }
  drawRing()
}

function log (text) {
  const li = document.createElement('li')
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`
  $('log').prepend(li)
}

$('join').onclick = async () => {
  $('join').disabled = true
  $('status').textContent = 'connecting…'
  peer = new Explorer()
  window.peer = peer
  peer.events.on('ring', render)
  peer.events.on('link-up', render)
  peer.events.on('link-down', render)
  peer.events.on('ready', () => { $('status').textContent = 'in the ring'; render() })
  peer.events.on('message', (m) => log(`from ${m.srcId} (${m.hops} hops): ${JSON.stringify(m.data)}`))
  peer.events.on('error', (e) => log(`error ${e.code}: ${e.message}`))
  peer.events.on('signalling-lost', () => { $('status').textContent = 'server lost, reconnecting…' })
  peer.events.on('signalling-restored', () => { $('status').textContent = 'in the ring' })
  try {
    await peer.register()
    $('leave').disabled = false
    $('send').disabled = false
    render()
  } catch (error) {
    $('status').textContent = error.message
    $('join').disabled = false
  }
}

$('leave').onclick = async () => {
  await peer.leave()
  peer = null
  $('status').textContent = 'left'
  $('join').disabled = false
  $('leave').disabled = true
  $('send').disabled = true
  render()
}

$('send').onclick = async () => {
  const dst = $('dst').value.trim()
  try {
    await peer.send(dst, { text: $('text').value })
    log(`sent to ${dst}`)
  } catch (error) {
    log(`not sent: ${error.message}`)
  }
}

setInterval(refreshNetwork, 2000)
refreshNetwork()
render()
