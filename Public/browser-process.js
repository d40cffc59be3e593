// browser-process: the BrowserCloud job engine (docs/jobs.md is the protocol and the semantics).
//
//   import { participate } from '/browser-process.js'
//   const bp = await participate({ signalingURL: 'ws://host:9000' })   // offers this browser's CPU
//   bp.events.on('progress', ({ done, total }) => …)
//   const out = await bp.execute([0, 1, 2, 3], function (a) { return a + 1 }, 4)   // [1, 2, 3, 4]
//   bp.execute(data, task, nPeers, (err, results) => …)                           // thesis style
//   const { image, sha256, stats } = await bp.raytrace(scene, { tiles: 400, peers: 8 })
//
// A job is split into tasks; each task is a gridlet (the function's source, or a named kernel, plus
// one data partition). Peers are discovered through the overlay (availability queries routed to IDs
// spread around the ring), tasks go to them over the overlay and run in their Web Workers, and the
// results come back with a SHA-256 of their bytes. Scheduling lives in process/scheduler.js.

import { Explorer } from './webrtc-explorer.js'
import { Events } from './explorer/events.js'
import { Scheduler } from './process/scheduler.js'
import { WorkerPool } from './process/worker-pool.js'
import { prepareScene, tiles as tileGrid, blit } from './raytracer.js'

/** The `proto` field of every job message carried in overlay envelopes. */
export const PROTOCOL = 'bc-job/1'

const SPACE = 2 ** 48
const RUNTIMES = ['js', 'raytrace']
/** Jobs whose shared data a worker peer keeps. */
const SHARED_CACHE = 16
/** A peer that declines this many tasks in a row (busy, stopped) leaves the job. */
const MAX_DECLINES = 20

/** Defaults of the job options (execute, raytrace, run); every one can be overridden per job. */
export const JOB_DEFAULTS = Object.freeze({
  deadlineMs: 60000,        // a task running longer on a worker is stopped there ('deadline')
  maxAttempts: 3,           // deadline/crash endings before a task fails
  maxRetries: 10,           // copies lost in transit, corrupt or cancelled before a task fails
  maxCopies: 2,             // running copies of a task at most (speculative duplicates); 1 disables them
  speculateAfter: 1.5,      // a task is a straggler after this many median task times …
  speculateMinMs: 1000,     // … and at least this long
  prefetch: 2,              // tasks a peer holds beyond its workers, so that the next one is there when one ends
  maxInFlightPerPeer: 16,   // upper bound of tasks held by one peer (workers + prefetch otherwise)
  discoveryMs: 3000,        // how long discovery waits for availability answers
  probeIntervalMs: 1000,    // peers holding tasks are asked what they run this often
  probeMisses: 5            // unanswered probes in a row after which a peer is considered gone
})

export class JobError extends Error {
  constructor (message, { results, failures, stats }) {
    super(message)
    this.name = 'JobError'
    this.results = results
    this.failures = failures
    this.stats = stats
  }
}

