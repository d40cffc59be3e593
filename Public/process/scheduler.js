// The scheduling core of a job (docs/jobs.md): pure logic, no timers, no network, no workers, so it
// can be tested on its own. The job engine (browser-process.js) feeds it events and performs the
// assignments it returns.
//
// Semantics (after the volunteer-computing practice of BOINC / MapReduce "backup tasks", Dean &
// Ghemawat, OSDI 2004):
// - pull with credits: a peer holds at most `limit` tasks at a time; every result returns a credit;
// - a deadline per dispatched copy; a copy past it, or on a peer that left, is dispatched again;
// - when no task is pending (the end of the job), idle credits go to speculative duplicates of the
//   slowest outstanding tasks (at most `maxCopies` running copies of a task, each on a different peer);
// - the first result of a task wins; later copies are discarded (and their SHA-256 compared);
// - a task whose function throws fails at once (functions are deterministic); a task that misses its
//   deadline (or crashes its worker) `maxAttempts` times fails; a copy lost with a peer that left never
//   counts against the task; copies lost in transit, corrupt or cancelled fail it after `maxRetries`.
//
// Quorum mode (`quorum: { maxReplicas, seed }`; docs/jobs.md, "Verification by quorum", rules in
// quorum.js): a task is done when results from distinct peers agree; no speculative duplicates.

import { Replicas } from './quorum.js'
export { spotCheckDraw, decideQuorum, Reputation } from './quorum.js'

const byNumber = (a, b) => a - b

/** Failure codes after which a task is dispatched again; any other code (e.g. 'threw') fails it at once. */
const RETRIED = new Set(['busy', 'stopped', 'need-shared', 'need-module', 'lost', 'corrupt', 'cancelled', 'deadline', 'crashed'])
/** Of those, the ones that count towards maxAttempts (the task itself may be at fault). */
const COUNTED = new Set(['deadline', 'crashed'])
/** The ones where the peer declined without trying: it pauses, and nothing is counted against the task. */
const DECLINED = new Set(['busy', 'stopped'])

export class Scheduler {
  /**
   * @param {object} o
   * @param {number} o.taskCount number of tasks, indexed 0 … taskCount − 1
   * @param {number} [o.deadlineMs] time a dispatched copy may take before it is considered late
   * @param {number} [o.maxAttempts] copies that ended late or crashed before a task fails (default 3)
   * @param {number} [o.maxCopies] running copies of one task at most (default 2; 1 disables speculation)
   * @param {number} [o.speculateAfter] a task is a straggler once running for this many median task times (default 1.5)
   * @param {number} [o.speculateMinMs] … and for at least this long (default 1000), so that short tasks are not duplicated
   * @param {number} [o.maxRetries] copies of a task lost, corrupt or cancelled before it fails (default 10)
   * @param {{maxReplicas: number, seed: number}} [o.quorum] quorum mode: results of a task at most, spot-check seed
   */
  constructor ({ taskCount, deadlineMs = 120000, maxAttempts = 3, maxCopies = 2, speculateAfter = 1.5, speculateMinMs = 1000, maxRetries = 10, quorum = null }) {
    if (!Number.isInteger(taskCount) || taskCount < 0) throw new Error('taskCount must be a non-negative integer')
    this.deadlineMs = deadlineMs
    this.maxAttempts = maxAttempts
    this.maxCopies = maxCopies
    this.speculateAfter = speculateAfter
    this.speculateMinMs = speculateMinMs
    this.maxRetries = maxRetries
    // Per task: 0 pending, 1 running, 2 done, 3 failed.
    this.status = new Uint8Array(taskCount)
    this.attempts = new Uint32Array(taskCount)    // dispatches (the attempt number sent with a copy)
    this.failures = new Uint32Array(taskCount)    // copies that ended in a COUNTED code
    this.retries = new Uint32Array(taskCount)     // copies that ended lost, corrupt, cancelled
    this.copies = Array.from({ length: taskCount }, () => new Map())   // peerId → { sentAt, attempt }
    this.sentTo = Array.from({ length: taskCount }, () => new Set())   // every peer a copy went to
    this.winners = new Map()           // taskId → SHA-256 of the winning result
    this.errors = new Map()            // taskId → { code, message }
    this.queue = []                    // pending task ids, in order, consumed from `head`
    this.head = 0
    this.retry = []                    // task ids to dispatch again, before the queue
    for (let i = 0; i < taskCount; i++) this.queue.push(i)
    this.peers = new Map()             // peerId → { limit, running: Set<taskId>, won, pausedUntil }
    this.durations = []                // winners' dispatch-to-result times, ms
    this.remaining = taskCount
    this.counts = { dispatched: 0, redispatched: 0, speculative: 0, discarded: 0, mismatches: 0, late: 0, lost: 0, busy: 0, failed: 0 }
    this.quorum = quorum ? new Replicas(taskCount, quorum) : null
  }

