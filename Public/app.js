// The BrowserCloud page: join the ring, show this peer's place in it, send messages over the overlay,
// lend this tab's CPU to jobs and run a ray-tracing job across the ring.
import { Explorer } from '/webrtc-explorer.js'
import { BrowserProcess, PROTOCOL } from '/browser-process.js'

const $ = (id) => document.getElementById(id)
const SPACE = 2 ** 48
let peer = null
let bp = null
let network = []
let ranHere = 0

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
  bp = new BrowserProcess({ explorer: peer })
  window.peer = peer
  window.bp = bp
  peer.events.on('ring', render)
  peer.events.on('link-up', render)
  peer.events.on('link-down', render)
  // Jobs start once this tab offers its CPU and is linked into the ring: before its successor link is
  // open, discovery queries have no route and a job would find this tab alone.
  let participating = false
  const enableRun = () => { $('run').disabled = !(participating && peer?.ready) }
  peer.events.on('ready', () => { $('status').textContent = 'in the ring'; render(); enableRun() })
  peer.events.on('message', (m) => { if (m.data?.proto !== PROTOCOL) log(`from ${m.srcId} (${m.hops} hops): ${JSON.stringify(m.data)}`) })
  bp.events.on('task-run', ({ ok, code, message }) => {
    ranHere++
    $('ran-here').textContent = `${ranHere} task${ranHere === 1 ? '' : 's'}`
    if (!ok && code !== 'busy') log(`a task run here failed: ${code}: ${message}`)
  })
  peer.events.on('error', (e) => log(`error ${e.code}: ${e.message}`))
  peer.events.on('signalling-lost', () => { $('status').textContent = 'server lost, reconnecting…' })
  peer.events.on('signalling-restored', () => { $('status').textContent = 'in the ring' })
  try {
    await peer.register()
    $('leave').disabled = false
    $('send').disabled = false
    render()
    try {
      await bp.participate()
      participating = true
      enableRun()
      $('job-status').textContent = `this tab offers ${bp.config.workers} worker${bp.config.workers === 1 ? '' : 's'}`
    } catch (error) {
      $('job-status').textContent = error.message
    }
  } catch (error) {
    $('status').textContent = error.message
    $('join').disabled = false
  }
}

$('leave').onclick = async () => {
  bp.stop()
  await peer.leave()
  peer = null
  bp = null
  $('run').disabled = true
  $('job-status').textContent = 'join the ring first'
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

$('run').onclick = async () => {
  $('run').disabled = true
  // The scene's JSON text as the server has it: the wasm ray tracer gets exactly these bytes.
  const text = await (await fetch(`/scenes/${$('scene').value}.json`)).text()
  const scene = JSON.parse(text)
  const runtime = $('runtime').value   // 'raytrace' (the JavaScript kernel) or 'wasm' (raytracer.wasm)
  const canvas = $('canvas')
  canvas.width = scene.width
  canvas.height = scene.height
  const ctx = canvas.getContext('2d')
  ctx.clearRect(0, 0, canvas.width, canvas.height)
  const tiles = Number($('tiles').value)
  const peers = Math.max(1, Number($('peers').value) | 0)
  for (const id of ['makespan', 'redispatched', 'speculative', 'sha']) $(id).textContent = '…'
  $('per-peer').innerHTML = ''
  $('progress').value = 0
  $('job-status').textContent = 'discovering peers…'
  const offProgress = bp.events.on('progress', ({ done, total }) => {
    $('progress').value = done / total
    $('job-status').textContent = `${done} / ${total} tiles`
  })
  try {
    const r = await bp.raytrace(runtime === 'wasm' ? text : scene, {
      tiles,
      peers,
      runtime,
      onTile: (t, pixels) => ctx.putImageData(new ImageData(new Uint8ClampedArray(pixels.buffer, pixels.byteOffset, pixels.length), t.width, t.height), t.x, t.y)
    })
    const s = r.stats
    $('job-status').textContent = `done: ${s.tasks} tiles on ${Object.keys(s.tasksPerPeer).length} peer(s)${runtime === 'wasm' ? ' (WebAssembly)' : ''}`
    $('makespan').textContent = `${(s.makespanMs / 1000).toFixed(2)} s (discovery ${s.discoveryMs} ms)`
    $('redispatched').textContent = `${s.redispatched} (${s.peersLost} peer(s) lost)`
    $('speculative').textContent = `${s.speculative} started, ${s.discarded} discarded`
    $('sha').textContent = r.sha256
    $('per-peer').innerHTML = Object.entries(s.tasksPerPeer).sort((a, b) => b[1] - a[1])
      .map(([id, n]) => `<tr><td class="mono">${id}${id === peer.peerId ? ' (this tab)' : ''}</td><td>${n}</td></tr>`).join('')
  } catch (error) {
    $('job-status').textContent = `failed: ${error.message}`
  } finally {
    offProgress()
    $('run').disabled = !bp
  }
}

setInterval(() => {
  refreshNetwork()
  if (network.length && document.activeElement !== $('peers')) $('peers').max = String(Math.max(1, network.length))
}, 2000)
refreshNetwork()
render()
