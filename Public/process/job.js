// The submitter's side of one job (docs/jobs.md, "Scheduling"): discovery, dispatch, probes,
// deadlines and assembly, driving the pure scheduler (scheduler.js). It reaches the engine only through
// the `host` it is given.

import { Scheduler } from './scheduler.js'
import { Reputation } from './quorum.js'
import { JobError, JOB_ERRORS, sha256Hex } from './job-protocol.js'

/** A peer that declines this many tasks in a row (busy, stopped) leaves the job. */
const MAX_DECLINES = 20

/** One job submitted from this peer: discovery, dispatch, probes, deadlines and assembly. */
export class Job {
  /**
   * @param {object} host what the job needs of the engine: `peerId()` (this peer's ID, null once it
   *   left the ring), `post(dst, body)` (a Promise), `discover(n, runtime, options)`, `emit(name, payload)`
   *   and `reputation` (the engine's Reputation, kept across its jobs; verify: 'quorum' updates it)
   * @param {object} spec the job (BrowserProcess.run's spec with the JOB_DEFAULTS filled in)
   * @param {string} id
   */
  constructor (host, spec, id) {
    this.host = host
    this.spec = spec
    this.id = id
    this.results = spec.keepResults === false ? null : new Array(spec.inputs.length).fill(null)
    this.wins = new Map()        // peerId → tasks won (kept when a peer leaves)
    this.probes = new Map()      // peerId → { sentAt, misses }
    this.gone = new Set()
    this.sharedSent = new Set()  // peers that got the job's shared data
    // wasm jobs (docs/jobs.md, "Module caching"): the module's bytes go only to a peer that answered
    // `need-module`, with its next task; `sends` numbers the tasks sent, so that a `need-module` for a
    // task sent before the module is not taken for a peer that lost it.
    this.sends = 0
    this.sentSeq = new Map()     // `${peerId}|${taskId}` → number of the latest send of the task to the peer
    this.needsModule = new Set() // peers to send the module to with the next task
    this.moduleSeq = new Map()   // peerId → number of the send that carried the module
    this.modulesSentTo = new Map() // peerId → tasks sent to it with the module's bytes (stats.modulesSentTo)
    this.resent = new Set()      // `${peerId}|${taskId}` sent again at once after `need-shared` or `need-module`
    this.declines = new Map()    // peerId → tasks declined in a row
    this.peersLost = 0
    this.lastDiscovery = 0
    this.discovering = false
    this.settled = false
    this.quorum = spec.verify === 'quorum'
    this.reputation = host.reputation ?? new Reputation()
    this.seed = spec.seed ?? Math.floor(Math.random() * 2 ** 53)
    this.penalised = []
    this.held = new Map()        // taskId → Map(sha256 → value): results of tasks not decided yet
    this.scheduler = new Scheduler({
      taskCount: spec.inputs.length,
      // The worker stops a task at deadlineMs from its start; before that it may wait behind others.
      deadlineMs: 2 * spec.deadlineMs + 2000,
      maxAttempts: spec.maxAttempts,
      maxCopies: spec.maxCopies,
      maxRetries: spec.maxRetries,
      speculateAfter: spec.speculateAfter,
      speculateMinMs: spec.speculateMinMs,
      quorum: this.quorum ? { maxReplicas: spec.maxReplicas, seed: this.seed } : null
    })
  }

  /** Peers discovery leaves out: in quorum mode, the penalised ones. */
  #avoided () { return new Set(this.quorum ? this.reputation.avoidedPeers() : []) }