export class BrowserProcess {
  /**
   * @param {object} config
   * @param {Explorer} [config.explorer] an existing peer; otherwise one is made from signalingURL/iceServers
   * @param {string} [config.signalingURL]
   * @param {RTCIceServer[]} [config.iceServers]
   * @param {number} [config.workers] Web Workers offered (default navigator.hardwareConcurrency; 0 offers none)
   * @param {number} [config.maxQueued] tasks accepted beyond the running ones (default max(4, workers))
   * @param {string[]} [config.runtimes] runtimes offered: 'js' (arbitrary functions) and/or 'raytrace'
   * @param {number} [config.maxDeadlineMs] a task asking for a longer deadline is run with this one (default 10 min)
   */
  constructor (config = {}) {
    const workers = config.workers ?? (globalThis.navigator?.hardwareConcurrency || 2)
    if (!Number.isInteger(workers) || workers < 0 || workers > 256) throw new Error('workers must be an integer in [0, 256]')
    const runtimes = config.runtimes ?? RUNTIMES
    for (const r of runtimes) if (!RUNTIMES.includes(r)) throw new Error(`unknown runtime '${r}' (known: ${RUNTIMES.join(', ')})`)
    this.config = { workers, maxQueued: config.maxQueued ?? Math.max(4, workers), runtimes, maxDeadlineMs: config.maxDeadlineMs ?? 600000 }
    this.explorer = config.explorer ?? new Explorer({
      signalingURL: config.signalingURL,
      iceServers: config.iceServers,
      capabilities: { runtimes, workers, transports: ['webrtc'] }
    })
    this.events = new Events()
    this.pool = null
    this.jobs = new Map()      // jobId → Job (jobs submitted here)
    this.shared = new Map()    // `${src}|${jobId}` → the job's shared data (kept for SHARED_CACHE jobs)
    this.queries = new Map()   // qid → answer handler
    this.counter = 0
    this.participating = false
    this.off = this.explorer.events.on('message', (envelope) => this.#onMessage(envelope))
  }

  get peerId () { return this.explorer.peerId }

  /** Joins the ring (if not yet) and starts answering availability queries and running tasks. */
  async participate () {
    if (!globalThis.crypto?.subtle) {
      throw new Error('BrowserCloud jobs need WebCrypto (SHA-256 of every result), which browsers offer only in a secure context: serve the page over https:// or open it as http://localhost')
    }
    await this.explorer.register()
    if (this.config.workers > 0 && (!this.pool || this.pool.stopped)) {
      // A Web Worker only ever runs tasks of one job: a task cannot tamper with another job's tasks.
      this.pool = new WorkerPool({ size: this.config.workers, maxQueued: this.config.maxQueued, affinity: (key) => `${key.src}|${key.jobId}` })
    }
    this.participating = true
    return this
  }

  /** Stops offering CPU; running tasks are stopped and jobs submitted here fail. Stays in the ring. */
  stop () {
    this.participating = false
    this.pool?.stop()
    this.shared.clear()
    for (const job of this.jobs.values()) job.cancel('stopped', 'the process was stopped')
  }

  /**
   * Maps `task` over the elements of `data` on `nPeers` peers and returns the results in order.
   * `task` is a function (or its source) run in Web Workers of other peers: it gets one element (or,
   * with `options.partition`, one whole partition) and returns a JSON value or a Promise of one.
   * Options: `tasks` (number of tasks, default min(data.length, 4 · nPeers)), `partition`, and the
   * JOB_DEFAULTS. With `done(err, results)` the Promise resolves to the results, or undefined on error.
   * Errors: JobError with `.results` (null where a task failed) and `.failures` [{ task, code, message }].
   */
  execute (data, task, nPeers = 1, done, options = {}) {
    if (typeof done === 'object' && done !== null) { options = done; done = undefined }
    const promise = (async () => {
      if (!Array.isArray(data)) throw new TypeError('data must be an array')
      const source = typeof task === 'function' ? task.toString() : task
      if (typeof source !== 'string') throw new TypeError('task must be a function or its source')
      if (options.tasks !== undefined && !(Number.isInteger(options.tasks) && options.tasks >= 1)) throw new TypeError('options.tasks must be a positive integer')
      if (data.length === 0) return []
      const count = Math.min(data.length, options.tasks ?? 4 * nPeers)
      const inputs = []
      for (let i = 0; i < count; i++) inputs.push(data.slice(Math.floor((i * data.length) / count), Math.floor(((i + 1) * data.length) / count)))
      const mode = options.partition ? 'partition' : 'map'
      // Element results in order; the elements of a failed task are null.
      const flatten = (results) => {
        if (mode === 'partition') return results
        const out = []
        results.forEach((part, i) => { for (let j = 0; j < inputs[i].length; j++) out.push(part ? part[j] : null) })
        return out
      }
      try {
        return flatten((await this.run({ ...options, runtime: 'js', shared: { source, mode }, inputs, nPeers })).results)
      } catch (error) {
        if (error instanceof JobError) error.results = flatten(error.results)
        throw error
      }
    })()
    if (!done) return promise
    return promise.then((r) => { done(null, r); return r }, (e) => { done(e, e.results); return undefined })
  }

  /**
   * Renders `scene` (docs/raytracer.md) as `tiles` tasks on `peers` peers. `onTile(tile, pixels)` sees
   * every tile as it arrives. Resolves with `{ image, width, height, sha256, stats }`; the image bytes
   * are the same whatever the tiling and whichever peers rendered which tiles.
   */
  async raytrace (scene, { tiles = 400, peers = 1, onTile, ...options } = {}) {
    const prepared = prepareScene(scene)
    const grid = tileGrid(prepared.width, prepared.height, tiles)
    const image = new Uint8ClampedArray(prepared.width * prepared.height * 4)
    const { stats } = await this.run({
      ...options,
      runtime: 'raytrace',
      shared: { scene },
      inputs: grid.map((tile) => ({ tile })),
      nPeers: peers,
      keepResults: false,
      onResult: (i, pixels) => { blit(image, prepared.width, grid[i], pixels); onTile?.(grid[i], pixels) }
    })
    return { image, width: prepared.width, height: prepared.height, sha256: await sha256Hex(image), stats }
  }

  /**
   * The general form: `{ runtime: 'js' | 'raytrace', shared, inputs: [...], nPeers,
   * onResult?(index, value), ...JOB_DEFAULTS }`. `shared` is the data every task of the job needs
   * (`{ source, mode }` for 'js', `{ scene }` for 'raytrace'); it goes to each peer once. Resolves
   * with `{ results, stats }`.
   */
  async run (spec) {
    if (!this.explorer.peerId) throw new Error('not in the ring: call participate() first')
    if (!RUNTIMES.includes(spec.runtime)) throw new Error(`unknown runtime '${spec.runtime}'`)
    if (!Number.isInteger(spec.nPeers) || spec.nPeers < 1) throw new Error('nPeers must be a positive integer')
    const given = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined))
    const job = new Job(this, { ...JOB_DEFAULTS, ...given }, `${this.peerId}-${(this.counter++).toString(36)}-${Math.floor(Math.random() * 2 ** 32).toString(36)}`)
    this.jobs.set(job.id, job)
    try {
      return await job.run()
    } finally {
      this.jobs.delete(job.id)
    }
  }

  /**
   * Finds up to `n` peers offering `runtime` through the overlay: availability queries go to `n`…64
   * IDs spread evenly around the ring from a random start; the peer responsible for each answers
   * with its free capacity and its successors, which are asked next until `n` are found or
   * `discoveryMs` passes. This peer comes first when it participates. Returns answers
   * `{ peerId, workers, free, runtimes }`, the most free first.
   */
  discover (n, runtime, { discoveryMs = JOB_DEFAULTS.discoveryMs, exclude = new Set() } = {}) {
    const me = this.peerId
    const found = new Map()
    if (this.participating && this.pool && this.config.runtimes.includes(runtime) && !exclude.has(me)) {
      found.set(me, { peerId: me, workers: this.config.workers, free: this.pool.free, runtimes: this.config.runtimes })
    }
    const eligible = () => [...found.values()].filter((a) => a.workers > 0 && a.runtimes.includes(runtime) && !exclude.has(a.peerId))
    const qid = `${me}-q${(this.counter++).toString(36)}`
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
        this.queries.delete(qid)
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
        this.#post(target, { kind: 'query', qid }).catch(() => { outstanding--; if (outstanding === 0) finish() })
      }
      this.queries.set(qid, (answer, src) => {
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

  // MARK: messages

  /** Sends a job message to the peer responsible for `dstId` (this peer: delivered locally). */
  async #post (dstId, body) {
    const data = { proto: PROTOCOL, ...body }
    if (dstId === this.peerId) {
      queueMicrotask(() => this.#onMessage({ srcId: this.peerId, dstId, data, hops: 0 }))
      return
    }
    await this.explorer.send(dstId, data)
  }

  #reply (dstId, body) { this.#post(dstId, body).catch(() => {}) }   // an answer whose submitter is gone is dropped

  #onMessage (envelope) {
    const m = envelope.data
    if (m === null || typeof m !== 'object' || m.proto !== PROTOCOL || typeof m.kind !== 'string') return
    const src = envelope.srcId
    const me = this.peerId
    switch (m.kind) {
      case 'query':
        this.#reply(src, {
          kind: 'available',
          qid: m.qid,
          peerId: me,
          workers: this.participating && this.pool ? this.config.workers : 0,
          free: this.participating && this.pool ? Math.max(0, this.pool.free) : 0,
          runtimes: this.config.runtimes,
          successors: this.explorer.successors
        })
        return
      case 'available':
        this.queries.get(m.qid)?.(m, src)
        return
      case 'task':
      case 'probe':
        // Addressed to a peer that is not here (it left, and this peer now answers for its IDs).
        if (envelope.dstId !== me) { this.#reply(src, { kind: 'gone', jobId: m.jobId, peerId: envelope.dstId }); return }
        if (m.kind === 'task') this.#runTask(src, m).catch((error) => this.events.emit('error', { code: 'job', message: `a task from ${src}: ${error.message}` }))
        else this.#reply(src, { kind: 'probe-reply', jobId: m.jobId, taskIds: this.#tasksOf(src, m.jobId) })
        return
      case 'cancel':
        this.pool?.cancel((key) => key.src === src && key.jobId === m.jobId && (!Array.isArray(m.taskIds) || m.taskIds.includes(key.taskId)))
        return
      case 'result':
      case 'gone':
      case 'probe-reply':
        this.jobs.get(m.jobId)?.onMessage(src, m)
    }
  }

  #tasksOf (src, jobId) {
    return (this.pool?.keys() ?? []).filter((k) => k.src === src && k.jobId === jobId).map((k) => k.taskId)
  }

  async #runTask (src, m) {
    const { jobId, taskId, attempt } = m
    const reply = (result) => this.#reply(src, { kind: 'result', jobId, taskId, attempt, ...result })
    if (typeof jobId !== 'string' || !Number.isInteger(taskId) || !Number.isInteger(attempt) || typeof m.runtime !== 'string') return
    if (!this.participating || !this.pool || this.pool.stopped) { reply({ ok: false, error: { code: 'stopped', message: 'this peer does not offer its CPU' } }); return }
    if (!this.config.runtimes.includes(m.runtime)) {
      reply({ ok: false, error: { code: 'unsupported', message: `this peer does not offer the '${m.runtime.slice(0, 32)}' runtime` } })
      return
    }
    // The job's shared data comes with the first task to this peer and is kept (SHARED_CACHE jobs).
    const sharedKey = `${src}|${jobId}`
    if (m.shared !== undefined) {
      this.shared.delete(sharedKey)
      this.shared.set(sharedKey, m.shared)
      if (this.shared.size > SHARED_CACHE) this.shared.delete(this.shared.keys().next().value)
    }
    const shared = this.shared.get(sharedKey)
    if (shared === undefined) { reply({ ok: false, error: { code: 'need-shared', message: "this peer does not hold the job's shared data" } }); return }
    const deadlineMs = Math.min(Number.isFinite(m.deadlineMs) && m.deadlineMs > 0 ? m.deadlineMs : JOB_DEFAULTS.deadlineMs, this.config.maxDeadlineMs)
    const message = { runtime: m.runtime, jobId: sharedKey, shared, input: m.input }
    const result = await this.pool.run({ src, jobId, taskId }, message, deadlineMs)
    this.events.emit('task-run', { from: src, jobId, taskId, ok: result.ok, code: result.error?.code, message: result.error?.message, ms: Math.round(result.ms) })
    if (result.error?.code === 'cancelled') return
    const { id, ...rest } = result
    reply({ ...rest, ms: Math.round(result.ms) })
  }

  /** Sends a job message (used by Job). */
  post (dstId, body) { return this.#post(dstId, body) }
}

