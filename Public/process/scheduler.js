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
// Quorum mode (`quorum: { maxReplicas, seed }`; docs/jobs.md, "Verification by quorum"): a task is done
// only when the SHA-256 of results from distinct peers agree (decideQuorum); a task first dispatched to a
// peer whose `check` probability is below its spot-check draw runs once, any other twice, and one more
// copy goes out each time all wanted results are in without agreement, up to `maxReplicas` results
// (then it fails as 'no-quorum'). No speculative duplicates in quorum mode. The same rules as
// Sources/Jobs/Scheduler.swift and Quorum.swift; both reproduce Tests/vectors/quorum.json.

const byNumber = (a, b) => a - b

/** Failure codes after which a task is dispatched again; any other code (e.g. 'threw') fails it at once. */
const RETRIED = new Set(['busy', 'stopped', 'need-shared', 'lost', 'corrupt', 'cancelled', 'deadline', 'crashed'])
/** Of those, the ones that count towards maxAttempts (the task itself may be at fault). */
const COUNTED = new Set(['deadline', 'crashed'])
/** The ones where the peer declined without trying: it pauses, and nothing is counted against the task. */
const DECLINED = new Set(['busy', 'stopped'])

const MASK64 = (1n << 64n) - 1n

/**
 * The spot-check draw of task `taskId` of a job seeded with `seed` (an integer in [0, 2^53)): a number
 * in [0, 1), the SplitMix64 finalizer of seed + (taskId + 1) · 0x9E3779B97F4A7C15 (mod 2^64), top 53 bits.
 */
export function spotCheckDraw (seed, taskId) {
  let z = (BigInt(seed) + BigInt(taskId + 1) * 0x9E3779B97F4A7C15n) & MASK64
  z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK64
  z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK64
  z ^= z >> 31n
  return Number(z >> 11n) / 2 ** 53
}

/**
 * The digest the results of a task (hex SHA-256s, one per peer) agree on, or null while more are
 * needed: the most common digest (count c of n) iff (`single` and n = 1) or (c ≥ 2 and 2c > n).
 */
export function decideQuorum (digests, single) {
  if (single && digests.length === 1) return digests[0]
  const counts = new Map()
  for (const d of digests) counts.set(d, (counts.get(d) ?? 0) + 1)
  for (const d of digests) if (counts.get(d) >= 2 && 2 * counts.get(d) > digests.length) return d
  return null
}

/**
 * The record of the peers whose results an engine verified (docs/jobs.md, "Reputation"), kept across
 * the jobs of a page: `agreed` (validated agreeing results since the last penalty) and `penalties`.
 */
