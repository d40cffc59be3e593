// The live network view: the ring from GET /api/network, kept current with the GET /api/events stream,
// counters from GET /api/stats (docs/api.md); or a virtual network from `browsercloud simulate --json`.
// Plain SVG. With many peers it draws less: finger chords only up to DETAIL_LIMIT peers (and for the
// selected peer), successor chords only up to CHORD_LIMIT.

const $ = (id) => document.getElementById(id)
const SPACE = 2 ** 48
const RADIUS = 220
const DETAIL_LIMIT = 150
const CHORD_LIMIT = 1500
const SVG_NS = 'http://www.w3.org/2000/svg'

let peers = new Map()   // peerId → { peerId, predecessor, successors, fingers }
let selected = null
let live = true
let refreshTimer = null

function position (id, radius = RADIUS) {
  const angle = (parseInt(id, 16) / SPACE) * 2 * Math.PI - Math.PI / 2
  return [radius * Math.cos(angle), radius * Math.sin(angle)]
}

function chord (a, b, cls) {
  const [x1, y1] = position(a)
  const [x2, y2] = position(b)
  // A curve bent towards the centre, the more the farther apart the peers are (neighbours: straight).
  const apart = Math.abs(parseInt(a, 16) - parseInt(b, 16))
  const turn = (Math.min(apart, SPACE - apart) / SPACE) * 2   // 0 for neighbours, 1 for opposite peers
  const k = 1 - 0.6 * Math.min(1, turn * 2)
  const cx = ((x1 + x2) / 2) * k
  const cy = ((y1 + y2) / 2) * k
  return `<path class="${cls}" d="M${x1.toFixed(1)},${y1.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}"/>`
}

function fingerTargets (p) {
  return [...new Set(Object.values(p.fingers ?? {}).filter((f) => f && f !== p.peerId))]
}

/** Redraws the links layer; the marks are kept and only added or removed, so they can animate. */
function draw () {
  const svg = $('ring')
  const n = peers.size
  let links = svg.querySelector('#links')
  let marks = svg.querySelector('#marks')
  if (!links) {
    svg.innerHTML = `<circle r="${RADIUS}" class="orbit"/><g id="links"></g><g id="marks"></g>`
    links = svg.querySelector('#links')
    marks = svg.querySelector('#marks')
  }
  const parts = []
  if (n <= CHORD_LIMIT) {
    for (const p of peers.values()) {
      const s = p.successors?.[0]
      if (s && s !== p.peerId && peers.has(s)) parts.push(chord(p.peerId, s, 'succ'))
      if (n <= DETAIL_LIMIT) for (const f of fingerTargets(p)) if (f !== s && peers.has(f)) parts.push(chord(p.peerId, f, 'finger'))
    }
  }
  const sel = selected && peers.get(selected)
  if (sel) {
    for (const s of sel.successors ?? []) if (peers.has(s) && s !== sel.peerId) parts.push(chord(sel.peerId, s, 'sel succ-sel'))
    for (const f of fingerTargets(sel)) if (peers.has(f)) parts.push(chord(sel.peerId, f, 'sel'))
  }
  links.innerHTML = parts.join('')
  $('detail-note').textContent = n > DETAIL_LIMIT
    ? (n > CHORD_LIMIT ? `${n} peers: links hidden; click a peer to see its links` : `${n} peers: only successor links; click a peer to see its fingers`)
    : ''

  const size = n > 500 ? 2 : n > 100 ? 3.5 : 6
  const present = new Set()
  for (const el of [...marks.children]) {
    const id = el.dataset.id
    if (peers.has(id)) { present.add(id); el.setAttribute('r', size); el.classList.toggle('selected', id === selected) }
    else if (!el.classList.contains('leaving')) {
      el.classList.add('leaving')
      setTimeout(() => el.remove(), 600)
    }
  }
  for (const id of peers.keys()) {
    if (present.has(id)) continue
    const [x, y] = position(id)
    const c = document.createElementNS(SVG_NS, 'circle')
    c.setAttribute('cx', x.toFixed(1))
    c.setAttribute('cy', y.toFixed(1))
    c.setAttribute('r', size)
    c.setAttribute('class', 'peer joined')
    c.dataset.id = id
    const title = document.createElementNS(SVG_NS, 'title')
    title.textContent = id
    c.append(title)
    marks.append(c)
  }
  showSelected()
}