  /** Quorum mode's counters: `{ results, agreed, dissented, spotChecks, unchecked, noQuorum }` (docs/jobs.md). */
  get verification () { return this.quorum?.verification }

  get taskCount () { return this.status.length }
  get finished () { return this.remaining === 0 }
  get pending () { return this.retry.length + this.queue.length - this.head }
  get running () { let n = 0; for (const p of this.peers.values()) n += p.running.size; return n }

  /** Whether `peerId` is one of the job's peers. */
  hasPeer (peerId) { return this.peers.has(peerId) }
  /** Whether task `taskId` is neither done nor failed. */
  isOpen (taskId) { return this.status[taskId] < 2 }
  /** The job's peers, in the order they were added. */
  peerIds () { return [...this.peers.keys()] }
  /** How many peers the job has. */
  get peerCount () { return this.peers.size }
  /** The tasks that failed for good, in the order they failed: `[{ task, code, message }]`. */
  failedTasks () { return [...this.errors].map(([task, e]) => ({ task, ...e })) }

  /** A peer that may hold `limit` tasks at a time; `check` (quorum mode): its replication probability (docs/jobs.md). */
  addPeer (peerId, limit, check = 1) {
    if (this.peers.has(peerId)) { const p = this.peers.get(peerId); p.limit = Math.max(1, limit); p.check = check; return }
    this.peers.set(peerId, { limit: Math.max(1, limit), running: new Set(), won: 0, pausedUntil: 0, check })
  }

  /** Quorum mode: a peer's new check probability (it became trusted). */
  setCheck (peerId, check) { const p = this.peers.get(peerId); if (p) p.check = check }

  /** The peer left or cannot be reached: its running copies are dispatched again. Returns their task ids. */
  removePeer (peerId) {
    const peer = this.peers.get(peerId)
    if (!peer) return []
    this.peers.delete(peerId)
    const lost = [...peer.running].sort(byNumber)   // back in task order (docs/jobs.md)
    for (const taskId of lost) {
      this.counts.lost++
      this.#dropCopy(taskId, peerId)
    }
    // Not counted against the tasks: the peer is gone, they go to others.
    return lost
  }