export class Reputation {
  #records = new Map()   // peerId → { agreed, penalties }
  record (peerId) { const r = this.#records.get(peerId); return r ? { ...r } : { agreed: 0, penalties: 0 } }
  agree (peerId) { const r = this.record(peerId); r.agreed++; this.#records.set(peerId, r) }
  penalise (peerId) { const r = this.record(peerId); r.penalties++; r.agreed = 0; this.#records.set(peerId, r) }
  /** Whether jobs avoid the peer (it was penalised). */
  avoided (peerId) { return this.record(peerId).penalties > 0 }
  trusted (peerId, trustAfter) { const r = this.record(peerId); return r.penalties === 0 && r.agreed >= trustAfter }
  /** The probability that a task first sent to the peer is replicated: 1, or `spotCheckRate` once trusted. */
  check (peerId, trustAfter, spotCheckRate) { return this.trusted(peerId, trustAfter) ? spotCheckRate : 1 }
  /** Peers avoided, sorted. */
  avoidedPeers () { return [...this.#records].filter(([, r]) => r.penalties > 0).map(([p]) => p).sort() }
}

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
   * @param {{maxReplicas: number, seed: number}} [o.quorum] quorum mode: results of a task at most (at
   *   least 2), and the seed of the spot-check draws
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
    this.quorum = quorum ? { maxReplicas: Math.max(2, quorum.maxReplicas), seed: quorum.seed } : null
    if (this.quorum) {
      this.results = Array.from({ length: taskCount }, () => [])   // [{ peerId, sha256 }] in arrival order
      this.needed = new Uint32Array(taskCount)                      // results wanted
      this.single = new Uint8Array(taskCount)                       // exempt from replication
      this.verification = { results: 0, agreed: 0, dissented: 0, spotChecks: 0, unchecked: 0, noQuorum: 0 }
    }
  }

  get taskCount () { return this.status.length }
  get finished () { return this.remaining === 0 }
  get pending () { return this.retry.length + this.queue.length - this.head }
  get running () { let n = 0; for (const p of this.peers.values()) n += p.running.size; return n }

  /** Whether `peerId` is one of the job's peers. */
  hasPeer (peerId) { return this.peers.has(peerId) }
  /** The job's peers, in the order they were added. */
  peerIds () { return [...this.peers.keys()] }
  /** How many peers the job has. */
  get peerCount () { return this.peers.size }
  /** The tasks that failed for good, in the order they failed: `[{ task, code, message }]`. */
  failedTasks () { return [...this.errors].map(([task, e]) => ({ task, ...e })) }

  /**
   * A peer that may receive up to `limit` tasks at a time (or new values for one). `check`: in quorum
   * mode, the probability that a task first dispatched to it is replicated (1 always, a trusted peer's
   * spot-check rate, 0 for this peer's own workers).
   */
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
    this.status[taskId] = 2
    this.remaining--
    this.winners.set(taskId, sha256)
    if (peer) peer.won++
    if (copy) this.durations.push(now - copy.sentAt)
    const cancel = [...this.copies[taskId].keys()].sort()
    for (const other of cancel) this.#dropCopy(taskId, other)
    this.#unqueue(taskId)
    return { winner: true, mismatch: false, cancel }
  }

  /**
   * A copy ended without a result. `code`: 'deadline' or 'crashed' (the task fails after maxAttempts
   * of these); 'busy' or 'stopped' (the peer declined: it pauses for `pauseMs`, nothing is counted);
   * 'need-shared' (the peer needs the job's shared data: dispatched again at once); 'lost', 'corrupt',
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
    else if (RETRIED.has(code) && !DECLINED.has(code) && code !== 'need-shared') this.retries[taskId]++
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
    for (let t = 0; t < this.taskCount; t++) {
      if (this.status[t] < 2) this.#failTask(t, code, message)
    }
  }

  /** Task ids that `peerId` is running according to the scheduler, dispatched before `before`. */
  runningOn (peerId, before = Infinity) {
    const peer = this.peers.get(peerId)
    if (!peer) return []
    return [...peer.running].filter((t) => this.copies[t].get(peerId).sentAt < before).sort(byNumber)
  }

  /** Winner counts per peer, for the job's statistics (peers removed since are kept by the engine). */
  wins () { return new Map([...this.peers].map(([id, p]) => [id, p.won])) }

  /**
   * Quorum mode: tasks that want another copy that none of the job's peers may run (each holds a copy
   * or gave a result), in task order.
   */
  starved () {
    if (!this.quorum) return []
    const peers = [...this.peers.keys()]
    return this.retry.filter((t) => this.#wanted(t) > 0 && !peers.some((p) => this.#eligible(t, p))).sort(byNumber)
  }

  /** Quorum mode: fails task `taskId` as 'no-quorum'; returns the peers still running copies. */
  failStarved (taskId, message) {
    if (this.status[taskId] >= 2) return []
    const cancel = [...this.copies[taskId].keys()].sort()
    this.verification.noQuorum++
    this.#failTask(taskId, 'no-quorum', message)
    return cancel
  }

  // MARK: quorum mode

  #wanted (t) {
    if (this.status[t] >= 2) return 0
    return Math.max(0, this.needed[t] - this.results[t].length - this.copies[t].size)
  }

  #eligible (t, peerId) { return !this.copies[t].has(peerId) && !this.results[t].some((r) => r.peerId === peerId) }

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
    const peer = this.peers.get(peerId)
    if (this.results[t].length === 0 && this.copies[t].size === 0) {
      // No result and no copy out: decide here whether the task is replicated.
      if (peer.check <= 0) this.single[t] = 1
      else if (peer.check >= 1) this.single[t] = 0
      else {
        this.single[t] = spotCheckDraw(this.quorum.seed, t) >= peer.check ? 1 : 0
        if (!this.single[t]) this.verification.spotChecks++
      }
      this.needed[t] = this.single[t] ? 1 : 2
    }
    const attempt = ++this.attempts[t]
    this.status[t] = 1
    this.copies[t].set(peerId, { sentAt: now, attempt })
    this.sentTo[t].add(peerId)
    peer.running.add(t)
    this.counts.dispatched++
    if (attempt > this.needed[t]) this.counts.redispatched++
    this.#requeue(t)
    return { taskId: t, peerId, attempt, speculative: false }
  }

  #completeReplica (t, peerId, sha256, now) {
    const out = { winner: false, mismatch: false, unexpected: false, cancel: [], agreed: [], dissented: [], failed: false }
    if (this.status[t] === 3 || this.results[t].some((r) => r.peerId === peerId)) return out
    const copy = this.copies[t].get(peerId)
    const peer = this.peers.get(peerId)
    if (peer) peer.pausedUntil = 0
    this.results[t].push({ peerId, sha256 })
    this.verification.results++
    if (this.status[t] === 2) {
      // After acceptance: compared with the accepted digest.
      this.counts.discarded++
      if (this.winners.get(t) === sha256) { out.agreed = [peerId]; this.verification.agreed++ } else {
        this.counts.mismatches++
        out.mismatch = true
        out.dissented = [peerId]
        this.verification.dissented++
      }
      return out
    }
    if (copy) { this.copies[t].delete(peerId); peer?.running.delete(t) }
    const digests = this.results[t].map((r) => r.sha256)
    const h = decideQuorum(digests, this.single[t] === 1)
    if (h !== null) {
      this.status[t] = 2
      this.remaining--
      this.winners.set(t, h)
      if (peer) peer.won++
      if (copy) this.durations.push(now - copy.sentAt)
      if (digests.length === 1) this.verification.unchecked++
      else {
        out.agreed = this.results[t].filter((r) => r.sha256 === h).map((r) => r.peerId)
        out.dissented = this.results[t].filter((r) => r.sha256 !== h).map((r) => r.peerId)
        this.verification.agreed += out.agreed.length
        this.verification.dissented += out.dissented.length
      }
      out.winner = true
      out.cancel = [...this.copies[t].keys()].sort()
      for (const other of out.cancel) this.#dropCopy(t, other)
      this.#unqueue(t)
      return out
    }
    if (digests.length >= this.needed[t]) {
      if (digests.length >= this.quorum.maxReplicas) {
        out.cancel = [...this.copies[t].keys()].sort()
        out.failed = true
        this.verification.noQuorum++
        this.#failTask(t, 'no-quorum', `no strict majority of ${digests.length} results agrees (at most ${this.quorum.maxReplicas} copies)`)
        return out
      }
      this.needed[t] = digests.length + 1
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
    else if (attempt > 1) this.counts.redispatched++
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
