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
import { WorkerPool } from './process/worker-pool.js'
import { Job } from './process/job.js'
import { discover } from './process/discovery.js'
import { PROTOCOL, RUNTIMES, JOB_DEFAULTS, JOB_ERRORS, VERIFY_MODES, JobError, sha256Hex } from './process/job-protocol.js'
import { Reputation } from './process/quorum.js'
import { prepareScene, tiles as tileGrid, blit } from './raytracer.js'
import { prepareSha256 } from './explorer/sha256.js'
import { WasmModules } from './process/wasm-modules.js'
import { WASM_LIMITS } from './process/wasm-module.js'
import { wasmJob, tileInput, RAYTRACER_WASM_URL } from './process/wasm-job.js'

export { PROTOCOL, JOB_DEFAULTS, JOB_ERRORS, JobError, sha256Hex, WASM_LIMITS }

/** Jobs whose shared data a worker peer keeps. */
const SHARED_CACHE = 16

export class BrowserProcess {
  /** The peers whose results the jobs submitted here verified (verify: 'quorum'), across jobs (docs/jobs.md, "Reputation"). */
  reputation = new Reputation()

  /**
   * @param {object} config
   * @param {Explorer} [config.explorer] an existing peer; otherwise one is made from signalingURL/iceServers
   * @param {string|string[]} [config.signalingURL] one URL, or a cluster's list (webrtc-explorer.js)
   * @param {RTCIceServer[]} [config.iceServers]
   * @param {number} [config.workers] Web Workers offered (default navigator.hardwareConcurrency; 0 offers none)
   * @param {number} [config.maxQueued] tasks accepted beyond the running ones (default max(4, workers))
   * @param {string[]} [config.runtimes] runtimes offered: 'js' (arbitrary functions) and/or 'raytrace'
   * @param {number} [config.maxDeadlineMs] a task asking for a longer deadline is run with this one (default 10 min)
   * @param {number} [config.wasmMaxModuleBytes] the `wasm` runtime's limits (WASM_LIMITS: 8 MiB; also
   *   `wasmMaxMemoryPages`, 256 pages of 64 KiB, and `wasmMaxOutputBytes`, 16 MiB), for tasks run here
   *   and for modules submitted from here
   */
  constructor (config = {}) {
    const workers = config.workers ?? (globalThis.navigator?.hardwareConcurrency || 2)
    if (!Number.isInteger(workers) || workers < 0 || workers > 256) throw new Error('workers must be an integer in [0, 256]')
    const runtimes = config.runtimes ?? RUNTIMES
    for (const r of runtimes) if (!RUNTIMES.includes(r)) throw new Error(`unknown runtime '${r}' (known: ${RUNTIMES.join(', ')})`)
    const wasmLimits = Object.fromEntries(Object.keys(WASM_LIMITS).map((k) => [k, config[k] ?? WASM_LIMITS[k]]))
    this.config = { workers, maxQueued: config.maxQueued ?? Math.max(4, workers), runtimes, maxDeadlineMs: config.maxDeadlineMs ?? 600000, wasmLimits }
    this.modules = new WasmModules({ limits: wasmLimits })   // compiled wasm task modules by SHA-256
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
    this.preparing = new Set() // keys { src, jobId, taskId, cancelled } of wasm tasks whose module is being compiled
    this.counter = 0
    this.participating = false
    this.off = this.explorer.events.on('message', (envelope) => this.#onMessage(envelope))
  }

  get peerId () { return this.explorer.peerId }

  /** Joins the ring (if not yet) and starts answering availability queries and running tasks. */
  async participate () {
    // SHA-256 of every result: WebCrypto, or (a page that is not a secure context, such as
    // http://<lan-address>:9000) CryptoJS served by the server; fails here, early, when it cannot be had.
    await prepareSha256()
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
    this.modules.clear()
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
   * are the same whatever the tiling and whichever peers rendered which tiles. `runtime: 'wasm'` renders
   * with the ray tracer module (`module`: its bytes or URL, default /wasm/raytracer.wasm, which `make wasm`
   * builds) on the peers offering 'wasm': the job's shared bytes are the scene's JSON text (`scene` may be
   * that text), each tile's input its x, y, width, height (u32 little-endian).
   */
  async raytrace (scene, { tiles = 400, peers = 1, onTile, runtime = 'raytrace', module = RAYTRACER_WASM_URL, ...options } = {}) {
    const text = typeof scene === 'string' ? scene : JSON.stringify(scene)
    const prepared = prepareScene(typeof scene === 'string' ? JSON.parse(scene) : scene)
    const grid = tileGrid(prepared.width, prepared.height, tiles)
    const image = new Uint8ClampedArray(prepared.width * prepared.height * 4)
    if (runtime !== 'raytrace' && runtime !== 'wasm') throw new Error(`raytrace runs on the 'raytrace' or 'wasm' runtime, not '${runtime}'`)
    const job = runtime === 'wasm'
      ? { runtime, module, shared: new TextEncoder().encode(text), inputs: grid.map(tileInput) }
      : { runtime, shared: { scene }, inputs: grid.map((tile) => ({ tile })) }
    const { stats } = await this.run({
      ...options,
      ...job,
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
   * WebAssembly: `{ runtime: 'wasm', module, shared?, inputs, peers (or nPeers), ... }` with `module`
   * the module's bytes (Uint8Array, ArrayBuffer) or URL, `shared` the job's bytes (Uint8Array) and
   * `inputs` one Uint8Array per task; `results` are the tasks' output bytes (Uint8Array), in order.
   * The module goes only to peers that do not hold it already (docs/jobs.md, "Module caching").
   */
  async run (spec) {
    if (!this.explorer.peerId) throw new Error('not in the ring: call participate() first')
    if (spec.runtime === 'wasm' && spec.module !== undefined) {
      const { module, peers, ...rest } = spec
      const parts = await wasmJob({ module, shared: spec.shared, inputs: spec.inputs }, this.config.wasmLimits)
      return this.run({ ...rest, ...parts, nPeers: spec.nPeers ?? peers ?? 1 })
    }
    if (!RUNTIMES.includes(spec.runtime)) throw new Error(`unknown runtime '${spec.runtime}'`)
    if (!Number.isInteger(spec.nPeers) || spec.nPeers < 1) throw new Error('nPeers must be a positive integer')
    if (spec.verify !== undefined && !VERIFY_MODES.includes(spec.verify)) throw new Error(`verify must be one of ${VERIFY_MODES.map((v) => `'${v}'`).join(', ')}`)
    if (spec.seed !== undefined && !(Number.isSafeInteger(spec.seed) && spec.seed >= 0)) throw new Error('seed must be an integer in [0, 2^53)')
    if (spec.maxReplicas !== undefined && !(Number.isInteger(spec.maxReplicas) && spec.maxReplicas >= 2)) throw new Error('maxReplicas must be an integer of at least 2')
    const given = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined))
    const job = new Job(this.#jobHost, { ...JOB_DEFAULTS, ...given }, `${this.peerId}-${(this.counter++).toString(36)}-${Math.floor(Math.random() * 2 ** 32).toString(36)}`)
    this.jobs.set(job.id, job)
    try {
      return await job.run()
    } finally {
      this.jobs.delete(job.id)
    }
  }

  /**
   * Finds up to `n` peers offering `runtime` through the overlay (process/discovery.js): this peer
   * first when it participates, then the others, the most free first. Returns answers
   * `{ peerId, workers, free, runtimes }`.
   */
  discover (n, runtime, options = {}) {
    const self = this.participating && this.pool
      ? { peerId: this.peerId, workers: this.config.workers, free: this.pool.free, runtimes: this.config.runtimes }
      : null
    return discover({ me: this.peerId, self, post: (dst, body) => this.#post(dst, body), queries: this.queries, nextId: () => (this.counter++).toString(36) }, n, runtime, options)
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

  /** An answer to another peer; one whose submitter is gone is reported as `undelivered`, not dropped silently. */
  #reply (dstId, body) {
    this.#post(dstId, body).catch((error) => {
      this.events.emit('undelivered', { code: JOB_ERRORS.UNDELIVERED, peerId: dstId, kind: body.kind, jobId: body.jobId, message: error.message })
    })
  }

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
      case 'cancel': {
        const matches = (key) => key.src === src && key.jobId === m.jobId && (!Array.isArray(m.taskIds) || m.taskIds.includes(key.taskId))
        for (const key of this.preparing) if (matches(key)) key.cancelled = true
        this.pool?.cancel(matches)
        return
      }
      case 'result':
      case 'gone':
      case 'probe-reply':
        this.jobs.get(m.jobId)?.onMessage(src, m)
    }
  }

  #tasksOf (src, jobId) {
    return [...this.preparing, ...(this.pool?.keys() ?? [])].filter((k) => k.src === src && k.jobId === jobId).map((k) => k.taskId)
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
      // A wasm module's bytes are not kept with the shared data: the compiled module is (this.modules).
      const wasm = m.runtime === 'wasm' && m.shared !== null && typeof m.shared === 'object'
      this.shared.set(sharedKey, wasm ? { module: m.shared.module, data: m.shared.data } : m.shared)
      if (this.shared.size > SHARED_CACHE) this.shared.delete(this.shared.keys().next().value)
    }
    const shared = this.shared.get(sharedKey)
    if (shared === undefined) { reply({ ok: false, error: { code: 'need-shared', message: "this peer does not hold the job's shared data" } }); return }
    const deadlineMs = Math.min(Number.isFinite(m.deadlineMs) && m.deadlineMs > 0 ? m.deadlineMs : JOB_DEFAULTS.deadlineMs, this.config.maxDeadlineMs)
    const message = { runtime: m.runtime, jobId: sharedKey, shared, input: m.input }
    if (m.runtime === 'wasm') {
      // The compiled module, from this peer's cache or from the bytes the submitter sent after `need-module`.
      // Held while it compiles: probes see the task, and a cancel stops it before it runs.
      const key = { src, jobId, taskId, cancelled: false }
      this.preparing.add(key)
      const { module, error } = await this.modules.resolve({ ...shared, moduleBase64: m.shared?.moduleBase64 }).finally(() => this.preparing.delete(key))
      if (key.cancelled) return
      if (error) { reply({ ok: false, error }); return }
      Object.assign(message, { module, limits: this.config.wasmLimits })
    }
    const result = await this.pool.run({ src, jobId, taskId }, message, deadlineMs)
    this.events.emit('task-run', { from: src, jobId, taskId, ok: result.ok, code: result.error?.code, message: result.error?.message, ms: Math.round(result.ms) })
    if (result.error?.code === 'cancelled') return
    const { id, ...rest } = result
    reply({ ...rest, ms: Math.round(result.ms) })
  }

  /** What a Job needs of the engine (process/job.js). */
  #jobHost = {
    peerId: () => this.peerId,
    post: (dstId, body) => this.#post(dstId, body),
    discover: (n, runtime, options) => this.discover(n, runtime, options),
    emit: (name, payload) => this.events.emit(name, payload),
    reputation: this.reputation
  }
}

/** Makes a BrowserProcess and participates (thesis API: `participate(config)`). */
export async function participate (config = {}) {
  return new BrowserProcess(config).participate()
}