  /** Fills free credits: pending tasks first (re-dispatches before new ones), then speculative duplicates. */
  assign (now) {
    const out = []
    if (this.quorum) {
      for (const [peerId, peer] of this.peers) {
        if (peer.pausedUntil > now) continue
        while (peer.running.size < peer.limit) {
          const taskId = this.#nextReplica(peerId)
          if (taskId === undefined) break
          out.push(this.#dispatchReplica(taskId, peerId, now))
        }
      }
      return out
    }
    for (const [peerId, peer] of this.peers) {
      if (peer.pausedUntil > now) continue
      while (peer.running.size < peer.limit) {
        const taskId = this.#nextPending()
        if (taskId === undefined) break
        out.push(this.#dispatch(taskId, peerId, now, false))
      }
    }
    if (this.pending === 0 && this.maxCopies > 1 && this.durations.length > 0) {
      const threshold = Math.max(this.speculateMinMs, this.speculateAfter * this.#median())
      for (const [peerId, peer] of this.peers) {
        if (peer.pausedUntil > now) continue
        while (peer.running.size < peer.limit) {
          const taskId = this.#straggler(peerId, now, threshold)
          if (taskId === undefined) break
          out.push(this.#dispatch(taskId, peerId, now, true))
        }
      }
    }
    return out
  }

  /**
   * A result for `taskId` from `peerId` with the SHA-256 of its bytes. Returns
   * `{ winner, cancel }`: `winner` is true for the first result (use it), `cancel` lists the peers
   * still running other copies. A later result is discarded; `mismatch` tells whether its digest differs.
   * A result from a peer the task was never sent to is ignored (`winner` false, `unexpected` true).
   * Quorum mode: `winner` means accepted; also `agreed` and `dissented` (peers whose results matched /
   * differed from the accepted digest, compared with at least one other) and `failed` (no quorum).
   */
  complete (taskId, peerId, sha256, now) {
    if (!this.sentTo[taskId]?.has(peerId)) return { winner: false, mismatch: false, unexpected: true, cancel: [] }
    if (this.quorum) return this.#completeReplica(taskId, peerId, sha256, now)
    const peer = this.peers.get(peerId)
    const copy = this.copies[taskId]?.get(peerId)
    if (copy) this.#dropCopy(taskId, peerId)
    if (peer) peer.pausedUntil = 0
    if (this.status[taskId] === 2) {
      this.counts.discarded++
      const mismatch = this.winners.get(taskId) !== sha256
      if (mismatch) this.counts.mismatches++
      return { winner: false, mismatch, cancel: [] }
    }
    if (this.status[taskId] === 3) return { winner: false, mismatch: false, cancel: [] }
    if (copy) this.durations.push(now - copy.sentAt)
    return this.#accept(taskId, sha256, peerId)
  }

  /**
   * A copy ended without a result. `code`: 'deadline' or 'crashed' (the task fails after maxAttempts
   * of these); 'busy' or 'stopped' (the peer declined: it pauses for `pauseMs`, nothing is counted);
   * 'need-shared', 'need-module' (the peer needs the job's shared data or module: dispatched again at once); 'lost', 'corrupt',
   * 'cancelled' (dispatched again; the task fails after maxRetries of these); any other code, such as
   * 'threw', fails the task at once. Returns `{ failed, cancel }`: `failed` is true
   * once the task failed for good, and `cancel` then lists the peers still running other copies.
   */
  fail (taskId, peerId, code, message, now, pauseMs = 500) {
    if (!this.copies[taskId]?.has(peerId)) return { failed: false, cancel: [] }   // a copy already dropped (late, lost) or never sent
    this.#dropCopy(taskId, peerId)
    if (DECLINED.has(code)) {
      this.counts.busy++
      const peer = this.peers.get(peerId)
      if (peer) peer.pausedUntil = now + pauseMs
    }
    if (code === 'deadline') this.counts.late++
    if (code === 'lost') this.counts.lost++
    if (COUNTED.has(code)) this.failures[taskId]++
    else if (RETRIED.has(code) && !DECLINED.has(code) && !code.startsWith('need-')) this.retries[taskId]++
    const permanent = !RETRIED.has(code) || this.failures[taskId] >= this.maxAttempts || this.retries[taskId] > this.maxRetries
    if (!permanent) return { failed: false, cancel: [] }
    const cancel = [...this.copies[taskId].keys()].sort()
    this.#failTask(taskId, code, message)
    return { failed: true, cancel }
  }

  /**
   * Copies whose deadline has passed: each is dropped as a 'deadline' failure. Returns
   * `[{ taskId, peerId, failed, cancel }]` (see fail).
   */
  expired (now) {
    const late = []
    for (const [peerId, peer] of this.peers) {
      for (const taskId of [...peer.running].sort(byNumber)) {
        if (now - this.copies[taskId].get(peerId).sentAt > this.deadlineMs) late.push({ taskId, peerId })
      }
    }
    return late.map(({ taskId, peerId }) => ({ taskId, peerId, ...this.fail(taskId, peerId, 'deadline', `no result within ${this.deadlineMs} ms`, now) }))
  }

  /** Fails every task that is not done (no peer left to run it, or the job was cancelled). */
  abort (code, message) {
    for (let t = 0; t < this.taskCount; t++) if (this.status[t] < 2) this.#failTask(t, code, message)
  }

  /** Task ids that `peerId` is running according to the scheduler, dispatched before `before`. */
  runningOn (peerId, before = Infinity) {
    const running = this.peers.get(peerId)?.running ?? []
    return [...running].filter((t) => this.copies[t].get(peerId).sentAt < before).sort(byNumber)
  }
  /** The attempt number of the copy of `taskId` running on `peerId`; undefined when none runs there. */
  attemptOn (taskId, peerId) { return this.copies[taskId]?.get(peerId)?.attempt }

  /** Winner counts per peer, for the job's statistics (peers removed since are kept by the engine). */
  wins () { return new Map([...this.peers].map(([id, p]) => [id, p.won])) }

  /** Quorum mode: tasks wanting a copy that none of the job's peers may run (each holds one or gave a result), sorted. */
  starved () {
    if (!this.quorum) return []
    const peers = [...this.peers.keys()]
    return this.retry.filter((t) => this.#wanted(t) > 0 && !peers.some((p) => this.#eligible(t, p))).sort(byNumber)
  }

  /** Quorum mode: fails task `taskId` as 'no-quorum'; returns the peers still running copies. */
  failStarved (taskId, message) {
    if (this.status[taskId] >= 2) return []
    const cancel = [...this.copies[taskId].keys()].sort()
    this.quorum.verification.noQuorum++
    this.#failTask(taskId, 'no-quorum', message)
    return cancel
  }

  /** Quorum mode: a penalised peer's results stop counting; open tasks are judged again. Returns `[{ taskId, accepted, winner, completion }]` accepted now. */
  discount (peerId) {
    const out = []
    for (let t = 0; t < this.taskCount; t++) {
      if (this.status[t] >= 2 || !this.quorum?.remove(t, peerId)) continue
      const { accepted, agreed, dissented } = this.quorum.judge(t)
      if (accepted === null) { this.#requeue(t); continue }
      const winner = this.quorum.latest(t, accepted)
      out.push({ taskId: t, accepted, winner, completion: { ...this.#accept(t, accepted, winner), agreed, dissented } })
    }
    return out
  }

  // MARK: quorum mode

  #accept (t, accepted, winnerId) {
    this.status[t] = 2
    this.remaining--
    this.winners.set(t, accepted)
    const winner = this.peers.get(winnerId)
    if (winner) winner.won++
    const cancel = [...this.copies[t].keys()].sort()
    for (const other of cancel) this.#dropCopy(t, other)
    this.#unqueue(t)
    return { winner: true, mismatch: false, cancel }
  }

  #wanted (t) { return this.quorum.wanted(t, this.copies[t].size, this.status[t] < 2) }
  #eligible (t, peerId) { return !this.copies[t].has(peerId) && !this.quorum.gave(t, peerId) }

  /** Keeps `retry` (the tasks that want more copies, in the order they came to want them) in step. */
  #requeue (t) {
    const i = this.retry.indexOf(t)
    if (this.#wanted(t) > 0) { if (i < 0) this.retry.push(t) } else if (i >= 0) this.retry.splice(i, 1)
  }

  #nextReplica (peerId) {
    const t = this.retry.find((t) => this.#wanted(t) > 0 && this.#eligible(t, peerId))
    if (t !== undefined) return t
    while (this.head < this.queue.length) {
      const t = this.queue[this.head++]
      if (this.status[t] === 0) return t
    }
    return undefined
  }

  #dispatchReplica (t, peerId, now) {
    if (this.quorum.count(t) === 0 && this.copies[t].size === 0) this.quorum.decide(t, this.peers.get(peerId).check)
    const assignment = this.#dispatch(t, peerId, now, false)
    this.#requeue(t)
    return assignment
  }

  #completeReplica (t, peerId, sha256, now) {
    const out = { winner: false, mismatch: false, unexpected: false, cancel: [], agreed: [], dissented: [], failed: false }
    if (this.status[t] === 3 || this.quorum.gave(t, peerId)) return out
    const copy = this.copies[t].get(peerId)
    const peer = this.peers.get(peerId)
    if (peer) peer.pausedUntil = 0
    this.quorum.add(t, peerId, sha256)
    if (this.status[t] === 2) {
      // After acceptance: compared with the accepted digest.
      this.counts.discarded++
      Object.assign(out, this.quorum.compare(this.winners.get(t), peerId, sha256))
      if (out.mismatch) this.counts.mismatches++
      return out
    }
    if (copy) { this.copies[t].delete(peerId); peer?.running.delete(t) }
    const { accepted, agreed, dissented } = this.quorum.judge(t)
    if (accepted !== null) {
      // Every task is judged after each change of its results, so the digest accepted now is this result's.
      if (copy) this.durations.push(now - copy.sentAt)
      return { ...this.#accept(t, accepted, peerId), agreed, dissented }
    }
    const message = this.quorum.grow(t)
    if (message) {
      Object.assign(out, { failed: true, cancel: [...this.copies[t].keys()].sort() })
      this.#failTask(t, 'no-quorum', message)
      return out
    }
    if (this.copies[t].size === 0) this.status[t] = 0
    this.#requeue(t)
    return out
  }

  // MARK: internals

  #nextPending () {
    while (this.retry.length > 0) {
      const t = this.retry.shift()
      if (this.status[t] === 0) return t
    }
    while (this.head < this.queue.length) {
      const t = this.queue[this.head++]
      if (this.status[t] === 0) return t
    }
    return undefined
  }

  #dispatch (taskId, peerId, now, speculative) {
    const attempt = ++this.attempts[taskId]
    this.status[taskId] = 1
    this.copies[taskId].set(peerId, { sentAt: now, attempt })
    this.sentTo[taskId].add(peerId)
    this.peers.get(peerId).running.add(taskId)
    this.counts.dispatched++
    if (speculative) this.counts.speculative++
    else if (attempt > (this.quorum ? this.quorum.needed[taskId] : 1)) this.counts.redispatched++
    return { taskId, peerId, attempt, speculative }
  }

  /** The outstanding task running longest (past `threshold` ms) that may get another copy on `peerId`. */
  #straggler (peerId, now, threshold) {
    let best
    let bestAge = threshold
    for (const [other, peer] of this.peers) {
      if (other === peerId) continue
      for (const taskId of peer.running) {
        const copies = this.copies[taskId]
        if (copies.size >= this.maxCopies || copies.has(peerId)) continue
        let first = Infinity
        for (const c of copies.values()) first = Math.min(first, c.sentAt)
        // The oldest; between equally old ones the lowest task id (docs/jobs.md is silent; Scheduler.swift agrees).
        if (now - first > bestAge || (now - first === bestAge && best !== undefined && taskId < best)) { best = taskId; bestAge = now - first }
      }
    }
    return best
  }

  #dropCopy (taskId, peerId) {
    this.copies[taskId].delete(peerId)
    this.peers.get(peerId)?.running.delete(taskId)
    if (this.quorum) {
      if (this.status[taskId] === 1 && this.copies[taskId].size === 0) this.status[taskId] = 0
      this.#requeue(taskId)
      return
    }
    if (this.status[taskId] === 1 && this.copies[taskId].size === 0) {
      this.status[taskId] = 0
      this.retry.push(taskId)
    }
  }

  #unqueue (taskId) {
    const i = this.retry.indexOf(taskId)
    if (i >= 0) this.retry.splice(i, 1)
  }

  #failTask (taskId, code, message) {
    for (const other of [...this.copies[taskId].keys()]) this.#dropCopy(taskId, other)
    this.status[taskId] = 3
    this.errors.set(taskId, { code, message })
    this.counts.failed++
    this.remaining--
    this.#unqueue(taskId)
  }

  #median () {
    const sorted = [...this.durations].sort((a, b) => a - b)
    return sorted[sorted.length >> 1]
  }
}