/** One job submitted from this peer: discovery, dispatch, probes, deadlines and assembly. */
class Job {
  constructor (process, spec, id) {
    this.process = process
    this.spec = spec
    this.id = id
    this.results = spec.keepResults === false ? null : new Array(spec.inputs.length).fill(null)
    this.wins = new Map()        // peerId → tasks won (kept when a peer leaves)
    this.probes = new Map()      // peerId → { sentAt, misses }
    this.gone = new Set()
    this.sharedSent = new Set()  // peers that got the job's shared data
    this.declines = new Map()    // peerId → tasks declined in a row
    this.peersLost = 0
    this.lastDiscovery = 0
    this.discovering = false
    this.settled = false
    this.scheduler = new Scheduler({
      taskCount: spec.inputs.length,
      // The worker stops a task at deadlineMs from its start; before that it may wait behind others.
      deadlineMs: 2 * spec.deadlineMs + 2000,
      maxAttempts: spec.maxAttempts,
      maxCopies: spec.maxCopies,
      maxRetries: spec.maxRetries,
      speculateAfter: spec.speculateAfter,
      speculateMinMs: spec.speculateMinMs
    })
  }

  async run () {
    this.started = performance.now()
    const promise = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject })
    if (this.spec.inputs.length === 0) this.#finish()
    else {
      const found = await this.process.discover(this.spec.nPeers, this.spec.runtime, { discoveryMs: this.spec.discoveryMs })
      this.discoveryMs = Math.round(performance.now() - this.started)
      if (found.length === 0) {
        this.cancel('unsupported', `no peer offers the '${this.spec.runtime}' runtime (discovery waited ${this.spec.discoveryMs} ms)`)
      } else {
        for (const a of found) this.#addPeer(a)
        this.timer = setInterval(() => this.#tick(), Math.min(250, this.spec.probeIntervalMs))
        this.#pump()
      }
    }
    return promise
  }

  /** Fails every unfinished task and ends the job. */
  cancel (code, message) {
    if (this.settled) return
    this.#cancelEverywhere()
    this.scheduler.abort(code, message)
    this.#finish()
  }

  onMessage (src, m) {
    if (this.settled) return
    const now = performance.now()
    if (m.kind === 'gone') {
      // Only the peer now responsible for the ID says so; a peer never reports itself or this peer gone.
      if (typeof m.peerId === 'string' && m.peerId !== src && m.peerId !== this.process.peerId) this.#lose(m.peerId, 'gone')
    } else if (m.kind === 'probe-reply') {
      const probe = this.probes.get(src)
      if (!probe || !Array.isArray(m.taskIds)) return
      probe.misses = 0
      // Tasks sent well before this probe that the peer does not hold were lost on the way.
      for (const taskId of this.scheduler.runningOn(src, probe.sentAt - this.spec.probeIntervalMs)) {
        if (!m.taskIds.includes(taskId)) this.scheduler.fail(taskId, src, 'lost', 'the peer does not hold the task', now)
      }
    } else if (m.kind === 'result' && Number.isInteger(m.taskId) && m.taskId >= 0 && m.taskId < this.scheduler.taskCount) {
      this.#onResult(src, m).catch((error) => this.process.events.emit('error', { code: 'job', message: error.message }))
      return
    }
    this.#pump()
  }

  async #onResult (src, m) {
    const { taskId } = m
    if (!m.ok) {
      const code = typeof m.error?.code === 'string' ? m.error.code : 'threw'
      const message = String(m.error?.message ?? 'unknown error').slice(0, 1000)
      if (code === 'need-shared') this.sharedSent.delete(src)
      if (code === 'busy' || code === 'stopped') {
        const n = (this.declines.get(src) ?? 0) + 1
        this.declines.set(src, n)
        if (n >= MAX_DECLINES) { this.#lose(src, 'declining'); this.#pump(); return }
      }
      const { failed, cancel } = this.scheduler.fail(taskId, src, code, message, performance.now())
      if (failed) {
        this.#cancelCopies(taskId, cancel)
        this.process.events.emit('task-error', { jobId: this.id, taskId, peerId: src, code, message })
      }
      this.#pump()
      return
    }
    let value
    let sha
    try {
      ;[value, sha] = await decode(m)
    } catch (error) {
      this.scheduler.fail(taskId, src, 'corrupt', error.message, performance.now())
      this.#pump()
      return
    }
    if (this.settled) return
    if (sha !== m.sha256) {
      this.scheduler.fail(taskId, src, 'corrupt', 'the SHA-256 of the result does not match its bytes', performance.now())
      this.#pump()
      return
    }
    this.declines.delete(src)
    const { winner, mismatch, cancel } = this.scheduler.complete(taskId, src, sha, performance.now())
    if (mismatch) this.process.events.emit('error', { code: 'result-mismatch', message: `task ${taskId}: copies from different peers differ` })
    if (winner) {
      this.wins.set(src, (this.wins.get(src) ?? 0) + 1)
      if (this.results) this.results[taskId] = value
      this.spec.onResult?.(taskId, value)
      this.#cancelCopies(taskId, cancel)
      const total = this.scheduler.taskCount
      this.process.events.emit('progress', { jobId: this.id, done: total - this.scheduler.remaining, total, peerId: src })
    }
    this.#pump()
  }

  #addPeer (answer) {
    const limit = Math.min(this.spec.maxInFlightPerPeer, (answer.workers | 0) + this.spec.prefetch)
    this.scheduler.addPeer(answer.peerId, limit)
    if (answer.peerId !== this.process.peerId) this.probes.set(answer.peerId, { sentAt: 0, misses: 0 })
  }

  #lose (peerId, why) {
    if (!this.scheduler.peers.has(peerId)) return
    this.gone.add(peerId)
    this.sharedSent.delete(peerId)
    this.declines.delete(peerId)
    this.probes.delete(peerId)
    this.peersLost++
    this.scheduler.removePeer(peerId)
    this.process.events.emit('peer-lost', { jobId: this.id, peerId, reason: why })
  }

  #pump () {
    if (this.settled) return
    if (!this.process.peerId) { this.cancel('stopped', 'this peer left the ring'); return }
    const now = performance.now()
    for (const { taskId, peerId, attempt } of this.scheduler.assign(now)) {
      const task = { kind: 'task', jobId: this.id, taskId, attempt, runtime: this.spec.runtime, input: this.spec.inputs[taskId], deadlineMs: this.spec.deadlineMs }
      if (!this.sharedSent.has(peerId)) { task.shared = this.spec.shared; this.sharedSent.add(peerId) }
      this.process.post(peerId, task).catch((error) => {
        this.sharedSent.delete(peerId)
        this.scheduler.fail(taskId, peerId, 'lost', error.message, performance.now())
      })
    }
    if (this.scheduler.finished) this.#finish()
  }

  #tick () {
    if (this.settled) return
    const now = performance.now()
    for (const { taskId, peerId, failed, cancel } of this.scheduler.expired(now)) {
      if (failed) {
        this.#cancelCopies(taskId, cancel)
        this.process.events.emit('task-error', { jobId: this.id, taskId, peerId, code: 'deadline', message: 'no result before the deadline' })
      }
    }
    for (const [peerId, probe] of this.probes) {
      if (now - probe.sentAt < this.spec.probeIntervalMs || this.scheduler.runningOn(peerId).length === 0) continue
      if (probe.sentAt > 0 && ++probe.misses >= this.spec.probeMisses) { this.#lose(peerId, 'unreachable'); continue }
      probe.sentAt = now
      this.process.post(peerId, { kind: 'probe', jobId: this.id }).catch(() => {})
    }
    this.#maybeRediscover(now)
    this.#pump()
  }

  /** Peers were lost and tasks wait: look for replacements through the overlay. */
  #maybeRediscover (now) {
    const active = this.scheduler.peers.size
    if (this.discovering || active >= this.spec.nPeers || this.scheduler.pending === 0 || now - this.lastDiscovery < 2000) return
    this.discovering = true
    this.lastDiscovery = now
    // Peers reported gone may be found again: a peer that answers discovery is alive.
    const exclude = new Set(this.scheduler.peers.keys())
    this.process.discover(this.spec.nPeers - active, this.spec.runtime, { discoveryMs: this.spec.discoveryMs, exclude }).then((found) => {
      this.discovering = false
      if (this.settled) return
      for (const a of found) this.#addPeer(a)
      if (this.scheduler.peers.size === 0) this.cancel('no-peers', 'every peer of the job left and discovery found no other')
      else this.#pump()
    })
  }

  #cancelCopies (taskId, peers) {
    for (const peerId of peers) this.process.post(peerId, { kind: 'cancel', jobId: this.id, taskIds: [taskId] }).catch(() => {})
  }

  #cancelEverywhere () {
    for (const peerId of this.scheduler.peers.keys()) {
      if (this.scheduler.runningOn(peerId).length > 0) this.process.post(peerId, { kind: 'cancel', jobId: this.id }).catch(() => {})
    }
  }

  #finish () {
    if (this.settled) return
    this.settled = true
    clearInterval(this.timer)
    this.#cancelEverywhere()
    const s = this.scheduler
    const stats = {
      jobId: this.id,
      tasks: s.taskCount,
      peers: [...new Set([...s.peers.keys(), ...this.gone])],
      makespanMs: Math.round(performance.now() - this.started),
      discoveryMs: this.discoveryMs,
      tasksPerPeer: Object.fromEntries(this.wins),
      peersLost: this.peersLost,
      ...s.counts
    }
    this.process.events.emit('job-done', stats)
    const failures = [...s.errors].map(([task, e]) => ({ task, ...e }))
    if (failures.length === 0) { this.resolve({ results: this.results, stats }); return }
    const first = failures[0]
    const message = failures.length === s.taskCount && first.code !== 'threw'
      ? `job failed: ${first.message}`
      : `${failures.length} of ${s.taskCount} tasks failed; task ${first.task}: ${first.code}: ${first.message}`
    this.reject(new JobError(message, { results: this.results, failures, stats }))
  }
}

/** Decodes a result payload; returns [value, hex SHA-256 of its bytes]. */
async function decode (m) {
  if (m.encoding === 'base64' && typeof m.payload === 'string') {
    const text = atob(m.payload)
    const bytes = new Uint8Array(text.length)
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i)
    return [bytes, await sha256Hex(bytes)]
  }
  if (m.encoding === 'json' && typeof m.payload === 'string') {
    return [JSON.parse(m.payload), await sha256Hex(new TextEncoder().encode(m.payload))]
  }
  throw new Error('a result must carry a base64 or json payload')
}

/** Hex SHA-256 (WebCrypto). */
export async function sha256Hex (bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Makes a BrowserProcess and participates (thesis API: `participate(config)`). */
export async function participate (config = {}) {
  return new BrowserProcess(config).participate()
}
