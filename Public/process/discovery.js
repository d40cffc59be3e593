// Discovery (docs/jobs.md, "Discovery"): availability queries through the overlay, not the server.

import { JOB_DEFAULTS } from './job-protocol.js'

const SPACE = 2 ** 48

/**
 * Finds up to `n` peers offering `runtime` through the overlay: availability queries go to `n`…64
 * IDs spread evenly around the ring from a random start; the peer responsible for each answers
 * with its free capacity and its successors, which are asked next until `n` are found or
 * `discoveryMs` passes. This peer comes first when it participates. Returns answers
 * `{ peerId, workers, free, runtimes }`, the most free first.
 *
 * `me`: this peer's ID; `self`: this peer's own answer when it offers its CPU (else null); `post(dst,
 * body)`: sends a job message (a Promise); `queries`: the engine's map qid → answer handler, which
 * routes `available` answers here; `nextId()`: a fresh suffix for the query ID.
 */
export function discover ({ me, self, post, queries, nextId }, n, runtime, { discoveryMs = JOB_DEFAULTS.discoveryMs, exclude = new Set() } = {}) {
  const found = new Map()
  if (self && self.runtimes.includes(runtime) && !exclude.has(me)) found.set(me, self)
  const eligible = () => [...found.values()].filter((a) => a.workers > 0 && a.runtimes.includes(runtime) && !exclude.has(a.peerId))
  const qid = `${me}-q${nextId()}`
  const asked = new Set()
  const answered = new Set()
  const k = Math.min(64, Math.max(n, 4))
  const maxQueries = 2 * k + 2 * n   // the k spread queries plus successors asked, at most
  let outstanding = 0
  return new Promise((resolve) => {
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      queries.delete(qid)
      const list = eligible()
      const self = list.filter((a) => a.peerId === me)
      const others = list.filter((a) => a.peerId !== me).sort((a, b) => b.free - a.free)
      resolve([...self, ...others].slice(0, n))
    }
    const timer = setTimeout(finish, discoveryMs)
    const ask = (target) => {
      if (asked.has(target) || asked.size >= maxQueries) return
      asked.add(target)
      outstanding++
      post(target, { kind: 'query', qid }).catch(() => { outstanding--; if (outstanding === 0) finish() })
    }
    queries.set(qid, (answer, src) => {
      if (answered.has(src)) return   // one answer per peer
      answered.add(src)
      outstanding--
      if (answer.peerId === src && Array.isArray(answer.runtimes)) found.set(src, answer)
      if (eligible().length < n && Array.isArray(answer.successors)) {
        for (const s of answer.successors.slice(0, 16)) if (typeof s === 'string' && /^[0-9a-f]{12}$/.test(s) && !found.has(s) && s !== me) ask(s)
      }
      if (eligible().length >= n || outstanding <= 0) finish()
    })
    const base = Math.floor(Math.random() * SPACE)
    if (eligible().length >= n) { finish(); return }
    for (let i = 0; i < k; i++) ask(((base + Math.floor((i * SPACE) / k)) % SPACE).toString(16).padStart(12, '0'))
  })
}

