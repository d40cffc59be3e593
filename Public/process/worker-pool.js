// A pool of Web Workers that run tasks off the page's main thread (docs/jobs.md).
//
// Every task gets a deadline: a worker still busy at its deadline is terminated and replaced, and the
// task ends with `{ ok: false, error: { code: 'deadline' } }`. A task whose code throws ends with code
// 'threw'; a worker that dies (uncaught error, out of memory) is replaced and its task ends with
// 'crashed'. `run` never rejects: it always resolves with a result object.

const WORKER_URL = new URL('./task-worker.js', import.meta.url)

export class WorkerPool {
  /**
   * @param {object} o
   * @param {number} o.size number of workers (at least 1)
   * @param {number} o.maxQueued tasks that may wait for a worker; beyond that `run` refuses with 'busy'
   * @param {(key) => string} [o.affinity] a worker runs tasks of one affinity only: before a task of
   *   another one, it is replaced by a fresh worker (the engine uses the job, so jobs cannot see each other)
   */
  constructor ({ size, maxQueued, affinity = () => '' }) {
    this.size = Math.max(1, size | 0)
    this.maxQueued = Math.max(0, maxQueued | 0)
    this.affinity = affinity
    this.slots = Array.from({ length: this.size }, () => ({ worker: null, entry: null, affinity: null }))
    this.queue = []
    this.counter = 0
    this.stopped = false
  }

  /** Tasks queued or running. */
  get load () { return this.queue.length + this.slots.filter((s) => s.entry).length }
  /** How many more tasks the pool accepts now. */
  get free () { return this.size + this.maxQueued - this.load }

  /**
   * Runs `message` (see task-worker.js) within `deadlineMs` of its start. `key` names the task for
   * `cancel` and `keys`. Resolves with `{ ok, ... }` (see task-worker.js) or an error result.
   */
  run (key, message, deadlineMs) {
    if (this.stopped) return Promise.resolve({ ok: false, error: { code: 'stopped', message: 'the worker pool is stopped' } })
    if (this.free <= 0) return Promise.resolve({ ok: false, error: { code: 'busy', message: 'every worker is busy and the queue is full' } })
    return new Promise((resolve) => {
      this.queue.push({ key, message, deadlineMs, resolve, id: ++this.counter, timer: null })
      this.#pump()
    })
  }

  /** Keys of the tasks queued or running. */
  keys () { return [...this.queue.map((e) => e.key), ...this.slots.filter((s) => s.entry).map((s) => s.entry.key)] }

  /** Drops queued tasks and stops running ones whose key matches; they resolve with code 'cancelled'. */
  cancel (matches) {
    const cancelled = { ok: false, error: { code: 'cancelled', message: 'cancelled by the job' } }
    this.queue = this.queue.filter((e) => { if (!matches(e.key)) return true; e.resolve(cancelled); return false })
    for (const slot of this.slots) {
      if (slot.entry && matches(slot.entry.key)) this.#finish(slot, cancelled, true)
    }
    this.#pump()
  }

  /** Terminates every worker; queued and running tasks resolve with code 'stopped'. */
  stop () {
    this.stopped = true
    const stopped = { ok: false, error: { code: 'stopped', message: 'the worker pool is stopped' } }
    for (const e of this.queue) e.resolve(stopped)
    this.queue = []
    for (const slot of this.slots) {
      if (slot.entry) this.#finish(slot, stopped, true)
      slot.worker?.terminate()
      slot.worker = null
    }
  }

  #pump () {
    for (const slot of this.slots) {
      if (this.queue.length === 0 || this.stopped) return
      if (slot.entry) continue
      const entry = this.queue.shift()
      slot.entry = entry
      const affinity = this.affinity(entry.key)
      if (slot.worker && slot.affinity !== affinity) { slot.worker.terminate(); slot.worker = null }
      slot.affinity = affinity
      if (!slot.worker) slot.worker = this.#spawn(slot)
      entry.started = performance.now()
      entry.timer = setTimeout(() => {
        this.#finish(slot, { ok: false, error: { code: 'deadline', message: `the task ran past its deadline of ${entry.deadlineMs} ms; its worker was terminated` } }, true)
        this.#pump()
      }, entry.deadlineMs)
      slot.worker.postMessage({ ...entry.message, id: entry.id })
    }
  }

  #spawn (slot) {
    const worker = new Worker(WORKER_URL, { type: 'module', name: 'browsercloud-task' })
    worker.onmessage = (e) => {
      if (slot.worker !== worker || !slot.entry || e.data?.id !== slot.entry.id) return
      this.#finish(slot, e.data, false)
      this.#pump()
    }
    worker.onerror = (e) => {
      e.preventDefault?.()
      if (slot.worker !== worker) return
      if (slot.entry) this.#finish(slot, { ok: false, error: { code: 'crashed', message: `the worker died: ${e.message ?? 'unknown error'}` } }, true)
      else { worker.terminate(); slot.worker = null }
      this.#pump()
    }
    return worker
  }

  /** Ends the slot's task with `result`; `replace` terminates its worker (a fresh one starts on demand). */
  #finish (slot, result, replace) {
    const entry = slot.entry
    slot.entry = null
    clearTimeout(entry.timer)
    if (replace) { slot.worker?.terminate(); slot.worker = null }
    entry.resolve({ ...result, ms: result.ms ?? performance.now() - entry.started })
  }
}