  /** Quorum mode: the probability that a task first sent to `peerId` is replicated (0 for this peer). */
  #check (peerId) {
    return peerId === this.host.peerId() ? 0 : this.reputation.check(peerId, this.spec.trustAfter, this.spec.spotCheckRate)
  }

  async run () {
    this.started = performance.now()
    const promise = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject })
    if (this.spec.inputs.length === 0) this.#finish()
    else {
      const found = await this.host.discover(this.spec.nPeers, this.spec.runtime, { discoveryMs: this.spec.discoveryMs, exclude: this.#avoided() })
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
      if (typeof m.peerId === 'string' && m.peerId !== src && m.peerId !== this.host.peerId()) this.#lose(m.peerId, 'gone')
    } else if (m.kind === 'probe-reply') {
      const probe = this.probes.get(src)
      if (!probe || !Array.isArray(m.taskIds)) return
      probe.misses = 0
      // Tasks sent well before this probe that the peer does not hold were lost on the way.
      for (const taskId of this.scheduler.runningOn(src, probe.sentAt - this.spec.probeIntervalMs)) {
        if (!m.taskIds.includes(taskId)) this.scheduler.fail(taskId, src, 'lost', 'the peer does not hold the task', now)
      }
    } else if (m.kind === 'result' && Number.isInteger(m.taskId) && m.taskId >= 0 && m.taskId < this.scheduler.taskCount) {
      this.#onResult(src, m).catch((error) => this.host.emit('error', { code: 'job', message: error.message }))
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
      if (code === 'need-module') this.#needModule(src, taskId)
      const attempt = this.scheduler.attemptOn(taskId, src)
      const key = `${src}|${taskId}`
      if ((code === 'need-shared' || code === 'need-module') && attempt !== undefined && !this.resent.has(key)) {
        // The peer was given this task and is idle: it gets the same task again at once, with what it
        // lacks (once per task: a peer that asks again goes the queue's way). Back in the queue, faster
        // peers could take every task before this one had the module, and it would sit the job out.
        this.resent.add(key)
        this.#dispatch(taskId, src, attempt)
        return
      }
      if (code === 'busy' || code === 'stopped') {
        const n = (this.declines.get(src) ?? 0) + 1
        this.declines.set(src, n)
        if (n >= MAX_DECLINES) { this.#lose(src, 'declining'); this.#pump(); return }
      }
      const { failed, cancel } = this.scheduler.fail(taskId, src, code, message, performance.now())
      if (failed) {
        this.#cancelCopies(taskId, cancel)
        this.host.emit('task-error', { jobId: this.id, taskId, peerId: src, code, message })
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
    if (this.quorum && this.reputation.avoided(src)) return   // penalised: its results no longer count
    // The value of each digest of a task not decided yet (quorum mode: a later verdict may accept it).
    if (!this.held.has(taskId)) this.held.set(taskId, new Map())
    this.held.get(taskId).set(sha, value)
    const { winner, mismatch, cancel, agreed, dissented, failed } = this.scheduler.complete(taskId, src, sha, performance.now())
    if (mismatch && !this.quorum) this.host.emit('error', { code: 'result-mismatch', message: `task ${taskId}: copies from different peers differ` })
    if (winner) this.#accepted(taskId, src, sha, cancel)
    if (!this.scheduler.isOpen(taskId)) this.held.delete(taskId)
    if (agreed?.length || dissented?.length) this.#verdict(taskId, agreed, dissented)
    if (failed) {
      this.#cancelCopies(taskId, cancel)
      this.host.emit('task-error', { jobId: this.id, taskId, peerId: src, code: 'no-quorum', message: 'the results of the task disagree' })
    }
    this.#pump()
  }

  /** Task `taskId` has its result: the value of digest `sha` from `peerId`; `cancel` lists the peers with copies. */
  #accepted (taskId, peerId, sha, cancel) {
    const value = this.held.get(taskId)?.get(sha)
    this.held.delete(taskId)
    this.wins.set(peerId, (this.wins.get(peerId) ?? 0) + 1)
    if (this.results) this.results[taskId] = value
    this.spec.onResult?.(taskId, value)
    this.#cancelCopies(taskId, cancel)
    const total = this.scheduler.taskCount
    this.host.emit('progress', { jobId: this.id, done: total - this.scheduler.remaining, total, peerId })
  }

  /**
   * Quorum mode: records agreement and penalties in the engine's reputation; a penalised peer leaves
   * the job (its copies go to others), its results stop counting in the tasks not decided yet (judged
   * again), and later jobs avoid it; a peer that became trusted is only
   * spot-checked from now on.
   */
  #verdict (taskId, agreed, dissented) {
    const me = this.host.peerId()
    for (const p of agreed) {
      if (p === me) continue
      this.reputation.agree(p)
      if (this.scheduler.hasPeer(p)) this.scheduler.setCheck(p, this.#check(p))
    }
    for (const p of dissented) {
      if (p === me) continue
      this.reputation.penalise(p)
      if (this.penalised.includes(p)) continue
      this.penalised.push(p)
      this.host.emit('penalised', { jobId: this.id, taskId, peerId: p })
      this.#lose(p, 'penalised')
      // Its results stop counting: the tasks it answered are judged again, and some may be accepted now.
      for (const r of this.scheduler.discount(p)) {
        this.#accepted(r.taskId, r.winner, r.accepted, r.completion.cancel)
        this.#verdict(r.taskId, r.completion.agreed, r.completion.dissented)
      }
    }
  }

  #addPeer (answer) {
    if (this.quorum && this.reputation.avoided(answer.peerId)) return
    const limit = Math.min(this.spec.maxInFlightPerPeer, (answer.workers | 0) + this.spec.prefetch)
    this.scheduler.addPeer(answer.peerId, limit, this.#check(answer.peerId))
    if (answer.peerId !== this.host.peerId()) this.probes.set(answer.peerId, { sentAt: 0, misses: 0 })
  }

  #lose (peerId, why) {
    if (!this.scheduler.hasPeer(peerId)) return
    this.gone.add(peerId)
    this.sharedSent.delete(peerId)
    this.declines.delete(peerId)
    this.probes.delete(peerId)
    this.peersLost++
    this.scheduler.removePeer(peerId)
    this.host.emit('peer-lost', { jobId: this.id, peerId, reason: why })
  }

  /** A peer lacks the module: it gets it with its next task, unless the module is on its way already. */
  #needModule (peerId, taskId) {
    if (this.spec.moduleBase64 === undefined) return
    const sent = this.moduleSeq.get(peerId)
    if (sent !== undefined && (this.sentSeq.get(`${peerId}|${taskId}`) ?? Infinity) < sent) return
    this.needsModule.add(peerId)
    this.sharedSent.delete(peerId)
  }

  #pump () {
    if (this.settled) return
    if (!this.host.peerId()) { this.cancel('stopped', 'this peer left the ring'); return }
    const now = performance.now()
    for (const { taskId, peerId, attempt } of this.scheduler.assign(now)) this.#dispatch(taskId, peerId, attempt)
    if (this.scheduler.finished) this.#finish()
  }

  /** Sends a copy of a task the scheduler gave `peerId`, with the shared data and the module if it lacks them. */
  #dispatch (taskId, peerId, attempt) {
    const task = { kind: 'task', jobId: this.id, taskId, attempt, runtime: this.spec.runtime, input: this.spec.inputs[taskId], deadlineMs: this.spec.deadlineMs }
    if (!this.sharedSent.has(peerId)) { task.shared = this.spec.shared; this.sharedSent.add(peerId) }
    const seq = ++this.sends
    this.sentSeq.set(`${peerId}|${taskId}`, seq)
    if (task.shared && this.needsModule.delete(peerId)) {
      task.shared = { ...task.shared, moduleBase64: this.spec.moduleBase64 }
      this.moduleSeq.set(peerId, seq)
      this.modulesSentTo.set(peerId, (this.modulesSentTo.get(peerId) ?? 0) + 1)
    }
    this.host.post(peerId, task).catch((error) => {
      this.sharedSent.delete(peerId)
      if (task.shared?.moduleBase64 !== undefined) { this.needsModule.add(peerId); this.moduleSeq.delete(peerId) }
      this.scheduler.fail(taskId, peerId, 'lost', error.message, performance.now())
    })
  }

  #tick () {
    if (this.settled) return
    const now = performance.now()
    for (const { taskId, peerId, failed, cancel } of this.scheduler.expired(now)) {
      if (failed) {
        this.#cancelCopies(taskId, cancel)
        this.host.emit('task-error', { jobId: this.id, taskId, peerId, code: 'deadline', message: 'no result before the deadline' })
      }
    }
    for (const [peerId, probe] of this.probes) {
      if (now - probe.sentAt < this.spec.probeIntervalMs || this.scheduler.runningOn(peerId).length === 0) continue
      if (probe.sentAt > 0 && ++probe.misses >= this.spec.probeMisses) { this.#lose(peerId, 'unreachable'); continue }
      probe.sentAt = now
      this.#send(peerId, { kind: 'probe', jobId: this.id })
    }
    this.#maybeRediscover(now)
    this.#pump()
  }

  /** Peers were lost and tasks wait: look for replacements through the overlay. */
  #maybeRediscover (now) {
    const active = this.scheduler.peerCount
    const starved = this.scheduler.starved().length > 0
    if (this.discovering || !((active < this.spec.nPeers && this.scheduler.pending > 0) || starved) || now - this.lastDiscovery < 2000) return
    this.discovering = true
    this.lastDiscovery = now
    // Peers reported gone may be found again: a peer that answers discovery is alive.
    const exclude = new Set([...this.scheduler.peerIds(), ...this.#avoided()])
    this.host.discover(Math.max(1, this.spec.nPeers - active), this.spec.runtime, { discoveryMs: this.spec.discoveryMs, exclude }).then((found) => {
      this.discovering = false
      if (this.settled) return
      for (const a of found) this.#addPeer(a)
      if (this.scheduler.peerCount === 0) { this.cancel('no-peers', 'every peer of the job left and discovery found no other'); return }
      for (const taskId of this.scheduler.starved()) {
        const message = 'not enough distinct peers to reach a quorum (discovery found no other)'
        this.#cancelCopies(taskId, this.scheduler.failStarved(taskId, message))
        this.host.emit('task-error', { jobId: this.id, taskId, peerId: null, code: 'no-quorum', message })
      }
      this.#pump()
    })
  }

  #cancelCopies (taskId, peers) {
    for (const peerId of peers) this.#send(peerId, { kind: 'cancel', jobId: this.id, taskIds: [taskId] })
  }

  #cancelEverywhere () {
    for (const peerId of this.scheduler.peerIds()) {
      if (this.scheduler.runningOn(peerId).length > 0) this.#send(peerId, { kind: 'cancel', jobId: this.id })
    }
  }

  /** A probe or cancel: one that finds no route is reported (the peer is probably gone; probes find out). */
  #send (peerId, body) {
    this.host.post(peerId, body).catch((error) => {
      this.host.emit('undelivered', { code: JOB_ERRORS.UNDELIVERED, peerId, kind: body.kind, jobId: this.id, message: error.message })
    })
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
      peers: [...new Set([...s.peerIds(), ...this.gone])],
      makespanMs: Math.round(performance.now() - this.started),
      discoveryMs: this.discoveryMs,
      tasksPerPeer: Object.fromEntries(this.wins),
      peersLost: this.peersLost,
      ...s.counts
    }
    if (this.spec.runtime === 'wasm') {
      stats.modulesSentTo = Object.fromEntries(this.modulesSentTo)
      stats.modulesSent = [...this.modulesSentTo.values()].reduce((a, b) => a + b, 0)
    }
    if (this.quorum) {
      Object.assign(stats, { seed: this.seed, penalised: [...this.penalised], verification: { ...s.verification },
        replication: s.taskCount > 0 ? s.verification.results / s.taskCount : 0 })
    }
    this.host.emit('job-done', stats)
    const failures = s.failedTasks()
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