function showSelected () {
  const p = selected && peers.get(selected)
  if (!p) { $('selected').innerHTML = '<dt>ID</dt><dd class="mono">–</dd>'; return }
  const fingers = Object.entries(p.fingers ?? {}).map(([row, f]) => `${row}: ${f ?? '(self)'}`).join('<br>')
  $('selected').innerHTML = `<dt>ID</dt><dd class="mono">${p.peerId}</dd>
    <dt>Predecessor</dt><dd class="mono">${p.predecessor ?? '–'}</dd>
    <dt>Successors</dt><dd class="mono">${(p.successors ?? []).join(', ') || '–'}</dd>
    <dt>Fingers</dt><dd class="mono small">${fingers || '–'}</dd>`
}

async function fetchNetwork () {
  const next = new Map()
  let after = null
  for (;;) {
    const r = await fetch(`/api/network?limit=1000${after ? `&after=${after}` : ''}`)
    const page = await r.json()
    for (const p of page.peers) next.set(p.peerId, p)
    if (!page.next) break
    after = page.next
  }
  return next
}

async function refresh () {
  refreshTimer = null
  if (!live) return
  try {
    const fetched = await fetchNetwork()
    if (!live) return   // a simulation was loaded while the request was in flight: keep it
    peers = fetched
    draw()
  } catch (error) {
    if (live) $('source').textContent = `live (network unavailable: ${error.message})`
  }
}

/** Join, leave and update events trigger one refetch at most every 300 ms (bursts are merged). */
function scheduleRefresh () {
  if (!refreshTimer) refreshTimer = setTimeout(refresh, 300)
}

async function refreshStats () {
  if (!live) return
  try {
    const s = await (await fetch('/api/stats')).json()
    if (!live) return
    $('c-peers').textContent = s.peersOnline
    $('c-joins').textContent = s.joins
    $('c-leaves').textContent = s.leaves
    $('c-relays').textContent = s.signalsRelayed
    $('c-arc-min').textContent = s.arcRatioMaxMin.toFixed(2)
    $('c-arc-mean').textContent = s.arcRatioMaxMean.toFixed(2)
    $('c-rows').textContent = s.fingerRows.join(', ')
  } catch {}
}

function connectEvents () {
  const events = new EventSource('/api/events')
  for (const name of ['join', 'leave', 'update']) {
    events.addEventListener(name, () => { if (live) { scheduleRefresh(); refreshStats() } })
  }
  // A loaded simulation stays on screen: the stream's state no longer shows once one is loaded.
  events.onerror = () => { if (live) $('source').textContent = 'live (reconnecting…)' }
  events.onopen = () => { if (live) { $('source').textContent = 'live'; scheduleRefresh() } }
  return events
}

function loadSimulation (report) {
  if (!Array.isArray(report?.network)) throw new Error('no "network" in this file: run browsercloud simulate --json with at most 10,000 peers')
  live = false
  peers = new Map(report.network.map((p) => [p.peerId, p]))
  selected = null
  $('source').textContent = `simulated: ${report.peers} peers, fingers ${report.fingers}, ${report.ids} IDs`
  const m = report.afterChurn ?? report.initial
  $('c-peers').textContent = m.peers
  $('c-joins').textContent = '–'
  $('c-leaves').textContent = '–'
  $('l-relays').textContent = 'Hops per lookup'
  $('c-relays').textContent = `mean ${m.hopsMean.toFixed(2)}, p99 ${m.hopsP99}`
  $('c-arc-min').textContent = m.arcMaxMin.toFixed(2)
  $('c-arc-mean').textContent = m.arcMaxMean.toFixed(2)
  $('c-rows').textContent = String(m.fingerRows)
  draw()
}

$('ring').addEventListener('mouseover', (e) => {
  const id = e.target?.dataset?.id
  if (id) $('hover').textContent = `peer ${id}`
})
$('ring').addEventListener('click', (e) => {
  const id = e.target?.dataset?.id
  selected = id && id !== selected ? id : null
  draw()
})
$('file').addEventListener('change', async () => {
  const file = $('file').files[0]
  if (!file) return
  try { loadSimulation(JSON.parse(await file.text())) } catch (error) { $('source').textContent = `cannot load ${file.name}: ${error.message}` }
})

window.visualizer = { loadSimulation, get peers () { return peers } }
connectEvents()
refresh()
refreshStats()
setInterval(refreshStats, 2000)
